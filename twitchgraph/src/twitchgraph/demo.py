"""`twitchgraph demo`: the whole pipeline against a simulated Twitch on loopback.

Starts the simulator (accelerated clock, relaxed HTTP and chat limits), collects a few
snapshots with the real collector through its real HTTP and IRC clients, imports the
simulator's published bot list, enriches games and streamers, builds the graph with thresholds
suited to the demo's scale, finds communities, lays out, writes every export and reports how
well the communities found match the simulator's hidden ones (NMI).

The simulator is a test peer: the product code here is the same that talks to Twitch; only
the endpoints (environment), the clock and the rate limits differ.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twitchgraph.build.params import BuildParams
from twitchgraph.errors import TwitchgraphError
from twitchgraph.graphio import GraphData, write_graph_dir

if TYPE_CHECKING:
    from twitchgraph.graph.communities import CommunityResult
    from twitchgraph.sim import Simulator

__all__ = ["DemoConfig", "DemoError", "DemoResult", "run_demo"]

logger = logging.getLogger(__name__)


class DemoError(TwitchgraphError, RuntimeError):
    """The demo could not finish; the message names the step."""


def _demo_build() -> BuildParams:
    # The original's thresholds (60 min live, 10 viewers, 10 chatters, every 3rd snapshot) suit
    # two weeks of 5-minute snapshots; an hour of simulated Twitch with ~200 channels needs
    # lower ones, or only a handful of streamers survive.
    return BuildParams(every_nth=1, min_live_minutes=10.0, min_viewer_mean=5.0,
                       min_chatter_mean=5.0, min_weight=10.0, weight="overlap",
                       min_game_minutes=10.0, drop_suspected=True)


@dataclass
class DemoConfig:
    """Scale and timing of the demo.

    Attributes
    ----------
    channels, users, seed : the simulated world.
    snapshots : how many snapshots to collect.
    every_min : simulated minutes between snapshots.
    window_s : simulated seconds of chat listening per snapshot.
    time_scale : simulated seconds per real second.
    build : parameters of `twitchgraph.build.definition.build_graph`.
    resolution : modularity resolution of the communities.
    layout_iterations : ForceAtlas2 iterations.
    start : simulated time of the first snapshot (UTC); None for now.
    """

    channels: int = 200
    users: int = 5000
    seed: int = 0
    snapshots: int = 6
    every_min: float = 10.0
    window_s: float = 120.0
    time_scale: float = 120.0
    build: BuildParams = field(default_factory=_demo_build)
    resolution: float = 1.0
    layout_iterations: int = 500
    start: datetime | None = None


@dataclass
class DemoResult:
    """Where the demo wrote what, and how well it recovered the hidden communities."""

    out_dir: Path
    graph_dir: Path
    html: Path
    streamers: int
    edges: int
    communities: int
    modularity: float
    nmi: float
    seconds: float
    membership: dict[str, int]
    truth: dict[str, int]


def run_demo(
    out_dir: str | os.PathLike,
    *,
    config: DemoConfig | None = None,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Run the pipeline against the simulator and write everything under `out_dir`.

    `out_dir` gets demo.duckdb (the store), bots.csv, ground_truth.json and graph/ (the
    GRAPH_DIR with communities, layout and every export, map.html among them).

    Raises DemoError naming the step that failed.
    """
    from twitchgraph.export import export_graph
    from twitchgraph.graph.layout import layout_for_dir
    from twitchgraph.sim import run_simulator  # the demo is the one product user of the sim

    cfg = config or DemoConfig()
    started = time.monotonic()
    out = Path(out_dir)
    db, graph_dir = _fresh_outputs(out)
    with run_simulator(
        channels=cfg.channels, users=cfg.users, seed=cfg.seed, time_scale=cfg.time_scale,
        # Relaxed limits: the demo is not rate-limited by a shared service.
        helix_points_per_minute=100_000, chat_joins_per_10s=100_000, igdb_requests_per_s=1000,
        membership_interval_s=0.3, start=cfg.start,
    ) as sim:
        echo(f"simulated Twitch on {sim.http_url} (chat {sim.chat_address[0]}:"
             f"{sim.chat_address[1]}): {cfg.channels} channels, {cfg.users} users, time x"
             f"{cfg.time_scale:g}")
        _collect(sim, db, cfg, echo)
        truth = sim.ground_truth()
        (out / "ground_truth.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
        graph = _enrich_and_build(sim, db, out / "bots.csv", cfg, echo)
    write_graph_dir(graph, graph_dir)
    echo(f"graph: {len(graph.streamers)} streamers, {len(graph.edges)} edges, "
         f"{len(graph.played)} played -> {graph_dir}")

    found, planted, nmi = _communities_vs_truth(graph_dir, truth["communities"], cfg, echo)
    layout_for_dir(graph_dir, iterations=cfg.layout_iterations, seed=cfg.seed)
    echo(f"layout: ForceAtlas2, {cfg.layout_iterations} iterations")
    exports = export_graph(graph_dir, ["all"])
    for done in exports:
        echo(done.message)
    seconds = time.monotonic() - started
    (out / "demo.json").write_text(json.dumps({
        "config": asdict(cfg), "seconds": round(seconds, 1), "nmi": nmi,
        "modularity": found.modularity, "streamers": len(graph.streamers),
        "edges": len(graph.edges), "communities": len(found.table),
    }, indent=2, default=str), encoding="utf-8")
    html = next(e.path for e in exports if e.target == "html")
    echo(f"demo finished in {seconds:.0f} s")
    return DemoResult(
        out_dir=out, graph_dir=graph_dir, html=html, streamers=len(graph.streamers),
        edges=len(graph.edges), communities=len(found.table), modularity=found.modularity,
        nmi=nmi, seconds=seconds, membership=found.membership, truth=planted,
    )


def _fresh_outputs(out: Path) -> tuple[Path, Path]:
    """The store and GRAPH_DIR paths under `out`, with what an earlier demo left there gone."""
    out.mkdir(parents=True, exist_ok=True)
    db = out / "demo.duckdb"
    graph_dir = out / "graph"
    for stale in (db, Path(f"{db}.wal")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(f"{db}.spool", ignore_errors=True)  # a killed demo's unstored snapshots
    if graph_dir.exists():
        shutil.rmtree(graph_dir)
    return db, graph_dir


def _collect(sim: Simulator, db: Path, cfg: DemoConfig, echo: Callable[[str], None]) -> None:
    """Collect `cfg.snapshots` snapshots from the simulator into `db` with the real collector."""
    from twitchgraph.collect.collector import CollectError
    from twitchgraph.collect.options import ChatLimits, CollectOptions
    from twitchgraph.collect.run import run_collector
    from twitchgraph.twitch.errors import TwitchError

    every_s = cfg.every_min * 60.0
    options = CollectOptions(window_s=cfg.window_s, every_s=every_s,
                             for_s=every_s * (cfg.snapshots - 1) + 1.0)
    # Twitch's (and the simulator's) 100 channels per connection stay; only the JOIN
    # rate is relaxed, like the simulator's.
    limits = ChatLimits(channels_per_connection=100, max_connections=10,
                        joins_per_window=100_000, join_window_s=10.0)
    try:
        summaries = run_collector(db, options, env=sim.env(), dotenv_path=None, clock=sim.clock,
                                  chat_limits=limits).summaries
    except (CollectError, TwitchError, OSError) as exc:
        raise DemoError(f"collect: {exc}") from exc
    for summary in summaries:
        echo(summary.line())
    if not any(s.status == "complete" for s in summaries):
        raise DemoError("collect: no snapshot completed against the simulator")


def _enrich_and_build(
    sim: Simulator, db: Path, bots_csv: Path, cfg: DemoConfig, echo: Callable[[str], None]
) -> GraphData:
    """Import the simulator's bot list, enrich from its services and build the graph."""
    import httpx

    from twitchgraph.build.bots import import_bot_csv
    from twitchgraph.build.definition import BuildError, build_graph
    from twitchgraph.enrich import run_enrichment
    from twitchgraph.store.db import open_store
    from twitchgraph.twitch.credentials import load_credentials
    from twitchgraph.twitch.endpoints import Endpoints

    env = sim.env()
    con = open_store(db)
    try:
        added = import_bot_csv(con, sim.bot_list_csv(bots_csv))
        echo(f"bots: imported {added} logins from the simulator's published list")
        with httpx.Client(timeout=httpx.Timeout(15.0, connect=5.0)) as http:
            reports = run_enrichment(
                con, endpoints=Endpoints.from_env(env),
                credentials=load_credentials(env, dotenv_path=None), http=http,
                clock=sim.clock, steam_interval_s=0.0, igdb_requests_per_s=1000,
                social_source="gql",
            )
        for report in reports:
            state = f"error: {report.error}" if report.error else (
                f"asked {report.asked}, found {report.found}, matched {report.matched}")
            echo(f"enrich {report.source}: {state}")
        echo("build thresholds (demo scale): " + ", ".join(
            f"{k}={v}" for k, v in _changed(cfg.build).items()))
        try:
            return build_graph(con, cfg.build)
        except BuildError as exc:
            raise DemoError(f"build: {exc}") from exc
    finally:
        con.close()


def _changed(params: BuildParams) -> dict[str, Any]:
    """The parameters that differ from the original study's defaults."""
    default = BuildParams()
    return {f.name: getattr(params, f.name) for f in fields(params)
            if getattr(params, f.name) != getattr(default, f.name)}


def _communities_vs_truth(
    graph_dir: Path, planted: dict[str, int], cfg: DemoConfig, echo: Callable[[str], None]
) -> tuple[CommunityResult, dict[str, int], float]:
    """Find communities in `graph_dir`; the result, the planted communities of the streamers
    found, and the NMI between the two."""
    from sklearn.metrics import normalized_mutual_info_score  # 1.4 s to import: only here

    from twitchgraph.graph.communities import communities_for_dir

    found, _ = communities_for_dir(graph_dir, resolution=cfg.resolution, seed=cfg.seed)
    known = {login: planted[login] for login in found.membership if login in planted}
    nmi = float(normalized_mutual_info_score(list(known.values()),
                                             [found.membership[x] for x in known]))
    echo(f"communities: {len(found.table)} (Q = {found.modularity:.3f}); NMI with the "
         f"simulator's hidden communities = {nmi:.3f} over {len(known)} streamers")
    return found, known, nmi
