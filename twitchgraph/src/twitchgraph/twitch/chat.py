"""Anonymous Twitch chat (IRC) for seeing who is in which channel.

The client logs in as ``justinfan<digits>`` (read-only, no account needed), asks for the
``twitch.tv/membership twitch.tv/tags twitch.tv/commands`` capabilities and joins channels.
Per channel it keeps:

- presence: users from NAMES (353/366, sent on join) and JOIN, minus PART. Twitch sends
  membership only for rooms under 1,000 users, batched every 30-60 s;
- when each user was last seen and how: ``names``, ``join`` or ``message`` (PRIVMSG and
  USERNOTICE senders, the only users visible in big rooms).

Raids arrive in the raided channel's room as ``USERNOTICE`` with ``msg-id=raid`` and the tags
``msg-param-login`` (the raider), ``msg-param-displayName`` and ``msg-param-viewerCount``;
every one is kept (`ChatClient.take_raids`), and one with missing or unreadable tags is
counted in ``ChatStats.raids_malformed`` and skipped. The raider is not a chatter of the room.

No line can stop a reader: numbers are read from ASCII digits only and must fit their column
(`twitchgraph.store.limits`), timestamps must fall between 2011 and a day ahead, logins must
be logins Twitch issues, and a line that is not UTF-8, over the reader's limit or otherwise
unreadable is counted in ``ChatStats.malformed`` and skipped. A tag given twice (Twitch
repeats ``tmi-sent-ts``) keeps its first value.

Presence is valid only while the connection that saw it stays up: when a connection drops,
every room it carried loses its presence until it is rejoined and NAMES arrives again, and
the time it was down does not count as listened.

`ChatClient.observe()` returns, per channel, the present users plus everyone seen within a
window (and since the previous `observe`), how long the channel was listened to on a live
connection, and whether the room sent membership at all. A room not listened to at all
yields no users.

Rules followed: at most `joins_per_window` JOINs per `join_window_s` (Twitch: 20 per 10 s,
counted on real time), at most `channels_per_connection` channels per connection (several
connections when needed, up to `max_connections`), PING answered with PONG, RECONNECT and
dropped connections re-established with backoff and every channel rejoined.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import re
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from twitchgraph.clock import Clock, SystemClock
from twitchgraph.store.chatter_sources import RANK
from twitchgraph.store.limits import COUNT_MAX, EARLIEST, latest
from twitchgraph.twitch.endpoints import Endpoints
from twitchgraph.twitch.retry import Backoff

__all__ = [
    "ChannelView", "ChatClient", "ChatStats", "IrcMessage", "Raid", "is_login", "parse_line",
    "parse_raid", "read_count", "read_sent_ts",
]

log = logging.getLogger(__name__)

CAPABILITIES = "twitch.tv/membership twitch.tv/tags twitch.tv/commands"
_HEALTHY_S = 10.0  # a connection that lasted this long was fine: reset the reconnect backoff

Opener = Callable[[str, int, bool], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


# -- parsing ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class IrcMessage:
    """One IRC line: IRCv3 tags, prefix, command and parameters (trailing included)."""

    command: str
    params: tuple[str, ...] = ()
    prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def nick(self) -> str:
        """The sender's nick from the prefix (``nick!user@host``), lower case."""
        return self.prefix.split("!", 1)[0].lower() if "!" in self.prefix else ""


_TAG_ESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out, chars = [], iter(value)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append(_TAG_ESCAPES.get(nxt, nxt))
        else:
            out.append(ch)
    return "".join(out)


def parse_line(line: str) -> IrcMessage | None:
    """Parse one IRC line; None for an empty or unparsable line."""
    line = line.rstrip("\r\n")
    tags: dict[str, str] = {}
    prefix = ""
    if line.startswith("@"):
        raw, _, line = line.partition(" ")
        for item in raw[1:].split(";"):
            key, _, value = item.partition("=")
            if key and key not in tags:  # a repeated tag keeps its first value
                tags[key] = _unescape(value)
    line = line.lstrip(" ")
    if line.startswith(":"):
        prefix, _, line = line[1:].partition(" ")
    line = line.lstrip(" ")
    if not line:
        return None
    head, sep, trailing = line.partition(" :")
    parts = head.split()
    if not parts:
        return None
    params = parts[1:] + ([trailing] if sep else [])
    return IrcMessage(command=parts[0].upper(), params=tuple(params), prefix=prefix, tags=tags)


