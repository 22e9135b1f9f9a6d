"""The collector against in-memory Helix (MockTransport) and a loopback chat server."""

from __future__ import annotations

import asyncio
import json
import textwrap
from datetime import timedelta
from pathlib import Path

import duckdb
import httpx
import pandas as pd
import pytest

from twitchgraph.collect.collector import Collector
from twitchgraph.collect.options import CollectOptions
from twitchgraph.durations import parse_duration
from twitchgraph.store.db import open_store
from twitchgraph.twitch.chat import ChatClient

from ._collect_fixtures import (
    FakeChatServer,
    FakeTwitch,
    FastClock,
    is_streams,
    make_stream,
    start_and_kill,
)

HERE = Path(__file__).resolve().parent


def _twitch(n: int) -> FakeTwitch:
    fake = FakeTwitch([make_stream(i, 10_000 // (i + 1)) for i in range(n)])
    for s in fake.streams:
        fake.users[s["user_id"]] = {"id": s["user_id"], "login": s["user_login"],
                                    "display_name": s["user_name"], "broadcaster_type": ""}
    return fake


def _chat_server(server: FakeChatServer, fake: FakeTwitch, big: int = 1) -> None:
    """Rooms: the `big` most viewed send no membership, only messages; the rest send NAMES."""
    for rank, s in enumerate(fake.streams):
        login = s["user_login"]
        if rank < big:
            server.big_rooms.add(login)
            server.on_join_lines[login] = [
                f"@login=talker{rank}{j} :talker{rank}{j}!t@t.tmi.twitch.tv PRIVMSG #{login} :hi"
                for j in range(3)]
        else:
            server.rooms[login] = [f"viewer{rank}{j}" for j in range(4)] + ["shared"]


def _collector(con, fake, server, options, clock, **chat_kwargs) -> Collector:
    chat_kwargs.setdefault("joins_per_window", 1000)
    chat_kwargs.setdefault("join_window_s", 1.0)
    chat = ChatClient(host="127.0.0.1", port=server.port, tls=False, clock=clock,
                      reconnect_backoff_s=0.01, **chat_kwargs)
    return Collector(con, helix=fake.helix(), chat=chat, options=options, clock=clock)


def run(coro_fn):
    async def main():
        server = await FakeChatServer().start()
        try:
            return await asyncio.wait_for(coro_fn(server), timeout=20)
        finally:
            await server.stop()

    return asyncio.run(main())


def test_once_stores_streams_chatters_sources_listens_and_profiles() -> None:
    con = open_store(":memory:")
    fake = _twitch(5)

    async def scenario(server: FakeChatServer):
        _chat_server(server, fake, big=2)
        collector = _collector(con, fake, server, CollectOptions(window_s=20), FastClock(100))
        async with collector.chat:
            summaries = await collector.run()
        assert sorted(server.lines("PART #")) == sorted(f"PART #{s['user_login']}"
                                                        for s in fake.streams)
        return summaries

    (summary,) = run(scenario)
    assert summary.status == "complete" and summary.streams == 5
    assert summary.channels_listened == 5 and summary.chatters == 2 * 3 + 3 * 5
    assert summary.users == 6 + 3 * 4 + 1  # "shared" counted once
    assert con.execute("SELECT status, interval_s FROM snapshots").fetchall() == [
        ("complete", None)]
    by_source = dict(con.execute("SELECT source, count(*) FROM chatters GROUP BY 1").fetchall())
    assert by_source == {"message": 6, "names": 15}
    membership = dict(con.execute("SELECT channel_login, membership FROM listens").fetchall())
    assert membership == {"chan00000": False, "chan00001": False, "chan00002": True,
                          "chan00003": True, "chan00004": True}
    listened = [r[0] for r in con.execute("SELECT listened_s FROM listens").fetchall()]
    assert all(15 <= s <= 200 for s in listened)  # about the 20 s window (of clock time)
    assert con.execute("SELECT count(*) FROM users").fetchone() == (5,)
    assert "pages" in summary.line() and "5 streams" in summary.line()


def test_top_and_min_viewers_limit_the_channels_joined() -> None:
    con = open_store(":memory:")
    fake = _twitch(40)

    async def scenario(server: FakeChatServer):
        _chat_server(server, fake, big=0)
        options = CollectOptions(window_s=1, top=5, min_viewers=2000)
        collector = _collector(con, fake, server, options, FastClock(100))
        async with collector.chat:
            await collector.run()
        return sorted(ch for _, _, ch in server.joins())

    joined = run(scenario)
    # viewers 10000, 5000, 3333, 2500, 2000 are >= 2000; top 5 keeps all five
    assert joined == [f"chan0000{i}" for i in range(5)]
    assert con.execute("SELECT count(*), min(viewer_count) FROM streams").fetchone() == (5, 2000)


def test_every_stays_joined_follows_live_changes_and_does_not_drift() -> None:
    con = open_store(":memory:")
    fake = _twitch(4)
    newcomer = make_stream(99, 50_000)
    fake.users["u99"] = {"id": "u99", "login": "chan00099"}

    async def scenario(server: FakeChatServer):
        _chat_server(server, fake, big=0)
        server.rooms["chan00099"] = ["late"]
        collector = _collector(con, fake, server, CollectOptions(
            window_s=10, every_s=40, for_s=115), FastClock(10))  # 11.5 s: see the gaps
        stream_requests = 0

        def churn(request: httpx.Request) -> None:
            nonlocal stream_requests
            if request.url.path.endswith("/streams"):
                stream_requests += 1
                if stream_requests == 2:  # before snapshot 2: one ends, one goes live
                    fake.streams = [newcomer] + fake.streams[:3]

        fake.hook = churn
        async with collector.chat:
            summaries = await collector.run()
        return summaries, [ch for _, _, ch in server.joins()], server.lines("PART #")

    summaries, joins, parts = run(scenario)
    assert [s.status for s in summaries] == ["complete"] * 3
    assert len(joins) == len(set(joins)) == 5  # no channel joined twice
    assert set(joins) == {"chan00000", "chan00001", "chan00002", "chan00003", "chan00099"}
    assert parts == ["PART #chan00003"]
    starts = [s.started_at for s in summaries]
    gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:], strict=False)]
    # On the 40 s grid, not 40 s + the 10 s of work. At 10x a loaded machine's lag of a few
    # tenths of a second is a few simulated seconds; at 40x it once made a gap of 49 s.
    assert all(abs(g - 40) < 8 for g in gaps), gaps
    rows = con.execute("SELECT snapshot_id, count(*) FROM chatters GROUP BY 1 ORDER BY 1"
                       ).fetchall()
    assert [n for _, n in rows] == [4 * 5, 3 * 5 + 1, 3 * 5 + 1]
    assert con.execute("SELECT DISTINCT interval_s FROM snapshots").fetchall() == [(40.0,)]
    # presence persists: a held channel's NAMES users are still there two snapshots later
    assert con.execute("SELECT count(*) FROM chatters WHERE channel_login = 'chan00000'"
                       ).fetchone() == (15,)


