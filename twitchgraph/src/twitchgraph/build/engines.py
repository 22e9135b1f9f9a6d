"""Where the build's SQL runs: DuckDB (embedded, the default) or Apache Spark (a cluster).

The build is written once, in DuckDB's SQL dialect (`twitchgraph.build.definition`). `DuckDBEngine`
runs it as it is; `SparkEngine` transpiles each statement to Spark SQL with SQLGlot and runs
it through pyspark, over the partitioned Parquet dataset (`twitchgraph.store.dataset`). Both offer
the same few calls: materialise a query as a named table, define a view, fetch rows or a
pandas frame, register a small pandas frame, drop what the build made.

Spark is optional (``pip install 'twitchgraph[spark]'``, Java 17+); it is imported only
when asked for.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from twitchgraph.errors import TwitchgraphError

__all__ = ["DuckDBEngine", "EngineError", "SparkEngine", "spark_session", "to_spark_sql"]

log = logging.getLogger(__name__)


class EngineError(TwitchgraphError):
    """An engine cannot be started (e.g. pyspark or Java missing); the message says what to do."""


class DuckDBEngine:
    """Runs the build's SQL on a DuckDB connection (a store, or `dataset.open_dataset`)."""

    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        from twitchgraph.enrich.schema import readable_enrich_tables

        self.con = con
        self._made: list[tuple[str, str]] = []
        readable_enrich_tables(con)

    def table(self, name: str, sql: str) -> None:
        """Materialise `sql` as the temporary table `name` (replacing it)."""
        self._forget(name)
        self.con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS {sql}')
        self._made.append(("TABLE", name))

    def view(self, name: str, sql: str) -> None:
        """Define `sql` as the temporary view `name` (replacing it)."""
        self._forget(name)
        self.con.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS {sql}')
        self._made.append(("VIEW", name))

    def rows(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()

    def df(self, sql: str) -> pd.DataFrame:
        return self.con.execute(sql).df()

    def register(self, name: str, frame: pd.DataFrame) -> None:
        """Make a small pandas frame (string columns) readable as `name`."""
        self.con.register(name, frame)
        self._made.append(("FRAME", name))

    def columns(self, table: str) -> list[str]:
        return [d[0] for d in self.con.execute(f"SELECT * FROM {table} LIMIT 0").description]

    def has_table(self, name: str) -> bool:
        return bool(self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchall()[0][0])

    def _forget(self, name: str) -> None:
        for kind, made in [m for m in self._made if m[1] == name]:
            self._drop(kind, made)
            self._made.remove((kind, made))

    def _drop(self, kind: str, name: str) -> None:
        if kind == "FRAME":
            self.con.unregister(name)
        else:
            self.con.execute(f'DROP {kind} IF EXISTS temp."{name}"')

    def cleanup(self) -> None:
        """Drop everything the build made, newest first (views before their tables)."""
        for kind, name in reversed(self._made):
            self._drop(kind, name)
        self._made.clear()


@functools.lru_cache(maxsize=256)
def to_spark_sql(sql: str) -> str:
    """One DuckDB SQL statement in Spark SQL (SQLGlot)."""
    import sqlglot

    return sqlglot.transpile(sql, read="duckdb", write="spark")[0]


def spark_session(master: str | None = None, *, app_name: str = "twitchgraph build",
                  conf: dict[str, str] | None = None) -> Any:
    """A Spark session: Spark Connect when ``SPARK_REMOTE`` is set, else `master`
    (default ``local[*]``: every core of this machine). `conf` adds Spark settings (e.g.
    ``spark.driver.memory``); ``spark-defaults.conf`` works as usual.

    Raises:
        EngineError: pyspark is not installed, or Spark could not start (no Java 17+).
    """
    # pyspark warns about pandas 3 on import; the build never hands frames to it as pandas.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineError("the Spark engine needs pyspark: pip install 'twitchgraph[spark]' "
                          "(and Java 17 or later)") from None
    remote = os.environ.get("SPARK_REMOTE")
    builder = SparkSession.builder.appName(app_name)
    if remote:
        builder = builder.remote(remote)
    else:
        master = master or "local[*]"
        builder = builder.master(master).config("spark.ui.enabled", "false")
        if master.startswith("local"):
            # Spark's 200 shuffle partitions are for clusters; one machine wants few.
            builder = builder.config("spark.sql.shuffle.partitions", "4")
    builder = (builder.config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.showConsoleProgress", "false"))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - Java missing or too old surfaces as many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EngineError(f"cannot start Spark ({remote or master}): {first}; the local "
                          "engine needs Java 17 or later (`java -version`)") from None
    if not remote:
        spark.sparkContext.setLogLevel("ERROR")
    return spark


