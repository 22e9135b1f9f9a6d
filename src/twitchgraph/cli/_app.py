"""The Typer application every `twitchgraph` command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="twitchgraph",
    help="Twitch community graph: collect live streams and chatters, build a streamer graph "
    "weighted by shared viewers, find communities, lay out and export it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    # A callback keeps `app` a command group even while it has a single command.
    pass
