"""One build definition, two engines: DuckDB and Spark give the same graph on the same snapshots.

The Spark tests share one local session (starting one costs seconds) and skip only when
there is no Java to run it.
"""

from __future__ import annotations

import json
import shlex
import shutil
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from twitchgraph.build.bots import import_bot_csv
from twitchgraph.build.definition import build_graph
from twitchgraph.build.params import BuildParams
from twitchgraph.cli import app
from twitchgraph.graphio import write_graph_dir
from twitchgraph.store.dataset import export_partitioned, open_dataset
from twitchgraph.store.db import SnapshotData, open_store, upsert_users, write_snapshot

from ._build_fixtures import T0
from ._examples import SPARK_EXAMPLE, help_examples

PARAMS = BuildParams(every_nth=2, min_live_minutes=20, min_viewer_mean=5, min_chatter_mean=3,
              min_weight=10, min_game_minutes=20)
GRAPH_FILES = ("streamers.csv", "edges.csv", "played.csv", "flows.csv")


def _world(seed: int = 7) -> list[SnapshotData]:
    """12 snapshots of 14 channels in two audiences, with bots, duplicates, a second
    language, ties in viewer means and a failed snapshot."""
    rng = np.random.default_rng(seed)
    channels = [f"ch{i:02d}" for i in range(14)]
    snapshots = []
    for k in range(12):
        at = T0 + timedelta(minutes=5 * k, seconds=int(rng.integers(0, 20)))
        if k == 5:
            snapshots.append(SnapshotData(started_at=at, finished_at=at, interval_s=300.0,
                                          status="failed", error="chat: nothing joined"))
            continue
        streams, chatters = [], {}
        for i, login in enumerate(channels):
            if rng.random() < 0.2:
                continue
            viewers = 40 if i in (3, 4) else int(rng.integers(2, 300))  # 3 and 4 tie
            stream = {"id": f"s{i}", "user_id": f"u{i}", "user_login": login,
                      "user_name": login.upper(), "viewer_count": viewers,
                      "language": "en" if i == 13 else "it",
                      "game_id": f"g{i % 4}", "game_name": ["Chess", "Art", "Music", ""][i % 4]}
            streams.append(stream)
            if i == 2:  # Helix paging repeats a stream: the row with most viewers counts
                streams.append({**stream, "viewer_count": viewers - 1, "game_name": "Art"})
            audience = range(0, 60) if i < 7 else range(40, 100)
            users = {f"v{u}" for u in audience if rng.random() < 0.15}
            users |= {"nightbot", "listedbot"} if i % 2 else set()
            chatters[login] = {u: "names" for u in users}
        snapshots.append(SnapshotData(started_at=at, finished_at=at + timedelta(seconds=60),
                                      interval_s=300.0, streams=streams, chatters=chatters))
    return snapshots


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("engines") / "tg.duckdb"
    con = open_store(path)
    for data in _world():
        write_snapshot(con, data)
    upsert_users(con, [{"id": "u1", "login": "ch01", "display_name": "Ch One",
                        "broadcaster_type": "partner"}])
    bots = path.parent / "bots.csv"
    bots.write_text("login\nlistedbot\n")
    import_bot_csv(con, bots)
    con.close()
    return path


def _same_graph(a, b) -> None:
    """The same rows after sorting; floats within 1e-9."""
    for name in GRAPH_FILES:
        x = pd.read_csv(a / name, keep_default_na=False)
        y = pd.read_csv(b / name, keep_default_na=False)
        assert list(x.columns) == list(y.columns), name
        assert len(x) == len(y) and len(x) > 0, name
        keys = list(x.columns)
        x = x.sort_values(keys, kind="stable").reset_index(drop=True)
        y = y.sort_values(keys, kind="stable").reset_index(drop=True)
        for column in keys:
            if pd.api.types.is_float_dtype(x[column]):
                assert np.allclose(x[column], y[column], rtol=0, atol=1e-9), (name, column)
            else:
                assert x[column].astype(str).tolist() == y[column].astype(str).tolist(), (
                    name, column)


