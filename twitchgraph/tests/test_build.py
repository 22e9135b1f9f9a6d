"""build_graph on tiny hand-made stores: each threshold, weights, direction, window, errors."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest

from twitchgraph.build.definition import BuildError, build_graph
from twitchgraph.build.params import BuildParams
from twitchgraph.graphio import GAME_COLUMNS, RAID_COLUMNS, STREAMER_COLUMNS, write_graph_dir

from ._build_fixtures import T0, add_live, add_snapshots, new_store, users_named

# Thresholds that keep everything, so each test moves only the one it pins.
OPEN = dict(
    every_nth=1,
    min_live_minutes=0,
    min_viewer_mean=0,
    min_chatter_mean=0,
    min_weight=0,
    min_game_minutes=0,
)


def _params(**overrides) -> BuildParams:
    return BuildParams(**{**OPEN, **overrides})


@pytest.fixture
def triangle():
    """a (300 viewers), b (200), c (100) over two 5-minute snapshots.

    S_a = u0..u9, S_b = u5..u14, S_c = u0..u3:
    a-b shared 5, overlap 100*5/10 = 50, jaccard 100*5/15 = 33.33;
    a-c shared 4, overlap 100*4/4 = 100, jaccard 100*4/10 = 40; b-c share nobody.
    """
    con = new_store()
    sids = add_snapshots(con, 2)
    add_live(con, sids, "a", viewers=300, chatters=users_named("u", 10))
    add_live(con, sids, "b", viewers=200, chatters=users_named("u", 10, start=5))
    add_live(con, sids, "c", viewers=100, chatters=users_named("u", 4))
    return con


def _edge(edges: pd.DataFrame, source: str, target: str) -> pd.Series:
    rows = edges[(edges.Source == source) & (edges.Target == target)]
    assert len(rows) == 1, edges
    return rows.iloc[0]


def test_edge_weights_computed_by_hand(triangle):
    r = build_graph(triangle, _params())
    assert len(r.edges) == 2
    ab = _edge(r.edges, "a", "b")
    assert ab.shared == 5
    assert ab.overlap == pytest.approx(50.0)
    assert ab.jaccard == pytest.approx(100 * 5 / 15)
    assert ab.Weight == pytest.approx(50.0)
    assert ab.Type == "Directed"
    ac = _edge(r.edges, "a", "c")
    assert (ac.shared, ac.overlap, ac.jaccard) == (4, pytest.approx(100.0), pytest.approx(40.0))


def test_weight_choice_and_min_weight(triangle):
    r = build_graph(triangle, _params(weight="jaccard", min_weight=35))
    assert list(zip(r.edges.Source, r.edges.Target, strict=True)) == [("a", "c")]
    assert r.edges.Weight.iloc[0] == pytest.approx(40.0)
    r = build_graph(triangle, _params(weight="shared", min_weight=5))
    assert list(zip(r.edges.Source, r.edges.Target, strict=True)) == [("a", "b")]
    assert r.build["edges"]["candidate_pairs"] == 2
    assert r.build["edges"]["after"] == 1


def test_min_weight_just_below_and_above():
    con = new_store()
    sids = add_snapshots(con, 1, interval_s=300)
    # |S_x| = 100, |S_y| = 200; y shares 10 with x -> overlap 10.0; z shares 9 -> 9.0
    add_live(con, sids, "x", viewers=50, chatters=users_named("v", 100))
    add_live(con, sids, "y", viewers=40, chatters=users_named("v", 10) + users_named("w", 190))
    add_live(con, sids, "z", viewers=30, chatters=users_named("v", 9, start=50)
             + users_named("q", 191))  # fmt: skip
    r = build_graph(con, _params(min_weight=10))
    pairs = set(zip(r.edges.Source, r.edges.Target, strict=True))
    assert pairs == {("x", "y")}
    assert r.edges.Weight.iloc[0] == pytest.approx(10.0)


def test_direction_follows_viewer_mean_not_login_order():
    con = new_store()
    sids = add_snapshots(con, 2)
    add_live(con, sids, "aaa", viewers=[10, 20], chatters=["u1", "u2"])  # mean 15
    add_live(con, sids, "zzz", viewers=[30, 10], chatters=["u1", "u2"])  # mean 20
    r = build_graph(con, _params())
    assert (r.edges.Source.iloc[0], r.edges.Target.iloc[0]) == ("zzz", "aaa")


def test_min_live_minutes_just_below_and_above():
    con = new_store()
    sids = add_snapshots(con, 12)  # 5 minutes apart
    add_live(con, sids, "long", chatters=["u1"])  # 12 x 5 = 60 min
    add_live(con, sids[:11], "short", chatters=["u1"])  # 55 min
    r = build_graph(con, _params(min_live_minutes=60))
    assert list(r.streamers.login) == ["long"]
    assert r.streamers.minutes_live.iloc[0] == pytest.approx(60.0)
    step = r.build["filters"][0]
    assert (step["filter"], step["before"], step["after"]) == ("min_live_minutes", 2, 1)


def test_min_viewer_mean_is_a_mean_per_snapshot():
    con = new_store()
    sids = add_snapshots(con, 2)
    add_live(con, sids, "ten", viewers=[5, 15], chatters=["u1"])  # mean 10, peak 15
    add_live(con, sids, "nine", viewers=[9, 10], chatters=["u1"])  # mean 9.5
    r = build_graph(con, _params(min_viewer_mean=10))
    assert list(r.streamers.login) == ["ten"]
    row = r.streamers.iloc[0]
    assert (row.viewer_mean, row.viewer_peak) == (10.0, 15)


def test_min_chatter_mean_counts_zero_in_silent_snapshots():
    con = new_store()
    sids = add_snapshots(con, 2)
    add_live(con, sids[:1], "full", chatters=users_named("f", 12))
    add_live(con, sids[1:], "full", chatters=users_named("f", 8))  # mean 10, total 12
    add_live(con, sids[:1], "thin", chatters=users_named("t", 19))
    add_live(con, sids[1:], "thin", chatters=[])  # mean 9.5 (0 in the second snapshot)
    r = build_graph(con, _params(min_chatter_mean=10))
    assert list(r.streamers.login) == ["full"]
    row = r.streamers.iloc[0]
    assert (row.chatter_mean, row.chatters_total) == (10.0, 12)


def test_min_game_minutes_and_main_game():
    con = new_store()
    sids = add_snapshots(con, 11)
    add_live(con, sids[:6], "p", game="Chess", chatters=["u1"])  # 30 min
    add_live(con, sids[6:], "p", game="Tetris", chatters=["u1"])  # 25 min
    r = build_graph(con, _params(min_game_minutes=30))
    assert r.played.to_dict("records") == [
        {"Source": "p", "Target": "Chess", "minutes_played": 30.0}
    ]
    assert r.build["played"]["before"] == 2
    assert r.streamers.main_game.iloc[0] == "Chess"
    assert list(r.games.Id) == ["Chess"]
    assert list(r.games.columns) == GAME_COLUMNS


def test_every_nth_uses_every_kth_snapshot_and_its_spacing():
    con = new_store()
    sids = add_snapshots(con, 7)  # used with k=3: 1, 4, 7 -> 15-minute steps
    add_live(con, sids, "all", chatters=["u1"])
    add_live(con, [2, 3, 5], "between", chatters=["u1"])
    r = build_graph(con, _params(every_nth=3))
    assert list(r.streamers.login) == ["all"]
    assert r.build["snapshot_minutes"] == pytest.approx(15.0)
    assert r.streamers.minutes_live.iloc[0] == pytest.approx(45.0)
    assert r.build["snapshots"]["used"] == 3


def test_since_until_window_and_failed_snapshots():
    con = new_store()
    add_snapshots(con, 4)  # 10:00 .. 10:15
    add_snapshots(con, 1, start=T0 + timedelta(minutes=20), status="failed", first_id=5)
    add_live(con, [1], "early", chatters=["u1"])
    add_live(con, [2, 3], "mid", chatters=["u1"])
    add_live(con, [5], "failed", chatters=["u1"])
    r = build_graph(
        con,
        _params(since=T0 + timedelta(minutes=5), until=(T0 + timedelta(minutes=15)).isoformat()),
    )
    assert list(r.streamers.login) == ["mid"]
    assert r.build["snapshots"]["in_window"] == 2
    assert r.streamers.minutes_live.iloc[0] == pytest.approx(10.0)


def test_language_filter():
    con = new_store()
    sids = add_snapshots(con, 2)
    add_live(con, sids, "italiano", language="it", chatters=["u1"])
    add_live(con, sids, "english", language="en", chatters=["u1"])
    r = build_graph(con, _params(language="it"))
    assert list(r.streamers.login) == ["italiano"]
    assert r.edges.empty
    with pytest.raises(BuildError, match=r"language filter \(language='fr'\).*4 stream rows"):
        build_graph(con, _params(language="fr"))


def test_bots_removed_per_rule_and_counted():
    con = new_store()
    from twitchgraph.build.bots import ensure_bot_table

    ensure_bot_table(con)
    con.execute("INSERT INTO bots (login, source) VALUES ('listedbot', 'test')")
    sids = add_snapshots(con, 2)
    channels = [f"ch{i}" for i in range(5)]
    for i, ch in enumerate(channels):
        chat = [f"fan{i}", "nightbot", "listedbot"] + (["lurker"] if i < 3 else [])
        add_live(con, sids, ch, chatters=chat)
    r = build_graph(con, _params())
    removed = r.build["removed_bots"]
    assert removed["builtin"] == {"users": 1, "chatter_rows": 10}
    assert removed["list"] == {"users": 1, "chatter_rows": 10}
    assert removed["suspected"] == {"users": 0, "chatter_rows": 0}
    assert r.build["suspected_bots"]["flagged"] == 1  # lurker: 3 of 5 channels
    # lurker still links ch0..ch2
    assert len(r.edges) == 3
    assert r.build["removed_bot_logins"] == {"builtin": ["nightbot"], "list": ["listedbot"],
                                             "suspected": []}  # fmt: skip
    steps = []
    r = build_graph(con, _params(drop_suspected=True), progress=steps.append)
    assert steps[0] == "selecting snapshots" and "pairs of streamers sharing chatters" in steps
    assert r.build["removed_bots"]["suspected"] == {"users": 1, "chatter_rows": 6}
    assert r.build["removed_bot_logins"]["suspected"] == ["lurker"]
    assert r.edges.empty
    assert set(r.streamers.chatters_total) == {1}


def test_duplicate_stream_rows_in_one_snapshot_count_once():
    con = new_store()
    sids = add_snapshots(con, 2)
    add_live(con, sids, "dup", viewers=[10, 20], chatters=["u1"])
    add_live(con, sids[:1], "dup", viewers=12)  # a paging repeat; chatters are stored once
    r = build_graph(con, _params())
    row = r.streamers.iloc[0]
    assert row.minutes_live == pytest.approx(10.0)
    assert row.viewer_mean == pytest.approx(16.0)  # max of the repeats, 12 vs 10 -> 12
    assert r.build["stream_rows"] == {"in_window": 3, "after_dedup": 2, "after_language": 2}


def test_empty_store_and_empty_window_errors():
    con = new_store()
    with pytest.raises(BuildError, match="the store has no snapshots"):
        build_graph(con)
    add_snapshots(con, 2)
    with pytest.raises(BuildError, match=r"window filter .* no complete snapshot \(2 complete"):
        build_graph(con, BuildParams(since=T0 + timedelta(days=1)))


def test_threshold_that_empties_names_filter_and_counts(triangle):
    with pytest.raises(BuildError) as err:
        build_graph(triangle, _params(min_viewer_mean=1000))
    message = str(err.value)
    assert "min_viewer_mean=1000" in message
    assert "(3 before, 0 after)" in message


def test_bad_parameters_fail_early(triangle):
    with pytest.raises(ValueError, match="weight must be one of"):
        BuildParams(weight="cosine")
    with pytest.raises(ValueError, match="every_nth"):
        BuildParams(every_nth=0)


def test_write_graph_dir(tmp_path, triangle):
    triangle.execute(
        "INSERT INTO users VALUES ('u-a', 'a', 'Alpha', 'partner', '', NULL, '', '', now())"
    )
    r = build_graph(triangle, _params(min_viewer_mean=150))
    out = write_graph_dir(r, tmp_path / "g")
    streamers = pd.read_csv(out / "streamers.csv")
    assert list(streamers.columns) == STREAMER_COLUMNS
    assert streamers.set_index("Id").loc["a", "broadcaster_type"] == "partner"
    edges = pd.read_csv(out / "edges.csv")
    assert list(edges.columns) == ["Source", "Target", "Weight", "shared", "overlap", "jaccard",
                                   "Type"]  # fmt: skip
    assert list(pd.read_csv(out / "played.csv").columns) == ["Source", "Target", "minutes_played"]
    assert list(pd.read_csv(out / "games.csv").columns) == GAME_COLUMNS
    meta = json.loads((out / "build.json").read_text())
    assert meta["parameters"]["min_viewer_mean"] == 150
    assert meta["parameters"]["weight"] == "overlap"
    assert meta["filters"][1] == {
        "filter": "min_viewer_mean", "value": 150, "before": 3, "after": 2
    }  # fmt: skip
    assert meta["outputs"] == {"streamers": 2, "edges": 1, "played": 2, "games": 1,
                              "raids": 0, "flows": 0}
    assert "removed_bots" in meta


def test_minutes_follow_the_schedule_when_snapshots_run_a_little_late():
    con = new_store()
    add_snapshots(con, 1)
    add_snapshots(con, 1, start=T0 + timedelta(minutes=5, seconds=9), first_id=2)  # late
    add_snapshots(con, 1, start=T0 + timedelta(minutes=10), first_id=3)
    add_snapshots(con, 1, start=T0 + timedelta(minutes=30), first_id=4, interval_s=None)
    add_live(con, [1, 2, 3], "a", chatters=["u1"])
    r = build_graph(con, _params(until=T0 + timedelta(minutes=11)))
    assert r.build["snapshot_minutes"] == 5.0
    assert r.build["snapshot_minutes_measured"] == pytest.approx(5.0)  # median of 5.15, 4.85
    assert r.streamers.minutes_live.iloc[0] == 15.0
    r = build_graph(con, _params())  # spacing 5.15, 4.85, 20 -> median 5.15 (within 10 %)
    assert r.build["snapshot_minutes"] == 5.0
    with pytest.raises(BuildError, match="only one snapshot .* no schedule interval"):
        build_graph(con, _params(since=T0 + timedelta(minutes=29)))


def test_raids_per_pair_between_kept_streamers_and_the_rest_counted(triangle, tmp_path):

    add_snapshots(triangle, 1, start=T0 + timedelta(days=1), first_id=3, status="failed")
    at = T0 + timedelta(seconds=30)
    rows = [
        (1, at, "a", "A", "b", 50), (2, at + timedelta(minutes=5), "a", "A", "b", 70),
        (2, at, "c", "C", "a", 9),
        (1, at, "nobody", "Nobody", "a", 400),  # raider not in streamers.csv
        (2, at, "b", "B", "elsewhere", 3),  # raided not in streamers.csv
        (3, at, "b", "B", "c", 1),  # a failed snapshot's raid never counts
    ]
    triangle.executemany("INSERT INTO raids VALUES (?, ?, ?, ?, ?, ?)", rows)
    r = build_graph(triangle, _params())
    assert list(r.raids.columns) == RAID_COLUMNS
    assert r.raids.to_dict(orient="records") == [
        {"Source": "a", "Target": "b", "raids": 2, "viewers_total": 120,
         "first_at": "2022-05-02T10:00:30Z", "last_at": "2022-05-02T10:05:30Z",
         "Type": "Directed"},
        {"Source": "c", "Target": "a", "raids": 1, "viewers_total": 9,
         "first_at": "2022-05-02T10:00:30Z", "last_at": "2022-05-02T10:00:30Z",
         "Type": "Directed"},
    ]
    assert r.build["raids"] == {"in_window": 5, "between_streamers": 3,
                                "outside_streamers": 2, "pairs": 2}
    out = write_graph_dir(r, tmp_path / "g")
    assert (out / "raids.csv").read_text().splitlines()[0] == ",".join(RAID_COLUMNS)
    built = json.loads((out / "build.json").read_text())
    assert built["raids"]["outside_streamers"] == 2 and built["outputs"]["raids"] == 2
