"""`twitchgraph` command line. Each module in this package registers its commands on `app`."""

from __future__ import annotations

from twitchgraph.cli import build as _build  # noqa: F401  (bots, enrich, build, report)
from twitchgraph.cli import collect as _collect  # noqa: F401  (collect, import, export-parquet)
from twitchgraph.cli import graph as _graph  # noqa: F401  (communities, layout, export, query, ...)
from twitchgraph.cli import sim as _sim  # noqa: F401  (sim serve)
from twitchgraph.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