@dataclass(frozen=True)
class Raid:
    """One raid seen in chat: `from_login` sent `viewers` viewers to `to_login` at `at`."""

    at: datetime
    from_login: str
    from_name: str
    to_login: str
    viewers: int


_LOGIN = re.compile(r"[a-z0-9_]{1,25}")
# ASCII digits only: str.isdigit() also accepts "²" and "٣", which int() then refuses.
_DIGITS = re.compile(r"[0-9]{1,19}")
_NAME_MAX = 100  # a display name is a login with other capitals (or CJK), never longer


def is_login(text: str) -> bool:
    """True for a login Twitch would issue (lower case ASCII letters, digits, _; 1-25)."""
    return _LOGIN.fullmatch(text) is not None


def read_count(text: str, maximum: int = COUNT_MAX) -> int | None:
    """`text` as a whole number from 0 to `maximum`, written in ASCII digits; else None."""
    if _DIGITS.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= maximum else None


def read_sent_ts(text: str, received_at: datetime) -> datetime | None:
    """A ``tmi-sent-ts`` (Unix milliseconds) as a time between 2011 and a day after
    `received_at`; None when it is not one."""
    ms = read_count(text, maximum=10**15)
    if ms is None:
        return None
    at = datetime.fromtimestamp(ms / 1000, UTC)
    return at if EARLIEST <= at <= latest(received_at) else None


def parse_raid(message: IrcMessage, received_at: datetime) -> Raid | None:
    """The raid a ``USERNOTICE`` with ``msg-id=raid`` announces; None when a tag it needs is
    missing or unreadable (no raider login, a login Twitch would not issue, a viewer count
    that is not ASCII digits or does not fit the store's INTEGER, a ``tmi-sent-ts`` that is
    not a time between 2011 and a day ahead).

    The time is the ``tmi-sent-ts`` tag (Twitch's milliseconds) when present, else
    `received_at`.
    """
    tags = message.tags
    login = tags.get("msg-param-login", "").strip().lower()
    channel = (message.params[0] if message.params else "").lstrip("#").lower()
    count = read_count(tags.get("msg-param-viewerCount", "").strip())
    if not is_login(login) or not is_login(channel) or count is None:
        return None
    at: datetime | None = received_at
    sent = tags.get("tmi-sent-ts", "")
    if sent:
        at = read_sent_ts(sent, received_at)
        if at is None:
            return None
    name = tags.get("msg-param-displayName", "").strip()[:_NAME_MAX] or login
    return Raid(at=at, from_login=login, from_name=name, to_login=channel, viewers=count)


# -- state -----------------------------------------------------------------------------------

@dataclass
class ChannelView:
    """What one channel yielded: users (login -> source), seconds listened, membership seen."""

    users: dict[str, str]
    listened_s: float
    membership: bool


@dataclass
class ChatStats:
    connections: int = 0  # connections established (including reconnects)
    reconnects: int = 0
    joins_sent: int = 0
    parts_sent: int = 0
    lines: int = 0
    messages: int = 0  # PRIVMSG / USERNOTICE seen
    raids: int = 0  # raid USERNOTICEs kept
    raids_malformed: int = 0  # raid USERNOTICEs skipped for missing or unreadable tags
    malformed: int = 0  # other lines skipped: not UTF-8, too long, a login Twitch never issues
    drops: int = 0  # connections lost (each clears the presence of the rooms it carried)


@dataclass
class _Channel:
    name: str
    joined_at: datetime | None = None  # our own JOIN echoed (or sent)
    observed_at: datetime | None = None  # last `observe()`
    present: dict[str, str] = field(default_factory=dict)  # login -> names|join
    seen: dict[str, tuple[datetime, str]] = field(default_factory=dict)  # login -> (t, source)
    membership: bool = False
    names_reset: bool = True  # the next NAMES list replaces presence (after a (re)join)
    live_since: datetime | None = None  # our JOIN confirmed on a connection still up
    # live spans closed by a drop since the last `observe()`: (from, to)
    spans: list[tuple[datetime, datetime]] = field(default_factory=list)


