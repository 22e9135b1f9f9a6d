"""Commands of the `build` group: `bots import`, `enrich`, `build`, `report`.

Registered on the shared app by import. Each command parses its options, calls one library
function and turns domain errors into one red line on stderr with exit code 1.
"""

from __future__ import annotations

import functools
import logging
import re
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from twitchgraph.build.params import WEIGHTS, BuildParams
from twitchgraph.cli._app import DEFAULT_DB, DbOption, EnvFileOption, app
from twitchgraph.cli._app import env_file_or_exit as _env_file
from twitchgraph.cli._app import err as _err
from twitchgraph.cli._app import fail as _fail
from twitchgraph.cli._app import open_store_or_exit as _open_store
from twitchgraph.cli._app import out as _out
from twitchgraph.clock import as_utc
from twitchgraph.errors import TwitchgraphError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import duckdb

logger = logging.getLogger(__name__)

bots_app = typer.Typer(help="Bot lists applied when building the graph.", no_args_is_help=True)
app.add_typer(bots_app, name="bots")

# DuckDB's own default is 80 % of RAM; a shared machine is better served by a fixed cap
# (DuckDB spills to disk beyond it). The full two weeks build in ~30 s within 2-4 GB.
MemoryOption = typer.Option("4GB", "--memory-limit", help="DuckDB memory cap, e.g. 2GB.")
_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


