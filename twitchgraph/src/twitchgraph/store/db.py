"""The embedded DuckDB store: snapshots of live streams and their chatters.

Schema version `SCHEMA_VERSION`, recorded in ``twitchgraph_meta``; this module owns these
tables and is the one place that creates and migrates them (`open_store`):

- ``snapshots(snapshot_id, started_at, finished_at, status, interval_s, error)``: status is
  ``complete`` once its rows are in, ``failed`` (with the reason in ``error``) when it
  collected nothing usable, ``running`` only for rows written by older versions or by
  `start_snapshot`. Only rows of complete snapshots count.
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
- ``snapshot_info(snapshot_id, source, params, stats, endpoints)``: how a snapshot was taken
  (JSON text); ``stats.rows`` holds its row counts per table, written in the same
  transaction; ``endpoints`` where it was collected from (`Endpoints.collect_label`: Twitch,
  or the simulator), NULL for imports and snapshots from before schema 5.
- ``imports(file_key, file_name, snapshot_id, imported_at)``: JSON files already imported
  (dumps by `twitchgraph import`; the collector's spool files under ``spool:<name>``).
- ``raids(snapshot_id, raided_at, from_login, from_name, to_login, viewers)``: every raid
  the chat saw in a raided channel's room (whether or not the raider is live or tracked),
  stored with the snapshot that was being taken when it came; logins lower case.

`write_snapshot` writes a whole snapshot in ONE transaction, flipping its status to complete
in the same commit, so a crash (even ``kill -9``) at any moment leaves only whole snapshots.
A ``running`` row left by a killed writer is marked ``failed`` by `recover_stale`.

Opening: DuckDB lets one process hold a file read-write, and then no other process may open
it at all. So nothing keeps the store open for long: readers open it ``read_only`` (any
number at once), writers for as long as one job takes, and both wait up to `wait_s` for a
lock held by someone else. An older store is migrated in place, in one transaction, with one
line saying what changed; a newer store, a foreign DuckDB file and a file that is not DuckDB
each raise `StoreError` and are left untouched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from twitchgraph.clock import utcnow
from twitchgraph.errors import TwitchgraphError
from twitchgraph.store.chatter_sources import SOURCES
from twitchgraph.store.limits import COUNT_MAX, count_fits
from twitchgraph.store.locks import collector_lock_path, store_key

__all__ = [
    "SCHEMA_VERSION",
    "SOURCES",
    "BadSnapshot",
    "SnapshotData",
    "StoreBusy",
    "StoreError",
    "announce_write",
    "export_parquet",
    "fail_snapshot",
    "open_store",
    "recover_stale",
    "registered",
    "snapshot_endpoints",
    "start_snapshot",
    "upsert_users",
    "write_snapshot",
]

log = logging.getLogger(__name__)

_DDL = (
    """CREATE TABLE IF NOT EXISTS snapshots (
        snapshot_id BIGINT, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
        status VARCHAR, interval_s DOUBLE, error VARCHAR)""",
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
        snapshot_id BIGINT, source VARCHAR, params VARCHAR, stats VARCHAR, endpoints VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS imports (
        file_key VARCHAR, file_name VARCHAR, snapshot_id BIGINT, imported_at TIMESTAMPTZ)""",
)
_RAIDS_DDL = """CREATE TABLE IF NOT EXISTS raids (
        snapshot_id BIGINT, raided_at TIMESTAMPTZ, from_login VARCHAR, from_name VARCHAR,
        to_login VARCHAR, viewers INTEGER)"""
_DDL = (*_DDL, _RAIDS_DDL)
_SEP = "\x1f"  # joins tags for the bulk insert; split back in SQL

