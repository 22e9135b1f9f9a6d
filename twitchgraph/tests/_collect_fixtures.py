"""Shared test peers for helper C's tests: a fake clock and a small fake Twitch for MockTransport.

The fake Twitch answers the token, streams, users and games endpoints from in-memory lists;
tests change its behaviour through plain attributes (a queue of scripted replies, a token
that has gone stale, a rate-limit bucket). It is a test peer: no product code imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

from twitchgraph.twitch.auth import AppTokenAuth
from twitchgraph.twitch.credentials import Credentials
from twitchgraph.twitch.helix import HelixClient

API = "https://api.test/helix"
AUTH = "https://id.test/oauth2"
CLIENT_ID = "cid-test-123"
SECRET = "s3cr3t-DO-NOT-LEAK-9f8e7d"


class FakeClock:
    """A clock whose time moves only when someone sleeps on it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.t = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds > 0:
            self.t += timedelta(seconds=seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def make_stream(i: int, viewers: int, *, language: str = "en", game: str = "g1") -> dict:
    login = f"Chan{i:05d}"
    return {
        "id": f"s{i}",
        "user_id": f"u{i}",
        "user_login": login.lower(),
        "user_name": login,
        "game_id": game,
        "game_name": f"Game {game}",
        "type": "live",
        "title": f"stream {i}",
        "viewer_count": viewers,
        "started_at": "2026-01-01T00:00:00Z",
        "language": language,
        "thumbnail_url": "",
        "tags": ["English"],
        "is_mature": False,
    }


class FakeTwitch:
    """An in-memory Helix + id service for `httpx.MockTransport`.

    Pages of `/streams` are served from `self.streams` (kept sorted by viewers); the cursor
    encodes the offset. `script` is a list of callables consulted first: each takes the
    request and returns a response or None (not handled); a handled entry is consumed.
    """

    def __init__(self, streams: list[dict], clock: FakeClock | None = None) -> None:
        self.streams = sorted(streams, key=lambda s: -s["viewer_count"])
        self.clock = clock or FakeClock()
        self.requests: list[httpx.Request] = []
        self.token_requests: list[httpx.Request] = []
        self.sent_auth: list[str | None] = []
        self.valid_tokens: set[str] = set()
        self.tokens_issued = 0
        self.expires_in = 3600
        # (predicate, reply or exception): answers the first matching request, once.
        self.script: list[tuple[Callable[[httpx.Request], bool], Any]] = []
        self.loop_cursor_after: int | None = None  # offset whose cursor points back to 0
        self.bucket: tuple[float, float] | None = None  # (capacity, points per second)
        self._level = 0.0
        self._level_at = 0.0
        self.hook: Callable[[httpx.Request], None] | None = None  # runs before each API call
        self.users: dict[str, dict] = {}
        self.games: dict[str, dict] = {}

    # -- transport ---------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=self.transport())

    def helix(self, **kwargs: Any) -> HelixClient:
        http = self.client()
        auth = AppTokenAuth(Credentials(CLIENT_ID, SECRET), auth_url=AUTH, http=http,
                            clock=self.clock)
        kwargs.setdefault("clock", self.clock)
        return HelixClient(http=http, auth=auth, api_url=API, **kwargs)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/token"):
            return self._token(request)
        self.requests.append(request)
        # Auth re-signs the same Request object on a retry: keep the header as it was sent.
        self.sent_auth.append(request.headers.get("authorization"))
        if self.hook is not None:
            self.hook(request)
        for entry in list(self.script):
            predicate, reply = entry
            if predicate(request):
                self.script.remove(entry)
                if isinstance(reply, Exception):
                    raise reply
                return reply
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if request.headers.get("client-id") != CLIENT_ID or token not in self.valid_tokens:
            return httpx.Response(401, json={"status": 401, "message": "Invalid OAuth token"})
        headers = self._take_point()
        if headers is None:
            return httpx.Response(429, headers=self._limit_headers(),
                                  json={"status": 429, "message": "Too Many Requests"})
        path = request.url.path.removeprefix("/helix")
        if path == "/streams":
            body = self._streams_page(request)
        elif path == "/users":
            body = self._lookup(request, self.users, {"id": "id", "login": "login"})
        elif path == "/games":
            body = self._lookup(request, self.games, {"id": "id", "name": "name"})
        else:
            return httpx.Response(404, json={"message": "not found"})
        return httpx.Response(200, json=body, headers=headers)

    # -- endpoints ---------------------------------------------------------------------------

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests.append(request)
        form = parse_qs(request.content.decode())
        if form.get("client_id") != [CLIENT_ID] or form.get("client_secret") != [SECRET]:
            return httpx.Response(403, json={"status": 403, "message": "invalid client secret"})
        self.tokens_issued += 1
        token = f"tok{self.tokens_issued}"
        self.valid_tokens.add(token)
        return httpx.Response(200, json={"access_token": token, "expires_in": self.expires_in,
                                         "token_type": "bearer"})

    def _streams_page(self, request: httpx.Request) -> dict:
        params = request.url.params
        first = int(params.get("first", "20"))
        offset = int(params["after"].removeprefix("c")) if "after" in params else 0
        rows = self.streams
        if "language" in params:
            rows = [s for s in rows if s["language"] == params["language"]]
        games = params.get_list("game_id")
        if games:
            rows = [s for s in rows if s["game_id"] in games]
        page = rows[offset : offset + first]
        nxt = offset + first
        cursor = f"c{nxt}" if nxt < len(rows) else None
        if self.loop_cursor_after is not None and offset >= self.loop_cursor_after:
            cursor = "c0"  # the looping last cursor seen on Twitch
        return {"data": page, "pagination": {"cursor": cursor} if cursor else {}}

    def _lookup(self, request: httpx.Request, table: dict, keys: dict[str, str]) -> dict:
        found = []
        for param, field in keys.items():
            for value in request.url.params.get_list(param):
                found += [r for r in table.values() if str(r[field]).lower() == value.lower()]
        return {"data": found}

    # -- rate limit ----------------------------------------------------------------------------

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _refill(self) -> None:
        capacity, rate = self.bucket  # type: ignore[misc]
        now = self._now()
        self._level = min(capacity, self._level + (now - self._level_at) * rate)
        self._level_at = now

    def start_bucket(self, capacity: float, per_minute: float, level: float | None = None) -> None:
        self.bucket = (capacity, per_minute / 60.0)
        self._level = capacity if level is None else level
        self._level_at = self._now()

    def _limit_headers(self) -> dict[str, str]:
        capacity, rate = self.bucket  # type: ignore[misc]
        reset = self._now() + (capacity - self._level) / rate
        return {"Ratelimit-Limit": str(int(capacity)), "Ratelimit-Remaining":
                str(int(self._level)), "Ratelimit-Reset": str(int(reset + 0.999))}

    def _take_point(self) -> dict[str, str] | None:
        if self.bucket is None:
            return {}
        self._refill()
        if self._level < 1:
            return None
        self._level -= 1
        return self._limit_headers()


def is_streams(after: str | None = None) -> Callable[[httpx.Request], bool]:
    """Matches a /streams request (with this `after` cursor, when given)."""

    def predicate(request: httpx.Request) -> bool:
        if not request.url.path.endswith("/streams"):
            return False
        return after is None or request.url.params.get("after") == after

    return predicate


class FastClock:
    """Real time run `scale` times faster: lets a 60 s window pass in 60/scale s of real time."""

    def __init__(self, scale: float = 100.0, start: datetime | None = None) -> None:
        import time

        self._monotonic = time.monotonic
        self.scale = scale
        self.start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._t0 = self._monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(self._monotonic() - self._t0) * self.scale)

    def sleep(self, seconds: float) -> None:
        import time

        time.sleep(max(0.0, seconds) / self.scale)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.scale)