def test_rotates_when_more_channels_are_live_than_chat_may_hold() -> None:
    con = open_store(":memory:")
    fake = _twitch(4)

    async def scenario(server: FakeChatServer):
        _chat_server(server, fake, big=0)
        collector = _collector(con, fake, server, CollectOptions(
            window_s=5, every_s=30, for_s=100), FastClock(40),
            channels_per_connection=1, max_connections=2)
        async with collector.chat:
            return await collector.run()

    summaries = run(scenario)
    assert [s.channels_listened for s in summaries] == [2, 2, 2, 2]
    listened = con.execute(
        "SELECT channel_login, count(*) FILTER (WHERE listened_s > 0), count(*) FROM listens "
        "GROUP BY 1 ORDER BY 1").fetchall()
    # every live channel gets a listens row per snapshot; each was listened to at some point
    assert [(c, total) for c, _, total in listened] == [(f"chan0000{i}", 4) for i in range(4)]
    assert all(n >= 1 for _, n, _ in listened)
    assert con.execute("SELECT count(DISTINCT channel_login) FROM chatters").fetchone() == (4,)


def test_once_with_more_channels_than_capacity_listens_in_groups() -> None:
    con = open_store(":memory:")
    fake = _twitch(5)

    async def scenario(server: FakeChatServer):
        _chat_server(server, fake, big=0)
        collector = _collector(con, fake, server, CollectOptions(window_s=5), FastClock(100),
                               channels_per_connection=1, max_connections=2)
        async with collector.chat:
            (summary,) = await collector.run()
        return summary, server.connections, len(server.lines("PART #"))

    summary, connections, parts = run(scenario)
    assert summary.channels_listened == 5 and parts == 5 and connections == 2
    listened = [r[0] for r in con.execute("SELECT listened_s FROM listens").fetchall()]
    assert len(listened) == 5 and all(s >= 4 for s in listened)  # each group got the window
    assert con.execute("SELECT count(DISTINCT channel_login) FROM chatters").fetchone() == (5,)


