"""From stored snapshots to a streamer graph: filters, bot removal, weighted edges.

All the work is SQL, written once in DuckDB's dialect, over the store's tables (a store, or
the partitioned dataset of several collector shards). The steps are listed in order in
``BUILD_STEPS``, each with its name and the tables it reads and creates (as a dbt model names
its sources); Python only strings them together and keeps the counts. An engine runs each
step (`twitchgraph.build.engines`): DuckDB as written, or Spark after SQLGlot transpiles it.
Parameters are inlined as literals and every tie is broken explicitly, so both engines give
the same rows. The result is five tables
(streamers, edges, played, games, raids) and the statistics that ``build.json`` records, so
that any graph can be traced back to how it was made; plus flows (``twitchgraph.build.flows``):
where the chatters of a stream go when it ends.

Definitions (the original Italian-Twitch study's, parameterised):

* the window is the complete snapshots with ``since <= started_at < until``; every
  ``every_nth`` of them (in time order, starting with the first) is used;
* a snapshot stands for ``snapshot_minutes`` minutes: the median spacing of the used
  snapshots, or the schedule (``interval_s * every_nth``) when that spacing is within 10 %
  of it or only one snapshot is used;
* ``minutes_live`` = snapshots live x snapshot_minutes; ``viewer_mean`` and ``chatter_mean``
  are means over the snapshots the streamer was live in (a live snapshot without chatters
  counts as 0 chatters); ``chatters_total`` = |S|, the distinct non-bot chatters of the
  streamer over the window (the streamer in their own chat is not counted);
* shared = |Sa n Sb|; overlap = 100 shared / min(|Sa|, |Sb|); jaccard = 100 shared / |Sa u Sb|;
  an edge is kept when the chosen weight reaches ``min_weight`` and points from the streamer
  with the higher viewer mean (ties: alphabetical login order);
* thresholds keep values that reach them (``>=``), applied in order: minutes live,
  viewer mean, chatter mean;
* raids: every raid stored with a complete snapshot of the window (all of them, not every
  ``every_nth``: a raid is an event, not a sample) between two kept streamers, summed per
  (raider, raided) pair; raids with either side not kept are only counted;
* flows: per stream end (two consecutive complete snapshots of the window, again all of them,
  with the channel live in the first and not in the second; pairs further apart than twice
  the median spacing are gaps, skipped and counted), the non-bot chatters of the channel in
  the first seen in another live channel in the second, summed per (ended, destination)
  pair of kept streamers (`twitchgraph.build.flows`).

Some steps and helpers are public, for `twitchgraph.serve.aggregates`, which folds new
snapshots into sums kept in its own file and runs them over new snapshots only
(`select_snapshots`, `live_streams`, `chatters_without_bots`) or over tables it makes from its
sums under the names these read (`apply_thresholds`, `kept_edges`, `played_edges`,
`game_table`, `raid_table`, `streamers_table`), so that the build stays the one definition.
Each docstring names the tables it reads and makes.

Examples
--------
>>> from twitchgraph.build.definition import BuildParams, build_graph        # doctest: +SKIP
>>> from twitchgraph.graphio import write_graph_dir               # doctest: +SKIP
>>> data = build_graph(con, BuildParams(every_nth=3, min_weight=10))  # doctest: +SKIP
>>> write_graph_dir(data, "graph/")                               # doctest: +SKIP
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from twitchgraph import __version__
from twitchgraph.build.bots import known_bots_frame, suspected_bots_sql
from twitchgraph.build.engines import DuckDBEngine, SparkEngine
from twitchgraph.build.flows import FLOW_DEFINITION, flows_step
from twitchgraph.build.params import BuildParams
from twitchgraph.clock import as_utc
from twitchgraph.errors import TwitchgraphError
from twitchgraph.graphio import (
    EDGE_COLUMNS,
    FLOW_COLUMNS,
    GAME_COLUMNS,
    PLAYED_COLUMNS,
    RAID_COLUMNS,
    STREAMER_COLUMNS,
    GraphData,
)

Engine = DuckDBEngine | SparkEngine

__all__ = [
    "BUILD_STEPS",
    "DEFINITIONS",
    "BuildError",
    "BuildParams",
    "BuildState",
    "Step",
    "apply_thresholds",
    "build_graph",
    "chatters_without_bots",
    "game_table",
    "kept_edges",
    "live_streams",
    "played_edges",
    "raid_table",
    "select_snapshots",
    "sql_literal",
    "streamers_table",
]

logger = logging.getLogger(__name__)


DEFINITIONS = {
    "S": "distinct non-bot chatters of a streamer over the used snapshots (not the streamer)",
    "shared": "|Sa n Sb|",
    "overlap": "100 * shared / min(|Sa|, |Sb|)",
    "jaccard": "100 * shared / |Sa u Sb|",
    "direction": "from the higher viewer_mean to the lower (ties: alphabetical)",
    "minutes_live": "snapshots live x snapshot_minutes",
    "viewer_mean, chatter_mean": "means over the snapshots the streamer was live in",
    "thresholds": "a value is kept when it reaches the threshold (>=)",
    "raids": "raids of the window's complete snapshots between kept streamers, per "
             "(raider, raided): count, summed viewers, first and last time (UTC)",
    "flows": FLOW_DEFINITION,
    "ends, end_chatters, end_retained": "a streamer's stream ends (as flows), the chatters "
             "at them, the share of those seen in any live channel in the next snapshot",
}
_MAX_LISTED = 200  # removed bot logins listed per rule in build.json


class BuildError(TwitchgraphError, ValueError):
    """The build cannot produce a graph; the message names the step and the counts."""


@dataclass
class BuildState:
    """What the steps hand on besides their tables.

    Attributes: the engine that runs the SQL, the parameters, the statistics that
    ``build.json`` records, the minutes one used snapshot stands for (set by the first step),
    and the finished tables (``streamers``, ``edges``, ``played``, ``games``, ``raids``,
    ``flows``).
    """

    engine: Engine
    params: BuildParams
    stats: dict[str, Any]
    snapshot_minutes: float = 0.0
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One step of the build, in the dbt style: a name, what it reads, what it makes.

    Attributes
    ----------
    name : the progress line, and the step's key in ``build.json``'s ``step_seconds``.
    run : the function; it creates its tables on ``state.engine``.
    reads : the store's tables and the earlier steps' tables its SQL reads.
    creates : the temporary (``_tg_``) tables it leaves for later steps.
    returns : the finished tables it puts in ``state.frames``.
    """

    name: str
    run: Callable[[BuildState], None]
    reads: tuple[str, ...]
    creates: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()