def _memory_hint(*, window: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """DuckDB running out of memory anywhere in the command (setting --memory-limit, a query)
    becomes one line saying what to raise; `window`: the command also takes --since/--until."""

    def wrap(command: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> None:
            import duckdb

            try:
                command(*args, **kwargs)
            except duckdb.OutOfMemoryException:
                hint = " or narrow --since/--until" if window else ""
                raise _fail(f"DuckDB ran out of memory within --memory-limit "
                            f"{kwargs['memory_limit'].strip()}: raise --memory-limit "
                            f"(e.g. 8GB){hint}") from None

        return run

    return wrap


def _unwritable(out: Path, exc: OSError) -> typer.Exit:
    return _fail(f"cannot write to --out {out}: {exc.strerror or exc} ({exc.filename}); "
                 "pass a directory you can write")  # fmt: skip


@contextmanager
def _store(
    db: Path, *, must_exist: bool = True, memory_limit: str | None = None,
    read_only: bool = False,
) -> Iterator[duckdb.DuckDBPyConnection]:
    if must_exist and not db.exists():
        raise _fail(f"no store at {db}: run `twitchgraph collect --db {db}` first or pass --db")
    if memory_limit is not None and not _MEMORY.match(memory_limit):
        raise _fail(f"--memory-limit {memory_limit!r} is not a size like 512MB or 4GB")
    con = _open_store(db, read_only=read_only)
    if memory_limit is not None:
        con.execute(f"SET memory_limit = '{memory_limit.strip()}'")
    try:
        yield con
    finally:
        con.close()


@bots_app.command("import")
def bots_import(
    csv_path: Path = typer.Argument(..., help="CSV with a login, name or username column."),
    db: Path = DbOption,
) -> None:
    """Load a published bot list (any CSV with a login/name/username column) into the store.

    Example: twitchgraph bots import twitchinsights_bots.csv --db twitchgraph.duckdb
    """
    from twitchgraph.build.bots import BotListError, import_bot_csv

    with _store(db, must_exist=False) as con:
        try:
            added = import_bot_csv(con, csv_path)
        except BotListError as exc:
            raise _fail(str(exc)) from None
        total = con.execute("SELECT count(*) FROM bots").fetchall()[0][0]
    _out.print(f"{added} new bot logins from {csv_path} ({total} in the list)")


class EngineName(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


@contextmanager
def _build_input(
    db: Path, dataset: Path | None, engine: EngineName, spark_master: str, memory_limit: str
) -> Iterator[object]:
    """What `build_graph` reads: the store or a dataset, on DuckDB or Spark."""
    import tempfile

    from twitchgraph.build.engines import EngineError, SparkEngine, spark_session
    from twitchgraph.store.dataset import DatasetError, export_partitioned, open_dataset

    if memory_limit is not None and not _MEMORY.match(memory_limit):
        raise _fail(f"--memory-limit {memory_limit!r} is not a size like 512MB or 4GB")
    try:
        if engine is EngineName.duckdb and dataset is None:
            with _store(db, memory_limit=memory_limit, read_only=True) as con:
                yield con
        elif engine is EngineName.duckdb:
            con = open_dataset(dataset)
            con.execute(f"SET memory_limit = '{memory_limit.strip()}'")
            try:
                yield con
            finally:
                con.close()
        else:
            spark = spark_session(spark_master)
            with tempfile.TemporaryDirectory(prefix="twitchgraph-dataset-") as tmp:
                if dataset is None:
                    # Spark reads Parquet, not DuckDB files: hand it the store as a dataset.
                    _err.print(f"exporting {db} as a partitioned dataset for Spark")
                    with _store(db, read_only=True) as con:
                        export_partitioned(con, tmp)
                with SparkEngine(spark, dataset or tmp) as engine:
                    yield engine
    except (DatasetError, EngineError) as exc:
        raise _fail(str(exc)) from None


Weight = StrEnum("Weight", {name: name for name in WEIGHTS})


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return as_utc(value)
    except ValueError:
        raise _fail(f"{option} {value!r} is not an ISO time (e.g. 2022-05-02T10:00Z)") from None


@app.command("build")
@_memory_hint(window=True)
def build(
    out: Path = typer.Option(..., "--out", help="GRAPH_DIR to write the CSVs and build.json to."),
    db: Path = DbOption,
    since: str | None = typer.Option(None, help="Window start (ISO time, inclusive)."),
    until: str | None = typer.Option(None, help="Window end (ISO time, exclusive)."),
    every_nth: int = typer.Option(3, "--every-nth", help="Use every k-th snapshot."),
    language: str | None = typer.Option(None, help="Only streams in this language (e.g. it)."),
    min_live_minutes: float = typer.Option(60, help="Keep streamers live this many minutes."),
    min_viewer_mean: float = typer.Option(10, help="Keep streamers with this mean viewers."),
    min_chatter_mean: float = typer.Option(10, help="Keep streamers with this mean chatters."),
    min_weight: float = typer.Option(10, help="Keep edges whose weight reaches this."),
    weight: Weight = typer.Option(Weight.overlap, help="Edge weight."),
    min_game_minutes: float = typer.Option(30, help="Keep streamer-game edges of this length."),
    drop_suspected: bool = typer.Option(False, help="Also drop heuristically suspected bots."),
    bot_channel_share: float = typer.Option(
        0.1, help="Suspect accounts in more than this share of a snapshot's live channels."
    ),
    memory_limit: str = MemoryOption,
    engine: EngineName = typer.Option(
        EngineName.duckdb, "--engine", help="Run the build on DuckDB (embedded) or Apache "
        "Spark (pip install 'twitchgraph\\[spark]', Java 17+); the same SQL, the same answers."),
    dataset: Path | None = typer.Option(
        None, "--dataset", help="Read a partitioned dataset (`export-parquet --partitioned`, "
        "e.g. from several collector shards) instead of --db."),
    spark_master: str = typer.Option(
        "local[*]", "--spark-master", help="With --engine spark: the cluster's master URL, "
        "e.g. spark://host:7077 or yarn (Spark Connect: set SPARK_REMOTE=sc://host:15002)."),
) -> None:
    """Build the streamer graph (streamers, edges, played, games, raids, flows CSVs + build.json).

    Example: twitchgraph build --db twitchgraph.duckdb --out graph/ --language it --every-nth 3
             twitchgraph build --engine spark --dataset dataset/ --out graph/
    """
    from twitchgraph.build.definition import build_graph
    from twitchgraph.graphio import write_graph_dir

    if dataset is not None and not dataset.is_dir():
        raise _fail(f"--dataset {dataset} is not a folder: write one with "
                    "`twitchgraph export-parquet --partitioned`")
    if dataset is None and not db.exists():
        raise _fail(f"no store at {db}: run `twitchgraph collect --db {db}` first or pass --db")
    with (
        _build_input(db, dataset, engine, spark_master, memory_limit) as con,
        _err.status("building") as status,
    ):
        try:
            params = BuildParams(
                since=_when(since, "--since"),
                until=_when(until, "--until"),
                every_nth=every_nth,
                language=language,
                min_live_minutes=min_live_minutes,
                min_viewer_mean=min_viewer_mean,
                min_chatter_mean=min_chatter_mean,
                min_weight=min_weight,
                weight=weight.value,
                min_game_minutes=min_game_minutes,
                drop_suspected=drop_suspected,
                bot_channel_share=bot_channel_share,
            )
            result = build_graph(
                con, params, progress=lambda step: status.update(f"building: {step}")
            )
        except TwitchgraphError as exc:
            raise _fail(str(exc)) from None
    try:
        write_graph_dir(result, out)
    except OSError as exc:
        raise _unwritable(out, exc) from None
    removed, warnings = result.build["removed_bots"], result.build["warnings"]
    _out.print(
        f"{len(result.streamers)} streamers, {len(result.edges)} edges, "
        f"{len(result.played)} played edges, {len(result.games)} games, "
        f"{len(result.raids)} raid pairs, {len(result.flows)} flow pairs -> {out} "
        f"(bots removed: " + ", ".join(f"{k} {v['users']}" for k, v in removed.items()) + ")"
        + ("; warning: a filter emptied a table, see below" if warnings else "")
    )
    for warning in result.build["warnings"]:
        _err.print(f"[yellow]warning:[/yellow] {escape(warning)}", markup=True)
    gaps = result.build["flows"]["gaps_skipped"]
    if gaps:
        _err.print(f"{gaps} gap(s) in the collection (snapshots over "
                   f"{result.build['flows']['gap_minutes']:g} min apart) are not counted as "
                   "stream ends in flows.csv")
    partial = result.build["snapshots"].get("partial")
    if partial:
        _err.print(f"{partial} slot(s) left out: not every collector shard completed them "
                   f"(listed in {out / 'build.json'})")


class ReportKind(StrEnum):
    quality = "quality"
    explore = "explore"


@app.command("report")
@_memory_hint(window=False)
def report(
    kind: ReportKind = typer.Argument(..., help="quality (the store) or explore (store + graph)."),
    out: Path = typer.Option(..., "--out", help="Directory for the HTML page and figures."),
    db: Path | None = typer.Option(
        None, "--db", help=f"The store (default {DEFAULT_DB} when it exists)."
    ),
    graph: Path | None = typer.Option(None, "--graph", help="A GRAPH_DIR from `build`."),
    bot_channel_share: float = typer.Option(0.1, help="Share for the suspected-bot table."),
    memory_limit: str = MemoryOption,
) -> None:
    """Write an HTML report (figures embedded, opens offline) and its figures as PNG files.

    Example: twitchgraph report quality --db twitchgraph.duckdb --out reports/
             twitchgraph report explore --db twitchgraph.duckdb --graph graph/ --out reports/
    """
    from twitchgraph.reports import write_explore_report, write_quality_report
    from twitchgraph.store.spool import Spool

    if db is None and (kind is ReportKind.quality or graph is None or DEFAULT_DB.exists()):
        db = DEFAULT_DB
    try:
        if kind is ReportKind.quality:
            with _store(db, memory_limit=memory_limit, read_only=True) as con:
                page = write_quality_report(con, out, bot_channel_share=bot_channel_share,
                                            set_aside=Spool(db).set_aside())
        elif db is None:
            page = write_explore_report(None, graph, out)
        else:
            with _store(db, memory_limit=memory_limit, read_only=True) as con:
                page = write_explore_report(con, graph, out)
    except TwitchgraphError as exc:
        # e.g. a --graph that is not a GRAPH_DIR, a --bot-channel-share outside (0, 1]
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _unwritable(out, exc) from None
    _out.print(f"wrote {page}")


class SocialSource(StrEnum):
    gql = "gql"


@app.command("enrich")
def enrich(
    db: Path = DbOption,
    social_source: SocialSource | None = typer.Option(
        None, "--social-source",
        help="Also read each channel's About panel via Twitch's web GQL (undocumented).",
    ),  # fmt: skip
    steam: bool = typer.Option(True, "--steam/--no-steam", help="Match games to Steam."),
    igdb: bool = typer.Option(True, "--igdb/--no-igdb", help="Fetch IGDB game metadata."),
    match_threshold: float = typer.Option(
        85.0, "--match-threshold", help="Lowest fuzzy score (0-100) accepted for Steam titles."
    ),
    strict: bool = typer.Option(False, help="Exit 1 when any source failed."),
    env_file: Path | None = EnvFileOption,
) -> None:
    """Enrich the store: Helix profiles and games, IGDB, Steam, social links (cached).

    A rerun asks only for what is missing; a failing source is reported and the others go on.
    Credentials come from TWITCH_CLIENT_ID / TWITCH_CLIENT_SECRET (environment, or .env or
    --env-file); service URLs from the TWITCH_*_URL / IGDB_API_URL / STEAM_*_URL variables.

    Example: twitchgraph enrich --db twitchgraph.duckdb --social-source gql
    """
    import httpx

    from twitchgraph.enrich import run_enrichment
    from twitchgraph.twitch.credentials import load_credentials, read_env
    from twitchgraph.twitch.endpoints import Endpoints
    from twitchgraph.twitch.errors import MissingCredentials

    if not 0 <= match_threshold <= 100:
        raise _fail(f"--match-threshold must be between 0 and 100, got {match_threshold}")
    try:  # a malformed .env or service URL
        env = read_env(dotenv_path=_env_file(env_file))
        endpoints = Endpoints.from_env(env)
    except TwitchgraphError as exc:
        raise _fail(str(exc)) from None
    try:
        credentials = load_credentials(env, dotenv_path=None)
    except MissingCredentials as exc:
        _err.print(f"[yellow]warning:[/yellow] {escape(str(exc))}; Helix and IGDB are skipped",
                   markup=True)
        credentials = None

    def show(report) -> None:
        colour = "red" if report.error else "green"
        _out.print(f"[{colour}]{escape(report.summary())}[/{colour}]", markup=True)

    from rich.progress import Progress

    tasks: dict[str, int] = {}

    def advance(source: str, done: int, total: int) -> None:
        if source not in tasks:
            tasks[source] = bar.add_task(source, total=total)
        bar.update(tasks[source], completed=done, total=total)

    with (
        _store(db) as con,
        httpx.Client(timeout=30.0) as http,
        Progress(console=_err, transient=True) as bar,
    ):
        reports = run_enrichment(
            con,
            endpoints=endpoints,
            credentials=credentials,
            http=http,
            steam=steam,
            igdb=igdb,
            social_source=social_source.value if social_source else None,
            match_threshold=match_threshold,
            gql_client_id=env.get("TWITCH_GQL_CLIENT_ID"),
            on_report=show,
            progress=advance,
        )
    failed = [r for r in reports if r.error]
    if failed and (strict or len(failed) == len(reports)):
        raise _fail(f"{len(failed)} of {len(reports)} enrichment sources failed")
