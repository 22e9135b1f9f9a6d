"""ForceAtlas2 layout of the streamer graph, with Gephi's parameters.

The default engine is the `fa2` package (Cython, Barnes-Hut repulsion in O(n log n)); the
`networkx` engine (`nx.forceatlas2_layout`, all-pairs repulsion in O(n²) memory and time) is
kept as the reference implementation and as a fallback when `fa2` is not installed (`fa2` is
GPL-3.0 licensed, so it is imported lazily and the BSD-licensed networkx engine always works).
Both get the same parameters: scaling ratio, gravity (optionally strong), LinLog mode, edge-weight
influence, dissuade hubs, prevent overlap (Gephi's "adjustSizes") and jitter tolerance.

Like Gephi users do, prevent-overlap runs as a short final phase after the main run: with it
on from the start, anti-collision slows the convergence of the global shape.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp

from twitchgraph.graphio import GraphData, read_graph_dir, undirected_edges, write_streamers

__all__ = ["ForceAtlas2Settings", "forceatlas2_layout", "layout_for_dir", "node_sizes"]

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
    prevent_overlap : anti-collision by node size ("Prevent Overlap", `adjustSizes`).
    jitter_tolerance : tolerated swinging ("Tolerance (speed)").
    barnes_hut : Barnes-Hut approximation of repulsion ("Approximate Repulsion").
    barnes_hut_theta : accuracy of that approximation (Gephi's default 1.2).
    overlap_iterations : iterations of the final prevent-overlap phase (0: a tenth of the run,
        at least 50).
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
        if self.scaling <= 0:
            raise ValueError(f"scaling must be > 0, got {self.scaling}")
        if self.gravity < 0:
            raise ValueError(f"gravity must be >= 0, got {self.gravity}")
        if self.edge_weight_influence < 0:
            raise ValueError(
                f"edge_weight_influence must be >= 0, got {self.edge_weight_influence}"
            )
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


def _adjacency(data: GraphData, influence_on_weights: float | None) -> sp.csr_matrix:
    index = {login: i for i, login in enumerate(data.logins)}
    und = undirected_edges(data.edges)
    n = len(index)
    if und.empty:
        return sp.csr_matrix((n, n))
    rows = und["u"].map(index).to_numpy()
    cols = und["v"].map(index).to_numpy()
    w = und["weight"].to_numpy(float)
    if influence_on_weights is not None:
        w = np.power(np.maximum(w, 0.0), influence_on_weights)
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
    overlap_iters = settings.overlap_iterations or max(50, iterations // 10)
    if engine == "fa2":
        try:
            positions = _run_fa2(data, iterations, seed, settings, sizes, overlap_iters, progress)
        except ImportError:
            logger.warning("the fa2 package is not installed; using networkx's ForceAtlas2")
            engine = "networkx"
    if engine == "networkx":
        positions = _run_networkx(data, iterations, seed, settings, sizes, overlap_iters,
                                  progress)
    logger.info("ForceAtlas2 (%s): %d nodes, %d iterations, %s", engine, n, iterations,
                asdict(settings))
    return pd.DataFrame({"Id": data.logins, "x": positions[:, 0], "y": positions[:, 1],
                         "size": np.round(sizes, 3)})


def _run_fa2(data, iterations, seed, settings, sizes, overlap_iters, progress) -> np.ndarray:
    from fa2 import ForceAtlas2  # GPL-3.0: imported lazily, see the module docstring

    adjacency = _adjacency(data, influence_on_weights=None)
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

    def run(pos, iters, adjust):
        engine = ForceAtlas2(
            outboundAttractionDistribution=settings.dissuade_hubs,
            linLogMode=settings.linlog,
            adjustSizes=adjust,
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
        out = engine.forceatlas2(adjacency, pos=pos, iterations=iters, callbacks=[tick],
                                 sizes=np.asarray(sizes, float))
        return np.asarray(out, dtype=float)

    positions = run(start, iterations, False)
    if settings.prevent_overlap:
        positions = run(positions, overlap_iters, True)
    return positions


def _run_networkx(data, iterations, seed, settings, sizes, overlap_iters, progress) -> np.ndarray:
    graph = nx.Graph()
    graph.add_nodes_from(data.logins)
    und = undirected_edges(data.edges)
    weights = np.power(np.maximum(und["weight"].to_numpy(float), 0.0),
                       settings.edge_weight_influence)
    graph.add_weighted_edges_from(zip(und["u"], und["v"], weights, strict=True))
    size_map = dict(zip(data.logins, sizes, strict=True))
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
    if settings.prevent_overlap:
        pos = nx.forceatlas2_layout(graph, pos=pos, max_iter=overlap_iters, node_size=size_map,
                                    **common)
        if progress is not None:
            progress(iterations + overlap_iters)
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