def test_api_failure_marks_the_snapshot_failed_and_reports_it() -> None:
    con = open_store(":memory:")
    fake = _twitch(3)
    fake.script += [(is_streams(), httpx.Response(503)) for _ in range(10)]

    async def scenario(server: FakeChatServer):
        collector = _collector(con, fake, server, CollectOptions(window_s=1), FastClock(100))
        collector.helix.max_retries = 2
        collector.helix.backoff_s = 0.001
        async with collector.chat:
            return await collector.run()

    (summary,) = run(scenario)
    assert summary.status == "failed" and "HTTP 503" in summary.error
    assert "failed" in summary.line()
    assert con.execute("SELECT status FROM snapshots").fetchall() == [("failed",)]
    assert con.execute("SELECT count(*) FROM streams").fetchone() == (0,)


def test_profiles_of_a_failed_snapshot_are_fetched_again(monkeypatch) -> None:
    import duckdb

    import twitchgraph.collect.collector

    con = open_store(":memory:")
    fake = _twitch(3)
    real_write = twitchgraph.collect.collector.write_snapshot
    writes: list[int] = []

    def write_failing_once(*args, **kwargs):
        writes.append(1)
        if len(writes) == 1:
            raise duckdb.IOException("disk full")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(twitchgraph.collect.collector, "write_snapshot", write_failing_once)

    async def scenario(server: FakeChatServer):
        _chat_server(server, fake, big=0)
        collector = _collector(con, fake, server, CollectOptions(window_s=1), FastClock(100))
        async with collector.chat:
            return await collector.snapshot(), await collector.snapshot()

    first, second = run(scenario)
    assert (first.status, second.status) == ("failed", "complete")
    assert con.execute("SELECT count(*) FROM users").fetchone() == (3,)


def test_cancel_mid_snapshot_discards_it_whole() -> None:
    con = open_store(":memory:")
    fake = _twitch(3)

    async def scenario(server: FakeChatServer):
        _chat_server(server, fake, big=0)
        collector = _collector(con, fake, server, CollectOptions(window_s=1000), FastClock(10))
        async with collector.chat:
            task = asyncio.create_task(collector.run())
            await asyncio.sleep(0.3)  # inside the listening window
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    run(scenario)
    # nothing of it is stored: a snapshot reaches the store only once it is finished
    assert con.execute("SELECT count(*) FROM snapshots").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM streams").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM chatters").fetchone() == (0,)


def test_parse_duration() -> None:
    assert parse_duration("90") == 90 and parse_duration("10m") == 600
    assert parse_duration("1.5h") == 5400 and parse_duration("2d") == 172800
    with pytest.raises(ValueError, match="duration"):
        parse_duration("soon")
    with pytest.raises(ValueError, match="window"):
        CollectOptions(window_s=60, every_s=30)


_CHILD = textwrap.dedent("""
    import asyncio, sys
    sys.path.insert(0, sys.argv[2])
    from _collect_fixtures import FakeChatServer, FakeTwitch, FastClock, make_stream
    from twitchgraph.collect.collector import Collector
    from twitchgraph.collect.options import CollectOptions
    from twitchgraph.store.db import open_store, recover_stale
    from twitchgraph.twitch.chat import ChatClient

    async def main():
        server = await FakeChatServer().start()
        fake = FakeTwitch([make_stream(i, 100_000 - i) for i in range(300)])
        for s in fake.streams:
            server.rooms[s["user_login"]] = [f"v{s['id']}_{j}" for j in range(30)]
        con = open_store(sys.argv[1])
        recover_stale(con)
        clock = FastClock(20)
        chat = ChatClient(host="127.0.0.1", port=server.port, tls=False, clock=clock,
                          joins_per_window=10_000, join_window_s=1.0)
        options = CollectOptions(window_s=5, every_s=10, fetch_users=False)
        async with chat:
            collector = Collector(con, helix=fake.helix(), chat=chat, options=options,
                                  clock=clock)
            print("ready", flush=True)
            await collector.run()

    asyncio.run(main())
""")