@dataclass
class _Connection:
    index: int
    channels: set[str] = field(default_factory=set)  # wanted on this connection
    sent: dict[str, float] = field(default_factory=dict)  # JOIN sent (loop time), this socket
    confirmed: set[str] = field(default_factory=set)  # our JOIN echoed on this socket
    joining: set[str] = field(default_factory=set)  # waiting for the join limiter
    writer: asyncio.StreamWriter | None = None
    task: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    failed: asyncio.Event = field(default_factory=asyncio.Event)  # down, backing off
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _JoinLimiter:
    """At most `n` JOINs in any `window_s` seconds of real (monotonic) time.

    The window is stretched by `slack` (10 %): the server counts JOINs when it reads them,
    and a batch read late looks denser than it was sent; a JOIN over its limit is lost.
    """

    def __init__(self, n: int, window_s: float, slack: float = 1.1) -> None:
        if n < 1 or window_s <= 0:
            raise ValueError("join limit needs n >= 1 and window_s > 0")
        self.n, self.window_s = n, window_s * slack
        self._times: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._lock:
            while True:
                now = loop.time()
                while self._times and now - self._times[0] >= self.window_s:
                    self._times.popleft()
                if len(self._times) < self.n:
                    self._times.append(now)
                    return
                await asyncio.sleep(self.window_s - (now - self._times[0]) + 1e-3)


