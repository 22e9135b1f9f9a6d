"""The collector: snapshots of who is live (Helix) and who is in their chat (anonymous IRC).

One snapshot:

1. page the live streams (most viewed first; `top`, `min_viewers`, `language`, `game_ids`)
   and fetch the broadcasters' profiles not fetched yet in this run;
2. hold chat in the snapshot's channels and listen for `window_s`;
3. store streams, chatters (with their source), per-channel listened seconds and profiles in
   one transaction (`twitchgraph.store.write_snapshot`).

`once=True` joins, listens and leaves. Otherwise (`every_s`) the collector stays joined between
snapshots: presence is kept up to date from JOIN/PART, newly live channels are joined and ended
ones parted, so a snapshot costs no re-joins. When more channels are live than the chat client
may hold, it rotates: each snapshot leaves the channels held longest and joins those listened
least recently; `listens` records how long each live channel was listened to (0 when not at
all). The schedule does not drift: snapshot k starts at start + k * every (slots missed by an
overrunning snapshot are skipped). SIGINT/SIGTERM stop cleanly: the snapshot under way is
discarded whole (marked failed) and the chat connections closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx

from twitchgraph.clock import Clock, SystemClock
from twitchgraph.durations import parse_duration  # re-exported; shared with `evolve --window`
from twitchgraph.store import (
    SnapshotData,
    fail_snapshot,
    open_store,
    recover_stale,
    start_snapshot,
    write_snapshot,
)
from twitchgraph.twitch.auth import AppTokenAuth
from twitchgraph.twitch.chat import ChannelView, ChatClient
from twitchgraph.twitch.credentials import load_credentials, read_env
from twitchgraph.twitch.endpoints import Endpoints
from twitchgraph.twitch.errors import AuthError, MissingCredentials, TwitchError
from twitchgraph.twitch.helix import HelixClient

__all__ = [
    "CollectError",
    "CollectOptions",
    "Collector",
    "SnapshotSummary",
    "parse_duration",
    "run_collector",
]

log = logging.getLogger(__name__)

ProgressFn = Callable[[Mapping[str, Any]], None]


class CollectError(Exception):
    """A snapshot could not be taken (the message says why and what to do)."""


@dataclass(frozen=True)
class CollectOptions:
    """What to collect and how often.

    Attributes:
        top: keep only the `top` most viewed live channels (None: all).
        min_viewers: ignore streams below this many viewers.
        language: only streams in this language (e.g. "it").
        game_ids: only streams of these game/category ids.
        window_s: how long to listen to chat per snapshot.
        every_s: seconds between snapshot starts; None takes one snapshot (`--once`).
        for_s: stop starting snapshots after this long (with `every_s`).
        fetch_users: fetch broadcaster profiles into the users table.
    """

    top: int | None = None
    min_viewers: int = 0
    language: str | None = None
    game_ids: tuple[str, ...] = ()
    window_s: float = 60.0
    every_s: float | None = None
    for_s: float | None = None
    fetch_users: bool = True

    def __post_init__(self) -> None:
        if self.top is not None and self.top < 1:
            raise ValueError("top must be at least 1")
        if self.window_s < 0:
            raise ValueError("window must not be negative")
        if self.every_s is not None and self.every_s <= 0:
            raise ValueError("every must be positive")
        if self.every_s is not None and self.every_s < self.window_s:
            raise ValueError(f"every ({self.every_s:g} s) must not be shorter than the "
                             f"listening window ({self.window_s:g} s)")


@dataclass
class SnapshotSummary:
    """What one snapshot held and cost."""

    snapshot_id: int
    started_at: datetime
    status: str  # complete | failed
    seconds: float = 0.0
    streams: int = 0
    channels_listened: int = 0
    chatters: int = 0  # (channel, user) rows
    users: int = 0  # distinct users over all channels
    pages: int = 0
    requests: int = 0
    rate_limited: int = 0
    malformed: int = 0
    joins: int = 0
    reconnects: int = 0
    error: str = ""
    fatal: bool = False  # retrying cannot help (credentials refused): stop the schedule

    def line(self) -> str:
        """One human line for the log / console."""
        if self.status != "complete":
            return f"snapshot {self.snapshot_id} {self.status}: {self.error}"
        return (
            f"snapshot {self.snapshot_id} complete in {self.seconds:.1f} s: "
            f"{self.streams:,} streams, {self.channels_listened:,} channels listened, "
            f"{self.chatters:,} chatters ({self.users:,} users); {self.pages} pages, "
            f"{self.requests} requests, {self.rate_limited} x 429, {self.malformed} malformed, "
            f"{self.joins} joins, {self.reconnects} reconnects"
        )


class Collector:
    """Takes snapshots into an open store.

    Args:
        con: the store (`open_store`).
        helix: Helix client (sync; called in a worker thread so chat keeps flowing).
        chat: anonymous chat client (its connections live on the running event loop).
        options: what to collect.
        clock: schedule and listening windows (the simulator may run it faster).
        on_progress: called with a dict (phase, pages, streams, channels_joined, users_seen).
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        helix: HelixClient,
        chat: ChatClient,
        options: CollectOptions,
        clock: Clock | None = None,
        on_progress: ProgressFn | None = None,
    ) -> None:
        self.con = con
        self.helix = helix
        self.chat = chat
        self.options = options
        self.clock = clock or SystemClock()
        self.on_progress = on_progress
        self._profiled: set[str] = set()
        self._held_since: dict[str, datetime] = {}
        self._last_listened: dict[str, datetime] = {}
        self._progress: dict[str, Any] = {}
        self._abort = False

    # -- schedule ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None,
                  on_snapshot: Callable[[SnapshotSummary], None] | None = None,
                  ) -> list[SnapshotSummary]:
        """Take one snapshot (`every_s` None) or loop until `for_s` passes or `stop` is set."""
        stop = stop or asyncio.Event()
        summaries: list[SnapshotSummary] = []
        every = self.options.every_s
        start = self.clock.now()
        k = 0
        while not stop.is_set():
            slot = start + timedelta(seconds=(every or 0) * k)
            if every is not None and self.options.for_s is not None and (
                slot >= start + timedelta(seconds=self.options.for_s)
            ):
                break
            wait = (slot - self.clock.now()).total_seconds()
            if wait > 0 and await self._sleep_or_stop(wait, stop):
                break
            summary = await self.snapshot(keep_joined=every is not None, interval_s=every)
            summaries.append(summary)
            if on_snapshot is not None:
                on_snapshot(summary)
            if every is None or summary.fatal:
                break
            elapsed = (self.clock.now() - start).total_seconds()
            next_k = max(k + 1, math.ceil(elapsed / every))
            if next_k > k + 1:
                log.warning("snapshot %d overran the %g s interval; skipping %d slot(s)",
                            summary.snapshot_id, every, next_k - k - 1)
            k = next_k
        return summaries

    async def _sleep_or_stop(self, seconds: float, stop: asyncio.Event) -> bool:
        """Wait `seconds` of clock time; True when `stop` was set meanwhile."""
        sleeper = asyncio.ensure_future(self.clock.asleep(seconds))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()
        return stop.is_set()

    # -- one snapshot ------------------------------------------------------------------------

    async def snapshot(self, *, keep_joined: bool = False,
                       interval_s: float | None = None) -> SnapshotSummary:
        """Take and store one snapshot; a failure marks it failed and is reported, not raised.

        Cancellation (SIGINT/SIGTERM) discards the snapshot whole and re-raises.
        """
        started = self.clock.now()
        snapshot_id = start_snapshot(self.con, started_at=started, interval_s=interval_s)
        helix_before = self.helix.stats.as_dict()
        chat_before = asdict(self.chat.stats)
        self._report(phase="streams", snapshot=snapshot_id, pages=0, streams=0)
        try:
            streams = await asyncio.to_thread(self._fetch_streams)
            users = await asyncio.to_thread(self._fetch_users, streams) \
                if self.options.fetch_users else []
            wanted = list(dict.fromkeys(s["user_login"] for s in streams))
            if keep_joined:
                views = await self._listen_persistent(wanted)
            else:
                views = await self._listen_once(wanted)
            self._report(phase="writing")
            finished = self.clock.now()
            listens = {c: (0.0, False) for c in wanted}
            listens.update({c: (v.listened_s, v.membership) for c, v in views.items()})
            helix_stats = _delta(self.helix.stats.as_dict(), helix_before)
            chat_stats = _delta(asdict(self.chat.stats), chat_before)
            data = SnapshotData(
                started_at=started,
                finished_at=finished,
                streams=streams,
                chatters={c: v.users for c, v in views.items()},
                listens=listens,
                users=users,
                interval_s=interval_s,
                source="collect",
                params=_params(self.options),
                stats={"helix": helix_stats, "chat": chat_stats},
            )
            write_snapshot(self.con, data, snapshot_id=snapshot_id)
            # Only a stored snapshot counts: profiles and listening times of a failed one
            # are fetched and owed again.
            if self.options.fetch_users:
                self._profiled.update(s["user_id"] for s in streams)
            for channel in views:
                self._last_listened[channel] = finished
        except asyncio.CancelledError:
            self._abort = True  # a Helix call still running in its thread stops at its next page
            fail_snapshot(self.con, snapshot_id)
            log.warning("snapshot %d interrupted and discarded", snapshot_id)
            raise
        except (TwitchError, httpx.HTTPError, OSError, duckdb.Error) as exc:
            fail_snapshot(self.con, snapshot_id)
            log.error("snapshot %d failed: %s", snapshot_id, exc)
            return SnapshotSummary(snapshot_id, started, "failed", error=str(exc),
                                   seconds=(self.clock.now() - started).total_seconds(),
                                   fatal=isinstance(exc, AuthError | MissingCredentials))
        return SnapshotSummary(
            snapshot_id=snapshot_id,
            started_at=started,
            status="complete",
            seconds=(finished - started).total_seconds(),
            streams=len(streams),
            channels_listened=len(views),
            chatters=sum(len(v.users) for v in views.values()),
            users=len(set().union(*(v.users.keys() for v in views.values()))),
            pages=int(helix_stats["pages"]),
            requests=int(helix_stats["requests"]),
            rate_limited=int(helix_stats["rate_limited"]),
            malformed=int(helix_stats["malformed"]),
            joins=int(chat_stats["joins_sent"]),
            reconnects=int(chat_stats["reconnects"]),
        )

    def _fetch_streams(self) -> list[dict[str, Any]]:
        o = self.options

        def on_page(pages: int, kept: int) -> None:
            if self._abort:
                raise CollectError("interrupted")
            self._report(pages=pages, streams=kept)

        return self.helix.streams(language=o.language, game_ids=o.game_ids,
                                  min_viewers=o.min_viewers, limit=o.top, on_page=on_page)

    def _fetch_users(self, streams: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = [s["user_id"] for s in streams if s["user_id"] not in self._profiled]
        if not ids:
            return []
        self._report(phase="profiles")
        return self.helix.users(ids=ids)

    async def _listen_once(self, wanted: list[str]) -> dict[str, ChannelView]:
        """Join, listen for the window and leave; in groups when more than `capacity`."""
        views: dict[str, ChannelView] = {}
        capacity = self.chat.capacity
        for i in range(0, len(wanted), capacity):
            group = wanted[i : i + capacity]
            began = self.clock.now()
            taken = await self._join(group)
            await self._listen()
            window = (self.clock.now() - began).total_seconds()
            views.update(self.chat.observe(taken, window_s=window))
            await self.chat.part(taken)
            for channel in taken:
                self._held_since.pop(channel, None)
        return views

    async def _listen_persistent(self, wanted: list[str]) -> dict[str, ChannelView]:
        """Keep holding live channels; join new ones, part ended ones, rotate when too many."""
        held = self.chat.channels
        wanted_set = set(wanted)
        ended = sorted(held - wanted_set)
        if ended:
            await self.chat.part(ended)
            for channel in ended:
                self._held_since.pop(channel, None)
        held = self.chat.channels
        # Channels not held, least recently listened first (never listened: most viewed first).
        never = datetime.min.replace(tzinfo=self.clock.now().tzinfo)
        order = {c: i for i, c in enumerate(wanted)}
        unheld = sorted((c for c in wanted if c not in held),
                        key=lambda c: (self._last_listened.get(c, never), order[c]))
        room = self.chat.capacity - len(held)
        if len(unheld) > room:
            rotate = min(len(unheld) - room, max(1, self.chat.capacity // 2))
            oldest = sorted(held, key=lambda c: (self._held_since.get(c, never), c))[:rotate]
            if oldest:
                log.info("more live channels than chat may hold: rotating %d", len(oldest))
                await self.chat.part(oldest)
                for channel in oldest:
                    self._held_since.pop(channel, None)
                room += len(oldest)
        began = self.clock.now()
        await self._join(unheld[: max(0, room)])
        await self._listen()
        window = max(self.options.window_s, (self.clock.now() - began).total_seconds())
        return self.chat.observe(window_s=window)

    async def _join(self, channels: list[str]) -> list[str]:
        self._report(phase="joining", channels_joined=self.chat.joined,
                     users_seen=self.chat.users_seen)
        ticker = asyncio.create_task(self._tick("joining"))
        try:
            taken = await self.chat.join(channels)
            # JOINs the server dropped are sent again; listen once they are in (or given up).
            await self.chat.wait_joined(taken)
        finally:
            ticker.cancel()
        now = self.clock.now()
        for channel in taken:
            self._held_since.setdefault(channel, now)
        return taken

    async def _listen(self) -> None:
        ticker = asyncio.create_task(self._tick("listening"))
        try:
            await self.clock.asleep(self.options.window_s)
        finally:
            ticker.cancel()

    async def _tick(self, phase: str) -> None:
        while True:
            self._report(phase=phase, channels_joined=self.chat.joined,
                         users_seen=self.chat.users_seen)
            await asyncio.sleep(0.25)

    def _report(self, **changes: Any) -> None:
        self._progress.update(changes)
        if self.on_progress is not None:
            self.on_progress(dict(self._progress))


def _delta(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0) for k in after}


def _params(options: CollectOptions) -> dict[str, Any]:
    params = asdict(options)
    params["game_ids"] = list(options.game_ids)
    return params


# -- wiring for the CLI ------------------------------------------------------------------------

@dataclass(frozen=True)
class ChatLimits:
    """Chat limits (Twitch's by default; the demo relaxes them)."""

    channels_per_connection: int = 100
    max_connections: int = 10
    joins_per_window: int = 20
    join_window_s: float = 10.0


@dataclass
class _Progress:
    """A one-line live progress display on the console."""

    console: Any
    status: Any = None

    def __call__(self, state: Mapping[str, Any]) -> None:
        text = (f"snapshot {state.get('snapshot', '?')}: {state.get('phase', '')} | "
                f"pages {state.get('pages', 0)} | streams {state.get('streams', 0):,} | "
                f"channels joined {state.get('channels_joined', 0):,} | "
                f"users seen {state.get('users_seen', 0):,}")
        if self.status is None:
            self.status = self.console.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def run_collector(
    db: str | Path,
    options: CollectOptions,
    *,
    env: Mapping[str, str] | None = None,
    dotenv_path: str | Path | None = ".env",
    clock: Clock | None = None,
    chat_limits: ChatLimits | None = None,
    console: Any = None,
    transport: httpx.BaseTransport | None = None,
) -> list[SnapshotSummary]:
    """Collect into the store at `db` with credentials and endpoints from env / .env.

    Prints one summary line per snapshot on `console` (a rich Console) and shows live
    progress when it is a terminal. Stale ``running`` snapshots left by a killed run are
    marked failed first. SIGINT/SIGTERM end the run cleanly.

    Raises:
        MissingCredentials: TWITCH_CLIENT_ID / TWITCH_CLIENT_SECRET not set.
        CollectError: a one-off snapshot (`every_s` None) failed.
    """
    values = read_env(env, dotenv_path)
    credentials = load_credentials(values, dotenv_path=None)
    endpoints = Endpoints.from_env(values)
    limits = chat_limits or ChatLimits()
    con = open_store(db)
    try:
        recover_stale(con)
        http = httpx.Client(timeout=httpx.Timeout(15.0, connect=10.0), transport=transport)
        auth = AppTokenAuth(credentials, auth_url=endpoints.auth_url, http=http)
        # Helix rate limits run on real time, whatever clock drives the schedule.
        helix = HelixClient(http=http, auth=auth, api_url=endpoints.api_url)
        try:
            return asyncio.run(_collect(con, helix, endpoints, options, clock, limits, console))
        finally:
            helix.close()
    finally:
        con.close()


async def _collect(con: duckdb.DuckDBPyConnection, helix: HelixClient, endpoints: Endpoints,
                   options: CollectOptions, clock: Clock | None, limits: ChatLimits,
                   console: Any) -> list[SnapshotSummary]:
    progress = _Progress(console) if console is not None and console.is_terminal else None
    stop = asyncio.Event()
    summaries: list[SnapshotSummary] = []

    def show(summary: SnapshotSummary) -> None:
        if progress is not None:
            progress.stop()
        log.info("%s", summary.line())
        if console is not None:
            style = "green" if summary.status == "complete" else "red"
            console.print(summary.line(), style=style, highlight=False, soft_wrap=True)

    async with ChatClient.from_endpoints(
        endpoints, clock=clock, channels_per_connection=limits.channels_per_connection,
        max_connections=limits.max_connections, joins_per_window=limits.joins_per_window,
        join_window_s=limits.join_window_s,
    ) as chat:
        collector = Collector(con, helix=helix, chat=chat, options=options, clock=clock,
                              on_progress=progress)

        def keep(summary: SnapshotSummary) -> None:
            summaries.append(summary)
            show(summary)

        task = asyncio.create_task(collector.run(stop, on_snapshot=keep))
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            if not stop.is_set():
                stop.set()
                task.cancel()  # the snapshot under way is discarded whole

        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, interrupt)
                installed.append(sig)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            if progress is not None:
                progress.stop()
    if stop.is_set() and console is not None:
        console.print("stopped: the snapshot under way (if any) was discarded", style="yellow")
    if summaries and summaries[-1].status != "complete" and (
        options.every_s is None or summaries[-1].fatal
    ):
        raise CollectError(summaries[-1].line())
    return summaries
