"""Outputs a rebuild made stale: a map, picture or database older than the GRAPH_DIR's tables.

`build` rewrites every table and `communities`/`layout` rewrite streamers.csv; an export made
before that would show the old graph beside the new one. `export` removes such outputs of the
targets it was not asked for (it has just remade the others) and says which.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from twitchgraph.export import Exported
from twitchgraph.graphio import GRAPH_FILES

__all__ = ["OUTPUTS", "remove_stale_outputs"]

logger = logging.getLogger(__name__)

# What each target writes in the output folder. "graph.kuzu" is kuzu_db.DB_NAME, spelled here
# so that checking for stale outputs does not import Kùzu.
OUTPUTS = {"db": "graph.kuzu", "neo4j": "neo4j", "gexf": "graph.gexf", "png": "graph.png",
           "html": "map.html"}


def _mtime(path: Path) -> float:
    if path.is_dir():
        return max((p.stat().st_mtime for p in path.rglob("*")), default=path.stat().st_mtime)
    return path.stat().st_mtime


def remove_stale_outputs(
    graph_dir: Path, out: Path, *, keep: list[str] | tuple[str, ...] = ()
) -> list[Exported]:
    """Remove the outputs in `out` (except those of the `keep` targets) that are older than
    the newest table of `graph_dir`; one `Exported` record each names the `--to` remaking it."""
    tables = [graph_dir / name for name in GRAPH_FILES if (graph_dir / name).exists()]
    if not tables:
        return []
    newest = max(p.stat().st_mtime for p in tables)
    removed = []
    for target, name in OUTPUTS.items():
        path = out / name
        if target in keep or not path.exists() or _mtime(path) >= newest:
            continue
        if target == "db":
            from twitchgraph.export.kuzu_db import remove_db  # with its .wal and .lock

            remove_db(path)
        elif path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(Exported(target, path, f"{target}: removed {path}, older than the "
                                f"graph's tables (remake it with --to {target})"))
        logger.info(removed[-1].message)
    return removed