def sql_literal(value: Any) -> str:
    """A Python value as a SQL literal: the build's SQL is inlined, then run on any engine."""
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return f"CAST('{as_utc(value).isoformat()}' AS TIMESTAMPTZ)"
    if isinstance(value, bool | int):
        return str(int(value))
    if isinstance(value, float):
        # A DOUBLE, not a decimal literal: Spark would compute in (rounded) decimals.
        return f"CAST('{value!r}' AS DOUBLE)"
    return "'" + str(value).replace("'", "''") + "'"


def _scalar(engine: Engine, sql: str) -> Any:
    return engine.rows(sql)[0][0]


def _count(engine: Engine, table: str) -> int:
    return int(_scalar(engine, f"SELECT count(*) FROM {table}"))


def select_snapshots(state: BuildState) -> None:
    """Create ``_tg_window`` (the window's complete snapshots, numbered) and ``_tg_sel``
    (snapshot_id, started_at: every ``every_nth`` of them); set the minutes one stands for."""
    engine, p, stats = state.engine, state.params, state.stats
    total = _count(engine, "snapshots")
    if total == 0:
        raise BuildError("the store has no snapshots: run `twitchgraph collect` first")
    complete = _count(engine, "snapshots WHERE status = 'complete'")
    window = "".join(
        f" AND started_at {op} {sql_literal(value)}"
        for op, value in ((">=", p.since), ("<", p.until)) if value is not None
    )
    engine.table(
        "_tg_window",
        f"""
        SELECT snapshot_id, started_at, interval_s,
               row_number() OVER (ORDER BY started_at, snapshot_id) - 1 AS rn
        FROM snapshots
        WHERE status = 'complete'{window}
        """,
    )
    in_window = _count(engine, "_tg_window")
    if in_window == 0:
        first, last = engine.rows(
            "SELECT min(started_at), max(started_at) FROM snapshots WHERE status = 'complete'"
        )[0]
        raise BuildError(
            f"window filter (since={p.since}, until={p.until}) left no complete snapshot "
            f"({complete} complete of {total} before, 0 after; store spans {first} .. {last})"
        )
    engine.table(
        "_tg_sel",
        f"""
        SELECT snapshot_id, started_at, interval_s FROM _tg_window
        WHERE rn % {int(p.every_nth)} = 0
        """,
    )
    # One row per used snapshot: small, and the same arithmetic on every engine.
    times = engine.rows("SELECT started_at, interval_s FROM _tg_sel ORDER BY started_at")
    used = len(times)
    gaps = [(b[0] - a[0]).total_seconds() / 60.0
            for a, b in zip(times, times[1:], strict=False)]
    step = statistics.median(gaps) if gaps else None
    intervals = [t[1] for t in times if t[1] is not None]
    interval = statistics.median(intervals) if intervals else None
    scheduled = None if interval is None else interval * p.every_nth / 60.0
    measured = step
    if step is None:
        if scheduled is None:
            raise BuildError(
                "only one snapshot in the window and no schedule interval: minutes live "
                "cannot be derived; widen --since/--until or lower --every-nth"
            )
        step = scheduled
    elif scheduled is not None and abs(step - scheduled) <= 0.1 * scheduled:
        # Snapshots start a few seconds late or early; the schedule is the honest unit.
        step = scheduled
    stats["snapshots"] = {
        "in_store": total,
        "complete": complete,
        "in_window": in_window,
        "used": used,
        "first_used": str(times[0][0]),
        "last_used": str(times[-1][0]),
    }
    _partial_slots(engine, stats)
    stats["snapshot_minutes"] = float(step)
    stats["snapshot_minutes_measured"] = None if measured is None else float(measured)
    state.snapshot_minutes = float(step)


