"""Benchmark communities, layout and exports on planted-partition graphs shaped like the real one.

The original map: 2,977 streamers and 47,222 overlap edges (~16 edges per node at the 10 %
threshold, median weight ~16). This script builds graphs of 3,000 and 30,000 streamers with the
same density (16 edges per node, 85 % of them inside one of n/100 planted communities, overlap
weights 10-100 skewed low) and the GRAPH_DIR columns, then times, side by side:

  communities   ours: Leiden (leidenalg, RBConfiguration)  vs  networkx louvain_communities
  layout        before: ForceAtlas2 as it was (fa2's own loop from random positions, 1,000
                iterations, then prevent-overlap)
                after: ours now (from the communities' places, stopped once converged, then
                prevent-overlap), with `twitchgraph layout`'s defaults
                reference: networkx forceatlas2_layout, 100 iterations (O(n²) memory: skipped
                when its pairwise arrays would not fit in the memory available)
  exports       db (Kùzu), neo4j, gexf, png, html: ours only (no reference)

and then the graph stage (communities + layout) before and after, side by side.

Each step runs in a fresh process that first reads the GRAPH_DIR from disk: wall time of the
step, CPU time of the process (less sensitive than wall time to other work on the machine),
and peak memory as the process's peak resident set (VmHWM) minus its resident set right before
the step (Linux /proc). Quality is printed too, so a fast wrong answer does not look good:
for communities, modularity Q and NMI with the planted partition; for layouts,

  edge ratio   mean length of edges inside a planted community over that of edges between
               communities (lower: communities drawn tighter and apart);
  NP@10        neighbourhood preservation: for each streamer with d neighbours, the share of
               its min(d, 10) nearest streamers on the map that are neighbours in the graph.

`--sweep` also runs the layout with other starts, tolerances and Barnes-Hut thetas (in one
process) and prints iterations, CPU time and quality for each: how the defaults were chosen.

Run: .venv/bin/python benchmarks/graph.py [--sizes 3000 30000] [--no-reference] [--sweep]
     [--before-iterations 1000] [--no-exports]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial import cKDTree
from sklearn.metrics import normalized_mutual_info_score

from twitchgraph.export import export_graph
from twitchgraph.graph.communities import communities_for_dir, find_communities
from twitchgraph.graph.layout import (
    ForceAtlas2Settings,
    forceatlas2_layout,
    layout_for_dir,
    node_sizes,
    remove_overlaps,
)
from twitchgraph.graphio import (
    GraphData,
    read_graph_dir,
    to_networkx,
    undirected_edges,
    write_graph_dir,
)

EDGES_PER_NODE = 16
INSIDE = 0.85


def _vm(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


def planted_graph(n: int, seed: int = 0) -> GraphData:
    """A GRAPH_DIR-shaped planted-partition graph with n streamers (truth in `planted`)."""
    rng = np.random.default_rng(seed)
    k = max(2, n // 100)
    community = rng.integers(0, k, n)
    logins = np.array([f"s{i:06d}" for i in range(n)], dtype=object)
    members = [np.flatnonzero(community == c) for c in range(k)]
    m = EDGES_PER_NODE * n
    u = rng.integers(0, n, int(m * 1.15))
    inside = rng.random(len(u)) < INSIDE
    v = rng.integers(0, n, len(u))
    for c in range(k):
        pick = inside & (community[u] == c)
        v[pick] = rng.choice(members[c], pick.sum())
    keep = u != v
    a, b = np.minimum(u, v)[keep], np.maximum(u, v)[keep]
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    pairs = pairs[rng.permutation(len(pairs))[:m]]
    viewers = np.round(rng.lognormal(3.5, 1.2, n) + 10, 2)
    # Direction as the build: from the streamer with more viewers.
    swap = viewers[pairs[:, 0]] < viewers[pairs[:, 1]]
    src = np.where(swap, pairs[:, 1], pairs[:, 0])
    dst = np.where(swap, pairs[:, 0], pairs[:, 1])
    overlap = np.round(10 + 90 * rng.beta(1.2, 4.0, len(pairs)), 2)
    edges = pd.DataFrame({
        "Source": logins[src], "Target": logins[dst], "Weight": overlap,
        "shared": rng.integers(5, 2000, len(pairs)), "overlap": overlap,
        "jaccard": np.round(overlap / 300, 4), "Type": "Directed",
    })
    games = [f"Game {g}" for g in range(max(10, k // 2))]
    main_game = np.array(games, dtype=object)[community % len(games)]
    streamers = pd.DataFrame({
        "Id": logins, "Label": [f"Streamer {i}" for i in range(n)], "login": logins,
        "language": np.array(["it", "en", "es", "de"], dtype=object)[community % 4],
        "minutes_live": rng.integers(60, 20000, n), "viewer_mean": viewers,
        "viewer_peak": np.round(viewers * 2.5).astype(int),
        "chatter_mean": np.round(viewers * 0.4, 2), "chatters_total": rng.integers(50, 50000, n),
        "main_game": main_game, "broadcaster_type": "affiliate",
        "social_links": [f"https://twitter.com/s{i}" for i in range(n)],
        "planted": community,
    })
    played = pd.DataFrame({"Source": logins, "Target": main_game,
                           "minutes_played": rng.integers(30, 5000, n)})
    games_frame = pd.DataFrame({"Id": games, "Label": games,
                                "genres": ["Shooter;Adventure"] * len(games)})
    return GraphData(streamers=streamers, edges=edges, played=played, games=games_frame)


def _nmi(data: GraphData, found: dict[str, int]) -> float:
    planted = data.streamers["planted"].tolist()
    return normalized_mutual_info_score(planted, [found[x] for x in data.logins])


def layout_quality(data: GraphData, xy: np.ndarray) -> tuple[float, float]:
    """(edge ratio, NP@10) of positions `xy` (rows in `data.logins` order); see the docstring."""
    planted = data.streamers["planted"].to_numpy()
    index = {login: i for i, login in enumerate(data.logins)}
    und = undirected_edges(data.edges)
    u, v = und["u"].map(index).to_numpy(), und["v"].map(index).to_numpy()
    length = np.linalg.norm(xy[u] - xy[v], axis=1)
    inside = planted[u] == planted[v]
    ratio = length[inside].mean() / length[~inside].mean()
    n = len(xy)
    adjacency = set(zip(u.tolist(), v.tolist(), strict=True))
    adjacency |= {(b, a) for a, b in adjacency}
    degree = np.bincount(np.r_[u, v], minlength=n)
    _, nearest = cKDTree(xy).query(xy, 11)
    shares = [sum((i, j) in adjacency for j in nearest[i, 1:min(degree[i], 10) + 1])
              / min(degree[i], 10) for i in range(n) if degree[i]]
    return float(ratio), float(np.mean(shares))


def _layout_before(data: GraphData, iterations: int) -> np.ndarray:
    """ForceAtlas2 as `twitchgraph layout` ran it before community starts and convergence:
    fa2's own loop from random positions for a fixed count, then prevent-overlap."""
    from fa2 import ForceAtlas2

    from twitchgraph.graph.layout import make_room

    index = {login: i for i, login in enumerate(data.logins)}
    und = undirected_edges(data.edges)
    n = len(index)
    rows, cols = und["u"].map(index).to_numpy(), und["v"].map(index).to_numpy()
    w = und["weight"].to_numpy(float)
    adjacency = sp.coo_matrix((np.r_[w, w], (np.r_[rows, cols], np.r_[cols, rows])),
                              shape=(n, n)).tocsr()
    start = np.random.default_rng(0).uniform(-1.0, 1.0, size=(n, 2)) * max(10.0,
                                                                              np.sqrt(n) * 10)
    fa2 = ForceAtlas2(barnesHutOptimize=True, barnesHutTheta=1.2, scalingRatio=2.0,
                      gravity=1.0, edgeWeightInfluence=1.0, seed=0, verbose=False)
    xy = np.asarray(fa2.forceatlas2(adjacency, pos=start, iterations=iterations), dtype=float)
    sizes = node_sizes(data.streamers["viewer_mean"])
    return remove_overlaps(make_room(xy, sizes), sizes, max_iter=100)


