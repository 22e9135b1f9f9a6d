"""Import JSON dumps of snapshots (the original tool's kind) into the store.

One JSON file per snapshot, in either of two shapes:

1. Helix shape::

       {"date_time": "2022-05-02T10:00:00Z",
        "streams": [<Helix stream objects: id, user_id, user_login, user_name, game_id,
                     game_name, title, viewer_count, started_at, language, tags, is_mature>],
        "chatters": {"<channel_login>": ["<user_login>", ...], ...},
        "users": [<Helix user objects>]}          # optional

2. The original tool's per-stream shape (one key per live channel)::

       {"<channel_login>": {"chatters": ["<user_login>", ...],
                            "game_name": "Just Chatting",
                            "viewer_count": 1234,
                            "date_time": "2022-05-02 10:00:00"}, ...}

   where ``chatters`` may also be the old chatters endpoint's object
   ``{"chatters": {"broadcaster": [...], "vips": [...], "moderators": [...], "viewers": [...]}}``
   or ``{"broadcaster": [...], "viewers": [...], ...}`` (all roles are merged).

Times are ISO 8601 (a time without zone is taken as UTC) or epoch seconds. Chatters are stored
with source ``names`` (a chatters list is a membership list); logins are lower-cased. Imported
snapshots have no ``listens`` rows (how long they listened is unknown). Their ``interval_s`` is
the given interval or, by default, the median gap between the imported snapshots.

Re-importing is idempotent: a file is keyed on the SHA-256 of its content and skipped when
that key was imported before (under any name). Unreadable or malformed files are reported
and skipped; the others are still imported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from twitchgraph.store import SnapshotData, write_snapshot

__all__ = ["ImportReport", "import_json_dir", "parse_snapshot_file"]

log = logging.getLogger(__name__)

_ROLES = ("broadcaster", "vips", "moderators", "staff", "admins", "global_mods", "viewers")


class BadSnapshotFile(ValueError):
    """A JSON file that is not one of the accepted snapshot shapes."""


@dataclass
class ImportReport:
    """What `import_json_dir` did: files imported, already there, and bad (with reasons)."""

    imported: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)
    snapshot_ids: list[int] = field(default_factory=list)

    def line(self) -> str:
        return (f"imported {len(self.imported)} snapshot file(s), skipped "
                f"{len(self.duplicates)} already imported, {len(self.bad)} bad")


def _parse_time(value: Any, what: str) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise BadSnapshotFile(f"{what} is not an ISO 8601 time: {value!r}") from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise BadSnapshotFile(f"{what} is missing or not a time")


def _logins(value: Any, what: str) -> list[str]:
    """A chatters value (list, or the old endpoint's role object) as lower-case logins."""
    if isinstance(value, dict):
        roles = value.get("chatters", value)
        if not isinstance(roles, dict):
            raise BadSnapshotFile(f"{what}: 'chatters' must be a list or an object of roles")
        out: list[str] = []
        for role in _ROLES:
            out += _logins(roles.get(role, []), f"{what}.{role}")
        return out
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise BadSnapshotFile(f"{what} must be a list of logins")
    return [x.strip().lower() for x in value if x.strip()]


def parse_snapshot_file(path: str | Path) -> SnapshotData:
    """Read one snapshot file (either accepted shape) into `SnapshotData`.

    Raises:
        BadSnapshotFile (a ValueError) naming what is wrong; OSError if unreadable.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise BadSnapshotFile("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadSnapshotFile(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict) or not doc:
        raise BadSnapshotFile("top level must be a non-empty JSON object")
    if "streams" in doc:
        return _helix_shape(doc)
    return _per_stream_shape(doc)


def _helix_shape(doc: dict[str, Any]) -> SnapshotData:
    at = _parse_time(doc.get("date_time"), "date_time")
    raw_streams = doc["streams"]
    if not isinstance(raw_streams, list):
        raise BadSnapshotFile("'streams' must be a list of Helix stream objects")
    streams = []
    for i, s in enumerate(raw_streams):
        if not isinstance(s, dict) or not s.get("user_login"):
            raise BadSnapshotFile(f"streams[{i}] has no user_login")
        viewers = s.get("viewer_count", 0)
        if isinstance(viewers, bool) or not isinstance(viewers, int | float):
            raise BadSnapshotFile(f"streams[{i}].viewer_count is not a number")
        streams.append({**s, "user_login": str(s["user_login"]).lower(),
                        "viewer_count": int(viewers)})
    chatters_doc = doc.get("chatters", {})
    if not isinstance(chatters_doc, dict):
        raise BadSnapshotFile("'chatters' must map channel logins to lists of logins")
    chatters = {str(ch).lower(): dict.fromkeys(_logins(v, f"chatters[{ch!r}]"), "names")
                for ch, v in chatters_doc.items()}
    users = doc.get("users", [])
    if not isinstance(users, list):
        raise BadSnapshotFile("'users' must be a list of Helix user objects")
    users = [u for u in users if isinstance(u, dict) and u.get("id") and u.get("login")]
    return SnapshotData(started_at=at, finished_at=at, streams=streams, chatters=chatters,
                        users=users, source="import")


def _per_stream_shape(doc: dict[str, Any]) -> SnapshotData:
    streams, chatters, times = [], {}, []
    for login, entry in doc.items():
        if not isinstance(entry, dict):
            raise BadSnapshotFile(f"{login!r}: expected an object with chatters, game_name, "
                                  "viewer_count, date_time (or a Helix-shape file with "
                                  "'date_time' and 'streams')")
        channel = str(login).strip().lower()
        viewers = entry.get("viewer_count", 0)
        if isinstance(viewers, bool) or not isinstance(viewers, int | float):
            raise BadSnapshotFile(f"{login!r}: viewer_count is not a number")
        if "date_time" in entry:
            times.append(_parse_time(entry["date_time"], f"{login!r}: date_time"))
        streams.append({"id": None, "user_id": None, "user_login": channel,
                        "user_name": str(login), "game_name": entry.get("game_name") or "",
                        "viewer_count": int(viewers)})
        chatters[channel] = dict.fromkeys(
            _logins(entry.get("chatters", []), f"{login!r}: chatters"), "names")
    if not times:
        raise BadSnapshotFile("no date_time in any stream")
    return SnapshotData(started_at=min(times), finished_at=max(times), streams=streams,
                        chatters=chatters, source="import")


def _file_key(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def import_json_dir(
    con: duckdb.DuckDBPyConnection,
    json_dir: str | Path,
    *,
    interval_s: float | None = None,
    pattern: str = "*.json",
    on_file: Callable[[str, str], None] | None = None,
) -> ImportReport:
    """Import every `pattern` file under `json_dir` (recursively), oldest snapshot first.

    Args:
        con: an open store.
        interval_s: the collection interval to record; default the median gap between the
            snapshots imported.
        on_file: called as `on_file(name, outcome)` with outcome imported|duplicate|bad.

    Raises:
        FileNotFoundError: `json_dir` is not a directory.
    """
    root = Path(json_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory of JSON snapshot files")
    report = ImportReport()
    known = {r[0] for r in con.execute("SELECT file_key FROM imports").fetchall()}
    todo: list[tuple[datetime, Path, str]] = []
    for path in sorted(root.rglob(pattern)):
        name = str(path.relative_to(root))
        try:
            key = _file_key(path)
            if key in known:
                report.duplicates.append(name)
                _tell(on_file, name, "duplicate")
                continue
            known.add(key)
            todo.append((parse_snapshot_file(path).started_at, path, key))
        except (OSError, ValueError) as exc:
            _bad(report, on_file, name, exc)
    todo.sort(key=lambda t: (t[0], str(t[1])))
    if interval_s is None:
        interval_s = _median_gap([t for t, _, _ in todo])
    for _, path, key in todo:
        name = str(path.relative_to(root))
        try:
            data = parse_snapshot_file(path)
            data.interval_s = interval_s
            data.params = {"file": name}
            report.snapshot_ids.append(write_snapshot(con, data, import_key=(key, name)))
            report.imported.append(name)
            _tell(on_file, name, "imported")
        except (OSError, ValueError, duckdb.Error) as exc:
            _bad(report, on_file, name, exc)
    return report


def _median_gap(times: Iterable[datetime]) -> float | None:
    ordered = sorted(times)
    gaps = [(b - a).total_seconds() for a, b in zip(ordered, ordered[1:], strict=False)]
    gaps = [g for g in gaps if g > 0]
    return statistics.median(gaps) if gaps else None


def _bad(report: ImportReport, on_file: Callable[[str, str], None] | None, name: str,
         exc: Exception) -> None:
    reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
    report.bad.append((name, reason))
    log.warning("skipping %s: %s", name, reason)
    _tell(on_file, name, "bad")


def _tell(on_file: Callable[[str, str], None] | None, name: str, outcome: str) -> None:
    if on_file is not None:
        on_file(name, outcome)
