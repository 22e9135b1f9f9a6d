"""Exploration report: what the collected data and the built graph look like.

Distributions (viewers, chatters, minutes live, degree, edge weights), activity by hour of
day, top games and languages, top edges, top raid flows, top flows at stream ends.
Store-based sections need ``con``; graph-based sections need a GRAPH_DIR written by
``twitchgraph build``. Either may be missing; the page says which sections it left out.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from twitchgraph.errors import BadValue
from twitchgraph.graph.flow_shares import flow_shares
from twitchgraph.graphio import GraphData, read_build_record, read_graph_dir
from twitchgraph.reports.html import HtmlReport, new_figure

__all__ = ["explore_tables", "write_explore_report"]

logger = logging.getLogger(__name__)


def explore_tables(
    con: duckdb.DuckDBPyConnection | None, graph_dir: str | Path | None
) -> dict[str, pd.DataFrame]:
    """The report's tables. Keys present depend on which inputs were given."""
    if con is None and graph_dir is None:
        raise BadValue("explore needs a store (--db) or a graph (--graph), or both")
    t: dict[str, pd.DataFrame] = {}
    if con is not None:
        complete = "snapshot_id IN (SELECT snapshot_id FROM snapshots WHERE status = 'complete')"
        t["stream_viewers"] = con.execute(
            f"SELECT viewer_count FROM streams WHERE {complete}"
        ).df()
        t["room_chatters"] = con.execute(
            # one row per (snapshot, channel, user) in the store: count(*) is the distinct count
            f"""SELECT snapshot_id, channel_login AS channel, count(*) AS chatters
                FROM chatters WHERE {complete} GROUP BY 1, 2"""
        ).df()
        t["hourly"] = con.execute(
            """
            SELECT hour(s.started_at AT TIME ZONE 'UTC') AS hour_utc,
                   count(*) / count(DISTINCT st.snapshot_id) AS streams_per_snapshot,
                   sum(st.viewer_count) / count(DISTINCT st.snapshot_id) AS viewers_per_snapshot
            FROM streams st JOIN snapshots s USING (snapshot_id)
            WHERE s.status = 'complete' GROUP BY 1 ORDER BY 1
            """
        ).df()
        t["languages"] = con.execute(
            f"""SELECT coalesce(language, '?') AS language,
                       count(DISTINCT lower(user_login)) AS streamers, count(*) AS stream_rows
                FROM streams WHERE {complete} GROUP BY 1 ORDER BY streamers DESC LIMIT 20"""
        ).df()
        t["games_store"] = con.execute(
            f"""SELECT game_name AS game, count(DISTINCT lower(user_login)) AS streamers,
                       count(*) AS stream_rows, sum(viewer_count) AS viewer_snapshots
                FROM streams WHERE {complete} AND coalesce(game_name, '') <> ''
                GROUP BY 1 ORDER BY viewer_snapshots DESC LIMIT 20"""
        ).df()
    if graph_dir is not None:
        # graphio's reader keeps logins as strings ("nan" too) and names the file in its errors.
        g = read_graph_dir(graph_dir)
        streamers, edges = g.streamers, g.edges
        t["streamers"] = streamers
        t["edges"] = edges
        degree = pd.concat([edges["Source"], edges["Target"]]).value_counts()
        t["degree"] = (
            streamers[["Id"]]
            .assign(degree=lambda d: d["Id"].map(degree).fillna(0).astype(int))
            .sort_values("degree", ascending=False)
        )
        t["top_edges"] = edges.sort_values("Weight", ascending=False).head(30)
        if not g.played.empty:
            t["games_graph"] = (
                g.played.groupby("Target", as_index=False)
                .agg(streamers=("Source", "nunique"), minutes=("minutes_played", "sum"))
                .rename(columns={"Target": "game"})
                .sort_values("minutes", ascending=False)
                .head(20)
            )  # fmt: skip
        if not g.raids.empty:
            t["top_raids"] = g.raids.sort_values(
                ["viewers_total", "raids", "Source", "Target"],
                ascending=[False, False, True, True]).head(30)
        t["top_flows"] = _top_flows(g)
    return t


def _top_flows(g: GraphData) -> pd.DataFrame:
    """The 30 flows that moved the most viewers, with their shares in percent."""
    flows = flow_shares(g).sort_values(["viewers", "ends", "Source", "Target"],
                                       ascending=[False, False, True, True]).head(30)
    for column in ("share_of_ends", "share_of_arrivals"):
        flows[f"{column}_pct"] = (100 * flows.pop(column)).round(1)
    return flows.drop(columns=["Type"]).reset_index(drop=True)


