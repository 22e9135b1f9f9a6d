"""ForceAtlas2 layout of the streamer graph, with Gephi's parameters.

The default engine is the `fa2` package (Cython, Barnes-Hut repulsion in O(n log n)); the
`networkx` engine (`nx.forceatlas2_layout`, all-pairs repulsion in O(n²) memory and time) is
kept as the reference implementation and as a fallback when `fa2` is not installed (`fa2` is
GPL-3.0 licensed, so it is imported lazily and the BSD-licensed networkx engine always works).
Both get the same parameters: scaling ratio, gravity (optionally strong), LinLog mode, edge-weight
influence, dissuade hubs, prevent overlap and jitter tolerance.

Like Gephi users do, prevent-overlap runs as a final phase after the main run (with it on from
the start, anti-collision slows the convergence of the global shape); see `remove_overlaps`.
Separate components of linked streamers are packed side by side (`pack_components`), as
Gephi's and graphviz's `pack` do, whatever the start: nothing but gravity holds them together
in ForceAtlas2, and from the communities' places they drifted hundreds of times their own
width apart. Streamers without an edge then ring the packed map (below); a warm start keeps
the earlier, already packed, places.

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
  inside vs between communities, neighbourhood preservation) as 1,000 iterations;
- streamers without an edge are not simulated: pushed by repulsion alone they drift for a
  long time, cost each iteration as much as the others, and on a sparse graph (most
  streamers without an edge at the default minimum weight) they are most of the nodes and
  dominate the measure of convergence. They go on a ring around the map instead, biggest
  first, or keep their earlier place;
- a layout can start from an earlier one's positions (`initial`, as `serve` does on each
  rebuild): a streamer already placed starts where it was, a new one near its heaviest
  placed neighbours (at the edge when it has none), and a short run refines the map without
  scrambling it.

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
    "MAX_ITERATIONS",
    "ForceAtlas2Settings",
    "forceatlas2_layout",
    "layout_for_dir",
    "make_room",
    "node_sizes",
    "pack_components",
    "remove_overlaps",
]

logger = logging.getLogger(__name__)

ENGINES = ("fa2", "networkx")
STARTS = ("communities", "random")
# The convergence check stops a run long before this; beyond it a typo runs for days.
MAX_ITERATIONS = 100_000
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
    initial: pd.DataFrame | None = None,
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
    initial : earlier positions (columns Id, x, y; best an earlier run's
        ``attrs["balanced"]``) to start from instead of the communities' places or random
        ones; streamers missing from it start near their heaviest neighbours in it, or at
        its edge when they have none there. The result is turned, scaled and moved to fit
        `initial` best, so the map stays in place.

    Returns
    -------
    DataFrame with columns Id, x, y, size (one row per streamer, in `data.streamers` order);
    ``.attrs["iterations"]`` is the number of iterations run, ``.attrs["balanced"]`` the
    positions where ForceAtlas2 left them (n x 2), before they were spread out for display:
    the best `initial` of a later layout of the same streamers (the spreading moves
    neighbours apart unevenly, and a run started from it would first undo that).

    Examples
    --------
    >>> from twitchgraph.graphio import GraphData
    >>> s = pd.DataFrame({"Id": ["a", "b", "c"], "viewer_mean": [10.0, 20.0, 40.0]})
    >>> e = pd.DataFrame({"Source": ["a", "b"], "Target": ["b", "c"], "Weight": [10, 20]})
    >>> pos = forceatlas2_layout(GraphData(streamers=s, edges=e), iterations=20, seed=1)
    >>> list(pos.columns)
    ['Id', 'x', 'y', 'size']
    """
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise BadValue(f"iterations must be between 1 and {MAX_ITERATIONS:,}, got {iterations}")
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
    placed = None if initial is None else _placed(data.logins, initial)
    warm = None if placed is None else _warm_start(placed, u, v, w, rng)
    # Streamers without an edge feel only repulsion and gravity: simulating them costs
    # an iteration as much as the others and they settle last. They are placed apart.
    linked = np.zeros(n, dtype=bool)
    linked[u] = linked[v] = True
    if not linked.any():
        linked[:] = True
    keep = np.flatnonzero(linked)
    index = np.full(n, -1)
    index[keep] = np.arange(len(keep))
    lu, lv, lmass = index[u], index[v], mass[keep]
    if community is not None and pd.Series(community[keep]).nunique() > len(keep) / 2:
        community = None  # mostly loners: nothing to seed from
    if warm is not None:
        community = None
        start = warm[keep] - warm[keep].mean(axis=0)
        start *= _balance_scale(start, lu, lv, w, lmass, settings)
    elif community is None:
        # Gephi starts from random positions in a square about as wide as the final map.
        m = len(keep)
        start = rng.uniform(-1.0, 1.0, size=(m, 2)) * max(10.0, np.sqrt(m) * 10.0)
    else:
        start = _seeded_start(community[keep], lu, lv, w, lmass, rng, settings, engine)
    found, done, engine = _force_layout(lu, lv, w, start, lmass, settings, iterations,
                                        engine, progress, seed=seed)
    if warm is not None:
        # No packing: the earlier map was packed, and its places are what a warm start keeps.
        found = _align(found, placed[keep])
        positions = warm.copy()  # loners stay where they were, or start at the edge
    else:
        # Separate components side by side (loners then ring the packed map).
        found = pack_components(found, sizes[keep], lu, lv)
        positions = _ring(found, sizes, linked, data.logins)
    positions[keep] = found
    balanced = positions.copy()
    if progress is not None and done < iterations:
        progress(iterations)
    if settings.prevent_overlap:
        positions = remove_overlaps(make_room(positions, sizes), sizes,
                                    max_iter=overlap_iters)
        # Discs grown apart can make packed components collide: pack them again (whole
        # components move, none is scrambled), the loners ringing them.
        if _components_collide(positions[keep], sizes[keep], lu, lv):
            packed = pack_components(positions[keep], sizes[keep], lu, lv)
            positions = _ring(packed, sizes, linked, data.logins)
            positions[keep] = packed
            positions = remove_overlaps(positions, sizes, max_iter=overlap_iters)
    kind = "warm" if placed is not None else "random" if community is None else "community"
    logger.info("ForceAtlas2 (%s, %s start): %d nodes, %d of at most %d iterations, %s",
                engine, kind, n, done, iterations, asdict(settings))
    frame = pd.DataFrame({"Id": data.logins, "x": positions[:, 0], "y": positions[:, 1],
                          "size": np.round(sizes, 3)})
    frame.attrs["iterations"] = done
    frame.attrs["balanced"] = balanced
    return frame


