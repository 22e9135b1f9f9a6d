"""The demo's measured time: `twostream demo --help`, the README and the docs say the same."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from twostream.cli import app

PROJECT = Path(__file__).resolve().parents[1]
DOCS = PROJECT.parent / "docs" / "twostream"


def _prose(text: str) -> str:
    # Help output and Markdown both wrap lines anywhere; rich draws box edges beside them.
    return " ".join(text.replace("│", " ").split())


def test_demo_time_is_the_same_measurement_everywhere():
    help_text = _prose(CliRunner().invoke(app, ["demo", "--help"], terminal_width=200).output)
    measured = re.search(
        r"about \d+ (?:seconds|minutes?) on [^;]*?, measured \d{4}-\d{2}-\d{2}", help_text)
    assert measured, help_text
    # Where a user reads how long the demo takes, and the page that records the run.
    for page in (PROJECT / "README.md", DOCS / "tutorial.md", DOCS / "benchmarks.md"):
        assert measured[0] in _prose(page.read_text(encoding="utf-8")), page
