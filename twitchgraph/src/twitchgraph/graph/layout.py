"""ForceAtlas2 layout of the streamer graph, with Gephi's parameters.

The default engine is the `fa2` package (Cython, Barnes-Hut repulsion in O(n log n)); the
`networkx` engine (`nx.forceatlas2_layout`, all-pairs repulsion in O(n²) memory and time) is
kept as the reference implementation and as a fallback when `fa2` is not installed (`fa2` is
GPL-3.0 licensed, so it is imported lazily and the BSD-licensed networkx engine always works).
Both get the same parameters: scaling ratio, gravity (optionally strong), LinLog mode, edge-weight
influence, dissuade hubs, prevent overlap and jitter tolerance.

Like Gephi users do, prevent-overlap runs as a final phase after the main run (with it on from
the start, anti-collision slows the convergence of the global shape); see `remove_overlaps`.

Speed (`benchmarks/graph.py`): most of an iteration is Barnes-Hut (building the tree and the
repulsion), so the way to a fast layout is fewer iterations, not cheaper ones:

- when streamers.csv has communities, ForceAtlas2 starts from them: the graph of communities
  (one node per community, weighted by the overlaps between them, heavy as its members) is laid
  out first, which is cheap, and each streamer starts in a disc around its community's place;
- the run stops once it has converged: when, over 10 iterations, nodes moved on average less
  than `tolerance` times the layout's radius, or when that movement has stopped falling for
  50 iterations (FA2's adaptive speed keeps some graphs swinging in place for ever). On the
  benchmark's 3,000-streamer graph that is 200 iterations from random positions and 110
  from community-seeded ones, to a layout as good by the benchmark's measures (edge lengths
  inside vs between communities, neighbourhood preservation) as 1,000 iterations.

The `fa2` engine runs ForceAtlas2 with `fa2`'s own force kernels (`fa2.fa2util`) in a loop of
ours, which is what lets it stop on convergence and start from the seeded positions cheaply.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial import cKDTree

from twitchgraph.errors import BadValue
from twitchgraph.graphio import GraphData, read_graph_dir, undirected_edges, write_streamers

__all__ = [
    "ForceAtlas2Settings",
    "forceatlas2_layout",
    "layout_for_dir",
    "make_room",
    "node_sizes",
    "remove_overlaps",
]

logger = logging.getLogger(__name__)

ENGINES = ("fa2", "networkx")
STARTS = ("communities", "random")
CHECK_EVERY = 10  # iterations between two convergence checks
PATIENCE = 5  # checks without a new low in movement before calling the run converged


@dataclass(frozen=True)
class ForceAtlas2Settings:
    """Gephi's ForceAtlas2 parameters (names as in Gephi's panel).

    Attributes
    ----------
    scaling : repulsion strength ("Scaling"); larger spreads the graph.
    gravity : pull towards the centre, keeps components together ("Gravity").
    strong_gravity : distance-independent gravity ("Stronger Gravity").
    linlog : logarithmic attraction, tighter communities ("LinLog mode").
    edge_weight_influence : weights enter attraction as ``w ** influence`` (0 ignores them).
    dissuade_hubs : distribute attraction along outbound edges ("Dissuade Hubs").
    prevent_overlap : no two nodes' discs overlap at the end ("Prevent Overlap").
    jitter_tolerance : tolerated swinging ("Tolerance (speed)").
    barnes_hut : Barnes-Hut approximation of repulsion ("Approximate Repulsion").
    barnes_hut_theta : accuracy of that approximation (Gephi's default 1.2).
    overlap_iterations : at most this many rounds of the prevent-overlap phase (0: 100).
    start : "communities" (from the communities' places, when streamers.csv has them) or
        "random" (Gephi's start).
    tolerance : stop once nodes moved, over 10 iterations, less than this share of the
        layout's radius on average, or once that stopped falling for 50 iterations (0: always
        run every iteration; `fa2` engine only).
    """

    scaling: float = 2.0
    gravity: float = 1.0
    strong_gravity: bool = False
    linlog: bool = False
    edge_weight_influence: float = 1.0
    dissuade_hubs: bool = False
    prevent_overlap: bool = True
    jitter_tolerance: float = 1.0
    barnes_hut: bool = True
    barnes_hut_theta: float = 1.2
    overlap_iterations: int = 0
    start: str = "communities"
    tolerance: float = 0.01

    def __post_init__(self) -> None:
        for name in ("scaling", "gravity", "edge_weight_influence", "jitter_tolerance",
                     "barnes_hut_theta"):
            if not math.isfinite(getattr(self, name)):  # nan passes every comparison below
                raise BadValue(f"{name} must be a finite number, got {getattr(self, name)}")
        if self.scaling <= 0:
            raise BadValue(f"scaling must be > 0, got {self.scaling}")
        if self.gravity < 0:
            raise BadValue(f"gravity must be >= 0, got {self.gravity}")
        # w ** influence overflows a double beyond ~10 with overlap weights up to 100.
        if not 0 <= self.edge_weight_influence <= 10:
            raise BadValue("edge weight influence must be between 0 and 10, got "
                             f"{self.edge_weight_influence}")
        if self.jitter_tolerance <= 0:
            raise BadValue(f"jitter_tolerance must be > 0, got {self.jitter_tolerance}")
        if self.barnes_hut_theta <= 0:
            raise BadValue(f"barnes_hut_theta must be > 0, got {self.barnes_hut_theta}")
        if self.start not in STARTS:
            raise BadValue(f"start must be one of {STARTS}, got {self.start!r}")
        if not 0 <= self.tolerance < 1:
            raise BadValue(f"tolerance must be in [0, 1), got {self.tolerance}")


def node_sizes(
    viewer_mean: pd.Series | np.ndarray,
    *,
    min_size: float = 2.0,
    max_size: float = 20.0,
) -> np.ndarray:
    """Node sizes from mean viewers, as on the original map: area grows with the audience.

    The radius grows with the square root of mean viewers (so the disc's area is proportional
    to the audience) and is rescaled to [min_size, max_size].
    """
    if min_size <= 0 or max_size < min_size:
        raise BadValue(f"need 0 < min_size <= max_size, got {min_size}, {max_size}")
    values = pd.to_numeric(pd.Series(np.asarray(viewer_mean)), errors="coerce").fillna(0.0)
    root = np.sqrt(values.clip(lower=0).to_numpy(float))
    if len(root) == 0:
        return root
    lo, hi = root.min(), root.max()
    if hi - lo < 1e-12:
        return np.full(len(root), (min_size + max_size) / 2)
    return min_size + (max_size - min_size) * (root - lo) / (hi - lo)


def _edge_arrays(data: GraphData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected edges as index pairs (u < v once per pair) and raw weights."""
    index = {login: i for i, login in enumerate(data.logins)}
    und = undirected_edges(data.edges)
    if und.empty:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    return (und["u"].map(index).to_numpy(int), und["v"].map(index).to_numpy(int),
            np.maximum(und["weight"].to_numpy(float), 0.0))


def forceatlas2_layout(
    data: GraphData,
    *,
    iterations: int = 1000,
    seed: int = 0,
    settings: ForceAtlas2Settings | None = None,
    engine: str = "fa2",
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Lay the streamer graph out with ForceAtlas2.

    Parameters
    ----------
    data : the GRAPH_DIR tables; edges are used undirected, weighted by `Weight`. With a
        `community` column (and ``settings.start == "communities"``) the run starts from the
        communities' places.
    iterations : at most this many iterations of the main run (the `fa2` engine stops earlier
        once converged, see `ForceAtlas2Settings.tolerance`); the prevent-overlap phase comes
        on top.
    seed : seed of the initial random positions; the same seed gives the same layout.
    settings : Gephi's parameters (`ForceAtlas2Settings`), defaults as Gephi's for large graphs.
    engine : "fa2" (Barnes-Hut, default) or "networkx" (O(n²) reference).
    progress : called with the number of iterations done, for a progress bar; called with
        `iterations` when the run stops early.

    Returns
    -------
    DataFrame with columns Id, x, y, size (one row per streamer, in `data.streamers` order);
    ``.attrs["iterations"]`` is the number of iterations run.

    Examples
    --------
    >>> from twitchgraph.graphio import GraphData
    >>> s = pd.DataFrame({"Id": ["a", "b", "c"], "viewer_mean": [10.0, 20.0, 40.0]})
    >>> e = pd.DataFrame({"Source": ["a", "b"], "Target": ["b", "c"], "Weight": [10, 20]})
    >>> pos = forceatlas2_layout(GraphData(streamers=s, edges=e), iterations=20, seed=1)
    >>> list(pos.columns)
    ['Id', 'x', 'y', 'size']
    """
    if iterations < 1:
        raise BadValue(f"iterations must be >= 1, got {iterations}")
    if engine not in ENGINES:
        raise BadValue(f"engine must be one of {ENGINES}, got {engine!r}")
    settings = settings or ForceAtlas2Settings()
    sizes = node_sizes(data.streamers.get("viewer_mean", pd.Series(np.zeros(len(data.logins)))))
    n = len(data.logins)
    if n == 0:
        return pd.DataFrame({"Id": [], "x": [], "y": [], "size": []})
    overlap_iters = settings.overlap_iterations or 100
    rng = np.random.default_rng(seed)
    u, v, w = _edge_arrays(data)
    mass = 1.0 + np.bincount(np.r_[u, v], minlength=n)  # as Gephi: 1 + neighbours
    community = _communities(data) if settings.start == "communities" else None
    if community is None:
        # Gephi starts from random positions in a square about as wide as the final map.
        start = rng.uniform(-1.0, 1.0, size=(n, 2)) * max(10.0, np.sqrt(n) * 10.0)
    else:
        start = _seeded_start(community, u, v, w, mass, rng, settings, engine)
    positions, done, engine = _force_layout(u, v, w, start, mass, settings, iterations, engine,
                                            progress, seed=seed)
    if progress is not None and done < iterations:
        progress(iterations)
    if settings.prevent_overlap:
        positions = remove_overlaps(make_room(positions, sizes), sizes,
                                    max_iter=overlap_iters)
    logger.info("ForceAtlas2 (%s, %s start): %d nodes, %d of at most %d iterations, %s",
                engine, "random" if community is None else "community", n, done, iterations,
                asdict(settings))
    frame = pd.DataFrame({"Id": data.logins, "x": positions[:, 0], "y": positions[:, 1],
                          "size": np.round(sizes, 3)})
    frame.attrs["iterations"] = done
    return frame


def _communities(data: GraphData) -> np.ndarray | None:
    column = data.streamers.get("community")
    values = pd.to_numeric(column, errors="coerce") if column is not None else None
    if values is None or values.isna().any():
        logger.info("no communities in streamers.csv: ForceAtlas2 starts from random positions")
        return None
    if values.nunique() > len(values) / 2:  # mostly loners: nothing to seed from
        return None
    return values.to_numpy(int)


def _seeded_start(community, u, v, w, mass, rng, settings, engine) -> np.ndarray:
    """Start positions: each streamer in a disc around its community's place.

    The communities' places come from ForceAtlas2 on the graph of communities: one node per
    community, as heavy as its members together, linked by the sum of the (influence-weighted)
    overlaps between them. Each disc's area is proportional to its community's size.
    """
    n = len(community)
    _, member_of = np.unique(community, return_inverse=True)
    k = int(member_of.max()) + 1
    membership = sp.csr_matrix((np.ones(n), (np.arange(n), member_of)), shape=(n, k))
    weight = np.power(w, settings.edge_weight_influence)
    adjacency = sp.coo_matrix((weight, (u, v)), shape=(n, n))
    between = (membership.T @ (adjacency + adjacency.T) @ membership).tocoo()
    keep = between.row < between.col
    coarse = replace(settings, edge_weight_influence=1.0)
    centres, _, _ = _force_layout(
        between.row[keep], between.col[keep], between.data[keep],
        rng.uniform(-1.0, 1.0, size=(k, 2)) * max(10.0, np.sqrt(k) * 10.0),
        np.bincount(member_of, weights=mass, minlength=k), coarse, 500, engine, None,
        seed=int(rng.integers(1 << 31)))
    size = np.bincount(member_of, minlength=k)
    # One community has no spread of its own: use the random start's.
    spread = _radius(centres) if k > 1 else max(10.0, np.sqrt(n) * 10.0)
    radius = 0.5 * spread * np.sqrt(size / n)
    angle = rng.uniform(0.0, 2 * np.pi, n)
    distance = np.sqrt(rng.uniform(0.0, 1.0, n)) * radius[member_of]
    return centres[member_of] + np.c_[np.cos(angle), np.sin(angle)] * distance[:, None]


def _radius(positions: np.ndarray) -> float:
    """Root-mean-square distance to the centroid: the layout's scale."""
    return float(np.sqrt(np.mean(np.sum(np.square(positions - positions.mean(axis=0)), axis=1))))


def _force_layout(u, v, w, start, mass, settings, iterations, engine, progress, *, seed):
    """ForceAtlas2 from `start`; returns (positions, iterations run, engine used)."""
    if engine == "fa2":
        try:
            positions, done = _run_fa2(u, v, w, start, mass, settings, iterations, progress)
            return positions, done, engine
        except ImportError:
            logger.warning("the fa2 package is not installed; using networkx's ForceAtlas2")
    positions = _run_networkx(u, v, w, start, mass, settings, iterations, seed, progress)
    return positions, iterations, "networkx"


def _run_fa2(u, v, w, start, mass, settings, iterations, progress) -> tuple[np.ndarray, int]:
    from fa2 import fa2util  # GPL-3.0: imported lazily, see the module docstring

    nodes = []
    for m, (x, y) in zip(mass.tolist(), start.tolist(), strict=True):
        node = fa2util.Node(2)
        node.mass, node.x, node.y = m, x, y
        nodes.append(node)
    edges = []
    for a, b, weight in zip(u.tolist(), v.tolist(), w.tolist(), strict=True):
        edge = fa2util.Edge()
        edge.node1, edge.node2, edge.weight = a, b, weight
        edges.append(edge)
    # The steps of fa2's own loop (ForceAtlas2._run_loop), with a convergence check added.
    compensation = float(np.mean(mass)) if settings.dissuade_hubs else 1.0
    speed, efficiency = 1.0, 1.0
    before = np.asarray(start, dtype=float)
    done, best, since_best = 0, np.inf, 0
    while done < iterations:
        for node in nodes:
            node.old_dx, node.old_dy, node.dx, node.dy = node.dx, node.dy, 0.0, 0.0
        if settings.barnes_hut:
            root = fa2util.Region(nodes)
            root.buildSubRegions()
            root.applyForceOnNodes(nodes, settings.barnes_hut_theta, settings.scaling,
                                   adjustSizes=False)
        else:
            fa2util.apply_repulsion(nodes, settings.scaling, adjustSizes=False)
        fa2util.apply_gravity(nodes, settings.gravity, scalingRatio=settings.scaling,
                              useStrongGravity=settings.strong_gravity)
        fa2util.apply_attraction(nodes, edges, settings.dissuade_hubs, compensation,
                                 settings.edge_weight_influence, settings.linlog,
                                 adjustSizes=False)  # see remove_overlaps
        state = fa2util.adjustSpeedAndApplyForces(nodes, speed, efficiency,
                                                  settings.jitter_tolerance, adjustSizes=False)
        speed, efficiency = state["speed"], state["speedEfficiency"]
        done += 1
        if progress is not None:
            progress(done)
        if settings.tolerance and done % CHECK_EVERY == 0:
            now = np.array([(node.x, node.y) for node in nodes])
            scale = _radius(now)
            moved = np.linalg.norm(now - before, axis=1).mean() / scale if scale > 0 else 0.0
            logger.debug("ForceAtlas2 iteration %d: moved %.4f of the radius", done, moved)
            # Converged: still, or no longer settling (only swinging in place, as FA2's
            # adaptive speed keeps nodes doing on small graphs).
            best, since_best = (moved, 0) if moved < 0.9 * best else (best, since_best + 1)
            if moved < settings.tolerance or since_best >= PATIENCE:
                break
            before = now
    return np.array([(node.x, node.y) for node in nodes]), done


def make_room(positions: np.ndarray, sizes: np.ndarray, density: float = 0.3) -> np.ndarray:
    """Scale the layout up so the discs cover at most about `density` of its area.

    Node sizes are in display units while the layout's extent depends on the graph and the
    scaling ratio; when the discs are much bigger than the gaps, removing overlaps would have
    to move nodes far and would scramble the map.
    """
    centre = np.median(positions, axis=0)
    radius = np.percentile(np.linalg.norm(positions - centre, axis=1), 90)
    if radius <= 0:
        return positions
    wanted = np.sqrt(np.sum(np.square(sizes)) / density)
    return centre + (positions - centre) * max(1.0, wanted / radius)


def _run_networkx(u, v, w, start, mass, settings, iterations, seed, progress) -> np.ndarray:
    graph = nx.Graph()
    graph.add_nodes_from(range(len(mass)))
    weights = np.power(w, settings.edge_weight_influence)
    graph.add_weighted_edges_from(zip(u.tolist(), v.tolist(), weights.tolist(), strict=True))
    pos = nx.forceatlas2_layout(
        graph,
        pos={i: xy for i, xy in enumerate(np.asarray(start, dtype=float))},
        max_iter=iterations,
        jitter_tolerance=settings.jitter_tolerance,
        scaling_ratio=settings.scaling,
        gravity=settings.gravity,
        distributed_action=settings.dissuade_hubs,
        strong_gravity=settings.strong_gravity,
        node_mass=dict(enumerate(mass.tolist())),
        weight="weight",
        linlog=settings.linlog,
        seed=seed,
    )
    if progress is not None:
        progress(iterations)
    return np.array([pos[i] for i in range(len(mass))], dtype=float)


def layout_for_dir(
    path: str | os.PathLike,
    *,
    iterations: int = 1000,
    seed: int = 0,
    settings: ForceAtlas2Settings | None = None,
    engine: str = "fa2",
    progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, Path]:
    """Lay out a GRAPH_DIR and write `x`, `y`, `size` into its streamers.csv."""
    data = read_graph_dir(path)
    positions = forceatlas2_layout(data, iterations=iterations, seed=seed, settings=settings,
                                   engine=engine, progress=progress)
    streamers = data.streamers.drop(columns=["x", "y", "size"], errors="ignore")
    streamers = streamers.merge(positions, on="Id", how="left")
    return positions, write_streamers(path, streamers)


def remove_overlaps(
    positions: np.ndarray,
    sizes: np.ndarray,
    *,
    margin: float = 0.5,
    max_iter: int = 100,
) -> np.ndarray:
    """Push overlapping discs apart until none overlap (or `max_iter` rounds), keeping the shape.

    This is "Prevent Overlap" done as a separate pass, like Gephi's Noverlap: each round finds
    the pairs closer than the sum of their radii plus `margin` (a k-d tree keeps it
    O(n log n)) and moves both ends apart by half the shortfall. ForceAtlas2's own
    anti-collision mode (`adjustSizes`) was measured to blow our maps apart (99th-percentile
    radius x100) instead of nudging neighbours, so it is not used. Deterministic.
    """
    xy = np.array(positions, dtype=float, copy=True)
    radius = np.asarray(sizes, dtype=float)
    if len(xy) < 2:
        return xy
    reach = 2 * float(radius.max()) + margin
    for _ in range(max_iter):
        pairs = cKDTree(xy).query_pairs(reach, output_type="ndarray")
        if len(pairs) == 0:
            break
        i, j = pairs[:, 0], pairs[:, 1]
        delta = xy[i] - xy[j]
        dist = np.linalg.norm(delta, axis=1)
        need = radius[i] + radius[j] + margin
        short = dist < need
        if not short.any():
            break
        i, j, delta, dist, need = i[short], j[short], delta[short], dist[short], need[short]
        # Coincident nodes: split them along a direction fixed by their indices.
        angle = (i * 2.399963 + j) % (2 * np.pi)
        fallback = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        unit = np.where(dist[:, None] > 1e-9, delta / np.maximum(dist, 1e-9)[:, None], fallback)
        push = unit * ((need - dist) / 2)[:, None]
        move = np.zeros_like(xy)
        np.add.at(move, i, push)
        np.add.at(move, j, -push)
        xy += move
    return xy
