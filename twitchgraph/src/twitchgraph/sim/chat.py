"""The simulator's chat server: Twitch IRC over plain TCP on loopback, in its own asyncio loop.

What a client sees (lines end with CRLF):

- Login: ``PASS`` (anything, optional) then ``NICK justinfan<digits>`` -> ``001``-``004``,
  ``375``/``372``/``376``. Any other nick gets ``NOTICE * :Login authentication failed`` and is
  closed: the simulator models anonymous chat only.
- ``CAP REQ :twitch.tv/membership twitch.tv/tags twitch.tv/commands`` -> ``CAP * ACK :...``
  (``NAK`` with the same list if one is unknown); ``CAP LS`` lists the three.
- ``JOIN #a,#b``: each channel costs one join from a budget of ``chat_joins_per_10s`` per 10 real
  seconds shared by all connections. A JOIN beyond it is silently dropped - no echo, no NAMES -
  which is how Twitch treats excess JOINs; the client notices the missing confirmation.
  A connection holding ``max_channels_per_connection`` channels gets
  ``@msg-id=msg_channel_limit NOTICE #chan`` (simulator's own id) and the JOIN is dropped.
  An unknown channel gets ``@msg-id=msg_channel_suspended NOTICE``. Otherwise: the JOIN echo,
  ``ROOMSTATE`` (with tags), ``353`` lines then ``366`` (listing only yourself without
  membership).
- Membership (with ``twitch.tv/membership``): NAMES list the room's users (and yourself) only
  when the room has fewer than ``membership_limit`` users - the room size being the stream's
  viewer count - otherwise just yourself. After that, JOIN/PART lines for users arriving or
  leaving come in batches every ``membership_interval_s``, again only for rooms under the limit.
  An offline channel's room is empty.
- ``PRIVMSG`` from chatters at ``messages_per_chatter_per_min`` (capped per room), with tags when
  ``twitch.tv/tags`` was requested (``display-name``, ``user-id``, ``room-id``, ``id``,
  ``tmi-sent-ts`` in simulated milliseconds, ...) and the login in the prefix, so big rooms still
  show their message senders. To clients with tags and commands, a share
  (``usernotice_share``) comes as ``USERNOTICE`` (resubscriptions) whose sender is in the
  ``login`` tag, with the escaped ``system-msg`` Twitch sends.
- Raids (`Population.raids_between`): when a stream ends and raids, clients with tags and
  commands in the raided channel's room get ``USERNOTICE`` with ``msg-id=raid``,
  ``msg-param-login``, ``msg-param-displayName`` and ``msg-param-viewerCount``, stamped
  (``tmi-sent-ts``) with the simulated time of the raid. Every raid sent is recorded in
  `ChatServer.raids_sent`, the truth a test compares the collected raids with.
- ``PING :tmi.twitch.tv`` every ``ping_interval_s``; no PONG within ``pong_timeout_s`` closes the
  connection. A client ``PING :x`` gets ``PONG :x``. A client that stops reading (over 4 MB
  queued) is dropped, as Twitch drops slow readers.
- ``:tmi.twitch.tv RECONNECT`` then a close when asked (`ChatServer.force_reconnect`) or with
  the ``chat_disconnect`` fault; `ChatServer.disconnect_all` just drops connections.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Coroutine
from typing import Any

import numpy as np

from twitchgraph.sim.clock import AcceleratedClock
from twitchgraph.sim.config import SimConfig
from twitchgraph.sim.population import Population

__all__ = ["ChatServer", "ChatThread"]

logger = logging.getLogger(__name__)

_HOST = "tmi.twitch.tv"
_CAPS = ("twitch.tv/membership", "twitch.tv/tags", "twitch.tv/commands")
_ANON = re.compile(r"^justinfan\d+$")
_PHRASES = ("LUL", "gg", "hello chat", "KEKW", "that was close", "PogChamp", "lol", "nice one",
            "first time here!", "W", "monkaS", "what game is this?", "hype", "o7", "Kappa",
            "clip it", "let's go", "F", "good morning", "any tips?")
_COLORS = ("#FF0000", "#0000FF", "#008000", "#B22222", "#FF7F50", "#9ACD32", "#FF4500",
           "#2E8B57", "#DAA520", "#D2691E", "#5F9EA0", "#1E90FF", "#FF69B4", "#8A2BE2")


class _JoinBudget:
    """Joins allowed per 10 real seconds, shared by every connection."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.times: deque[float] = deque()

    def allow(self) -> bool:
        now = time.monotonic()
        while self.times and now - self.times[0] >= 10.0:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return False
        self.times.append(now)
        return True


