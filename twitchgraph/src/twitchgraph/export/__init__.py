"""Exports of a GRAPH_DIR: Kùzu database, Neo4j import files, GEXF, PNG, offline HTML map.

Each exporter takes the GRAPH_DIR tables (`twitchgraph.graphio.GraphData`) and an output
directory and returns an `Exported` record (what it wrote, in one line); `export_graph` runs
the ones asked for. Colours by community are shared by GEXF, PNG and the web map, so the same
community has the same colour everywhere.
"""

from __future__ import annotations

import colorsys
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from twitchgraph.errors import BadValue
from twitchgraph.graphio import GraphData, read_graph_dir

__all__ = [
    "OTHER_COLOR",
    "TARGETS",
    "Exported",
    "community_colors",
    "export_graph",
    "require_columns",
]

logger = logging.getLogger(__name__)

TARGETS = ("db", "neo4j", "gexf", "png", "html")

@dataclass(frozen=True)
class Exported:
    """One export: its target name, the main path written and a one-line description."""

    target: str
    path: Path
    message: str


# Streamers of communities too small for a colour of their own ("other", see `export.mapview`).
OTHER_COLOR = "#6b7280"


def community_colors(n: int) -> list[str]:
    """`n` distinct hex colours, one per shown community (0 = largest), never grey.

    Glasbey's categorical palette (colorcet, CC-BY 4.0): colours picked one by one to be as far
    to the eye from all the earlier ones as possible. Muted and dark ones are left out (HSV
    saturation < 0.4 or value < 0.6): they read as the grey of "other" on the dark maps. That
    leaves 145 colours; past them they repeat.
    """
    vivid = _vivid_palette()
    return [vivid[i % len(vivid)] for i in range(n)]


@functools.cache
def _vivid_palette() -> list[str]:
    import colorcet  # slow to import (it registers matplotlib colormaps): only when drawing

    return ["#" + "".join(f"{round(v * 255):02x}" for v in rgb)
            for rgb in colorcet.glasbey_bw_minc_20_minl_30
            if (hsv := colorsys.rgb_to_hsv(*rgb))[1] >= 0.4 and hsv[2] >= 0.6]


def require_columns(data: GraphData, columns: list[str], *, target: str) -> None:
    """Refuse to export `target` when `streamers.csv` lacks columns the export needs."""
    missing = [c for c in columns if c not in data.streamers.columns
               or data.streamers[c].isna().all()]
    if missing:
        steps = []
        if "community" in missing:
            steps.append("`twitchgraph communities GRAPH_DIR`")
        if {"x", "y", "size"} & set(missing):
            steps.append("`twitchgraph layout GRAPH_DIR`")
        raise BadValue(
            f"--to {target} needs {', '.join(missing)} in streamers.csv: run "
            f"{' and '.join(steps) or 'the build again'} first."
        )


def export_graph(
    graph_dir: str | os.PathLike,
    targets: list[str] | tuple[str, ...],
    *,
    out_dir: str | os.PathLike | None = None,
) -> list[Exported]:
    """Run the exports named in `targets` ("all" means every one) for a GRAPH_DIR.

    Files go to `out_dir` (default: the GRAPH_DIR itself). Outputs of the other targets that
    are older than the GRAPH_DIR's tables are removed, each with an `Exported` record saying
    so, rather than left to show an old graph beside the new one. Raises ValueError for an
    unknown target or a GRAPH_DIR missing communities/layout that an export needs.
    """
    unknown = [t for t in targets if t not in (*TARGETS, "all")]
    if unknown:
        raise BadValue(f"unknown export {unknown[0]!r}: choose from {', '.join(TARGETS)} or all")
    wanted = list(TARGETS) if "all" in targets else list(dict.fromkeys(targets))
    data = read_graph_dir(graph_dir)
    out = Path(out_dir) if out_dir is not None else Path(graph_dir)
    out.mkdir(parents=True, exist_ok=True)
    done: list[Exported] = []
    for target in wanted:
        done.append(_EXPORTERS[target](data, out))
        logger.info(done[-1].message)
    from twitchgraph.export.stale import remove_stale_outputs  # it imports Exported from here

    return done + remove_stale_outputs(Path(graph_dir), out, keep=wanted)


def _db(data: GraphData, out: Path) -> Exported:
    from twitchgraph.export.kuzu_db import export_kuzu

    r = export_kuzu(data, out)
    return Exported("db", r.path, f"db: wrote Kùzu database {r.path} ({r.streamers} streamers, "
                    f"{r.games} games, {r.overlaps} overlaps, {r.played} played, "
                    f"{r.raids} raid pairs, {r.flows} flow pairs)")


def _neo4j(data: GraphData, out: Path) -> Exported:
    from twitchgraph.export.neo4j import export_neo4j

    r = export_neo4j(data, out / "neo4j")
    return Exported("neo4j", r, f"neo4j: wrote neo4j-admin import files, load.cypher and "
                    f"queries.cypher to {r}/")


def _gexf(data: GraphData, out: Path) -> Exported:
    from twitchgraph.export.gexf import export_gexf

    r = export_gexf(data, out / "graph.gexf")
    return Exported("gexf", r, f"gexf: wrote GEXF 1.3 with positions, sizes and community "
                    f"colours to {r}")


def _png(data: GraphData, out: Path) -> Exported:
    from twitchgraph.export.png import export_png

    r = export_png(data, out / "graph.png")
    return Exported("png", r, f"png: wrote the map picture to {r}")


def _html(data: GraphData, out: Path) -> Exported:
    from twitchgraph.export.html import export_html

    r = export_html(data, out / "map.html")
    return Exported("html", r, f"html: wrote the offline web map to {r} (open it in a browser)")


_EXPORTERS = {"db": _db, "neo4j": _neo4j, "gexf": _gexf, "png": _png, "html": _html}
