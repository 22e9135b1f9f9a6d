"""The simulator's IRC chat server, exercised over raw asyncio sockets."""

from __future__ import annotations

import asyncio
import re

import pytest

from twitchgraph.sim import run_simulator

CAPS = "twitch.tv/membership twitch.tv/tags twitch.tv/commands"


class Irc:
    """A bare IRC line reader/writer, as simple as a test client can be."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.lines: list[str] = []

    @classmethod
    async def connect(cls, sim, *, caps: str = CAPS, nick: str = "justinfan4711") -> Irc:
        host, port = sim.chat_address
        irc = cls(*await asyncio.open_connection(host, port))
        if caps:
            irc.send(f"CAP REQ :{caps}")
        irc.send("PASS SCHMOOPIIE")
        irc.send(f"NICK {nick}")
        return irc

    def send(self, line: str) -> None:
        self.writer.write(line.encode() + b"\r\n")

    async def until(self, pattern: str, timeout: float = 5.0) -> str:
        """Read lines until one matches; returns it (all lines are kept in ``lines``)."""
        rx = re.compile(pattern)
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.reader.readline()
                if not raw:
                    raise EOFError("connection closed")
                line = raw.decode().rstrip("\r\n")
                self.lines.append(line)
                if rx.search(line):
                    return line

    async def collect(self, seconds: float) -> list[str]:
        """Lines arriving during ``seconds``; stops early at EOF."""
        out: list[str] = []
        try:
            async with asyncio.timeout(seconds):
                while True:
                    raw = await self.reader.readline()
                    if not raw:
                        break
                    out.append(raw.decode().rstrip("\r\n"))
        except TimeoutError:
            pass
        self.lines += out
        return out

    async def closed(self, timeout: float = 3.0) -> bool:
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.readline():
                    pass
            return True
        except (TimeoutError, ConnectionError):
            return False

    def close(self) -> None:
        self.writer.close()


@pytest.fixture(scope="module")
def sim():
    with run_simulator(channels=150, users=3000, seed=8, chat_joins_per_10s=500,
                       membership_interval_s=0.3) as s:
        yield s


def _names(lines: list[str], channel: str) -> set[str]:
    names: set[str] = set()
    for line in lines:
        m = re.match(rf"^:\S+ 353 \S+ = #{channel} :(.*)$", line)
        if m:
            names.update(m.group(1).split())
    return names


def _small_room(sim, index: int = 0) -> str:
    small = [s for s in sim.live_streams() if 30 <= s["viewer_count"] < 400]
    return small[index]["user_login"]


def test_login_caps_join_and_names_of_a_small_room(sim):
    async def run():
        irc = await Irc.connect(sim)
        assert await irc.until(r"CAP \* ACK") == f":tmi.twitch.tv CAP * ACK :{CAPS}"
        await irc.until(r" 001 justinfan4711 ")
        channel = _small_room(sim)
        irc.send(f"JOIN #{channel}")
        await irc.until(rf"^:justinfan4711!justinfan4711@justinfan4711\.tmi\.twitch\.tv JOIN "
                        rf"#{channel}$")
        await irc.until(rf" 366 justinfan4711 #{channel} :End of /NAMES list$")
        roomstate = [x for x in irc.lines if " ROOMSTATE " in x]
        assert roomstate and "room-id=" in roomstate[0]
        names = _names(irc.lines, channel)
        irc.close()
        return channel, names

    channel, names = asyncio.run(run())
    truth = sim.chatters(channel)
    assert len(names) > 10
    assert names - {"justinfan4711"} == truth  # NAMES = everyone in the room (+ yourself)


def test_privmsg_lines_carry_tags_and_login(sim):
    async def run():
        irc = await Irc.connect(sim)
        await irc.until(r" 001 ")
        channel = sim.live_streams()[5]["user_login"]
        irc.send(f"JOIN #{channel}")
        line = await irc.until(rf" PRIVMSG #{channel} :", timeout=8)
        irc.close()
        return channel, line

    channel, line = asyncio.run(run())
    m = re.match(r"^@(\S+) :(\w+)!\2@\2\.tmi\.twitch\.tv PRIVMSG #(\w+) :(.+)$", line)
    assert m, line
    tags = dict(kv.split("=", 1) for kv in m.group(1).split(";"))
    login = m.group(2)
    assert m.group(3) == channel
    assert tags["display-name"].lower() == login or not tags["display-name"].isascii()
    pop = sim.population
    acc = pop.index_of_login(login)
    assert tags["user-id"] == str(pop.acc_id[acc])
    assert tags["room-id"] == str(pop.acc_id[pop.index_of_login(channel)])
    assert int(tags["tmi-sent-ts"]) > 1_600_000_000_000
    assert login in sim.chatters(channel)


def test_membership_withheld_in_big_rooms_but_senders_visible(sim):
    big = next(s["user_login"] for s in sim.live_streams() if s["viewer_count"] >= 1000)

    async def run():
        irc = await Irc.connect(sim)
        await irc.until(r" 001 ")
        irc.send(f"JOIN #{big}")
        await irc.until(rf" 366 \S+ #{big} ")
        lines = await irc.collect(1.5)  # five membership intervals
        irc.close()
        return irc.lines, lines

    everything, later = asyncio.run(run())
    assert _names(everything, big) == {"justinfan4711"}
    assert not [x for x in later if re.search(rf" (JOIN|PART) #{big}$", x)]
    senders = {re.match(r"^@\S+ :(\w+)!", x).group(1) for x in later if " PRIVMSG " in x}
    assert len(senders) >= 5


def test_join_and_part_come_in_batches_as_the_room_changes(sim):
    channel = _small_room(sim, 2)

    async def run():
        irc = await Irc.connect(sim)
        await irc.until(r" 001 ")
        irc.send(f"JOIN #{channel}")
        await irc.until(rf" 366 \S+ #{channel} ")
        before = sim.chatters(channel)
        sim.advance(45)  # simulated minutes: viewers come and go
        lines = await irc.collect(1.0)
        irc.send(f"PART #{channel}")
        await irc.until(rf"^:justinfan4711!\S+ PART #{channel}$")
        irc.close()
        return before, lines

    before, lines = asyncio.run(run())
    after = sim.chatters(channel)
    joined = {re.match(r"^:(\w+)!", x).group(1) for x in lines if x.endswith(f"JOIN #{channel}")}
    parted = {re.match(r"^:(\w+)!", x).group(1) for x in lines if x.endswith(f"PART #{channel}")}
    assert joined or parted
    assert joined == after - before and parted == before - after


def test_join_rate_limit_drops_excess_joins():
    with run_simulator(channels=40, users=400, seed=9, chat_joins_per_10s=3) as small:
        channels = [s["user_login"] for s in small.live_streams()[:5]]

        async def run():
            irc = await Irc.connect(small)
            await irc.until(r" 001 ")
            irc.send("JOIN " + ",".join(f"#{c}" for c in channels))
            lines = await irc.collect(1.0)
            irc.close()
            return lines

        lines = asyncio.run(run())
        echoed = [x for x in lines if x.startswith(":justinfan4711!") and " JOIN " in x]
        assert len(echoed) == 3
        assert small.stats()["chat_joins_dropped"] == 2


def test_channel_limit_per_connection_and_unknown_channels():
    with run_simulator(channels=40, users=400, seed=9, max_channels_per_connection=2) as small:
        channels = [s["user_login"] for s in small.live_streams()[:3]]

        async def run():
            irc = await Irc.connect(small)
            await irc.until(r" 001 ")
            irc.send("JOIN " + ",".join(f"#{c}" for c in channels))
            limit = await irc.until(r"msg_channel_limit")
            irc.send("JOIN #no_such_channel_zz")
            missing = await irc.until(r"msg_channel_suspended")
            irc.close()
            return limit, missing

        limit, missing = asyncio.run(run())
        assert f"NOTICE #{channels[2]}" in limit
        assert "NOTICE #no_such_channel_zz" in missing


def test_reconnect_and_disconnect_on_request(sim):
    async def run():
        a = await Irc.connect(sim)
        await a.until(r" 001 ")
        await asyncio.to_thread(sim.force_reconnect)
        await a.until(r"^:tmi\.twitch\.tv RECONNECT$")
        reconnect_closed = await a.closed()
        b = await Irc.connect(sim)
        await b.until(r" 001 ")
        dropped = await asyncio.to_thread(sim.disconnect_all_chat)
        return reconnect_closed, dropped, await b.closed()

    reconnect_closed, dropped, disconnected = asyncio.run(run())
    assert reconnect_closed and disconnected and dropped >= 1


def test_ping_pong_and_anonymous_only():
    with run_simulator(channels=20, users=200, seed=10, ping_interval_s=0.3,
                       pong_timeout_s=0.6) as small:
        async def run():
            good = await Irc.connect(small)
            await good.until(r"^PING :tmi\.twitch\.tv$")
            good.send("PONG :tmi.twitch.tv")
            good.send("PING :hello")
            pong = await good.until(r"^PONG")
            silent = await Irc.connect(small, nick="justinfan99")
            await silent.until(r"^PING")
            silent_closed = await silent.closed(timeout=3)
            named = await Irc.connect(small, nick="somebody")
            refused = await named.until("Login authentication failed")
            good.close()
            return pong, silent_closed, refused

        pong, silent_closed, refused = asyncio.run(run())
        assert pong == "PONG :hello"
        assert silent_closed
        assert refused.startswith(":tmi.twitch.tv NOTICE *")


def test_chat_disconnect_fault_drops_connections():
    with run_simulator(channels=20, users=200, seed=11, faults="chat_disconnect",
                       chat_disconnect_s=(0.3, 0.6)) as faulty:
        async def run():
            irc = await Irc.connect(faulty)
            await irc.until(r" 001 ")
            return await irc.closed(timeout=4)

        assert asyncio.run(run())


def test_usernotice_carries_the_sender_in_the_login_tag():
    with run_simulator(channels=40, users=600, seed=12, usernotice_share=0.5) as small:
        channel = small.live_streams()[0]["user_login"]

        async def run():
            irc = await Irc.connect(small)
            await irc.until(r" 001 ")
            irc.send(f"JOIN #{channel}")
            line = await irc.until(rf" USERNOTICE #{channel} :", timeout=8)
            irc.close()
            return line

        line = asyncio.run(run())
        tags = dict(kv.split("=", 1) for kv in line[1:].split(" ", 1)[0].split(";"))
        assert line.split(" ")[1] == ":tmi.twitch.tv"  # no user in the prefix
        assert tags["msg-id"] == "resub" and "\\s" in tags["system-msg"]
        assert tags["login"] in small.chatters(channel)


def test_without_membership_names_lists_only_yourself_and_no_joins_follow(sim):
    channel = _small_room(sim, 1)

    async def run():
        irc = await Irc.connect(sim, caps="twitch.tv/tags twitch.tv/commands")
        await irc.until(r" 001 ")
        irc.send(f"JOIN #{channel}")
        await irc.until(rf" 366 \S+ #{channel} ")
        sim.advance(45)
        later = await irc.collect(0.8)
        irc.close()
        return irc.lines, later

    lines, later = asyncio.run(run())
    assert _names(lines, channel) == {"justinfan4711"}
    assert not [x for x in later if re.search(rf" (JOIN|PART) #{channel}$", x)]
