"""`--to neo4j`: files for `neo4j-admin database import` plus `load.cypher` and `queries.cypher`.

Two ways into Neo4j, from the same CSV files:

- bulk, into an empty database: ``bash import.sh`` (runs ``neo4j-admin database import full``
  with ``--nodes=Streamer=streamers.csv`` etc.). Headers follow neo4j-admin's format:
  ``login:ID(Streamer)``, typed properties (``viewer_mean:float``, ``genres:string[]`` with
  ';' between items), ``:LABEL``, ``:START_ID(Streamer)``, ``:END_ID(Game)``, ``:TYPE``;
- into a running database: ``load.cypher`` (constraints, then ``LOAD CSV`` + ``MERGE``), with
  the files' location passed as the ``$base`` parameter.

`queries.cypher` holds the README queries with their parameters.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import pandas as pd

from twitchgraph.export.kuzu_db import (
    GAME_PROPS,
    OVERLAP_PROPS,
    PLAYED_PROPS,
    RAID_PROPS,
    STREAMER_PROPS,
    known_raids,
    played_and_games,
)
from twitchgraph.export.query import README_QUERIES
from twitchgraph.graphio import GraphData

__all__ = ["NEO4J_FILES", "export_neo4j", "neo4j_header"]

logger = logging.getLogger(__name__)

NEO4J_FILES = ("streamers.csv", "games.csv", "overlaps.csv", "played.csv", "raids.csv",
               "import.sh", "load.cypher", "queries.cypher")
REL_OVERLAP = "HAS_VIEWERSHIP_OVERLAPPED_WITH"
REL_PLAYED = "PLAYED"
REL_RAIDED = "RAIDED"
# Kùzu type -> neo4j-admin header type.
_TYPES = {"STRING": "string", "DOUBLE": "float", "INT64": "long", "STRING[]": "string[]"}


def neo4j_header(name: str, kind: str) -> str:
    """The neo4j-admin header of one property, e.g. ``viewer_mean:float``."""
    neo = _TYPES[kind]
    return name if neo == "string" else f"{name}:{neo}"


def _cell(value: object, kind: str) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if kind == "INT64":
        return str(int(float(value)))
    if kind == "DOUBLE":
        return repr(float(value))
    return str(value)


def _write(path: Path, header: list[str], rows) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def _node_rows(table: pd.DataFrame, props, label: str):
    columns = [table[col].tolist() if col in table.columns else [None] * len(table)
               for _, _, col in props]
    for values in zip(*columns, strict=True):
        yield [_cell(v, kind) for v, (_, kind, _) in zip(values, props, strict=True)] + [label]


def _rel_rows(table: pd.DataFrame, props, rel_type: str):
    columns = [table[col].tolist() if col in table.columns else [None] * len(table)
               for _, _, col in props]
    for src, dst, *values in zip(table["Source"], table["Target"], *columns, strict=True):
        cells = [_cell(v, kind) for v, (_, kind, _) in zip(values, props, strict=True)]
        yield [src, dst, *cells, rel_type]


def export_neo4j(data: GraphData, out_dir: str | os.PathLike) -> Path:
    """Write the Neo4j files (see module docstring) into `out_dir`; returns the directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    played, games = played_and_games(data)

    s_props, g_props = STREAMER_PROPS, GAME_PROPS
    s_header = ["login:ID(Streamer)"] + [neo4j_header(n, k) for n, k, _ in s_props[1:]]
    g_header = ["name:ID(Game)"] + [neo4j_header(n, k) for n, k, _ in g_props[1:]]
    _write(out / "streamers.csv", s_header + [":LABEL"],
           _node_rows(data.streamers, s_props, "Streamer"))
    _write(out / "games.csv", g_header + [":LABEL"], _node_rows(games, g_props, "Game"))
    _write(out / "overlaps.csv",
           [":START_ID(Streamer)", ":END_ID(Streamer)"]
           + [neo4j_header(n, k) for n, k, _ in OVERLAP_PROPS] + [":TYPE"],
           _rel_rows(data.edges, OVERLAP_PROPS, REL_OVERLAP))
    _write(out / "played.csv",
           [":START_ID(Streamer)", ":END_ID(Game)"]
           + [neo4j_header(n, k) for n, k, _ in PLAYED_PROPS] + [":TYPE"],
           _rel_rows(played, PLAYED_PROPS, REL_PLAYED))
    _write(out / "raids.csv",
           [":START_ID(Streamer)", ":END_ID(Streamer)"]
           + [neo4j_header(n, k) for n, k, _ in RAID_PROPS] + [":TYPE"],
           _rel_rows(known_raids(data), RAID_PROPS, REL_RAIDED))
    (out / "import.sh").write_text(_import_script(), encoding="utf-8")
    (out / "load.cypher").write_text(load_cypher(), encoding="utf-8")
    (out / "queries.cypher").write_text(queries_cypher(), encoding="utf-8")
    logger.info("wrote Neo4j files to %s", out)
    return out


