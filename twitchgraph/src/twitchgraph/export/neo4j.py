"""`--to neo4j`: files for `neo4j-admin database import` plus `load.cypher` and `queries.cypher`.

Two ways into Neo4j, from the same CSV files:

- bulk, into an empty database: ``bash import.sh`` (runs ``neo4j-admin database import full``
  with ``--nodes=Streamer=streamers.csv`` etc.). Headers follow neo4j-admin's format:
  ``login:ID(Streamer)``, typed properties (``viewer_mean:float``, ``genres:string[]`` with
  ';' between items), ``:LABEL``, ``:START_ID(Streamer)``, ``:END_ID(Game)``, ``:TYPE``;
- into a running database: ``load.cypher`` (constraints, then ``LOAD CSV`` + ``MERGE``), with
  the files' location passed as the ``$base`` parameter.

`queries.cypher` holds the documented example queries with their parameters.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import pandas as pd

from twitchgraph.atomic import atomic_open, write_text
from twitchgraph.export.kuzu_db import (
    FLOW_PROPS,
    GAME_PROPS,
    OVERLAP_PROPS,
    PLAYED_PROPS,
    RAID_PROPS,
    STREAMER_PROPS,
    known_flows,
    known_raids,
    played_and_games,
)
from twitchgraph.export.query import EXAMPLE_QUERIES
from twitchgraph.graphio import GraphData

__all__ = ["NEO4J_FILES", "export_neo4j", "neo4j_header"]

logger = logging.getLogger(__name__)

REL_OVERLAP = "HAS_VIEWERSHIP_OVERLAPPED_WITH"
REL_PLAYED = "PLAYED"
REL_RAIDED = "RAIDED"
REL_FLOWED = "FLOWED_TO"
# The export, one row a file: node files (file, label, properties; the first property is the
# key), then relationship files (file, start label, type, end label, properties). The CSV
# headers, import.sh and load.cypher are all made from these two tables.
NODE_FILES = (("streamers.csv", "Streamer", STREAMER_PROPS), ("games.csv", "Game", GAME_PROPS))
RELATIONSHIP_FILES = (
    ("overlaps.csv", "Streamer", REL_OVERLAP, "Streamer", OVERLAP_PROPS),
    ("played.csv", "Streamer", REL_PLAYED, "Game", PLAYED_PROPS),
    ("raids.csv", "Streamer", REL_RAIDED, "Streamer", RAID_PROPS),
    ("flows.csv", "Streamer", REL_FLOWED, "Streamer", FLOW_PROPS),
)
NEO4J_FILES = (*(f[0] for f in NODE_FILES), *(f[0] for f in RELATIONSHIP_FILES),
               "import.sh", "load.cypher", "queries.cypher")
_KEYS = {label: props[0][0] for _, label, props in NODE_FILES}
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
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
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

    tables = {"streamers.csv": data.streamers, "games.csv": games, "overlaps.csv": data.edges,
              "played.csv": played, "raids.csv": known_raids(data),
              "flows.csv": known_flows(data)}
    for name, label, props in NODE_FILES:
        header = [f"{props[0][0]}:ID({label})"]
        header += [neo4j_header(n, k) for n, k, _ in props[1:]] + [":LABEL"]
        _write(out / name, header, _node_rows(tables[name], props, label))
    for name, start, rel, end, props in RELATIONSHIP_FILES:
        header = [f":START_ID({start})", f":END_ID({end})"]
        header += [neo4j_header(n, k) for n, k, _ in props] + [":TYPE"]
        _write(out / name, header, _rel_rows(tables[name], props, rel))
    write_text(out / "import.sh", _import_script())
    write_text(out / "load.cypher", load_cypher())
    write_text(out / "queries.cypher", queries_cypher())
    logger.info("wrote Neo4j files to %s", out)
    return out


def _import_script() -> str:
    files = [f"--nodes={label}={name}" for name, label, _ in NODE_FILES]
    files += [f"--relationships={rel}={name}" for name, _, rel, _, _ in RELATIONSHIP_FILES]
    lines = [
        "#!/usr/bin/env bash",
        "# Bulk import into an EMPTY Neo4j database (stop the server first). "
        "Usage: bash import.sh [db]",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        'neo4j-admin database import full "${1:-neo4j}" \\',
        *(f"  {arg} \\" for arg in files),
        "  --array-delimiter=';' --multiline-fields=true --overwrite-destination=true",
    ]
    return "\n".join(lines) + "\n"


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
        parts.append(f"{var}.`{name}` = {value}")
    return ",\n    ".join(parts)


def load_cypher() -> str:
    """Cypher that loads the export into a running Neo4j with LOAD CSV, MERGE and constraints.

    The file location is the parameter ``$base`` (e.g. ``'file:///'`` when the CSVs are in
    Neo4j's import directory).
    """
    csvs = [f[0] for f in NODE_FILES + RELATIONSHIP_FILES]
    constraints = "\n".join(
        f"CREATE CONSTRAINT {label.lower()}_{props[0][0]} IF NOT EXISTS FOR (n:{label}) "
        f"REQUIRE n.{props[0][0]} IS UNIQUE;" for _, label, props in NODE_FILES)
    loads = "\n".join([*(_load_nodes(*f) for f in NODE_FILES),
                       *(_load_relationships(*f) for f in RELATIONSHIP_FILES)])
    return f"""// Load the twitchgraph export into a running Neo4j 5 (cypher-shell or Browser).
// Copy the CSV files into Neo4j's import directory ({", ".join(csvs)}),
// then set the parameter and run this file:
//   cypher-shell --param "base => 'file:///'" -f load.cypher
// Re-running it is safe: MERGE updates existing nodes and relationships.

{constraints}

{loads}"""


def _load_nodes(name: str, label: str, props) -> str:
    key = _KEYS[label]
    return (f"LOAD CSV WITH HEADERS FROM $base + '{name}' AS row\n"
            f"MERGE (n:{label} {{{key}: row.`{key}:ID({label})`}})\n"
            f"SET {_set_clause('n', props, skip_first=True)};\n")


def _load_relationships(name: str, start: str, rel: str, end: str, props) -> str:
    return (f"LOAD CSV WITH HEADERS FROM $base + '{name}' AS row\n"
            f"MATCH (a:{start} {{{_KEYS[start]}: row.`:START_ID({start})`}})\n"
            f"MATCH (b:{end} {{{_KEYS[end]}: row.`:END_ID({end})`}})\n"
            f"MERGE (a)-[r:{rel}]->(b)\n"
            f"SET {_set_clause('r', props, skip_first=False)};\n")


def queries_cypher() -> str:
    """The example queries, each after a comment naming it and its parameters."""
    blocks = ["// twitchgraph: the example queries of its docs. Set the parameters first, e.g.\n"
              "//   :param login => 'some_login'   (Neo4j Browser / cypher-shell)\n"]
    for name, (title, cypher, defaults) in EXAMPLE_QUERIES.items():
        params = ", ".join(f"{k}: {v!r}" for k, v in defaults.items())
        blocks.append(f"// {name}: {title}\n// parameters: {{{params}}}\n{cypher};\n")
    return "\n".join(blocks)