def _partial_slots(engine: Engine, stats: dict) -> None:
    """Report the slots some shards did not complete (only a sharded dataset has them)."""
    partial = engine.rows(
        "SELECT started_at, shards_complete, shards FROM snapshots WHERE status = 'partial' "
        "ORDER BY started_at"
    ) if "shards_complete" in engine.columns("snapshots") else []
    if partial:
        stats["snapshots"]["partial"] = len(partial)
        stats["snapshots"]["partial_slots"] = [
            {"slot": str(at), "shards_complete": int(done), "shards": int(n)}
            for at, done, n in partial[:_MAX_LISTED]
        ]


def live_streams(state: BuildState) -> None:
    """Create ``_tg_live``: one row per (snapshot, live channel) of the used snapshots
    (``_tg_sel``), from the store's ``streams``: duplicates and other languages gone."""
    engine, p, stats = state.engine, state.params, state.stats
    engine.table(
        "_tg_rows",
        """
        SELECT st.snapshot_id, lower(st.user_login) AS login, st.user_name, st.game_id,
               st.game_name, coalesce(st.viewer_count, 0) AS viewer_count, st.language,
               sel.started_at AS snapshot_at
        FROM streams st JOIN _tg_sel sel ON sel.snapshot_id = st.snapshot_id
        """,
    )
    rows = _count(engine, "_tg_rows")
    if rows == 0:
        raise BuildError(
            f"the {stats['snapshots']['used']} snapshots used hold no live stream: "
            "check the collector's streams table"
        )
    # Helix paging may return a stream twice in one snapshot; keep the row with most viewers
    # (ties broken on every column, so that every engine keeps the same row).
    engine.table(
        "_tg_dedup",
        """
        SELECT snapshot_id, login, user_name, game_id, game_name, viewer_count, language,
               snapshot_at
        FROM (
            SELECT *, row_number() OVER (
                PARTITION BY snapshot_id, login
                ORDER BY viewer_count DESC, game_name NULLS LAST, game_id NULLS LAST,
                         user_name NULLS LAST, language NULLS LAST) AS _dup
            FROM _tg_rows
        ) WHERE _dup = 1
        """,
    )
    dedup = _count(engine, "_tg_dedup")
    language = (
        "" if p.language is None
        else f" WHERE lower(language) = lower({sql_literal(p.language)})"
    )
    # cid: an integer per channel, so that the chatter tables carry no channel strings
    engine.table(
        "_tg_live",
        "SELECT *, CAST(dense_rank() OVER (ORDER BY login) AS INTEGER) AS cid FROM _tg_dedup"
        + language,
    )
    live = _count(engine, "_tg_live")
    stats["stream_rows"] = {"in_window": rows, "after_dedup": dedup, "after_language": live}
    if live == 0:
        raise BuildError(
            f"language filter (language={p.language!r}) left no live stream "
            f"({dedup} stream rows before, 0 after)"
        )