def _communities(data: GraphData) -> np.ndarray | None:
    column = data.streamers.get("community")
    values = pd.to_numeric(column, errors="coerce") if column is not None else None
    if values is None or values.isna().any():
        logger.info("no communities in streamers.csv: ForceAtlas2 starts from random positions")
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


def _ring(found: np.ndarray, sizes: np.ndarray, linked: np.ndarray,
          logins: list[str]) -> np.ndarray:
    """Positions with the streamers without an edge on a ring around the others' layout
    (`found`), biggest first, spread by the golden angle."""
    positions = np.zeros((len(linked), 2))
    loners = np.flatnonzero(~linked)
    if len(loners) == 0:
        return positions
    order = sorted(loners.tolist(), key=lambda i: (-sizes[i], logins[i]))
    centre = found.mean(axis=0)
    reach = max(float(np.linalg.norm(found - centre, axis=1).max()), 10.0)
    k = np.arange(len(order))
    radius = reach * (1.1 + 0.4 * np.sqrt((k + 0.5) / len(order)))
    angle = k * np.pi * (3 - np.sqrt(5))
    positions[order] = centre + radius[:, None] * np.c_[np.cos(angle), np.sin(angle)]
    return positions


def _placed(logins: list[str], initial: pd.DataFrame) -> np.ndarray | None:
    """Earlier positions per streamer (NaN where it had none), or None when none had one."""
    known = initial.dropna(subset=["x", "y"]).drop_duplicates("Id").set_index("Id")
    xy = known.reindex(logins)[["x", "y"]].to_numpy(float)
    return None if np.isnan(xy).all() else xy


