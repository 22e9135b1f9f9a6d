"""`twitchgraph status`: how a collection is going, read beside a running collector.

Reads three things, none of which a running collector holds: the store (read-only), the
spool of snapshots waiting for it, and the collector's live state file. Failures come first.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from twitchgraph.clock import utcnow
from twitchgraph.store.db import StoreError, open_store, snapshot_endpoints
from twitchgraph.store.locks import collector_running, collector_state_path
from twitchgraph.store.spool import Spool
from twitchgraph.twitch.endpoints import is_twitch_label

__all__ = ["collection_status", "status_lines"]

_RECENT_FAILURES = 5


def collection_status(db: str | Path, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything `status` shows, as plain data (what ``--json`` prints).

    Raises:
        StoreError: no store and no collector state at `db`, or a store that cannot be read.
    """
    db = Path(db)
    now = now or utcnow()
    state = _read_state(db)
    if not db.exists() and state is None:
        raise StoreError(f"no store at {db}: run `twitchgraph collect --db {db}` first or "
                         "pass --db")
    result: dict[str, Any] = {"db": str(db), "now": now.isoformat()}
    result["store"] = _store_status(db) if db.exists() else None
    spool = Spool(db)
    result["spooled"] = len(spool.pending())
    result["set_aside"] = [{"file": name, "error": error} for name, error in spool.set_aside()]
    result["spool_dir"] = str(spool.dir)
    result["collector"] = _collector_status(db, state, now)
    store_failures = (result["store"] or {}).get("recent_failures", [])
    live_error = (state or {}).get("last_error") or ""
    result["last_error"] = (store_failures[0]["error"] if store_failures else "") or live_error
    return result