class _Room:
    __slots__ = ("channel", "login", "known")

    def __init__(self, channel: int, login: str) -> None:
        self.channel = channel
        self.login = login
        self.known: set[int] | None = None  # users announced so far; None = no membership


class _Conn:
    def __init__(self, server: ChatServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, number: int) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.number = number
        self.nick: str | None = None
        self.caps: set[str] = set()
        self.rooms: dict[str, _Room] = {}
        self.closed = False
        self.rng = np.random.default_rng([server.pop.seed, number])
        self.last_ping = time.monotonic()
        self.awaiting_pong: float | None = None
        self.last_membership = time.monotonic()
        self.drop_at: float | None = None
        self.msg_salt = 0
        if server.config.has("chat_disconnect"):
            lo, hi = server.config.chat_disconnect_s
            self.drop_at = time.monotonic() + float(self.rng.uniform(lo, hi))

    # ----- output ------------------------------------------------------------------------
    def send(self, line: str) -> None:
        if not self.closed and not self.writer.is_closing():
            self.writer.write(line.encode("utf-8") + b"\r\n")

    def close(self, *, abort: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        transport = self.writer.transport
        if abort:
            transport.abort()
        else:
            self.writer.close()

    async def reconnect(self, grace_s: float = 0.3) -> None:
        self.send(f":{_HOST} RECONNECT")
        await asyncio.sleep(grace_s)
        self.close()

    # ----- input -------------------------------------------------------------------------
    def handle(self, line: str) -> None:
        if line.startswith("@"):
            line = line.split(" ", 1)[1] if " " in line else ""
        if line.startswith(":"):
            line = line.split(" ", 1)[1] if " " in line else ""
        cmd, _, rest = line.partition(" ")
        cmd = cmd.upper()
        if cmd == "PASS":
            return
        if cmd == "NICK":
            self._nick(rest.strip().lower())
        elif cmd == "CAP":
            self._cap(rest)
        elif cmd == "PING":
            self.send(f"PONG :{rest.lstrip(':') or _HOST}")
        elif cmd == "PONG":
            self.awaiting_pong = None
        elif cmd == "JOIN":
            self._join(rest)
        elif cmd == "PART":
            for chan in rest.split(" ")[0].split(","):
                login = chan.lstrip("#").lower()
                if self.rooms.pop(login, None) is not None:
                    self.send(f":{self.nick}!{self.nick}@{self.nick}.{_HOST} PART #{login}")
        elif cmd == "PRIVMSG":
            pass  # anonymous users cannot talk; Twitch drops these silently
        elif cmd == "QUIT":
            self.close()
        elif cmd:
            self.send(f":{_HOST} 421 {self.nick or '*'} {cmd} :Unknown command")

    def _nick(self, nick: str) -> None:
        if not _ANON.match(nick):
            self.send(f":{_HOST} NOTICE * :Login authentication failed")
            self.close()
            return
        self.nick = nick
        for code, text in (("001", "Welcome, GLHF!"), ("002", f"Your host is {_HOST}"),
                           ("003", "This server is rather new"), ("004", "-"),
                           ("375", "-"), ("372", "You are in a maze of twisty passages, all "
                                                   "alike."), ("376", ">")):
            self.send(f":{_HOST} {code} {nick} :{text}")

    def _cap(self, rest: str) -> None:
        sub, _, args = rest.partition(" ")
        sub = sub.upper()
        if sub == "LS":
            self.send(f":{_HOST} CAP * LS :{' '.join(_CAPS)}")
        elif sub == "REQ":
            wanted = args.lstrip(":").split()
            if all(c in _CAPS for c in wanted):
                self.caps.update(wanted)
                self.send(f":{_HOST} CAP * ACK :{' '.join(wanted)}")
            else:
                self.send(f":{_HOST} CAP * NAK :{' '.join(wanted)}")

    def _join(self, rest: str) -> None:
        if self.nick is None:
            self.send(f":{_HOST} 451 * :You have not registered")
            return
        server = self.server
        tags = "twitch.tv/tags" in self.caps
        for chan in rest.split(" ")[0].split(","):
            login = chan.lstrip("#").lower()
            if not login or login in self.rooms:
                continue
            if not server.budget.allow():
                server.stats["joins_dropped"] += 1
                logger.debug("chat: JOIN #%s dropped by the join rate limit", login)
                continue
            acc = server.pop.index_of_login(login)
            if acc is None or acc >= server.pop.n_channels:
                prefix = "@msg-id=msg_channel_suspended " if tags else ""
                self.send(f"{prefix}:{_HOST} NOTICE #{login} :This channel does not exist or "
                          "has been suspended.")
                continue
            if len(self.rooms) >= server.config.max_channels_per_connection:
                server.stats["joins_over_channel_limit"] += 1
                prefix = "@msg-id=msg_channel_limit " if tags else ""
                self.send(f"{prefix}:{_HOST} NOTICE #{login} :You are in too many channels on "
                          f"this connection ({server.config.max_channels_per_connection}).")
                continue
            server.stats["joins"] += 1
            room = _Room(acc, login)
            self.rooms[login] = room
            nick = self.nick
            self.send(f":{nick}!{nick}@{nick}.{_HOST} JOIN #{login}")
            if tags:
                self.send(f"@emote-only=0;followers-only=-1;r9k=0;room-id="
                          f"{server.pop.acc_id[acc]};slow=0;subs-only=0 :{_HOST} ROOMSTATE "
                          f"#{login}")
            present = None
            if "twitch.tv/membership" in self.caps:
                present = server.membership(acc)
                room.known = present
            # Without membership (or in a big room) NAMES still comes, listing only yourself.
            names = [nick] + [server.pop.acc_login[a] for a in sorted(present or ())]
            for i in range(0, len(names), 40):
                self.send(f":{nick}.{_HOST} 353 {nick} = #{login} :" + " ".join(names[i: i + 40]))
            self.send(f":{nick}.{_HOST} 366 {nick} #{login} :End of /NAMES list")

    # ----- periodic output ---------------------------------------------------------------
    def tick(self, dt: float) -> None:
        cfg, now = self.server.config, time.monotonic()
        if self.nick is None:
            return
        if self.writer.transport.get_write_buffer_size() > 4 << 20:
            logger.debug("chat: %s does not read, closing", self.nick)
            self.close(abort=True)
            return
        if self.drop_at is not None and now >= self.drop_at:
            self.drop_at = None
            if self.rng.random() < 0.5:
                asyncio.get_running_loop().create_task(self.reconnect())
            else:
                self.close(abort=True)
            return
        if self.awaiting_pong is not None and now - self.awaiting_pong > cfg.pong_timeout_s:
            logger.debug("chat: no PONG from %s, closing", self.nick)
            self.close()
            return
        if self.awaiting_pong is None and now - self.last_ping >= cfg.ping_interval_s:
            self.last_ping = now
            self.awaiting_pong = now
            self.send(f"PING :{_HOST}")
        if "twitch.tv/membership" in self.caps and now - self.last_membership >= \
                cfg.membership_interval_s:
            self.last_membership = now
            for room in self.rooms.values():
                self._membership(room)
        for room in self.rooms.values():
            self._messages(room, dt)

    def raid(self, t: float, raider: int, target: int, viewers: int) -> bool:
        """Announce a raid in the raided room if this client is there; True when sent."""
        pop, login = self.server.pop, self.server.pop.acc_login[target]
        if (login not in self.rooms or "twitch.tv/tags" not in self.caps
                or "twitch.tv/commands" not in self.caps):
            return False
        who, name = pop.acc_login[raider], pop.acc_display[raider]
        sent_ms = int((pop.start.timestamp() + t) * 1000)
        self.send(f"@badge-info=;badges=;color=;display-name={name};emotes=;flags=;"
                  f"id={uuid.UUID(bytes=self.rng.bytes(16), version=4)};login={who};mod=0;"
                  f"msg-id=raid;msg-param-displayName={name};msg-param-login={who};"
                  f"msg-param-viewerCount={viewers};room-id={pop.acc_id[target]};subscriber=0;"
                  f"system-msg={viewers}\\sraiders\\sfrom\\s{name}\\shave\\sjoined!;"
                  f"tmi-sent-ts={sent_ms};user-id={pop.acc_id[raider]};user-type= "
                  f":{_HOST} USERNOTICE #{login}")
        return True

    def _membership(self, room: _Room) -> None:
        present = self.server.membership(room.channel)
        if present is None:
            room.known = None  # the room grew past the limit: Twitch goes quiet
            return
        known = room.known or set()
        login = self.server.pop.acc_login
        for a in sorted(present - known):
            u = login[a]
            self.send(f":{u}!{u}@{u}.{_HOST} JOIN #{room.login}")
        for a in sorted(known - present):
            u = login[a]
            self.send(f":{u}!{u}@{u}.{_HOST} PART #{room.login}")
        room.known = present

    def _messages(self, room: _Room, dt: float) -> None:
        server, cfg, pop = self.server, self.server.config, self.server.pop
        t = server.clock.elapsed()
        present = pop.chatters(room.channel, t)
        if len(present) == 0:
            return
        rate = min(cfg.max_messages_per_room_per_s,
                   len(present) * cfg.messages_per_chatter_per_min / 60.0)
        n = int(self.rng.poisson(rate * dt))
        if n == 0:
            return
        self.msg_salt += 1
        senders = pop.message_senders(room.channel, t, n, self.number * 1_000_003 + self.msg_salt)
        tags = "twitch.tv/tags" in self.caps
        sent_ms = int(server.clock.now().timestamp() * 1000)
        room_id = pop.acc_id[room.channel]
        notices = tags and "twitch.tv/commands" in self.caps
        for a in senders:
            u = pop.acc_login[a]
            text = _PHRASES[int(self.rng.integers(len(_PHRASES)))]
            if notices and self.rng.random() < cfg.usernotice_share:
                months = int(self.rng.integers(1, 40))
                self.send(f"@badge-info=subscriber/{months};badges=subscriber/0;color=;"
                          f"display-name={pop.acc_display[a]};emotes=;flags=;"
                          f"id={uuid.UUID(bytes=self.rng.bytes(16), version=4)};login={u};mod=0;"
                          f"msg-id=resub;msg-param-cumulative-months={months};"
                          "msg-param-sub-plan=1000;room-id="
                          f"{room_id};subscriber=1;system-msg={pop.acc_display[a]}\\ssubscribed"
                          f"\\sat\\sTier\\s1.;tmi-sent-ts={sent_ms};user-id={pop.acc_id[a]};"
                          f"user-type= :{_HOST} USERNOTICE #{room.login} :{text}")
                server.stats["usernotices"] += 1
                continue
            prefix = ""
            if tags:
                prefix = (f"@badge-info=;badges=;color={_COLORS[a % len(_COLORS)]};"
                          f"display-name={pop.acc_display[a]};emotes=;first-msg=0;flags=;"
                          f"id={uuid.UUID(bytes=self.rng.bytes(16), version=4)};"
                          f"mod=0;returning-chatter=0;room-id={room_id};subscriber=0;"
                          f"tmi-sent-ts={sent_ms};turbo=0;user-id={pop.acc_id[a]};user-type= ")
            self.send(f"{prefix}:{u}!{u}@{u}.{_HOST} PRIVMSG #{room.login} :{text}")
            server.stats["messages"] += 1


class ChatServer:
    """Asyncio IRC server; create and use it inside one event loop (see `ChatThread`)."""

    def __init__(self, pop: Population, clock: AcceleratedClock, config: SimConfig, *,
                 host: str = "127.0.0.1", port: int = 0, tick_s: float = 0.2) -> None:
        self.pop = pop
        self.clock = clock
        self.config = config
        self.host = host
        self.port = port
        self.tick_s = tick_s
        self.budget = _JoinBudget(config.chat_joins_per_10s)
        self.conns: set[_Conn] = set()
        self.stats = {"connections": 0, "joins": 0, "joins_dropped": 0,
                      "joins_over_channel_limit": 0, "messages": 0, "usernotices": 0,
                      "raids": 0}
        # (sim time, raider login, raided login, viewers, connection number) of raids sent
        self.raids_sent: list[tuple[float, str, str, int, int]] = []
        self._raids_until: float | None = None
        self._server: asyncio.base_events.Server | None = None
        self._ticker: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    def membership(self, channel: int) -> set[int] | None:
        """Users a membership-enabled client is told about, or None above the size limit."""
        t = self.clock.elapsed()
        if self.pop.room_size(channel, t) >= self.config.membership_limit:
            return None
        return {int(a) for a in self.pop.chatters(channel, t)}

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())
        return self.port

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for conn in list(self.conns):
            conn.close(abort=True)
        if self._tasks:
            # let client handlers see their closed sockets and end on their own
            await asyncio.wait(list(self._tasks), timeout=2)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def disconnect_all(self) -> int:
        conns = list(self.conns)
        for conn in conns:
            conn.close(abort=True)
        return len(conns)

    async def force_reconnect(self) -> int:
        conns = list(self.conns)
        await asyncio.gather(*(c.reconnect() for c in conns))
        return len(conns)

    async def _tick_loop(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            dt, last = now - last, now
            self._raids()
            for conn in list(self.conns):
                try:
                    conn.tick(dt)
                except Exception:  # one bad connection must not stop the others
                    logger.exception("chat: tick failed for connection %d", conn.number)
                    conn.close(abort=True)

    def _raids(self) -> None:
        t = self.clock.elapsed()
        since, self._raids_until = self._raids_until, t
        if since is None:
            return
        cfg = self.config
        for at, raider, target, viewers in self.pop.raids_between(
                since, t, share=cfg.raid_share, home_weight=cfg.raid_home_weight):
            for conn in list(self.conns):
                if conn.nick is not None and conn.raid(at, raider, target, viewers):
                    self.stats["raids"] += 1
                    self.raids_sent.append((at, self.pop.acc_login[raider],
                                            self.pop.acc_login[target], viewers, conn.number))

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats["connections"] += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        conn = _Conn(self, reader, writer, self.stats["connections"])
        self.conns.add(conn)
        try:
            while not conn.closed:
                raw = await reader.readline()
                if not raw:
                    break
                conn.handle(raw.decode("utf-8", "replace").rstrip("\r\n"))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.conns.discard(conn)
            conn.close()


class ChatThread:
    """Runs a `ChatServer` in its own event loop on a daemon thread."""

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="twitchsim-chat", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.server.close())
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def start(self) -> int:
        self.thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self.server.port

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        """Run a coroutine on the chat loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