def _warm_start(placed: np.ndarray, u, v, w, rng) -> np.ndarray:
    """Start positions from earlier ones: new streamers near their heaviest placed neighbours
    (the weighted mean of up to three), or on a ring just outside the map when they have
    none; a small jitter keeps two newcomers with the same neighbours apart."""
    start = placed.copy()
    known = ~np.isnan(placed[:, 0])
    centre = placed[known].mean(axis=0)
    reach = float(np.linalg.norm(placed[known] - centre, axis=1).max()) if known.any() else 0.0
    reach = max(reach, 10.0)
    new = np.flatnonzero(~known)
    if len(new) == 0:
        return start
    neighbours: dict[int, list[tuple[float, int]]] = {}
    for a, b, weight in zip(u.tolist(), v.tolist(), w.tolist(), strict=True):
        if known[b] and not known[a]:
            neighbours.setdefault(a, []).append((weight, b))
        if known[a] and not known[b]:
            neighbours.setdefault(b, []).append((weight, a))
    jitter = 0.02 * reach
    for i in new.tolist():
        heaviest = sorted(neighbours.get(i, []), key=lambda t: (-t[0], t[1]))[:3]
        if heaviest:
            weights = np.array([t[0] for t in heaviest]) + 1e-9
            spot = np.average(placed[[t[1] for t in heaviest]], axis=0, weights=weights)
            start[i] = spot + rng.normal(0.0, jitter, 2)
        else:
            angle = rng.uniform(0.0, 2 * np.pi)
            start[i] = centre + 1.05 * reach * np.array([np.cos(angle), np.sin(angle)])
    return start


def _balance_scale(positions: np.ndarray, u, v, w, mass, settings) -> float:
    """The factor that brings `positions` (a finished map, spread out for display) to the
    size at which ForceAtlas2's forces balance for this shape, so a warm start is refined
    instead of first collapsing or exploding.

    At a balanced state the forces' virial vanishes: Σ x·F = 0. Around the centroid, for a
    layout scaled by c: the attraction gives -c² Σ w^influence d², the repulsion
    +k_r Σ_pairs m_i m_j (independent of c), the gravity -c g Σ m |x| (or -c² k_r g Σ m |x|²
    when strong). The positive root of that quadratic is the factor (1 for LinLog, whose
    attraction is not a power of the distance).
    """
    if settings.linlog or len(positions) < 2:
        return 1.0
    centred = positions - positions.mean(axis=0)
    distance = np.linalg.norm(centred, axis=1)
    weight = np.power(w, settings.edge_weight_influence)
    quadratic = float(np.sum(weight * np.sum(np.square(centred[u] - centred[v]), axis=1)))
    total, squares = float(mass.sum()), float(np.square(mass).sum())
    constant = settings.scaling * (total * total - squares) / 2
    if settings.strong_gravity:
        quadratic += settings.scaling * settings.gravity * float(np.sum(mass * distance ** 2))
        linear = 0.0
    else:
        linear = settings.gravity * float(np.sum(mass * distance))
    if quadratic <= 0:
        return constant / linear if linear > 0 else 1.0
    return (-linear + math.sqrt(linear * linear + 4 * quadratic * constant)) / (2 * quadratic)


def _align(positions: np.ndarray, placed: np.ndarray) -> np.ndarray:
    """`positions` turned, scaled and moved to fit the earlier ones best (least squares over
    the streamers that had a place; Umeyama 1991, without reflection).

    ForceAtlas2 settles at its own scale, while the earlier map was spread out afterwards
    (`make_room`, `remove_overlaps`) and may drift or turn as a whole while refining: none
    of that is a streamer changing place, so it is taken out.
    """
    known = ~np.isnan(placed[:, 0])
    if known.sum() < 3:
        return positions
    a, b = positions[known], placed[known]
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    a0, b0 = a - ca, b - cb
    spread = float(np.sum(np.square(a0)))
    if spread <= 0:
        return positions
    u, s, vt = np.linalg.svd(a0.T @ b0)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    s[-1] *= d
    u[:, -1] *= d
    rotation = u @ vt
    scale = float(s.sum()) / spread
    return (positions - ca) @ rotation * scale + cb


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
    initial: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, Path]:
    """Lay out a GRAPH_DIR and write `x`, `y`, `size` into its streamers.csv (`initial`: see
    `forceatlas2_layout`)."""
    data = read_graph_dir(path)
    positions = forceatlas2_layout(data, iterations=iterations, seed=seed, settings=settings,
                                   engine=engine, progress=progress, initial=initial)
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


