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

Wall time and peak memory of each step (peak resident set above the step's start, read from
/proc/self/status VmHWM after resetting it through /proc/self/clear_refs; Linux only). The
quality of each community result (modularity Q, NMI with the planted partition) is printed
too, so a fast wrong answer does not look good.

Run: .venv/bin/python benchmarks/graph.py [--sizes 3000 30000] [--no-reference]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

from twitchgraph.communities import find_communities
from twitchgraph.export import export_graph
from twitchgraph.graphio import GraphData, to_networkx, write_graph_tables
from twitchgraph.layout import ForceAtlas2Settings, forceatlas2_layout

EDGES_PER_NODE = 16
INSIDE = 0.85


def _vm(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run fn; return (result, seconds, peak MiB above the start)."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    start_rss = _vm("VmRSS")
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    return result, seconds, max(0.0, _vm("VmHWM") - start_rss)


def planted_graph(n: int, seed: int = 0) -> tuple[GraphData, dict[str, int]]:
    """A GRAPH_DIR-shaped planted-partition graph with n streamers."""
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
    })
    played = pd.DataFrame({"Source": logins, "Target": main_game,
                           "minutes_played": rng.integers(30, 5000, n)})
    games_frame = pd.DataFrame({"Id": games, "Label": games,
                                "genres": ["Shooter;Adventure"] * len(games)})
    truth = dict(zip(logins, community.tolist(), strict=True))
    return GraphData(streamers=streamers, edges=edges, played=played, games=games_frame), truth


def _nmi(truth: dict[str, int], found: dict[str, int]) -> float:
    keys = list(truth)
    return normalized_mutual_info_score([truth[x] for x in keys], [found[x] for x in keys])


def run(n: int, reference: bool, workdir: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def record(step: str, impl: str, seconds: float | None, mib: float | None, note: str = ""):
        rows.append({"n": n, "step": step, "impl": impl,
                     "seconds": None if seconds is None else round(seconds, 2),
                     "peak_MiB": None if mib is None else round(mib, 1), "note": note})
        print(f"  {step:<12} {impl:<28} "
              f"{'-' if seconds is None else f'{seconds:8.2f} s'}  "
              f"{'-' if mib is None else f'{mib:8.1f} MiB'}  {note}", flush=True)

    (data, truth), seconds, mib = measure(lambda: planted_graph(n))
    print(f"n={n}: {len(data.streamers)} streamers, {len(data.edges)} edges "
          f"({len(data.edges) / n:.1f} per node), {len(set(truth.values()))} planted "
          f"communities; generated in {seconds:.1f} s", flush=True)

    result, seconds, mib = measure(lambda: find_communities(data, resolution=1.0, seed=0))
    record("communities", "ours: Leiden (leidenalg)", seconds, mib,
           f"Q={result.modularity:.3f} k={len(result.table)} "
           f"NMI={_nmi(truth, result.membership):.3f}")
    data.streamers["community"] = data.streamers["Id"].map(result.membership)
    if reference:
        graph = to_networkx(data)
        louvain, seconds, mib = measure(
            lambda: nx.community.louvain_communities(graph, weight="weight", seed=0))
        membership = {x: i for i, group in enumerate(louvain) for x in group}
        q = nx.community.modularity(graph, louvain, weight="weight")
        record("communities", "networkx louvain", seconds, mib,
               f"Q={q:.3f} k={len(louvain)} NMI={_nmi(truth, membership):.3f}")
        del graph

    settings = ForceAtlas2Settings(prevent_overlap=False)
    positions, seconds, mib = measure(
        lambda: forceatlas2_layout(data, iterations=100, seed=0, settings=settings))
    record("layout/100it", "ours: ForceAtlas2 (fa2, BH)", seconds, mib)
    _, seconds, mib = measure(lambda: forceatlas2_layout(
        data, iterations=100, seed=0, settings=ForceAtlas2Settings(prevent_overlap=True)))
    record("layout/100it", "ours + prevent overlap", seconds, mib)
    if reference:
        # networkx's FA2 builds n x n x 2 float64 arrays (and temporaries of the same size).
        need_gib = 4 * n * n * 2 * 8 / 2**30
        avail_gib = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
        if need_gib > 0.6 * avail_gib:
            record("layout/100it", "networkx forceatlas2_layout", None, None,
                   f"skipped: needs ~{need_gib:.0f} GiB, {avail_gib:.0f} GiB available")
        else:
            graph = to_networkx(data)
            _, seconds, mib = measure(
                lambda: nx.forceatlas2_layout(graph, max_iter=100, weight="weight", seed=0))
            record("layout/100it", "networkx forceatlas2_layout", seconds, mib)
            del graph
    data.streamers = data.streamers.merge(positions, on="Id")

    out = workdir / f"graph_{n}"
    write_graph_tables(data, out)
    for target in ("db", "neo4j", "gexf", "png", "html"):
        done, seconds, mib = measure(lambda t=target: export_graph(out, [t]))
        path = done[0].path
        size = (sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir()
                else path.stat().st_size)
        record(f"export {target}", "ours", seconds, mib, f"{size / 2**20:.1f} MiB on disk")
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
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