SCHEMA_VERSION = 5
# Version v -> v + 1: what changed (the line printed on migrating) and the statements.
# Version 1 is the first released schema (no interval_s, fetched_at, error columns).
_MIGRATIONS: dict[int, tuple[str, tuple[str, ...]]] = {
    1: ("added snapshots.interval_s, users.fetched_at",
        ("ALTER TABLE snapshots ADD COLUMN interval_s DOUBLE",
         "ALTER TABLE users ADD COLUMN fetched_at TIMESTAMPTZ")),
    2: ("added snapshots.error", ("ALTER TABLE snapshots ADD COLUMN error VARCHAR",)),
    3: ("added the raids table", (_RAIDS_DDL,)),
    4: ("added snapshot_info.endpoints (where each snapshot was collected from)",
        ("ALTER TABLE snapshot_info ADD COLUMN endpoints VARCHAR",)),
}
_META = "twitchgraph_meta"


class StoreError(TwitchgraphError):
    """The store cannot be opened as asked; the message names the file and what to do."""


class StoreBusy(StoreError):
    """Another process holds the store's lock (a writer, or readers while we want to write)."""


class BadSnapshot(StoreError):
    """A snapshot whose own data cannot be stored (a value its column cannot hold); storing
    it again can never work, unlike a busy store or a full disk."""


# The DuckDB errors a snapshot's own values cause (a commit retried later fails the same way).
DATA_ERRORS: tuple[type[Exception], ...] = (
    duckdb.ConversionException, duckdb.OutOfRangeException, duckdb.InvalidInputException,
    duckdb.ConstraintException, duckdb.TypeMismatchException,
)


@dataclass
class SnapshotData:
    """Everything one snapshot stores.

    Attributes:
        started_at, finished_at: UTC-aware times of the snapshot.
        streams: normalised Helix stream dicts (see `HelixClient.streams`).
        chatters: channel login -> {user login: source}.
        listens: channel login -> (seconds listened, membership seen).
        users: normalised Helix user dicts to upsert.
        raids: raids seen in chat, dicts with ``raided_at`` (ISO text or datetime),
            ``from_login``, ``from_name``, ``to_login``, ``viewers``.
        interval_s: the schedule interval, or None for a one-off snapshot.
        source: "collect" or "import".
        params: how it was taken (options), stored as JSON.
        stats: counters (requests, 429s, ...), stored as JSON.
        status: "complete", or "failed" for a snapshot that collected nothing usable (its
            rows are not stored, only its times, `error`, params and stats).
        error: why it failed.
        endpoints: where it was collected from (`Endpoints.collect_label`); "" for imports.
    """

    started_at: datetime
    finished_at: datetime
    streams: list[dict[str, Any]] = field(default_factory=list)
    chatters: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    listens: Mapping[str, tuple[float, bool]] = field(default_factory=dict)
    users: list[dict[str, Any]] = field(default_factory=list)
    raids: list[dict[str, Any]] = field(default_factory=list)
    interval_s: float | None = None
    source: str = "collect"
    params: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    status: str = "complete"
    error: str = ""
    endpoints: str = ""