async def _open_tcp(host: str, port: int, tls: bool
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    context = ssl.create_default_context() if tls else None
    return await asyncio.open_connection(host, port, ssl=context,
                                         server_hostname=host if tls else None,
                                         limit=1 << 20)


def _seconds(start: datetime, end: datetime, floor: datetime | None, ceiling: datetime
             ) -> float:
    """Seconds of [start, end] that fall within [floor, ceiling] (no floor: from start)."""
    start = max(start, floor) if floor is not None else start
    return max(0.0, (min(end, ceiling) - start).total_seconds())


# -- the client ------------------------------------------------------------------------------

class ChatClient:
    """Anonymous read-only Twitch chat over one or more IRC connections.

    Args:
        host, port, tls: the chat server (`Endpoints.chat_address()`, `Endpoints.chat_tls`).
        clock: stamps when users were seen and drives `observe` windows.
        channels_per_connection: channels one connection may hold (Twitch: 100).
        max_connections: connections to open at most; `capacity` is their product.
        joins_per_window, join_window_s: JOIN rate limit shared by all connections.
        nick: login to use; default ``justinfan`` + random digits (from `seed`).
        open_connection: coroutine `(host, port, tls) -> (reader, writer)`; tests inject one.
        reconnect_backoff_s, max_backoff_s: first and largest wait before reconnecting.
        idle_timeout_s: reconnect when the server sends nothing for this long.
        connect_timeout_s: how long `join` waits for a connection before leaving the JOIN to
            the connection's own (re)join loop.
        join_confirm_timeout_s: a JOIN not echoed within this is sent again (Twitch drops
            JOINs over the rate limit without a word).

    Use as ``async with ChatClient(...) as chat:``; `join`, `part`, `observe`.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        tls: bool = True,
        clock: Clock | None = None,
        channels_per_connection: int = 100,
        max_connections: int = 10,
        joins_per_window: int = 20,
        join_window_s: float = 10.0,
        nick: str | None = None,
        seed: int | None = None,
        open_connection: Opener | None = None,
        reconnect_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        idle_timeout_s: float = 360.0,
        connect_timeout_s: float = 30.0,
        join_confirm_timeout_s: float = 10.0,
    ) -> None:
        if channels_per_connection < 1 or max_connections < 1:
            raise ValueError("channels_per_connection and max_connections must be >= 1")
        self.host, self.port, self.tls = host, port, tls
        self._clock = clock or SystemClock()
        self.channels_per_connection = channels_per_connection
        self.max_connections = max_connections
        self._limiter = _JoinLimiter(joins_per_window, join_window_s)
        self.nick = (nick or f"justinfan{random.Random(seed).randint(10_000, 99_999_999)}"
                     ).lower()
        self._open = open_connection or _open_tcp
        self.reconnect_backoff_s = reconnect_backoff_s
        self.max_backoff_s = max_backoff_s
        self.idle_timeout_s = idle_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.join_confirm_timeout_s = join_confirm_timeout_s
        self.unavailable: set[str] = set()  # channels the server refused (suspended, ...)
        self.last_error = ""  # why a connection last failed or dropped ('' if never)
        self.stats = ChatStats()
        self._connections: list[_Connection] = []
        self._channels: dict[str, _Channel] = {}
        self._where: dict[str, _Connection] = {}
        self._raids: list[Raid] = []
        self._closing = False

    @classmethod
    def from_endpoints(cls, endpoints: Endpoints, **kwargs: object) -> ChatClient:
        host, port = endpoints.chat_address()
        return cls(host=host, port=port, tls=endpoints.chat_tls, **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return (f"ChatClient(host={self.host!r}, port={self.port}, tls={self.tls}, "
                f"nick={self.nick!r}, channels={len(self._where)})")

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- public API --------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """How many channels the client may hold at once."""
        return self.channels_per_connection * self.max_connections

    @property
    def channels(self) -> set[str]:
        """Channels held (JOIN requested and not parted)."""
        return set(self._where)

    @property
    def connected(self) -> int:
        """Connections currently up."""
        return sum(1 for conn in self._connections if conn.writer is not None)

    @property
    def joined(self) -> int:
        """Channels whose JOIN the server confirmed."""
        return sum(1 for c in self._channels.values() if c.joined_at is not None)

    @property
    def users_seen(self) -> int:
        """Distinct (channel, user) pairs currently known."""
        return sum(len(c.present.keys() | c.seen.keys()) for c in self._channels.values())

    def take_raids(self) -> list[Raid]:
        """The raids seen since the last call, oldest first (and forget them)."""
        raids, self._raids = self._raids, []
        return raids

    def give_back_raids(self, raids: list[Raid]) -> None:
        """Put back raids taken for a snapshot that was not stored, for the next one."""
        self._raids[:0] = raids

    async def join(self, channels: Iterable[str]) -> list[str]:
        """Join `channels` (logins); returns those taken, in order, up to `capacity`.

        Waits until their JOINs were sent (paced by the join rate limit).
        """
        taken: list[str] = []
        for name in channels:
            name = name.lower().lstrip("#")
            if not name or name in self._where:
                continue
            conn = self._connection_with_room()
            if conn is None:
                break
            conn.channels.add(name)
            self._where[name] = conn
            self._channels[name] = _Channel(name)
            taken.append(name)
        unreachable: set[int] = set()
        for name in taken:
            conn = self._where.get(name)
            if conn is None or self._closing or conn.index in unreachable:
                continue
            if conn.writer is None:
                # Not connected (yet): once up, the connection joins all its channels itself.
                # A refused connection says so at once; no need to wait out the timeout.
                up = asyncio.ensure_future(conn.ready.wait())
                down = asyncio.ensure_future(conn.failed.wait())
                try:
                    await asyncio.wait({up, down}, timeout=self.connect_timeout_s,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    up.cancel()
                    down.cancel()
                if conn.writer is None:
                    unreachable.add(conn.index)
                    # info: the caller reports what it cost (e.g. a failed snapshot's reason)
                    log.info("chat connection %d not up (%s); its channels will be joined "
                                "when it connects", conn.index,
                                self.last_error or f"none after {self.connect_timeout_s:.0f} s")
                    continue
            await self._send_join(conn, name)
        return taken

    async def wait_joined(self, channels: Iterable[str], *, timeout: float | None = None) -> int:
        """Wait until the server confirmed the JOIN of each of `channels` still held (JOINs
        it dropped are sent again meanwhile), or until `timeout` (default: the confirmation
        timeout plus 5 s). Returns how many are confirmed."""
        names = [c.lower().lstrip("#") for c in channels]

        def pending() -> list[str]:
            return [n for n in names if n in self._channels and n not in self.unavailable
                    and self._channels[n].joined_at is None]

        def all_down() -> bool:  # nothing can be confirmed until a connection is back
            return all(c.failed.is_set() and c.writer is None for c in self._connections)

        try:
            async with asyncio.timeout(self.join_confirm_timeout_s + 5.0
                                       if timeout is None else timeout):
                while pending() and not all_down():
                    await asyncio.sleep(0.05)
        except TimeoutError:
            log.warning("%d channel(s) not confirmed joined; listening anyway", len(pending()))
        return sum(1 for n in names if n in self._channels
                   and self._channels[n].joined_at is not None)

    async def part(self, channels: Iterable[str]) -> None:
        """Leave `channels` and forget what was seen in them."""
        for name in channels:
            name = name.lower().lstrip("#")
            conn = self._where.pop(name, None)
            self._channels.pop(name, None)
            self.unavailable.discard(name)
            if conn is None:
                continue
            conn.channels.discard(name)
            conn.confirmed.discard(name)
            if conn.sent.pop(name, None) is not None:
                await self._write(conn, f"PART #{name}")
                self.stats.parts_sent += 1

    def observe(
        self, channels: Iterable[str] | None = None, *, window_s: float
    ) -> dict[str, ChannelView]:
        """Per channel: present users plus users seen in the last `window_s` seconds (and
        since the previous `observe`: a user belongs to one window only).

        Also returns how long each channel was listened to on a live connection since it was
        joined or last observed, whichever is later; and restarts that count. A channel not
        listened to at all (its connection down the whole time) yields no users.
        """
        now = self._clock.now()
        names = self._where.keys() if channels is None else [c.lower() for c in channels]
        views: dict[str, ChannelView] = {}
        for name in names:
            state = self._channels.get(name)
            if state is None:
                continue
            since = now - timedelta(seconds=window_s)
            if state.observed_at is not None:
                since = max(since, state.observed_at)
            spans = list(state.spans)
            if state.live_since is not None:
                spans.append((state.live_since, now))
            floor = state.observed_at
            listened = sum(_seconds(a, b, floor, now) for a, b in spans)
            if not any(_seconds(a, b, since, now) for a, b in spans):
                listened = 0.0  # live before the window, not in it: heard nothing of it
            users = dict(state.present)
            for login, (t, source) in list(state.seen.items()):
                if t < since:
                    if login not in state.present:
                        del state.seen[login]  # bounded memory over long runs
                    continue
                if login not in users or RANK[source] < RANK[users[login]]:
                    users[login] = source
            state.observed_at, state.spans = now, []
            views[name] = ChannelView(users if listened > 0 else {}, listened,
                                      state.membership)
        return views

    async def close(self) -> None:
        """Close every connection."""
        self._closing = True
        for conn in self._connections:
            conn.ready.set()
            if conn.task is not None:
                conn.task.cancel()
        for conn in self._connections:
            if conn.task is not None:
                try:
                    await conn.task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing anyway
                    pass
            await self._drop_writer(conn)

    # -- connections -------------------------------------------------------------------------

    def _connection_with_room(self) -> _Connection | None:
        for conn in self._connections:
            if len(conn.channels) < self.channels_per_connection:
                return conn
        if len(self._connections) >= self.max_connections:
            return None
        conn = _Connection(index=len(self._connections))
        self._connections.append(conn)
        conn.task = asyncio.create_task(self._run(conn), name=f"twitch-chat-{conn.index}")
        return conn

    async def _run(self, conn: _Connection) -> None:
        failures = 0
        while not self._closing:
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    reader, writer = await self._open(self.host, self.port, self.tls)
            except (TimeoutError, OSError) as exc:
                failures += 1
                await self._pause(conn, failures, f"cannot connect to chat: {exc}")
                continue
            conn.writer, conn.sent, conn.confirmed = writer, {}, set()
            conn.failed.clear()
            self.stats.connections += 1
            connected_at = asyncio.get_running_loop().time()
            try:
                await self._write(conn, f"CAP REQ :{CAPABILITIES}")
                await self._write(conn, "PASS SCHMOOPIIE")  # any password works anonymously
                await self._write(conn, f"NICK {self.nick}")
                conn.ready.set()
                rejoin = asyncio.create_task(self._rejoin(conn))
                watchdog = asyncio.create_task(self._confirm_joins(conn))
                try:
                    reason = await self._read(conn, reader)
                finally:
                    rejoin.cancel()
                    watchdog.cancel()
                lived = asyncio.get_running_loop().time() - connected_at
                # A drop after a while of good service starts the backoff afresh.
                failures = 0 if reason == "reconnect" else (
                    1 if lived >= _HEALTHY_S else failures + 1)
            except (OSError, ConnectionError) as exc:
                failures += 1
                reason = f"connection error: {exc}"
            conn.ready.clear()
            self._lose(conn)
            await self._drop_writer(conn)
            if self._closing:
                break
            self.stats.reconnects += 1
            if reason == "reconnect":
                log.info("chat connection %d: server asked to reconnect", conn.index)
            else:
                await self._pause(conn, failures, f"chat connection {conn.index} lost ({reason})")

    def _lose(self, conn: _Connection) -> None:
        """The connection is gone: its rooms' presence goes with it (what NAMES and JOIN
        said is no longer known to hold), and their listening stops until rejoined."""
        self.stats.drops += 1
        now = self._clock.now()
        for name in conn.channels:
            state = self._channels.get(name)
            if state is None:
                continue
            if state.live_since is not None:
                state.spans.append((state.live_since, now))
                state.live_since = None
            state.present.clear()
            state.names_reset = True

    async def _pause(self, conn: _Connection, failures: int, why: str) -> None:
        conn.failed.set()
        wait = Backoff(self.reconnect_backoff_s, self.max_backoff_s).delay(failures)
        # The same failure again (an unreachable host) is logged once, not at every retry.
        level = logging.INFO if why == self.last_error else logging.WARNING
        self.last_error = why
        log.log(level, "%s; reconnecting in %.1f s", why, wait)
        await asyncio.sleep(wait)

    async def _rejoin(self, conn: _Connection) -> None:
        for name in sorted(conn.channels):
            await self._send_join(conn, name)

    async def _confirm_joins(self, conn: _Connection) -> None:
        """Send a JOIN again when the server never echoed it.

        Twitch silently drops JOINs over the rate limit; the only sign is the missing echo.
        """
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.join_confirm_timeout_s / 2))
            now = loop.time()
            stale = [name for name, at in conn.sent.items()
                     if name not in conn.confirmed and name not in self.unavailable
                     and now - at > self.join_confirm_timeout_s]
            for name in stale:
                log.info("no confirmation for JOIN #%s; sending it again", name)
                conn.sent.pop(name, None)
                await self._send_join(conn, name)

    async def _send_join(self, conn: _Connection, name: str) -> None:
        # `joining` keeps join() and the (re)join loop from both spending a limiter slot on
        # the same channel.
        if (name in conn.sent or name in conn.joining or name not in conn.channels
                or conn.writer is None):
            return
        conn.joining.add(name)
        try:
            await self._limiter.acquire()
        finally:
            conn.joining.discard(name)
        if name in conn.sent or name not in conn.channels or conn.writer is None:
            return
        conn.sent[name] = asyncio.get_running_loop().time()
        state = self._channels.get(name)
        if state is not None:
            state.names_reset = True
        await self._write(conn, f"JOIN #{name}")
        self.stats.joins_sent += 1

    async def _write(self, conn: _Connection, line: str) -> None:
        writer = conn.writer
        if writer is None:
            return
        async with conn.write_lock:
            try:
                writer.write((line + "\r\n").encode())
                await writer.drain()
            except (OSError, ConnectionError) as exc:
                log.debug("chat write failed on connection %d: %s", conn.index, exc)

    async def _drop_writer(self, conn: _Connection) -> None:
        writer, conn.writer = conn.writer, None
        if writer is None:
            return
        writer.close()
        try:
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
        except (TimeoutError, OSError, ConnectionError):
            pass

    async def _read(self, conn: _Connection, reader: asyncio.StreamReader) -> str:
        """Handle lines until the connection ends; returns why it ended."""
        while True:
            try:
                # asyncio.timeout, not wait_for: no inner task that a cancel could miss
                async with asyncio.timeout(self.idle_timeout_s):
                    raw = await reader.readline()
            except TimeoutError:
                return "idle timeout"
            except (ValueError, asyncio.LimitOverrunError):
                self.stats.malformed += 1  # a line over the limit: skip it
                continue
            if not raw:
                return "closed by server"
            self.stats.lines += 1
            try:
                message = parse_line(raw.decode("utf-8"))
            except UnicodeDecodeError:
                self.stats.malformed += 1
                continue
            if message is None:
                continue
            if message.command == "PING":
                await self._write(conn, "PONG :" + (message.params[-1][:200] if message.params
                                                    else "tmi.twitch.tv"))
            elif message.command == "RECONNECT":
                return "reconnect"
            else:
                try:
                    self._handle(message, conn)
                except Exception:  # noqa: BLE001 - one odd line must not end the reader
                    self.stats.malformed += 1
                    log.warning("skipped a chat line that could not be handled: %.200r", raw,
                                exc_info=True)

    # -- membership bookkeeping --------------------------------------------------------------

    def _handle(self, message: IrcMessage, conn: _Connection | None = None) -> None:
        command = message.command
        if command == "USERNOTICE" and message.tags.get("msg-id") == "raid":
            raid = parse_raid(message, self._clock.now())
            if raid is None:
                self.stats.raids_malformed += 1
                log.info("skipped a raid notice with missing or unreadable tags: %s",
                         {k: v for k, v in message.tags.items() if k.startswith("msg-param")})
            else:
                self.stats.raids += 1
                self._raids.append(raid)
        elif command in ("PRIVMSG", "USERNOTICE"):
            channel = self._channel(message.params[0] if message.params else "")
            login = (message.tags.get("login") or message.nick).lower()
            if channel is not None and login:
                if not is_login(login):
                    self.stats.malformed += 1
                    return
                self.stats.messages += 1
                self._see(channel, login, "message")
        elif command == "JOIN":
            channel = self._channel(message.params[0] if message.params else "")
            login = message.nick
            if channel is None or not login:
                return
            if login == self.nick:
                now = self._clock.now()
                channel.joined_at = channel.joined_at or now
                if channel.live_since is None:
                    channel.live_since = now
                if conn is not None:
                    conn.confirmed.add(channel.name)
                return
            if not is_login(login):
                self.stats.malformed += 1
                return
            channel.membership = True
            channel.present.setdefault(login, "join")
            self._see(channel, login, "join")
        elif command == "PART":
            channel = self._channel(message.params[0] if message.params else "")
            if channel is not None and is_login(message.nick) and message.nick != self.nick:
                channel.membership = True
                channel.present.pop(message.nick, None)
        elif command == "353" and len(message.params) >= 4:
            channel = self._channel(message.params[2])
            if channel is None:
                return
            if channel.names_reset:
                channel.present.clear()
                channel.names_reset = False
            odd = 0
            for login in message.params[3].split():
                login = login.lstrip("@+").lower()
                if not is_login(login):
                    odd += 1
                elif login != self.nick:
                    channel.membership = True
                    channel.present[login] = "names"
                    self._see(channel, login, "names")
            if odd:
                self.stats.malformed += 1  # the line's good names are kept
        elif command == "NOTICE" and message.tags.get("msg-id") in (
            "msg_channel_suspended", "msg_channel_blocked", "tos_ban"
        ):
            target = (message.params[0] if message.params else "").lstrip("#").lower()
            self.unavailable.add(target)
            log.info("cannot join #%s: %s", target, message.params[-1] if message.params else "")

    def _channel(self, param: str) -> _Channel | None:
        return self._channels.get(param.lstrip("#").lower())

    def _see(self, channel: _Channel, login: str, source: str) -> None:
        # Last seen now; the source kept is the best one this user came by.
        previous = channel.seen.get(login)
        if previous is not None and RANK[previous[1]] < RANK[source]:
            source = previous[1]
        channel.seen[login] = (self._clock.now(), source)