def chatters_without_bots(state: BuildState) -> None:
    """Create ``_tg_chat`` (snapshot_id, cid, uid): non-bot chatters of live channels, from
    the store's ``chatters`` and ``bots`` and the live channels of ``_tg_live``.

    Viewers get integer ids (``_tg_uid``) once their bots are gone: every later step
    groups and joins integers, not strings.

    Relies on the store's contract for ``chatters``: logins lower case, one row per
    (snapshot, channel, user). Not re-checking it here makes this step three times faster.
    """
    engine, p, stats = state.engine, state.params, state.stats
    engine.table(
        "_tg_chat_raw",
        """
        SELECT c.snapshot_id, l.cid, c.user_login AS viewer
        FROM chatters c
        JOIN _tg_live l ON l.snapshot_id = c.snapshot_id AND l.login = c.channel_login
        WHERE c.user_login <> l.login
        """,
    )
    raw = _count(engine, "_tg_chat_raw")
    by_rule, logins = _listed_bots(engine)
    # Joining the dictionary drops the listed bots: they have no id.
    engine.table(
        "_tg_chat_all",
        """
        SELECT r.snapshot_id, r.cid, u.uid FROM _tg_chat_raw r JOIN _tg_uid u
        ON u.viewer = r.viewer
        """,
    )
    dropped = _suspected_bots(engine, p)
    if dropped is not None:
        by_rule["suspected"], logins["suspected"] = dropped
    kept = _count(engine, "_tg_chat")
    stats["chatter_rows"] = {"in_live_channels": raw, "after_bots": kept}
    stats["removed_bots"] = by_rule
    # The logins behind the counts (most chatter rows first), so a graph can be audited.
    stats["removed_bot_logins"] = {rule: names[:_MAX_LISTED] for rule, names in logins.items()}
    stats["suspected_bots"] = {
        "flagged": _count(engine, "_tg_suspected"),
        "dropped": p.drop_suspected,
        "top": [
            {"login": login, "snapshots_flagged": int(n), "max_share": round(float(s), 4)}
            for login, n, s in engine.rows(
                "SELECT u.viewer, s.snapshots_flagged, s.max_share FROM _tg_suspected s "
                "JOIN _tg_uid u ON u.uid = s.login "
                "ORDER BY s.snapshots_flagged DESC, s.max_share DESC, u.viewer LIMIT 20"
            )
        ],
    }


def _listed_bots(engine: Engine) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """Create ``_tg_known_bots`` (built-in and listed bots) and ``_tg_uid`` (an integer id for
    every other viewer of ``_tg_chat_raw``); the bots found there, per rule: their counts
    (users, chatter rows) and their logins, most chatter rows first."""
    listed = (
        [r[0] for r in engine.rows("SELECT DISTINCT lower(login) FROM bots")]
        if engine.has_table("bots") else []
    )
    engine.register("_tg_known_bots", known_bots_frame(listed))
    per_login = engine.rows(
        """
        SELECT b.rule, r.viewer, count(*) AS chatter_rows
        FROM _tg_chat_raw r JOIN _tg_known_bots b ON b.login = r.viewer
        GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2
        """
    )
    engine.table(
        "_tg_uid",
        """
        SELECT viewer, CAST(row_number() OVER (ORDER BY viewer) AS INTEGER) AS uid
        FROM (SELECT DISTINCT viewer FROM _tg_chat_raw
              WHERE viewer NOT IN (SELECT login FROM _tg_known_bots))
        """,
    )
    by_rule = {rule: {"users": 0, "chatter_rows": 0} for rule in ("builtin", "list", "suspected")}
    logins: dict[str, list[str]] = {"builtin": [], "list": [], "suspected": []}
    for rule, login, rows in per_login:
        by_rule[rule]["users"] += 1
        by_rule[rule]["chatter_rows"] += int(rows)
        logins[rule].append(login)
    return by_rule, logins


def _suspected_bots(engine: Engine, p: BuildParams) -> tuple[dict, list[str]] | None:
    """Create ``_tg_suspected`` (the accounts the presence heuristic flags among
    ``_tg_chat_all``) and ``_tg_chat``, without them when `p.drop_suspected`; then their counts
    (users, chatter rows) and logins, else None."""
    # Only accounts no list names can be "suspected".
    presence = "(SELECT snapshot_id, cid AS channel, uid AS login FROM _tg_chat_all)"
    live = "(SELECT snapshot_id, cid AS channel FROM _tg_live)"
    engine.table(
        "_tg_suspected",
        suspected_bots_sql(
            presence, live, share=p.bot_channel_share, min_channels=p.bot_min_channels
        ),
    )
    if not p.drop_suspected:
        engine.view("_tg_chat", "SELECT * FROM _tg_chat_all")
        return None
    users, rows = engine.rows(
        "SELECT count(DISTINCT uid), count(*) FROM _tg_chat_all "
        "WHERE uid IN (SELECT login FROM _tg_suspected)"
    )[0]
    logins = [
        r[0]
        for r in engine.rows(
            "SELECT u.viewer FROM _tg_suspected s JOIN _tg_uid u ON u.uid = s.login "
            f"ORDER BY s.snapshots_flagged DESC, u.viewer LIMIT {_MAX_LISTED}"
        )
    ]
    engine.view("_tg_chat", "SELECT * FROM _tg_chat_all "
                "WHERE uid NOT IN (SELECT login FROM _tg_suspected)")
    return {"users": int(users), "chatter_rows": int(rows)}, logins


def _streamers(state: BuildState) -> None:
    """Create ``_tg_streamers`` (one row per streamer seen live in the window) and, through
    the thresholds, ``_tg_kept``: the graph's streamers."""
    _streamer_stats(state.engine, state.snapshot_minutes)
    state.stats["streamers"] = {"seen": _count(state.engine, "_tg_streamers")}
    apply_thresholds(state.engine, state.params, state.stats)
    state.stats["streamers"]["kept"] = _count(state.engine, "_tg_kept")


