"""Data-quality report on a store: is the collection complete enough to trust the graph?

Sections: snapshots the collector's spool set aside because the store cannot hold them, and
failed snapshots with their reasons (first), snapshots over time against the
schedule (gaps, late and failed snapshots),
duplicated streams within a snapshot, completeness per column and per enrichment source,
chatters per snapshot, suspected bots, and rooms where only message senders could be seen
(no NAMES/JOIN membership: rooms of 1,000+ users, or a lost membership capability).
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pandas as pd

from twitchgraph.build.bots import suspected_bots
from twitchgraph.enrich.schema import readable_enrich_tables
from twitchgraph.reports.html import HtmlReport, new_figure
from twitchgraph.store.db import snapshot_endpoints
from twitchgraph.twitch.endpoints import is_twitch_label

__all__ = ["quality_tables", "write_quality_report"]

logger = logging.getLogger(__name__)

# A spacing above LATE x interval is a late snapshot; above GAP x interval a missed slot.
LATE = 1.1
GAP = 1.5


def _df(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    return con.execute(sql).df()


def schedule_table(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every snapshot with its spacing to the previous one and a verdict against the schedule.

    verdict: ``failed``/``running`` from the status, else ``gap`` when the spacing exceeds
    1.5 x the schedule interval (a slot was missed), ``late`` above 1.1 x, else ``ok``.
    """
    return _df(
        con,
        f"""
        SELECT snapshot_id, started_at, finished_at, status, interval_s,
               epoch(finished_at) - epoch(started_at) AS duration_s,
               spacing_s,
               CASE WHEN status <> 'complete' THEN status
                    WHEN interval_s IS NULL OR spacing_s IS NULL THEN 'ok'
                    WHEN spacing_s > {GAP} * interval_s THEN 'gap'
                    WHEN spacing_s > {LATE} * interval_s THEN 'late'
                    ELSE 'ok' END AS verdict
        FROM (
            SELECT *, epoch(started_at) - epoch(lag(started_at) OVER (ORDER BY started_at))
                      AS spacing_s
            FROM snapshots
        )
        ORDER BY started_at
        """,
    )


def quality_tables(
    con: duckdb.DuckDBPyConnection, *, bot_channel_share: float = 0.10
) -> dict[str, pd.DataFrame]:
    """The report's tables, as DataFrames (the HTML page is made from these)."""
    readable_enrich_tables(con)
    return {
        "schedule": schedule_table(con),
        "failures": _failures(con),
        "duplicates": _duplicates(con),
        "completeness": _completeness(con),
        "enrichment": _enrichment(con),
        "chatters": _chatters_per_snapshot(con),
        "suspected_bots": suspected_bots(con, share=bot_channel_share),
        "message_only_rooms": _message_only_rooms(con),
    }


