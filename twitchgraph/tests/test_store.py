"""The DuckDB store: schema, whole-snapshot transactions, crash safety, Parquet export."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from twitchgraph.store.db import (
    SOURCES,
    SnapshotData,
    export_parquet,
    fail_snapshot,
    open_store,
    recover_stale,
    registered,
    start_snapshot,
    upsert_users,
    write_snapshot,
)

from ._collect_fixtures import make_stream, start_and_kill

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

CONTRACT = {
    "snapshots": ["snapshot_id", "started_at", "finished_at", "status", "interval_s", "error"],
    "streams": ["snapshot_id", "stream_id", "user_id", "user_login", "user_name", "game_id",
                "game_name", "title", "viewer_count", "started_at", "language", "tags",
                "is_mature"],
    "chatters": ["snapshot_id", "channel_login", "user_login", "source"],
    "listens": ["snapshot_id", "channel_login", "listened_s", "membership"],
    "users": ["user_id", "login", "display_name", "broadcaster_type", "description",
              "created_at", "profile_image_url", "type", "fetched_at"],
    "raids": ["snapshot_id", "raided_at", "from_login", "from_name", "to_login", "viewers"],
}


def _snapshot(n_streams: int = 3, **kwargs) -> SnapshotData:
    streams = [make_stream(i, 1000 - i) for i in range(n_streams)]
    chatters = {s["user_login"]: {f"viewer{j}": "names" for j in range(5)} for s in streams}
    listens = {s["user_login"]: (60.0, True) for s in streams}
    return SnapshotData(started_at=T0, finished_at=T0 + timedelta(seconds=70), streams=streams,
                        chatters=chatters, listens=listens, **kwargs)


def _count(con: duckdb.DuckDBPyConnection, table: str, where: str = "TRUE") -> int:
    return con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]


def test_schema_matches_the_shared_contract_and_is_idempotent(tmp_path) -> None:
    path = tmp_path / "s.duckdb"
    open_store(path).close()
    con = open_store(path)
    for table, columns in CONTRACT.items():
        got = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position", [table]).fetchall()]
        assert got == columns, table


def test_a_chatter_seen_several_ways_keeps_the_way_chat_ranks_first() -> None:
    assert SOURCES == ("names", "join", "message")  # best first; the chat client ranks alike
    con = open_store(":memory:")
    data = _snapshot(n_streams=1)
    data.chatters["chan00000"] = {"Ann": "message", "ann": "join", "ben": "message",
                                  "BEN": "names", "cy": "join", "Cy": "names", "dee": "message"}
    write_snapshot(con, data)
    assert con.execute("SELECT user_login, source FROM chatters ORDER BY 1").fetchall() == [
        ("ann", "join"), ("ben", "names"), ("cy", "names"), ("dee", "message")]


def test_write_snapshot_stores_everything_and_completes() -> None:
    con = open_store(":memory:")
    data = _snapshot(interval_s=600.0, params={"top": 3}, stats={"requests": 2})
    data.chatters["chan00000"] = {"Alice": "message", "bob": "join", "alice": "names"}
    data.users = [{"id": "u0", "login": "Chan00000", "display_name": "Chan00000",
                   "created_at": "2019-05-01T10:00:00Z"}]
    # a raid from a channel nobody tracks is kept too
    data.raids = [{"raided_at": T0 + timedelta(seconds=5), "from_login": "Untracked",
                   "from_name": "Untracked", "to_login": "chan00000", "viewers": 42}]
    sid = write_snapshot(con, data)
    assert con.execute("SELECT status, interval_s, finished_at FROM snapshots").fetchall() == [
        ("complete", 600.0, T0 + timedelta(seconds=70))]
    row = con.execute("SELECT user_login, viewer_count, tags, started_at, is_mature "
                      "FROM streams ORDER BY viewer_count DESC LIMIT 1").fetchone()
    assert row == ("chan00000", 1000, ["English"], datetime(2026, 1, 1, tzinfo=UTC), False)
    # one row per user; names beats join beats message; logins lower case
    assert con.execute("SELECT user_login, source FROM chatters WHERE channel_login = "
                       "'chan00000' ORDER BY 1").fetchall() == [("alice", "names"),
                                                                ("bob", "join")]
    assert _count(con, "chatters") == 2 * 5 + 2
    assert _count(con, "listens", f"snapshot_id = {sid} AND membership") == 3
    assert con.execute("SELECT login FROM users").fetchall() == [("chan00000",)]
    params, stats = con.execute("SELECT params, stats FROM snapshot_info").fetchone()
    assert json.loads(params) == {"top": 3}
    assert json.loads(stats) == {"requests": 2, "rows": {"streams": 3, "chatters": 12,
                                                         "listens": 3, "raids": 1}}
    assert con.execute("SELECT * FROM raids").fetchall() == [
        (sid, T0 + timedelta(seconds=5), "untracked", "Untracked", "chan00000", 42)]


def test_a_failed_write_leaves_nothing_and_the_snapshot_can_be_failed() -> None:
    con = open_store(":memory:")
    sid = start_snapshot(con, started_at=T0)
    bad = _snapshot()
    bad.chatters["chan00001"] = {"eve": "whisper"}  # not a valid source
    with pytest.raises(ValueError, match="source"):
        write_snapshot(con, bad, snapshot_id=sid)
    assert _count(con, "streams") == 0 and _count(con, "chatters") == 0
    assert con.execute("SELECT status FROM snapshots").fetchone() == ("running",)
    fail_snapshot(con, sid)
    assert con.execute("SELECT status FROM snapshots").fetchone() == ("failed",)
    with pytest.raises(ValueError, match="not running"):
        write_snapshot(con, _snapshot(), snapshot_id=sid)
    assert _count(con, "streams") == 0


def test_recover_stale_marks_running_failed_and_ids_keep_growing() -> None:
    con = open_store(":memory:")
    write_snapshot(con, _snapshot())
    stale = start_snapshot(con, started_at=T0)
    assert recover_stale(con) == [stale]
    assert write_snapshot(con, _snapshot()) == stale + 1
    assert con.execute("SELECT status FROM snapshots ORDER BY snapshot_id").fetchall() == [
        ("complete",), ("failed",), ("complete",)]


def test_users_are_upserted_to_the_latest_profile() -> None:
    con = open_store(":memory:")
    write_snapshot(con, _snapshot(users=[{"id": "7", "login": "old", "description": "a"}]))
    write_snapshot(con, _snapshot(users=[{"id": "7", "login": "new", "description": "b"}]))
    assert con.execute("SELECT user_id, login, description FROM users").fetchall() == [
        ("7", "new", "b")]


def test_upsert_users_outside_a_snapshot() -> None:
    con = open_store(":memory:")
    assert upsert_users(con, [{"id": "1", "login": "A"}, {"id": "1", "login": "B"},
                              {"id": "2", "login": "c", "created_at": "2020-01-01T00:00:00Z"}],
                        T0) == 2
    assert con.execute("SELECT user_id, login, created_at, fetched_at FROM users ORDER BY 1"
                       ).fetchall() == [("1", "b", None, T0),
                                        ("2", "c", datetime(2020, 1, 1, tzinfo=UTC), T0)]


def test_export_parquet_writes_complete_rows_only(tmp_path) -> None:
    con = open_store(":memory:")
    write_snapshot(con, _snapshot(n_streams=4))
    sid = start_snapshot(con, started_at=T0)
    con.execute("INSERT INTO streams (snapshot_id, stream_id, user_login) VALUES (?, 'x', 'x')",
                [sid])  # rows of a snapshot that never completed must not leak out
    counts = export_parquet(con, tmp_path / "out")
    assert counts["streams"] == 4 and counts["chatters"] == 20 and counts["snapshots"] == 2
    read = duckdb.connect()
    path = tmp_path / "out" / "streams.parquet"
    assert read.execute(f"SELECT count(*), min(viewer_count) FROM '{path}'").fetchone() == (
        4, 997)
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {
        "snapshots.parquet", "streams.parquet", "chatters.parquet", "listens.parquet",
        "users.parquet"}


_WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from twitchgraph.store.db import SnapshotData, open_store, start_snapshot, write_snapshot
    con = open_store(sys.argv[1])
    t = datetime(2026, 1, 1, tzinfo=UTC)
    print("ready", flush=True)
    while True:
        sid = start_snapshot(con, started_at=t)
        n = 50 + sid % 50
        streams = [{"id": f"{sid}-{i}", "user_id": str(i), "user_login": f"c{i}",
                    "viewer_count": i} for i in range(n)]
        chatters = {f"c{i}": {f"u{j}": "names" for j in range(20)} for i in range(n)}
        write_snapshot(con, SnapshotData(started_at=t, finished_at=t, streams=streams,
                                         chatters=chatters), snapshot_id=sid)
""")


