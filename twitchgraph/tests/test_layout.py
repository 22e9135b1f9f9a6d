"""ForceAtlas2 layout of a planted-partition GRAPH_DIR."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _graph_fixtures import write_planted_graph_dir  # noqa: E402

from twitchgraph.graph.layout import (  # noqa: E402
    ForceAtlas2Settings,
    forceatlas2_layout,
    layout_for_dir,
    node_sizes,
)
from twitchgraph.graphio import GraphData, read_graph_dir  # noqa: E402


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    path = tmp_path_factory.mktemp("g")
    truth = write_planted_graph_dir(path, communities=4, size=30, seed=5)
    return read_graph_dir(path), truth


def _separation(positions: pd.DataFrame, truth: dict[str, int]) -> float:
    """Mean distance between nodes of different communities over that within communities."""
    xy = positions[["x", "y"]].to_numpy()
    labels = np.array([truth[x] for x in positions["Id"]])
    dist = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=-1)
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(labels), dtype=bool)
    return dist[~same].mean() / dist[same & off].mean()


@pytest.mark.parametrize("engine", ["fa2", "networkx"])
def test_communities_are_drawn_apart(planted, engine):
    data, truth = planted
    positions = forceatlas2_layout(data, iterations=200, seed=0, engine=engine)
    assert positions["Id"].tolist() == data.logins
    assert np.isfinite(positions[["x", "y"]].to_numpy()).all()
    assert _separation(positions, truth) > 1.5  # a random layout gives ~1.0


def test_same_seed_same_layout_other_seed_differs(planted):
    data, _ = planted
    a = forceatlas2_layout(data, iterations=50, seed=11)
    b = forceatlas2_layout(data, iterations=50, seed=11)
    c = forceatlas2_layout(data, iterations=50, seed=12)
    np.testing.assert_array_equal(a[["x", "y"]].to_numpy(), b[["x", "y"]].to_numpy())
    assert not np.allclose(a[["x", "y"]].to_numpy(), c[["x", "y"]].to_numpy())


def test_scaling_spreads_the_map(planted):
    data, _ = planted
    settings = dict(prevent_overlap=False)
    tight = forceatlas2_layout(data, iterations=150, seed=0,
                               settings=ForceAtlas2Settings(scaling=1.0, **settings))
    wide = forceatlas2_layout(data, iterations=150, seed=0,
                              settings=ForceAtlas2Settings(scaling=20.0, **settings))
    assert wide[["x", "y"]].std().mean() > 2 * tight[["x", "y"]].std().mean()


def test_prevent_overlap_separates_big_nodes(planted):
    data, _ = planted
    on = forceatlas2_layout(data, iterations=100, seed=0,
                            settings=ForceAtlas2Settings(prevent_overlap=True,
                                                         overlap_iterations=200))
    xy = on[["x", "y"]].to_numpy()
    radius = on["size"].to_numpy()
    dist = np.linalg.norm(xy[:, None] - xy[None, :], axis=-1)
    touching = dist < (radius[:, None] + radius[None, :])
    np.fill_diagonal(touching, False)
    # Anti-collision leaves (almost) no pair of discs overlapping.
    assert touching.sum() / 2 <= 0.01 * len(xy) * (len(xy) - 1) / 2


def test_node_size_grows_with_viewers():
    sizes = node_sizes(pd.Series([1.0, 100.0, 10000.0]), min_size=1, max_size=11)
    assert sizes[0] == 1 and sizes[2] == 11 and 1 < sizes[1] < 11
    # Area (size²) proportional to viewers: sqrt scaling.
    assert sizes[1] == pytest.approx(1 + 10 * (10 - 1) / (100 - 1))


def test_run_stops_once_converged(planted):
    data, truth = planted
    fixed = forceatlas2_layout(data, iterations=400, seed=0,
                               settings=ForceAtlas2Settings(tolerance=0, start="random"))
    assert fixed.attrs["iterations"] == 400
    ticks: list[int] = []
    stopped = forceatlas2_layout(data, iterations=400, seed=0, progress=ticks.append,
                                 settings=ForceAtlas2Settings(start="random"))
    done = stopped.attrs["iterations"]
    assert 10 <= done < 400 and done % 10 == 0
    assert ticks[-1] == 400  # the progress bar completes
    assert _separation(stopped, truth) > 1.5


def test_start_from_communities_separates_them_at_once(planted):
    data, truth = planted
    with_communities = GraphData(streamers=data.streamers.assign(
        community=data.streamers["Id"].map(truth)), edges=data.edges)
    settings = ForceAtlas2Settings(tolerance=0, prevent_overlap=False)
    seeded = forceatlas2_layout(with_communities, iterations=1, seed=0, settings=settings)
    scattered = forceatlas2_layout(data, iterations=1, seed=0, settings=settings)
    assert _separation(seeded, truth) > 1.5  # after a single iteration
    assert _separation(scattered, truth) < 1.2
    # The networkx engine starts from the same places.
    reference = forceatlas2_layout(with_communities, iterations=1, seed=0, settings=settings,
                                   engine="networkx")
    assert _separation(reference, truth) > 1.5


def test_one_community_or_one_streamer_still_lays_out(planted):
    data, _ = planted
    one = GraphData(streamers=data.streamers.assign(community=0), edges=data.edges)
    positions = forceatlas2_layout(one, iterations=50, seed=0,
                                   settings=ForceAtlas2Settings(prevent_overlap=False))
    xy = positions[["x", "y"]].to_numpy()  # not all started (and stuck) on one point
    assert np.isfinite(xy).all() and len(np.unique(xy.round(6), axis=0)) == len(xy)
    alone = GraphData(streamers=data.streamers.head(1).assign(community=0),
                      edges=data.edges.iloc[:0])
    assert np.isfinite(forceatlas2_layout(alone, iterations=20)[["x", "y"]].to_numpy()).all()


def test_bad_settings_are_refused(planted):
    with pytest.raises(ValueError, match="scaling"):
        ForceAtlas2Settings(scaling=0)
    with pytest.raises(ValueError, match="start"):
        ForceAtlas2Settings(start="gephi")
    with pytest.raises(ValueError, match="tolerance"):
        ForceAtlas2Settings(tolerance=-0.1)
    with pytest.raises(ValueError, match="engine"):
        forceatlas2_layout(planted[0], engine="gephi")


def test_layout_for_dir_writes_positions(tmp_path):
    write_planted_graph_dir(tmp_path, communities=2, size=10)
    positions, target = layout_for_dir(tmp_path, iterations=30, seed=2)
    streamers = pd.read_csv(target)
    assert {"x", "y", "size"} <= set(streamers.columns)
    assert np.allclose(streamers["x"], positions["x"])


@pytest.mark.parametrize("start", ["communities", "random"])
def test_separate_components_are_packed_side_by_side(start):
    """Issue 27: with --start communities, separate components drifted hundreds of times
    their own width apart (each community a dot on the map)."""
    import scipy.sparse as sp
    from _graph_fixtures import planted_graph
    from scipy.sparse.csgraph import connected_components

    from twitchgraph.graph.communities import find_communities
    from twitchgraph.graphio import undirected_edges

    tables = planted_graph(communities=5, size=20, p_in=0.4, p_out=0.0, seed=1, loners=30)
    data = GraphData(streamers=tables["streamers"], edges=tables["edges"])
    found = find_communities(data, seed=0)
    data.streamers["community"] = data.streamers["Id"].map(found.membership)
    pos = forceatlas2_layout(data, iterations=200, seed=0,
                             settings=ForceAtlas2Settings(start=start))
    xy, size = pos[["x", "y"]].to_numpy(), pos["size"].to_numpy()
    index = {login: i for i, login in enumerate(pos["Id"])}
    und = undirected_edges(data.edges)
    u, v = und["u"].map(index).to_numpy(), und["v"].map(index).to_numpy()
    n = len(xy)
    k, label = connected_components(sp.coo_matrix((np.ones(len(u)), (u, v)), shape=(n, n)),
                                    directed=False)
    assert k == 5 + 30
    members = np.bincount(label)
    groups = [c for c in range(k) if members[c] > 1]  # the loners ring the map instead
    assert len(groups) == 5
    boxes = [(xy[label == c] - size[label == c, None]).min(axis=0).tolist()
             + (xy[label == c] + size[label == c, None]).max(axis=0).tolist() for c in groups]
    # No two components' boxes overlap...
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            ax0, ay0, ax1, ay1 = boxes[a]
            bx0, by0, bx1, by1 = boxes[b]
            assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, (a, b)
    # ...and together they fill their part of the map: at most 3 times their own area.
    area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes)
    linked = np.isin(label, groups)
    whole = np.ptp(xy[linked, 0]) * np.ptp(xy[linked, 1])
    assert whole < 3 * area
