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
``_tg_fpair``     (a, b, viewers, ends, first_at, last_at)  the flow aggregate (kept b)
``_tg_fretained`` (a, retained)             chatters of A's ends seen anywhere next

Only the ends of kept streamers are followed into the next snapshot (the costly join); the
ends of every channel and their chatters are counted.
"""

from __future__ import annotations

import statistics
from typing import Any

import pandas as pd

from twitchgraph.graphio import FLOW_COLUMNS

__all__ = [
    "FLOW_DEFINITION",
    "end_chatters",
    "end_moves",
    "flow_aggregates",
    "flow_pairs",
    "flow_table",
    "flows_step",
    "stream_ends",
    "streamer_end_figures",
]

FLOW_DEFINITION = (
    "per stream end of Source (live in a complete snapshot s, not live in the next complete "
    "snapshot s' of the window; pairs further apart than twice the median spacing are gaps "
    "and skipped): the non-bot chatters seen in Source in s and in Target (live) in s'; "
    "viewers = their sum over Source's ends, ends = ends that sent at least one, "
    "first_at/last_at = time of s' (UTC)"
)
GAP_FACTOR = 2.0  # a spacing beyond this many median spacings is a gap in the collection


def flow_pairs(engine: Any) -> dict[str, Any]:
    """Create ``_tg_fpairs``: each complete snapshot of the window and the next one, gaps
    left out; return the spacing figures (median, gap threshold, pairs, gaps skipped)."""
    times = [(int(rn), at) for rn, at in engine.rows(
        "SELECT rn, started_at FROM _tg_window ORDER BY rn")]
    spacing = [((b[1] - a[1]).total_seconds(), a[0])
               for a, b in zip(times, times[1:], strict=False)]
    median = statistics.median(s for s, _ in spacing) if spacing else None
    # A pair with no spacing at all (two snapshots in the same second) is no gap either.
    gaps = [rn for s, rn in spacing if median is not None and s > GAP_FACTOR * median]
    skip = f" AND a.rn NOT IN ({', '.join(map(str, gaps))})" if gaps else ""
    engine.table(
        "_tg_fpairs",
        f"""
        SELECT a.snapshot_id AS s, b.snapshot_id AS s2, b.started_at AS s2_at
        FROM _tg_window a JOIN _tg_window b ON b.rn = a.rn + 1
        WHERE TRUE{skip}
        """,
    )
    return {
        "median_spacing_minutes": None if median is None else round(median / 60.0, 4),
        "gap_minutes": None if median is None else round(GAP_FACTOR * median / 60.0, 4),
        "snapshot_pairs": len(spacing) - len(gaps),
        "gaps_skipped": len(gaps),
    }


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


def end_moves(engine: Any) -> None:
    """Create ``_tg_fmoves``: for each chatter of a kept streamer's end, each live channel
    (not the viewer's own) they are seen in in the next snapshot."""
    engine.table(
        "_tg_fmoves",
        """
        SELECT f.a, f.s2, f.s2_at, c.channel_login AS b, f.viewer
        FROM _tg_fchat f
        JOIN _tg_kept k ON k.login = f.a
        JOIN chatters c ON c.snapshot_id = f.s2 AND c.user_login = f.viewer
        JOIN _tg_flive l ON l.snapshot_id = f.s2 AND l.login = c.channel_login
        WHERE c.channel_login <> f.viewer
        """,
    )


def flow_aggregates(engine: Any) -> None:
    """Create ``_tg_fpair`` (per (a, b), b a kept streamer: viewers, ends, first and last
    time) and ``_tg_fretained`` (per a: its end chatters seen in any live channel next).

    Every column of ``_tg_fpair`` adds up over disjoint sets of ends (sums, counts, min,
    max), so aggregates of two windows combine without the moves behind them."""
    engine.table(
        "_tg_fpair",
        """
        SELECT a, b, CAST(sum(n) AS BIGINT) AS viewers, count(*) AS ends,
               min(s2_at) AS first_at, max(s2_at) AS last_at
        FROM (
            -- per end first: a count(DISTINCT s2) per pair costs several times more
            SELECT m.a, m.b, m.s2, m.s2_at, count(*) AS n
            FROM _tg_fmoves m JOIN _tg_kept k ON k.login = m.b
            GROUP BY m.a, m.b, m.s2, m.s2_at
        )
        GROUP BY a, b
        """,
    )
    engine.table(
        "_tg_fretained",
        "SELECT a, count(*) AS retained FROM (SELECT DISTINCT a, s2, viewer FROM _tg_fmoves) "
        "GROUP BY a",
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
        WITH ends AS (SELECT a, count(*) AS n FROM _tg_fends GROUP BY 1),
        chat AS (SELECT a, count(*) AS n FROM _tg_fchat GROUP BY 1)
        SELECT k.login, coalesce(e.n, 0) AS ends, coalesce(c.n, 0) AS end_chatters,
               CASE WHEN coalesce(c.n, 0) = 0 THEN CAST(0 AS DOUBLE)
                    ELSE round(CAST(coalesce(r.retained, 0) AS DOUBLE) / c.n, 4)
               END AS end_retained
        FROM _tg_kept k
        LEFT JOIN ends e ON e.a = k.login
        LEFT JOIN chat c ON c.a = k.login
        LEFT JOIN _tg_fretained r ON r.a = k.login
        """,
    )


def _totals(engine: Any) -> dict[str, int]:
    """The ends of every channel and their chatters; of the streamers' ends, the chatters
    seen again and the viewers that went to channels outside the graph."""
    ends, chatters, streamer_ends, streamer_chatters, retained = engine.rows(
        """
        SELECT (SELECT count(*) FROM _tg_fends), (SELECT count(*) FROM _tg_fchat),
               (SELECT count(*) FROM _tg_fends e JOIN _tg_kept k ON k.login = e.a),
               (SELECT count(*) FROM _tg_fchat f JOIN _tg_kept k ON k.login = f.a),
               (SELECT sum(retained) FROM _tg_fretained)
        """
    )[0]
    moves, between = engine.rows(
        "SELECT (SELECT count(*) FROM _tg_fmoves), (SELECT sum(viewers) FROM _tg_fpair)")[0]
    moves, between = int(moves or 0), int(between or 0)
    return {
        "stream_ends": int(ends),
        "end_chatters": int(chatters),
        "stream_ends_of_streamers": int(streamer_ends),
        "end_chatters_of_streamers": int(streamer_chatters),
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
    flow_aggregates(engine)
    flows = flow_table(engine)
    streamer_end_figures(engine)
    stats["flows"] = {**figures, **_totals(engine), "pairs": len(flows)}
    return flows
