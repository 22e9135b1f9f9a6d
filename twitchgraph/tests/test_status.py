"""`twitchgraph status`: failures first, the schedule's slots, the last snapshot's counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from twitchgraph.cli import app
from twitchgraph.collect.status import collection_status
from twitchgraph.store.db import SnapshotData, open_store, write_snapshot
from twitchgraph.store.locks import collector_state_path
from twitchgraph.store.spool import Spool

from ._collect_fixtures import make_stream

runner = CliRunner()
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _store(db) -> None:
    con = open_store(db)
    streams = [make_stream(i, 1000 - i) for i in range(3)]
    for minute in (0, 5):
        at = T0 + timedelta(minutes=minute)
        write_snapshot(con, SnapshotData(
            started_at=at, finished_at=at + timedelta(seconds=60), streams=streams,
            chatters={"chan00000": {"a": "names", "b": "join"}, "chan00001": {"c": "message"}},
            listens={"chan00000": (60.0, True), "chan00001": (60.0, False),
                     "chan00002": (0.0, False)},
            stats={"helix": {"rate_limited": 2, "paced_s": 3.25}}, interval_s=300))
    at = T0 + timedelta(minutes=10)
    write_snapshot(con, SnapshotData(started_at=at, finished_at=at, status="failed",
                                     error="chat: not one of 3 channel(s) could be joined"))
    con.close()


def _state(db, **changes) -> None:
    state = {"pid": 999_999, "running": False, "started_at": T0.isoformat(),
             "ended_at": (T0 + timedelta(minutes=21)).isoformat(), "every_s": 300.0,
             "for_s": None, "complete": 2, "failed": 1, "last_error": "",
             "chat": {"connections": 1, "channels_held": 3},
             "helix": {"requests": 9, "rate_limited": 2, "paced_s": 3.25}}
    collector_state_path(db).write_text(json.dumps({**state, **changes}))


def test_status_puts_failures_first_and_counts_missed_slots(tmp_path) -> None:
    db = tmp_path / "s.duckdb"
    _store(db)
    _state(db)
    result = runner.invoke(app, ["status", "--db", str(db)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "1 failed snapshot(s); most recent first:"
    assert "snapshot 3" in lines[1] and "could be joined" in lines[1]
    # slots at 0, 5, 10, 15, 20 min were due before it ended at 21 min; 3 were taken
    assert lines[2] == "2 scheduled slot(s) missed this run"
    text = result.output
    assert "2 complete, 1 failed, 2 missed of 5 slot(s) due" in text
    assert "9 requests, 2 x 429, 3.2 s waiting for the rate limit" in text
    # it ended: nothing is up, whatever its last update said
    assert "connection(s) up" not in text
    assert "chat: no connection (the collector is not running; it held 3 channel(s)" in text
    assert ("snapshot 2 at 2026-03-01T12:05:00+00:00: 3 streams, 3 chatters in 2 channels, "
            "1 room(s) seen only through message senders") in text


def test_status_json_and_a_collector_that_died(tmp_path) -> None:
    db = tmp_path / "s.duckdb"
    _store(db)
    _state(db, running=True, ended_at=None)
    Spool(db).put(SnapshotData(started_at=T0, finished_at=T0))
    result = runner.invoke(app, ["status", "--db", str(db), "--json"])
    assert result.exit_code == 1, result.output  # the collector is gone
    data = json.loads(result.output)
    assert data["spooled"] == 1
    assert data["collector"]["died"] is True and data["collector"]["running"] is False
    assert data["store"]["complete"] == 2 and data["store"]["failed"] == 1
    assert data["last_error"] == "chat: not one of 3 channel(s) could be joined"
    result = runner.invoke(app, ["status", "--db", str(db)])
    assert result.exit_code == 1
    text = result.output
    assert text.splitlines()[0].startswith("collector (PID 999999) is gone: it stopped without")
    assert "collector: gone, every 300 s" in text
    assert "connection(s) up" not in text
    # nobody holds the store's lock: the file waits for the next collect, not for a reader
    assert f"1 snapshot(s) spooled, the next `twitchgraph collect --db {db}` commits them" \
        in text


def test_status_while_running_counts_the_snapshot_under_way_as_not_missed(tmp_path) -> None:
    from twitchgraph.collect.run import collector_lock

    db = tmp_path / "s.duckdb"
    _store(db)
    _state(db, running=True, ended_at=None, complete=2, failed=1)
    with collector_lock(db):
        status = collection_status(db, now=T0 + timedelta(minutes=15, seconds=10))
    run = status["collector"]
    assert run["running"] and not run["died"]
    assert run["slots_due"] == 4 and run["missed"] == 0  # slot 4 is being taken


def test_status_without_a_store_is_one_line(tmp_path) -> None:
    result = runner.invoke(app, ["status", "--db", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 1 and "no store at" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_status_on_an_empty_store_says_so(tmp_path) -> None:
    db = tmp_path / "empty.duckdb"
    open_store(db).close()
    result = runner.invoke(app, ["status", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "store: no snapshot yet"
    assert "None" not in result.output


def test_a_snapshot_set_aside_is_shown_first_with_its_real_error(tmp_path) -> None:
    db = tmp_path / "s.duckdb"
    _store(db)
    spool = Spool(db)
    at = T0 + timedelta(minutes=15)
    spool.put(SnapshotData(started_at=at, finished_at=at, raids=[
        {"raided_at": at.isoformat(), "from_login": "a", "to_login": "b", "viewers": 10**30}]))
    spool.put(SnapshotData(started_at=at + timedelta(minutes=5),
                           finished_at=at + timedelta(minutes=5)))
    assert list(spool.commit().values()) == [4]  # the queue went on past the bad one
    result = runner.invoke(app, ["status", "--db", str(db)])
    lines = result.output.splitlines()
    assert lines[0].startswith("1 snapshot(s) could not be committed and were set aside in")
    assert "the raid a -> b has viewer count 1000000000000000000000000000000" in lines[1]
    assert "transaction is aborted" not in result.output
