"""The Typer application every `twostream` command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="twostream",
    help="Two-stream action recognition on HMDB51: extract frames and flow, train, evaluate, "
    "fuse, predict.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one red line on stderr; return the exit (code 1) to raise."""
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@app.callback()
def _root() -> None:
    # A callback keeps `app` a command group even while it has a single command.
    pass