class FakeChatServer:
    """A tiny IRC server on loopback that speaks just enough Twitch chat for the tests.

    `rooms` maps channel -> users sent as NAMES on join; channels in `big_rooms` send no
    membership (like Twitch rooms over 1,000 users). The test pushes lines with `send` and
    drops connections with `drop`. Every line received is logged in `received` as
    (monotonic time, connection index, line).
    """

    def __init__(self) -> None:
        self.rooms: dict[str, list[str]] = {}
        self.big_rooms: set[str] = set()
        self.on_join_lines: dict[str, list[str]] = {}  # sent right after a JOIN's NAMES
        self.ignore_joins = 0  # the next N JOINs get no answer (as over Twitch's rate limit)
        self.received: list[tuple[float, int, str]] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.nicks: dict[int, str] = {}
        self.joined: dict[int, set[str]] = {}
        self.connections = 0
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.joined_event = asyncio.Event()

    async def start(self) -> FakeChatServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for w in self.writers:
            w.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def lines(self, prefix: str) -> list[str]:
        return [line for _, _, line in self.received if line.startswith(prefix)]

    def joins(self) -> list[tuple[float, int, str]]:
        return [(t, c, line[6:]) for t, c, line in self.received if line.startswith("JOIN #")]

    async def send(self, line: str, channel: str | None = None) -> None:
        """Send `line` to every connection (that joined `channel`, when given)."""
        for index, writer in enumerate(self.writers):
            if writer.is_closing() or (channel and channel not in self.joined.get(index, ())):
                continue
            writer.write((line + "\r\n").encode())
            await writer.drain()

    async def drop(self) -> None:
        """Close every connection abruptly (as a network drop would)."""
        for writer in self.writers:
            writer.close()

    async def wait_joined(self, channel: str, count: int = 1, timeout: float = 5.0) -> None:
        async def _wait() -> None:
            while sum(1 for _, _, ch in self.joins() if ch == channel) < count:
                await asyncio.sleep(0.005)

        await asyncio.wait_for(_wait(), timeout)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        index = len(self.writers)
        self.writers.append(writer)
        self.connections += 1
        self.joined[index] = set()
        try:
            while raw := await reader.readline():
                line = raw.decode().rstrip("\r\n")
                self.received.append((loop.time(), index, line))
                if line.startswith("NICK "):
                    self.nicks[index] = line[5:]
                    writer.write(f":tmi.twitch.tv 001 {line[5:]} :Welcome, GLHF!\r\n".encode())
                elif line.startswith("JOIN #") and self.ignore_joins > 0:
                    self.ignore_joins -= 1
                elif line.startswith("JOIN #"):
                    channel = line[6:]
                    nick = self.nicks.get(index, "justinfan1")
                    self.joined[index].add(channel)
                    out = [f":{nick}!{nick}@{nick}.tmi.twitch.tv JOIN #{channel}"]
                    if channel not in self.big_rooms:
                        users = self.rooms.get(channel, [])
                        for i in range(0, max(1, len(users)), 3):  # several 353 lines
                            out.append(f":{nick}.tmi.twitch.tv 353 {nick} = #{channel} :"
                                       + " ".join(users[i : i + 3]))
                        out.append(f":{nick}.tmi.twitch.tv 366 {nick} #{channel} "
                                   ":End of /NAMES list")
                    out += self.on_join_lines.get(channel, [])
                    writer.write("".join(x + "\r\n" for x in out).encode())
                elif line.startswith("PART #"):
                    self.joined[index].discard(line[6:])
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