def _step(graph_dir: str, step: str, before_iterations: int = 1000) -> dict[str, Any]:
    """Run one step in this (fresh) process: seconds, cpu, peak MiB above start, note..."""
    data = read_graph_dir(graph_dir)
    note = ""
    extra: dict[str, Any] = {}
    start_rss = _vm("VmRSS")
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    if step == "leiden":
        del data
        result, _ = communities_for_dir(graph_dir, resolution=1.0, seed=0)
        seconds = time.perf_counter() - t0
        data = read_graph_dir(graph_dir)
        note = (f"Q={result.modularity:.3f} k={len(result.table)} "
                f"NMI={_nmi(data, result.membership):.3f}")
    elif step == "louvain":
        graph = to_networkx(data)
        groups = nx.community.louvain_communities(graph, weight="weight", seed=0)
        seconds = time.perf_counter() - t0
        membership = {x: i for i, group in enumerate(groups) for x in group}
        q = nx.community.modularity(graph, groups, weight="weight")
        note = f"Q={q:.3f} k={len(groups)} NMI={_nmi(data, membership):.3f} (incl. nx graph)"
    elif step == "layout-before":
        xy = _layout_before(data, before_iterations)
        seconds = time.perf_counter() - t0
        extra = {"iterations": before_iterations}
    elif step == "layout-after":
        positions, _ = layout_for_dir(graph_dir, seed=0)
        seconds = time.perf_counter() - t0
        xy = positions[["x", "y"]].to_numpy(float)
        extra = {"iterations": positions.attrs["iterations"]}
    elif step == "nx-fa2":
        graph = to_networkx(data)
        nx.forceatlas2_layout(graph, max_iter=100, weight="weight", seed=0)
        seconds = time.perf_counter() - t0
        note = "incl. nx graph"
    else:
        del data
        done = export_graph(graph_dir, [step])
        seconds = time.perf_counter() - t0
        path = done[0].path
        size = (sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir()
                else path.stat().st_size)
        note = f"{size / 2**20:.1f} MiB on disk"
    cpu = time.process_time() - cpu0
    if step.startswith("layout-"):
        extra["edge_ratio"], extra["np10"] = layout_quality(data, xy)
        note = (f"{extra['iterations']} it, edge ratio {extra['edge_ratio']:.3f}, "
                f"NP@10 {extra['np10']:.3f}")
    return {"seconds": seconds, "cpu": cpu, "mib": max(0.0, _vm("VmHWM") - start_rss),
            "note": note, **extra}