@pytest.mark.slow
def test_collector_killed_mid_snapshot_leaves_whole_snapshots_and_next_run_goes_on(
    tmp_path,
) -> None:
    db = tmp_path / "kill.duckdb"
    for delay in (1.0, 1.7):
        start_and_kill(_CHILD, str(db), str(HERE), delay=delay)
    con = open_store(db)
    statuses = dict(con.execute("SELECT status, count(*) FROM snapshots GROUP BY 1").fetchall())
    assert statuses.get("complete", 0) >= 1
    complete = "SELECT snapshot_id FROM snapshots WHERE status = 'complete'"
    per_snapshot = con.execute(
        f"SELECT snapshot_id, count(*) FROM streams WHERE snapshot_id IN ({complete}) "
        "GROUP BY 1").fetchall()
    assert per_snapshot and all(n == 300 for _, n in per_snapshot)
    # each complete snapshot holds exactly the rows it recorded in the same transaction
    for sid, stats in con.execute(f"SELECT snapshot_id, stats FROM snapshot_info WHERE "
                                  f"snapshot_id IN ({complete})").fetchall():
        rows = json.loads(stats)["rows"]
        for table in ("streams", "chatters", "listens"):
            n = con.execute(f"SELECT count(*) FROM {table} WHERE snapshot_id = ?", [sid])
            assert n.fetchone()[0] == rows[table], (sid, table)
        assert rows["streams"] == rows["listens"] == 300 and rows["chatters"] > 0
    for table in ("streams", "chatters", "listens"):
        orphans = con.execute(f"SELECT count(*) FROM {table} WHERE snapshot_id NOT IN "
                              f"({complete})").fetchone()[0]
        assert orphans == 0, table
    before = statuses.get("complete", 0)
    last = con.execute("SELECT max(snapshot_id) FROM snapshots").fetchone()[0]
    con.close()

    # the next run marks the interrupted snapshot failed and carries on
    fake = FakeTwitch([make_stream(i, 100 - i) for i in range(3)])

    async def scenario(server: FakeChatServer):
        from twitchgraph.store.db import recover_stale

        con = open_store(db)
        recover_stale(con)
        collector = _collector(con, fake, server, CollectOptions(window_s=1, fetch_users=False),
                               FastClock(100))
        async with collector.chat:
            (summary,) = await collector.run()
        assert summary.status == "complete" and summary.snapshot_id == last + 1
        rows = con.execute("SELECT status, count(*) FROM snapshots GROUP BY 1").fetchall()
        con.close()
        return dict(rows)

    after = run(scenario)
    assert after["complete"] == before + 1 and "running" not in after


def test_snapshot_started_at_uses_the_clock() -> None:
    con = open_store(":memory:")
    fake = _twitch(1)
    clock = FastClock(100)

    async def scenario(server: FakeChatServer):
        collector = _collector(con, fake, server, CollectOptions(window_s=1), clock)
        async with collector.chat:
            return await collector.run()

    (summary,) = run(scenario)
    assert abs(summary.started_at - clock.start) < timedelta(minutes=5)


# -- end to end against the simulated Twitch (twitchgraph.sim) --------------------------------

def _sim_clients(sim, **helix_kwargs):
    from twitchgraph.twitch.auth import AppTokenAuth
    from twitchgraph.twitch.credentials import load_credentials
    from twitchgraph.twitch.endpoints import Endpoints
    from twitchgraph.twitch.helix import HelixClient

    env = sim.env()
    endpoints = Endpoints.from_env(env)
    http = httpx.Client(timeout=10)
    auth = AppTokenAuth(load_credentials(env, dotenv_path=None), auth_url=endpoints.auth_url,
                        http=http)
    return endpoints, HelixClient(http=http, auth=auth, api_url=endpoints.api_url,
                                  **helix_kwargs)


