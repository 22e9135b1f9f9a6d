"""`collect --shard K/N`: N collectors split the channels, meet on the schedule grid, and their
exports form one dataset whose slots are complete only when every shard completed them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from twitchgraph.cli import app
from twitchgraph.collect.collector import Collector
from twitchgraph.collect.options import ChatLimits, CollectOptions
from twitchgraph.collect.run import run_collector
from twitchgraph.collect.sharding import parse_shard, shard_of
from twitchgraph.sim import run_simulator
from twitchgraph.store.dataset import export_partitioned, open_dataset
from twitchgraph.store.db import open_store
from twitchgraph.twitch.chat import ChatClient

from ._collect_fixtures import FakeChatServer, FakeTwitch, FastClock, make_stream


def test_shard_of_is_stable_and_spreads_logins():
    logins = [f"channel_{i}" for i in range(3000)]
    counts = Counter(shard_of(login, 3) for login in logins)
    assert set(counts) == {1, 2, 3} and min(counts.values()) > 900
    # Fixed values: the same on every machine and Python version (no salted hash()).
    assert [shard_of(x, 7) for x in ("xqc", "Ibai", "ibai")] == [6, 3, 3]
    assert shard_of("ibai", 1) == 1
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "3", "a/b"):
        with pytest.raises(ValueError, match="not a shard"):
            parse_shard(bad)
    with pytest.raises(ValueError, match="needs --every"):
        CollectOptions(shard=(1, 2))


@pytest.mark.slow
def test_three_shards_collect_what_one_collector_collects(tmp_path):
    # Presence in the simulator changes once a simulated minute: all runs below fit in the
    # first minute, so they all look at one and the same world. Every room sends its
    # member list (no 1,000-user cut-off), so chatters are not a sample of message senders.
    with run_simulator(channels=24, users=500, seed=5, chat_joins_per_10s=1000,
                       membership_limit=10**9) as sim:
        limits = ChatLimits(joins_per_window=1000)
        runs = {f"shard{k}": ((k, 3), 7.0 if k < 3 else 2.0) for k in (1, 2, 3)}
        runs["whole"] = ((1, 1), 7.0)  # one collector holding every channel, on the same grid
        errors: list[BaseException] = []

        def collect(name: str, shard: tuple[int, int], for_s: float) -> None:
            try:
                run_collector(tmp_path / f"{name}.duckdb",
                              CollectOptions(window_s=1.0, every_s=4.0, for_s=for_s,
                                             shard=shard),
                              env=sim.env(), dotenv_path=None, chat_limits=limits)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
                errors.append(exc)

        threads = [threading.Thread(target=collect, args=(name, *args))
                   for name, args in runs.items()]
        # Each collector takes the first grid slot after its own start: start them just after
        # a slot began, so that all take the same one even when a loaded machine starts the
        # last of them seconds after the first (a 4 s grid: up to ~3.8 s).
        time.sleep(4.0 - time.time() % 4.0 + 0.1)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert sim.clock.elapsed() < 60, "the runs outlasted one simulated minute"
    for name in runs:
        con = open_store(tmp_path / f"{name}.duckdb", read_only=True)
        export_partitioned(con, tmp_path / ("whole" if name == "whole" else "shards"),
                           writer=name)
        con.close()
    shards, whole = open_dataset(tmp_path / "shards"), open_dataset(tmp_path / "whole")
    slots = shards.execute("SELECT started_at, status FROM snapshots ORDER BY 1").fetchall()
    # Shard 3 stopped after the first slot (as if killed): the second slot is partial.
    assert [status for _, status in slots] == ["complete", "partial"]
    query = """SELECT c.channel_login, c.user_login FROM chatters c
               JOIN snapshots s USING (snapshot_id)
               WHERE s.started_at = ? AND s.status = 'complete' ORDER BY 1, 2"""
    first = slots[0][0]
    got, want = (db.execute(query, [first]).fetchall() for db in (shards, whole))
    assert len(want) > 100 and len({c for c, _ in want}) > 10
    assert got == want
    # Each channel was collected by its own shard only.
    for k in (1, 2, 3):
        con = open_store(tmp_path / f"shard{k}.duckdb", read_only=True)
        channels = {r[0] for r in con.execute("SELECT user_login FROM streams").fetchall()}
        assert channels and all(shard_of(c, 3) == k for c in channels)
        con.close()


def test_cli_shard_option_is_checked(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["collect", "--once", "--shard", "4/3", "--db",
                                 str(tmp_path / "x.duckdb")])
    assert result.exit_code == 1 and "not a shard: '4/3'" in result.output
    result = runner.invoke(app, ["collect", "--once", "--shard", "1/3", "--db",
                                 str(tmp_path / "x.duckdb")])
    assert result.exit_code == 1 and "needs --every" in result.output


def test_a_shard_starts_on_the_grid_and_an_empty_share_is_complete():
    fake = FakeTwitch([make_stream(0, 500)])
    login = fake.streams[0]["user_login"]
    mine = shard_of(login, 2)

    async def scenario(server: FakeChatServer, k: int) -> list:
        server.rooms[login] = ["viewer1", "viewer2"]
        # 17 s past a minute: the first slot is the next whole minute, not now.
        clock = FastClock(200, start=datetime(2026, 1, 1, 0, 0, 17, tzinfo=UTC))
        chat = ChatClient(host="127.0.0.1", port=server.port, tls=False, clock=clock,
                          reconnect_backoff_s=0.01, joins_per_window=1000, join_window_s=1.0)
        options = CollectOptions(window_s=5, every_s=60, for_s=120, shard=(k, 2))
        collector = Collector(open_store(":memory:"), helix=fake.helix(), chat=chat,
                              options=options, clock=clock)
        async with collector.chat:
            return await collector.run()

    async def main(k: int) -> list:
        server = await FakeChatServer().start()
        try:
            return await asyncio.wait_for(scenario(server, k), timeout=30)
        finally:
            await server.stop()

    for k in (1, 2):
        summaries = asyncio.run(main(k))
        assert [s.status for s in summaries] == ["complete", "complete"]
        # On the slot or just after it (the fast clock runs on while the loop wakes up).
        assert [s.started_at.minute for s in summaries] == [1, 2]
        assert all(s.started_at.second < 30 for s in summaries)
        assert [s.streams for s in summaries] == ([1, 1] if k == mine else [0, 0])
