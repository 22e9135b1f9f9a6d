"""The Typer application every `twitchgraph` command module registers on, and the pieces the
store-reading command groups share: the `--db` option, the consoles and the one-line failure."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    """Refuse, before any work, an output folder that is a file (or lies under one) or that
    cannot be written; the folder is created if missing."""
    clash = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if clash is not None:
        where = "" if clash == out else f" ({clash} is a file)"
        raise fail(f"{option} {out} is not a folder{where}: pass a folder, which is created "
                   "if missing")
    try:
        out.mkdir(parents=True, exist_ok=True)
        _probe_write(out)
    except OSError as exc:
        raise fail(f"cannot write to {option} {out}: {exc.strerror or exc}; pass a folder "
                   "you can write") from None


def check_graph_dir_writable(graph_dir: Path, writes: str) -> None:
    """Refuse, before any work, a GRAPH_DIR the command could read but not write back to
    (a missing one is left to the reader, which says what a GRAPH_DIR is)."""
    if not graph_dir.is_dir():
        return
    try:
        _probe_write(graph_dir)
    except OSError as exc:
        raise fail(f"cannot write to GRAPH_DIR {graph_dir}: {exc.strerror or exc}; this "
                   f"command writes {writes} there") from None


def _probe_write(folder: Path) -> None:
    # Trying is the only sure test: os.access says yes to root on a read-only or immutable
    # folder.
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".twitchgraph-probe-")
    os.close(fd)
    os.unlink(probe)


def exit_130_on_interrupt(group: typer.Typer) -> None:
    """Make Ctrl-C exit 130 in every command of `group`, also when it lands in a DuckDB
    query (DuckDB turns it into InterruptException, or in 2.0 into a RuntimeError "Query
    interrupted", which would otherwise be an error with a traceback)."""
    for info in group.registered_commands:
        if info.callback is not None and not getattr(info.callback, "_exits_130", False):
            info.callback = _interruptible(info.callback)
    for sub in group.registered_groups:
        if isinstance(sub.typer_instance, typer.Typer):
            exit_130_on_interrupt(sub.typer_instance)


def _interruptible(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        import duckdb

        with _noting_ctrl_c() as pressed:
            try:
                return command(*args, **kwargs)
            except (KeyboardInterrupt, duckdb.InterruptException):
                pass
            except typer.Exit as done:
                # A failure the Ctrl-C caused (e.g. a store that could not open, "Query
                # interrupted") has said why already; it still ends as an interrupt.
                if not pressed or done.exit_code in (0, 130):
                    raise
            except Exception:
                if not pressed:
                    raise
        err.print("interrupted")
        raise typer.Exit(130) from None  # what shells expect after Ctrl-C

    run._exits_130 = True  # type: ignore[attr-defined]
    return run


@contextlib.contextmanager
def _noting_ctrl_c() -> Iterator[list[int]]:
    """Ctrl-C raises KeyboardInterrupt as usual, and is noted in the list yielded, so that an
    exception a library raised in its place (DuckDB's "Query interrupted") reads as one.
    Where SIGINT is ignored (a background job) or not ours to take (not the main thread),
    nothing changes."""
    pressed: list[int] = []

    def note(signum: int, frame: object) -> None:
        pressed.append(signum)
        raise KeyboardInterrupt

    try:
        taken = signal.getsignal(signal.SIGINT) is signal.default_int_handler
        if taken:
            signal.signal(signal.SIGINT, note)
    except ValueError:  # not the main thread
        taken = False
    try:
        yield pressed
    finally:
        # Put Python's own back, unless the command changed it meanwhile (asyncio's stop
        # handlers give back the default themselves).
        if taken and signal.getsignal(signal.SIGINT) is note:
            signal.signal(signal.SIGINT, signal.default_int_handler)


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