def _import_script() -> str:
    return """#!/usr/bin/env bash
# Bulk import into an EMPTY Neo4j database (stop the server first). Usage: bash import.sh [db]
set -euo pipefail
cd "$(dirname "$0")"
neo4j-admin database import full "${1:-neo4j}" \\
  --nodes=Streamer=streamers.csv --nodes=Game=games.csv \\
  --relationships=HAS_VIEWERSHIP_OVERLAPPED_WITH=overlaps.csv \\
  --relationships=PLAYED=played.csv \\
  --relationships=RAIDED=raids.csv \\
  --array-delimiter=';' --multiline-fields=true --overwrite-destination=true
"""


def _set_clause(var: str, props, *, skip_first: bool) -> str:
    parts = []
    for name, kind, _ in props[1:] if skip_first else props:
        column = f"row.`{neo4j_header(name, kind)}`"
        if kind == "DOUBLE":
            value = f"toFloat({column})"
        elif kind == "INT64":
            value = f"toInteger({column})"
        elif kind == "STRING[]":
            value = f"CASE coalesce({column}, '') WHEN '' THEN [] ELSE split({column}, ';') END"
        else:
            value = column
        parts.append(f"{var}.{name} = {value}")
    return ",\n    ".join(parts)


def load_cypher() -> str:
    """Cypher that loads the export into a running Neo4j with LOAD CSV, MERGE and constraints.

    The file location is the parameter ``$base`` (e.g. ``'file:///'`` when the CSVs are in
    Neo4j's import directory).
    """
    return f"""// Load the twitchgraph export into a running Neo4j 5 (cypher-shell or Browser).
// Copy streamers.csv, games.csv, overlaps.csv, played.csv and raids.csv into Neo4j's import
// directory,
// then set the parameter and run this file:
//   cypher-shell --param "base => 'file:///'" -f load.cypher
// Re-running it is safe: MERGE updates existing nodes and relationships.

CREATE CONSTRAINT streamer_login IF NOT EXISTS FOR (s:Streamer) REQUIRE s.login IS UNIQUE;
CREATE CONSTRAINT game_name IF NOT EXISTS FOR (g:Game) REQUIRE g.name IS UNIQUE;

LOAD CSV WITH HEADERS FROM $base + 'streamers.csv' AS row
MERGE (s:Streamer {{login: row.`login:ID(Streamer)`}})
SET {_set_clause("s", STREAMER_PROPS, skip_first=True)};

LOAD CSV WITH HEADERS FROM $base + 'games.csv' AS row
MERGE (g:Game {{name: row.`name:ID(Game)`}})
SET {_set_clause("g", GAME_PROPS, skip_first=True)};

LOAD CSV WITH HEADERS FROM $base + 'overlaps.csv' AS row
MATCH (a:Streamer {{login: row.`:START_ID(Streamer)`}})
MATCH (b:Streamer {{login: row.`:END_ID(Streamer)`}})
MERGE (a)-[r:{REL_OVERLAP}]->(b)
SET {_set_clause("r", OVERLAP_PROPS, skip_first=False)};

LOAD CSV WITH HEADERS FROM $base + 'played.csv' AS row
MATCH (s:Streamer {{login: row.`:START_ID(Streamer)`}})
MATCH (g:Game {{name: row.`:END_ID(Game)`}})
MERGE (s)-[p:{REL_PLAYED}]->(g)
SET {_set_clause("p", PLAYED_PROPS, skip_first=False)};

LOAD CSV WITH HEADERS FROM $base + 'raids.csv' AS row
MATCH (a:Streamer {{login: row.`:START_ID(Streamer)`}})
MATCH (b:Streamer {{login: row.`:END_ID(Streamer)`}})
MERGE (a)-[r:{REL_RAIDED}]->(b)
SET {_set_clause("r", RAID_PROPS, skip_first=False)};
"""


def queries_cypher() -> str:
    """The README queries, each after a comment naming it and its parameters."""
    blocks = ["// twitchgraph: the README's example queries. Set the parameters first, e.g.\n"
              "//   :param login => 'some_login'   (Neo4j Browser / cypher-shell)\n"]
    for name, (title, cypher, defaults) in README_QUERIES.items():
        params = ", ".join(f"{k}: {v!r}" for k, v in defaults.items())
        blocks.append(f"// {name}: {title}\n// parameters: {{{params}}}\n{cypher};\n")
    return "\n".join(blocks)
