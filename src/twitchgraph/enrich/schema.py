"""Store tables the enrichment sources cache their answers in.

Each source keeps what it asked and what came back (``found = false`` for a key the API did
not know), so that a rerun asks only for keys it has never asked about.
"""

from __future__ import annotations

import duckdb
import pandas as pd

__all__ = ["ensure_enrich_tables", "upsert_frame"]

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


def ensure_enrich_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create every enrichment cache table that does not exist yet (idempotent)."""
    for ddl in _DDL:
        con.execute(ddl)


def upsert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Insert the rows of ``frame`` into ``table`` by column name, replacing rows with the
    same primary key (every source's cache write)."""
    con.register("_tg_upsert", frame)
    try:
        cols = ", ".join(frame.columns)
        con.execute(f"INSERT OR REPLACE INTO {table} ({cols}) SELECT {cols} FROM _tg_upsert")
    finally:
        con.unregister("_tg_upsert")
