"""`twitchgraph serve`'s rebuilds do only what is new: windows kept on disk, nothing-new
rebuilds, a map that keeps its places and community ids (issue 25)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))
from _build_fixtures import T0, add_live, add_snapshots, users_named  # noqa: E402

from twitchgraph.build.bots import ensure_bot_table  # noqa: E402
from twitchgraph.build.params import BuildParams  # noqa: E402
from twitchgraph.graph.communities import keep_ids  # noqa: E402
from twitchgraph.graph.evolve import WindowResult, evolve_store  # noqa: E402
from twitchgraph.graph.layout import forceatlas2_layout  # noqa: E402
from twitchgraph.graphio import GraphData  # noqa: E402
from twitchgraph.serve.app import create_app  # noqa: E402
from twitchgraph.serve.rebuild import Rebuilder  # noqa: E402
from twitchgraph.serve.windows import DiskWindowCache, window_key  # noqa: E402
from twitchgraph.store.db import open_store  # noqa: E402

OPEN = BuildParams(every_nth=1, min_live_minutes=0, min_viewer_mean=0, min_chatter_mean=0,
                   min_weight=0)
DAY = timedelta(days=1)


def _day(con, day: int, first_id: int, n: int = 2) -> list[int]:
    """`n` snapshots on day `day`: two groups of channels sharing chatters within each."""
    sids = add_snapshots(con, n, start=T0 + day * DAY, first_id=first_id)
    for group in ("x", "y"):
        for k in range(3):
            add_live(con, sids, f"{group}{k}", viewers=100 * (k + 1),
                     chatters=users_named(f"{group}u", 12, start=2 * k))
    return sids


def two_day_store(path: Path) -> Path:
    con = open_store(path)
    _day(con, 0, 1)
    _day(con, 1, 3)
    con.close()
    return path


def _rebuilder(db: Path, root: Path, **kwargs) -> Rebuilder:
    return Rebuilder(db, root, every_s=None, build_params=OPEN, layout_iterations=30,
                     window=DAY, **kwargs)


def test_closed_windows_are_built_once_and_equal_a_fresh_evolve(tmp_path):
    db = two_day_store(tmp_path / "s.duckdb")
    rebuilder = _rebuilder(db, tmp_path / "graphs")
    assert rebuilder.rebuild_now()
    state = rebuilder.state
    assert (state.windows_reused, state.windows_computed) == (0, 2)
    con = open_store(db)
    add_snapshots(con, 1, start=T0 + DAY + timedelta(hours=1), first_id=5)
    add_live(con, [5], "x0", viewers=100, chatters=users_named("xu", 12))
    con.close()
    assert rebuilder.rebuild_now()
    assert (state.windows_reused, state.windows_computed) == (1, 1)  # only day 2 gained one
    fresh = evolve_store(db, window=DAY, build_params=OPEN)
    assert state.timeline.windows == fresh.windows
    assert state.timeline.memberships == fresh.memberships
    assert state.timeline.modularity == fresh.modularity
    for kept, built in zip(state.timeline.edges, fresh.edges, strict=True):
        pd.testing.assert_frame_equal(kept.reset_index(drop=True),
                                      built.reset_index(drop=True), check_dtype=False)
    # A server started again over the same folder finds the windows it built.
    again = _rebuilder(db, tmp_path / "graphs")
    assert again.rebuild_now()
    assert (again.state.windows_reused, again.state.windows_computed) == (2, 0)


def test_nothing_new_keeps_the_graph_and_a_change_rebuilds(tmp_path):
    db = two_day_store(tmp_path / "s.duckdb")
    rebuilder = _rebuilder(db, tmp_path / "graphs")
    assert rebuilder.rebuild_now()
    graph, built_at = rebuilder.state.graph, rebuilder.state.built_at
    assert rebuilder.rebuild_now()
    assert rebuilder.state.unchanged and rebuilder.state.graph is graph
    assert rebuilder.state.built_at == built_at and set(rebuilder.state.steps) == {"check"}
    assert rebuilder.state.rebuilds == 2
    # A profile fetched since is news: the streamers' facts come from it.
    con = open_store(db)
    con.execute("INSERT INTO users (user_id, login, broadcaster_type, fetched_at) "
                "VALUES ('1', 'x0', 'partner', now())")
    con.close()
    assert rebuilder.rebuild_now() and not rebuilder.state.unchanged
    assert rebuilder.state.graph is not graph
    assert "partner" in set(rebuilder.state.graph.streamers["broadcaster_type"])
    assert rebuilder.state.windows_reused == 2  # profiles do not change a window's graph
    # Other options are news too.
    graph = rebuilder.state.graph
    rebuilder.options["resolution"] = 0.5
    assert rebuilder.rebuild_now() and rebuilder.state.graph is not graph


def test_a_window_kept_under_other_parameters_or_bots_is_built_again(tmp_path):
    db = two_day_store(tmp_path / "s.duckdb")
    rebuilder = _rebuilder(db, tmp_path / "graphs")
    assert rebuilder.rebuild_now()
    rebuilder.options["build_params"] = replace(OPEN, min_weight=50)
    assert rebuilder.rebuild_now()
    assert (rebuilder.state.windows_reused, rebuilder.state.windows_computed) == (0, 2)
    # The other parameters' files are gone: one set of windows is kept.
    assert len(list((tmp_path / "graphs" / "windows").iterdir())) == 1
    con = open_store(db)
    ensure_bot_table(con)
    con.execute("INSERT INTO bots (login, source) VALUES ('xu3', 'test')")
    con.close()
    assert rebuilder.rebuild_now()
    assert (rebuilder.state.windows_reused, rebuilder.state.windows_computed) == (0, 2)
    assert rebuilder.state.aggregates == "aggregates built from scratch: new bots"
    day1 = rebuilder.state.timeline.edges[0]
    fresh = evolve_store(db, window=DAY, build_params=replace(OPEN, min_weight=50)).edges[0]
    assert sorted(day1["Weight"]) == sorted(fresh["Weight"])


def test_the_disk_cache_checks_the_whole_key_not_its_folder(tmp_path):
    since, until = T0, T0 + DAY
    result = WindowResult({"a": 0, "b": 0}, 0.25, pd.DataFrame(
        {"Source": ["a"], "Target": ["b"], "Weight": [1 / 3], "shared": [2]}))
    key = window_key(OPEN.as_record(), resolution=1.0, seed=0, schema_version=4)
    cache = DiskWindowCache(tmp_path, key)
    cache.put(since, until, [2, 4, 7, ""], result)
    back = cache.get(since, until, [2, 4, 7, ""])
    assert back.membership == result.membership and back.modularity == 0.25
    assert back.edges["Weight"].tolist() == [1 / 3]  # floats exactly
    assert cache.get(since, until, [3, 5, 12, ""]) is None  # the window gained a snapshot
    assert cache.get(since, until + DAY, [2, 4, 7, ""]) is None
    for other in (window_key(replace(OPEN, every_nth=3).as_record(), resolution=1.0, seed=0,
                             schema_version=4),
                  window_key(OPEN.as_record(), resolution=0.7, seed=0, schema_version=4),
                  window_key(OPEN.as_record(), resolution=1.0, seed=0, schema_version=5)):
        foreign = DiskWindowCache(tmp_path, other)
        assert foreign.get(since, until, [2, 4, 7, ""]) is None
        # Even a file in its own folder is refused when the key inside differs.
        foreign.folder.mkdir(parents=True, exist_ok=True)
        source = cache._path(since, until)
        foreign._path(since, until).write_text(source.read_text())
        assert foreign.get(since, until, [2, 4, 7, ""]) is None
    assert (cache.reused, cache.computed) == (1, 1)


def test_keep_ids_follows_the_most_shared_members():
    previous = {"a": 0, "b": 0, "c": 0, "d": 1, "e": 1, "f": 2}
    # The big community lost c to the other one; f is gone, g and h are new together.
    current = {"a": 5, "b": 5, "c": 3, "d": 3, "e": 3, "g": 4, "h": 4}
    kept = keep_ids(current, previous)
    assert kept["a"] == kept["b"] == 0 and kept["c"] == kept["d"] == kept["e"] == 1
    assert kept["g"] == kept["h"] == 2  # the smallest id left
    # No previous graph: by size, ties by the id they had.
    assert keep_ids(current, {}) == {"a": 2, "b": 2, "c": 0, "d": 0, "e": 0, "g": 1, "h": 1}


def _graph(logins, edges) -> GraphData:
    streamers = pd.DataFrame({"Id": logins, "viewer_mean": [10.0] * len(logins)})
    frame = pd.DataFrame(edges, columns=["Source", "Target", "Weight"])
    return GraphData(streamers=streamers, edges=frame)


def test_a_warm_layout_keeps_places_and_puts_newcomers_by_their_neighbours():
    rng = np.random.default_rng(0)
    logins = [f"s{i}" for i in range(40)]
    edges = [(logins[i], logins[j], 20.0) for i in range(40) for j in range(i + 1, 40)
             if (i // 10 == j // 10 and rng.random() < 0.6) or rng.random() < 0.01]
    first = forceatlas2_layout(_graph(logins, edges), iterations=300, seed=1)
    extent = float(np.ptp(first[["x", "y"]].to_numpy(), axis=0).max())
    # A newcomer tied to s0..s2 (community 0), and a loner.
    grown = _graph([*logins, "new", "loner"],
                   [*edges, ("new", "s0", 50.0), ("new", "s1", 40.0), ("new", "s2", 30.0)])
    balanced = first.attrs["balanced"]
    start = pd.DataFrame({"Id": logins, "x": balanced[:, 0], "y": balanced[:, 1]})
    second = forceatlas2_layout(grown, iterations=30, seed=2, initial=start)
    moved = np.linalg.norm(second[["x", "y"]].to_numpy()[:40] - first[["x", "y"]].to_numpy(),
                           axis=1)
    assert np.median(moved) / extent < 0.05
    xy = second.set_index("Id")[["x", "y"]]
    home = first.set_index("Id").loc[[f"s{i}" for i in range(10)], ["x", "y"]].mean()
    far = first.set_index("Id").loc[[f"s{i}" for i in range(10, 40)], ["x", "y"]]
    to_home = np.linalg.norm(xy.loc["new"] - home)
    assert to_home < np.linalg.norm(far.to_numpy() - xy.loc["new"].to_numpy(), axis=1).mean()
    centre = first[["x", "y"]].to_numpy().mean(axis=0)
    radius = np.linalg.norm(first[["x", "y"]].to_numpy() - centre, axis=1)
    assert np.linalg.norm(xy.loc["loner"].to_numpy() - centre) > np.median(radius)


def test_isolated_streamers_do_not_hold_the_layout_back():
    rng = np.random.default_rng(0)
    linked = [f"s{i}" for i in range(30)]
    edges = [(a, b, float(rng.integers(10, 60))) for i, a in enumerate(linked)
             for b in linked[i + 1:] if rng.random() < 0.2]
    loners = [f"alone{i}" for i in range(300)]
    alone = forceatlas2_layout(_graph(linked, edges), iterations=1000, seed=0)
    pos = forceatlas2_layout(_graph(linked + loners, edges), iterations=1000, seed=0)
    # The loners change neither the run's length nor where the others settle ...
    assert pos.attrs["iterations"] == alone.attrs["iterations"] < 1000
    np.testing.assert_allclose(pos.attrs["balanced"][:30], alone.attrs["balanced"])
    # ... and they sit around them.
    xy = pos.attrs["balanced"]
    centre = xy[:30].mean(axis=0)
    reach = np.linalg.norm(xy[:30] - centre, axis=1).max()
    assert (np.linalg.norm(xy[30:] - centre, axis=1) > reach).all()


def test_rebuilds_keep_places_and_ids_and_status_shows_the_steps(tmp_path):
    db = two_day_store(tmp_path / "s.duckdb")
    rebuilder = _rebuilder(db, tmp_path / "graphs")
    assert rebuilder.rebuild_now()
    before = rebuilder.state.graph.streamers.set_index("Id")
    con = open_store(db)
    sid = add_snapshots(con, 1, start=T0 + DAY + timedelta(hours=1), first_id=5)
    add_live(con, sid, "x0", viewers=100, chatters=users_named("xu", 12))
    add_live(con, sid, "z0", viewers=100, chatters=users_named("xu", 12))  # a newcomer
    con.close()
    assert rebuilder.rebuild_now()
    after = rebuilder.state.graph.streamers.set_index("Id")
    both = before.index.intersection(after.index)
    assert len(both) == 6 and "z0" in after.index
    assert (before.loc[both, "community"] == after.loc[both, "community"]).all()
    # The Host a browser on this machine sends: serve answers no other (issue 27 item 7).
    with TestClient(create_app(rebuilder, start=False),
                    base_url="http://127.0.0.1:8000") as client:
        server = client.get("/status.json").json()["server"]
        assert {"check", "build", "communities", "layout", "windows"} <= set(server["steps"])
        assert (server["windows_reused"], server["windows_computed"]) == (1, 1)
        page = client.get("/status").text
        assert "1 reused, 1 built" in page
        # every_nth 1: the new snapshot is used and folded into the aggregates.
        assert server["aggregates"] == "aggregates: 1 new snapshot folded in, 4 kept"
        assert server["aggregates"] in page
        assert rebuilder.rebuild_now()
        page = client.get("/status").text
        assert "nothing new" in page and "2 reused, 0 built" in page
    record = json.loads(next(iter(sorted((tmp_path / "graphs").glob("graph-*/serve.json"))))
                        .read_text())
    assert set(record) == {"store", "options"}
