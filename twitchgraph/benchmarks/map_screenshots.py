"""Screenshots of the web map and the PNG at the scale users run, for looking at by eye.

Builds a GRAPH_DIR shaped like a collected one (not like the planted benchmark graph): a main
component of communities of uneven sizes, plus isolated streamers and tiny components that a
real build keeps (about 15 % of the streamers), and display names in Japanese, Korean and
Chinese. Then runs the graph stage (communities, layout) and the png and html exports, and
photographs the map in headless Chromium:

  <out>/<n>/graph.png          the PNG export
  <out>/<n>/map-open.png       the map as it opens
  <out>/<n>/map-search.png     after searching a streamer (the camera zooms in)
  <out>/<n>/map-retick.png     then hiding all communities and ticking the largest one again

`--graph-dir DIR` photographs an existing GRAPH_DIR instead (e.g. the demo's, which has
communities, layout and map.html already).

Run: .venv/bin/python benchmarks/map_screenshots.py --sizes 200 3000 --out /tmp/shots
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from graph import planted_graph  # noqa: E402

from twitchgraph.export import export_graph  # noqa: E402
from twitchgraph.graph.communities import communities_for_dir  # noqa: E402
from twitchgraph.graph.layout import layout_for_dir  # noqa: E402
from twitchgraph.graphio import GraphData, write_graph_dir  # noqa: E402

NAMES = ["ゆっくり実況", "にじさんじ", "한국어방송", "中文直播", "ゲーム配信", "도전왕", "夜猫子",
         "ホロライブ", "스트리머"]
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def user_shaped_graph(n: int, seed: int = 0) -> GraphData:
    """A planted graph of 85 % of `n` streamers plus isolated streamers, pairs and triangles."""
    rng = np.random.default_rng(seed)
    main = planted_graph(int(n * 0.85), seed=seed)
    streamers, edges = main.streamers, main.edges
    extra = n - len(streamers)
    logins = np.array([f"lone{i:05d}" for i in range(extra)], dtype=object)
    viewers = np.round(rng.lognormal(2.5, 1.0, extra) + 10, 2)
    lone = streamers.sample(extra, replace=True, random_state=seed).reset_index(drop=True)
    lone = lone.assign(Id=logins, login=logins, Label=[f"Lone {i}" for i in range(extra)],
                       viewer_mean=viewers, planted=-1)
    # A third of them in pairs and triangles, the rest alone.
    rows = []
    i = 0
    while i < extra // 3:
        k = 2 + int(rng.integers(0, 2))
        group = logins[i:i + k]
        rows += [(a, b) for j, a in enumerate(group) for b in group[j + 1:]]
        i += k
    small = pd.DataFrame(rows, columns=["Source", "Target"]).assign(
        Weight=12.5, shared=20, overlap=12.5, jaccard=0.05, Type="Directed")
    streamers = pd.concat([streamers, lone], ignore_index=True)
    # Non-Latin display names on big and small streamers alike.
    for j, row in enumerate(streamers.sort_values("viewer_mean", ascending=False).index[:30:3]):
        streamers.loc[row, "Label"] = NAMES[j % len(NAMES)]
    played = pd.concat([main.played, pd.DataFrame({
        "Source": logins, "Target": main.games["Id"].iloc[0], "minutes_played": 100})])
    return GraphData(streamers=streamers, edges=pd.concat([edges, small], ignore_index=True),
                     played=played, games=main.games)


def make_graph_dir(n: int, out: Path) -> Path:
    data = user_shaped_graph(n)
    graph_dir = out / "graph"
    if graph_dir.exists():
        shutil.rmtree(graph_dir)
    write_graph_dir(GraphData(streamers=data.streamers, edges=data.edges, played=data.played,
                              games=data.games), graph_dir)
    t0 = time.perf_counter()
    result, _ = communities_for_dir(graph_dir, seed=0)
    t1 = time.perf_counter()
    layout_for_dir(graph_dir, seed=0)
    t2 = time.perf_counter()
    export_graph(graph_dir, ["png", "html"])
    print(f"n={n}: {len(result.table)} communities in {t1 - t0:.1f} s, layout "
          f"{t2 - t1:.1f} s, exports {time.perf_counter() - t2:.1f} s", flush=True)
    return graph_dir


def photograph(graph_dir: Path, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    shots = []
    if (graph_dir / "graph.png").exists():
        shutil.copy(graph_dir / "graph.png", out / "graph.png")
        shots.append(out / "graph.png")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROME_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto((graph_dir / "map.html").resolve().as_uri())
        page.wait_for_function("window.__map && window.__map.ready", timeout=60000)
        page.wait_for_timeout(1500)
        page.screenshot(path=out / "map-open.png")
        shots.append(out / "map-open.png")
        top = page.evaluate("(() => { const g = window.__map.graph; let best = null, v = -1; "
                            "g.forEachNode((k, a) => { if (a.size > v) { v = a.size; best = k; }"
                            " }); return best; })()")
        page.fill("#search", top)
        page.press("#search", "Enter")
        page.wait_for_timeout(1000)
        page.screenshot(path=out / "map-search.png")
        shots.append(out / "map-search.png")
        page.click("#panel-close")
        page.click("#hide-all")
        page.click("#legend li:nth-child(1) input[type=checkbox]")
        page.wait_for_timeout(1000)
        page.screenshot(path=out / "map-retick.png")
        shots.append(out / "map-retick.png")
        browser.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[200, 3000])
    parser.add_argument("--graph-dir", type=Path, default=None,
                        help="photograph this GRAPH_DIR's map.html and graph.png instead")
    parser.add_argument("--out", type=Path, default=Path("demo-output/screenshots"))
    args = parser.parse_args(argv)
    if args.graph_dir is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for shot in photograph(args.graph_dir, args.out):
            print(shot)
        return 0
    for n in args.sizes:
        out = args.out / str(n)
        out.mkdir(parents=True, exist_ok=True)
        for shot in photograph(make_graph_dir(n, out), out):
            print(shot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
