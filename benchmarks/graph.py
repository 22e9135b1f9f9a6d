"""Benchmark communities, layout and exports on planted-partition graphs shaped like the real one.

The original map: 2,977 streamers and 47,222 overlap edges (~16 edges per node at the 10 %
threshold, median weight ~16). This script builds graphs of 3,000 and 30,000 streamers with the
same density (16 edges per node, 85 % of them inside one of n/100 planted communities, overlap
weights 10-100 skewed low) and the GRAPH_DIR columns, then times, side by side:

  communities   ours: Leiden (leidenalg, RBConfiguration)  vs  networkx louvain_communities
  layout        ours: ForceAtlas2 (fa2, Barnes-Hut), 100 iterations
                vs  networkx forceatlas2_layout, 100 iterations (O(n²) memory: skipped when
                its pairwise arrays would not fit in the memory available)
  exports       db (Kùzu), neo4j, gexf, png, html: ours only (no reference)

Each step runs in a fresh process that first reads the GRAPH_DIR from disk: wall time of the
step, and peak memory as the process's peak resident set (VmHWM) minus its resident set
right before the step (Linux /proc). The quality of each community result (modularity Q, NMI
with the planted partition) is printed too, so a fast wrong answer does not look good.

Run: .venv/bin/python benchmarks/graph.py [--sizes 3000 30000] [--no-reference]
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
from sklearn.metrics import normalized_mutual_info_score

from twitchgraph.build import BuildResult, write_graph_dir
from twitchgraph.communities import communities_for_dir
from twitchgraph.export import export_graph
from twitchgraph.graphio import GraphData, read_graph_dir, to_networkx
from twitchgraph.layout import ForceAtlas2Settings, layout_for_dir

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


def _step(graph_dir: str, step: str) -> tuple[float, float, str]:
    """Run one step in this (fresh) process; returns (seconds, peak MiB above start, note)."""
    data = read_graph_dir(graph_dir)
    note = ""
    start_rss = _vm("VmRSS")
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
    elif step in ("fa2", "fa2+overlap"):
        del data
        settings = ForceAtlas2Settings(prevent_overlap=step == "fa2+overlap")
        layout_for_dir(graph_dir, iterations=100, seed=0, settings=settings)
        seconds = time.perf_counter() - t0
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
    return seconds, max(0.0, _vm("VmHWM") - start_rss), note


def _in_fresh_process(graph_dir: Path, step: str) -> tuple[float, float, str]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_step, str(graph_dir), step).result()


STEPS = [
    ("communities", "ours: Leiden (leidenalg)", "leiden", False),
    ("communities", "networkx louvain", "louvain", True),
    ("layout/100it", "ours: ForceAtlas2 (fa2, BH)", "fa2", False),
    ("layout/100it", "networkx forceatlas2_layout", "nx-fa2", True),
    ("layout/100it", "ours + prevent overlap", "fa2+overlap", False),
    ("export db", "ours: Kùzu", "db", False),
    ("export neo4j", "ours", "neo4j", False),
    ("export gexf", "ours (streamed)", "gexf", False),
    ("export png", "ours (matplotlib)", "png", False),
    ("export html", "ours", "html", False),
]


def run(n: int, reference: bool, workdir: Path) -> list[dict[str, Any]]:
    t0 = time.perf_counter()
    data = planted_graph(n)
    graph_dir = write_graph_dir(BuildResult(streamers=data.streamers, edges=data.edges,
                                            played=data.played, games=data.games),
                                workdir / f"graph_{n}")
    print(f"n={n}: {len(data.streamers)} streamers, {len(data.edges)} edges "
          f"({len(data.edges) / n:.1f} per node), {data.streamers['planted'].nunique()} "
          f"planted communities; generated in {time.perf_counter() - t0:.1f} s", flush=True)
    del data
    rows = []
    for step, impl, key, is_reference in STEPS:
        if is_reference and not reference:
            continue
        # networkx's FA2 builds n x n x 2 float64 arrays (and temporaries of that size).
        need_gib = 4 * n * n * 2 * 8 / 2**30
        avail_gib = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
        if key == "nx-fa2" and need_gib > 0.6 * avail_gib:
            seconds = mib = None
            note = f"skipped: needs ~{need_gib:.0f} GiB, {avail_gib:.0f} GiB available"
        else:
            seconds, mib, note = _in_fresh_process(graph_dir, key)
        rows.append({"n": n, "step": step, "impl": impl,
                     "seconds": None if seconds is None else round(seconds, 2),
                     "peak_MiB": None if mib is None else round(mib, 1), "note": note})
        print(f"  {step:<12} {impl:<28} "
              f"{'-' if seconds is None else f'{seconds:8.2f} s'}  "
              f"{'-' if mib is None else f'{mib:8.1f} MiB'}  {note}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 30000])
    parser.add_argument("--no-reference", action="store_true",
                        help="skip networkx's Louvain and ForceAtlas2")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tg-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        for n in args.sizes:
            rows += run(n, not args.no_reference, workdir)
    print()
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
