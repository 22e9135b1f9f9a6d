"""Communities over time: matching, lineages, and a small store built day by day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from typer.testing import CliRunner

from twitchgraph.build.params import BuildParams
from twitchgraph.cli import app
from twitchgraph.graph.evolve import (
    EvolveError,
    evolve_store,
    match_communities,
    parse_window,
    track_communities,
    write_evolution,
)
from twitchgraph.store.db import open_store

from ._collect_fixtures import store_held_by_another_process

DAY0 = datetime(2022, 5, 2, tzinfo=UTC)


def test_parse_window():
    assert parse_window("1d") == timedelta(days=1)
    assert parse_window("30m") == timedelta(minutes=30)
    assert parse_window("2w") == timedelta(weeks=2)
    with pytest.raises(ValueError, match="10m, 24h, 1d or 1w"):
        parse_window("tomorrow")
    with pytest.raises(ValueError, match="longer than zero"):
        parse_window("0h")


def test_match_by_jaccard_threshold():
    prev = {"a": 0, "b": 0, "c": 0, "d": 1}
    curr = {"a": 7, "b": 7, "x": 7, "c": 8, "d": 8}
    assert match_communities(prev, curr, min_jaccard=0.3) == [(0, 7, 0.5), (1, 8, 0.5)]
    assert match_communities(prev, curr, min_jaccard=0.6) == []


def test_births_deaths_splits_merges_and_moves():
    a = [f"a{i}" for i in range(6)]
    b = [f"b{i}" for i in range(6)]
    c = [f"c{i}" for i in range(6)]
    d = [f"d{i}" for i in range(6)]
    w0 = {**{x: 0 for x in a}, **{x: 1 for x in b}, **{x: 2 for x in c}}
    # b splits in two, c dies, d is born and a5 moves to it.
    w1 = {**{x: 0 for x in a[:5]}, **{x: 1 for x in b[:3]}, **{x: 2 for x in b[3:]},
          **{x: 3 for x in d + ["a5"]}}
    # The two halves of b merge again.
    w2 = {**{x: 0 for x in a[:5]}, **{x: 1 for x in b}, **{x: 3 for x in d + ["a5"]}}
    evo = track_communities(["d0", "d1", "d2"], [w0, w1, w2])
    t1, t2 = evo.transitions
    assert t1.splits == {1: [1, 2]} and t1.merges == {}
    assert t1.deaths == [2] and t1.births == [3]
    assert evo.lineages[1][0] == evo.lineages[0][0]  # a continues
    assert evo.lineages[1][3] not in evo.lineages[0].values()  # d is new
    moved = {login for login, _, _ in t1.moved}
    assert "a5" in moved and set(b[3:]) <= moved and not set(b[:3]) & moved
    assert t2.merges == {1: [1, 2]} and t2.splits == {} and t2.births == [] == t2.deaths
    events = evo.events
    assert sorted(events["event"]) == ["birth", "death", "merge", "split"]
    assert evo.summary["communities"].tolist() == [3, 4, 3]


def _store_with_days(path, days: list[dict[str, list[str]]], *, per_day: int = 4):
    """A store where, each day, every community's streamers share one pool of chatters."""
    con = open_store(path)
    sid = 0
    streams, chatters = [], []
    for day, groups in enumerate(days):
        for k in range(per_day):
            sid += 1
            at = DAY0 + timedelta(days=day, hours=8 + k)
            con.execute("INSERT INTO snapshots VALUES (?, ?, ?, 'complete', 3600, NULL)",
                        [sid, at, at + timedelta(minutes=1)])
            for name, logins in groups.items():
                pool = [f"viewer_{name}_{day}_{i}" for i in range(40)]
                for j, login in enumerate(logins):
                    streams.append((sid, f"s-{login}", f"u-{login}", login, login.title(),
                                    "g1", "Chess", "title", 50 + j, at, "it", False))
                    for user in pool[j % 5: j % 5 + 30]:
                        chatters.append((sid, login, user, "names"))
    frame = pd.DataFrame(streams, columns=["snapshot_id", "stream_id", "user_id", "user_login",
                                           "user_name", "game_id", "game_name", "title",
                                           "viewer_count", "started_at", "language",
                                           "is_mature"])
    con.register("streams_df", frame)
    con.execute("INSERT INTO streams SELECT snapshot_id, stream_id, user_id, user_login, "
                "user_name, game_id, game_name, title, viewer_count, started_at, language, "
                "[]::VARCHAR[], is_mature FROM streams_df")
    con.register("chatters_df", pd.DataFrame(chatters, columns=["snapshot_id", "channel_login",
                                                               "user_login", "source"]))
    con.execute("INSERT INTO chatters SELECT * FROM chatters_df")
    con.close()