def _endpoints(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """Snapshots per endpoints they were collected from, when Twitch's and others mix."""
    rows = snapshot_endpoints(con)
    if len({is_twitch_label(e) for e, _ in rows}) < 2:
        return None
    return pd.DataFrame([(e, n, is_twitch_label(e)) for e, n in rows],
                        columns=["endpoints", "snapshots", "twitch"])


def _failures(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Snapshots that did not complete, newest first, with the reason."""
    return _df(
        con,
        """
        SELECT snapshot_id, started_at, coalesce(error, status) AS reason
        FROM snapshots WHERE status <> 'complete' ORDER BY started_at DESC
        """,
    )


def _duplicates(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Streamers listed more than once in one snapshot."""
    return _df(
        con,
        """
        SELECT snapshot_id, lower(user_login) AS login, count(*) AS rows
        FROM streams GROUP BY 1, 2 HAVING count(*) > 1
        ORDER BY rows DESC, snapshot_id, login
        """,
    )


def _completeness(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The share of filled values of each column of ``streams`` and ``users``."""
    parts = []
    for table, columns in (
        ("streams", ["user_id", "user_login", "user_name", "game_id", "game_name", "title",
                     "viewer_count", "started_at", "language", "tags", "is_mature"]),
        ("users", ["user_id", "login", "display_name", "broadcaster_type", "description",
                   "created_at", "profile_image_url", "type"]),
    ):  # fmt: skip
        filled = ", ".join(
            f"avg(CASE WHEN {c} IS NULL OR CAST({c} AS VARCHAR) IN ('', '[]') "
            f"THEN 0 ELSE 1 END) AS {c}"
            for c in columns
        )
        row = _df(con, f"SELECT count(*) AS n, {filled} FROM {table}")
        n = int(row["n"].iloc[0])
        for c in columns:
            value = row[c].iloc[0]
            pct = None if n == 0 else round(100 * float(value), 1)
            parts.append({"table": table, "column": c, "rows": n, "filled_pct": pct})
    return pd.DataFrame(parts)


def _enrichment(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per enrichment source: items that could be asked, asked, found, and the found share."""
    enrich = _df(
        con,
        """
        WITH g AS (SELECT DISTINCT game_id, game_name FROM streams
                   WHERE coalesce(game_id, '') <> ''),
             live AS (SELECT DISTINCT lower(user_login) AS login FROM streams)
        SELECT 'helix games' AS source, count(*) AS items,
               count(gm.game_id) AS asked, count(*) FILTER (WHERE gm.found) AS found
        FROM g LEFT JOIN games gm USING (game_id)
        UNION ALL
        SELECT 'igdb', count(*) FILTER (WHERE coalesce(gm.igdb_id, '') <> ''),
               count(ig.igdb_id), count(*) FILTER (WHERE ig.found)
        FROM games gm LEFT JOIN igdb_games ig USING (igdb_id) WHERE gm.found
        UNION ALL
        SELECT 'steam match', count(DISTINCT g.game_name), count(DISTINCT m.game_name),
               count(DISTINCT m.game_name) FILTER (WHERE m.steam_appid IS NOT NULL)
        FROM g LEFT JOIN game_matches m ON m.game_name = g.game_name
        UNION ALL
        SELECT 'steam details', count(*) FILTER (WHERE steam_appid IS NOT NULL),
               count(sd.appid), count(*) FILTER (WHERE sd.found)
        FROM game_matches m LEFT JOIN steam_details sd ON sd.appid = m.steam_appid
        UNION ALL
        SELECT 'social links (any source)', count(*),
               count(*) FILTER (WHERE login IN (SELECT login FROM social_fetches)),
               count(*) FILTER (WHERE login IN (SELECT lower(login) FROM social_links))
        FROM live
        UNION ALL
        SELECT 'users profile', count(*),
               count(*) FILTER (WHERE login IN (SELECT lower(login) FROM users)),
               count(*) FILTER (WHERE login IN (SELECT lower(login) FROM users))
        FROM live
        """,
    )
    enrich["found_pct"] = (100 * enrich["found"] / enrich["items"].where(enrich["items"] > 0))
    return enrich


def _chatters_per_snapshot(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Streams and chatters (rows, distinct users, by how they were seen) per snapshot."""
    return _df(
        con,
        """
        -- Plain GROUP BYs (which DuckDB can spill to disk) rather than count(DISTINCT)
        -- per snapshot, which holds every snapshot's set of users in memory at once.
        WITH per_user AS (
            SELECT snapshot_id, user_login, count(*) AS rows,
                   count(*) FILTER (WHERE source = 'names') AS names,
                   count(*) FILTER (WHERE source = 'join') AS joins,
                   count(*) FILTER (WHERE source = 'message') AS messages
            FROM chatters GROUP BY 1, 2
        ),
        per_snapshot AS (
            SELECT snapshot_id, sum(rows) AS chatter_rows, count(*) AS distinct_chatters,
                   sum(names) AS names, sum(joins) AS joins, sum(messages) AS messages
            FROM per_user GROUP BY 1
        ),
        streams_per AS (SELECT snapshot_id, count(*) AS streams FROM streams GROUP BY 1)
        SELECT s.snapshot_id, s.started_at, coalesce(sp.streams, 0) AS streams,
               coalesce(p.chatter_rows, 0) AS chatter_rows,
               coalesce(p.distinct_chatters, 0) AS distinct_chatters,
               coalesce(p.names, 0) AS names, coalesce(p.joins, 0) AS joins,
               coalesce(p.messages, 0) AS messages
        FROM snapshots s
        LEFT JOIN per_snapshot p USING (snapshot_id)
        LEFT JOIN streams_per sp USING (snapshot_id)
        WHERE s.status = 'complete'
        ORDER BY s.started_at
        """,
    )


def _message_only_rooms(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Rooms where only message senders could be seen (no NAMES/JOIN membership)."""
    return _df(
        con,
        """
        WITH by_room AS (
            SELECT snapshot_id, lower(channel_login) AS channel,
                   bool_and(source = 'message') AS only_messages, count(*) AS chatters
            FROM chatters GROUP BY 1, 2
        ),
        rooms AS (
            SELECT coalesce(l.snapshot_id, r.snapshot_id) AS snapshot_id,
                   coalesce(lower(l.channel_login), r.channel) AS channel,
                   l.membership, r.only_messages, coalesce(r.chatters, 0) AS chatters
            FROM listens l
            FULL JOIN by_room r
              ON r.snapshot_id = l.snapshot_id AND r.channel = lower(l.channel_login)
        )
        SELECT channel, count(*) AS snapshots, round(avg(chatters), 1) AS mean_chatters_seen,
               count(*) FILTER (WHERE membership = false) AS no_membership,
               count(*) FILTER (WHERE only_messages) AS only_message_senders
        FROM rooms
        WHERE membership = false OR only_messages
        GROUP BY channel ORDER BY snapshots DESC, channel
        """,
    )


def write_quality_report(
    con: duckdb.DuckDBPyConnection, out_dir: str | Path, *, bot_channel_share: float = 0.10,
    set_aside: list[tuple[str, str]] | None = None,
) -> Path:
    """Write ``quality.html`` and its figures to ``out_dir``; return the page's path.

    `set_aside`: (file, error) of the spool's snapshots that could not be committed
    (`Spool.set_aside`), shown first.
    """
    t = quality_tables(con, bot_channel_share=bot_channel_share)
    report = HtmlReport("twitchgraph - data quality", Path(out_dir))

    mixed = _endpoints(con)
    if mixed is not None:
        report.heading("Snapshots from different endpoints")
        report.text("The store mixes snapshots collected from Twitch and from other endpoints "
                    "(the simulator?): a build cannot tell them apart.")
        report.table(mixed, caption="Snapshots per endpoints")

    if set_aside:
        report.heading("Snapshots set aside")
        report.text(f"{len(set_aside)} snapshot(s) could not be committed because of their own "
                    "data and were set aside in the spool (as .bad files); later snapshots "
                    "went on. The real errors:")
        report.table(pd.DataFrame(set_aside, columns=["file", "error"]),
                     caption="Snapshots set aside")

    failures = t["failures"]
    report.heading("Failed snapshots")  # first: a collection that stores nothing says so
    if failures.empty:
        report.text("No snapshot failed.", note=True)
    else:
        report.text(f"{len(failures)} snapshot(s) failed and are left out of every build; "
                    "the reasons, most recent first:")
        report.table(failures, caption="Failed snapshots")

    sched = t["schedule"]
    report.heading("Snapshots against the schedule")
    if sched.empty:
        report.text("The store has no snapshots: run `twitchgraph collect` first.", note=True)
    else:
        verdicts = sched["verdict"].value_counts().rename_axis("verdict").reset_index()
        report.table(verdicts, caption="Snapshots by verdict")
        report.text(
            f"'gap': spacing above {GAP} x the schedule interval (a slot was missed); "
            f"'late': above {LATE} x.",
            note=True,
        )
        fig, ax = new_figure()
        colours = {"ok": "#6441a5", "late": "#e69f00", "gap": "#d55e00", "failed": "#000000",
                   "running": "#999999"}  # fmt: skip
        spacing_min = sched["spacing_s"] / 60
        for verdict, rows in sched.groupby("verdict"):
            ax.scatter(rows["started_at"], spacing_min[rows.index], s=10,
                       color=colours.get(str(verdict), "grey"), label=str(verdict))  # fmt: skip
        interval = sched["interval_s"].dropna()
        if not interval.empty:
            ax.axhline(interval.median() / 60, color="grey", linestyle="--", label="schedule")
        ax.set_ylabel("minutes since previous snapshot")
        ax.legend(fontsize="small")
        report.figure("snapshot_spacing", fig)
        problems = sched[sched["verdict"] != "ok"]
        report.table(problems, caption="Snapshots off schedule")

    report.heading("Duplicated streams within a snapshot")
    dup = t["duplicates"]
    report.text(f"{len(dup)} (snapshot, channel) pairs appear more than once "
                "(Helix pages shift while they are read; the build keeps one row).")  # fmt: skip
    report.table(dup, caption="Duplicates")

    report.heading("Completeness")
    report.table(t["completeness"], max_rows=100, caption="Filled values per column")
    report.table(t["enrichment"], caption="Enrichment sources (items, asked, found)")

    report.heading("Chatters per snapshot")
    chat = t["chatters"]
    if not chat.empty:
        fig, ax = new_figure()
        ax.plot(chat["started_at"], chat["chatter_rows"], label="chatter rows")
        ax.plot(chat["started_at"], chat["distinct_chatters"], label="distinct chatters")
        ax.plot(chat["started_at"], chat["messages"], label="seen by message only")
        ax.set_ylabel("per snapshot")
        ax.legend(fontsize="small")
        report.figure("chatters_per_snapshot", fig)
    report.table(chat.describe().reset_index() if not chat.empty else chat, caption="Summary")

    report.heading("Suspected bots")
    report.text(f"Accounts present in more than {bot_channel_share:.0%} of a snapshot's live "
                "channels (and at least 3 channels).")  # fmt: skip
    report.table(t["suspected_bots"], caption="Suspected bots")

    report.heading("Rooms where only message senders could be seen")
    report.text("Without membership (NAMES/JOIN), silent viewers are invisible: these rooms' "
                "audiences are undercounted.")  # fmt: skip
    report.table(t["message_only_rooms"], caption="Rooms")
    return report.write("quality")