def _in_fresh_process(graph_dir: Path, step: str, before_iterations: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_step, str(graph_dir), step, before_iterations).result()


STEPS = [
    ("communities", "ours: Leiden (leidenalg)", "leiden", False),
    ("communities", "networkx louvain", "louvain", True),
    ("layout", "before: random start, fixed", "layout-before", False),
    ("layout", "after: communities, converged", "layout-after", False),
    ("layout/100it", "networkx forceatlas2_layout", "nx-fa2", True),
    ("export db", "ours: Kùzu", "db", False),
    ("export neo4j", "ours", "neo4j", False),
    ("export gexf", "ours (streamed)", "gexf", False),
    ("export png", "ours (matplotlib)", "png", False),
    ("export html", "ours", "html", False),
]


def run(n: int, reference: bool, workdir: Path, before_iterations: int,
        exports: bool = True) -> list[dict[str, Any]]:
    t0 = time.perf_counter()
    data = planted_graph(n)
    graph_dir = write_graph_dir(GraphData(streamers=data.streamers, edges=data.edges,
                                          played=data.played, games=data.games),
                                workdir / f"graph_{n}")
    print(f"n={n}: {len(data.streamers)} streamers, {len(data.edges)} edges "
          f"({len(data.edges) / n:.1f} per node), {data.streamers['planted'].nunique()} "
          f"planted communities; generated in {time.perf_counter() - t0:.1f} s", flush=True)
    del data
    rows = []
    for step, impl, key, is_reference in STEPS:
        if (is_reference and not reference) or (step.startswith("export") and not exports):
            continue
        # networkx's FA2 builds n x n x 2 float64 arrays (and temporaries of that size).
        need_gib = 4 * n * n * 2 * 8 / 2**30
        avail_gib = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
        if key == "nx-fa2" and need_gib > 0.6 * avail_gib:
            result = {"seconds": None, "cpu": None, "mib": None,
                      "note": f"skipped: needs ~{need_gib:.0f} GiB, {avail_gib:.0f} GiB available"}
        else:
            result = _in_fresh_process(graph_dir, key, before_iterations)
        seconds, cpu, mib = result["seconds"], result["cpu"], result["mib"]
        rows.append({"n": n, "step": step, "impl": impl, "key": key,
                     "seconds": None if seconds is None else round(seconds, 2),
                     "cpu_s": None if cpu is None else round(cpu, 2),
                     "peak_MiB": None if mib is None else round(mib, 1),
                     **{k: v for k, v in result.items() if k not in ("seconds", "cpu", "mib")}})
        print(f"  {step:<12} {impl:<30} "
              f"{'-' if seconds is None else f'{seconds:8.2f} s'} "
              f"{'-' if cpu is None else f'{cpu:8.2f} s cpu'}  "
              f"{'-' if mib is None else f'{mib:8.1f} MiB'}  {result['note']}", flush=True)
    return rows


