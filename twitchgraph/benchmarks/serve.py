"""Benchmark `twitchgraph serve` at the original's scale: a rebuild, the first page load and a
step of the time slider.

The store is `benchmarks/build.py`'s synthetic two weeks (`--scale 1`: ~2,500 streamers and
~44,000 edges after the build, the original's 2,977 and 47,222), plus random raids between
streamers live at the same time. Then:

  1. a rebuild as `serve` runs it: build, communities, layout (300 ForceAtlas2 iterations),
     and the per-day windows of the time slider (one build + communities per day);
  2. `serve` on loopback (uvicorn) and headless Chromium: the first load of the map page
     (from the request until sigma has drawn the graph), cold and warm;
  3. slider steps: one window's communities applied to every node and drawn (the mean and the
     worst of stepping through every window).

Targets from the issue: first paint under 2 s, a slider step under 200 ms.

Run: .venv/bin/python benchmarks/serve.py [--scale 1] [--workdir DIR] [--reuse]

Measured 2026-12-01 on this project's machine (2 cores shared with seven other engineers'
test runs: `benchmarks/build.py`'s build took 167 s here against its unloaded 34 s), scale 1,
2,499 streamers, 44,314 edges, 7,372 raid pairs, 14 day windows:

| measure                              | here    | target  |
| rebuild: build                       | 167.0 s |         |
| rebuild: communities                 | 0.6 s   |         |
| rebuild: layout (300 iterations)     | 12.5 s  |         |
| rebuild: 14 day windows (slider)     | 322.7 s |         |
| first page load, cold / warm         | 9.2 / 5.8 s | < 2 s |
| slider step, mean / worst            | 172 / 434 ms | < 200 ms |

The first load misses its target here: headless Chromium has no GPU on this machine and
draws sigma's WebGL in software (a 10-node map loads in 0.5 s, 1,700 nodes and 7,000 edges
in 3 s; a CPU profile puts most of it in native code, not in the page's scripts). The page
arrives in 0.2-0.4 s once the map's JSON is made. The windows dominate a rebuild: one build
per day, each scanning the store.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import socket
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = {"first paint (s)": 2.0, "slider step (ms)": 200.0}


def _generate(db: Path, scale: float) -> dict:
    spec = importlib.util.spec_from_file_location("bench_build", HERE / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = module.generate(db, scale, threads=2, memory_limit="4GB")
    import duckdb

    con = duckdb.connect(str(db))
    # One raid per 20 (snapshot, stream) rows at random, towards a stream live in the same
    # snapshot: enough raid pairs to draw.
    con.execute(
        """INSERT INTO raids
           SELECT a.snapshot_id, s.started_at, a.user_login, a.user_login, b.user_login,
                  greatest(1, a.viewer_count)
           FROM streams a JOIN snapshots s USING (snapshot_id)
           JOIN streams b ON b.snapshot_id = a.snapshot_id
                         AND hash(a.user_login, b.user_login) % 700 = 0
                         AND a.user_login <> b.user_login
           WHERE hash(a.snapshot_id, a.user_login) % 20 = 0""")
    figures["raids"] = con.execute("SELECT count(*) FROM raids").fetchone()[0]
    con.close()
    return figures


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(page, expression: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the original's two weeks of snapshots")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the store and graph of an earlier run in --workdir")
    args = parser.parse_args()

    import uvicorn
    from playwright.sync_api import sync_playwright

    from twitchgraph.serve.app import create_app
    from twitchgraph.serve.rebuild import Rebuilder

    work = args.workdir or Path(tempfile.mkdtemp(prefix="tg-serve-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "bench.duckdb"
    t0 = time.perf_counter()
    if args.reuse and db.exists():
        print(f"store: reusing {db}", flush=True)
    else:
        store = _generate(db, args.scale)
        print(f"store: scale {args.scale}, generated in {time.perf_counter() - t0:.1f} s, "
              f"{store.get('chatter_rows', 0):,} chatter rows, {store['raids']:,} raids",
              flush=True)

    rebuilder = Rebuilder(db, work / "graphs", every_s=None, window=timedelta(days=1))
    if args.reuse and rebuilder.adopt_latest():
        print("reusing the graph of an earlier run", flush=True)
    if not (args.reuse and rebuilder.state.graph is not None):
        assert rebuilder.rebuild_now(), rebuilder.state.last_error
    rebuild_steps = rebuilder.state.steps
    timeline = rebuilder.state.timeline
    g = rebuilder.state.graph
    print(f"graph: {len(g.streamers):,} streamers, {len(g.edges):,} edges, "
          f"{len(g.raids):,} raid pairs, {0 if timeline is None else len(timeline.windows)} "
          "windows", flush=True)

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(rebuilder, start=False),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}/"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    loads, steps = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        for _ in range(3):  # cold (payload made), then warm
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            t0 = time.perf_counter()
            page.goto(url)
            _wait(page, "!!(window.__map && window.__map.ready)")
            page.evaluate("new Promise(r => requestAnimationFrame(() => r()))")
            loads.append(time.perf_counter() - t0)
            nav = page.evaluate("(() => { const n = performance.getEntriesByType('navigation')"
                                "[0]; return [n.responseStart, n.responseEnd, "
                                "n.domContentLoadedEventEnd, window.__map.readyAt]; })()")
            print("  load: first byte {:.0f} ms, page received {:.0f} ms, scripts run {:.0f} "
                  "ms, map ready {:.0f} ms".format(*nav), flush=True)
            page.close()
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        _wait(page, "!!(window.__map && window.__map.urlReady)")
        windows = 0 if timeline is None else len(timeline.windows)
        for w in list(range(windows)) + [windows]:
            steps.append(page.evaluate(
                """w => new Promise(r => { const t0 = performance.now();
                     window.__map.showWindow(w);
                     requestAnimationFrame(() => r(performance.now() - t0)); })""", w))
        browser.close()
    server.should_exit = True
    thread.join(10)

    rows = [
        *((f"rebuild: {step} (s)", f"{seconds:.1f}", "–")
          for step, seconds in rebuild_steps.items()),
        ("rebuild: total (s)", f"{sum(rebuild_steps.values()):.1f}", "–"),
        ("first page load, cold (s)", f"{loads[0]:.2f}", f"< {TARGETS['first paint (s)']}"),
        ("first page load, warm (s)", f"{min(loads[1:]):.2f}",
         f"< {TARGETS['first paint (s)']}"),
        ("slider step, mean (ms)", f"{sum(steps) / len(steps):.0f}",
         f"< {TARGETS['slider step (ms)']:.0f}"),
        ("slider step, worst (ms)", f"{max(steps):.0f}", f"< {TARGETS['slider step (ms)']:.0f}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  {'here':>8}  {'target':>8}")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>8}  {target:>8}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
