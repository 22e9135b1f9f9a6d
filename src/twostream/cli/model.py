"""Commands of the `model` group; registered on the shared app by import."""

from __future__ import annotations

from twostream.cli._app import app  # noqa: F401
