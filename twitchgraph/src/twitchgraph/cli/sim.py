"""Commands of the `sim` group: a simulated Twitch for trying the tools offline."""

from __future__ import annotations

import math
import signal
import threading
from pathlib import Path

import typer

from twitchgraph.cli._app import app
from twitchgraph.errors import TwitchgraphError
from twitchgraph.sim.config import FAULTS  # names only: the simulator loads in the command

sim_app = typer.Typer(
    help="A simulated Twitch on loopback (id service, Helix, chat, IGDB, Steam, GQL) for tests "
    "and demos. Never used by the other commands unless you point them at it.",
    no_args_is_help=True,
)
app.add_typer(sim_app, name="sim")


def _fail(message: str) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def _check_port(port: int, option: str) -> None:
    if not 0 <= port <= 65535:
        raise _fail(f"sim serve: {option} {port} is not a port: use 0-65535 (0 = any free port)")


def _check_output_file(path: Path | None, option: str) -> None:
    """Refuse, before the simulator starts, an output file that cannot be written."""
    if path is None:
        return
    if path.is_dir():
        raise _fail(f"sim serve: {option} {path} is a folder: pass a file name")
    folder = next((p for p in path.parents if p.exists()), Path("."))
    if not folder.is_dir():
        raise _fail(f"sim serve: {option} {path}: {folder} is a file, not a folder")


@sim_app.command("serve")
def serve(
    channels: int = typer.Option(200, help="Channels in the simulated world."),
    users: int = typer.Option(5000, help="Viewer accounts (bots come on top)."),
    seed: int = typer.Option(0, help="Seed of the world; the same seed gives the same world."),
    time_scale: float = typer.Option(1.0, help="Simulated seconds per real second."),
    faults: str = typer.Option("", help="Comma-separated faults: " + ", ".join(FAULTS) + "."),
    port: int = typer.Option(0, help="HTTP port (0 = any free port)."),
    chat_port: int = typer.Option(0, help="Chat (IRC) port (0 = any free port)."),
    helix_points_per_minute: int = typer.Option(800, help="Helix rate-limit bucket."),
    chat_joins_per_10s: int = typer.Option(20, help="Chat JOINs allowed per 10 s."),
    ground_truth: Path | None = typer.Option(None, help="Write the hidden truth here (JSON)."),
    bot_list: Path | None = typer.Option(None, help="Write a published-style bot list CSV."),
    env_file: Path | None = typer.Option(None, help="Also write the variables as a .env file."),
    duration: float | None = typer.Option(None, "--for", help="Stop after this many seconds."),
) -> None:
    """Serve a simulated Twitch on 127.0.0.1 until Ctrl-C, printing the variables to export.

    Example: twitchgraph sim serve --channels 300 --seed 1 --faults duplicate_pages,loop_cursor
    """
    from twitchgraph.sim import start_simulator  # the simulator loads only for this command

    if not 0 < time_scale < math.inf:
        raise _fail(f"sim serve: --time-scale must be a number > 0 (1 = real time), got "
                    f"{time_scale}")
    if duration is not None and not 0 <= duration < math.inf:
        raise _fail(f"sim serve: --for must be a number of seconds >= 0 (leave it out to serve "
                    f"until Ctrl-C), got {duration}")
    if helix_points_per_minute < 1 or chat_joins_per_10s < 1:
        raise _fail("sim serve: --helix-points-per-minute and --chat-joins-per-10s must be >= 1")
    _check_port(port, "--port")
    _check_port(chat_port, "--chat-port")
    for path, option in ((ground_truth, "--ground-truth"), (bot_list, "--bot-list"),
                         (env_file, "--env-file")):
        _check_output_file(path, option)
    try:
        sim = start_simulator(
            channels=channels, users=users, seed=seed, time_scale=time_scale, faults=faults,
            http_port=port, chat_port=chat_port, helix_points_per_minute=helix_points_per_minute,
            chat_joins_per_10s=chat_joins_per_10s,
        )
    except TwitchgraphError as exc:  # e.g. an unknown fault, no channels
        raise _fail(f"sim serve: {exc}") from None
    except OSError as exc:
        raise _fail(f"sim serve: cannot listen ({exc.strerror or exc}); choose another --port "
                    "or --chat-port, or 0 for any free port") from None
    stop = threading.Event()
    stopped_by: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    in_main = threading.current_thread() is threading.main_thread()

    def on_signal(number: int, _frame: object) -> None:
        stopped_by.append(number)
        stop.set()

    try:
        if in_main:
            for s in previous:
                signal.signal(s, on_signal)
        env = sim.env()
        if ground_truth is not None:
            sim.write_ground_truth(ground_truth)
            typer.echo(f"# ground truth written to {ground_truth}")
        if bot_list is not None:
            sim.bot_list_csv(bot_list)
            typer.echo(f"# bot list written to {bot_list}")
        if env_file is not None:
            env_file.parent.mkdir(parents=True, exist_ok=True)  # as --ground-truth does
            env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
            typer.echo(f"# variables written to {env_file}")
        typer.echo("# simulated Twitch - fake credentials, loopback only; export these:")
        for key, value in env.items():
            typer.echo(f"export {key}={value}")
        active = ", ".join(sim.config.faults) or "none"
        typer.echo(f"# {channels} channels, {users} users, seed {seed}, time x{time_scale}, "
                   f"faults: {active} (available: {', '.join(FAULTS)})")
        typer.echo("# serving; Ctrl-C to stop", err=True)
        stop.wait(duration)
    finally:
        sim.stop()
        if in_main:
            for s, handler in previous.items():
                signal.signal(s, handler)
    stats = sim.stats()
    typer.echo(f"# stopped after {stats['http_requests']} HTTP requests "
               f"({stats['http_429']} x 429), {stats['chat_connections']} chat connections",
               err=True)
    if signal.SIGINT in stopped_by:
        raise typer.Exit(130)  # what shells expect after Ctrl-C