@pytest.fixture()
def store(tmp_path):
    a = [f"a{i}" for i in range(6)]
    b = [f"b{i}" for i in range(6)]
    c = [f"c{i}" for i in range(6)]
    d = [f"d{i}" for i in range(6)]
    days = [
        {"A": a, "B": b, "C": c},
        {"A": a[:5], "B1": b[:3], "B2": b[3:], "D": d + ["a5"]},
    ]
    path = tmp_path / "store.duckdb"
    _store_with_days(path, days)
    return path


LOW = BuildParams(min_live_minutes=0, min_viewer_mean=1, min_chatter_mean=1, min_weight=10)


def test_evolve_store_finds_the_planted_events(store, tmp_path):
    evo = evolve_store(store, window=timedelta(days=1), build_params=LOW)
    assert evo.windows == ["2022-05-02", "2022-05-03"]
    (t,) = evo.transitions
    assert len(t.splits) == 1 and len(next(iter(t.splits.values()))) == 2
    assert len(t.deaths) == 1 and len(t.births) == 1
    assert "a5" in {login for login, _, _ in t.moved}
    written = write_evolution(evo, tmp_path / "out")
    assert {p.name for p in written} == {"summary.csv", "events.csv", "moves.csv", "evolve.png"}
    assert (tmp_path / "out" / "evolve.png").stat().st_size > 5000


def test_cli_evolve(store, tmp_path):
    result = CliRunner().invoke(app, [
        "evolve", "--db", str(store), "--window", "1d", "--out", str(tmp_path / "ev"),
        "--min-live-minutes", "0", "--min-viewer-mean", "1", "--min-chatter-mean", "1"])
    assert result.exit_code == 0, result.output
    assert "2022-05-03" in result.output and "events.csv" in result.output
    bad = CliRunner().invoke(app, ["evolve", "--db", str(store), "--window", "soon"])
    assert bad.exit_code == 1 and "--window: not a duration" in bad.output
    missing = CliRunner().invoke(app, ["evolve", "--db", str(tmp_path / "nope.duckdb")])
    assert missing.exit_code == 1 and "twitchgraph collect" in missing.output


def test_cli_evolve_names_a_store_locked_by_another_process(tmp_path):
    db = tmp_path / "tg.duckdb"
    open_store(db).close()
    with store_held_by_another_process(db):
        result = CliRunner().invoke(app, ["evolve", "--db", str(db), "--out",
                                          str(tmp_path / "evo")])
        assert result.exit_code == 1, result.output
        assert f"cannot open the store {db}" in result.output.replace("\n", "")
        assert "Traceback" not in result.output