def stage_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The graph stage (communities + layout) before and after, side by side per size."""
    out = []
    for n in sorted({r["n"] for r in rows}):
        by = {r["key"]: r for r in rows if r["n"] == n}
        if not {"leiden", "layout-before", "layout-after"} <= set(by):
            continue
        for label, key in (("before", "layout-before"), ("after", "layout-after")):
            layout = by[key]
            out.append({
                "n": n, "graph stage": label,
                "seconds": round(by["leiden"]["seconds"] + layout["seconds"], 1),
                "cpu_s": round(by["leiden"]["cpu_s"] + layout["cpu_s"], 1),
                "layout_s": layout["seconds"], "iterations": layout["iterations"],
                "edge_ratio": round(layout["edge_ratio"], 3), "NP@10": round(layout["np10"], 3),
            })
    return pd.DataFrame(out)


SWEEP = [("random", 0.0, 1.2), ("random", 0.01, 1.2), ("communities", 0.02, 1.2),
         ("communities", 0.01, 1.2), ("communities", 0.005, 1.2), ("communities", 0.01, 1.5),
         ("communities", 0.01, 2.0)]


def sweep(n: int) -> list[dict[str, Any]]:
    """The layout with other starts, tolerances and thetas (prevent-overlap off), one process."""
    data = planted_graph(n)
    data.streamers["community"] = data.streamers["Id"].map(find_communities(data).membership)
    rows = []
    for start, tolerance, theta in SWEEP:
        settings = ForceAtlas2Settings(start=start, tolerance=tolerance,
                                       barnes_hut_theta=theta, prevent_overlap=False)
        cpu0 = time.process_time()
        positions = forceatlas2_layout(data, settings=settings)
        cpu = time.process_time() - cpu0
        ratio, np10 = layout_quality(data, positions[["x", "y"]].to_numpy(float))
        rows.append({"n": n, "start": start, "tolerance": tolerance, "theta": theta,
                     "iterations": positions.attrs["iterations"], "cpu_s": round(cpu, 1),
                     "edge_ratio": round(ratio, 3), "NP@10": round(np10, 3)})
        print(f"  sweep {start:<11} tol {tolerance:<5} theta {theta:<4} "
              f"{rows[-1]['iterations']:5d} it {cpu:7.1f} s cpu  edge ratio {ratio:.3f}  "
              f"NP@10 {np10:.3f}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 30000])
    parser.add_argument("--no-reference", action="store_true",
                        help="skip networkx's Louvain and ForceAtlas2")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--before-iterations", type=int, default=1000,
                        help="iterations of the 'before' layout (it had no other stop)")
    parser.add_argument("--no-exports", action="store_true", help="skip the export steps")
    parser.add_argument("--sweep", action="store_true",
                        help="also run the layout with other starts, tolerances and thetas")
    args = parser.parse_args(argv)
    rows, swept = [], []
    with tempfile.TemporaryDirectory(prefix="tg-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        for n in args.sizes:
            rows += run(n, not args.no_reference, workdir, args.before_iterations,
                        not args.no_exports)
            if args.sweep:
                swept += sweep(n)
    print()
    print(pd.DataFrame(rows).drop(columns=["key"]).to_string(index=False))
    print()
    print(stage_table(rows).to_string(index=False))
    if swept:
        print()
        print(pd.DataFrame(swept).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
