"""ForceAtlas2 layout of the streamer graph, with Gephi's parameters.

The default engine is the `fa2` package (Cython, Barnes-Hut repulsion in O(n log n)); the
`networkx` engine (`nx.forceatlas2_layout`, all-pairs repulsion in O(n²) memory and time) is
kept as the reference implementation and as a fallback when `fa2` is not installed (`fa2` is
GPL-3.0 licensed, so it is imported lazily and the BSD-licensed networkx engine always works).
Both get the same parameters: scaling ratio, gravity (optionally strong), LinLog mode, edge-weight
influence, dissuade hubs, prevent overlap and jitter tolerance.

Like Gephi users do, prevent-overlap runs as a final phase after the main run (with it on from
the start, anti-collision slows the convergence of the global shape); see `remove_overlaps`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial import cKDTree

from twitchgraph.graphio import GraphData, read_graph_dir, undirected_edges, write_streamers

__all__ = [
    "ForceAtlas2Settings",
    "forceatlas2_layout",
    "layout_for_dir",
    "node_sizes",
    "remove_overlaps",
]

logger = logging.getLogger(__name__)

ENGINES = ("fa2", "networkx")


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

    def __post_init__(self) -> None:
        for name in ("scaling", "gravity", "edge_weight_influence", "jitter_tolerance",
                     "barnes_hut_theta"):
            if not math.isfinite(getattr(self, name)):  # nan passes every comparison below
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)}")
        if self.scaling <= 0:
            raise ValueError(f"scaling must be > 0, got {self.scaling}")
        if self.gravity < 0:
            raise ValueError(f"gravity must be >= 0, got {self.gravity}")
        # w ** influence overflows a double beyond ~10 with overlap weights up to 100.
        if not 0 <= self.edge_weight_influence <= 10:
            raise ValueError("edge weight influence must be between 0 and 10, got "
                             f"{self.edge_weight_influence}")
        if self.jitter_tolerance <= 0:
            raise ValueError(f"jitter_tolerance must be > 0, got {self.jitter_tolerance}")
        if self.barnes_hut_theta <= 0:
            raise ValueError(f"barnes_hut_theta must be > 0, got {self.barnes_hut_theta}")


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
        raise ValueError(f"need 0 < min_size <= max_size, got {min_size}, {max_size}")
    values = pd.to_numeric(pd.Series(np.asarray(viewer_mean)), errors="coerce").fillna(0.0)
    root = np.sqrt(values.clip(lower=0).to_numpy(float))
    if len(root) == 0:
        return root
    lo, hi = root.min(), root.max()
    if hi - lo < 1e-12:
        return np.full(len(root), (min_size + max_size) / 2)
    return min_size + (max_size - min_size) * (root - lo) / (hi - lo)


def _adjacency(data: GraphData) -> sp.csr_matrix:
    # Raw weights: fa2 applies the edge-weight influence itself.
    index = {login: i for i, login in enumerate(data.logins)}
    und = undirected_edges(data.edges)
    n = len(index)
    if und.empty:
        return sp.csr_matrix((n, n))
    rows = und["u"].map(index).to_numpy()
    cols = und["v"].map(index).to_numpy()
    w = und["weight"].to_numpy(float)
    matrix = sp.coo_matrix((np.r_[w, w], (np.r_[rows, cols], np.r_[cols, rows])), shape=(n, n))
    return matrix.tocsr()


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
    data : the GRAPH_DIR tables; edges are used undirected, weighted by `Weight`.
    iterations : iterations of the main run (the prevent-overlap phase comes on top).
    seed : seed of the initial random positions; the same seed gives the same layout.
    settings : Gephi's parameters (`ForceAtlas2Settings`), defaults as Gephi's for large graphs.
    engine : "fa2" (Barnes-Hut, default) or "networkx" (O(n²) reference).
    progress : called with the number of iterations done, for a progress bar.

    Returns
    -------
    DataFrame with columns Id, x, y, size (one row per streamer, in `data.streamers` order).

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
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    settings = settings or ForceAtlas2Settings()
    sizes = node_sizes(data.streamers.get("viewer_mean", pd.Series(np.zeros(len(data.logins)))))
    n = len(data.logins)
    if n == 0:
        return pd.DataFrame({"Id": [], "x": [], "y": [], "size": []})
    overlap_iters = settings.overlap_iterations or 100
    if engine == "fa2":
        try:
            positions = _run_fa2(data, iterations, seed, settings, progress)
        except ImportError:
            logger.warning("the fa2 package is not installed; using networkx's ForceAtlas2")
            engine = "networkx"
    if engine == "networkx":
        positions = _run_networkx(data, iterations, seed, settings, progress)
    if settings.prevent_overlap:
        positions = remove_overlaps(_make_room(positions, sizes), sizes,
                                    max_iter=overlap_iters)
    logger.info("ForceAtlas2 (%s): %d nodes, %d iterations, %s", engine, n, iterations,
                asdict(settings))
    return pd.DataFrame({"Id": data.logins, "x": positions[:, 0], "y": positions[:, 1],
                         "size": np.round(sizes, 3)})


def _run_fa2(data, iterations, seed, settings, progress) -> np.ndarray:
    from fa2 import ForceAtlas2  # GPL-3.0: imported lazily, see the module docstring

    adjacency = _adjacency(data)
    rng = np.random.default_rng(seed)
    n = adjacency.shape[0]
    # Gephi starts from random positions in a square about as wide as the final map.
    start = rng.uniform(-1.0, 1.0, size=(n, 2)) * max(10.0, np.sqrt(n) * 10.0)
    done = 0

    def tick(_i, _nodes):
        nonlocal done
        done += 1
        if progress is not None:
            progress(done)

    fa2 = ForceAtlas2(
        outboundAttractionDistribution=settings.dissuade_hubs,
        linLogMode=settings.linlog,
        adjustSizes=False,  # see remove_overlaps
        edgeWeightInfluence=settings.edge_weight_influence,
        jitterTolerance=settings.jitter_tolerance,
        barnesHutOptimize=settings.barnes_hut,
        barnesHutTheta=settings.barnes_hut_theta,
        scalingRatio=settings.scaling,
        strongGravityMode=settings.strong_gravity,
        gravity=settings.gravity,
        seed=seed,
        verbose=False,
    )
    out = fa2.forceatlas2(adjacency, pos=start, iterations=iterations, callbacks=[tick])
    return np.asarray(out, dtype=float)


def _make_room(positions: np.ndarray, sizes: np.ndarray, density: float = 0.3) -> np.ndarray:
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


def _run_networkx(data, iterations, seed, settings, progress) -> np.ndarray:
    graph = nx.Graph()
    graph.add_nodes_from(data.logins)
    und = undirected_edges(data.edges)
    weights = np.power(np.maximum(und["weight"].to_numpy(float), 0.0),
                       settings.edge_weight_influence)
    graph.add_weighted_edges_from(zip(und["u"], und["v"], weights, strict=True))
    common = dict(
        jitter_tolerance=settings.jitter_tolerance,
        scaling_ratio=settings.scaling,
        gravity=settings.gravity,
        distributed_action=settings.dissuade_hubs,
        strong_gravity=settings.strong_gravity,
        weight="weight",
        linlog=settings.linlog,
        seed=seed,
    )
    pos = nx.forceatlas2_layout(graph, max_iter=iterations, **common)
    if progress is not None:
        progress(iterations)
    return np.array([pos[login] for login in data.logins], dtype=float)


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
