"""The collector's files beside a store: the lock it holds for its run and its state file.

``<db>.collector.lock`` is flock-ed by the one collector running on the store, its PID
inside; ``<db>.collector.json`` is the live state it keeps for `twitchgraph status`. Readers
(status, the store's own busy messages) find both here without importing the collector.

``<db>`` is the store's resolved path (`store_key`): a symlink to the store, or another
spelling of its path, finds the same lock, so it cannot get a second collector in.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["collector_lock_path", "collector_running", "collector_state_path", "store_key"]


def store_key(path: str | Path) -> str:
    """The store's path with every symlink resolved: what its side files are named after."""
    return os.path.realpath(path)


def collector_lock_path(path: str | Path) -> Path:
    """The file a running collector keeps locked, its PID inside (one collector per store)."""
    return Path(f"{store_key(path)}.collector.lock")


def collector_state_path(db: str | Path) -> Path:
    """Where a collector keeps its live state for `twitchgraph status`."""
    return Path(f"{store_key(db)}.collector.json")


def collector_running(db: str | Path) -> int | None:
    """The PID of the collector running on `db`, or None."""
    path = collector_lock_path(db)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