def test_lineages_bridge_an_empty_window():
    """Issue 27: a window without a snapshot made every community die and be born again."""
    a = {f"a{i}": 0 for i in range(6)}
    b = {f"b{i}": 1 for i in range(6)}
    evo = track_communities(["d0", "d1", "d2", "d3"], [{**a, **b}, {}, {}, {**a, **b}],
                            notes=["", "no complete snapshot in this window", "x", ""])
    assert evo.lineages[3] == evo.lineages[0] == {0: 0, 1: 1}
    gap1, gap2, back = evo.transitions
    assert gap1.gap and gap2.gap and not back.gap and back.previous == 0
    assert back.births == [] and back.deaths == [] and back.moved == []
    assert evo.events.empty
    summary = evo.summary
    assert summary["births"].tolist() == [2, 0, 0, 0]
    assert summary["deaths"].tolist() == [0, 0, 0, 0]
    assert summary["note"].tolist() == [
        "", "no graph: no complete snapshot in this window", "no graph: x",
        "compared with d0, across 2 empty windows"]
    # A community that changed across the gap is matched with the last graph before it.
    after = {**{f"a{i}": 5 for i in range(6)}, **{f"b{i}": 5 for i in range(6)}}
    merged = track_communities(["d0", "d1", "d2"], [{**a, **b}, {}, after])
    (_, t) = merged.transitions
    assert t.merges == {5: [0, 1]} and t.previous == 0
    assert merged.events["event"].tolist() == ["merge"]
    # Windows before the first graph: everything in the first graph is born, nothing dies.
    late = track_communities(["d0", "d1"], [{}, a])
    assert late.transitions[0].births == [0] and late.transitions[0].deaths == []


def test_evolve_store_says_why_a_window_is_empty_and_bridges_it(tmp_path):
    a = [f"a{i}" for i in range(6)]
    b = [f"b{i}" for i in range(6)]
    path = tmp_path / "gap.duckdb"
    _store_with_days(path, [{"A": a, "B": b}, {}, {"A": a, "B": b}])
    # Day 2 has snapshots but no stream; drop them so it has none at all.
    con = open_store(path)
    con.execute("DELETE FROM snapshots WHERE started_at >= ? AND started_at < ?",
                [DAY0 + timedelta(days=1), DAY0 + timedelta(days=2)])
    con.close()
    evo = evolve_store(path, window=timedelta(days=1), build_params=LOW)
    assert evo.windows == ["2022-05-02", "2022-05-03", "2022-05-04"]
    assert evo.notes[1] == "no complete snapshot in this window"
    assert evo.lineages[2] == evo.lineages[0]
    assert evo.summary["deaths"].sum() == 0 and evo.summary["births"].tolist() == [2, 0, 0]
    result = CliRunner().invoke(app, [
        "evolve", "--db", str(path), "--window", "1d", "--out", str(tmp_path / "ev"),
        "--min-live-minutes", "0", "--min-viewer-mean", "1", "--min-chatter-mean", "1"])
    assert result.exit_code == 0, result.output
    assert "no graph: no complete snapshot in this window" in result.output
    assert "compared with 2022-05-02, across 1 empty window" in result.output


def test_far_dates_are_refused_before_any_window_is_built(store, tmp_path):
    """Issue 27: a dump dated 9999-12-31 made evolve raise OverflowError after 90 s."""
    con = open_store(store)
    far = datetime(9999, 12, 31, 12, tzinfo=UTC)
    con.execute("INSERT INTO snapshots VALUES (99, ?, ?, 'complete', 3600, NULL)", [far, far])
    con.close()
    with pytest.raises(EvolveError, match=r"1 complete snapshot\(s\) dated outside "
                       r"2011-01-01 \.\. now plus a day \(it spans 2022-05-02 \.\. 9999-12-31\)"):
        evolve_store(store, window=timedelta(minutes=30), build_params=LOW)
    result = CliRunner().invoke(app, ["evolve", "--db", str(store), "--window", "30m",
                                      "--out", str(tmp_path / "ev")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and "9999-12-31" in result.stderr


def test_too_many_windows_are_refused_before_any_is_built(store):
    with pytest.raises(EvolveError, match=r"^1,621 windows of 0:01:00 from 2022-05-02 to "
                       r"2022-05-03: at most 1,000, choose a longer --window"):
        evolve_store(store, window=timedelta(minutes=1), build_params=LOW)