def _components_collide(xy: np.ndarray, radius: np.ndarray, u: np.ndarray,
                        v: np.ndarray) -> bool:
    """Whether the boxes (discs included) of two connected components overlap."""
    from scipy.sparse.csgraph import connected_components

    n = len(xy)
    if n < 2:
        return False
    k, label = connected_components(sp.coo_matrix((np.ones(len(u)), (u, v)), shape=(n, n)),
                                    directed=False)
    if k < 2:
        return False
    lo = np.full((k, 2), np.inf)
    hi = np.full((k, 2), -np.inf)
    np.minimum.at(lo, label, xy - radius[:, None])
    np.maximum.at(hi, label, xy + radius[:, None])
    apart = ((hi[:, None, :] <= lo[None, :, :]) | (hi[None, :, :] <= lo[:, None, :])).any(axis=2)
    return bool((~apart)[np.triu_indices(k, 1)].any())


def pack_components(
    positions: np.ndarray,
    sizes: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    *,
    gap: float | None = None,
) -> np.ndarray:
    """Place the connected components side by side, each keeping its own shape.

    Shelf packing, as graphviz's ``pack`` in array mode: components' boxes (discs included)
    go largest first into rows about as wide as the square root of 4/3 of their total area, with
    `gap` between them (default: the largest disc's diameter); the packing is centred on 0.
    Components' relative places from ForceAtlas2 carry no meaning (no edge links them), so
    only their distances change. Deterministic.

    Examples
    --------
    >>> xy = np.array([[0.0, 0.0], [1.0, 0.0], [1e5, 0.0]])
    >>> packed = pack_components(xy, np.array([0.5, 0.5, 0.5]), np.array([0]), np.array([1]))
    >>> float(np.ptp(packed[:, 0])) < 5
    True
    """
    from scipy.sparse.csgraph import connected_components

    xy = np.asarray(positions, dtype=float)
    n = len(xy)
    if n < 2:
        return xy.copy()
    radius = np.asarray(sizes, dtype=float)
    adjacency = sp.coo_matrix((np.ones(len(u)), (u, v)), shape=(n, n))
    k, label = connected_components(adjacency, directed=False)
    if k < 2:
        return xy.copy()
    gap = 2 * float(radius.max()) if gap is None else gap
    lo = np.full((k, 2), np.inf)
    hi = np.full((k, 2), -np.inf)
    np.minimum.at(lo, label, xy - radius[:, None])
    np.maximum.at(hi, label, xy + radius[:, None])
    extent = hi - lo + gap
    count = np.bincount(label, minlength=k)
    # Tallest first (ties: more streamers, then the lowest index), so rows stay even.
    order = sorted(range(k), key=lambda c: (-extent[c, 1], -count[c], c))
    # Rows a little wider than a square: screens are landscape.
    width = max(float(extent[:, 0].max()),
                math.sqrt(4 / 3 * float(np.prod(extent, axis=1).sum())))
    corner = np.zeros((k, 2))  # each box's top-left corner in the packing
    x = y = row_height = 0.0
    for c in order:
        if x > 0 and x + extent[c, 0] > width:
            x, y, row_height = 0.0, y - row_height, 0.0
        corner[c] = (x, y)
        x += extent[c, 0]
        row_height = max(row_height, float(extent[c, 1]))
    # A box's top-left corner is (lo_x, hi_y) in its own coordinates.
    shift = corner - np.c_[lo[:, 0], hi[:, 1]]
    packed = xy + shift[label]
    return packed - (packed.min(axis=0) + packed.max(axis=0)) / 2
