"""`twitchgraph` command line. Each module in this package registers its commands on `app`."""

from __future__ import annotations

from twitchgraph.cli._app import app, exit_130_on_interrupt

# Importing registers the commands; `--help` lists them in this order, the pipeline's.
# isort: off
from twitchgraph.cli import collect as _collect  # noqa: F401,E402  (collect, import, export-parquet)
from twitchgraph.cli import build as _build  # noqa: F401,E402  (bots, enrich, build, report)
from twitchgraph.cli import graph as _graph  # noqa: F401,E402  (communities, layout, export, ...)
from twitchgraph.cli import sim as _sim  # noqa: F401,E402  (sim serve)
from twitchgraph.cli import serve as _serve  # noqa: F401,E402  (serve)
# isort: on

exit_130_on_interrupt(app)

__all__ = ["app", "main"]


def main() -> None:
    app()
