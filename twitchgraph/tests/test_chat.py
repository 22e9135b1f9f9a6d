"""Anonymous chat client against a tiny loopback IRC server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from twitchgraph.twitch.chat import ChatClient, parse_line

from ._collect_fixtures import FakeChatServer, FakeClock


def run(test: Callable[[FakeChatServer], Awaitable[None]]) -> None:
    async def main() -> None:
        server = await FakeChatServer().start()
        try:
            await asyncio.wait_for(test(server), timeout=15)
        finally:
            await server.stop()

    asyncio.run(main())


def client(server: FakeChatServer, **kwargs) -> ChatClient:
    kwargs.setdefault("joins_per_window", 1000)
    kwargs.setdefault("join_window_s", 1.0)
    kwargs.setdefault("reconnect_backoff_s", 0.01)
    return ChatClient(host="127.0.0.1", port=server.port, tls=False, seed=1, **kwargs)


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async def _wait() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(_wait(), timeout)


def test_parse_line_tags_prefix_and_trailing() -> None:
    msg = parse_line("@badge-info=;display-name=Foo\\sBar;login=foo;user-id=42 "
                     ":foo!foo@foo.tmi.twitch.tv PRIVMSG #chan :hello there : world\r\n")
    assert msg is not None
    assert msg.command == "PRIVMSG" and msg.params == ("#chan", "hello there : world")
    assert msg.tags["display-name"] == "Foo Bar" and msg.tags["badge-info"] == ""
    assert msg.nick == "foo"
    names = parse_line(":me.tmi.twitch.tv 353 me = #chan :a b c")
    assert names is not None and names.command == "353"
    assert names.params == ("me", "=", "#chan", "a b c")
    assert parse_line("PING :tmi.twitch.tv").params == ("tmi.twitch.tv",)
    assert parse_line("") is None


def test_anonymous_login_capabilities_and_ping() -> None:
    async def scenario(server: FakeChatServer) -> None:
        async with client(server) as chat:
            await chat.join(["Chan1"])
            await server.wait_joined("chan1")
            await server.send("PING :tmi.twitch.tv")
            await until(lambda: bool(server.lines("PONG")))
        assert server.lines("CAP REQ") == [
            "CAP REQ :twitch.tv/membership twitch.tv/tags twitch.tv/commands"]
        (nick,) = server.lines("NICK ")
        assert nick.startswith("NICK justinfan") and nick[len("NICK justinfan"):].isdigit()
        assert server.lines("PONG") == ["PONG :tmi.twitch.tv"]

    run(scenario)


def test_names_join_part_and_message_sources() -> None:
    async def scenario(server: FakeChatServer) -> None:
        server.rooms["small"] = ["alice", "bob", "carol", "dave"]
        server.big_rooms.add("huge")
        async with client(server) as chat:
            assert await chat.join(["small", "huge"]) == ["small", "huge"]
            await until(lambda: chat.joined == 2 and chat.users_seen >= 4)
            await server.send(":erin!erin@erin.tmi.twitch.tv JOIN #small")
            await server.send(":bob!bob@bob.tmi.twitch.tv PART #small")
            await server.send("@display-name=Alice;user-id=1 :alice!alice@alice.tmi.twitch.tv "
                              "PRIVMSG #small :hi")
            await server.send("@login=fan1;display-name=FAN1 :tmi.twitch.tv USERNOTICE #huge "
                              ":subscribed")
            await server.send("@user-id=9 :Fan2!fan2@fan2.tmi.twitch.tv PRIVMSG #huge :pog")
            await until(lambda: chat.stats.messages == 3)
            views = chat.observe(window_s=60)
        small, huge = views["small"], views["huge"]
        # bob left but was seen within the window, so he still counts
        assert small.users == {"alice": "names", "bob": "names", "carol": "names",
                               "dave": "names", "erin": "join"}
        assert small.membership
        assert huge.users == {"fan1": "message", "fan2": "message"}
        assert not huge.membership

    run(scenario)


def test_disconnect_mid_window_reconnects_rejoins_and_keeps_users() -> None:
    async def scenario(server: FakeChatServer) -> None:
        server.rooms["room"] = ["u1", "u2"]
        server.big_rooms.add("big")
        async with client(server) as chat:
            await chat.join(["room", "big"])
            await until(lambda: chat.users_seen == 2)
            await server.send(":x!x@x.tmi.twitch.tv PRIVMSG #big :before the drop")
            await until(lambda: chat.stats.messages == 1)
            await server.drop()
            await server.wait_joined("room", count=2)  # rejoined on a new connection
            await server.wait_joined("big", count=2)
            await server.send(":u3!u3@u3.tmi.twitch.tv JOIN #room")
            await server.send(":y!y@y.tmi.twitch.tv PRIVMSG #big :after the drop")
            await until(lambda: chat.stats.messages == 2 and chat.users_seen == 5)
            views = chat.observe(window_s=60)
            assert chat.stats.reconnects == 1
        assert set(views["room"].users) == {"u1", "u2", "u3"}
        assert views["big"].users == {"x": "message", "y": "message"}
        assert server.connections == 2

    run(scenario)


def test_reconnect_command_reconnects_at_once() -> None:
    async def scenario(server: FakeChatServer) -> None:
        async with client(server, reconnect_backoff_s=5.0) as chat:  # no backoff on RECONNECT
            await chat.join(["a"])
            await server.wait_joined("a")
            await server.send(":tmi.twitch.tv RECONNECT")
            await server.wait_joined("a", count=2, timeout=2.0)
            assert chat.stats.reconnects == 1

    run(scenario)


def test_join_rate_limit_is_respected() -> None:
    async def scenario(server: FakeChatServer) -> None:
        async with client(server, joins_per_window=3, join_window_s=0.25) as chat:
            await chat.join([f"c{i}" for i in range(8)])
            await until(lambda: len(server.joins()) == 8)
        times = [t for t, _, _ in server.joins()]
        for i, t in enumerate(times):
            in_window = [u for u in times[i:] if u - t < 0.25 - 0.01]
            assert len(in_window) <= 3
        assert times[-1] - times[0] >= 0.45  # 8 joins at 3 per 0.25 s need two full waits

    run(scenario)


def test_channels_per_connection_and_capacity() -> None:
    async def scenario(server: FakeChatServer) -> None:
        async with client(server, channels_per_connection=2, max_connections=2) as chat:
            taken = await chat.join([f"c{i}" for i in range(5)])
            assert taken == ["c0", "c1", "c2", "c3"] and chat.capacity == 4
            await until(lambda: len(server.joins()) == 4)
            by_conn: dict[int, list[str]] = {}
            for _, conn, channel in server.joins():
                by_conn.setdefault(conn, []).append(channel)
            assert sorted(map(sorted, by_conn.values())) == [["c0", "c1"], ["c2", "c3"]]
            await chat.part(["c1"])
            assert await chat.join(["c4"]) == ["c4"]  # the freed slot is reused
            await until(lambda: bool(server.lines("PART #c1")))

    run(scenario)


def test_observe_window_and_listened_seconds() -> None:
    async def scenario(server: FakeChatServer) -> None:
        clock = FakeClock()
        server.big_rooms.add("big")
        async with client(server, clock=clock) as chat:
            await chat.join(["big"])
            await until(lambda: chat.joined == 1)
            await server.send(":old!old@old.tmi.twitch.tv PRIVMSG #big :early")
            await until(lambda: chat.stats.messages == 1)
            clock.advance(100)
            await server.send(":new!new@new.tmi.twitch.tv PRIVMSG #big :late")
            await until(lambda: chat.stats.messages == 2)
            clock.advance(20)
            first = chat.observe(window_s=60)["big"]
            clock.advance(30)
            second = chat.observe(window_s=60)["big"]
        assert first.users == {"new": "message"}
        assert first.listened_s == 120
        assert second.listened_s == 30  # counted since the previous observe

    run(scenario)


def test_a_join_without_confirmation_is_sent_again() -> None:
    async def scenario(server: FakeChatServer) -> None:
        server.rooms["quiet"] = ["ann"]
        server.ignore_joins = 1  # the first JOIN is dropped silently, like Twitch over its limit
        async with client(server, join_confirm_timeout_s=0.2) as chat:
            await chat.join(["quiet"])
            assert await chat.wait_joined(["quiet"], timeout=3.0) == 1
            assert len(server.joins()) == 2  # sent, dropped, sent again
            await until(lambda: chat.users_seen == 1)
            assert chat.observe(window_s=60)["quiet"].users == {"ann": "names"}

    run(scenario)


def test_join_returns_promptly_when_chat_is_unreachable() -> None:
    async def scenario() -> None:
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()  # nothing listens on `port` any more
        loop = asyncio.get_running_loop()
        async with ChatClient(host="127.0.0.1", port=port, tls=False, connect_timeout_s=0.3,
                              reconnect_backoff_s=0.05) as chat:
            start = loop.time()
            taken = await chat.join([f"c{i}" for i in range(5)])
            assert taken == [f"c{i}" for i in range(5)]
            assert loop.time() - start < 1.5  # one wait for the connection, not one per channel
            assert chat.joined == 0

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_each_join_spends_one_slot_of_the_limit() -> None:
    async def scenario(server: FakeChatServer) -> None:
        # 6 channels at 3 per 0.2 s (x1.1 slack): two windows, not four
        async with client(server, joins_per_window=3, join_window_s=0.2) as chat:
            loop = asyncio.get_running_loop()
            start = loop.time()
            await chat.join([f"c{i}" for i in range(6)])
            await chat.wait_joined(chat.channels, timeout=3.0)
            assert loop.time() - start < 0.2 * 1.1 * 2
        assert len(server.joins()) == 6

    run(scenario)


def test_raids_are_kept_and_malformed_raid_tags_are_counted_and_skipped() -> None:
    raid = ("@badge-info=;display-name=Big\\sRaider;login=bigraider;msg-id=raid;"
            "msg-param-displayName=Big\\sRaider;msg-param-login=BigRaider;"
            "msg-param-viewerCount={count};room-id=7;system-msg=1234\\sraiders;"
            "tmi-sent-ts={ts} :tmi.twitch.tv USERNOTICE #{channel}")

    async def scenario(server: FakeChatServer) -> None:
        async with client(server) as chat:
            await chat.join(["small", "other"])
            await until(lambda: chat.joined == 2)
            await server.send(raid.format(count=1234, ts=1_700_000_000_000, channel="small"))
            await server.send(raid.format(count=7, ts="", channel="other"))
            # unreadable: a count that is no number, no count, no raider login
            await server.send(raid.format(count="lots", ts=1, channel="small"))
            await server.send(raid.format(count=5, ts=1, channel="small")
                              .replace("msg-param-viewerCount=5;", ""))
            await server.send("@msg-id=raid;msg-param-viewerCount=3 :tmi.twitch.tv "
                              "USERNOTICE #small")
            await until(lambda: chat.stats.raids + chat.stats.raids_malformed == 5)
            raids = chat.take_raids()
            views = chat.observe(window_s=60)
            assert chat.take_raids() == []
        assert chat.stats.raids == 2 and chat.stats.raids_malformed == 3
        first, second = raids
        assert (first.from_login, first.from_name, first.to_login, first.viewers) == (
            "bigraider", "Big Raider", "small", 1234)
        assert first.at.timestamp() == 1_700_000_000
        assert (second.to_login, second.viewers) == ("other", 7)
        assert second.at.tzinfo is not None
        # a raider is not a chatter of the raided room
        assert "bigraider" not in views["small"].users

    run(scenario)


# -- hostile lines (issue 27 item 3) ---------------------------------------------------------

_RAID = ("@msg-id=raid;msg-param-login=raider;msg-param-displayName=Raider;"
         "msg-param-viewerCount={count};tmi-sent-ts={ts} :tmi.twitch.tv USERNOTICE #{room}")
# (what it is, the raw line, what it counts as: None = an ordinary line, kept)
HOSTILE = [
    ("a unicode digit as a raid's viewer count", _RAID.format(count="²", ts="", room="r1"),
     "raids_malformed"),
    ("a 30-digit viewer count", _RAID.format(count="9" * 30, ts="", room="r1"),
     "raids_malformed"),
    ("a viewer count over INTEGER", _RAID.format(count=2**31, ts="", room="r1"),
     "raids_malformed"),
    ("a 20-digit tmi-sent-ts", _RAID.format(count=5, ts="9" * 20, room="r2"), "raids_malformed"),
    ("a tmi-sent-ts before 2011", _RAID.format(count=5, ts=1000, room="r2"), "raids_malformed"),
    ("a tmi-sent-ts in arabic-indic digits", _RAID.format(count=5, ts="١٧٠٠٠٠٠٠٠٠٠٠٠", room="r2"),
     "raids_malformed"),
    ("a huge tmi-sent-ts on a message", "@tmi-sent-ts=99999999999999999999;login=ts_huge "
     ":ts_huge!ts_huge@x PRIVMSG #r3 :hi", None),
    ("invalid UTF-8", b"@login=\xff\xfe :bad!bad@x PRIVMSG #r3 :\xc3\x28", "malformed"),
    ("a 10 KB message", ":talker!talker@x PRIVMSG #r4 :" + "x" * 10_000, None),
    ("a 10 KB login", f":{'n' * 10_000}!n@x PRIVMSG #r4 :hi", "malformed"),
    ("a line over the reader's 1 MiB limit", ":big!big@x PRIVMSG #r4 :" + "y" * (1 << 21),
     "malformed"),
    ("tags without values", "@login;display-name;badges :bare!bare@x PRIVMSG #r5 :hi", None),
    ("a login in unicode digits", "@login=user² :u!u@x PRIVMSG #r5 :hi", "malformed"),
    ("a JOIN from a login Twitch never issues", ":ünï!ünï@x JOIN #r5", "malformed"),
    ("a NAMES list with one odd name", ":tmi 353 me = #r1 :late1 bad² late2", "malformed"),
    ("duplicated tmi-sent-ts (real Twitch lines repeat it)",
     "@tmi-sent-ts=1700000000000;msg-id=raid;msg-param-login=dup;msg-param-viewerCount=7;"
     "tmi-sent-ts=1700000009999 :tmi.twitch.tv USERNOTICE #r2", None),
    ("duplicated login tags", "@login=first;login=second :first!first@x PRIVMSG #r3 :hi", None),
    ("an empty line", "", None),
    ("only a tag marker", "@", None),
]


def test_hostile_lines_are_skipped_and_every_rooms_chatters_are_recorded_exactly() -> None:
    rooms = {f"r{i}": [f"r{i}_a", f"r{i}_b", f"r{i}_c"] for i in range(1, 6)}

    async def scenario(server: FakeChatServer) -> None:
        server.rooms.update(rooms)
        async with client(server) as chat:
            await chat.join(list(rooms))
            await until(lambda: chat.joined == 5 and chat.users_seen == 15)
            for _what, line, _counts in HOSTILE:
                raw = line if isinstance(line, bytes) else line.encode()
                for writer in server.writers:
                    writer.write(raw + b"\r\n")
                    await writer.drain()
            # a good line after every hostile one: the reader is still alive and in step
            await server.send(":last!last@x PRIVMSG #r5 :still here")
            await until(lambda: chat.stats.messages >= 5, timeout=10)
            views = chat.observe(window_s=3600)
            raids = chat.take_raids()
            stats = chat.stats
        assert stats.reconnects == 0 and server.connections == 1  # never dropped
        want = sum(1 for *_, c in HOSTILE if c == "malformed")
        assert stats.malformed == want, [w for w, _, c in HOSTILE if c == "malformed"]
        assert stats.raids_malformed == sum(1 for *_, c in HOSTILE if c == "raids_malformed")
        (raid,) = raids
        assert (raid.from_login, raid.viewers) == ("dup", 7)
        assert raid.at.timestamp() == 1_700_000_000  # the first of the repeated tags
        expected = {room: dict.fromkeys(users, "names") for room, users in rooms.items()}
        expected["r1"].update(late1="names", late2="names")
        expected["r3"].update(ts_huge="message", first="message")
        expected["r4"].update(talker="message")
        expected["r5"].update(bare="message", last="message")
        assert {room: views[room].users for room in rooms} == expected

    run(scenario)


def test_read_count_takes_ascii_digits_that_fit_only() -> None:
    from twitchgraph.twitch.chat import read_count

    assert read_count("0") == 0 and read_count("2147483647") == 2**31 - 1
    for text in ("²", "١٢", "", "-1", "+1", " 1", "1.0", "2147483648", "9" * 30, "0x10"):
        assert read_count(text) is None, text