@pytest.mark.slow
def test_kill_9_at_any_moment_leaves_only_whole_snapshots(tmp_path) -> None:
    db = tmp_path / "crash.duckdb"
    for delay in (0.3, 0.55, 0.8):
        start_and_kill(_WRITER, str(db), delay=delay)
        con = open_store(db)
        recover_stale(con)
        complete = [r[0] for r in con.execute(
            "SELECT snapshot_id FROM snapshots WHERE status = 'complete'").fetchall()]
        assert complete, "the writer never finished a snapshot"
        for sid in complete:
            n = 50 + sid % 50
            assert _count(con, "streams", f"snapshot_id = {sid}") == n
            assert _count(con, "chatters", f"snapshot_id = {sid}") == n * 20
        assert _count(con, "streams", "snapshot_id NOT IN (SELECT snapshot_id FROM snapshots "
                      "WHERE status = 'complete')") == 0
        assert _count(con, "snapshots", "status = 'running'") == 0
        con.close()


def test_registered_frame_is_gone_after_the_block_even_on_error() -> None:
    con = duckdb.connect(":memory:")
    with registered(con, "_tg_t", pd.DataFrame({"x": [1, 2]})) as name:
        assert con.execute(f"SELECT sum(x) FROM {name}").fetchall() == [(3,)]
    with pytest.raises(ZeroDivisionError), registered(con, "_tg_t", pd.DataFrame({"x": [1]})):
        1 / 0  # noqa: B018
    with pytest.raises(duckdb.CatalogException):
        con.execute("SELECT * FROM _tg_t")
