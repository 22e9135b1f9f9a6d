"""Store tables the enrichment sources cache their answers in.

Each source keeps what it asked and what came back (``found = false`` for a key the API did
not know), so that a rerun asks only for keys it has never asked about.

This module owns these tables: enrichment (a writer) creates them; readers (build, reports)
that find one missing read it as empty through `readable_enrich_tables`, without writing.
"""

from __future__ import annotations

import re

import duckdb
import pandas as pd

from twitchgraph.store.db import registered

__all__ = ["ensure_enrich_tables", "readable_enrich_tables", "upsert_frame"]

_DDL = (
    """
    CREATE TABLE IF NOT EXISTS games (
        game_id VARCHAR PRIMARY KEY,
        name VARCHAR,
        igdb_id VARCHAR,
        box_art_url VARCHAR,
        found BOOLEAN,
        fetched_at TIMESTAMPTZ DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS igdb_games (
        igdb_id VARCHAR PRIMARY KEY,
        name VARCHAR,
        genres VARCHAR[],
        themes VARCHAR[],
        release_date DATE,
        developers VARCHAR[],
        publishers VARCHAR[],
        found BOOLEAN,
        fetched_at TIMESTAMPTZ DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS steam_apps (
        appid BIGINT,
        name VARCHAR
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS steam_details (
        appid BIGINT PRIMARY KEY,
        name VARCHAR,
        developers VARCHAR[],
        publishers VARCHAR[],
        release_date VARCHAR,
        categories VARCHAR[],
        genres VARCHAR[],
        found BOOLEAN,
        fetched_at TIMESTAMPTZ DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS game_matches (
        game_name VARCHAR PRIMARY KEY,
        steam_appid BIGINT,
        steam_name VARCHAR,
        method VARCHAR,      -- 'exact' | 'normalised' | 'fuzzy' | 'none'
        score DOUBLE,
        threshold DOUBLE,
        matched_at TIMESTAMPTZ DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS user_fetches (
        login VARCHAR PRIMARY KEY,  -- profiles asked of Helix by enrichment
        found BOOLEAN,
        fetched_at TIMESTAMPTZ DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS social_links (
        login VARCHAR,
        platform VARCHAR,
        url VARCHAR,
        source VARCHAR,      -- 'description' | 'gql'
        PRIMARY KEY (login, url, source)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS social_fetches (
        login VARCHAR,
        source VARCHAR,
        ok BOOLEAN,
        error VARCHAR,
        fetched_at TIMESTAMPTZ DEFAULT now(),
        PRIMARY KEY (login, source)
    )
    """,
)


_NAME = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)")


def _tables(con: duckdb.DuckDBPyConnection, *, temp: bool) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND (table_catalog = 'temp') = ?", [temp]
    ).fetchall()}


def ensure_enrich_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create every enrichment cache table that does not exist yet (idempotent)."""
    # A reader's empty stand-in (below) would hide the real table in this connection.
    for name in _tables(con, temp=True) & {_NAME.search(ddl).group(1) for ddl in _DDL}:
        con.execute(f'DROP TABLE temp."{name}"')
    for ddl in _DDL:
        con.execute(ddl)


def readable_enrich_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Make every enrichment table readable: a missing one becomes an empty temporary table
    (works on a read-only store; nothing is written to the file)."""
    present = _tables(con, temp=False) | _tables(con, temp=True)
    for ddl in _DDL:
        if _NAME.search(ddl).group(1) not in present:
            con.execute(ddl.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))


def upsert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Insert the rows of ``frame`` into ``table`` by column name, replacing rows with the
    same primary key (every source's cache write)."""
    with registered(con, "_tg_upsert", frame):
        cols = ", ".join(frame.columns)
        con.execute(f"INSERT OR REPLACE INTO {table} ({cols}) SELECT {cols} FROM _tg_upsert")
