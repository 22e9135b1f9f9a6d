"""Commands of the `graph` group: communities, layout, export, query, evolve, demo.

Registered on the shared app by import. Each command parses its options, calls one library
function and turns domain errors into one red line on stderr with exit code 1.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from twitchgraph.cli._app import DbOption, app, check_graph_dir_writable, check_out_dir
from twitchgraph.cli._app import err as _err
from twitchgraph.cli._app import fail as _fail
from twitchgraph.cli._app import out as _out
from twitchgraph.errors import TwitchgraphError

logger = logging.getLogger(__name__)

GraphDirArg = typer.Argument(..., help="A GRAPH_DIR written by `twitchgraph build`.")


@app.command()
def communities(
    graph_dir: Path = GraphDirArg,
    resolution: float = typer.Option(1.0, help="Modularity resolution (original map: 0.7)."),
    seed: int = typer.Option(0, help="Seed of Leiden's random choices."),
) -> None:
    """Find communities (Leiden, weighted modularity) and write them into GRAPH_DIR.

    Adds a `community` column to streamers.csv and writes communities.csv.

    Example: twitchgraph communities graph/ --resolution 0.7 --seed 1
    """
    from twitchgraph.graph.communities import communities_for_dir

    check_graph_dir_writable(graph_dir, "streamers.csv and communities.csv")
    try:
        result, written = communities_for_dir(graph_dir, resolution=resolution, seed=seed)
    except TwitchgraphError as exc:
        raise _fail(str(exc)) from None
    table = Table("community", "size", "Q part", "language", "main game", "top streamers")
    for row in result.table.head(15).itertuples():
        table.add_row(str(row.community), str(row.size), f"{row.modularity_contribution:.3f}",
                      row.dominant_language, row.main_game, row.top_streamers.replace(";", ", "))
    _out.print(table)
    _out.print(f"Q = {result.modularity:.4f} ({len(result.table)} communities, resolution "
               f"{resolution}); wrote {', '.join(str(p) for p in written)}")


@app.command()
def layout(
    graph_dir: Path = GraphDirArg,
    iterations: int = typer.Option(1000, min=1, help="At most this many ForceAtlas2 "
                                   "iterations; it stops earlier once converged."),
    seed: int = typer.Option(0, help="Seed of the initial positions."),
    scaling: float = typer.Option(2.0, help="Repulsion (Gephi's Scaling)."),
    gravity: float = typer.Option(1.0, help="Pull towards the centre."),
    strong_gravity: bool = typer.Option(False, help="Distance-independent gravity."),
    linlog: bool = typer.Option(False, help="LinLog mode: tighter communities."),
    edge_weight_influence: float = typer.Option(1.0, help="Weights enter as w**influence."),
    dissuade_hubs: bool = typer.Option(False, help="Gephi's Dissuade Hubs."),
    prevent_overlap: bool = typer.Option(True, help="No overlapping discs at the end."),
    jitter_tolerance: float = typer.Option(1.0, help="Tolerated swinging."),
    barnes_hut: bool = typer.Option(True, help="Approximate repulsion (Barnes-Hut)."),
    barnes_hut_theta: float = typer.Option(1.2, help="Barnes-Hut accuracy (lower: exact)."),
    engine: str = typer.Option("fa2", help="fa2 (Barnes-Hut) or networkx (O(n²) reference)."),
    start: str = typer.Option("communities", help="Start from the communities' places "
                              "(when found) or from random positions (random)."),
    tolerance: float = typer.Option(0.01, help="Converged when nodes move less than this "
                                    "share of the map's radius in 10 iterations (0: never)."),
) -> None:
    """Lay GRAPH_DIR out with ForceAtlas2 and write x, y, size into streamers.csv.

    Example: twitchgraph layout graph/ --iterations 2000 --linlog --seed 1
    """
    from rich.progress import Progress

    from twitchgraph.graph.layout import ForceAtlas2Settings, layout_for_dir

    check_graph_dir_writable(graph_dir, "streamers.csv")
    try:
        settings = ForceAtlas2Settings(
            scaling=scaling, gravity=gravity, strong_gravity=strong_gravity, linlog=linlog,
            edge_weight_influence=edge_weight_influence, dissuade_hubs=dissuade_hubs,
            prevent_overlap=prevent_overlap, jitter_tolerance=jitter_tolerance,
            barnes_hut=barnes_hut, barnes_hut_theta=barnes_hut_theta, start=start,
            tolerance=tolerance,
        )
        with Progress(console=_err, transient=True) as progress:
            task = progress.add_task("ForceAtlas2", total=iterations)
            positions, target = layout_for_dir(
                graph_dir, iterations=iterations, seed=seed, settings=settings, engine=engine,
                progress=lambda done: progress.update(task, completed=done),
            )
    except TwitchgraphError as exc:
        raise _fail(str(exc)) from None
    done = positions.attrs.get("iterations", iterations)
    _out.print(f"laid out {len(positions)} streamers ({done} iterations, {engine}); "
               f"wrote x, y, size to {target}")


@app.command()
def export(
    graph_dir: Path = GraphDirArg,
    to: list[str] = typer.Option(..., "--to", help="db, neo4j, gexf, png, html or all; "
                                 "repeat for several."),
    out: Path | None = typer.Option(None, help="Output directory (default: GRAPH_DIR)."),
) -> None:
    """Export GRAPH_DIR: Kùzu database (db), Neo4j files, GEXF, PNG, offline HTML map (all).

    Example: twitchgraph export graph/ --to all
    """
    from twitchgraph.export import export_graph

    targets = [t.strip() for item in to for t in item.split(",") if t.strip()]
    try:  # export_graph refuses unknown targets before it reads anything
        for done in export_graph(graph_dir, targets, out_dir=out):
            _out.print(done.message)
    except TwitchgraphError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:  # e.g. --out names a file, or a folder we may not write
        raise _fail(f"cannot write the export to {out or graph_dir}: {exc}") from None


@app.command()
def query(
    graph_dir: Path = GraphDirArg,
    cypher: str = typer.Argument(..., help="A Cypher query; use $name for parameters."),
    param: list[str] = typer.Option([], "--param", "-p", help="name=value: a number only when "
                                    "written as a plain decimal (50), else a string; "
                                    "name:str=…, name:float=…, name:int=…, name:bool=…, "
                                    "name:json=… give the type. Repeat for several."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON records instead of a table."),
) -> None:
    """Run Cypher on GRAPH_DIR's embedded database (made by `export --to db`).

    Example: twitchgraph query graph/ 'MATCH (s:Streamer {login: $login})
    -\\[r:HAS_VIEWERSHIP_OVERLAPPED_WITH]-(n:Streamer)
    RETURN n.login AS login, r.overlap AS overlap ORDER BY overlap DESC' --param login=zeta
    """
    from twitchgraph.export.kuzu_db import DB_NAME
    from twitchgraph.export.query import parse_params, run_query

    db_file, table = graph_dir / DB_NAME, graph_dir / "streamers.csv"
    if db_file.exists() and table.exists() and table.stat().st_mtime > db_file.stat().st_mtime:
        _err.print(f"note: {table} is newer than {db_file}; run `twitchgraph export "
                   f"{graph_dir} --to db` to query the latest tables", style="yellow")
    try:
        params = parse_params(param)
        result = run_query(graph_dir, cypher, params)
    except TwitchgraphError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(result.records(), ensure_ascii=False, default=str, indent=2))
        return
    table = Table(*result.columns)
    for row in result.rows:
        table.add_row(*(_cell(v) for v in row))
    _out.print(table)
    _out.print(f"{len(result.rows)} rows")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.0f}"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


@app.command()
def evolve(
    db: Path = DbOption,
    window: str = typer.Option("1d", help="Window length: 30m, 6h, 1d, 1w."),
    out: Path = typer.Option(Path("evolve"), help="Where the table and the plot go."),
    resolution: float = typer.Option(1.0, help="Modularity resolution per window."),
    seed: int = typer.Option(0, help="Seed of Leiden per window."),
    min_jaccard: float = typer.Option(0.3, help="Members' Jaccard for two communities to match."),
    min_weight: float = typer.Option(10.0, help="Build threshold: minimum edge weight."),
    min_viewer_mean: float = typer.Option(10.0, help="Build threshold: minimum mean viewers."),
    min_chatter_mean: float = typer.Option(10.0, help="Build threshold: minimum mean chatters."),
    min_live_minutes: float = typer.Option(60.0, help="Build threshold: minimum minutes live."),
    every_nth: int = typer.Option(1, help="Use every n-th snapshot in each window."),
) -> None:
    """Communities over time: one graph per window, matched between consecutive windows.

    Reports births, deaths, splits, merges and the streamers that moved, as a table
    (evolve/events.csv, evolve/moves.csv) and a plot (evolve/evolve.png).

    Example: twitchgraph evolve --db twitchgraph.duckdb --window 1d
    """
    from twitchgraph.build.params import BuildParams
    from twitchgraph.graph.evolve import evolve_store, parse_window, write_evolution

    if not db.exists():
        raise _fail(f"no store at {db}: run `twitchgraph collect --db {db}` first or pass --db")
    check_out_dir(out)
    try:
        length = parse_window(window)
    except TwitchgraphError as exc:
        raise _fail(f"--window: {exc}") from None
    try:
        result = evolve_store(
            db, window=length, resolution=resolution, seed=seed, min_jaccard=min_jaccard,
            build_params=BuildParams(min_weight=min_weight, min_viewer_mean=min_viewer_mean,
                                     min_chatter_mean=min_chatter_mean,
                                     min_live_minutes=min_live_minutes, every_nth=every_nth),
        )
        written = write_evolution(result, out)
    except TwitchgraphError as exc:
        raise _fail(str(exc)) from None
    from rich import box
    from rich.table import Column

    table = Table(Column("window", no_wrap=True), "streamers", "communities", "births",
                  "deaths", "splits", "merges", "moved", box=box.SIMPLE)
    for row in result.summary.itertuples():
        table.add_row(row.window, str(row.streamers), str(row.communities), str(row.births),
                      str(row.deaths), str(row.splits), str(row.merges), str(row.moved))
    _out.print(table)
    for row in result.summary.itertuples():  # empty windows and what bridged them
        if row.note:
            _out.print(f"{row.window}: {row.note}")
    _out.print(f"wrote {', '.join(str(p) for p in written)}")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output/twitchgraph"), help="Where everything goes."),
    seed: int = typer.Option(0, help="Seed of the simulated Twitch."),
    channels: int = typer.Option(200, min=10, help="Channels in the simulated world."),
    users: int = typer.Option(5000, min=100, help="Viewers in the simulated world."),
    snapshots: int = typer.Option(6, min=1, help="Snapshots to collect (10 simulated min apart)."),
    time_scale: float = typer.Option(120.0, min=1.0, help="Simulated seconds per real second."),
) -> None:
    """Run the whole pipeline on a simulated Twitch on loopback and write every export.

    Starts the simulator, collects a few snapshots in accelerated time, imports its bot list,
    enriches, builds, finds communities, lays out, exports, and prints where the map is.

    Example: twitchgraph demo --out demo-output/twitchgraph
    """
    if not (channels <= 100_000 and users <= 10_000_000 and snapshots <= 1_000):
        raise _fail(f"demo: at most 100,000 --channels, 10,000,000 --users and 1,000 "
                    f"--snapshots, got {channels:,}, {users:,} and {snapshots:,}")
    check_out_dir(out)  # before loading the simulator
    from twitchgraph.demo import DemoConfig, DemoError, run_demo

    config = DemoConfig(channels=channels, users=users, seed=seed, snapshots=snapshots,
                        time_scale=time_scale)
    try:
        result = run_demo(out, config=config,
                          echo=_out.print)
    except DemoError as exc:
        raise _fail(str(exc)) from None
    _out.print(f"[bold]open the map:[/bold] {escape(str(result.html))}", markup=True)
