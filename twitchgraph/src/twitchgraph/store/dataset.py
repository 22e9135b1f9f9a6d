"""Snapshots as a Hive-partitioned Parquet dataset that any engine reads (DuckDB, Spark, ...).

Layout, one folder per table and the schema version beside them::

    OUT/_twitchgraph.json                      format, store schema version, partitioning
    OUT/_writers/<writer>.json                 what each store exported, and when
    OUT/snapshots/date=2026-11-20/<writer>.0.parquet
    OUT/streams/date=2026-11-20/<writer>.0.parquet     (also chatters, listens, snapshot_info)
    OUT/users/<writer>.parquet                 tables without snapshots: one file per writer

``date`` is the UTC day of the snapshot's slot. Each store (one per collector, so one per
shard) exports under its own ``writer`` name and replaces only its own files, so N shards
write into one dataset without a coordinator. Rows of snapshot tables carry
``snapshot_key``: the slot (``slot:<ISO time>``) for a sharded collector, whose slots sit
on the schedule grid so that the N shards' files for one slot form one snapshot; the
``writer:snapshot_id`` otherwise. ``snapshots`` rows also carry ``writer``, ``shard``,
``shards`` and ``slot_at``.

`LOGICAL_VIEWS` turns these rows back into the store's tables (one ``snapshots`` row per
slot, ``complete`` only when all its shards completed it, ``partial`` otherwise), so the
build reads a dataset exactly as it reads a store. It is DuckDB SQL, run as it is on
DuckDB and transpiled for other engines.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from twitchgraph.atomic import atomic_path, write_text
from twitchgraph.enrich.schema import readable_enrich_tables
from twitchgraph.errors import TwitchgraphError
from twitchgraph.store.db import SCHEMA_VERSION

__all__ = [
    "LOGICAL_VIEWS",
    "MANIFEST",
    "SNAPSHOT_TABLES",
    "DatasetError",
    "dataset_tables",
    "export_partitioned",
    "open_dataset",
    "read_manifest",
]

MANIFEST = "_twitchgraph.json"
SNAPSHOT_TABLES = ("snapshots", "streams", "chatters", "listens", "snapshot_info")
_WRITER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# A table with no row still gets a file, under this partition, so engines know its columns.
_EMPTY_DATE = "1970-01-01"


class DatasetError(TwitchgraphError):
    """A dataset that cannot be written or read as asked; the message says what to do."""


def _manifest(schema_version: int) -> dict:
    return {
        "format": "twitchgraph snapshots, Hive-partitioned Parquet",
        "schema_version": schema_version,
        "partitioning": "date=YYYY-MM-DD (UTC day of the snapshot's slot)",
        "snapshot_tables": list(SNAPSHOT_TABLES),
    }


def read_manifest(root: str | Path) -> dict:
    """The dataset's manifest; raises `DatasetError` when `root` is not a dataset."""
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{root} is not a twitchgraph dataset (no {MANIFEST}): write one "
                           "with `twitchgraph export-parquet --partitioned`") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DatasetError(f"{root} holds store schema {version}; this twitchgraph reads "
                           f"schema {SCHEMA_VERSION}: export it again with this version")
    return manifest


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _own_files(folder: Path, writer: str) -> list[Path]:
    mine = re.compile(rf"^{re.escape(writer)}(\.\d+)?\.parquet$")
    return [p for p in folder.rglob("*.parquet") if mine.match(p.name)]


