"""`twitchgraph bots import | build | report` through the CLI runner: exit codes, messages."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from twitchgraph.cli import app

from ._build_fixtures import add_live, add_snapshots, new_store, users_named
from ._collect_fixtures import store_held_by_another_process

runner = CliRunner()


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "store.duckdb"
    con = new_store(str(path))
    sids = add_snapshots(con, 4)
    add_live(con, sids, "alpha", viewers=300, chatters=users_named("u", 20) + ["nightbot"])
    add_live(con, sids, "beta", viewers=200, chatters=users_named("u", 20, start=10))
    add_live(con, sids, "gamma", viewers=5, chatters=users_named("u", 20))
    con.close()
    return path


def _run(*args: str):
    return runner.invoke(app, list(args))


def test_build_writes_graph_dir(db, tmp_path):
    out = tmp_path / "graph"
    r = _run("build", "--db", str(db), "--out", str(out), "--every-nth", "1",
             "--min-live-minutes", "15", "--weight", "jaccard")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "2 streamers, 1 edges" in r.output
    edges = pd.read_csv(out / "edges.csv")
    assert edges[["Source", "Target"]].values.tolist() == [["alpha", "beta"]]
    assert edges.Weight.iloc[0] == pytest.approx(100 * 10 / 30)
    meta = json.loads((out / "build.json").read_text())
    assert meta["parameters"]["weight"] == "jaccard"
    assert meta["removed_bots"]["builtin"]["users"] == 1
    assert meta["filters"][1] == {"filter": "min_viewer_mean", "value": 10.0, "before": 3,
                                  "after": 2}  # fmt: skip


def test_build_errors_are_one_line(db, tmp_path):
    r = _run("build", "--db", str(db), "--out", str(tmp_path / "g"), "--every-nth", "1",
             "--min-live-minutes", "0", "--min-viewer-mean", "1000")  # fmt: skip
    assert r.exit_code == 1
    assert "min_viewer_mean=1000.0 left no streamer (3 before, 0 after)" in r.output
    assert "Traceback" not in r.output
    r = _run("build", "--db", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "g"))
    assert r.exit_code == 1 and "no store at" in r.output
    r = _run("build", "--db", str(db), "--out", str(tmp_path / "g"), "--since", "yesterday")
    assert r.exit_code == 1 and "--since 'yesterday' is not an ISO time" in r.output
    r = _run("build", "--db", str(db), "--out", str(tmp_path / "g"), "--memory-limit", "lots")
    assert r.exit_code == 1 and "--memory-limit 'lots' is not a size" in r.output
    assert not (tmp_path / "g").exists()


def test_bots_import(db, tmp_path):
    csv = tmp_path / "bots.csv"
    csv.write_text("Username,channels\nu0,900\nU1,800\n")
    r = _run("bots", "import", str(csv), "--db", str(db))
    assert r.exit_code == 0, r.output
    assert "2 new bot logins" in r.output
    out = tmp_path / "graph"
    r = _run("build", "--db", str(db), "--out", str(out), "--every-nth", "1",
             "--min-live-minutes", "0", "--min-viewer-mean", "0")  # fmt: skip
    meta = json.loads((out / "build.json").read_text())
    assert meta["removed_bots"]["list"] == {"users": 2, "chatter_rows": 2 * 2 * 4}  # alpha, gamma
    csv.write_text("Username,channels\nok,1\nbad name,2\n")
    r = _run("bots", "import", str(csv), "--db", str(db))
    assert r.exit_code == 1
    assert "line 3" in r.output


@pytest.mark.slow
def test_reports(db, tmp_path):
    r = _run("report", "quality", "--db", str(db), "--out", str(tmp_path / "rep"))
    assert r.exit_code == 0, r.output
    assert (tmp_path / "rep" / "quality.html").is_file()
    graph = tmp_path / "graph"
    r = _run("build", "--db", str(db), "--out", str(graph), "--every-nth", "1",
             "--min-live-minutes", "15")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = _run("report", "explore", "--graph", str(graph), "--out", str(tmp_path / "rep"))
    assert r.exit_code == 0, r.output
    assert (tmp_path / "rep" / "figures" / "degree.png").is_file()
    r = _run("report", "explore", "--graph", str(tmp_path), "--out", str(tmp_path / "rep"))
    assert r.exit_code == 1 and "not a GRAPH_DIR" in r.output
    r = _run("report", "quality", "--db", str(db), "--out", str(tmp_path / "rep2"),
             "--bot-channel-share", "0")  # fmt: skip
    assert r.exit_code == 1 and "bot channel share must be in (0, 1], got 0.0" in r.output
    assert not (tmp_path / "rep2").exists()


def test_enrich_without_credentials_runs_the_offline_sources(db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .env here
    for var in ("TWITCH_CLIENT_ID", "TWITCH_CLIENT_SECRET", "TWITCH_GQL_CLIENT_ID"):
        monkeypatch.delenv(var, raising=False)
    con = new_store(str(db))
    con.execute("INSERT INTO users VALUES ('1', 'alpha', 'Alpha', '', "
                "'https://kick.com/alpha', NULL, '', '', now())")  # fmt: skip
    con.close()
    r = _run("enrich", "--db", str(db), "--no-steam", "--no-igdb")
    assert r.exit_code == 0, r.output
    assert "helix games: asked 0, found 0 - FAILED: no Twitch credentials" in r.output
    assert "social (description): asked 1, found 1, matched 1" in r.output
    out = tmp_path / "graph"
    r = _run("build", "--db", str(db), "--out", str(out), "--every-nth", "1",
             "--min-live-minutes", "0")  # fmt: skip
    streamers = pd.read_csv(out / "streamers.csv").set_index("Id")
    assert streamers.loc["alpha", "social_links"] == "https://kick.com/alpha"
    r = _run("enrich", "--db", str(db), "--match-threshold", "120")
    assert r.exit_code == 1 and "between 0 and 100" in r.output


def test_build_passes_every_option_through(db, tmp_path):
    out = tmp_path / "graph"
    r = _run("build", "--db", str(db), "--out", str(out), "--since", "2022-05-02T10:04Z",
             "--until", "2022-05-02T10:20:00+00:00", "--every-nth", "2", "--language", "it",
             "--min-live-minutes", "5", "--min-viewer-mean", "1", "--min-chatter-mean", "1",
             "--min-weight", "2", "--weight", "shared", "--min-game-minutes", "1",
             "--drop-suspected", "--bot-channel-share", "0.5",
             "--memory-limit", "512MB")  # fmt: skip
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "build.json").read_text())
    assert meta["parameters"] == {
        "since": "2022-05-02T10:04:00+00:00", "until": "2022-05-02T10:20:00+00:00",
        "every_nth": 2, "language": "it", "min_live_minutes": 5.0, "min_viewer_mean": 1.0,
        "min_chatter_mean": 1.0, "min_weight": 2.0, "weight": "shared",
        "min_game_minutes": 1.0, "drop_suspected": True, "bot_channel_share": 0.5,
        "bot_min_channels": 3,
    }  # fmt: skip
    assert meta["snapshots"]["in_window"] == 3 and meta["snapshots"]["used"] == 2
    # u10..u19 chat in all three channels: suspected at > 50 % of 3 channels, then dropped
    assert meta["removed_bots"]["suspected"]["users"] == 10


@pytest.mark.slow
def test_a_store_locked_by_another_process_is_one_line(db, tmp_path):
    with store_held_by_another_process(db):
        for args in (["build", "--out", str(tmp_path / "g")],
                     ["report", "quality", "--out", str(tmp_path / "rep")],
                     ["bots", "import", str(tmp_path / "bots.csv")]):  # fmt: skip
            (tmp_path / "bots.csv").write_text("login\nsomebot\n")
            r = _run(*args, "--db", str(db))
            assert r.exit_code == 1, r.output
            assert f"cannot open the store {db}" in r.output
            assert "Traceback" not in r.output
        assert not (tmp_path / "g").exists()


def test_an_out_that_is_a_file_is_one_line(db, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("not a directory")
    for args in (["build", "--out", str(taken), "--every-nth", "1", "--min-live-minutes", "15"],
                 ["report", "quality", "--out", str(taken)]):  # fmt: skip
        r = _run(*args, "--db", str(db))
        assert r.exit_code == 1, r.output
        assert f"cannot write to --out {taken}" in r.output
        assert "pass a directory you can write" in r.output
    assert taken.read_text() == "not a directory"
