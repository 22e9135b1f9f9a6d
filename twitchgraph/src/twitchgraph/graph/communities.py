"""Communities of streamers: Leiden maximising weighted modularity with a resolution.

The original map used Gephi's modularity at resolution 0.7; Leiden (Traag, Waltman & van Eck
2019) optimises the same objective (leidenalg's `RBConfigurationVertexPartition`, the
Reichardt-Bornholdt form of modularity with a resolution γ) and, unlike Louvain, guarantees
connected communities.

Edges are treated as undirected. The weight is the overlap of two audiences (shared chatters
over the smaller audience), which is symmetric; the build stores it "from the streamer with
more viewers" only to record who is bigger. Directed modularity would read that as a flow of
viewers from big to small channels, which the data does not say, and would split communities
by audience size instead of by shared audience.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import igraph as ig
import leidenalg
import numpy as np
import pandas as pd

from twitchgraph.errors import BadValue
from twitchgraph.graphio import (
    GraphData,
    read_graph_dir,
    to_igraph,
    write_csv,
    write_streamers,
)

__all__ = [
    "MAX_SHOWN",
    "OTHER",
    "CommunityResult",
    "communities_for_dir",
    "community_table",
    "find_communities",
    "keep_ids",
    "shown_communities",
]

logger = logging.getLogger(__name__)

OTHER = -1  # the group of streamers in communities too small to get a colour of their own
MAX_SHOWN = 30  # beyond about 30 colours, people stop telling communities apart on a map


@dataclass
class CommunityResult:
    """Membership, modularity and the per-community summary table.

    Attributes
    ----------
    membership : login -> community id; ids are 0..k-1, 0 being the largest community.
    modularity : weighted Newman modularity Q of the partition (γ = 1, as Gephi reports it).
    quality : value of the optimised objective at the requested resolution.
    resolution : the resolution γ used.
    table : one row per community (see `community_table`).
    """

    membership: dict[str, int]
    modularity: float
    quality: float
    resolution: float
    table: pd.DataFrame


def find_communities(
    data: GraphData,
    *,
    resolution: float = 1.0,
    seed: int = 0,
    n_iterations: int = -1,
    top: int = 5,
) -> CommunityResult:
    """Find communities with Leiden on the undirected, overlap-weighted streamer graph.

    Parameters
    ----------
    data : the GRAPH_DIR tables (`graphio.read_graph_dir`).
    resolution : γ of the modularity; below 1 gives fewer, larger communities (Gephi's
        default is 1.0, the original map used 0.7).
    seed : seed of Leiden's random choices; the same seed gives the same partition.
    n_iterations : Leiden passes; -1 iterates until no improvement (the default here).
    top : how many streamers `communities.csv` lists per community.

    Returns
    -------
    CommunityResult

    Examples
    --------
    >>> from twitchgraph.graphio import GraphData
    >>> import pandas as pd
    >>> s = pd.DataFrame({"Id": list("abcdef"), "viewer_mean": [1.0] * 6})
    >>> e = pd.DataFrame({"Source": list("abcdef"), "Target": list("bcaefd"), "Weight": [1] * 6})
    >>> r = find_communities(GraphData(streamers=s, edges=e), seed=0)
    >>> r.membership["a"] == r.membership["b"] != r.membership["d"]
    True

    Notes
    -----
    Streamers without an edge each form a community of their own (they contribute nothing
    to Q). Community ids are relabelled by size, ties broken by the smallest member login, so
    the ids do not depend on Leiden's internal numbering.
    """
    if not 0 < resolution < math.inf:  # also refuses nan, which Leiden takes silently
        raise BadValue(f"resolution must be a finite number > 0 (e.g. 1.0; the original map used "
                         f"0.7), got {resolution}")
    if not -(2**63) <= seed < 2**63:  # Leiden takes a C integer
        raise BadValue(f"seed must be an integer of at most 19 digits (e.g. 0 or 42), got {seed}")
    if n_iterations == 0 or n_iterations < -1:
        raise BadValue(f"n_iterations must be -1 (until stable) or >= 1, got {n_iterations}")
    graph = to_igraph(data)
    if graph.vcount() == 0:
        raise BadValue("the graph has no streamers")
    weights = "weight" if graph.ecount() else None
    _check_weights(graph)
    partition = leidenalg.find_partition(
        graph,
        leidenalg.RBConfigurationVertexPartition,
        weights=weights,
        resolution_parameter=resolution,
        n_iterations=n_iterations,
        seed=seed,
    )
    membership = _relabel_by_size(list(partition.membership), graph.vs["name"])
    modularity = graph.modularity(membership, weights=weights) if graph.ecount() else 0.0
    by_login = dict(zip(graph.vs["name"], membership, strict=True))
    table = community_table(data, by_login, graph=graph, top=top)
    logger.info("Leiden: %d communities, Q=%.4f (resolution %.2f)",
                len(table), modularity, resolution)
    return CommunityResult(
        membership=by_login,
        modularity=float(modularity),
        quality=float(partition.quality()),
        resolution=resolution,
        table=table,
    )


def _check_weights(graph: ig.Graph) -> None:
    """Modularity needs weights >= 0; Leiden fails on others with a bare BaseException."""
    weights = np.asarray(graph.es["weight"] if graph.ecount() else [], dtype=float)
    bad = np.flatnonzero(~((weights >= 0) & np.isfinite(weights)))
    if len(bad):
        first = graph.es[int(bad[0])]
        raise BadValue(
            f"{len(bad)} edges have a Weight that is negative or not a number (first: "
            f"{graph.vs[first.source]['name']} - {graph.vs[first.target]['name']}: "
            f"{first['weight']}); weights must be >= 0: rebuild with `twitchgraph build`"
        )


def _relabel_by_size(membership: list[int], names: list[str]) -> list[int]:
    groups: dict[int, list[str]] = {}
    for label, name in zip(membership, names, strict=True):
        groups.setdefault(label, []).append(name)
    order = sorted(groups, key=lambda g: (-len(groups[g]), min(groups[g])))
    new_id = {old: new for new, old in enumerate(order)}
    return [new_id[label] for label in membership]


def _mode_and_share(values: pd.Series) -> tuple[str, float]:
    values = values[values.astype(str) != ""]
    if values.empty:
        return "", 0.0
    counts = values.value_counts()
    # Ties: alphabetical, so the table is stable from run to run.
    best = sorted(counts[counts == counts.iloc[0]].index.astype(str))[0]
    return best, float(counts.iloc[0] / len(values))


def community_table(
    data: GraphData,
    membership: dict[str, int],
    *,
    graph: ig.Graph | None = None,
    top: int = 5,
) -> pd.DataFrame:
    """Summarise each community: size, modularity contribution, top streamers, language, game.

    The modularity contribution of community c is ``w_c / W - (d_c / 2W)**2`` with w_c the
    weight inside c, d_c the summed weighted degree of its members and W the total weight
    (γ = 1); the contributions add up to Q. "Main game" is the most common `main_game` of its
    members; shares are the fraction of members with that value.
    """
    graph = graph if graph is not None else to_igraph(data)
    names = graph.vs["name"]
    labels = np.array([membership[name] for name in names])
    k = int(labels.max()) + 1 if len(labels) else 0
    total = float(sum(graph.es["weight"])) if graph.ecount() else 0.0
    inside = np.zeros(k)
    degree = np.zeros(k)
    if graph.ecount():
        edges = np.array(graph.get_edgelist())
        w = np.asarray(graph.es["weight"], dtype=float)
        same = labels[edges[:, 0]] == labels[edges[:, 1]]
        np.add.at(inside, labels[edges[same, 0]], w[same])
        np.add.at(degree, labels[edges[:, 0]], w)
        np.add.at(degree, labels[edges[:, 1]], w)
    if total > 0:
        contribution = inside / total - (degree / (2 * total)) ** 2
    else:
        contribution = np.zeros(k)

    frame = data.streamers.copy()
    frame["community"] = frame["Id"].map(membership)
    frame["_viewers"] = pd.to_numeric(frame.get("viewer_mean"), errors="coerce").fillna(0.0)
    if frame.empty:
        return pd.DataFrame(columns=_TABLE_COLUMNS)
    # Whole-table operations, not a loop over communities: most communities of a sparse
    # graph are single streamers, and a pandas step per community cost seconds.
    ranked = frame.sort_values(["community", "_viewers", "Id"], ascending=[True, False, True])
    by = ranked.groupby("community", sort=True)
    table = pd.DataFrame({
        "size": by.size(),
        "top_streamers": by.head(top).groupby("community", sort=True)["Id"].agg(";".join),
        "viewer_mean_total": by["_viewers"].sum().astype(float).round(2),
    })
    for column, prefix in (("language", "dominant_language"), ("main_game", "main_game")):
        mode, share = _modes(frame, column)
        table[prefix] = mode.reindex(table.index).fillna("")
        table[f"{prefix.replace('dominant_', '')}_share"] = (
            share.reindex(table.index).fillna(0.0).round(3))
    table.index = table.index.astype(int)
    table["community"] = table.index
    table["modularity_contribution"] = [round(float(contribution[c]), 6) for c in table.index]
    return table.reset_index(drop=True)[_TABLE_COLUMNS]


_TABLE_COLUMNS = ["community", "size", "modularity_contribution", "top_streamers",
                  "dominant_language", "language_share", "main_game", "main_game_share",
                  "viewer_mean_total"]


def _modes(frame: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
    """Per community, the most common non-empty value of `column` (ties: alphabetical) and
    the share of members with it among those with a value (as `_mode_and_share`)."""
    if column not in frame:
        empty = pd.Series(dtype=object)
        return empty, pd.Series(dtype=float)
    values = frame[["community", column]]
    text = values[column].astype(str)
    values = values[text != ""].assign(_text=text[text != ""])
    denominator = values.groupby("community").size()
    counted = values.dropna(subset=[column])
    counts = counted.groupby(["community", "_text"]).size().rename("n").reset_index()
    counts = counts.sort_values(["community", "n", "_text"], ascending=[True, False, True])
    best = counts.drop_duplicates("community").set_index("community")
    return best["_text"], best["n"] / denominator.reindex(best.index)


def keep_ids(membership: dict[str, int], previous: dict[str, int]) -> dict[str, int]:
    """`membership` with its communities renumbered to match `previous` ones: ids (and so
    colours) persist from one graph to the next.

    Pairs (community, previous community) are taken by most shared members first (ties: the
    larger community, then the smaller ids), each side at most once; a community matched
    this way takes its previous id, the others the smallest ids left, largest first.

    Examples
    --------
    >>> keep_ids({"a": 0, "b": 0, "c": 1, "d": 2}, {"a": 7, "b": 7, "c": 0})
    {'a': 7, 'b': 7, 'c': 0, 'd': 1}
    """
    groups = _members(membership)
    shared: dict[tuple[int, int], int] = {}
    for login, c in membership.items():
        p = previous.get(login)
        if p is not None:
            shared[(c, p)] = shared.get((c, p), 0) + 1
    new_id: dict[int, int] = {}
    taken: set[int] = set()
    for (c, p), _n in sorted(shared.items(),
                             key=lambda kv: (-kv[1], -len(groups[kv[0][0]]), kv[0])):
        if c not in new_id and p not in taken:
            new_id[c] = p
            taken.add(p)
    free = (i for i in range(len(groups) + len(taken)) if i not in taken)
    for c in sorted(groups, key=lambda c: (-len(groups[c]), c)):
        if c not in new_id:
            new_id[c] = next(free)
    return {login: new_id[c] for login, c in membership.items()}


def _members(membership: dict[str, int]) -> dict[int, list[str]]:
    groups: dict[int, list[str]] = {}
    for login, c in membership.items():
        groups.setdefault(c, []).append(login)
    return groups


def communities_for_dir(
    path: str | os.PathLike,
    *,
    resolution: float = 1.0,
    seed: int = 0,
    previous: dict[str, int] | None = None,
) -> tuple[CommunityResult, list[Path]]:
    """Find communities of a GRAPH_DIR and write them: `community` in streamers.csv and
    communities.csv. Returns the result and the files written.

    With `previous` (login -> community id of an earlier graph), the ids are matched to its
    communities (`keep_ids`), so a community keeps its id and colour across rebuilds.
    """
    data = read_graph_dir(path)
    result = find_communities(data, resolution=resolution, seed=seed)
    if previous:
        membership = keep_ids(result.membership, previous)
        result = replace(result, membership=membership,
                         table=community_table(data, membership, top=5))
    data.streamers["community"] = data.streamers["Id"].map(result.membership).astype(int)
    written = [write_streamers(path, data.streamers)]
    target = Path(path) / "communities.csv"
    write_csv(result.table, target)
    written.append(target)
    return result, written


def shown_communities(
    community: pd.Series | np.ndarray,
    *,
    min_size: int | None = None,
    max_shown: int = MAX_SHOWN,
) -> list[int]:
    """The communities a map shows on their own, largest first; the rest are drawn as "other".

    Leiden gives every isolated streamer a community of its own, and on collected data most
    "communities" are such singletons or pairs: each would take a colour and a legend line.
    A community is shown when it has at least `min_size` members (default: 3, or 0.5 % of the
    streamers on bigger graphs) and is among the `max_shown` largest.

    Parameters
    ----------
    community : the community id of each streamer.
    min_size : smallest community shown; None picks ``max(3, round(0.005 * n))``.
    max_shown : at most this many communities are shown.

    Returns
    -------
    Community ids, largest first (ties: smaller id first).

    Examples
    --------
    >>> shown_communities(pd.Series([0, 0, 0, 1, 1, 1, 1, 2, 3]))
    [1, 0]
    """
    if max_shown < 0:
        raise BadValue(f"max_shown must be >= 0, got {max_shown}")
    ids = pd.Series(np.asarray(community)).astype(int)
    if min_size is None:
        min_size = max(3, round(0.005 * len(ids)))
    sizes = ids.value_counts()
    ranked = sorted(sizes.index, key=lambda c: (-sizes[c], c))
    return [int(c) for c in ranked if sizes[c] >= min_size][:max_shown]
