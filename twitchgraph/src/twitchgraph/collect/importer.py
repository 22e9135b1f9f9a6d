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

A file may also hold several snapshot documents: a JSON array of them, or JSON Lines (one per
line), as ``mongoexport`` writes a collection; MongoDB extended JSON values (``{"$date": ...}``,
``{"$numberInt": ...}``) and ``_id`` keys are understood.

Times are ISO 8601 (a time without zone is taken as UTC) or epoch seconds. Chatters are stored
with source ``names`` (a chatters list is a membership list); logins are lower-cased. Imported
snapshots have no ``listens`` rows (how long they listened is unknown). Their ``interval_s`` is
the given interval or, by default, the median gap between the imported snapshots.

Re-importing is idempotent: each document is keyed on the SHA-256 of its file's content (and
its position in the file) and skipped when that key was imported before, under any file name.
Unreadable or malformed files are reported and skipped; the others are still imported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from twitchgraph.errors import TwitchgraphError
from twitchgraph.store.db import BadSnapshot, SnapshotData, write_snapshot
from twitchgraph.store.limits import COUNT_MAX, EARLIEST, time_is_sane

__all__ = ["ImportReport", "import_json_dir", "parse_snapshot_doc", "parse_snapshot_file"]

log = logging.getLogger(__name__)

_ROLES = ("broadcaster", "vips", "moderators", "staff", "admins", "global_mods", "viewers")


class BadSnapshotFile(TwitchgraphError, ValueError):
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


def _plain(value: Any) -> Any:
    """MongoDB extended JSON ({"$date": ...}, {"$numberInt": "5"}, ...) as plain values."""
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "$date":
            inner = _plain(inner)
            # canonical extended JSON gives milliseconds since the epoch
            return inner / 1000.0 if isinstance(inner, int | float) else inner
        try:
            if key in ("$numberInt", "$numberLong"):
                return int(inner)
            if key == "$numberDouble":
                return float(inner)
        except (TypeError, ValueError):
            raise BadSnapshotFile(f"{key} holds no number: {inner!r}") from None
    return value


def _parse_time(value: Any, what: str) -> datetime:
    """A snapshot time between 2011 (Twitch's start) and a day from now: a dump dated
    9999-12-31 would otherwise stretch every time window of the build over 8,000 years."""
    at = _read_time(value, what)
    if not time_is_sane(at):
        raise BadSnapshotFile(f"{what} {at:%Y-%m-%d %H:%M:%S} is outside the sane range "
                              f"({EARLIEST:%Y-%m-%d} to a day from now)")
    return at


def _read_time(value: Any, what: str) -> datetime:
    value = _plain(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):  # NaN, infinite or beyond year 9999
            raise BadSnapshotFile(f"{what} is not a time: {value!r}") from None
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
            return (parsed.replace(tzinfo=UTC) if parsed.tzinfo is None
                    else parsed.astimezone(UTC))
        except (ValueError, OverflowError):  # OverflowError: 9999-12-31T23:59-01:00
            raise BadSnapshotFile(f"{what} is not an ISO 8601 time: {value!r}") from None
    raise BadSnapshotFile(f"{what} is missing or not a time")


def _count(value: Any, what: str) -> int:
    """A viewer count (a finite number, possibly extended JSON) as an int."""
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadSnapshotFile(f"{what} is not a number")
    if not 0 <= value <= COUNT_MAX:
        raise BadSnapshotFile(f"{what} {value:g} is not a count from 0 to {COUNT_MAX}")
    return int(value)


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


def parse_snapshot_file(path: str | Path) -> list[SnapshotData]:
    """Read the snapshot document(s) of one file (see the module docstring for the shapes).

    Raises:
        BadSnapshotFile (a ValueError) naming what is wrong; OSError if unreadable.
    """
    return _parse(Path(path).read_bytes())


def _parse(raw: bytes) -> list[SnapshotData]:
    return [parse_snapshot_doc(doc, f"document {i + 1}" if many else "")
            for i, doc, many in _documents(raw)]


def parse_snapshot_doc(doc: Any, where: str = "") -> SnapshotData:
    """One decoded snapshot document (either shape) as `SnapshotData`."""
    try:
        if not isinstance(doc, dict) or not doc:
            raise BadSnapshotFile("a snapshot must be a non-empty JSON object")
        if "streams" in doc:
            return _helix_shape(doc)
        return _per_stream_shape(doc)
    except BadSnapshotFile as exc:
        raise BadSnapshotFile(f"{where}: {exc}" if where else str(exc)) from None


_TOO_DEEP = "JSON nested too deeply to read (no snapshot is nested like this)"


