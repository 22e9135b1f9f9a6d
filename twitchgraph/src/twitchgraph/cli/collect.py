"""Commands of the `collect` group: `collect`, `status`, `import`, `export-parquet`.

Registered on the shared app by import. Each command parses its options, calls one library
function and turns domain errors into one red line on stderr with exit code 1. Secrets are
never printed: credentials are only ever passed to the token request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.logging import RichHandler
from rich.markup import escape

from twitchgraph.cli._app import DbOption, EnvFileOption, app
from twitchgraph.cli._app import env_file_or_exit as _env_file
from twitchgraph.cli._app import err as _err
from twitchgraph.cli._app import fail as _fail
from twitchgraph.cli._app import open_store_or_exit as _open_store
from twitchgraph.cli._app import out as _out
from twitchgraph.errors import TwitchgraphError


@contextmanager
def _logging(verbose: bool) -> Iterator[None]:
    """Show twitchgraph's log records on stderr for the command's duration, then restore."""
    logger = logging.getLogger("twitchgraph")
    handler = RichHandler(console=_err, show_path=False, markup=False)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _duration(text: str | None, option: str) -> float | None:
    from twitchgraph.durations import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except TwitchgraphError as exc:
        raise _fail(f"{option}: {exc}") from None


@app.command("collect")
def collect(
    once: bool = typer.Option(False, "--once", help="Take one snapshot and exit (for cron)."),
    every: str | None = typer.Option(None, "--every", help="Take a snapshot every DURATION "
                                     "(e.g. 10m) and stay joined to chat in between."),
    for_: str | None = typer.Option(None, "--for", help="With --every: stop after DURATION "
                                    "(e.g. 24h). Default: until Ctrl-C / SIGTERM."),
    db: Path = DbOption,
    min_viewers: int = typer.Option(0, "--min-viewers", min=0, max=2**31 - 1,
                                    help="Ignore streams with fewer viewers."),
    top: int | None = typer.Option(None, "--top", min=1, max=1_000_000,
                                   help="Only the N most viewed live channels."),
    language: str | None = typer.Option(None, "--language", help="Stream language, e.g. it."),
    game_id: list[str] = typer.Option([], "--game-id", help="Only this game/category id "
                                      "(repeatable)."),
    window: str = typer.Option("60s", "--window", help="How long to listen to chat per "
                               "snapshot."),
    users: bool = typer.Option(True, "--users/--no-users", help="Fetch broadcaster profiles."),
    channels_per_connection: int = typer.Option(100, "--channels-per-connection", min=1,
                                                max=10_000,
                                                help="Chat channels one connection may hold."),
    max_connections: int = typer.Option(10, "--max-connections", min=1, max=1_000,
                                        help="Chat connections to open at most; more live "
                                        "channels than this allows are rotated through."),
    joins_per_10s: int = typer.Option(20, "--joins-per-10s", min=1, max=100_000,
                                      help="Chat JOIN rate limit."),
    mix_endpoints: bool = typer.Option(
        False, "--mix-endpoints", help="Add to a store that holds snapshots from other "
        "endpoints (Twitch's in a simulator's store, or the other way round); refused "
        "without it, as a build cannot tell them apart."),
    env_file: Path | None = EnvFileOption,
    shard: str | None = typer.Option(
        None, "--shard", help="K/N: of the live channels (after --top and the other "
        "filters), collect only those whose login hashes to shard K of N (each shard its "
        "own --db; needs --every: snapshots on the schedule grid, so the N shards' "
        "snapshots of one slot form one)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    """Snapshot live streams (Helix) and who is in their chat (anonymous IRC) into the store.

    Needs TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET in the environment, .env or --env-file.
    `--env-file` reads the file `sim serve --env-file` writes, to collect from the simulator;
    the first line says so whenever the endpoints are not Twitch's, and each snapshot
    records where it came from. The first snapshot takes about one second per two channels
    (Twitch's JOIN limit: 20 per 10 s).

    Prints one summary line per snapshot.

    Ctrl-C / SIGTERM stop cleanly: the snapshot under way is discarded whole. SIGHUP (a
    closed terminal) is ignored: the collection goes on.

    The store stays free for reading commands while this runs: each finished snapshot is
    spooled to DB.spool/ and committed whenever no reader holds the store. Exit code 1 when
    no snapshot completed, 130 after Ctrl-C.

    Several machines (or addresses) share the chat load with --shard: run
    `collect --shard K/N --db shardK.duckdb` for K = 1..N with the same --every, then
    `export-parquet --partitioned DATASET --db shardK.duckdb` from each and
    `build --dataset DATASET`, which uses the slots all N shards completed.

    Example: twitchgraph collect --every 10m --for 24h --language it --window 60s
    """
    from twitchgraph.collect.options import ChatLimits, CollectOptions
    from twitchgraph.collect.run import run_collector
    from twitchgraph.collect.sharding import parse_shard

    env_file = _env_file(env_file)
    if once and every:
        raise _fail("use either --once or --every, not both")
    if for_ and not every:
        raise _fail("--for needs --every (e.g. --every 10m --for 24h)")
    try:
        options = CollectOptions(
            top=top, min_viewers=min_viewers, language=language, game_ids=tuple(game_id),
            window_s=_duration(window, "--window") or 0.0, every_s=_duration(every, "--every"),
            for_s=_duration(for_, "--for"), fetch_users=users,
            shard=parse_shard(shard) if shard is not None else None,
        )
    except TwitchgraphError as exc:
        raise _fail(str(exc)) from None
    limits = ChatLimits(channels_per_connection=channels_per_connection,
                        max_connections=max_connections, joins_per_window=joins_per_10s,
                        join_window_s=10.0)
    try:
        with _logging(verbose):
            run = run_collector(db, options, dotenv_path=env_file, chat_limits=limits,
                                console=_err, mix_endpoints=mix_endpoints)
    except TwitchgraphError as exc:  # e.g. missing credentials, a malformed TWITCH_CHAT_HOST
        raise _fail(str(exc)) from None
    except OSError as exc:  # e.g. a --db whose folder is a file, an unreadable --env-file
        raise _fail(str(exc)) from None
    waiting = (f"; {run.spooled} wait in {db}.spool for the store (the next collect commits "
               "them)" if run.spooled else "")
    missed = f", {run.slots_missed} slot(s) missed" if run.slots_missed else ""
    _out.print(f"{run.complete} of {len(run.summaries)} snapshot(s) complete in {db}"
               f"{missed}{waiting}")
    if run.interrupted == "SIGINT":
        raise typer.Exit(130)  # what shells expect after Ctrl-C
    if not run.complete:
        raise _fail("no snapshot completed (the reasons are above; `twitchgraph status "
                    f"--db {db}` shows them too)")


@app.command("status")
def status(
    db: Path = DbOption,
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """How the collection is going; works while the collector runs.

    Failures first: failed snapshots with their reasons, slots missed, snapshots waiting in
    the spool. Then the collector's run (snapshots complete / failed / missed against the
    schedule, Helix requests, 429s and rate-limit waits, chat connections and channels held)
    and the store (snapshots, the last one's counts, rooms seen only through message
    senders). `report quality` is the deep view. Exit code 1 when the collector is gone
    (it stopped without finishing, e.g. killed).

    Example: twitchgraph status --db twitchgraph.duckdb
    """
    import json

    from twitchgraph.collect.status import collection_status, status_lines
    from twitchgraph.store.db import StoreError

    try:
        result = collection_status(db)
    except StoreError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        for line, style in status_lines(result):
            _out.print(f"[{style}]{escape(line)}[/{style}]" if style else line,
                       markup=bool(style))
    if (result["collector"] or {}).get("died"):
        raise typer.Exit(1)  # for scripts and monitors: the collection is not going on


@app.command("import")
def import_json(
    json_dir: Path = typer.Argument(..., help="Directory of JSON snapshot files."),
    db: Path = DbOption,
    interval: str | None = typer.Option(None, "--interval", help="Collection interval of the "
                                        "dump (e.g. 5m); default the median gap."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 if any file was bad."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each bad file."),
) -> None:
    """Import JSON snapshot dumps (one file per snapshot) into the store; re-runs are no-ops.

    Accepted shapes (details in twitchgraph.collect.importer):

    Helix shape: {"date_time": "2022-05-02T10:00:00Z", "streams": [Helix stream objects],
    "chatters": {"channel_login": ["user_login", ...]}}

    Original per-stream shape: {"channel_login": {"chatters": [...], "game_name": ...,
    "viewer_count": ..., "date_time": ...}}

    A file may hold several snapshots: a JSON array or JSON Lines (e.g. from mongoexport).

    Bad files are reported and skipped.

    Example: twitchgraph import dumps/ --db twitchgraph.duckdb
    """
    from tqdm import tqdm

    from twitchgraph.collect.importer import import_json_dir

    interval_s = _duration(interval, "--interval")
    if not json_dir.is_dir():
        raise _fail(f"{json_dir} is not a directory of JSON snapshot files")
    files = sum(1 for _ in json_dir.rglob("*.json"))
    if files == 0:
        raise _fail(f"no *.json files in {json_dir}")
    con = _open_store(db)
    try:
        with _logging(verbose), tqdm(total=files, unit="file", desc="import",
                                     disable=None) as bar:
            report = import_json_dir(con, json_dir, interval_s=interval_s,
                                     on_file=lambda _name, _outcome: bar.update(1))
    finally:
        con.close()
    for name, reason in report.bad:
        _err.print(f"[yellow]skipped[/yellow] {escape(f'{name}: {reason}')}", markup=True)
    _out.print(report.line())
    if report.bad and (strict or not (report.imported or report.duplicates)):
        raise typer.Exit(1)


@app.command("export-parquet")
def export_parquet(
    out_dir: Path = typer.Argument(..., help="Directory to write <table>.parquet files to."),
    db: Path = DbOption,
    partitioned: bool = typer.Option(
        False, "--partitioned", help="Write a Hive-partitioned dataset (OUT/<table>/"
        "date=YYYY-MM-DD/...) that Spark and other engines read, and `build --dataset` too."),
    writer: str | None = typer.Option(
        None, "--writer", help="With --partitioned: this store's name in the dataset "
        "(default: the store's file name); each writer replaces only its own files."),
) -> None:
    """Write every table of the store as Parquet (complete snapshots only) for other tools.

    With --partitioned, OUT is a dataset shared by several stores (one per collector shard):
    each export replaces its own files only, and the schema version is in OUT/_twitchgraph.json.

    Example: twitchgraph export-parquet parquet/ --db twitchgraph.duckdb
             twitchgraph export-parquet --partitioned dataset/ --db shard1.duckdb
    """
    import duckdb

    from twitchgraph.store.dataset import DatasetError, export_partitioned
    from twitchgraph.store.db import export_parquet as export

    if writer is not None and not partitioned:
        raise _fail("--writer needs --partitioned")
    con = _open_store(db, read_only=True)
    try:
        if partitioned:
            name = writer or re.sub(r"[^A-Za-z0-9_-]", "_", db.stem)[:64] or "store"
            counts = export_partitioned(con, out_dir, writer=name)
        else:
            counts = export(con, out_dir)
    except DatasetError as exc:
        raise _fail(str(exc)) from None
    except (OSError, duckdb.IOException) as exc:
        raise _fail(f"cannot write Parquet files to {out_dir}: {str(exc).splitlines()[0]}"
                    ) from None
    finally:
        con.close()
    for table, rows in counts.items():
        where = out_dir / table if partitioned else out_dir / (table + ".parquet")
        _out.print(f"{where}: {rows:,} rows")