def _streamer_stats(engine: Engine, step: float) -> None:
    """Create ``_tg_streamers``: one row per streamer seen live in the window."""
    engine.table(
        "_tg_streamers",
        f"""
        WITH per_snap AS (
            SELECT snapshot_id, cid, count(*) AS n FROM _tg_chat GROUP BY 1, 2
        ),
        totals AS (
            SELECT cid, count(DISTINCT uid) AS chatters_total FROM _tg_chat GROUP BY 1
        ),
        games AS (
            SELECT login, game_name, count(*) AS n, max(snapshot_at) AS last_at
            FROM _tg_live WHERE coalesce(game_name, '') <> '' GROUP BY 1, 2
        ),
        main_game AS (
            SELECT login, arg_max(game_name, (n, last_at)) AS main_game FROM games GROUP BY 1
        ),
        languages AS (
            SELECT login, language, count(*) AS n FROM _tg_live GROUP BY 1, 2
        ),
        main_language AS (
            -- the most frequent; ties: the alphabetically first (a mode with a defined tie)
            SELECT login, language FROM (
                SELECT login, language, row_number() OVER (
                    PARTITION BY login ORDER BY n DESC, language NULLS LAST) AS r
                FROM languages
            ) WHERE r = 1
        )
        SELECT l.login, l.cid,
               arg_max(l.user_name, l.snapshot_at) AS label,
               any_value(ml.language) AS language,
               count(*) * {sql_literal(float(step))} AS minutes_live,
               avg(l.viewer_count) AS viewer_mean,
               max(l.viewer_count) AS viewer_peak,
               avg(coalesce(ps.n, 0)) AS chatter_mean,
               any_value(coalesce(t.chatters_total, 0)) AS chatters_total,
               any_value(mg.main_game) AS main_game
        FROM _tg_live l
        LEFT JOIN per_snap ps ON ps.snapshot_id = l.snapshot_id AND ps.cid = l.cid
        LEFT JOIN totals t ON t.cid = l.cid
        LEFT JOIN main_game mg ON mg.login = l.login
        LEFT JOIN main_language ml ON ml.login = l.login
        GROUP BY l.login, l.cid
        """,
    )


def apply_thresholds(engine: Engine, p: BuildParams, stats: dict) -> None:
    """Filter ``_tg_streamers`` into ``_tg_kept``, counting before and after each filter."""
    filters = stats["filters"] = []
    kept: list[str] = []
    before = _count(engine, "_tg_streamers")
    for name, column, value in (
        ("min_live_minutes", "minutes_live", p.min_live_minutes),
        ("min_viewer_mean", "viewer_mean", p.min_viewer_mean),
        ("min_chatter_mean", "chatter_mean", p.min_chatter_mean),
    ):
        # A tiny tolerance so a mean of exactly the threshold is not lost to float rounding.
        kept.append(f"{column} >= {sql_literal(float(value))} - 1e-9")
        engine.table("_tg_kept", "SELECT * FROM _tg_streamers WHERE " + " AND ".join(kept))
        after = _count(engine, "_tg_kept")
        filters.append({"filter": name, "value": value, "before": before, "after": after})
        if after == 0:
            raise BuildError(
                f"filter {name}={value} left no streamer ({before} before, 0 after); "
                f"lower --{name.replace('_', '-')}"
            )
        before = after


def _edges(state: BuildState) -> None:
    """Weighted, directed streamer-streamer edges by a self-join on chatters per user."""
    engine = state.engine
    # Integer ids (cid, uid) keep the self-join and its hash tables small.
    engine.table("_tg_sid", "SELECT login, cid AS sid, viewer_mean, chatters_total AS n "
                 "FROM _tg_kept")
    engine.table(
        "_tg_su",
        "SELECT DISTINCT cid AS sid, uid FROM _tg_chat WHERE cid IN (SELECT sid FROM _tg_sid)",
    )
    engine.table(
        "_tg_pairs",
        """
        SELECT a.sid AS a, b.sid AS b, count(*) AS shared
        FROM _tg_su a JOIN _tg_su b ON a.uid = b.uid AND a.sid < b.sid
        GROUP BY 1, 2
        """,
    )
    state.frames["edges"] = kept_edges(engine, state.params, state.stats)