def _documents(raw: bytes) -> list[tuple[int, Any, bool]]:
    """(index, document, several-in-file) for a JSON object, a JSON array or JSON Lines."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadSnapshotFile("not UTF-8 text") from None
    try:
        doc = json.loads(text)
    except RecursionError:
        raise BadSnapshotFile(_TOO_DEEP) from None
    except json.JSONDecodeError as exc:
        lines = [line for line in text.splitlines() if line.strip()]
        if exc.msg != "Extra data" or len(lines) < 2:
            raise BadSnapshotFile(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
        docs = []
        for number, line in enumerate(lines, 1):
            try:
                docs.append(json.loads(line))
            except RecursionError:
                raise BadSnapshotFile(f"JSON Lines: line {number}: {_TOO_DEEP}") from None
            except json.JSONDecodeError as line_exc:
                raise BadSnapshotFile(f"JSON Lines: line {number} is not valid JSON "
                                      f"({line_exc.msg})") from None
        return [(i, d, True) for i, d in enumerate(docs)]
    if isinstance(doc, list):
        if not doc:
            raise BadSnapshotFile("an empty JSON array holds no snapshot")
        return [(i, d, True) for i, d in enumerate(doc)]
    return [(0, doc, False)]


def _helix_shape(doc: dict[str, Any]) -> SnapshotData:
    at = _parse_time(doc.get("date_time"), "date_time")
    raw_streams = doc["streams"]
    if not isinstance(raw_streams, list):
        raise BadSnapshotFile("'streams' must be a list of Helix stream objects")
    streams = []
    for i, s in enumerate(raw_streams):
        if not isinstance(s, dict) or not s.get("user_login"):
            raise BadSnapshotFile(f"streams[{i}] has no user_login")
        viewers = _count(s.get("viewer_count", 0), f"streams[{i}].viewer_count")
        tags = s.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise BadSnapshotFile(f"streams[{i}].tags must be a list of strings")
        streams.append({**s, "user_login": str(s["user_login"]).lower(),
                        "viewer_count": viewers})
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
        if str(login).startswith("_") or login == "date_time":
            continue  # _id and the like: Twitch logins never start with "_"
        if not isinstance(entry, dict):
            raise BadSnapshotFile(f"{login!r}: expected an object with chatters, game_name, "
                                  "viewer_count, date_time (or a Helix-shape file with "
                                  "'date_time' and 'streams')")
        channel = str(login).strip().lower()
        viewers = _count(entry.get("viewer_count", 0), f"{login!r}: viewer_count")
        if "date_time" in entry:
            times.append(_parse_time(entry["date_time"], f"{login!r}: date_time"))
        streams.append({"id": None, "user_id": None, "user_login": channel,
                        "user_name": str(login), "game_name": entry.get("game_name") or "",
                        "viewer_count": viewers})
        chatters[channel] = dict.fromkeys(
            _logins(entry.get("chatters", []), f"{login!r}: chatters"), "names")
    if "date_time" in doc and not isinstance(doc["date_time"], dict | list):
        times.append(_parse_time(doc["date_time"], "date_time"))
    if not times:
        raise BadSnapshotFile("no date_time in any stream")
    return SnapshotData(started_at=min(times), finished_at=max(times), streams=streams,
                        chatters=chatters, source="import")


def import_json_dir(
    con: duckdb.DuckDBPyConnection,
    json_dir: str | Path,
    *,
    interval_s: float | None = None,
    pattern: str = "*.json",
    on_file: Callable[[str, str], None] | None = None,
) -> ImportReport:
    """Import every `pattern` file under `json_dir` (recursively), in file-name order.

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
    # Pass 1: which files are new and when their snapshots were taken (for the interval).
    todo: list[tuple[Path, str]] = []
    times: list[datetime] = []
    for path in sorted(root.rglob(pattern)):
        name = str(path.relative_to(root))
        try:
            raw = path.read_bytes()
            key = hashlib.sha256(raw).hexdigest()
            snapshots = _parse(raw)
            keys = [_doc_key(key, i, len(snapshots)) for i in range(len(snapshots))]
            if all(k in known for k in keys):
                report.duplicates.append(name)
                _tell(on_file, name, "duplicate")
                continue
            known.update(keys)
            todo.append((path, key))
            times += [s.started_at for s in snapshots]
        except (OSError, ValueError) as exc:
            _bad(report, on_file, name, exc)
    if interval_s is None:
        interval_s = _median_gap(times)
    done = {r[0] for r in con.execute("SELECT file_key FROM imports").fetchall()}
    # Pass 2: one transaction per snapshot; a file counts as imported when all of it is in.
    # (Files are parsed again rather than kept from pass 1, so memory holds one file at a time.)
    for path, key in todo:
        name = str(path.relative_to(root))
        try:
            snapshots = parse_snapshot_file(path)
            for i, data in enumerate(snapshots):
                doc_key = _doc_key(key, i, len(snapshots))
                if doc_key in done:
                    continue
                data.interval_s = interval_s
                data.params = {"file": name} if len(snapshots) == 1 else {"file": name,
                                                                          "document": i + 1}
                report.snapshot_ids.append(
                    write_snapshot(con, data, import_key=(doc_key, name)))
            report.imported.append(name)
            _tell(on_file, name, "imported")
        except (OSError, ValueError, duckdb.Error, BadSnapshot) as exc:
            _bad(report, on_file, name, exc)
    return report


def _doc_key(file_key: str, index: int, count: int) -> str:
    return file_key if count == 1 else f"{file_key}#{index}"


def _median_gap(times: Iterable[datetime]) -> float | None:
    ordered = sorted(times)
    gaps = [(b - a).total_seconds() for a, b in zip(ordered, ordered[1:], strict=False)]
    gaps = [g for g in gaps if g > 0]
    return statistics.median(gaps) if gaps else None


def _bad(report: ImportReport, on_file: Callable[[str, str], None] | None, name: str,
         exc: Exception) -> None:
    reason = (str(exc) if isinstance(exc, ValueError | TwitchgraphError)
              else f"{type(exc).__name__}: {exc}")
    report.bad.append((name, reason))
    log.info("skipping %s: %s", name, reason)  # the CLI names each skipped file
    _tell(on_file, name, "bad")


def _tell(on_file: Callable[[str, str], None] | None, name: str, outcome: str) -> None:
    if on_file is not None:
        on_file(name, outcome)
