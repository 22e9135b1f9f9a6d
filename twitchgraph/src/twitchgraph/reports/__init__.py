"""HTML reports: data quality of a store, exploration of a store and a built graph."""

from __future__ import annotations

from twitchgraph.reports.explore import write_explore_report
from twitchgraph.reports.quality import write_quality_report

__all__ = ["write_explore_report", "write_quality_report"]
