"""The Typer application every `twitchgraph` command module registers on, and the pieces the
store-reading command groups share: the `--db` option, the consoles and the one-line failure."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    import duckdb

app = typer.Typer(
    name="twitchgraph",
    help="Twitch community graph: collect live streams and chatters, build a streamer graph "
    "weighted by shared viewers, find communities, lay out and export it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_DB = Path("twitchgraph.duckdb")
DbOption = typer.Option(DEFAULT_DB, "--db", help="The store (DuckDB file).")
# markup=False: streamer, game and path names are printed as they are ("[/b]" in a game name
# would otherwise be read as a closing tag and crash the command). Literal markup is opted
# into per call, with the data escaped.
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
out = Console(highlight=False, soft_wrap=True, markup=False)


@app.callback()
def _root() -> None:
    # A callback keeps `app` a command group even while it has a single command.
    pass


def fail(message: str) -> typer.Exit:
    """Print one red error line on stderr; the caller raises the returned exit (code 1).

    The message is data (paths, names from Twitch), so it is escaped rather than read as markup.
    """
    err.print(f"[red]error:[/red] {escape(message)}", markup=True)
    return typer.Exit(1)


def notice(line: str) -> None:
    """One yellow line on stderr (e.g. the store was migrated)."""
    err.print(f"[yellow]{escape(line)}[/yellow]", markup=True)


def open_store_or_exit(db: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """The store at `db` (read-only for reading commands, which then run beside a collector);
    a busy, newer, foreign or non-DuckDB file is one red line, not a traceback."""
    from twitchgraph.store.db import StoreError, open_store

    try:
        return open_store(db, read_only=read_only, notify=notice)
    except StoreError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:  # e.g. a --db whose folder is a file
        raise fail(f"cannot open the store {db}: {exc}") from None


def check_out_dir(out: Path, option: str = "--out") -> None:
    """Refuse, before any work, an output folder that is a file (or lies under one)."""
    clash = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if clash is not None:
        where = "" if clash == out else f" ({clash} is a file)"
        raise fail(f"{option} {out} is not a folder{where}: pass a folder, which is created "
                   "if missing")


EnvFileOption = typer.Option(
    None, "--env-file", help="A .env file with TWITCH_CLIENT_ID / TWITCH_CLIENT_SECRET and "
    "service URLs; the environment wins over it. Default: .env when it exists.",
)


def env_file_or_exit(env_file: Path | None) -> Path:
    """The .env file to read: `env_file` when given (it must exist), else .env if present."""
    if env_file is None:
        return Path(".env")  # read only when it exists
    if not env_file.is_file():
        raise fail(f"--env-file {env_file} is not a file: pass an existing .env file, or leave "
                   "the option out to use .env when it exists")
    return env_file
