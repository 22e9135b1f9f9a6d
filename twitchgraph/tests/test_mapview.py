"""What the maps show: shown communities and "other", distinct colours, the frame."""

from __future__ import annotations

import colorsys
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _graph_fixtures import planted_graph  # noqa: E402

from twitchgraph.export import OTHER_COLOR, community_colors  # noqa: E402
from twitchgraph.export.mapview import map_view  # noqa: E402
from twitchgraph.graph.communities import OTHER, find_communities, shown_communities  # noqa: E402
from twitchgraph.graphio import GraphData  # noqa: E402

LONERS = 12


@pytest.fixture(scope="module")
def laid_out():
    """4 planted communities of 15 in a unit disc, and 12 loners on a ring of radius 50 around
    them: 7 isolated, a pair and a triangle linked only among themselves."""
    tables = planted_graph(communities=4, size=15, p_in=0.5, seed=2, loners=LONERS)
    streamers, edges = tables["streamers"], tables["edges"]
    pair = pd.DataFrame({"Source": ["loner_000", "loner_002", "loner_002", "loner_003"],
                         "Target": ["loner_001", "loner_003", "loner_004", "loner_004"],
                         "Weight": 20.0})
    data = GraphData(streamers=streamers, edges=pd.concat([edges, pair], ignore_index=True))
    data.streamers["community"] = data.streamers["Id"].map(find_communities(data).membership)
    rng = np.random.default_rng(0)
    loner = data.streamers["Id"].str.startswith("loner_").to_numpy()
    angle = rng.uniform(0, 2 * np.pi, len(loner))
    radius = np.where(loner, 50.0, rng.uniform(0, 1, len(loner)))
    data.streamers["x"] = radius * np.cos(angle)
    data.streamers["y"] = radius * np.sin(angle)
    data.streamers["size"] = 0.1
    return data, tables["truth"]


def test_small_communities_are_not_shown():
    community = pd.Series([0] * 5 + [1] * 4 + [2] * 2 + [3] + [4])
    assert shown_communities(community) == [0, 1]
    assert shown_communities(community, min_size=1) == [0, 1, 2, 3, 4]
    assert shown_communities(community, min_size=1, max_shown=3) == [0, 1, 2]
    # Largest first, whatever the ids; ties by id.
    assert shown_communities(pd.Series([7, 7, 7, 2, 2, 2, 2, 5, 5, 5])) == [2, 5, 7]
    # On bigger graphs "tiny" grows with the graph: 0.5 % of 2,000 streamers is 10.
    big = pd.Series(np.r_[np.zeros(1991, int), np.ones(9, int)])
    assert shown_communities(big) == [0]
    with pytest.raises(ValueError, match="max_shown"):
        shown_communities(community, max_shown=-1)


def test_legend_lists_the_real_communities_then_one_other(laid_out):
    data, truth = laid_out
    view = map_view(data)
    planted = {c for c in truth.values() if c >= 0}
    shown = [e for e in view.legend if e.id != OTHER]
    assert len(shown) == len(planted)
    assert [e.id for e in view.legend][-1] == OTHER
    other = view.legend[-1]
    assert other.size == LONERS and other.color == OTHER_COLOR
    # 9 communities: 7 singletons, the pair and the triangle (big enough to be shown, were it
    # not a component of its own far from the graph); each streamer is counted once (issue 27:
    # "389 small communities, 350 isolated streamers" counted the isolated ones twice).
    assert other.name == "other: 2 small communities (5 streamers), 7 isolated streamers"
    assert other.size == 5 + 7
    assert sum(e.size for e in view.legend) == len(data.streamers)
    # Each shown community has one colour of its own, none of them grey.
    colours = [e.color for e in shown]
    assert len(set(colours)) == len(colours) and OTHER_COLOR not in colours
    by_group = pd.Series(view.color).groupby(view.group).unique()
    assert all(len(c) == 1 for c in by_group)
    assert set(view.color[view.group == OTHER]) == {OTHER_COLOR}
    loner = data.streamers["Id"].str.startswith("loner_").to_numpy()
    assert (view.group[loner] == OTHER).all() and (view.group[~loner] != OTHER).all()


def test_frame_is_the_main_component_not_the_ring_of_loners(laid_out):
    data, _ = laid_out
    view = map_view(data)
    loner = data.streamers["Id"].str.startswith("loner_").to_numpy()
    assert (view.framed == ~loner).all()
    xmin, xmax, ymin, ymax = view.frame
    main = data.streamers.loc[~loner]
    assert xmin == pytest.approx(main["x"].min() - 0.1)
    assert xmax == pytest.approx(main["x"].max() + 0.1)
    assert ymin == pytest.approx(main["y"].min() - 0.1)
    assert ymax == pytest.approx(main["y"].max() + 0.1)
    assert max(xmax - xmin, ymax - ymin) < 2.5  # the ring is 100 wide


def test_only_loners_frames_everything(laid_out):
    data, _ = laid_out
    loners = data.streamers[data.streamers["Id"].str.startswith("loner_0")].copy()
    loners["community"] = range(len(loners))
    view = map_view(GraphData(streamers=loners, edges=data.edges.iloc[:0]))
    assert [e.id for e in view.legend] == [OTHER] and view.framed.all()


def test_community_colours_are_distinct_and_never_grey():
    colours = community_colors(140)
    assert len(set(colours)) == 140
    for hex_color in colours:
        rgb = [int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        _, saturation, value = colorsys.rgb_to_hsv(*rgb)
        assert saturation >= 0.4 and value >= 0.6
    assert community_colors(3) == colours[:3]  # the same community, the same colour
