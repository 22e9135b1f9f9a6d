"""Commands of the `graph` group; registered on the shared app by import."""

from __future__ import annotations

from twitchgraph.cli._app import app  # noqa: F401
