"""The Hive-partitioned Parquet dataset: layout, writers, shards' slots, reading it back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from twitchgraph.cli import app
from twitchgraph.store.dataset import DatasetError, export_partitioned, open_dataset
from twitchgraph.store.db import SCHEMA_VERSION, SnapshotData, open_store, write_snapshot

T0 = datetime(2026, 11, 20, 23, 50, tzinfo=UTC)  # two slots before midnight, two after


def _snapshot(at: datetime, channels: dict[str, list[str]], *, shard: tuple[int, int] | None,
              status: str = "complete") -> SnapshotData:
    return SnapshotData(
        started_at=at, finished_at=at + timedelta(seconds=60), interval_s=300.0,
        streams=[{"id": f"s-{c}", "user_id": f"u-{c}", "user_login": c, "user_name": c.title(),
                  "viewer_count": 10 + len(users), "language": "it", "game_name": "Chess"}
                 for c, users in channels.items()] if status == "complete" else [],
        chatters={c: {u: "names" for u in users} for c, users in channels.items()}
        if status == "complete" else {},
        params={"shard": list(shard) if shard else None}, status=status,
        error="" if status == "complete" else "chat: nothing joined")


def _store(path, snapshots):
    con = open_store(path)
    for data in snapshots:
        write_snapshot(con, data)
    return con


def test_layout_manifest_and_rows_of_complete_snapshots_only(tmp_path):
    con = _store(tmp_path / "a.duckdb", [
        _snapshot(T0 + timedelta(minutes=5 * k), {"alpha": ["u1", "u2"], "beta": ["u2"]},
                  shard=None) for k in range(4)
    ] + [_snapshot(T0 + timedelta(minutes=20), {}, shard=None, status="failed")])
    counts = export_partitioned(con, tmp_path / "ds", writer="a")
    assert counts["snapshots"] == 5 and counts["streams"] == 8 and counts["chatters"] == 12
    days = sorted(p.name for p in (tmp_path / "ds" / "chatters").iterdir())
    assert days == ["date=2026-11-20", "date=2026-11-21"]
    assert (tmp_path / "ds" / "chatters" / "date=2026-11-20" / "a.0.parquet").exists()
    assert (tmp_path / "ds" / "users" / "a.parquet").exists()
    assert (tmp_path / "ds" / "game_matches" / "a.parquet").exists()  # empty, with columns
    manifest = json.loads((tmp_path / "ds" / "_twitchgraph.json").read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION
    # Exporting again replaces the writer's files: no row twice.
    export_partitioned(con, tmp_path / "ds", writer="a")
    ds = open_dataset(tmp_path / "ds")
    assert ds.execute("SELECT status, count(*) FROM snapshots GROUP BY 1 ORDER BY 1"
                      ).fetchall() == [("complete", 4), ("failed", 1)]
    got = ds.execute("SELECT s.started_at, c.channel_login, c.user_login FROM chatters c "
                     "JOIN snapshots s USING (snapshot_id) ORDER BY 1, 2, 3").fetchall()
    want = con.execute("SELECT s.started_at, c.channel_login, c.user_login FROM chatters c "
                       "JOIN snapshots s USING (snapshot_id) ORDER BY 1, 2, 3").fetchall()
    assert got == want and len(got) == 12


def test_shards_form_one_snapshot_per_slot_and_a_missing_shard_leaves_it_partial(tmp_path):
    slots = [T0 + timedelta(minutes=5 * k) for k in range(3)]
    # Shard 1 completes every slot; shard 2 fails the second and was killed before the third.
    one = _store(tmp_path / "s1.duckdb", [
        _snapshot(t + timedelta(seconds=1.5), {"alpha": ["u1", "u2"]}, shard=(1, 2))
        for t in slots])
    two = _store(tmp_path / "s2.duckdb", [
        _snapshot(slots[0] + timedelta(seconds=3), {"beta": ["u2", "u3"]}, shard=(2, 2)),
        _snapshot(slots[1] + timedelta(seconds=2), {}, shard=(2, 2), status="failed")])
    export_partitioned(one, tmp_path / "ds", writer="s1")
    export_partitioned(two, tmp_path / "ds", writer="s2")
    ds = open_dataset(tmp_path / "ds")
    rows = ds.execute("SELECT started_at, status, shards_complete, shards FROM snapshots "
                      "ORDER BY started_at").fetchall()
    assert rows == [(slots[0], "complete", 2, 2), (slots[1], "partial", 1, 2),
                    (slots[2], "partial", 1, 2)]
    first = ds.execute("SELECT channel_login, user_login FROM chatters JOIN snapshots "
                       "USING (snapshot_id) WHERE status = 'complete' ORDER BY 1, 2").fetchall()
    assert first == [("alpha", "u1"), ("alpha", "u2"), ("beta", "u2"), ("beta", "u3")]


def test_a_dataset_of_another_schema_is_refused(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "_twitchgraph.json").write_text('{"schema_version": 99}')
    con = _store(tmp_path / "a.duckdb", [_snapshot(T0, {"alpha": ["u1"]}, shard=None)])
    with pytest.raises(DatasetError, match="schema 99"):
        export_partitioned(con, tmp_path / "ds")
    with pytest.raises(DatasetError, match="not a twitchgraph dataset"):
        open_dataset(tmp_path)
    with pytest.raises(DatasetError, match="writer name"):
        export_partitioned(con, tmp_path / "other", writer="../x")


def test_cli_export_parquet_partitioned(tmp_path):
    db = tmp_path / "shard-1.duckdb"
    _store(db, [_snapshot(T0, {"alpha": ["u1"]}, shard=(1, 3))]).close()
    result = CliRunner().invoke(app, ["export-parquet", "--partitioned", str(tmp_path / "ds"),
                                      "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "chatters: 1 rows" in result.output
    assert (tmp_path / "ds" / "_writers" / "shard-1.json").exists()
    assert (tmp_path / "ds" / "chatters" / "date=2026-11-20" / "shard-1.0.parquet").exists()
    result = CliRunner().invoke(app, ["export-parquet", str(tmp_path / "p"), "--db", str(db),
                                      "--writer", "x"])
    assert result.exit_code == 1 and "--writer needs --partitioned" in result.output


def test_cli_build_from_a_sharded_dataset_uses_complete_slots_only(tmp_path):
    slots = [T0 + timedelta(minutes=5 * k) for k in range(4)]
    one = _store(tmp_path / "s1.duckdb", [
        _snapshot(t + timedelta(seconds=1), {"alpha": ["u1", "u2", "u3"]}, shard=(1, 2))
        for t in slots])
    two = _store(tmp_path / "s2.duckdb", [  # killed before the last slot
        _snapshot(t + timedelta(seconds=2), {"beta": ["u2", "u3", "u4"]}, shard=(2, 2))
        for t in slots[:3]])
    export_partitioned(one, tmp_path / "ds", writer="s1")
    export_partitioned(two, tmp_path / "ds", writer="s2")
    runner = CliRunner()
    result = runner.invoke(app, [
        "build", "--dataset", str(tmp_path / "ds"), "--out", str(tmp_path / "g"),
        "--every-nth", "1", "--min-live-minutes", "0", "--min-viewer-mean", "0",
        "--min-chatter-mean", "0", "--min-weight", "0", "--min-game-minutes", "0"])
    assert result.exit_code == 0, result.output
    assert "1 slot(s) left out" in result.output
    stats = json.loads((tmp_path / "g" / "build.json").read_text())
    assert stats["snapshots"]["used"] == 3 and stats["snapshots"]["partial"] == 1
    assert stats["snapshots"]["partial_slots"][0]["slot"].startswith("2026-11-21 00:05:00")
    streamers = {line.split(",")[2]: line for line in
                 (tmp_path / "g" / "streamers.csv").read_text().splitlines()[1:]}
    assert set(streamers) == {"alpha", "beta"}
    assert ",15.0," in streamers["alpha"]  # 3 complete slots x 5 minutes, not 4
    edges = (tmp_path / "g" / "edges.csv").read_text().splitlines()
    assert edges[1].split(",")[:2] == ["alpha", "beta"] or edges[1].split(",")[:2] == [
        "beta", "alpha"]
    result = runner.invoke(app, ["build", "--dataset", str(tmp_path / "nope"), "--out",
                                 str(tmp_path / "g2")])
    assert result.exit_code == 1 and "is not a folder" in result.output
    result = runner.invoke(app, ["build", "--dataset", str(tmp_path), "--out",
                                 str(tmp_path / "g2")])
    assert result.exit_code == 1 and "not a twitchgraph dataset" in result.output