@pytest.mark.slow
def test_helix_against_the_simulator_with_paging_faults() -> None:
    from twitchgraph.sim import run_simulator

    with run_simulator(channels=500, users=3000, seed=11, time_scale=0,
                       faults="duplicate_pages,loop_cursor,missing_fields,server_error") as sim:
        truth = {s["user_login"] for s in sim.live_streams()}
        sim.arm_fault("server_error", times=2, path_prefix="/helix/streams")
        sim.arm_fault("malformed_json", times=1, path_prefix="/helix/streams")
        sim.arm_fault("rate_limit", times=1, path_prefix="/helix/streams")
        _, helix = _sim_clients(sim, backoff_s=0.01)
        with helix:
            got = helix.streams()
    logins = [s["user_login"] for s in got]
    assert len(logins) == len(set(logins)) == len({s["id"] for s in got})
    assert set(logins) <= truth
    assert len(got) >= 0.8 * len(truth)  # all but the items the simulator broke
    assert helix.stats.duplicates > 0 and helix.stats.server_errors > 0
    assert helix.stats.malformed > 0 and helix.stats.rate_limited == 1
    viewers = [s["viewer_count"] for s in got]
    assert viewers == sorted(viewers, reverse=True)


@pytest.mark.slow
def test_collector_against_the_simulator_survives_a_chat_drop_mid_window() -> None:
    from twitchgraph.sim import run_simulator

    con = open_store(":memory:")
    with run_simulator(channels=25, users=600, seed=12, time_scale=0,
                       chat_joins_per_10s=1000, membership_interval_s=0.3) as sim:
        endpoints, helix = _sim_clients(sim)

        async def scenario():
            chat = ChatClient.from_endpoints(endpoints, joins_per_window=1000,
                                             reconnect_backoff_s=0.05)
            collector = Collector(con, helix=helix, chat=chat,
                                  options=CollectOptions(window_s=3.0))
            async with chat:
                task = asyncio.create_task(collector.run())
                await asyncio.sleep(1.2)
                dropped = await asyncio.to_thread(sim.disconnect_all_chat)
                (summary,) = await task
            return summary, dropped, chat.stats.reconnects

        summary, dropped, reconnects = asyncio.run(scenario())
        truth = {s["user_login"]: sim.chatters(s["user_login"]) for s in sim.live_streams()}
    assert dropped >= 1 and reconnects >= 1
    assert summary.status == "complete" and summary.channels_listened == len(truth)
    membership = dict(con.execute("SELECT channel_login, membership FROM listens").fetchall())
    assert sum(membership.values()) >= 5  # rooms under 1,000 viewers send NAMES/JOIN
    for channel, expected in truth.items():
        got = {r[0] for r in con.execute("SELECT user_login FROM chatters WHERE channel_login "
                                         "= ?", [channel]).fetchall()}
        assert got <= expected | {channel}
        if membership[channel]:  # big rooms show only who spoke in those 3 s
            assert len(got & expected) >= 0.9 * len(expected), channel


