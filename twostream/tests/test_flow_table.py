"""The measured table of flow settings: the same figures in flow/table.py, --help and the docs."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from twostream.cli import app
from twostream.flow.presets import PRESET_SCALES, TVL1_PRESETS
from twostream.flow.table import (
    PRESET_TABLE,
    PRESET_TABLE_SOURCE,
    FlowTiming,
    format_flow_table,
)

# The docs pages that show the table: where users choose a flow, and the benchmarks.
DOCS = Path(__file__).resolve().parents[2] / "docs" / "twostream"
TABLE_PAGES = (DOCS / "guide" / "flow.md", DOCS / "benchmarks.md")


def test_docs_and_help_show_the_stored_table():
    table = format_flow_table(PRESET_TABLE)
    # The date and the load the figures were measured at travel with the table.
    date = re.search(r"\d{4}-\d{2}-\d{2}", PRESET_TABLE_SOURCE)[0]
    load = re.search(r"load average [\d-]+", PRESET_TABLE_SOURCE)[0]
    for page in TABLE_PAGES:
        text = page.read_text(encoding="utf-8")
        assert table in text, page
        prose = " ".join(text.split())  # the pages wrap their lines anywhere
        assert date in prose and load in prose, page
        assert "not against ground truth" in prose, page
    help_text = CliRunner().invoke(app, ["extract", "--help"], terminal_width=200).output
    help_lines = [line.strip(" │") for line in help_text.splitlines()]
    for line in table.splitlines():
        assert line in help_lines, line
    assert "not against ground truth" in " ".join(help_text.split())


def test_every_preset_is_in_the_table_and_the_table_names_real_options():
    options = {r.option for r in PRESET_TABLE}
    assert {f"--tvl1-preset {name}" for name in TVL1_PRESETS} <= options
    assert set(PRESET_SCALES) == set(TVL1_PRESETS)
    default = next(r for r in PRESET_TABLE if r.option == "--tvl1-preset default")
    assert (default.speedup, default.epe_mean, default.epe_worst) == (1.0, 0.0, 0.0)
    for r in PRESET_TABLE:  # speed-up is relative to default TV-L1 in the same run
        assert abs(r.speedup - default.ms_per_pair / r.ms_per_pair) < 0.06 * r.speedup
        assert r.epe_worst >= r.epe_mean


def test_format_flow_table_aligns_columns():
    text = format_flow_table([FlowTiming("a", 300.0, 1.0, 0.0, 0.0),
                              FlowTiming("--flow dis", 3.0, 100.0, 6.5, 16.87)])
    head, a, dis = text.splitlines()
    assert head.split() == ["setting", "ms/pair", "speed-up", "EPE", "mean", "EPE", "worst"]
    assert a.endswith("0.00 px") and dis.endswith("16.87 px") and len(a) == len(dis)
    assert dis.split()[2:4] == ["3", "100.0x"]
