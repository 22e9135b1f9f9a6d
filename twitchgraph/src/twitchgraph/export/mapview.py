"""What a map of the graph shows: which communities get a colour, the legend, and the frame.

Shared by the PNG, the web map and GEXF so they agree. On collected data most Leiden
"communities" are isolated streamers or pairs (no overlap of 10 % with anyone), and FA2 pushes
those to a wide ring around the graph. So:

- the main components are the connected components with at least a tenth of the largest
  one's streamers (and at least 3);
- the largest communities in the main components are shown with distinct colours
  (`communities.shown_communities`); every other streamer (isolated, in a tiny community, or
  in a small component far out) goes into one grey "other" group with one legend entry;
- the frame is the bounding box of the main components holding a shown community, so the
  map opens on the real graph, not on the ring of loners around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from twitchgraph.export import OTHER_COLOR, community_colors
from twitchgraph.graph.communities import MAX_SHOWN, OTHER, shown_communities
from twitchgraph.graphio import GraphData

__all__ = ["LegendEntry", "MapView", "map_view"]


@dataclass(frozen=True)
class LegendEntry:
    """One legend line: a shown community, or the "other" group (id `OTHER`)."""

    id: int
    color: str
    size: int
    name: str


@dataclass(frozen=True)
class MapView:
    """How to draw each streamer, in `data.streamers` order, and what to frame.

    Attributes
    ----------
    group : community id when that community is shown, else `OTHER`.
    color : hex colour per streamer.
    legend : shown communities, largest first, then "other" when anyone is in it.
    framed : streamers inside the frame (main components that hold a shown community).
    frame : (xmin, xmax, ymin, ymax) of the framed streamers' discs, in layout units.
    """

    group: np.ndarray
    color: np.ndarray
    legend: list[LegendEntry]
    framed: np.ndarray
    frame: tuple[float, float, float, float]


def map_view(
    data: GraphData,
    *,
    min_size: int | None = None,
    max_shown: int = MAX_SHOWN,
) -> MapView:
    """Groups, colours, legend and frame of a laid-out GRAPH_DIR (needs community, x, y, size).

    `min_size` and `max_shown` choose the communities shown among those of the main
    components, as in `shown_communities` (`min_size` None: 3, or 0.5 % of all streamers).
    """
    streamers = data.streamers.reset_index(drop=True)
    community = streamers["community"].astype(int).to_numpy()
    component = _components(data, streamers)
    sizes = np.bincount(component)
    main = sizes[component] >= max(3, 0.1 * sizes.max())
    if min_size is None:
        min_size = max(3, round(0.005 * len(community)))
    shown = shown_communities(community[main], min_size=min_size, max_shown=max_shown)
    # By id, not by rank: a community that keeps its id across rebuilds keeps its colour.
    palette = community_colors(max(shown) + 1) if shown else []
    colors = {c: palette[c] for c in shown}
    group = np.where(np.isin(community, shown), community, OTHER)
    color = np.array([colors.get(int(g), OTHER_COLOR) for g in group], dtype=object)
    names = _community_names(streamers)
    legend = [LegendEntry(c, colors[c], int((community == c).sum()), names[c]) for c in shown]
    others = group == OTHER
    if others.any():
        legend.append(LegendEntry(OTHER, OTHER_COLOR, int(others.sum()),
                                  _other_name(community[others], data, streamers, others)))
    kept = np.unique(component[group != OTHER])
    # Nothing shown (e.g. only loners): frame everything.
    framed = np.isin(component, kept) if len(kept) else np.ones(len(group), dtype=bool)
    return MapView(group=group, color=color, legend=legend, framed=framed,
                   frame=_bbox(streamers, framed))


def _index_edges(data: GraphData, streamers: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    index = pd.Series(np.arange(len(streamers)), index=streamers["Id"])
    src = data.edges["Source"].map(index).to_numpy()
    dst = data.edges["Target"].map(index).to_numpy()
    keep = ~(pd.isna(src) | pd.isna(dst))
    return src[keep].astype(int), dst[keep].astype(int)


def _components(data: GraphData, streamers: pd.DataFrame) -> np.ndarray:
    n = len(streamers)
    src, dst = _index_edges(data, streamers)
    adjacency = sp.coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    return connected_components(adjacency, directed=False)[1]


def _bbox(streamers: pd.DataFrame, framed: np.ndarray) -> tuple[float, float, float, float]:
    xy = streamers[["x", "y"]].to_numpy(float)[framed]
    radius = streamers["size"].to_numpy(float)[framed]
    if len(xy) == 0:
        return (0.0, 0.0, 0.0, 0.0)
    return (float((xy[:, 0] - radius).min()), float((xy[:, 0] + radius).max()),
            float((xy[:, 1] - radius).min()), float((xy[:, 1] + radius).max()))


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _community_names(streamers: pd.DataFrame) -> dict[int, str]:
    """A short name per community: its three biggest streamers and its most common game."""
    names = {}
    viewers = pd.to_numeric(streamers.get("viewer_mean"), errors="coerce").fillna(0.0)
    frame = streamers.assign(_v=viewers)
    for c, group in frame.groupby("community"):
        top = group.sort_values("_v", ascending=False)
        labels = [(_text(lb) or login) for lb, login in zip(top["Label"].head(3), top["Id"],
                                                            strict=False)]
        games = group.get("main_game", pd.Series([], dtype=object))
        games = games[games.astype(str) != ""].dropna()
        game = str(games.mode().iloc[0]) if len(games) else ""
        names[int(c)] = ", ".join(labels) + (f" ({game})" if game else "")
    return names


def _other_name(community: np.ndarray, data: GraphData, streamers: pd.DataFrame,
                others: np.ndarray) -> str:
    """"other: N small communities (K streamers), M isolated streamers", each streamer
    counted once: an isolated streamer is a community of its own, counted only as isolated."""
    src, dst = _index_edges(data, streamers)
    linked = np.zeros(len(streamers), dtype=bool)
    linked[src] = linked[dst] = True
    isolated = int((others & ~linked).sum())
    in_small = linked[others]
    k, members = len(np.unique(community[in_small])), int(in_small.sum())
    parts = []
    if k:
        parts.append(f"{k} small communit{'y' if k == 1 else 'ies'} ({members} "
                     f"streamer{'' if members == 1 else 's'})")
    if isolated:
        parts.append(f"{isolated} isolated streamer{'' if isolated == 1 else 's'}")
    return "other: " + ", ".join(parts)