def start_and_kill(script: str, *args: str, delay: float) -> None:
    """Run ``python -c script *args``, wait for it to print "ready", let it work ``delay``
    seconds, then SIGKILL it: a crash at an arbitrary moment, as `kill -9` makes one."""
    child = subprocess.Popen([sys.executable, "-c", script, *args],
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    time.sleep(delay)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()


@contextlib.contextmanager
def store_held_by_another_process(db: Path | str, *, read_only: bool = False
                                  ) -> Iterator[None]:
    """Hold the DuckDB file `db` open from a child process (a writer, or a reader with
    `read_only`) for the body of the `with`; DuckDB then refuses this process a write
    connection (and, for a writer, any connection)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; "
         "con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == '1'); "
         "print('held', flush=True); time.sleep(60)", str(db), "1" if read_only else "0"],
        stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def empty_env_file(folder: Path) -> Path:
    """An existing, empty --env-file: keeps a developer's own .env out of a test."""
    path = folder / "empty.env"
    path.write_text("")
    return path


@contextlib.contextmanager
def terminal_ctrl_c() -> Iterator[None]:
    """Ctrl-C as a terminal's foreground job has it (Python's own SIGINT handler), for tests
    that send SIGINT to themselves: a suite started in the background inherits SIGINT
    ignored. The previous handler comes back after."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
