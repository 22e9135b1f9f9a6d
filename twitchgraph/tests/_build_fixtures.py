"""Tiny hand-made stores for the build, bots, enrichment and report tests (helper E).

Uses ``twitchgraph.store.db.open_store`` when the store module exists, otherwise creates the
shared store schema (CONTEXT: snapshots, streams, chatters, listens, users) itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import duckdb

T0 = datetime(2022, 5, 2, 10, 0, tzinfo=UTC)

_DDL = (
    """CREATE TABLE IF NOT EXISTS snapshots (snapshot_id BIGINT, started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ, status VARCHAR, interval_s DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS streams (snapshot_id BIGINT, stream_id VARCHAR,
        user_id VARCHAR, user_login VARCHAR, user_name VARCHAR, game_id VARCHAR,
        game_name VARCHAR, title VARCHAR, viewer_count INTEGER, started_at TIMESTAMPTZ,
        language VARCHAR, tags VARCHAR[], is_mature BOOLEAN)""",
    """CREATE TABLE IF NOT EXISTS chatters (snapshot_id BIGINT, channel_login VARCHAR,
        user_login VARCHAR, source VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS listens (snapshot_id BIGINT, channel_login VARCHAR,
        listened_s DOUBLE, membership BOOLEAN)""",
    """CREATE TABLE IF NOT EXISTS users (user_id VARCHAR, login VARCHAR, display_name VARCHAR,
        broadcaster_type VARCHAR, description VARCHAR, created_at TIMESTAMPTZ,
        profile_image_url VARCHAR, type VARCHAR, fetched_at TIMESTAMPTZ)""",
)


def new_store(path: str = ":memory:") -> duckdb.DuckDBPyConnection:
    try:
        from twitchgraph.store.db import open_store
    except ImportError:
        con = duckdb.connect(path)
        for ddl in _DDL:
            con.execute(ddl)
        return con
    return open_store(path)


def add_snapshots(
    con: duckdb.DuckDBPyConnection,
    n: int,
    *,
    every_min: float = 5.0,
    start: datetime = T0,
    status: str = "complete",
    first_id: int = 1,
    interval_s: float | None = 300.0,
) -> list[int]:
    ids = []
    for i in range(n):
        sid = first_id + i
        at = start + timedelta(minutes=every_min * i)
        con.execute(
            "INSERT INTO snapshots (snapshot_id, started_at, finished_at, status, interval_s) "
            "VALUES (?, ?, ?, ?, ?)",
            [sid, at, at + timedelta(seconds=60), status, interval_s],
        )
        ids.append(sid)
    return ids


def add_live(
    con: duckdb.DuckDBPyConnection,
    snapshot_ids: Iterable[int],
    login: str,
    *,
    viewers: int | Iterable[int] = 100,
    chatters: Iterable[str] | None = None,
    game: str | None = "Chess",
    game_id: str | None = None,
    language: str = "it",
    name: str | None = None,
    source: str = "names",
) -> None:
    """``login`` is live in every snapshot given, with the same chatters in each."""
    snapshot_ids = list(snapshot_ids)
    counts = [viewers] * len(snapshot_ids) if isinstance(viewers, int) else list(viewers)
    chatters = list(chatters or [])
    for sid, count in zip(snapshot_ids, counts, strict=True):
        con.execute(
            "INSERT INTO streams VALUES (?, ?, ?, ?, ?, ?, ?, 'title', ?, ?, ?, [], false)",
            [sid, f"s-{login}", f"u-{login}", login, name or login.title(),
             game_id or (f"g-{game}" if game else None), game, count, T0, language],
        )  # fmt: skip
        for user in chatters:
            con.execute(
                "INSERT INTO chatters VALUES (?, ?, ?, ?)", [sid, login, user, source]
            )


def users_named(prefix: str, n: int, start: int = 0) -> list[str]:
    return [f"{prefix}{i}" for i in range(start, start + n)]