def export_partitioned(
    con: duckdb.DuckDBPyConnection, out_dir: str | Path, *, writer: str = "store"
) -> dict[str, int]:
    """Write the store as a Hive-partitioned Parquet dataset under `writer`'s name.

    Parameters
    ----------
    con : an open store (read-only is enough).
    out_dir : the dataset's root; created when missing, shared by every writer.
    writer : this store's name in the dataset (letters, digits, ``_``, ``-``); its earlier
        files are replaced, other writers' files are left alone.

    Returns
    -------
    Rows written per table. Rows of snapshot tables are those of complete snapshots; the
    ``snapshots`` table keeps every snapshot with its status (a slot with a failed shard is
    then seen as partial).

    Raises
    ------
    DatasetError for a bad writer name or a dataset of another schema version.
    """
    if not _WRITER.match(writer):
        raise DatasetError(f"writer name {writer!r}: use letters, digits, '_' or '-'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST).exists():
        read_manifest(out)
    else:
        write_text(out / MANIFEST, json.dumps(_manifest(SCHEMA_VERSION), indent=2) + "\n")
    readable_enrich_tables(con)  # every engine then finds every table, empty or not
    _keyed_snapshots(con, writer)
    counts: dict[str, int] = {}
    try:
        for table in SNAPSHOT_TABLES:
            counts[table] = _copy_partitioned(con, table, out / table, writer)
        for table in _other_tables(con):
            folder = out / table
            folder.mkdir(exist_ok=True)
            for old in _own_files(folder, writer):
                old.unlink()
            with atomic_path(folder / f"{writer}.parquet") as tmp:
                counts[table] = int(con.execute(
                    f"COPY (SELECT * FROM \"{table}\") TO '{_sql_path(tmp)}' (FORMAT parquet)"
                ).fetchone()[0])
    finally:
        con.execute("DROP TABLE IF EXISTS _tg_ds_snap")
    record = {"writer": writer, "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "schema_version": SCHEMA_VERSION, "rows": counts}
    (out / "_writers").mkdir(exist_ok=True)
    write_text(out / "_writers" / f"{writer}.json", json.dumps(record, indent=2) + "\n")
    return counts


def _keyed_snapshots(con: duckdb.DuckDBPyConnection, writer: str) -> None:
    """``_tg_ds_snap``: every snapshot with its shard, slot, key and partition date."""
    # A sharded collector records shard = [K, N] in its params and starts each snapshot on
    # the schedule grid (at or just after the slot), so flooring to the grid finds the slot.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _tg_ds_snap AS
        WITH info AS (
            SELECT snapshot_id,
                   TRY_CAST(json_extract(any_value(params), '$.shard[0]') AS INTEGER) AS shard,
                   TRY_CAST(json_extract(any_value(params), '$.shard[1]') AS INTEGER) AS shards
            FROM snapshot_info GROUP BY 1
        ),
        keyed AS (
            SELECT s.*, '{writer}' AS writer, i.shard, i.shards,
                   CASE WHEN i.shards IS NOT NULL AND s.interval_s > 0
                        THEN to_timestamp(floor(epoch(s.started_at) / s.interval_s)
                                          * s.interval_s)
                        ELSE s.started_at END AS slot_at
            FROM snapshots s LEFT JOIN info i USING (snapshot_id)
        )
        SELECT *,
               CASE WHEN shards IS NOT NULL
                    THEN 'slot:' || strftime(slot_at, '%Y-%m-%dT%H:%M:%SZ') || '/' || shards
                    ELSE writer || ':' || lpad(CAST(snapshot_id AS VARCHAR), 12, '0') END
                   AS snapshot_key,
               CAST(slot_at AS DATE) AS date
        FROM keyed
        """
    )


def _copy_partitioned(con: duckdb.DuckDBPyConnection, table: str, folder: Path,
                      writer: str) -> int:
    if table == "snapshots":
        query = "SELECT * FROM _tg_ds_snap"
    else:
        query = (f'SELECT t.*, k.snapshot_key, k.date FROM "{table}" t '
                 "JOIN _tg_ds_snap k USING (snapshot_id) WHERE k.status = 'complete'")
    folder.mkdir(parents=True, exist_ok=True)
    for old in _own_files(folder, writer):
        old.unlink()
    rows = int(con.execute(
        f"COPY ({query}) TO '{_sql_path(folder)}' (FORMAT parquet, PARTITION_BY (date), "
        f"OVERWRITE_OR_IGNORE, FILENAME_PATTERN '{writer}.{{i}}')").fetchone()[0])
    if rows == 0:
        empty = folder / f"date={_EMPTY_DATE}"
        empty.mkdir(exist_ok=True)
        con.execute(f"COPY ({query} LIMIT 0) TO '{_sql_path(empty / f'{writer}.0.parquet')}' "
                    "(FORMAT parquet)")
    return rows


def _other_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Tables without snapshots (profiles, bots, enrichment caches), temporary stand-ins
    for enrichment tables not created yet included; not the store's own metadata."""
    names = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()}
    skip = set(SNAPSHOT_TABLES) | {"twitchgraph_meta", "imports", "_tg_ds_snap"}
    return sorted(n for n in names - skip if not n.startswith("_tg_"))


def dataset_tables(root: str | Path) -> dict[str, Path]:
    """Table name -> folder, for every table folder of the dataset holding Parquet files."""
    root = Path(root)
    return {p.name: p for p in sorted(root.iterdir())
            if p.is_dir() and not p.name.startswith("_") and any(p.rglob("*.parquet"))}


# The store's tables, from the dataset's rows (``ds_<table>`` are the raw folders).
# A slot's snapshot is complete when every one of its shards completed it.
LOGICAL_VIEWS: dict[str, str] = {
    "snapshots": """
        SELECT CAST(dense_rank() OVER (ORDER BY min(slot_at), snapshot_key) AS BIGINT)
                   AS snapshot_id,
               snapshot_key,
               min(slot_at) AS started_at,
               max(finished_at) AS finished_at,
               CASE WHEN count(DISTINCT CASE WHEN status = 'complete'
                                             THEN coalesce(shard, 1) END)
                         >= max(coalesce(shards, 1)) THEN 'complete'
                    WHEN count(CASE WHEN status = 'complete' THEN 1 END) > 0 THEN 'partial'
                    ELSE 'failed' END AS status,
               max(interval_s) AS interval_s,
               max(coalesce(shards, 1)) AS shards,
               count(DISTINCT CASE WHEN status = 'complete' THEN coalesce(shard, 1) END)
                   AS shards_complete
        FROM ds_snapshots GROUP BY snapshot_key
    """,
    "streams": """
        SELECT s.snapshot_id, t.stream_id, t.user_id, t.user_login, t.user_name, t.game_id,
               t.game_name, t.title, t.viewer_count, t.started_at, t.language, t.tags,
               t.is_mature
        FROM ds_streams t JOIN snapshots s ON s.snapshot_key = t.snapshot_key
    """,
    "chatters": """
        SELECT s.snapshot_id, t.channel_login, t.user_login, t.source
        FROM ds_chatters t JOIN snapshots s ON s.snapshot_key = t.snapshot_key
    """,
}


def open_dataset(root: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that reads the dataset at `root` as a store.

    Raises `DatasetError` when `root` is not a dataset of this schema version.
    """
    root = Path(root)
    read_manifest(root)
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    for table, folder in dataset_tables(root).items():
        name = f"ds_{table}" if table in SNAPSHOT_TABLES else table
        glob = _sql_path(folder) + ("/**/*.parquet" if table in SNAPSHOT_TABLES
                                    else "/*.parquet")
        con.execute(f"CREATE VIEW \"{name}\" AS SELECT * FROM read_parquet('{glob}', "
                    "hive_partitioning = true, union_by_name = true)")
    for table, sql in LOGICAL_VIEWS.items():
        # One row per slot: small, and joined by every step, so materialised.
        kind = "TABLE" if table == "snapshots" else "VIEW"
        con.execute(f'CREATE TEMP {kind} "{table}" AS {sql}')
    return con
