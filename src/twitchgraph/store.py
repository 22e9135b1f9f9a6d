"""The embedded DuckDB store: snapshots of live streams and their chatters.

Schema (created idempotently by `open_store`):

- ``snapshots(snapshot_id, started_at, finished_at, status, interval_s)``: status is
  ``running`` while a collector works on it, ``complete`` once its rows are in, ``failed``
  when it was abandoned. Only rows of complete snapshots count.
- ``streams(snapshot_id, stream_id, user_id, user_login, user_name, game_id, game_name, title,
  viewer_count, started_at, language, tags, is_mature)``: the Helix stream objects.
- ``chatters(snapshot_id, channel_login, user_login, source)``: who was in each channel's chat,
  with ``source`` one of ``names`` (NAMES list), ``join`` (JOIN seen) or ``message`` (sent a
  message); logins lower case; one row per (snapshot, channel, user) with the first source
  in that order of preference.
- ``listens(snapshot_id, channel_login, listened_s, membership)``: how long the collector
  listened to each channel for the snapshot, and whether the room sent membership (NAMES/JOIN;
  Twitch sends none for rooms over 1,000 users).
- ``users(user_id, login, display_name, broadcaster_type, description, created_at,
  profile_image_url, type, fetched_at)``: the latest profile per user id.
- ``snapshot_info(snapshot_id, source, params, stats)``: how a snapshot was taken (JSON text);
  ``stats.rows`` holds its row counts per table, written in the same transaction.
- ``imports(file_key, file_name, snapshot_id, imported_at)``: JSON files already imported.

`write_snapshot` writes a whole snapshot in ONE transaction, flipping its status to complete
in the same commit, so a crash (even ``kill -9``) at any moment leaves only whole snapshots.
A ``running`` row left by a killed collector is marked ``failed`` by `recover_stale`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from twitchgraph.clock import utcnow

__all__ = [
    "SOURCES",
    "SnapshotData",
    "export_parquet",
    "fail_snapshot",
    "open_store",
    "recover_stale",
    "start_snapshot",
    "upsert_users",
    "write_snapshot",
]

log = logging.getLogger(__name__)

SOURCES = ("names", "join", "message")  # preference order when a user came by several

_DDL = (
    """CREATE TABLE IF NOT EXISTS snapshots (
        snapshot_id BIGINT, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
        status VARCHAR, interval_s DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS streams (
        snapshot_id BIGINT, stream_id VARCHAR, user_id VARCHAR, user_login VARCHAR,
        user_name VARCHAR, game_id VARCHAR, game_name VARCHAR, title VARCHAR,
        viewer_count INTEGER, started_at TIMESTAMPTZ, language VARCHAR, tags VARCHAR[],
        is_mature BOOLEAN)""",
    """CREATE TABLE IF NOT EXISTS chatters (
        snapshot_id BIGINT, channel_login VARCHAR, user_login VARCHAR, source VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS listens (
        snapshot_id BIGINT, channel_login VARCHAR, listened_s DOUBLE, membership BOOLEAN)""",
    """CREATE TABLE IF NOT EXISTS users (
        user_id VARCHAR, login VARCHAR, display_name VARCHAR, broadcaster_type VARCHAR,
        description VARCHAR, created_at TIMESTAMPTZ, profile_image_url VARCHAR, type VARCHAR,
        fetched_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS snapshot_info (
        snapshot_id BIGINT, source VARCHAR, params VARCHAR, stats VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS imports (
        file_key VARCHAR, file_name VARCHAR, snapshot_id BIGINT, imported_at TIMESTAMPTZ)""",
)
_SEP = "\x1f"  # joins tags for the bulk insert; split back in SQL


@dataclass
class SnapshotData:
    """Everything one snapshot stores.

    Attributes:
        started_at, finished_at: UTC-aware times of the snapshot.
        streams: normalised Helix stream dicts (see `HelixClient.streams`).
        chatters: channel login -> {user login: source}.
        listens: channel login -> (seconds listened, membership seen).
        users: normalised Helix user dicts to upsert.
        interval_s: the schedule interval, or None for a one-off snapshot.
        source: "collect" or "import".
        params: how it was taken (options), stored as JSON.
        stats: counters (requests, 429s, ...), stored as JSON.
    """

    started_at: datetime
    finished_at: datetime
    streams: list[dict[str, Any]] = field(default_factory=list)
    chatters: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    listens: Mapping[str, tuple[float, bool]] = field(default_factory=dict)
    users: list[dict[str, Any]] = field(default_factory=list)
    interval_s: float | None = None
    source: str = "collect"
    params: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


def open_store(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the store at `path` (":memory:" for a throwaway one)."""
    path = str(path)
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(path)
    con.execute("SET TimeZone = 'UTC'")
    for ddl in _DDL:
        con.execute(ddl)
    return con


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Commit the block's statements together, or roll all of them back on any exception."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _insert_running(con: duckdb.DuckDBPyConnection, started_at: datetime,
                    interval_s: float | None) -> int:
    """Add a ``running`` snapshot row under the next free id (inside a transaction)."""
    row = con.execute("SELECT coalesce(max(snapshot_id), 0) + 1 FROM snapshots").fetchone()
    snapshot_id = int(row[0])
    con.execute("INSERT INTO snapshots VALUES (?, ?, NULL, 'running', ?)",
                [snapshot_id, started_at, interval_s])
    return snapshot_id


def start_snapshot(
    con: duckdb.DuckDBPyConnection, *, started_at: datetime, interval_s: float | None = None
) -> int:
    """Record a new snapshot as ``running`` (committed at once) and return its id."""
    with _transaction(con):
        return _insert_running(con, started_at, interval_s)


def fail_snapshot(con: duckdb.DuckDBPyConnection, snapshot_id: int,
                  finished_at: datetime | None = None) -> None:
    """Mark a running snapshot ``failed`` (it then never counts)."""
    con.execute(
        "UPDATE snapshots SET status = 'failed', finished_at = ? "
        "WHERE snapshot_id = ? AND status = 'running'",
        [finished_at or utcnow(), snapshot_id],
    )


def recover_stale(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Mark every ``running`` snapshot ``failed``; returns their ids.

    Call on start-up by the one process that writes the store (DuckDB lets a single process
    open a database file for writing, so any running row then was left by a dead collector).
    """
    rows = con.execute(
        "UPDATE snapshots SET status = 'failed' WHERE status = 'running' RETURNING snapshot_id"
    ).fetchall()
    ids = sorted(int(r[0]) for r in rows)
    if ids:
        log.warning("marked %d interrupted snapshot(s) as failed: %s", len(ids), ids)
    return ids


def write_snapshot(
    con: duckdb.DuckDBPyConnection,
    data: SnapshotData,
    *,
    snapshot_id: int | None = None,
    import_key: tuple[str, str] | None = None,
) -> int:
    """Store a whole snapshot in one transaction and mark it ``complete``; returns its id.

    Args:
        snapshot_id: the id from `start_snapshot`; None allocates a new one.
        import_key: (file_key, file_name) recorded in ``imports`` in the same transaction.

    On any error the transaction is rolled back: nothing of the snapshot is visible.
    """
    with _transaction(con):
        if snapshot_id is None:
            snapshot_id = _insert_running(con, data.started_at, data.interval_s)
        _insert_streams(con, snapshot_id, data.streams)
        _insert_chatters(con, snapshot_id, data.chatters)
        _insert_listens(con, snapshot_id, data.listens)
        _upsert_users(con, data.users, data.finished_at)
        # Row counts go in with the rows: anyone can check a snapshot is whole.
        rows = {table: con.execute(f"SELECT count(*) FROM {table} WHERE snapshot_id = ?",
                                   [snapshot_id]).fetchone()[0]
                for table in ("streams", "chatters", "listens")}
        con.execute("INSERT INTO snapshot_info VALUES (?, ?, ?, ?)",
                    [snapshot_id, data.source, json.dumps(data.params, default=str),
                     json.dumps({**data.stats, "rows": rows}, default=str)])
        if import_key is not None:
            con.execute("INSERT INTO imports VALUES (?, ?, ?, ?)",
                        [import_key[0], import_key[1], snapshot_id, utcnow()])
        updated = con.execute(
            "UPDATE snapshots SET status = 'complete', finished_at = ?, interval_s = ? "
            "WHERE snapshot_id = ? AND status = 'running' RETURNING snapshot_id",
            [data.finished_at, data.interval_s, snapshot_id],
        ).fetchall()
        if not updated:
            raise ValueError(f"snapshot {snapshot_id} is not running; not written")
    return snapshot_id


def _insert_streams(con: duckdb.DuckDBPyConnection, snapshot_id: int,
                    streams: list[dict[str, Any]]) -> None:
    if not streams:
        return
    frame = pd.DataFrame({
        "stream_id": [_opt(s.get("id")) for s in streams],
        "user_id": [_opt(s.get("user_id")) for s in streams],
        "user_login": [str(s["user_login"]).lower() for s in streams],
        "user_name": [str(s.get("user_name") or s["user_login"]) for s in streams],
        "game_id": [str(s.get("game_id") or "") for s in streams],
        "game_name": [str(s.get("game_name") or "") for s in streams],
        "title": [str(s.get("title") or "") for s in streams],
        "viewer_count": [int(s.get("viewer_count") or 0) for s in streams],
        "started_at": [str(s["started_at"]) if s.get("started_at") else None for s in streams],
        "language": [str(s.get("language") or "") for s in streams],
        "tags": [_SEP.join(s.get("tags") or []) for s in streams],
        "is_mature": [s.get("is_mature") for s in streams],
    })
    con.register("_tg_streams_in", frame)
    try:
        con.execute(
            f"""INSERT INTO streams SELECT ?, stream_id, user_id, user_login, user_name,
                game_id, game_name, title, viewer_count, TRY_CAST(started_at AS TIMESTAMPTZ),
                language,
                CASE WHEN tags = '' THEN []::VARCHAR[] ELSE string_split(tags, '{_SEP}') END,
                TRY_CAST(is_mature AS BOOLEAN)
            FROM _tg_streams_in""",
            [snapshot_id],
        )
    finally:
        con.unregister("_tg_streams_in")


def _opt(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _insert_chatters(con: duckdb.DuckDBPyConnection, snapshot_id: int,
                     chatters: Mapping[str, Mapping[str, str]]) -> None:
    rows = [(channel.lower(), user.lower(), source)
            for channel, users in chatters.items() for user, source in users.items()]
    if not rows:
        return
    bad = {r[2] for r in rows} - set(SOURCES)
    if bad:
        raise ValueError(f"chatter source must be one of {SOURCES}, got {sorted(bad)}")
    frame = pd.DataFrame(rows, columns=["channel_login", "user_login", "source"])
    con.register("_tg_chatters_in", frame)
    try:
        # Keep one row per (channel, user): names before join before message.
        con.execute(
            """INSERT INTO chatters
               SELECT ?, channel_login, user_login,
                      arg_min(source, CASE source WHEN 'names' THEN 0
                                                  WHEN 'join' THEN 1 ELSE 2 END)
               FROM _tg_chatters_in GROUP BY channel_login, user_login""",
            [snapshot_id],
        )
    finally:
        con.unregister("_tg_chatters_in")


def _insert_listens(con: duckdb.DuckDBPyConnection, snapshot_id: int,
                    listens: Mapping[str, tuple[float, bool]]) -> None:
    if not listens:
        return
    frame = pd.DataFrame(
        [(c.lower(), float(s), bool(m)) for c, (s, m) in listens.items()],
        columns=["channel_login", "listened_s", "membership"],
    )
    con.register("_tg_listens_in", frame)
    try:
        con.execute("INSERT INTO listens SELECT ?, channel_login, listened_s, membership "
                    "FROM _tg_listens_in", [snapshot_id])
    finally:
        con.unregister("_tg_listens_in")


def _upsert_users(con: duckdb.DuckDBPyConnection, users: Iterable[dict[str, Any]],
                  fetched_at: datetime) -> int:
    users = list({u["id"]: u for u in users}.values())
    if not users:
        return 0
    frame = pd.DataFrame({
        "user_id": [str(u["id"]) for u in users],
        "login": [str(u["login"]).lower() for u in users],
        "display_name": [str(u.get("display_name") or u["login"]) for u in users],
        "broadcaster_type": [str(u.get("broadcaster_type") or "") for u in users],
        "description": [str(u.get("description") or "") for u in users],
        "created_at": [str(u["created_at"]) if u.get("created_at") else None for u in users],
        "profile_image_url": [str(u.get("profile_image_url") or "") for u in users],
        "type": [str(u.get("type") or "") for u in users],
    })
    con.register("_tg_users_in", frame)
    try:
        con.execute("DELETE FROM users WHERE user_id IN (SELECT user_id FROM _tg_users_in)")
        con.execute(
            """INSERT INTO users SELECT user_id, login, display_name, broadcaster_type,
                description, TRY_CAST(created_at AS TIMESTAMPTZ), profile_image_url, type, ?
               FROM _tg_users_in""",
            [fetched_at],
        )
    finally:
        con.unregister("_tg_users_in")
    return len(users)


def upsert_users(con: duckdb.DuckDBPyConnection, users: Iterable[dict[str, Any]],
                 fetched_at: datetime | None = None) -> int:
    """Insert or replace profiles (normalised Helix user dicts) by user id, in one transaction.

    Returns how many distinct users were written.
    """
    with _transaction(con):
        return _upsert_users(con, users, fetched_at or utcnow())


def export_parquet(con: duckdb.DuckDBPyConnection, out_dir: str | Path) -> dict[str, int]:
    """Write every table of the store to ``OUT_DIR/<table>.parquet``; returns rows per table.

    Tables with a ``snapshot_id`` column keep only rows of complete snapshots (the snapshots
    table itself keeps every row, with its status), so readers see exactly what counts.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY table_name"
    ).fetchall()]
    counts: dict[str, int] = {}
    for table in tables:
        columns = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = ?", [table]).fetchall()}
        query = f'SELECT * FROM "{table}"'
        if "snapshot_id" in columns and table != "snapshots":
            query += (" WHERE snapshot_id IN "
                      "(SELECT snapshot_id FROM snapshots WHERE status = 'complete')")
        target = out / f"{table}.parquet"
        path_sql = str(target).replace("'", "''")
        # COPY answers with the number of rows it wrote.
        counts[table] = int(con.execute(
            f"COPY ({query}) TO '{path_sql}' (FORMAT parquet)").fetchone()[0])
    return counts
