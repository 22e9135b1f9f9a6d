"""The collector's spool: finished snapshots on disk until the store takes them.

DuckDB lets one process hold a store read-write and then nobody else may open it, so the
collector does not keep it open: each finished snapshot (complete or failed) is written to
``<db>.spool/<started>-<id>.json`` (written aside, flushed, then renamed, so a file there is
always whole), and `Spool.commit` moves every waiting file into the store, one transaction
each, whenever the store's lock can be had. A reader holding the store for minutes only
delays when snapshots become visible, never the collection. A file is deleted only after its
transaction committed; its name is recorded in ``imports`` in that same transaction, so a
crash between the two never stores a snapshot twice.

Nothing can block the queue: a file that cannot be committed because of its own data (not
readable as a snapshot, or a value the store cannot hold) is moved aside as ``<name>.bad``
with the real error in ``<name>.bad.error`` (`Spool.set_aside`, shown first by `status` and
the quality report), and the files after it go on. Only a held lock (`StoreBusy`) or an I/O
error (a full disk) keeps a file waiting.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from twitchgraph.atomic import write_text
from twitchgraph.store.db import (
    DATA_ERRORS,
    BadSnapshot,
    SnapshotData,
    StoreBusy,
    announce_write,
    open_store,
    recover_stale,
    write_snapshot,
)
from twitchgraph.store.locks import store_key

__all__ = ["Spool", "snapshot_from_json", "snapshot_to_json"]

log = logging.getLogger(__name__)

_KEY = "spool:"  # imports.file_key prefix of committed spool files


def snapshot_to_json(data: SnapshotData) -> str:
    """The snapshot as JSON text (times as ISO strings)."""
    record = asdict(data)
    record["started_at"] = data.started_at.isoformat()
    record["finished_at"] = data.finished_at.isoformat()
    record["listens"] = {c: [s, m] for c, (s, m) in data.listens.items()}
    return json.dumps(record, default=str, separators=(",", ":"))


def snapshot_from_json(text: str) -> SnapshotData:
    """The inverse of `snapshot_to_json`."""
    record: dict[str, Any] = json.loads(text)
    record["started_at"] = datetime.fromisoformat(record["started_at"])
    record["finished_at"] = datetime.fromisoformat(record["finished_at"])
    record["listens"] = {c: (float(s), bool(m)) for c, (s, m) in record["listens"].items()}
    return SnapshotData(**record)


class Spool:
    """Snapshots waiting for the store at `db`, in ``<db>.spool/``.

    Args:
        db: the store's path.
        notify: gets the one line a store migration prints.
    """

    def __init__(self, db: str | Path, *, notify: Any = None) -> None:
        self.db = Path(db)
        self.dir = Path(f"{store_key(db)}.spool")  # one spool per store, however it is named
        self.notify = notify
        self._lock = threading.Lock()  # one commit at a time (the schedule and a retry loop)
        self._last_error = ""

    def put(self, data: SnapshotData) -> Path:
        """Write one finished snapshot to the spool; returns its file (whole, or not there)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"{data.started_at:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.json"
        final = self.dir / name
        tmp = self.dir / f".{name}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(snapshot_to_json(data))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return final

    def pending(self) -> list[Path]:
        """Spooled snapshots not yet in the store, oldest first."""
        if not self.dir.is_dir():
            return []
        return sorted(self.dir.glob("*.json"))

    def commit(self, *, wait_s: float = 0.0, budget_s: float = 2.0) -> dict[str, int]:
        """Move spooled snapshots into the store; returns {file name: snapshot id}.

        Stops taking new files after `budget_s` so that a backlog (after a long `enrich`)
        goes in over several short holds of the store, with readers let in between; call
        again while `pending()` is not empty.

        Returns what it committed before a failure: a file whose transaction failed stays
        spooled (and is tried again next time); the error is logged once until it changes.

        Raises:
            StoreBusy: another process holds the store (nothing was done; try later).
            StoreError: the store cannot be used at all (newer, foreign, not DuckDB).
        """
        # Another thread's commit may be moving our file right now: let it finish.
        if not self._lock.acquire(timeout=max(wait_s, 1.0)):
            return {}
        try:
            files = self.pending()
            if not files:
                return {}
            try:
                con = open_store(self.db, wait_s=wait_s, notify=self.notify)
            except StoreBusy:
                announce_write(self.db, True)  # new readers let us in first
                raise
            announce_write(self.db, False)
            committed: dict[str, int] = {}
            path = files[0]
            try:
                # This process holds the collector lock: a running row is a dead writer's.
                recover_stale(con)
                until = time.monotonic() + budget_s
                for path in files:
                    if committed and time.monotonic() > until:
                        break
                    snapshot_id = self._commit_one(con, path)
                    if snapshot_id >= 0:
                        committed[path.name] = snapshot_id
            except (duckdb.Error, OSError) as exc:  # disk full, I/O: the file stays spooled
                message = f"cannot commit {path.name} into {self.db}: {exc}"
                if message != self._last_error:
                    log.error("%s (kept in the spool, tried again later)", message)
                self._last_error = message
            else:
                self._last_error = ""
            finally:
                con.close()
            return committed
        finally:
            self._lock.release()

    def _commit_one(self, con: Any, path: Path) -> int:
        key = _KEY + path.name
        done = con.execute("SELECT snapshot_id FROM imports WHERE file_key = ?",
                           [key]).fetchall()
        if done:  # committed before a crash that left the file behind
            path.unlink(missing_ok=True)
            return int(done[0][0])
        try:
            data = snapshot_from_json(path.read_text(encoding="utf-8"))
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            # Files are renamed into place whole, so this is damage from outside: set it
            # aside rather than block every later snapshot behind it.
            self._set_aside(path, f"not a readable snapshot: {type(exc).__name__}: "
                            f"{str(exc)[:300]}")
            return -1
        try:
            snapshot_id = write_snapshot(con, data, import_key=(key, path.name))
        except BadSnapshot as exc:
            self._set_aside(path, str(exc))
            return -1
        except DATA_ERRORS + (ValueError, TypeError, KeyError) as exc:
            self._set_aside(path, f"cannot be stored: {str(exc).splitlines()[0][:300]}")
            return -1
        path.unlink()
        return snapshot_id

    def _set_aside(self, path: Path, error: str) -> None:
        bad = path.with_suffix(".bad")
        path.rename(bad)
        write_text(_error_path(bad), error + "\n")
        log.error("spooled snapshot %s set aside as %s: %s", path.name, bad.name, error)

    def set_aside(self) -> list[tuple[str, str]]:
        """Snapshots moved aside as ``.bad``, oldest first, each with why."""
        if not self.dir.is_dir():
            return []
        out = []
        for bad in sorted(self.dir.glob("*.bad")):
            try:
                error = _error_path(bad).read_text(encoding="utf-8").strip()
            except OSError:
                error = "not a readable snapshot"
            out.append((bad.name, error))
        return out

    @property
    def last_error(self) -> str:
        """The last commit error ('' once a commit succeeds)."""
        return self._last_error


def _error_path(bad: Path) -> Path:
    return bad.with_name(bad.name + ".error")