class ChatProxy:
    """A TCP proxy on loopback between the collector and a chat server; `kill` cuts every
    connection and refuses new ones, as a network outage would."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> ChatProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def kill(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self.server.wait_closed()


@pytest.mark.slow
def test_chat_cut_mid_run_leaves_no_stale_chatter_in_later_snapshots() -> None:
    """Issue 27 item 1: after the proxy to chat dies, no snapshot holds a chatter it did not
    hear during its own window; one that heard nobody is failed, with the reason."""
    from twitchgraph.clock import utcnow
    from twitchgraph.sim import run_simulator

    con = open_store(":memory:")
    with run_simulator(channels=25, users=600, seed=12, time_scale=0,
                       chat_joins_per_10s=1000, membership_interval_s=0.3) as sim:
        endpoints, helix = _sim_clients(sim)
        host, port = endpoints.chat_address()

        async def scenario():
            proxy = await ChatProxy(host, port).start()
            chat = ChatClient(host="127.0.0.1", port=proxy.port, tls=False,
                              joins_per_window=1000, reconnect_backoff_s=0.05,
                              max_backoff_s=0.2, connect_timeout_s=1.0)
            collector = Collector(con, helix=helix, chat=chat, options=CollectOptions(
                window_s=1.5, every_s=2.5, for_s=9.0, fetch_users=False))
            async with chat:
                first = asyncio.Event()
                task = asyncio.create_task(collector.run(on_snapshot=lambda _: first.set()))
                await first.wait()
                await asyncio.sleep(0.5)  # into the second snapshot's window
                cut = utcnow()
                await proxy.kill()
                return await task, cut

        summaries, cut = asyncio.run(scenario())
        truth = {s["user_login"]: sim.chatters(s["user_login"]) for s in sim.live_streams()}
    assert summaries[0].status == "complete" and summaries[0].chatters > 0
    after = [s for s in summaries if s.started_at > cut]
    assert len(after) >= 2
    for summary in after:
        assert summary.status == "failed", summary.line()
        assert "no room was listened to" in summary.error
    rows = con.execute(
        """SELECT s.snapshot_id, s.started_at, count(c.user_login), max(l.listened_s)
           FROM snapshots s LEFT JOIN chatters c USING (snapshot_id)
           LEFT JOIN listens l USING (snapshot_id)
           GROUP BY ALL ORDER BY 1""").fetchall()
    for sid, started, chatters, listened in rows:
        if started > cut:
            assert chatters == 0 and not listened, (sid, chatters)
    for channel, users in con.execute(
            "SELECT channel_login, list(user_login) FROM chatters GROUP BY 1").fetchall():
        assert set(users) <= truth[channel] | {channel}


@pytest.mark.slow
def test_every_against_the_simulator_joins_each_channel_once() -> None:
    from twitchgraph.sim import run_simulator

    con = open_store(":memory:")
    with run_simulator(channels=40, users=800, seed=13, time_scale=60,
                       chat_joins_per_10s=1000, membership_interval_s=0.3) as sim:
        endpoints, helix = _sim_clients(sim)

        async def scenario():
            chat = ChatClient.from_endpoints(endpoints, clock=sim.clock, joins_per_window=1000)
            collector = Collector(con, helix=helix, chat=chat, clock=sim.clock, options=(
                CollectOptions(window_s=30, every_s=120, for_s=300, fetch_users=False)))
            async with chat:
                return await collector.run()

        summaries = asyncio.run(scenario())
        joins = sim.stats()["chat_joins"]
    assert [s.status for s in summaries] == ["complete"] * 3
    live_ever = con.execute("SELECT count(DISTINCT user_login) FROM streams").fetchone()[0]
    assert joins == live_ever  # every channel joined once, however many snapshots it was in
    new_channels = [r[0] for r in con.execute(
        """SELECT count(*) FILTER (WHERE first_seen = snapshot_id) FROM (
               SELECT snapshot_id, min(snapshot_id) OVER (PARTITION BY user_login) AS first_seen
               FROM streams) GROUP BY snapshot_id ORDER BY snapshot_id""").fetchall()]
    assert [s.joins for s in summaries] == new_channels  # later snapshots join only newcomers
    starts = [s.started_at for s in summaries]
    assert all(abs((b - a).total_seconds() - 120) < 30 for a, b in zip(starts, starts[1:],
                                                                        strict=False))


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_snapshot_whose_chat_failed_is_failed_with_the_reason() -> None:
    con = open_store(":memory:")
    fake = _twitch(3)

    async def scenario():
        clock = FastClock(100)
        chat = ChatClient(host="127.0.0.1", port=_closed_port(), tls=False, clock=clock,
                          reconnect_backoff_s=0.01, connect_timeout_s=0.3,
                          join_confirm_timeout_s=0.1)
        collector = Collector(con, helix=fake.helix(), chat=chat, clock=clock,
                              options=CollectOptions(window_s=1))
        async with chat:
            return await collector.run()

    (summary,) = asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    assert summary.status == "failed"
    assert "chat: not one of 3 channel(s) could be joined" in summary.error
    assert "cannot connect to chat" in summary.error
    row = con.execute("SELECT status, error FROM snapshots").fetchall()
    assert row == [("failed", summary.error)]
    assert con.execute("SELECT count(*) FROM streams").fetchone() == (0,)


def test_no_live_stream_is_a_failed_snapshot_naming_the_filter() -> None:
    con = open_store(":memory:")
    fake = _twitch(0)

    async def scenario(server: FakeChatServer):
        collector = _collector(con, fake, server, CollectOptions(window_s=1, language="xx"),
                               FastClock(100))
        async with collector.chat:
            return await collector.run()

    (summary,) = run(scenario)
    assert summary.status == "failed"
    assert summary.error == "no live streams matching --language xx: nothing to collect"
    assert con.execute("SELECT status FROM snapshots").fetchall() == [("failed",)]


def test_a_full_disk_fails_one_snapshot_and_the_schedule_goes_on(tmp_path, monkeypatch):
    import errno

    from twitchgraph.store.spool import Spool

    db = tmp_path / "s.duckdb"
    open_store(db).close()
    spool = Spool(db)
    real_put = Spool.put
    calls = []

    def put_once_full(self, data):
        calls.append(data.status)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_put(self, data)

    monkeypatch.setattr(Spool, "put", put_once_full)
    fake = _twitch(3)

    async def scenario(server: FakeChatServer):
        _chat_server(server, fake, big=0)
        collector = _collector(spool, fake, server, CollectOptions(
            window_s=1, every_s=30, for_s=50), FastClock(10))
        async with collector.chat:
            return await collector.run()

    first, second = run(scenario)
    assert first.status == "failed" and "No space left on device" in first.error
    assert str(spool.dir) in first.error
    assert second.status == "complete" and second.snapshot_id is not None
    con = duckdb.connect(str(db), read_only=True)
    # the failure's own record went through the spool (the disk had room again)
    assert con.execute("SELECT status FROM snapshots ORDER BY snapshot_id").fetchall() == [
        ("failed",), ("complete",)]
    con.close()


@pytest.mark.slow
def test_raids_from_the_simulator_reach_raids_csv_with_exact_counts(tmp_path) -> None:
    from twitchgraph.build.definition import build_graph
    from twitchgraph.build.params import BuildParams
    from twitchgraph.graphio import write_graph_dir
    from twitchgraph.sim import run_simulator

    con = open_store(":memory:")
    scale = 600.0
    with run_simulator(channels=60, users=900, seed=21, time_scale=scale, live_fraction=0.6,
                       chat_joins_per_10s=1000, membership_interval_s=0.3) as sim:
        endpoints, helix = _sim_clients(sim)

        async def scenario():
            chat = ChatClient.from_endpoints(endpoints, clock=sim.clock, joins_per_window=1000)
            collector = Collector(con, helix=helix, chat=chat, clock=sim.clock, options=(
                CollectOptions(window_s=600, every_s=900, for_s=3 * 3600, fetch_users=False)))
            async with chat:
                return await collector.run()

        summaries = asyncio.run(scenario())
        sent = sim.raids_sent()
    assert {s.status for s in summaries} == {"complete"}
    start = sim.population.start.timestamp()
    # Twitch's tmi-sent-ts is whole milliseconds
    sent_rows = {(int((start + t) * 1000), raider, raided, viewers)
                 for t, raider, raided, viewers, _ in sent}
    stored = {(round(at.timestamp() * 1000), a, b, v) for at, a, b, v in con.execute(
        "SELECT raided_at, from_login, to_login, viewers FROM raids").fetchall()}
    last = con.execute("SELECT max(finished_at) FROM snapshots").fetchone()[0].timestamp()
    assert len(sent_rows) >= 5
    # Every raid stored was sent; every raid sent is stored, but for those sent after the
    # last snapshot took its raids (within a few simulated seconds of its end).
    assert stored <= sent_rows
    assert all(row[0] > (last - 0.5 * scale) * 1000 for row in sent_rows - stored)
    result = build_graph(con, BuildParams(every_nth=1, min_live_minutes=0, min_viewer_mean=0,
                                          min_chatter_mean=0, min_weight=0, min_game_minutes=0))
    out = write_graph_dir(result, tmp_path / "g")
    kept = set(result.streamers["Id"])
    expected: dict[tuple[str, str], list[int]] = {}
    for _, a, b, v in stored:
        if a in kept and b in kept:
            expected.setdefault((a, b), []).append(v)
    csv = pd.read_csv(out / "raids.csv", dtype={"Source": str, "Target": str})
    got = {(r.Source, r.Target): (r.raids, r.viewers_total) for r in csv.itertuples()}
    assert len(got) >= 3
    assert got == {pair: (len(v), sum(v)) for pair, v in expected.items()}
    assert result.build["raids"]["outside_streamers"] == len(stored) - sum(
        len(v) for v in expected.values())
    assert set(csv["Type"]) <= {"Directed"}
