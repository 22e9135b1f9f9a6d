"""Start and stop a whole simulated Twitch: `run_simulator` (context manager) and `Simulator`."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from twitchgraph.sim.chat import ChatServer, ChatThread
from twitchgraph.sim.clock import AcceleratedClock
from twitchgraph.sim.config import SimConfig, parse_faults
from twitchgraph.sim.http import SimHTTP
from twitchgraph.sim.population import Population, make_population

__all__ = ["SimCredentials", "Simulator", "run_simulator", "start_simulator"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimCredentials:
    """The simulator's fake app credentials (the repr hides the secret all the same)."""

    client_id: str
    client_secret: str = field(repr=False)

    def __repr__(self) -> str:
        return f"SimCredentials(client_id={self.client_id!r}, client_secret='***')"


def _fake_credentials(seed: int) -> SimCredentials:
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
    rng = np.random.default_rng([seed, 4242])
    return SimCredentials("".join(rng.choice(alphabet, 30)), "".join(rng.choice(alphabet, 30)))


class Simulator:
    """A running simulated Twitch. Made by `run_simulator` / `start_simulator`."""

    def __init__(self, pop: Population, clock: AcceleratedClock, config: SimConfig,
                 http: SimHTTP, chat: ChatThread) -> None:
        self.population = pop
        self.clock = clock
        self.config = config
        self.credentials = SimCredentials(config.client_id, config.client_secret)
        self._http = http
        self._chat = chat
        self._stopped = False

    # ----- addresses ---------------------------------------------------------------------
    @property
    def http_url(self) -> str:
        """Base URL of the HTTP server, e.g. ``http://127.0.0.1:41234``."""
        return self._http.url

    @property
    def chat_address(self) -> tuple[str, int]:
        return self._chat.server.host, self._chat.server.port

    def env(self) -> dict[str, str]:
        """Every environment variable the product reads, pointed at this simulator."""
        base = self.http_url
        host, port = self.chat_address
        return {
            "TWITCH_API_URL": f"{base}/helix",
            "TWITCH_AUTH_URL": f"{base}/oauth2",
            "TWITCH_CHAT_HOST": f"{host}:{port}",
            "TWITCH_CHAT_TLS": "0",
            "IGDB_API_URL": f"{base}/v4",
            "STEAM_STORE_URL": base,
            "STEAM_API_URL": base,
            "TWITCH_GQL_URL": f"{base}/gql",
            "TWITCH_CLIENT_ID": self.credentials.client_id,
            "TWITCH_CLIENT_SECRET": self.credentials.client_secret,
        }

    # ----- truth -------------------------------------------------------------------------
    def ground_truth(self) -> dict:
        """Hidden truth: ``communities`` (channel login -> id), ``user_communities``, ``bots``
        (every bot login present in chats), ``published_bots``, ``channels`` (metadata),
        ``games`` (ids and the intended Steam match tier)."""
        return self.population.ground_truth()

    def write_ground_truth(self, path: str | Path) -> Path:
        """Write `ground_truth` as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.ground_truth(), indent=1, ensure_ascii=False))
        return path

    def bot_list_csv(self, path: str | Path) -> Path:
        """Write a published-style bot list (``login,channels,last_seen``); it holds most bots
        of the world, plus many never seen here, but not all of them."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([self.population.seed, 77])
        last_seen = int(self.clock.now().timestamp())
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["login", "channels", "last_seen"])
            for login in self.population.bot_published:
                writer.writerow([login, int(rng.integers(50, 90_000)),
                                 last_seen - int(rng.integers(0, 86_400 * 30))])
        return path

    def live_streams(self) -> list[dict]:
        """The Helix stream objects live right now, most viewers first (truth, no paging)."""
        pop, t = self.population, self.clock.elapsed()
        ch, v = pop.ranked_live(t)
        return pop.streams(ch, t, v)

    def chatters(self, login: str) -> set[str]:
        """Logins in a channel's chat right now (truth, including bots)."""
        pop = self.population
        acc = pop.index_of_login(login)
        if acc is None or acc >= pop.n_channels:
            raise ValueError(f"no channel {login!r} in the simulation")
        return {pop.acc_login[a] for a in pop.chatters(acc, self.clock.elapsed())}

    def stats(self) -> dict[str, int]:
        """Counters: HTTP requests, 401s, 429s; chat connections, joins, dropped joins."""
        with self._http.lock:
            out = {f"http_{k}": v for k, v in self._http.counts.items()}
        out.update({f"chat_{k}": v for k, v in self._chat.server.stats.items()})
        return out

    def raids_sent(self) -> list[tuple[float, str, str, int, int]]:
        """Every raid announced so far: (sim time, raider login, raided login, viewers,
        connection number), one row per connection it went to."""
        return list(self._chat.server.raids_sent)

    # ----- control -----------------------------------------------------------------------
    def advance(self, minutes: float) -> None:
        """Move simulated time forward (streams start and end, viewers drift, chat changes)."""
        self.clock.advance(minutes * 60.0)

    def disconnect_all_chat(self) -> int:
        """Drop every chat connection without notice; returns how many were dropped."""
        return self._chat.call(self._chat.server.disconnect_all())

    def force_reconnect(self) -> int:
        """Send RECONNECT to every chat connection, then close them; returns how many."""
        return self._chat.call(self._chat.server.force_reconnect())

    def arm_fault(self, fault: str, *, times: int = 1, path_prefix: str = "/") -> None:
        """Make the next ``times`` HTTP replies under ``path_prefix`` fail with ``fault``:
        ``malformed_json`` (Helix only), ``server_error``, ``rate_limit`` or ``unauthorized``
        (both Helix only)."""
        allowed = ("malformed_json", "server_error", "rate_limit", "unauthorized")
        if fault not in allowed:
            raise ValueError(f"cannot arm {fault!r}; choose from {', '.join(allowed)}")
        self._http.arm(fault, times=times, path_prefix=path_prefix)

    def revoke_tokens(self) -> None:
        """Invalidate every app token issued so far."""
        self._http.revoke_tokens()

    def stop(self) -> None:
        """Stop both servers (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._chat.stop()
        self._http.stop()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulator(
    *,
    channels: int = 200,
    users: int = 5000,
    seed: int = 0,
    time_scale: float = 1.0,
    faults: tuple[str, ...] | str = (),
    helix_points_per_minute: int = 800,
    chat_joins_per_10s: int = 20,
    igdb_requests_per_s: int = 4,
    max_channels_per_connection: int = 100,
    membership_interval_s: float = 2.0,
    token_ttl_s: int = 5_011_271,
    communities: int | None = None,
    live_fraction: float = 0.85,
    start: datetime | None = None,
    host: str = "127.0.0.1",
    http_port: int = 0,
    chat_port: int = 0,
    **chat_options: float,
) -> Simulator:
    """Generate a world and start its servers; call ``stop()`` when done (see `run_simulator`).

    ``chat_options`` pass further `SimConfig` fields (``messages_per_chatter_per_min``,
    ``max_messages_per_room_per_s``, ``ping_interval_s``, ``pong_timeout_s``,
    ``membership_limit``, ``expire_tokens_after``, ``steam_requests_per_5min``,
    ``chat_disconnect_s``).
    """
    names = parse_faults(faults)
    if helix_points_per_minute < 1 or chat_joins_per_10s < 1 or igdb_requests_per_s < 1:
        raise ValueError("rate limits must be >= 1")
    creds = _fake_credentials(seed)
    config = SimConfig(
        client_id=creds.client_id,
        client_secret=creds.client_secret,
        faults=names,
        helix_points_per_minute=helix_points_per_minute,
        igdb_requests_per_s=igdb_requests_per_s,
        token_ttl_s=token_ttl_s,
        chat_joins_per_10s=chat_joins_per_10s,
        max_channels_per_connection=max_channels_per_connection,
        membership_interval_s=membership_interval_s,
        **chat_options,
    )
    pop = make_population(channels=channels, users=users, seed=seed, communities=communities,
                          live_fraction=live_fraction, start=start)
    clock = AcceleratedClock(time_scale=time_scale, start=pop.start)
    http = SimHTTP(pop, clock, config, host=host, port=http_port)
    chat = ChatThread(ChatServer(pop, clock, config, host=host, port=chat_port))
    http.start()
    try:
        chat.start()
    except BaseException:
        http.stop()
        raise
    sim = Simulator(pop, clock, config, http, chat)
    logger.info("simulated Twitch on %s (chat %s:%d), %d channels, %d users, faults=%s",
                sim.http_url, *sim.chat_address, channels, users, ",".join(names) or "none")
    return sim


@contextmanager
def run_simulator(**kwargs) -> Iterator[Simulator]:
    """Run a simulated Twitch on loopback for the duration of a ``with`` block.

    Takes the keyword arguments of `start_simulator` (``channels=200, users=5000, seed=0,
    time_scale=1.0, faults=(), helix_points_per_minute=800, chat_joins_per_10s=20, ...``).

    Examples
    --------
    >>> import httpx
    >>> with run_simulator(channels=30, users=300, seed=1) as sim:
    ...     env = sim.env()
    ...     r = httpx.post(env["TWITCH_AUTH_URL"] + "/token", params={
    ...         "client_id": env["TWITCH_CLIENT_ID"],
    ...         "client_secret": env["TWITCH_CLIENT_SECRET"],
    ...         "grant_type": "client_credentials"})
    ...     r.json()["token_type"]
    'bearer'
    """
    sim = start_simulator(**kwargs)
    try:
        yield sim
    finally:
        sim.stop()