def kept_edges(engine: Engine, p: BuildParams, stats: dict) -> pd.DataFrame:
    """``edges.csv`` from ``_tg_pairs`` (a, b, shared: the chatters two streamers share) and
    ``_tg_sid`` (sid, login, viewer_mean, n: a streamer's id in the pairs, and |S|): the
    weights, the direction, and the edges under ``min_weight`` dropped and counted in
    ``stats["edges"]``."""
    candidates = _count(engine, "_tg_pairs")
    edges = engine.df(
        f"""
        WITH w AS (
            SELECT pr.a, pr.b, pr.shared,
                   100 * CAST(pr.shared AS DOUBLE) / least(sa.n, sb.n) AS overlap,
                   100 * CAST(pr.shared AS DOUBLE) / (sa.n + sb.n - pr.shared) AS jaccard
            FROM _tg_pairs pr
            JOIN _tg_sid sa ON sa.sid = pr.a
            JOIN _tg_sid sb ON sb.sid = pr.b
        )
        SELECT CASE WHEN sa.viewer_mean >= sb.viewer_mean THEN sa.login ELSE sb.login END
                   AS "Source",
               CASE WHEN sa.viewer_mean >= sb.viewer_mean THEN sb.login ELSE sa.login END
                   AS "Target",
               CAST(w.{p.weight} AS DOUBLE) AS "Weight",
               w.shared, w.overlap, w.jaccard, 'Directed' AS "Type"
        FROM w
        JOIN _tg_sid sa ON sa.sid = w.a
        JOIN _tg_sid sb ON sb.sid = w.b
        WHERE w.{p.weight} >= {sql_literal(float(p.min_weight))} - 1e-9
        ORDER BY "Weight" DESC, "Source", "Target"
        """
    )
    stats["edges"] = {
        "candidate_pairs": candidates,
        "filter": "min_weight",
        "weight": p.weight,
        "value": p.min_weight,
        "before": candidates,
        "after": len(edges),
    }
    if edges.empty and candidates:
        stats["warnings"].append(f"min_weight={p.min_weight} left no edge ({candidates} "
                                 "candidate pairs before, 0 after): lower --min-weight")
    edges["shared"] = edges["shared"].astype("int64")
    return edges


def _played_and_games(state: BuildState) -> None:
    """The streamer-game edges (minutes played) and the games they name, with their
    enrichment."""
    state.frames["played"] = played = played_edges(
        state.engine, state.params, state.snapshot_minutes, state.stats)
    state.frames["games"] = game_table(state.engine, played)


def played_edges(engine: Engine, p: BuildParams, step: float, stats: dict) -> pd.DataFrame:
    """``played.csv``: the minutes each kept streamer (``_tg_kept``) played each game, one
    live row of ``_tg_live`` (login, game_name) standing for `step` minutes; edges under
    ``min_game_minutes`` dropped and counted in ``stats["played"]``."""
    played = engine.df(
        f"""
        SELECT l.login AS "Source", l.game_name AS "Target",
               count(*) * {sql_literal(float(step))} AS minutes_played
        FROM _tg_live l JOIN _tg_kept k ON k.login = l.login
        WHERE coalesce(l.game_name, '') <> ''
        GROUP BY 1, 2
        ORDER BY minutes_played DESC, "Source", "Target"
        """
    )
    before = len(played)
    longest = played["minutes_played"].max() if before else 0.0
    played = played[played["minutes_played"] >= p.min_game_minutes - 1e-9].reset_index(drop=True)
    if before and played.empty:  # short collections: easy to miss in the summary
        stats["warnings"].append(
            f"min_game_minutes={p.min_game_minutes} left no played edge and so no game "
            f"({before} before, 0 after; the longest was {longest:g} minutes): lower "
            "--min-game-minutes"
        )
    stats["played"] = {
        "filter": "min_game_minutes",
        "value": p.min_game_minutes,
        "before": before,
        "after": len(played),
    }
    return played


def game_table(engine: Engine, played: pd.DataFrame) -> pd.DataFrame:
    """``games.csv``: the games `played` names, each with the game id ``_tg_live``
    (game_name, game_id) shows most often, and the store's enrichment of it."""
    engine.register("_tg_game_names", pd.DataFrame({"name": sorted(played["Target"].unique())}))
    games = engine.df(
        """
        WITH ids AS (
            SELECT game_name, arg_max(game_id, (n, game_id)) AS game_id FROM (
                SELECT game_name, game_id, count(*) AS n FROM _tg_live
                WHERE coalesce(game_id, '') <> '' GROUP BY 1, 2
            ) GROUP BY 1
        )
        SELECT n.name AS "Id", n.name AS "Label", ids.game_id,
               g.igdb_id,
               array_to_string(ig.genres, ';') AS genres,
               array_to_string(ig.themes, ';') AS themes,
               coalesce(CAST(ig.release_date AS VARCHAR), sd.release_date) AS release_date,
               array_to_string(coalesce(ig.developers, sd.developers), ';') AS developers,
               array_to_string(coalesce(ig.publishers, sd.publishers), ';') AS publishers,
               m.steam_appid,
               m.method AS steam_match,
               m.score AS steam_match_score,
               array_to_string(sd.categories, ';') AS categories,
               array_to_string(sd.genres, ';') AS tags
        FROM _tg_game_names n
        LEFT JOIN ids ON ids.game_name = n.name
        LEFT JOIN games g ON g.game_id = ids.game_id AND g.found
        LEFT JOIN igdb_games ig ON ig.igdb_id = g.igdb_id AND ig.found
        LEFT JOIN game_matches m ON m.game_name = n.name AND m.steam_appid IS NOT NULL
        LEFT JOIN steam_details sd ON sd.appid = m.steam_appid AND sd.found
        ORDER BY n.name
        """
    )
    games["steam_appid"] = games["steam_appid"].astype("Int64")
    return games[GAME_COLUMNS]


