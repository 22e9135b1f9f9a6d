"""Rebuild the graph from a live store for `twitchgraph serve`: build, communities, layout.

A rebuild reads the store read-only (so it runs beside a collector: the collector's commits
wait at most for the build's read, and readers let a waiting commit in first), writes a new
GRAPH_DIR next to the older ones and only then makes it current, so a page is always served
from a whole graph. The last good graph stays current when a rebuild fails (an empty store,
a window with no snapshot), and the failure is kept for the status page.

With a `window` (a day, a week), each rebuild also tracks communities window by window (as
`twitchgraph evolve`), for the map's time slider and the streamers' trends.

A rebuild does only what the store's news asks for:

- nothing new (the same complete snapshots, bots, raids, profiles and game data, the same
  options): the current graph stays, at the cost of one look at the store
  (`store_fingerprint`);
- the build: its heavy parts are kept in serve's own DuckDB file and only the snapshots
  new since the last rebuild are folded in (`serve.aggregates`);
- windows: each window's result is kept in serve's folder (`serve.windows`), so only the
  windows that gained snapshots are built again;
- the map keeps its places: the layout starts from the current graph's positions and only
  refines them, and communities take the ids (and so the colours) of the current graph's
  communities they share most members with.

`/status` shows each step's seconds, how many windows were reused or built, and what the
aggregates did (folded in k snapshots, or started again and why).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from twitchgraph.atomic import write_text
from twitchgraph.build.params import BuildParams
from twitchgraph.clock import utcnow
from twitchgraph.errors import TwitchgraphError
from twitchgraph.graphio import GraphData, read_graph_dir
from twitchgraph.serve.aggregates import IncrementalBuild, covers

__all__ = ["Rebuilder", "RebuildState", "rebuild_graph", "store_fingerprint"]

logger = logging.getLogger(__name__)

_KEEP = 2  # graph folders kept: the current one and the one before (a page may still read it)
_SERVE_RECORD = "serve.json"  # in a graph folder: the store's fingerprint and the options
_BALANCED = "layout.csv"  # in a graph folder: ForceAtlas2's positions before spreading
# Tables whose rows a rebuild does not hash: the snapshot rows (complete snapshots never
# change, so `snapshots` stands for them) and the collector's bookkeeping.
_UNHASHED = {"streams", "chatters", "listens", "snapshot_info", "imports"}


def store_fingerprint(con: Any) -> dict[str, Any]:
    """What a graph of the store depends on, in a few numbers: per table its row count and
    the sum of its rows' hashes (every table but the snapshot rows and bookkeeping, see
    `_UNHASHED`). Two equal fingerprints mean the same graph for the same options."""
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "ORDER BY table_name").fetchall()]
    out: dict[str, Any] = {}
    for table in tables:
        if table in _UNHASHED or table.startswith("_"):
            continue
        count, digest = con.execute(
            f'SELECT count(*), sum(hash(t)) FROM "{table}" t').fetchone()
        out[table] = [int(count), None if digest is None else str(digest)]
    return out


def rebuild_graph(
    db: str | Path,
    out_dir: str | Path,
    *,
    build_params: BuildParams | None = None,
    resolution: float = 1.0,
    layout_iterations: int = 300,
    seed: int = 0,
    timings: dict[str, float] | None = None,
    previous: GraphData | None = None,
    previous_layout: pd.DataFrame | None = None,
    refine_iterations: int = 50,
    incremental: Any = None,
) -> Path:
    """Build the graph of the store at `db` into the new folder `out_dir`, with communities
    and a layout; returns `out_dir`. `timings` gets the seconds of each step.

    With a `previous` graph, communities take its ids (`communities.keep_ids`); with its
    `previous_layout` (Id, x, y: ForceAtlas2's balanced positions, which this writes as
    ``layout.csv``), the layout starts from them for at most `refine_iterations` iterations
    instead of `layout_iterations` from the communities' places. With `incremental` (a
    `serve.aggregates.IncrementalBuild`), the build folds in only the snapshots new since
    its last call, where its aggregates cover the parameters (`aggregates.covers`).

    Raises BuildError (nothing to build), StoreError (the store cannot be read).
    """
    from twitchgraph.build.definition import build_graph
    from twitchgraph.graph.communities import communities_for_dir
    from twitchgraph.graph.layout import layout_for_dir
    from twitchgraph.graphio import write_csv, write_graph_dir
    from twitchgraph.store.db import open_store

    timings = {} if timings is None else timings
    t0 = time.perf_counter()
    from twitchgraph.store.db import SCHEMA_VERSION

    params = build_params or BuildParams()
    con = open_store(db, read_only=True)
    try:
        if incremental is not None and not covers(params):
            result = incremental.build(con, params, schema_version=SCHEMA_VERSION)
        else:
            result = build_graph(con, params)
    finally:
        con.close()  # before the slow steps: the collector's next commit need not wait
    out = write_graph_dir(result, out_dir)
    t1 = time.perf_counter()
    columns = set() if previous is None else set(previous.streamers.columns)
    membership = (dict(zip(previous.streamers["Id"], previous.streamers["community"].astype(int),
                           strict=True)) if "community" in columns else None)
    communities_for_dir(out, resolution=resolution, seed=seed, previous=membership)
    t2 = time.perf_counter()
    positions, _ = layout_for_dir(out, seed=seed, initial=previous_layout,
                                  iterations=layout_iterations if previous_layout is None else
                                  min(layout_iterations, refine_iterations))
    balanced = positions.attrs["balanced"]
    write_csv(pd.DataFrame({"Id": positions["Id"], "x": balanced[:, 0], "y": balanced[:, 1]}),
              out / _BALANCED)
    timings.update(build=t1 - t0, communities=t2 - t1, layout=time.perf_counter() - t2)
    return out


@dataclass
class RebuildState:
    """What the server shows about its graph: the current one and the last attempt."""

    graph: GraphData | None = None
    built_at: datetime | None = None
    seconds: float | None = None
    running: bool = False
    last_error: str = ""
    last_attempt: datetime | None = None
    rebuilds: int = 0
    failures: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    timeline: Any = None  # an evolve.Evolution of the same store, or None
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step, last rebuild
    timeline_error: str = ""
    windows_reused: int = 0  # last rebuild: windows taken from serve's folder
    windows_computed: int = 0  # ... and windows built
    unchanged: bool = False  # last rebuild found nothing new and kept the graph
    aggregates: str = ""  # what the incremental build did, or why it was not used

    def as_dict(self) -> dict[str, Any]:
        g = self.graph
        return {
            "built_at": self.built_at.isoformat() if self.built_at else None,
            "seconds": None if self.seconds is None else round(self.seconds, 2),
            "steps": {k: round(v, 2) for k, v in self.steps.items()},
            "running": self.running,
            "last_error": self.last_error,
            "last_attempt": self.last_attempt.isoformat() if self.last_attempt else None,
            "rebuilds": self.rebuilds,
            "failures": self.failures,
            "streamers": None if g is None else len(g.streamers),
            "edges": None if g is None else len(g.edges),
            "raid_pairs": None if g is None else len(g.raids),
            "flow_pairs": None if g is None else len(g.flows),
            "windows": [] if self.timeline is None else list(self.timeline.windows),
            "windows_reused": self.windows_reused,
            "windows_computed": self.windows_computed,
            "unchanged": self.unchanged,
            "aggregates": self.aggregates,
            "timeline_error": self.timeline_error,
            "params": self.params,
        }


class Rebuilder:
    """Rebuilds on a schedule (`every_s`; None = only on request) in a background thread.

    Args:
        db: the store.
        root: folder for the graphs (one sub-folder per rebuild).
        every_s: seconds between rebuilds, counted from the end of the last one.
        build_params, resolution, layout_iterations, refine_iterations, seed: as
            `rebuild_graph`.
        window: the time slider's windows (None: none); their results are kept in
            ``root/windows``.
    """

    def __init__(self, db: str | Path, root: str | Path, *, every_s: float | None = 1800.0,
                 build_params: BuildParams | None = None, resolution: float = 1.0,
                 layout_iterations: int = 300, refine_iterations: int = 50, seed: int = 0,
                 window: timedelta | None = None) -> None:
        self.db = Path(db)
        self.root = Path(root)
        self.every_s = every_s
        self.options = {"build_params": build_params or BuildParams(), "resolution": resolution,
                        "layout_iterations": layout_iterations,
                        "refine_iterations": refine_iterations, "seed": seed}
        self.window = window
        self.state = RebuildState(params=self.options["build_params"].as_record())
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one rebuild at a time
        self._thread: threading.Thread | None = None
        self._built_from: dict[str, Any] | None = None  # fingerprint + options of the graph
        self._layout: pd.DataFrame | None = None  # the graph's balanced positions
        self._incremental = IncrementalBuild(self.root / "aggregates.duckdb")

    def _options_record(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.options.items() if k != "build_params"},
                "build_params": self.options["build_params"].as_record(),
                "window": None if self.window is None else self.window.total_seconds()}

    def adopt_latest(self) -> bool:
        """Serve the newest finished graph of an earlier run while the first rebuild runs."""
        for folder in sorted(self.root.glob("graph-*"), reverse=True):
            if (folder / "build.json").exists():
                try:
                    self.state.graph = read_graph_dir(folder)
                except ValueError:
                    continue
                self.state.built_at = datetime.fromtimestamp(
                    (folder / "build.json").stat().st_mtime).astimezone()
                try:
                    self._built_from = json.loads((folder / _SERVE_RECORD).read_text())
                except (OSError, ValueError):
                    self._built_from = None  # an older run's graph: the first rebuild is whole
                self._layout = _read_layout(folder)
                return True
        return False

    def rebuild_now(self) -> bool:
        """Rebuild in this thread; True when the served graph is up to date with the store
        (a new graph, or the current one when nothing changed), False when it failed."""
        from twitchgraph.store.db import open_store

        with self._lock:
            self.state.running = True
            started = time.monotonic()
            self.state.last_attempt = utcnow()
            folder = self.root / f"graph-{utcnow():%Y%m%dT%H%M%S%f}"
            steps: dict[str, float] = {}
            try:
                t0 = time.perf_counter()
                con = open_store(self.db, read_only=True)
                try:
                    built_from = {"store": store_fingerprint(con),
                                  "options": json.loads(json.dumps(self._options_record()))}
                finally:
                    con.close()
                steps["check"] = time.perf_counter() - t0
                if self.state.graph is not None and built_from == self._built_from and (
                        self.window is None or self.state.timeline is not None
                        or self.state.timeline_error):
                    self._kept(steps, started)
                    return True
                why = covers(self.options["build_params"])
                self._incremental.note = ""
                try:
                    rebuild_graph(self.db, folder, timings=steps, previous=self.state.graph,
                                  previous_layout=self._layout, incremental=self._incremental,
                                  **self.options)
                finally:
                    self.state.aggregates = (f"aggregates not used: {why}" if why
                                             else self._incremental.note)
                graph = read_graph_dir(folder)
                t0 = time.perf_counter()
                timeline = self._timeline()
                if self.window is not None:
                    steps["windows"] = time.perf_counter() - t0
                write_text(folder / _SERVE_RECORD, json.dumps(built_from))
            except Exception as exc:  # noqa: BLE001 - kept for the status page; retried later
                shutil.rmtree(folder, ignore_errors=True)
                self.state.failures += 1
                self.state.last_error = str(exc).splitlines()[0] if str(exc) else type(
                    exc).__name__
                # Expected failures (nothing to build yet, a busy or newer store) are one
                # line; anything else is a bug: its traceback goes to the log as well.
                expected = isinstance(exc, TwitchgraphError | OSError)
                logger.warning("rebuild failed: %s", self.state.last_error,
                               exc_info=not expected)
                return False
            finally:
                self.state.running = False
            self._built_from, self._layout = built_from, _read_layout(folder)
            self.state.graph, self.state.timeline = graph, timeline
            self.state.steps = steps
            self.state.unchanged = False
            self.state.built_at = utcnow()
            self.state.seconds = time.monotonic() - started
            self.state.last_error = ""
            self.state.rebuilds += 1
            self._prune()
            logger.info("rebuilt the graph in %.1f s: %d streamers, %d edges (%s)",
                        self.state.seconds, len(graph.streamers), len(graph.edges),
                        ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
            return True

    def _kept(self, steps: dict[str, float], started: float) -> None:
        """Nothing new in the store: the current graph and windows stay."""
        self.state.steps = steps
        self.state.unchanged = True
        self.state.seconds = time.monotonic() - started
        self.state.last_error = ""
        self.state.rebuilds += 1
        if self.state.timeline is not None:
            self.state.windows_reused = len(self.state.timeline.windows)
            self.state.windows_computed = 0
        logger.info("nothing new in the store: the graph stays (checked in %.2f s)",
                    self.state.seconds)

    def _timeline(self) -> Any:
        """Communities window by window, or None (no window asked, or too little data yet:
        the reason goes to `state.timeline_error`, the rebuild itself still counts)."""
        from twitchgraph.graph.evolve import EvolveError, evolve_store
        from twitchgraph.serve.windows import DiskWindowCache, window_key
        from twitchgraph.store.db import SCHEMA_VERSION

        self.state.windows_reused = self.state.windows_computed = 0
        if self.window is None:
            return None
        # open_store migrates an older store before anything reads it: the rows read are
        # always in this schema, so this code's version of it is the one results depend on.
        cache = DiskWindowCache(self.root / "windows", window_key(
            self.options["build_params"].as_record(), resolution=self.options["resolution"],
            seed=self.options["seed"], schema_version=SCHEMA_VERSION))
        try:
            evolution = evolve_store(self.db, window=self.window,
                                     resolution=self.options["resolution"],
                                     seed=self.options["seed"],
                                     build_params=self.options["build_params"], cache=cache)
        except EvolveError as exc:
            self.state.timeline_error = str(exc)
            return None
        finally:
            self.state.windows_reused, self.state.windows_computed = (cache.reused,
                                                                      cache.computed)
        cache.prune()
        self.state.timeline_error = ""
        return evolution

    def request(self) -> None:
        """Ask the background thread for a rebuild now (e.g. on SIGHUP)."""
        self._wake.set()

    def start(self) -> None:
        """Rebuild at once, then on the schedule, in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="twitchgraph-rebuild",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.rebuild_now()
            self._wake.clear()
            self._wake.wait(self.every_s)

    def _prune(self) -> None:
        folders = sorted(self.root.glob("graph-*"))
        for folder in folders[:-_KEEP]:
            shutil.rmtree(folder, ignore_errors=True)


def _read_layout(folder: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(folder / _BALANCED, dtype={"Id": str}, keep_default_na=False)
    except (OSError, ValueError):
        return None