def _read_state(db: Path) -> dict[str, Any] | None:
    try:
        return json.loads(collector_state_path(db).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _store_status(db: Path) -> dict[str, Any]:
    con = open_store(db, read_only=True)
    try:
        counts = dict(con.execute(
            "SELECT status, count(*) FROM snapshots GROUP BY 1").fetchall())
        failures = [
            {"snapshot_id": sid, "started_at": _iso(at), "error": error or "failed"}
            for sid, at, error in con.execute(
                "SELECT snapshot_id, started_at, error FROM snapshots WHERE status = 'failed' "
                f"ORDER BY started_at DESC LIMIT {_RECENT_FAILURES}").fetchall()
        ]
        last = con.execute(
            """SELECT s.snapshot_id, s.started_at, s.finished_at, i.stats,
                      (SELECT count(*) FROM streams t WHERE t.snapshot_id = s.snapshot_id),
                      (SELECT count(*) FROM chatters c WHERE c.snapshot_id = s.snapshot_id),
                      (SELECT count(DISTINCT user_login) FROM chatters c
                        WHERE c.snapshot_id = s.snapshot_id),
                      (SELECT count(*) FROM listens l WHERE l.snapshot_id = s.snapshot_id
                        AND l.listened_s > 0),
                      (SELECT count(*) FROM listens l WHERE l.snapshot_id = s.snapshot_id
                        AND l.listened_s > 0 AND NOT l.membership)
               FROM snapshots s LEFT JOIN snapshot_info i USING (snapshot_id)
               WHERE s.status = 'complete' ORDER BY s.started_at DESC LIMIT 1""").fetchall()
        span = con.execute("SELECT min(started_at), max(started_at) FROM snapshots").fetchall()
        endpoints = snapshot_endpoints(con)
    finally:
        con.close()
    out: dict[str, Any] = {
        "complete": int(counts.get("complete", 0)),
        "failed": int(counts.get("failed", 0)),
        "first_snapshot_at": _iso(span[0][0]),
        "last_snapshot_at": _iso(span[0][1]),
        "recent_failures": failures,
        "last_complete": None,
        "endpoints": [{"endpoints": e, "snapshots": n, "twitch": is_twitch_label(e)}
                      for e, n in endpoints],
        "mixes_endpoints": len({is_twitch_label(e) for e, _ in endpoints}) > 1,
    }
    if last:
        sid, started, finished, stats, streams, rows, users, listened, message_only = last[0]
        helix = (json.loads(stats) if stats else {}).get("helix", {})
        out["last_complete"] = {
            "snapshot_id": sid, "started_at": _iso(started), "finished_at": _iso(finished),
            "streams": streams, "chatter_rows": rows, "chatters": users,
            "channels_listened": listened, "rooms_message_senders_only": message_only,
            "helix_429s": int(helix.get("rate_limited", 0)),
            "helix_rate_limit_wait_s": round(float(helix.get("paced_s", 0.0)), 1),
        }
    return out


def _collector_status(db: Path, state: dict[str, Any] | None,
                      now: datetime) -> dict[str, Any] | None:
    if state is None:
        return None
    pid = collector_running(db)
    started = datetime.fromisoformat(state["started_at"])
    ended = datetime.fromisoformat(state["ended_at"]) if state.get("ended_at") else None
    every, for_s = state.get("every_s"), state.get("for_s")
    taken = int(state.get("complete", 0)) + int(state.get("failed", 0))
    if every:
        until = ended or now
        elapsed = (until - started).total_seconds()
        if for_s is not None:
            elapsed = min(elapsed, math.nextafter(for_s, 0))
        due = int(elapsed // every) + 1
    else:
        due = 1
    in_progress = 1 if pid is not None and due > taken else 0
    helix = state.get("helix") or {}
    chat = state.get("chat") or {}
    return {
        "running": pid is not None,
        "pid": pid if pid is not None else state.get("pid"),
        # the state says running but nobody holds the lock: killed (e.g. kill -9)
        "died": pid is None and bool(state.get("running")),
        "started_at": state["started_at"],
        "ended_at": state.get("ended_at"),
        "every_s": every,
        "for_s": for_s,
        "slots_due": due,
        "complete": int(state.get("complete", 0)),
        "failed": int(state.get("failed", 0)),
        "missed": max(0, due - taken - in_progress),
        "helix_requests": int(helix.get("requests", 0)),
        "helix_429s": int(helix.get("rate_limited", 0)),
        "helix_rate_limit_wait_s": round(float(helix.get("paced_s", 0.0)), 1),
        "chat_connections": int(chat.get("connections", 0)),
        "chat_channels_held": int(chat.get("channels_held", 0)),
        "chat_last_error": chat.get("last_error") or "",
        "last": state.get("last"),
        "last_error": state.get("last_error") or "",
        "spool_error": state.get("spool_error") or "",
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def status_lines(status: dict[str, Any]) -> list[tuple[str, str]]:
    """Human lines, failures first, each with a style (``red``, ``yellow`` or ``''``)."""
    lines: list[tuple[str, str]] = []
    store, run = status["store"], status["collector"]
    set_aside = status.get("set_aside") or []
    if set_aside:
        lines.append((f"{len(set_aside)} snapshot(s) could not be committed and were set aside "
                      f"in {status['spool_dir']} (the rest went on):", "red"))
        lines.extend((f"  {item['file']}: {item['error']}", "red") for item in set_aside)
    if store is not None and store.get("mixes_endpoints"):
        lines.append(("the store mixes snapshots from Twitch and from other endpoints (the "
                      "simulator?); a build cannot tell them apart:", "red"))
        lines.extend((f"  {e['snapshots']} snapshot(s) from {e['endpoints']}", "red")
                     for e in store["endpoints"])
    if run is not None and run["died"]:
        lines.append((f"collector (PID {run['pid']}) is gone: it stopped without finishing "
                      "(killed?); run `twitchgraph collect` again", "red"))
    failures = (store or {}).get("recent_failures", [])
    if failures:
        lines.append((f"{store['failed']} failed snapshot(s); most recent first:", "red"))
        lines.extend((f"  snapshot {f['snapshot_id']} at {f['started_at']}: {f['error']}", "red")
                     for f in failures)
    elif status["last_error"]:
        lines.append((f"last error: {status['last_error']}", "red"))
    if run is not None and run["missed"]:
        lines.append((f"{run['missed']} scheduled slot(s) missed this run", "yellow"))
    if status["spooled"]:
        spooled = f"{status['spooled']} snapshot(s) spooled"
        if run is not None and run.get("spool_error"):
            why = f"not committed yet: {run['spool_error']}"
        elif run is not None and run["running"]:
            why = "waiting for the store to be free (a reader or writer holds its lock)"
        else:
            why = f"the next `twitchgraph collect --db {status['db']}` commits them"
        lines.append((f"{spooled}, {why}", "yellow"))
    if run is not None:
        state = (f"running (PID {run['pid']})" if run["running"] else
                 "gone" if run["died"] else f"finished at {run['ended_at']}")
        every = f"every {run['every_s']:g} s" if run["every_s"] else "once"
        lines.append((f"collector: {state}, {every} since {run['started_at']}: "
                      f"{run['complete']} complete, {run['failed']} failed, {run['missed']} "
                      f"missed of {run['slots_due']} slot(s) due", ""))
        lines.append((f"helix: {run['helix_requests']} requests, {run['helix_429s']} x 429, "
                      f"{run['helix_rate_limit_wait_s']} s waiting for the rate limit", ""))
        if run["running"]:
            lines.append((f"chat: {run['chat_connections']} connection(s) up, "
                          f"{run['chat_channels_held']} channel(s) held", ""))
        else:  # the figures are the last the collector wrote, not what is up now
            lines.append((f"chat: no connection (the collector is not running; it held "
                          f"{run['chat_channels_held']} channel(s) at its last update)", ""))
    if store is not None and not (store["complete"] or store["failed"]):
        lines.append(("store: no snapshot yet", ""))
    elif store is not None:
        lines.append((f"store: {store['complete']} complete, {store['failed']} failed "
                      f"snapshot(s) from {store['first_snapshot_at']} to "
                      f"{store['last_snapshot_at']}", ""))
        last = store["last_complete"]
        if last is not None:
            lines.append((f"last complete: snapshot {last['snapshot_id']} at "
                          f"{last['started_at']}: {last['streams']:,} streams, "
                          f"{last['chatters']:,} chatters in {last['channels_listened']:,} "
                          f"channels, {last['rooms_message_senders_only']:,} room(s) seen "
                          f"only through message senders; {last['helix_429s']} x 429, "
                          f"{last['helix_rate_limit_wait_s']} s rate-limit wait", ""))
    return lines