def _raids(state: BuildState) -> None:
    """Raids between kept streamers in the window, one row per (raider, raided)."""
    state.frames["raids"] = raid_table(state.engine, state.stats)


def _flows(state: BuildState) -> None:
    """Where the chatters of a stream go when it ends (`twitchgraph.build.flows`)."""
    state.frames["flows"] = flows_step(
        state.engine, drop_suspected=state.params.drop_suspected, stats=state.stats)


def raid_table(engine: Engine, stats: dict) -> pd.DataFrame:
    """``raids.csv``: the store's raids of the window's snapshots (``_tg_window``) between
    kept streamers (``_tg_kept``), one row per (raider, raided); counted in
    ``stats["raids"]``."""
    if not engine.has_table("raids"):  # a dataset written before raids were recorded
        stats["raids"] = {"in_window": 0, "between_streamers": 0, "outside_streamers": 0,
                          "pairs": 0}
        return pd.DataFrame(columns=RAID_COLUMNS)
    engine.table(
        "_tg_raids",
        """
        SELECT r.from_login, r.to_login, r.viewers, r.raided_at,
               r.from_login IN (SELECT login FROM _tg_kept)
                   AND r.to_login IN (SELECT login FROM _tg_kept) AS kept
        FROM raids r JOIN _tg_window w USING (snapshot_id)
        """,
    )
    # Plain aggregates only, so the same SQL runs on every engine; times are formatted here.
    raids = engine.df(
        """
        SELECT from_login AS "Source", to_login AS "Target", count(*) AS raids,
               sum(viewers) AS viewers_total, min(raided_at) AS first_at,
               max(raided_at) AS last_at, 'Directed' AS "Type"
        FROM _tg_raids WHERE kept GROUP BY 1, 2
        ORDER BY raids DESC, viewers_total DESC, "Source", "Target"
        """
    )
    seen, outside = engine.rows(
        "SELECT count(*), sum(CASE WHEN kept THEN 0 ELSE 1 END) FROM _tg_raids")[0]
    seen, outside = int(seen or 0), int(outside or 0)
    stats["raids"] = {"in_window": seen, "between_streamers": seen - outside,
                      "outside_streamers": outside, "pairs": len(raids)}
    for column in ("raids", "viewers_total"):
        raids[column] = raids[column].astype("int64")
    for column in ("first_at", "last_at"):
        raids[column] = (pd.to_datetime(raids[column], utc=True)
                         .dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return raids[RAID_COLUMNS]


def streamers_table(state: BuildState) -> None:
    """``streamers.csv``: the kept streamers (``_tg_kept``), their figures, profiles (the
    store's ``users`` and ``social_links``) and stream ends (``_tg_fstreamer``)."""
    state.frames["streamers"] = state.engine.df(
        """
        WITH u AS (
            SELECT lower(login) AS login, arg_max(broadcaster_type, fetched_at) AS bt,
                   arg_max(display_name, fetched_at) AS display_name
            FROM users GROUP BY 1
        ),
        links AS (
            SELECT login, string_agg(url, ';' ORDER BY platform, url) AS social_links
            FROM (SELECT DISTINCT lower(login) AS login, platform, url FROM social_links)
            GROUP BY 1
        )
        SELECT k.login AS "Id",
               coalesce(k.label, u.display_name, k.login) AS "Label",
               k.login, k.language,
               k.minutes_live, round(k.viewer_mean, 4) AS viewer_mean,
               k.viewer_peak, round(k.chatter_mean, 4) AS chatter_mean,
               k.chatters_total, k.main_game,
               u.bt AS broadcaster_type,
               coalesce(links.social_links, '') AS social_links,
               f.ends, f.end_chatters, f.end_retained
        FROM _tg_kept k
        LEFT JOIN u ON u.login = k.login
        LEFT JOIN links ON links.login = k.login
        LEFT JOIN _tg_fstreamer f ON f.login = k.login
        ORDER BY k.viewer_mean DESC, k.login
        """
    )


# The build, in order. Each step reads only the store and earlier steps' tables
# (tests/test_build_steps.py checks every name here against the SQL each step runs).
_FLOW_TABLES = ("_tg_fpairs", "_tg_flive", "_tg_fends", "_tg_fbots", "_tg_fchat", "_tg_fmoves",
                "_tg_fend", "_tg_fdest", "_tg_fpair", "_tg_fstreamer")
BUILD_STEPS: tuple[Step, ...] = (
    Step("selecting snapshots", select_snapshots,
         reads=("snapshots",), creates=("_tg_window", "_tg_sel")),
    Step("reading live streams", live_streams,
         reads=("streams", "_tg_sel"), creates=("_tg_rows", "_tg_dedup", "_tg_live")),
    Step("removing bots from chatters", chatters_without_bots,
         reads=("chatters", "bots", "_tg_live"),
         creates=("_tg_chat_raw", "_tg_known_bots", "_tg_uid", "_tg_chat_all", "_tg_suspected",
                  "_tg_chat")),
    Step("streamer statistics", _streamers,
         reads=("_tg_chat", "_tg_live"), creates=("_tg_streamers", "_tg_kept")),
    Step("pairs of streamers sharing chatters", _edges,
         reads=("_tg_kept", "_tg_chat"), creates=("_tg_sid", "_tg_su", "_tg_pairs"),
         returns=("edges",)),
    Step("games", _played_and_games,
         reads=("_tg_live", "_tg_kept", "games", "igdb_games", "game_matches", "steam_details"),
         creates=("_tg_game_names",), returns=("played", "games")),
    Step("raids", _raids,
         reads=("raids", "_tg_window", "_tg_kept"), creates=("_tg_raids",), returns=("raids",)),
    Step("audience flows at stream ends", _flows,
         reads=("streams", "chatters", "_tg_window", "_tg_known_bots", "_tg_suspected",
                "_tg_uid", "_tg_kept"),
         creates=_FLOW_TABLES, returns=("flows",)),
    Step("streamers table", streamers_table,
         reads=("_tg_kept", "users", "social_links", "_tg_fstreamer"), returns=("streamers",)),
)


def build_graph(
    con: duckdb.DuckDBPyConnection | Engine,
    params: BuildParams = BuildParams(),
    *,
    progress: Callable[[str], None] | None = None,
) -> GraphData:
    """Build the streamer graph from the snapshots in an open store.

    Parameters
    ----------
    con : an open store (``twitchgraph.store.db.open_store``), a dataset opened with
        ``twitchgraph.store.dataset.open_dataset``, or an engine (``twitchgraph.build.engines``: the
        same SQL on DuckDB or, transpiled, on Spark).
    params : the thresholds, window and weight (:class:`BuildParams`; its defaults are the
        original study's). It checks its values when made: ValueError for one outside them.
    progress : called with the name of each step as it starts (for a status line).

    Returns
    -------
    GraphData with the streamers, edges, played, games, raids and flows tables; its ``build``
    holds the parameters and statistics that ``build.json`` records (``step_seconds``: the
    wall time of each step).

    Raises
    ------
    BuildError when a step leaves nothing (empty store, empty window, a threshold that keeps
    no streamer); the message names the step and the counts before and after.
    """
    # One definition: the steps below are DuckDB SQL, which each engine runs its own way.
    con = con if isinstance(con, DuckDBEngine | SparkEngine) else DuckDBEngine(con)
    stats: dict[str, Any] = {
        "definitions": DEFINITIONS,
        "version": __version__,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": params.as_record(),
        "warnings": [],  # a filter that emptied a whole table
    }
    timings = stats["step_seconds"] = {}
    clock = {"step": None, "at": time.perf_counter()}

    def report(step: str | None) -> None:
        now = time.perf_counter()
        if clock["step"] is not None:
            timings[clock["step"]] = round(now - clock["at"], 3)
        clock.update(step=step, at=now)
        if step is None:
            return
        logger.debug("build: %s", step)
        if progress is not None:
            progress(step)

    state = BuildState(engine=con, params=params, stats=stats)
    try:
        for step in BUILD_STEPS:
            report(step.name)
            step.run(state)
        report(None)
    finally:
        con.cleanup()
    frames = state.frames
    streamers, edges, played, games, raids, flows = (
        frames[name] for name in ("streamers", "edges", "played", "games", "raids", "flows"))
    stats["games"] = {"count": len(games)}
    stats["engine"] = con.name
    logger.info(
        "built graph: %d streamers, %d edges, %d played edges, %d games, %d flow pairs",
        len(streamers), len(edges), len(played), len(games), len(flows),
    )  # fmt: skip
    return GraphData(
        streamers=streamers[STREAMER_COLUMNS],
        edges=edges[EDGE_COLUMNS],
        played=played[PLAYED_COLUMNS],
        games=games,
        build=stats,
        raids=raids[RAID_COLUMNS],
        flows=flows[FLOW_COLUMNS],
    )