def test_duckdb_reads_the_dataset_as_it_reads_the_store(store, tmp_path):
    con = open_store(store, read_only=True)
    write_graph_dir(build_graph(con, PARAMS), tmp_path / "store")
    export_partitioned(con, tmp_path / "ds")
    con.close()
    result = build_graph(open_dataset(tmp_path / "ds"), PARAMS)
    write_graph_dir(result, tmp_path / "dataset")
    _same_graph(tmp_path / "store", tmp_path / "dataset")
    edges = pd.read_csv(tmp_path / "store" / "edges.csv")
    streamers = pd.read_csv(tmp_path / "store" / "streamers.csv")
    assert len(edges) >= 5 and len(streamers) >= 6  # a graph worth comparing
    assert len(pd.read_csv(tmp_path / "store" / "flows.csv")) >= 5
    assert "listedbot" not in streamers["login"].tolist()


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None:
        pytest.skip("no Java: the Spark engine needs Java 17 or later")
    from twitchgraph.build.engines import spark_session

    # A JVM for small data: the first JIT tier only and one GC thread. The same plans and
    # results, in about 60% of the CPU (the suite runs beside twostream's).
    session = spark_session("local[2]", conf={
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """A Parquet dataset written by two shards' collectors, one killed before the last slot,
    with a bot list and profiles; returns (its folder, the complete snapshots)."""
    root = tmp_path_factory.mktemp("sharded")
    world = [s for s in _world(seed=11) if s.status == "complete"]
    for shard in (1, 2):
        con = open_store(root / f"shard{shard}.duckdb")
        for k, data in enumerate(world):
            if shard == 2 and k == len(world) - 1:
                break  # shard 2 was killed before the last slot
            mine = {c: u for c, u in data.chatters.items() if int(c[2:]) % 2 == shard - 1}
            write_snapshot(con, SnapshotData(
                started_at=data.started_at, finished_at=data.finished_at,
                interval_s=300.0, params={"shard": [shard, 2]}, chatters=mine,
                streams=[s for s in data.streams if s["user_login"] in mine]))
        if shard == 1:
            upsert_users(con, [{"id": "u1", "login": "ch01", "display_name": "Ch One",
                                "broadcaster_type": "partner"}])
            (root / "bots.csv").write_text("login\nlistedbot\n")
            import_bot_csv(con, root / "bots.csv")
        export_partitioned(con, root / "ds", writer=f"shard{shard}")
        con.close()
    return root / "ds", world


@pytest.mark.slow
def test_spark_builds_what_duckdb_builds_from_sharded_collectors(spark, sharded, tmp_path):
    """One Spark build (they cost tens of seconds), both engines through the CLI."""
    dataset, world = sharded
    args = ["--dataset", str(dataset), "--every-nth", "2", "--min-live-minutes", "20",
            "--min-viewer-mean", "5", "--min-chatter-mean", "3", "--min-game-minutes", "20"]
    runner = CliRunner()
    duck = runner.invoke(app, ["build", "--out", str(tmp_path / "duckdb"), *args])
    assert duck.exit_code == 0, duck.output
    sparked = runner.invoke(app, ["build", "--engine", "spark", "--out",
                                  str(tmp_path / "spark"), *args])
    assert sparked.exit_code == 0, sparked.output
    assert "1 slot(s) left out" in sparked.output
    _same_graph(tmp_path / "duckdb", tmp_path / "spark")
    a = json.loads((tmp_path / "duckdb" / "build.json").read_text())
    b = json.loads((tmp_path / "spark" / "build.json").read_text())
    assert (a["engine"], b["engine"]) == ("duckdb", "spark")
    for key in ("snapshots", "stream_rows", "chatter_rows", "removed_bots", "filters", "edges",
                "played", "streamers", "snapshot_minutes", "flows"):
        assert a[key] == b[key], key
    assert a["snapshots"]["partial"] == 1 and a["snapshots"]["complete"] == len(world) - 1
    assert a["snapshots"]["partial_slots"][0]["shards_complete"] == 1
    assert a["removed_bots"]["list"]["users"] == 1
    streamers = pd.read_csv(tmp_path / "spark" / "streamers.csv").set_index("login")
    assert streamers.loc["ch01", "broadcaster_type"] == "partner"


@pytest.mark.slow
def test_the_spark_help_example_runs_as_written(spark, sharded, tmp_path, monkeypatch):
    """`build --help`'s Spark example, in a folder laid out as it expects (the rest of the help
    examples run in test_cli_examples; this one shares the session above)."""
    lines = [line for _, line in help_examples() if line.startswith(SPARK_EXAMPLE)]
    assert len(lines) == 1, lines
    args = shlex.split(lines[0])
    shutil.copytree(sharded[0], tmp_path / "dataset")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args[1:])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    built = json.loads((tmp_path / "graph" / "build.json").read_text())
    assert built["engine"] == "spark"
    assert (tmp_path / "graph" / "edges.csv").is_file()