def _hist(report: HtmlReport, name: str, values: pd.Series, xlabel: str, *, log: bool) -> None:
    values = values.dropna()
    if values.empty:
        report.text(f"{xlabel}: no values.", note=True)
        return
    fig, ax = new_figure(6, 3)
    if log and (values > 0).any():
        positive = values[values > 0]
        bins = np.logspace(np.log10(positive.min()), np.log10(positive.max() + 1), 40)
        ax.hist(positive, bins=bins, color="#6441a5")
        ax.set_xscale("log")
        if len(positive) < len(values):
            ax.set_title(f"{len(values) - len(positive):,} zero values not shown (log axis)",
                         fontsize="small")  # fmt: skip
    else:
        ax.hist(values, bins=40, color="#6441a5")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    report.figure(name, fig)
    summary = values.describe(percentiles=[0.5, 0.9, 0.99]).to_frame(xlabel).T.reset_index(
        drop=True
    )
    report.table(summary)


def write_explore_report(
    con: duckdb.DuckDBPyConnection | None,
    graph_dir: str | Path | None,
    out_dir: str | Path,
) -> Path:
    """Write ``explore.html`` and its figures to ``out_dir``; return the page's path."""
    t = explore_tables(con, graph_dir)
    report = HtmlReport("twitchgraph - exploration", Path(out_dir))
    params = {} if graph_dir is None else read_build_record(graph_dir).get("parameters", {})
    if params:
        report.text("Graph built with " + ", ".join(f"{k}={v}" for k, v in params.items()))

    report.heading("Distributions")
    if "stream_viewers" in t:
        _hist(report, "viewers_per_stream", t["stream_viewers"]["viewer_count"],
              "viewers per stream and snapshot", log=True)  # fmt: skip
        _hist(report, "chatters_per_room", t["room_chatters"]["chatters"],
              "chatters per room and snapshot", log=True)  # fmt: skip
    if "streamers" in t:
        s = t["streamers"]
        _hist(report, "minutes_live", s["minutes_live"], "minutes live per streamer", log=False)
        _hist(report, "viewer_mean", s["viewer_mean"], "mean viewers per streamer", log=True)
        _hist(report, "degree", t["degree"]["degree"], "degree (edges per streamer)", log=True)
        _hist(report, "edge_weight", t["edges"]["Weight"], "edge weight", log=False)
    else:
        report.text("No graph given (--graph): degree, edge weights and minutes live left out.",
                    note=True)  # fmt: skip

    report.heading("Activity by hour of day (UTC)")
    if "hourly" in t and not t["hourly"].empty:
        h = t["hourly"]
        fig, ax = new_figure(8, 3)
        ax.bar(h["hour_utc"], h["viewers_per_snapshot"], width=0.8, color="#6441a5")
        ax.set_xlim(-0.6, 23.6)
        ax.set_xticks(range(0, 24, 2))
        ax.set_xlabel("hour of day (UTC)")
        ax.set_ylabel("viewers per snapshot")
        ax2 = ax.twinx()
        ax2.plot(h["hour_utc"], h["streams_per_snapshot"], color="#e69f00", marker="o")
        ax2.set_ylabel("live streams per snapshot")
        report.figure("activity_by_hour", fig)
        report.table(h, max_rows=24)
    else:
        report.text("No store given (--db): activity by hour left out.", note=True)

    report.heading("Top games and languages")
    if "games_graph" in t:
        report.table(t["games_graph"], caption="Games in the graph (minutes played)")
    if "games_store" in t:
        report.table(t["games_store"], caption="Games in the store (viewer-snapshots)")
    if "languages" in t:
        report.table(t["languages"], caption="Languages")

    if "top_edges" in t:
        report.heading("Top edges")
        report.table(t["top_edges"], caption="Strongest edges")
        report.heading("Most connected streamers")
        report.table(t["degree"].head(20), caption="Degree")
    if "top_raids" in t:
        report.heading("Top raid flows")
        if t["top_raids"].empty:
            report.text("No raid between two streamers of the graph.", note=True)
        else:
            report.table(t["top_raids"], caption="Raids sending the most viewers "
                         "(raider -> raided)")
    if "top_flows" in t:
        report.heading("Top flows at stream ends")
        if t["top_flows"].empty:
            report.text("No flow between two streamers of the graph (flows.csv is empty or "
                        "absent: a build from before flows).", note=True)
        else:
            report.table(t["top_flows"], caption="Where chatters are seen when a stream ends "
                         "(ended -> next), summed over the ends; share_of_ends_pct: of the "
                         "chatters at Source's ends, share_of_arrivals_pct: of those Target "
                         "gained at others' ends")
    return report.write("explore")