def open_store(
    path: str | Path,
    *,
    read_only: bool = False,
    wait_s: float = 10.0,
    notify: Callable[[str], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the store at `path` (":memory:" for a throwaway one), migrating an older one.

    Args:
        read_only: open for reading only (many readers at once, beside a running collector);
            the store must exist. Read-write creates it when missing.
        wait_s: how long to retry while another process holds the lock.
        notify: gets the one line a migration prints (default: logged as a warning).

    Raises:
        StoreBusy: the lock was still held after `wait_s`.
        StoreError: no store there (read-only), a newer store, a DuckDB file that is not a
            twitchgraph store, a file that is not DuckDB.
    """
    if str(path) == ":memory:":
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        _migrate(con, 0, Path(":memory:"), notify)
        return con
    path = Path(path)
    if read_only and not path.exists():
        raise StoreError(f"no store at {path}: run `twitchgraph collect --db {path}` first "
                         "or pass --db")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = _connect(path, read_only=read_only, wait_s=wait_s)
    try:
        try:
            version = _schema_version(con, path)
            if version == SCHEMA_VERSION:
                _check_tables(con, path)
        except duckdb.Error as exc:  # a block that cannot be read: truncated, flipped bytes
            raise damaged(path, str(exc).splitlines()[0]) from None
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path} was written by a newer twitchgraph (store schema "
                             f"{version}; this one knows up to {SCHEMA_VERSION}): upgrade "
                             "twitchgraph to read it")
        if version < SCHEMA_VERSION and read_only:
            # Migrating is the one write a reading command may cause, once per store.
            con.close()
            open_store(path, wait_s=wait_s, notify=notify).close()
            con = _connect(path, read_only=True, wait_s=wait_s)
        elif version < SCHEMA_VERSION:
            _migrate(con, version, path, notify)
    except BaseException:
        con.close()
        raise
    return con


_PID = re.compile(r"\(PID (\d+)\)")
_WANTED_FRESH_S = 2.0  # a writer refreshes its note while it waits; older means it is gone


def _collector_pid(path: Path) -> int | None:
    try:
        text = collector_lock_path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def write_wanted_path(path: str | Path) -> Path:
    """The note a waiting writer (the collector's commit) leaves for readers."""
    return Path(f"{store_key(path)}.write-wanted")


def announce_write(path: str | Path, wanted: bool) -> None:
    """Ask readers to let a waiting writer in between two of them (or withdraw the ask).

    Readers back to back would otherwise starve the collector's commit: each new reader
    holds back while the note is fresh, the writer takes the lock in the gap.
    """
    note = write_wanted_path(path)
    if wanted:
        note.touch()
    else:
        note.unlink(missing_ok=True)


def _writer_waiting(path: Path) -> bool:
    try:
        return time.time() - write_wanted_path(path).stat().st_mtime < _WANTED_FRESH_S
    except OSError:
        return False


def _connect(path: Path, *, read_only: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
    """Connect, retrying while another process holds the file's lock.

    A reader waits up to `wait_s` only for the collector's commit (seconds at most); any
    other writer (enrich, import) may hold the store for minutes, so it gives up after 1 s.
    A writer waits up to `wait_s` for readers and writers alike.
    """
    started = time.monotonic()
    delay = 0.02
    while read_only and _writer_waiting(path) and time.monotonic() < started + wait_s:
        time.sleep(0.02)
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            # ConnectionException: this very process holds the file in the other mode.
            message = str(exc).splitlines()[0]
            if "not a valid DuckDB database file" in message:
                raise StoreError(f"{path} is not a DuckDB database: pass --db a twitchgraph "
                                 "store (a .duckdb file made by `twitchgraph collect`)") from None
            if "Could not set lock" not in message and "different configuration" not in message:
                raise StoreError(f"cannot open the store {path}: {message}") from None
            found = _PID.search(message)
            pid = int(found.group(1)) if found else None
            committing = pid is not None and pid == _collector_pid(path)
            patience = wait_s if committing or not read_only else min(wait_s, 1.0)
            if time.monotonic() >= started + patience:
                holder = f"process {pid}" if pid else "another process"
                if committing:
                    what = f"the collector ({holder}) is committing into it"
                elif read_only:
                    what = f"{holder} is writing to it (an enrich, import or bots import)"
                else:
                    what = f"{holder} has it open (a reading command, or a writer)"
                raise StoreBusy(f"cannot open the store {path}: {what}; waited {patience:g} "
                                "s, try again when it is done") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        except duckdb.Error as exc:  # e.g. "Corrupt database file: computed checksum ..."
            raise damaged(path, str(exc).splitlines()[0]) from None
    con.execute("SET TimeZone = 'UTC'")
    return con


def damaged(path: str | Path, what: str) -> StoreError:
    """The one error for a store that cannot be read as one (every command opening it)."""
    return StoreError(f"the store {path} is damaged ({what}): restore it from a backup, or "
                      f"move it aside and start a new one with `twitchgraph collect`")


_TABLES = ("snapshots", "streams", "chatters", "listens", "users", "snapshot_info", "imports",
           "raids")


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()}


def _check_tables(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    missing = [t for t in _TABLES if t not in _tables(con)]
    if missing:
        raise damaged(path, f"table(s) missing: {', '.join(missing)}")
    # Read one row of each: a damaged block shows here, not in the middle of a build.
    for table in _TABLES:
        con.execute(f"SELECT * FROM {table} LIMIT 1").fetchall()


def _schema_version(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """The store's schema version; 0 for an empty DuckDB file (a new store)."""
    tables = _tables(con)
    if _META in tables:
        rows = con.execute(f"SELECT value FROM {_META} WHERE key = 'schema_version'").fetchall()
        if not rows or not str(rows[0][0]).isascii() or not str(rows[0][0]).isdigit():
            raise damaged(path, f"its schema version is {rows[0][0]!r}, not a number" if rows
                          else "its schema version is missing")
        return int(rows[0][0])
    if not tables:
        return 0
    columns = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = 'snapshots'").fetchall()}
    if not {"snapshot_id", "started_at", "status"} <= columns:
        shown = ", ".join(sorted(tables)[:4]) + (", ..." if len(tables) > 4 else "")
        raise StoreError(f"{path} is a DuckDB file but not a twitchgraph store (its tables: "
                         f"{shown}): pass --db a store made by `twitchgraph collect`")
    if "error" in columns:  # version 3 on: the meta table was there
        raise damaged(path, f"its {_META} table is missing")
    # Stores from before versions were recorded: tell 1 from 2 by the columns added in 2.
    return 2 if "interval_s" in columns else 1


def _migrate(con: duckdb.DuckDBPyConnection, version: int, path: Path,
             notify: Callable[[str], None] | None) -> None:
    """Bring the store from `version` to `SCHEMA_VERSION` in one transaction."""
    changes = []
    with _transaction(con):
        if version > 0:
            for v in range(version, SCHEMA_VERSION):
                what, statements = _MIGRATIONS[v]
                for statement in statements:
                    con.execute(statement)
                changes.append(what)
        for ddl in _DDL:
            con.execute(ddl)
        con.execute(f"CREATE TABLE IF NOT EXISTS {_META} (key VARCHAR PRIMARY KEY, "
                    "value VARCHAR)")
        con.execute(f"INSERT OR REPLACE INTO {_META} VALUES ('schema_version', ?)",
                    [str(SCHEMA_VERSION)])
    if changes:
        line = (f"migrated the store {path} from schema {version} to {SCHEMA_VERSION}: "
                + "; ".join(changes))
        (notify or log.warning)(line)


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


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> Iterator[str]:
    """`frame` as the view `name` on `con` for the block, unregistered however it ends.

    DuckDB keeps a registered frame until it is unregistered; a name left behind would
    shadow the next caller's frame, or keep a large one alive.
    """
    con.register(name, frame)
    try:
        yield name
    except BaseException:
        # A failed statement leaves the transaction aborted, and DuckDB then refuses even
        # unregister ("Current transaction is aborted"): the first error is the one to show.
        # (A later register of the same name replaces what is left.)
        with contextlib.suppress(duckdb.TransactionException):
            con.unregister(name)
        raise
    con.unregister(name)


def _insert_running(con: duckdb.DuckDBPyConnection, started_at: datetime,
                    interval_s: float | None) -> int:
    """Add a ``running`` snapshot row under the next free id (inside a transaction)."""
    row = con.execute("SELECT coalesce(max(snapshot_id), 0) + 1 FROM snapshots").fetchone()
    snapshot_id = int(row[0])
    con.execute("INSERT INTO snapshots (snapshot_id, started_at, status, interval_s) "
                "VALUES (?, ?, 'running', ?)", [snapshot_id, started_at, interval_s])
    return snapshot_id


def start_snapshot(
    con: duckdb.DuckDBPyConnection, *, started_at: datetime, interval_s: float | None = None
) -> int:
    """Record a new snapshot as ``running`` (committed at once) and return its id."""
    with _transaction(con):
        return _insert_running(con, started_at, interval_s)


def fail_snapshot(con: duckdb.DuckDBPyConnection, snapshot_id: int,
                  finished_at: datetime | None = None, error: str = "failed") -> None:
    """Mark a running snapshot ``failed`` (it then never counts)."""
    con.execute(
        "UPDATE snapshots SET status = 'failed', finished_at = ?, error = ? "
        "WHERE snapshot_id = ? AND status = 'running'",
        [finished_at or utcnow(), error, snapshot_id],
    )


def recover_stale(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Mark every ``running`` snapshot ``failed``; returns their ids.

    Call on start-up by the one process that writes the store (DuckDB lets a single process
    open a database file for writing, so any running row then was left by a dead collector).
    """
    rows = con.execute(
        "UPDATE snapshots SET status = 'failed', error = 'interrupted (the collector was "
        "killed)' WHERE status = 'running' RETURNING snapshot_id"
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

    A snapshot whose `data.status` is ``failed`` is recorded as failed, with its error, and
    none of its rows.

    Args:
        snapshot_id: the id from `start_snapshot`; None allocates a new one.
        import_key: (file_key, file_name) recorded in ``imports`` in the same transaction.

    On any error the transaction is rolled back: nothing of the snapshot is visible.

    Raises:
        BadSnapshot: a value the store cannot hold (a viewer count over INTEGER, a time
            DuckDB cannot read), with the real error: committing it again cannot work.
    """
    _check_counts(data)
    try:
        return _write_snapshot(con, data, snapshot_id, import_key)
    except DATA_ERRORS as exc:
        raise BadSnapshot(f"the snapshot of {data.started_at:%Y-%m-%d %H:%M:%S} cannot be "
                          f"stored: {str(exc).splitlines()[0]}") from exc


def _check_counts(data: SnapshotData) -> None:
    """Refuse counts their INTEGER column cannot hold, naming the row (a spooled file may
    come from a version that did not check them where they came in)."""
    checks = [("stream", s.get("user_login"), s.get("viewer_count") or 0)
              for s in data.streams]
    checks += [("raid", f"{r.get('from_login')} -> {r.get('to_login')}", r.get("viewers") or 0)
               for r in data.raids]
    for kind, who, value in checks:
        if not count_fits(value):
            raise BadSnapshot(
                f"the snapshot of {data.started_at:%Y-%m-%d %H:%M:%S} cannot be stored: the "
                f"{kind} {who} has viewer count {str(value)[:40]}, not a whole number from 0 "
                f"to {COUNT_MAX}")


def _write_snapshot(con: duckdb.DuckDBPyConnection, data: SnapshotData,
                    snapshot_id: int | None, import_key: tuple[str, str] | None) -> int:
    with _transaction(con):
        if snapshot_id is None:
            snapshot_id = _insert_running(con, data.started_at, data.interval_s)
        complete = data.status == "complete"
        if complete:
            _insert_streams(con, snapshot_id, data.streams)
            _insert_chatters(con, snapshot_id, data.chatters)
            _insert_listens(con, snapshot_id, data.listens)
            _upsert_users(con, data.users, data.finished_at)
            _insert_raids(con, snapshot_id, data.raids)
        # Row counts go in with the rows: anyone can check a snapshot is whole.
        rows = {table: con.execute(f"SELECT count(*) FROM {table} WHERE snapshot_id = ?",
                                   [snapshot_id]).fetchone()[0]
                for table in ("streams", "chatters", "listens", "raids")}
        con.execute("INSERT INTO snapshot_info (snapshot_id, source, params, stats, endpoints) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [snapshot_id, data.source, json.dumps(data.params, default=str),
                     json.dumps({**data.stats, "rows": rows}, default=str),
                     data.endpoints or None])
        if import_key is not None:
            con.execute("INSERT INTO imports VALUES (?, ?, ?, ?)",
                        [import_key[0], import_key[1], snapshot_id, utcnow()])
        updated = con.execute(
            "UPDATE snapshots SET status = ?, finished_at = ?, interval_s = ?, error = ? "
            "WHERE snapshot_id = ? AND status = 'running' RETURNING snapshot_id",
            ["complete" if complete else "failed", data.finished_at, data.interval_s,
             None if complete else (data.error or "failed"), snapshot_id],
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
    with registered(con, "_tg_streams_in", frame):
        con.execute(
            f"""INSERT INTO streams SELECT ?, stream_id, user_id, user_login, user_name,
                game_id, game_name, title, viewer_count, TRY_CAST(started_at AS TIMESTAMPTZ),
                language,
                CASE WHEN tags = '' THEN []::VARCHAR[] ELSE string_split(tags, '{_SEP}') END,
                TRY_CAST(is_mature AS BOOLEAN)
            FROM _tg_streams_in""",
            [snapshot_id],
        )


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
    with registered(con, "_tg_chatters_in", frame):
        # Keep one row per (channel, user): the source that comes first in SOURCES.
        con.execute(
            """INSERT INTO chatters
               SELECT ?, channel_login, user_login,
                      arg_min(source, list_position(?::VARCHAR[], source))
               FROM _tg_chatters_in GROUP BY channel_login, user_login""",
            [snapshot_id, list(SOURCES)],
        )


def _insert_listens(con: duckdb.DuckDBPyConnection, snapshot_id: int,
                    listens: Mapping[str, tuple[float, bool]]) -> None:
    if not listens:
        return
    frame = pd.DataFrame(
        [(c.lower(), float(s), bool(m)) for c, (s, m) in listens.items()],
        columns=["channel_login", "listened_s", "membership"],
    )
    with registered(con, "_tg_listens_in", frame):
        con.execute("INSERT INTO listens SELECT ?, channel_login, listened_s, membership "
                    "FROM _tg_listens_in", [snapshot_id])


def _insert_raids(con: duckdb.DuckDBPyConnection, snapshot_id: int,
                  raids: list[dict[str, Any]]) -> None:
    if not raids:
        return
    frame = pd.DataFrame({
        "raided_at": [str(r["raided_at"]) for r in raids],
        "from_login": [str(r["from_login"]).lower() for r in raids],
        "from_name": [str(r.get("from_name") or r["from_login"]) for r in raids],
        "to_login": [str(r["to_login"]).lower() for r in raids],
        "viewers": [int(r.get("viewers") or 0) for r in raids],
    })
    with registered(con, "_tg_raids_in", frame):
        con.execute("INSERT INTO raids SELECT ?, CAST(raided_at AS TIMESTAMPTZ), from_login, "
                    "from_name, to_login, viewers FROM _tg_raids_in", [snapshot_id])


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
    with registered(con, "_tg_users_in", frame):
        con.execute("DELETE FROM users WHERE user_id IN (SELECT user_id FROM _tg_users_in)")
        con.execute(
            """INSERT INTO users SELECT user_id, login, display_name, broadcaster_type,
                description, TRY_CAST(created_at AS TIMESTAMPTZ), profile_image_url, type, ?
               FROM _tg_users_in""",
            [fetched_at],
        )
    return len(users)


def upsert_users(con: duckdb.DuckDBPyConnection, users: Iterable[dict[str, Any]],
                 fetched_at: datetime | None = None) -> int:
    """Insert or replace profiles (normalised Helix user dicts) by user id, in one transaction.

    Returns how many distinct users were written.
    """
    with _transaction(con):
        return _upsert_users(con, users, fetched_at or utcnow())


def snapshot_endpoints(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    """The endpoints the store's snapshots were collected from, with how many snapshots
    each, most first (snapshots that do not record theirs left out)."""
    return [(str(e), int(n)) for e, n in con.execute(
        "SELECT endpoints, count(*) FROM snapshot_info WHERE endpoints IS NOT NULL "
        "GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()]


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