class SparkEngine:
    """Runs the build's SQL, transpiled to Spark SQL, on a Spark session.

    Args:
        spark: a `pyspark.sql.SparkSession` (`spark_session`).
        dataset: the partitioned dataset's root (`twitchgraph.store.dataset`); its tables become
            temporary views, and the store's tables are derived from them.
    """

    name = "spark"

    def __init__(self, spark: Any, dataset: str | Path) -> None:
        from twitchgraph.store.dataset import (
            LOGICAL_VIEWS,
            SNAPSHOT_TABLES,
            dataset_tables,
            read_manifest,
        )

        self.spark = spark
        self._cached: dict[str, Any] = {}
        self._views: list[str] = []
        # Absolute: Spark resolves a relative path against its JVM's working directory, the
        # one the session started in, while Python reads the manifest from its own (they
        # differ for a reused session, e.g. in a notebook that changed directory).
        root = Path(dataset).absolute()
        read_manifest(root)
        for table, folder in dataset_tables(root).items():
            name = f"ds_{table}" if table in SNAPSHOT_TABLES else table
            frame = spark.read.option("basePath", str(folder)).parquet(str(folder))
            frame.createOrReplaceTempView(name)
            self._views.append(name)
        for table, sql in LOGICAL_VIEWS.items():
            (self.table if table == "snapshots" else self.view)(table, sql)
        self._keep = set(self._views)  # the dataset's tables outlive each build

    def _sql(self, sql: str) -> Any:
        return self.spark.sql(to_spark_sql(sql))

    def table(self, name: str, sql: str) -> None:
        # Computed now and cut from its lineage: each step then starts from data, not from
        # a plan that repeats every step before it (which grows until the driver runs out
        # of memory just printing it). Kept on the executors, spilling to their disks.
        frame = self._sql(sql).localCheckpoint(eager=True)
        frame.createOrReplaceTempView(name)
        old = self._cached.pop(name, None)
        if old is not None:
            old.unpersist()
        self._cached[name] = frame
        self._views.append(name)

    def view(self, name: str, sql: str) -> None:
        self._sql(sql).createOrReplaceTempView(name)
        self._views.append(name)

    def rows(self, sql: str) -> list[tuple]:
        return [tuple(_utc(v) for v in row) for row in self._sql(sql).collect()]

    def df(self, sql: str) -> pd.DataFrame:
        frame = self._sql(sql)
        return pd.DataFrame.from_records(
            [tuple(_utc(v) for v in row) for row in frame.collect()], columns=frame.columns)

    def register(self, name: str, frame: pd.DataFrame) -> None:
        schema = ", ".join(f"`{c}` string" for c in frame.columns)
        records = [tuple(None if pd.isna(v) else str(v) for v in row)
                   for row in frame.itertuples(index=False)]
        self.spark.createDataFrame(records, schema=schema).createOrReplaceTempView(name)
        self._views.append(name)

    def columns(self, table: str) -> list[str]:
        return list(self.spark.table(table).columns)

    def has_table(self, name: str) -> bool:
        return bool(self.spark.catalog.tableExists(name))

    def cleanup(self) -> None:
        """Drop what the build made (not the dataset's tables)."""
        for name in [n for n in self._cached if n not in self._keep]:
            self._cached.pop(name).unpersist()
        for name in dict.fromkeys(n for n in reversed(self._views) if n not in self._keep):
            self.spark.catalog.dropTempView(name)
        self._views = [n for n in self._views if n in self._keep]


    def close(self) -> None:
        """Drop the dataset's views too: the session may outlive this engine."""
        self._keep = set()
        self.cleanup()

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _utc(value: Any) -> Any:
    # pyspark hands timestamps back as naive local times of this Python process.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.astimezone(UTC)
    return value
