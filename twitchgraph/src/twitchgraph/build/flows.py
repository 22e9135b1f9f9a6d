"""Where audiences go when a stream ends: the build's flow steps (``flows.csv``).

A stream end of A is two consecutive complete snapshots s, s' of the build window with A live
in s and not in s'. Every complete snapshot of the window counts, whatever ``every_nth`` is:
an end is an event, not a sample. Two snapshots further apart than twice the median spacing
are a gap in the collection, not a stream end, and are skipped (and counted).

For an end of A and a channel B != A live in s', the viewers that went from A to B are the
non-bot chatters seen in A in s and in B in s'. Summed over A's ends, per (A, B), between
streamers of ``streamers.csv``, they make ``flows.csv``: ``viewers`` (the sum), ``ends`` (the
ends that sent anyone to B), ``first_at`` / ``last_at`` (the times of s' of the first and the
last of those ends).

Each step is one SQL statement in DuckDB's dialect, run by the build's engine (DuckDB as
written, Spark after SQLGlot), over the store's ``snapshots``, ``streams`` and ``chatters``
and the build's window (``_tg_window``), bot tables (``_tg_known_bots``, ``_tg_suspected``,
``_tg_uid``) and kept streamers (``_tg_kept``). The steps are apart so that each table can be
made, or brought up to date, on its own:

``_tg_fpairs``    (s, s2, s2_at)            consecutive snapshots, gaps left out
``_tg_flive``     (snapshot_id, login)      who is live in each snapshot of the window
``_tg_fends``     (a, s, s2, s2_at)         stream ends (of every channel)
``_tg_fchat``     (a, s2, s2_at, viewer)    the non-bot chatters of A in s, per end
``_tg_fmoves``    (a, s2, s2_at, b, viewer) where those of kept streamers' ends are in s'
``_tg_fend``      (a, s2, s2_at, chatters, retained)  per end: its chatters, and those of
                                            them seen in any live channel next
``_tg_fdest``     (a, s2, s2_at, b, viewers)  per end and live channel: the viewers it got
``_tg_fpair``     (a, b, viewers, ends, first_at, last_at)  the flow aggregate (kept b)
``_tg_fstreamer`` (login, ends, end_chatters, end_retained)  per kept streamer

Only the ends of kept streamers are followed into the next snapshot (the costly join); the
ends of every channel and their chatters are counted. Everything after ``_tg_fend`` and
``_tg_fdest`` is made from those two alone, per end: `twitchgraph.serve.aggregates` keeps
them for every channel, snapshot pair by snapshot pair, and finishes with the same steps.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import pandas as pd

from twitchgraph.graphio import FLOW_COLUMNS

__all__ = [
    "FLOW_DEFINITION",
    "end_chatters",
    "end_figures",
    "end_moves",
    "flow_aggregates",
    "flow_pairs",
    "flow_table",
    "flow_totals",
    "flows_step",
    "gap_rule",
    "spacing_figures",
    "stream_ends",
    "streamer_end_figures",
    "window_spacing",
]

FLOW_DEFINITION = (
    "per stream end of Source (live in a complete snapshot s, not live in the next complete "
    "snapshot s' of the window; pairs further apart than twice the median spacing are gaps "
    "and skipped): the non-bot chatters seen in Source in s and in Target (live) in s'; "
    "viewers = their sum over Source's ends, ends = ends that sent at least one, "
    "first_at/last_at = time of s' (UTC)"
)
GAP_FACTOR = 2.0  # a spacing beyond this many median spacings is a gap in the collection


def gap_rule(spacing: Sequence[float]) -> tuple[float | None, list[bool]]:
    """The median of `spacing` (seconds from each complete snapshot to the next) and, for
    each, whether it is a gap (more than ``GAP_FACTOR`` median spacings)."""
    median = statistics.median(spacing) if spacing else None
    # A pair with no spacing at all (two snapshots in the same second) is no gap either.
    return median, [median is not None and s > GAP_FACTOR * median for s in spacing]


def spacing_figures(spacing: Sequence[float]) -> dict[str, Any]:
    """What ``build.json`` says of the spacing: median, gap threshold, pairs, gaps skipped."""
    median, gap = gap_rule(spacing)
    return {
        "median_spacing_minutes": None if median is None else round(median / 60.0, 4),
        "gap_minutes": None if median is None else round(GAP_FACTOR * median / 60.0, 4),
        "snapshot_pairs": len(spacing) - sum(gap),
        "gaps_skipped": sum(gap),
    }


def window_spacing(engine: Any) -> list[tuple[int, float]]:
    """Each complete snapshot of ``_tg_window`` but the last (its rn) and the seconds from it
    to the next."""
    times = [(int(rn), at) for rn, at in engine.rows(
        "SELECT rn, started_at FROM _tg_window ORDER BY rn")]
    return [(a[0], (b[1] - a[1]).total_seconds())
            for a, b in zip(times, times[1:], strict=False)]


def flow_pairs(engine: Any, *, skip_gaps: bool = True) -> dict[str, Any]:
    """Create ``_tg_fpairs``: each complete snapshot of the window and the next one, gaps
    left out unless `skip_gaps` is false; return the spacing figures (`spacing_figures`)."""
    spacing = window_spacing(engine)
    _, gap = gap_rule([s for _, s in spacing])
    gaps = [rn for (rn, _), g in zip(spacing, gap, strict=True) if g and skip_gaps]
    skip = f" AND a.rn NOT IN ({', '.join(map(str, gaps))})" if gaps else ""
    engine.table(
        "_tg_fpairs",
        f"""
        SELECT a.snapshot_id AS s, b.snapshot_id AS s2, b.started_at AS s2_at
        FROM _tg_window a JOIN _tg_window b ON b.rn = a.rn + 1
        WHERE TRUE{skip}
        """,
    )
    return spacing_figures([s for _, s in spacing])


def stream_ends(engine: Any) -> None:
    """Create ``_tg_flive`` and ``_tg_fends`` (one row per stream end: channel a, live in s,
    not live in s2)."""
    # Every stream row counts as live, whatever its language: the language filter chooses
    # the graph's streamers, and a viewer who went to a stream in another language went.
    engine.table(
        "_tg_flive",
        """
        SELECT DISTINCT st.snapshot_id, lower(st.user_login) AS login
        FROM streams st JOIN _tg_window w ON w.snapshot_id = st.snapshot_id
        """,
    )
    engine.table(
        "_tg_fends",
        """
        SELECT l.login AS a, p.s, p.s2, p.s2_at
        FROM _tg_fpairs p
        JOIN _tg_flive l ON l.snapshot_id = p.s
        LEFT JOIN _tg_flive n ON n.snapshot_id = p.s2 AND n.login = l.login
        WHERE n.login IS NULL
        """,
    )


def end_chatters(engine: Any, *, drop_suspected: bool) -> None:
    """Create ``_tg_fbots`` (every login the build removes as a bot) and ``_tg_fchat``: the
    non-bot chatters of each ending channel in its last snapshot (not the streamer)."""
    suspected = (
        " UNION SELECT u.viewer AS login FROM _tg_suspected s JOIN _tg_uid u ON u.uid = s.login"
        if drop_suspected else ""
    )
    engine.table("_tg_fbots", "SELECT login FROM _tg_known_bots" + suspected)
    # Relies on the store's contract for chatters (lower case, one row per snapshot,
    # channel and user), as the build's chatter step does.
    engine.table(
        "_tg_fchat",
        """
        SELECT e.a, e.s2, e.s2_at, c.user_login AS viewer
        FROM _tg_fends e
        JOIN chatters c ON c.snapshot_id = e.s AND c.channel_login = e.a
        LEFT JOIN _tg_fbots b ON b.login = c.user_login
        WHERE b.login IS NULL AND c.user_login <> e.a
        """,
    )


def end_moves(engine: Any, *, every_channel: bool = False) -> None:
    """Create ``_tg_fmoves``: for each chatter of a kept streamer's end (of every channel's
    end when `every_channel`), each live channel (not the viewer's own) they are seen in in
    the next snapshot."""
    kept = "" if every_channel else "JOIN _tg_kept k ON k.login = f.a"
    engine.table(
        "_tg_fmoves",
        f"""
        SELECT f.a, f.s2, f.s2_at, c.channel_login AS b, f.viewer
        FROM _tg_fchat f
        {kept}
        JOIN chatters c ON c.snapshot_id = f.s2 AND c.user_login = f.viewer
        JOIN _tg_flive l ON l.snapshot_id = f.s2 AND l.login = c.channel_login
        WHERE c.channel_login <> f.viewer
        """,
    )


def end_figures(engine: Any) -> None:
    """Create ``_tg_fend`` (per end: its chatters, and how many of them were seen in any live
    channel next; 0 for an end not followed) and ``_tg_fdest`` (per end and live channel of
    the next snapshot: the viewers it got).

    Each row stands for one end, whatever the window and the kept streamers, so rows of
    disjoint sets of snapshot pairs can be kept and put together."""
    engine.table(
        "_tg_fend",
        """
        WITH chat AS (SELECT a, s2, count(*) AS n FROM _tg_fchat GROUP BY 1, 2),
        kept AS (SELECT a, s2, count(DISTINCT viewer) AS n FROM _tg_fmoves GROUP BY 1, 2)
        SELECT e.a, e.s2, e.s2_at, coalesce(c.n, 0) AS chatters, coalesce(k.n, 0) AS retained
        FROM _tg_fends e
        LEFT JOIN chat c ON c.a = e.a AND c.s2 = e.s2
        LEFT JOIN kept k ON k.a = e.a AND k.s2 = e.s2
        """,
    )
    engine.table(
        "_tg_fdest",
        "SELECT a, s2, s2_at, b, count(*) AS viewers FROM _tg_fmoves GROUP BY a, s2, s2_at, b",
    )


def flow_aggregates(engine: Any) -> None:
    """Create ``_tg_fpair`` (per (a, b), b a kept streamer: viewers, ends, first and last
    time) from ``_tg_fdest``, a kept streamer's ends only."""
    engine.table(
        "_tg_fpair",
        """
        SELECT d.a, d.b, CAST(sum(d.viewers) AS BIGINT) AS viewers, count(*) AS ends,
               min(d.s2_at) AS first_at, max(d.s2_at) AS last_at
        FROM _tg_fdest d
        JOIN _tg_kept ka ON ka.login = d.a
        JOIN _tg_kept kb ON kb.login = d.b
        GROUP BY d.a, d.b
        """,
    )


def flow_table(engine: Any) -> pd.DataFrame:
    """``flows.csv``: the flows between kept streamers, one row per (Source, Target)."""
    # Plain aggregates only, so the same SQL runs on every engine; times are formatted here.
    flows = engine.df(
        """
        SELECT a AS "Source", b AS "Target", viewers, ends, first_at, last_at,
               'Directed' AS "Type"
        FROM _tg_fpair
        ORDER BY viewers DESC, ends DESC, "Source", "Target"
        """
    )
    for column in ("viewers", "ends"):
        flows[column] = flows[column].astype("int64")
    for column in ("first_at", "last_at"):
        flows[column] = _iso(flows[column])
    return flows[FLOW_COLUMNS]


def _iso(times: pd.Series) -> pd.Series:
    """Times as ``2022-05-02T10:05:00Z``. They are snapshot times, a few hundred distinct
    ones for up to millions of rows: each is formatted once."""
    codes, uniques = pd.factorize(pd.to_datetime(times, utc=True))
    text = pd.DatetimeIndex(uniques).strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(dtype=object)
    return pd.Series(text[codes] if len(codes) else [], index=times.index, dtype=object)


def streamer_end_figures(engine: Any) -> None:
    """Create ``_tg_fstreamer`` (login, ends, end_chatters, end_retained): per kept streamer,
    its stream ends, the chatters at them, and the share of those seen in any live channel
    in the next snapshot (0 when there were none)."""
    engine.table(
        "_tg_fstreamer",
        """
        WITH e AS (
            SELECT a, count(*) AS ends, sum(chatters) AS chatters, sum(retained) AS retained
            FROM _tg_fend GROUP BY 1
        )
        SELECT k.login, coalesce(e.ends, 0) AS ends,
               CAST(coalesce(e.chatters, 0) AS BIGINT) AS end_chatters,
               CASE WHEN coalesce(e.chatters, 0) = 0 THEN CAST(0 AS DOUBLE)
                    ELSE round(CAST(e.retained AS DOUBLE) / e.chatters, 4)
               END AS end_retained
        FROM _tg_kept k
        LEFT JOIN e ON e.a = k.login
        """,
    )


def flow_totals(engine: Any) -> dict[str, int]:
    """The ends of every channel and their chatters; of the streamers' ends, the chatters
    seen again and the viewers that went to channels outside the graph (from ``_tg_fend``,
    ``_tg_fdest``, ``_tg_fpair`` and ``_tg_kept``)."""
    ends, chatters, streamer_ends, streamer_chatters, retained = engine.rows(
        """
        SELECT (SELECT count(*) FROM _tg_fend), (SELECT sum(chatters) FROM _tg_fend),
               (SELECT count(*) FROM _tg_fend e JOIN _tg_kept k ON k.login = e.a),
               (SELECT sum(e.chatters) FROM _tg_fend e JOIN _tg_kept k ON k.login = e.a),
               (SELECT sum(e.retained) FROM _tg_fend e JOIN _tg_kept k ON k.login = e.a)
        """
    )[0]
    moves, between = engine.rows(
        "SELECT (SELECT sum(d.viewers) FROM _tg_fdest d JOIN _tg_kept k ON k.login = d.a), "
        "(SELECT sum(viewers) FROM _tg_fpair)")[0]
    moves, between = int(moves or 0), int(between or 0)
    return {
        "stream_ends": int(ends),
        "end_chatters": int(chatters or 0),
        "stream_ends_of_streamers": int(streamer_ends),
        "end_chatters_of_streamers": int(streamer_chatters or 0),
        "end_chatters_retained": int(retained or 0),
        "viewers_between_streamers": between,
        "viewers_to_outside_streamers": moves - between,
    }


def flows_step(engine: Any, *, drop_suspected: bool, stats: dict) -> pd.DataFrame:
    """Run the flow steps in order; record their counts in ``stats["flows"]``; return the
    ``flows.csv`` table. ``_tg_fstreamer`` is left for the streamers table."""
    figures = flow_pairs(engine)
    stream_ends(engine)
    end_chatters(engine, drop_suspected=drop_suspected)
    end_moves(engine)
    end_figures(engine)
    flow_aggregates(engine)
    flows = flow_table(engine)
    streamer_end_figures(engine)
    stats["flows"] = {**figures, **flow_totals(engine), "pairs": len(flows)}
    return flows
