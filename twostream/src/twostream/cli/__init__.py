"""`twostream` command line. Each module in this package registers its commands on `app`."""

from __future__ import annotations

from twostream.cli import data as _data  # noqa: F401  (synth, extract)
from twostream.cli import model as _model  # noqa: F401  (train, evaluate, fuse, predict, export, demo)
from twostream.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
