"""flows.csv on hand-made stores: one small world per case, every row and count by hand."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from twitchgraph.build.bots import import_bot_csv
from twitchgraph.build.definition import build_graph
from twitchgraph.build.params import BuildParams
from twitchgraph.graphio import FLOW_COLUMNS, STREAMER_COLUMNS, read_graph_dir, write_graph_dir

from ._build_fixtures import T0, new_store

OPEN = dict(every_nth=1, min_live_minutes=0, min_viewer_mean=0, min_chatter_mean=0,
            min_weight=0, min_game_minutes=0)


def _store(world: dict[float, dict[str, list[str]]], viewers: dict[str, int] | None = None):
    """A store from {minute: {channel: [chatters]}}: one complete snapshot per minute given,
    each channel listed live in it (100 viewers unless `viewers` says otherwise)."""
    con = new_store()
    for sid, (minute, live) in enumerate(sorted(world.items()), start=1):
        at = T0 + timedelta(minutes=minute)
        con.execute("INSERT INTO snapshots (snapshot_id, started_at, finished_at, status, "
                    "interval_s) VALUES (?, ?, ?, 'complete', 300.0)",
                    [sid, at, at + timedelta(seconds=30)])
        for login, users in live.items():
            con.execute(
                "INSERT INTO streams VALUES (?, ?, ?, ?, ?, 'g1', 'Chess', 't', ?, ?, 'it', [], "
                "false)", [sid, f"s-{login}", f"u-{login}", login, login.upper(),
                           (viewers or {}).get(login, 100), T0])
            for user in users:
                con.execute("INSERT INTO chatters VALUES (?, ?, ?, 'names')", [sid, login, user])
    return con


def _at(minute: float) -> str:
    return (T0 + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rows(flows: pd.DataFrame) -> list[tuple]:
    return [tuple(r) for r in flows[FLOW_COLUMNS].itertuples(index=False)]


def test_an_end_sends_its_chatters_to_the_channels_they_are_seen_in_next():
    con = _store({
        0: {"a": ["u1", "u2", "u3"], "b": ["u9"]},
        5: {"a": ["u1", "u2", "u3", "u4"], "b": ["u9"]},
        # a ended: u1 and u2 in b, u2 also in c (a viewer in two channels), u3 nowhere,
        # u4 in c; u9 never watched a
        10: {"b": ["u9", "u1", "u2"], "c": ["u2", "u4"]},
    })
    r = build_graph(con, BuildParams(**OPEN))
    assert list(r.flows.columns) == FLOW_COLUMNS
    assert _rows(r.flows) == [("a", "b", 2, 1, _at(10), _at(10), "Directed"),
                              ("a", "c", 2, 1, _at(10), _at(10), "Directed")]
    ends = r.streamers.set_index("login")
    # four chatters at the end; three of them (u1, u2, u4) seen again: u2 counts once
    assert ends.loc["a", ["ends", "end_chatters"]].tolist() == [1, 4]
    assert ends.loc["a", "end_retained"] == pytest.approx(0.75)
    assert ends.loc["b", ["ends", "end_chatters", "end_retained"]].tolist() == [0, 0, 0.0]
    assert r.build["flows"] == {
        "median_spacing_minutes": 5.0, "gap_minutes": 10.0, "snapshot_pairs": 2,
        "gaps_skipped": 0, "stream_ends": 1, "end_chatters": 4, "stream_ends_of_streamers": 1,
        "end_chatters_of_streamers": 4, "end_chatters_retained": 3,
        "viewers_between_streamers": 4, "viewers_to_outside_streamers": 0, "pairs": 2}


def test_a_gap_in_the_collection_is_no_stream_end_and_is_counted():
    con = _store({
        0: {"a": ["u1"], "b": []},
        5: {"a": ["u1"], "b": []},
        10: {"a": ["u1"], "b": []},
        # 20 minutes later (more than twice the median 5): the collector was down
        30: {"b": ["u1"]},
        35: {"b": ["u1"]},
    })
    r = build_graph(con, BuildParams(**OPEN))
    assert r.flows.empty
    assert r.build["flows"]["gaps_skipped"] == 1 and r.build["flows"]["snapshot_pairs"] == 3
    assert r.build["flows"]["stream_ends"] == 0
    assert r.streamers.set_index("login").loc["a", "ends"] == 0


def test_exactly_twice_the_median_spacing_is_still_an_end():
    con = _store({0: {"a": ["u1"], "b": []}, 5: {"a": ["u1"], "b": []},
                  10: {"a": ["u1"], "b": []}, 20: {"b": ["u1"]}, 25: {"b": []}})
    r = build_graph(con, BuildParams(**OPEN))
    assert _rows(r.flows) == [("a", "b", 1, 1, _at(20), _at(20), "Directed")]
    assert r.build["flows"]["gaps_skipped"] == 0


def test_a_channel_that_ends_and_comes_back_ends_twice():
    con = _store({
        0: {"a": ["u1", "u2"], "b": []},
        5: {"b": ["u1"]},  # first end: u1 went to b
        10: {"a": ["u1", "u2", "u3"], "b": []},
        15: {"a": ["u3"], "b": []},
        20: {"b": ["u3", "u2"]},  # second end: only u3 was in a at 15
        25: {"b": ["u3"]},  # b stays live: no end of b
    })
    r = build_graph(con, BuildParams(**OPEN))
    assert _rows(r.flows) == [("a", "b", 2, 2, _at(5), _at(20), "Directed")]
    a = r.streamers.set_index("login").loc["a"]
    assert (a.ends, a.end_chatters, a.end_retained) == (2, 3, pytest.approx(2 / 3, abs=1e-4))


def test_flows_use_every_complete_snapshot_whatever_every_nth_is():
    world = {0: {"a": ["u1"], "b": []}, 5: {"a": ["u1"], "b": []},
             10: {"b": ["u1"]}, 15: {"b": ["u1"]}}
    one = build_graph(_store(world), BuildParams(**OPEN))
    third = build_graph(_store(world), BuildParams(**{**OPEN, "every_nth": 3}))
    assert _rows(one.flows) == _rows(third.flows) == [
        ("a", "b", 1, 1, _at(10), _at(10), "Directed")]


def test_bots_and_the_streamers_themselves_are_not_viewers(tmp_path):
    con = _store({
        0: {"a": ["u1", "nightbot", "listed", "b"], "b": [], "c": [], "d": []},
        5: {"a": ["u1", "nightbot", "listed", "b", "roamer"], "b": [], "c": [], "d": []},
        # roamer sits in every channel (a suspected bot); b went back to its own channel
        10: {"b": ["u1", "nightbot", "listed", "b", "roamer"], "c": ["roamer"],
             "d": ["roamer"]},
    })
    (tmp_path / "bots.csv").write_text("login\nlisted\n")
    import_bot_csv(con, tmp_path / "bots.csv")
    kept = build_graph(con, BuildParams(**OPEN))
    # listed and built-in bots never count; b is a chatter of a, but not a viewer of itself
    assert _rows(kept.flows) == [("a", "b", 2, 1, _at(10), _at(10), "Directed"),
                                 ("a", "c", 1, 1, _at(10), _at(10), "Directed"),
                                 ("a", "d", 1, 1, _at(10), _at(10), "Directed")]
    assert kept.streamers.set_index("login").loc["a", "end_chatters"] == 3
    dropped = build_graph(con, BuildParams(**OPEN, drop_suspected=True, bot_min_channels=3,
                                           bot_channel_share=0.5))
    assert _rows(dropped.flows) == [("a", "b", 1, 1, _at(10), _at(10), "Directed")]
    a = dropped.streamers.set_index("login").loc["a"]
    assert (a.end_chatters, a.end_retained) == (2, 0.5)


def test_streamers_outside_streamers_csv_are_only_counted():
    con = _store({
        0: {"a": ["u1", "u2"], "b": [], "small": ["u3"]},
        5: {"b": ["u1"], "small": ["u2", "u3"]},  # a ended: u1 to b, u2 to small
        10: {"b": ["u3"]},  # small ended: u3 to b, but small is not a streamer
    }, viewers={"small": 2})
    r = build_graph(con, BuildParams(**{**OPEN, "min_viewer_mean": 10}))
    assert "small" not in set(r.streamers["login"])
    assert _rows(r.flows) == [("a", "b", 1, 1, _at(5), _at(5), "Directed")]
    f = r.build["flows"]
    assert (f["stream_ends"], f["end_chatters"]) == (2, 4)
    assert (f["stream_ends_of_streamers"], f["end_chatters_of_streamers"]) == (1, 2)
    # u2 went from a to small; small's own end (u3 to b) is counted, not followed
    assert (f["viewers_between_streamers"], f["viewers_to_outside_streamers"]) == (1, 1)
    a = r.streamers.set_index("login").loc["a"]
    assert (a.ends, a.end_chatters, a.end_retained) == (1, 2, 1.0)  # small is live all the same


def test_flows_csv_and_the_end_columns_are_written_and_read_back(tmp_path):
    con = _store({0: {"a": ["u1"], "b": []}, 5: {"b": ["u1"]}})
    out = write_graph_dir(build_graph(con, BuildParams(**OPEN)), tmp_path / "g")
    assert (out / "flows.csv").read_text().splitlines() == [
        ",".join(FLOW_COLUMNS), f"a,b,1,1,{_at(5)},{_at(5)},Directed"]
    assert pd.read_csv(out / "streamers.csv").columns.tolist() == STREAMER_COLUMNS
    record = json.loads((out / "build.json").read_text())
    assert record["outputs"]["flows"] == 1 and record["flows"]["pairs"] == 1
    assert "audience flows at stream ends" in record["step_seconds"]
    back = read_graph_dir(out)
    assert _rows(back.flows) == [("a", "b", 1, 1, _at(5), _at(5), "Directed")]
    (out / "flows.csv").unlink()  # a GRAPH_DIR from before flows
    assert read_graph_dir(out).flows.columns.tolist() == FLOW_COLUMNS


@pytest.mark.slow
def test_flows_csv_is_exactly_what_the_simulator_did(tmp_path):
    """Simulator -> store -> build: a snapshot every simulated minute, each holding exactly
    who the simulator has live and in chat then (a collector that misses nothing), so
    flows.csv must hold exactly the simulator's record of where each end's chatters went."""
    from twitchgraph.sim.population import make_population
    from twitchgraph.store.db import SnapshotData, open_store, write_snapshot

    pop = make_population(channels=40, users=600, seed=5, live_fraction=0.6, start=T0)
    con = open_store(":memory:")
    minutes = 180
    for m in range(minutes):
        t = 60.0 * m
        ch, viewers = pop.ranked_live(t)
        at = T0 + timedelta(seconds=t)
        write_snapshot(con, SnapshotData(
            started_at=at, finished_at=at + timedelta(seconds=30), interval_s=60.0,
            streams=pop.streams(ch, t, viewers),
            chatters={pop.acc_login[c]: {pop.acc_login[a]: "names" for a in pop.chatters(c, t)}
                      for c in ch.tolist()}))
    # every bot of the world is listed: the simulator's record is of viewers only
    (tmp_path / "bots.csv").write_text("login\n" + "\n".join(pop.bot_logins) + "\n")
    import_bot_csv(con, tmp_path / "bots.csv")
    r = build_graph(con, BuildParams(**OPEN))
    assert len(r.streamers) == len(set(r.streamers["login"]))

    # an end at t is seen between the minutes around it: (0, last minute]
    record = pop.audience_after_ends(0.0, 60.0 * (minutes - 1))
    expected: dict[tuple[str, str], list] = {}
    for t, a, b, _viewer, _moved in record:
        seen_at = _at(-(-t // 60))  # the first minute at or after the end
        row = expected.setdefault((a, b), [0, set(), seen_at, seen_at])
        row[0] += 1
        row[1].add(t)
        row[2], row[3] = min(row[2], seen_at), max(row[3], seen_at)
    got = {(s, t): [v, e, f, last] for s, t, v, e, f, last, _ in _rows(r.flows)}
    assert got == {pair: [n, len(ends), first, last]
                   for pair, (n, ends, first, last) in expected.items()}
    # the simulator's moves are in it (the rest were in both chats anyway)
    assert len(got) >= 20 and sum(1 for row in record if row[4]) >= 300
    ends = [t for t, c, _ in pop.ends_between(0.0, 60.0 * (minutes - 1))
            if not pop.session(np.asarray([c]), 60.0 * -(-t // 60))[0][0]]
    assert r.build["flows"]["stream_ends"] == len(ends) >= 10
    assert r.build["flows"]["gaps_skipped"] == 0
