"""The collector's spool: snapshots wait on disk while the store is busy, and reach it whole,
once, even when a commit fails half-way or a crash comes between commit and clean-up."""

from __future__ import annotations

import errno
import shutil
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from twitchgraph.store import db as store_module
from twitchgraph.store.db import SnapshotData, StoreBusy, open_store
from twitchgraph.store.spool import Spool, snapshot_from_json, snapshot_to_json

from ._collect_fixtures import make_stream, store_held_by_another_process

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _snapshot(minute: int = 0, n: int = 3) -> SnapshotData:
    at = T0 + timedelta(minutes=minute)
    streams = [make_stream(i, 1000 - i) for i in range(n)]
    return SnapshotData(
        started_at=at, finished_at=at + timedelta(seconds=60), streams=streams,
        chatters={s["user_login"]: {f"v{j}": "names" for j in range(4)} for s in streams},
        listens={s["user_login"]: (60.0, True) for s in streams}, interval_s=300.0,
        raids=[{"raided_at": (at + timedelta(seconds=9)).isoformat(), "from_login": "raider",
                "from_name": "Raider", "to_login": streams[0]["user_login"], "viewers": 12}],
        params={"window_s": 60}, stats={"helix": {"requests": 2}})


def _counts(db) -> tuple[int, int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT (SELECT count(*) FROM snapshots), (SELECT count(*) FROM streams), "
            "(SELECT count(*) FROM chatters)").fetchall()[0]
    finally:
        con.close()


def test_json_round_trip_keeps_every_field() -> None:
    data = _snapshot()
    back = snapshot_from_json(snapshot_to_json(data))
    assert back == data


def test_a_busy_store_keeps_snapshots_spooled_until_it_is_free(tmp_path) -> None:
    db = tmp_path / "s.duckdb"
    open_store(db).close()
    spool = Spool(db)
    with store_held_by_another_process(db, read_only=True):
        spool.put(_snapshot(0))
        spool.put(_snapshot(5))
        with pytest.raises(StoreBusy, match="waited 0 s"):
            spool.commit()
        assert len(spool.pending()) == 2
        assert _counts(db) == (0, 0, 0)  # readers see only what is committed
    committed = spool.commit()
    assert sorted(committed.values()) == [1, 2] and spool.pending() == []
    assert _counts(db) == (2, 6, 24)
    con = duckdb.connect(str(db), read_only=True)
    # committed in the order they were taken
    assert con.execute("SELECT snapshot_id, started_at FROM snapshots ORDER BY 1").fetchall() \
        == [(1, T0), (2, T0 + timedelta(minutes=5))]
    # spooled snapshots carry their raids into the store
    assert con.execute("SELECT snapshot_id, raided_at, viewers FROM raids ORDER BY 1").fetchall() \
        == [(1, T0 + timedelta(seconds=9), 12), (2, T0 + timedelta(minutes=5, seconds=9), 12)]
    con.close()


def test_a_commit_failing_half_way_shows_nothing_and_is_retried(tmp_path, monkeypatch) -> None:
    db = tmp_path / "s.duckdb"
    open_store(db).close()
    spool = Spool(db)
    spool.put(_snapshot(0))
    real = store_module._insert_chatters

    def disk_full(*args, **kwargs):
        raise duckdb.IOException("No space left on device")  # after the streams went in

    monkeypatch.setattr(store_module, "_insert_chatters", disk_full)
    assert spool.commit() == {}
    assert "No space left on device" in spool.last_error
    assert _counts(db) == (0, 0, 0) and len(spool.pending()) == 1
    monkeypatch.setattr(store_module, "_insert_chatters", real)
    assert list(spool.commit().values()) == [1]
    assert _counts(db) == (1, 3, 12) and spool.last_error == ""


def test_a_crash_between_commit_and_clean_up_never_stores_twice(tmp_path) -> None:
    db = tmp_path / "s.duckdb"
    open_store(db).close()
    spool = Spool(db)
    path = spool.put(_snapshot(0))
    kept = tmp_path / "copy.json"
    shutil.copy(path, kept)
    spool.commit()
    shutil.copy(kept, path)  # as if the process died right after the COMMIT
    assert list(spool.commit().values()) == [1]
    assert _counts(db) == (1, 3, 12) and spool.pending() == []


def test_a_full_disk_leaves_no_partial_spool_file(tmp_path, monkeypatch) -> None:
    spool = Spool(tmp_path / "s.duckdb")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("twitchgraph.store.spool.os.fsync", full)
    with pytest.raises(OSError, match="No space"):
        spool.put(_snapshot(0))
    assert list(spool.dir.iterdir()) == []


def test_a_damaged_spool_file_is_set_aside_and_the_rest_committed(tmp_path) -> None:
    db = tmp_path / "s.duckdb"
    open_store(db).close()
    spool = Spool(db)
    spool.put(_snapshot(0)).write_text("{not json")
    spool.put(_snapshot(5))
    assert list(spool.commit().values()) == [1]
    assert sorted(p.suffix for p in spool.dir.iterdir()) == [".bad", ".error"]
    ((name, error),) = spool.set_aside()
    assert name.endswith(".bad") and error.startswith("not a readable snapshot: JSONDecodeError")


@pytest.mark.parametrize("raid, error", [
    ({"viewers": 10**30}, "has viewer count 1000000000000000000000000000000, not a whole "
     "number from 0 to 2147483647"),
    ({"raided_at": "the day after tomorrow"}, "Conversion Error"),
])
def test_a_snapshot_the_store_cannot_hold_is_set_aside_with_the_real_error(
        tmp_path, raid, error) -> None:
    """Issue 27 item 2: it used to fail as "Current transaction is aborted", stay first in
    line, and block every later snapshot."""
    db = tmp_path / "s.duckdb"
    open_store(db).close()
    spool = Spool(db)
    bad = _snapshot(0)
    bad.raids = [{**bad.raids[0], **raid}]
    spool.put(bad)
    spool.put(_snapshot(5))
    spool.put(_snapshot(10))
    assert list(spool.commit().values()) == [1, 2]
    assert spool.pending() == [] and spool.last_error == ""
    ((_, why),) = spool.set_aside()
    assert error in why and "transaction is aborted" not in why
    assert _counts(db) == (2, 6, 24)


def test_a_backlog_goes_in_over_several_short_holds(tmp_path) -> None:
    db = tmp_path / "s.duckdb"
    open_store(db).close()
    spool = Spool(db)
    for minute in range(3):
        spool.put(_snapshot(minute))
    assert len(spool.commit(budget_s=0)) == 1  # one file per hold at the least
    assert len(spool.pending()) == 2
    assert len(spool.commit()) == 2 and _counts(db)[0] == 3
