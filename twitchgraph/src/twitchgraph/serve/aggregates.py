"""The build's heavy parts kept up to date in serve's own DuckDB file (issue 25 item 2).

`twitchgraph build` reads every used snapshot's chatters on every run. `serve` rebuilds
often over a store that only grows, so it keeps, in ``aggregates.duckdb`` in its folder
(the store stays read-only), what the build computes from those rows, summed over the
snapshots already seen:

- ``live``: per streamer, live snapshots, summed and peak viewers, summed chatters, and the
  name shown in the latest one;
- ``langs``, ``games``, ``game_ids``: per streamer and language / game, and per game name and
  id, how many live snapshots;
- ``presence``: which (non-bot) users were ever in which streamer's chat;
- ``pairs``: per pair of streamers, how many users were in both chats (the edges' counts);
- ``fends``, ``fdests``: per stream end of every channel (two consecutive complete snapshots,
  every one of them, whatever ``every_nth``), its chatters and those seen anywhere next, and
  the viewers it sent to each live channel; ``fpairs``: every pair of consecutive complete
  snapshots and their spacing in seconds; ``fwindow``: the complete snapshots folded in;
- ``used``: the snapshots folded in, and ``meta``: what they were folded under.

Each rebuild folds in only the used snapshots committed since the last one, then finishes
the graph from these tables. The build stays the definition: selecting the snapshots,
removing duplicates, the language filter and bots are the build's own steps
(`twitchgraph.build.definition`) run over the new snapshots only, and the thresholds, the
played edges, games, raids and the streamers' facts are its own steps run over the
aggregates. What this module writes itself (the sums above and the edges from ``pairs``) is
checked against a full build, row for row, by the tests.

Started from scratch when the folded snapshots are no longer a prefix of the used ones (a
snapshot imported into the past shifts ``every_nth``), on new bots, other parameters or
another schema; `IncrementalBuild.note` says which. Not used (a full build instead) for a
window (`since`/`until`), for ``drop_suspected`` (the heuristic flags users over all
snapshots at once), or while the build has parts these tables do not cover yet (`covers`).

Flows (flows.csv and the streamers' end figures) are folded in the same way: a batch of
complete snapshots brings the pairs from the last one folded in to its own last, and the
build's flow steps (`twitchgraph.build.flows`) run over these pairs alone, following the ends
of every channel (a streamer can be kept later) and no gap left out. The gap rule (twice
the median spacing of all pairs) is applied when finishing, from ``fpairs``' spacings, so a
new median only changes which pairs count, without reading chatters again; the build's
finishing flow steps then run over the ends of the pairs that count.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from twitchgraph.build.params import BuildParams

__all__ = ["IncrementalBuild", "covers"]

logger = logging.getLogger(__name__)

FORMAT = 2  # bump when the tables change
# The build's outputs these tables cover; a build with more (flows.csv) is not replaced.
_COVERED_FILES = {"streamers.csv", "edges.csv", "played.csv", "games.csv", "raids.csv",
                  "flows.csv", "build.json"}
_COVERED_STREAMER_COLUMNS = [
    "Id", "Label", "login", "language", "minutes_live", "viewer_mean", "viewer_peak",
    "chatter_mean", "chatters_total", "main_game", "broadcaster_type", "social_links",
    "ends", "end_chatters", "end_retained",
]

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR)",
    "CREATE TABLE IF NOT EXISTS used (snapshot_id BIGINT, started_at TIMESTAMPTZ)",
    """CREATE TABLE IF NOT EXISTS live (login VARCHAR, n BIGINT, viewers BIGINT,
        peak INTEGER, chat BIGINT, label_at TIMESTAMPTZ, label VARCHAR)""",
    "CREATE TABLE IF NOT EXISTS langs (login VARCHAR, language VARCHAR, n BIGINT)",
    """CREATE TABLE IF NOT EXISTS games (login VARCHAR, game_name VARCHAR, n BIGINT,
        last_at TIMESTAMPTZ)""",
    "CREATE TABLE IF NOT EXISTS game_ids (game_name VARCHAR, game_id VARCHAR, n BIGINT)",
    "CREATE TABLE IF NOT EXISTS presence (login VARCHAR, viewer VARCHAR)",
    "CREATE TABLE IF NOT EXISTS pairs (a VARCHAR, b VARCHAR, shared BIGINT)",
    "CREATE TABLE IF NOT EXISTS fwindow (snapshot_id BIGINT, started_at TIMESTAMPTZ)",
    "CREATE TABLE IF NOT EXISTS fpairs (s BIGINT, s2 BIGINT, s2_at TIMESTAMPTZ, spacing DOUBLE)",
    """CREATE TABLE IF NOT EXISTS fends (a VARCHAR, s2 BIGINT, s2_at TIMESTAMPTZ,
        chatters BIGINT, retained BIGINT)""",
    """CREATE TABLE IF NOT EXISTS fdests (a VARCHAR, s2 BIGINT, s2_at TIMESTAMPTZ, b VARCHAR,
        viewers BIGINT)""",
)
_TABLES = ("meta", "used", "live", "langs", "games", "game_ids", "presence", "pairs",
           "fwindow", "fpairs", "fends", "fdests")


def covers(params: BuildParams) -> str:
    """Why the aggregates cannot stand in for a build with `params` ("" when they can)."""
    from twitchgraph.graphio import GRAPH_FILES, STREAMER_COLUMNS

    if params.since is not None or params.until is not None:
        return "a window (since/until) is built in full"
    if params.drop_suspected:
        return "drop_suspected flags users over all snapshots at once: built in full"
    missing = set(GRAPH_FILES) - _COVERED_FILES
    if missing or list(STREAMER_COLUMNS) != _COVERED_STREAMER_COLUMNS:
        parts = ", ".join(sorted(missing)) or "new streamer columns"
        return f"the build has parts the aggregates do not cover yet ({parts}): built in full"
    return ""


class IncrementalBuild:
    """The build of a growing store, kept up to date in the DuckDB file `path`.

    Args:
        path: serve's own DuckDB file (created when missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.note = ""  # what the last build did: folded k snapshots, or started again and why
        self.timings: dict[str, float] = {}

    def build(self, store: duckdb.DuckDBPyConnection, params: BuildParams,
              *, schema_version: int) -> Any:
        """The graph of the open store `store` with `params`, as `build_graph` gives it.

        Raises BuildError as `build_graph` does (nothing to build).
        """
        from twitchgraph import __version__
        from twitchgraph.build import definition as d
        from twitchgraph.build.engines import DuckDBEngine
        from twitchgraph.graphio import (
            EDGE_COLUMNS,
            FLOW_COLUMNS,
            PLAYED_COLUMNS,
            RAID_COLUMNS,
            STREAMER_COLUMNS,
            GraphData,
        )

        t0 = time.perf_counter()
        engine = DuckDBEngine(store)
        stats: dict[str, Any] = {
            "definitions": d.DEFINITIONS, "version": __version__,
            "built_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
            "parameters": params.as_record(), "warnings": [],
            "aggregates": str(self.path),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        agg = duckdb.connect(str(self.path))
        try:
            for ddl in _DDL:
                agg.execute(ddl)
            # The build's own selection: every_nth over the complete snapshots in time order.
            selected = d.BuildState(engine=engine, params=params, stats=stats)
            d.select_snapshots(selected)
            step = selected.snapshot_minutes
            used = engine.df("SELECT snapshot_id, started_at FROM _tg_sel "
                             "ORDER BY started_at, snapshot_id")
            window = engine.df("SELECT snapshot_id, started_at FROM _tg_window ORDER BY rn")
            key = _key(params, schema_version, _bots(engine))
            new, pairs = self._new_snapshots(agg, used, window, key)
            self.timings["select"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            if len(new):
                self._fold(engine, agg, params, new)
            self.timings["fold"] = time.perf_counter() - t1
            t1 = time.perf_counter()
            if len(pairs):
                self._fold_flows(engine, agg, pairs)
            # the raids step reads the whole window
            engine.register("_tg_window_all", window)
            engine.table("_tg_window", "SELECT snapshot_id FROM _tg_window_all")
            self.timings["fold flows"] = time.perf_counter() - t1
            t2 = time.perf_counter()
            graph = self._finish(engine, agg, params, step, stats)
            self.timings["finish"] = time.perf_counter() - t2
        finally:
            engine.cleanup()
            agg.close()
        streamers, edges, played, games, raids, flows = graph
        stats["games"] = {"count": len(games)}
        stats["engine"] = "duckdb (incremental)"
        return GraphData(streamers=streamers[STREAMER_COLUMNS], edges=edges[EDGE_COLUMNS],
                         played=played[PLAYED_COLUMNS], games=games, build=stats,
                         raids=raids[RAID_COLUMNS], flows=flows[FLOW_COLUMNS])

    def _new_snapshots(self, agg, used: pd.DataFrame, window: pd.DataFrame,
                       key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The used snapshots not folded in yet, and the complete snapshots of `window` whose
        flows are not (with the last one folded in before them, if any); empties the tables
        (and says why in `note`) when what was folded is not a prefix of `used` and
        `window` or was folded under another key."""
        row = agg.execute("SELECT key FROM meta").fetchone()
        done = agg.execute("SELECT snapshot_id FROM used ORDER BY started_at, snapshot_id"
                           ).df()["snapshot_id"].tolist()
        flowed = agg.execute("SELECT snapshot_id FROM fwindow ORDER BY started_at, snapshot_id"
                             ).df()["snapshot_id"].tolist()
        why = ""
        if row is None:
            why = "first build" if not done else "no key"
        elif row[0] != key:
            old = json.loads(row[0])
            new = json.loads(key)
            changed = [k for k in new if old.get(k) != new.get(k)]
            why = {"bots": "new bots", "params": "other build parameters",
                   "schema": "another store schema", "format": "a new aggregates format"
                   }.get(changed[0], changed[0]) if changed else "another key"
        elif (used["snapshot_id"].tolist()[:len(done)] != done
              or window["snapshot_id"].tolist()[:len(flowed)] != flowed):
            why = "snapshots changed before the last one folded in (every_nth shifts)"
        if why:
            for table in _TABLES:
                agg.execute(f"DELETE FROM {table}")
            agg.execute("INSERT INTO meta VALUES (?)", [key])
            done, flowed = [], []
            self.note = f"aggregates built from scratch: {why}"
        new = used.iloc[len(done):]
        pairs = (window.iloc[max(len(flowed) - 1, 0):] if len(window) > len(flowed)
                 else window.iloc[:0])
        if not why:
            self.note = (f"aggregates: {len(new)} new snapshot{'' if len(new) == 1 else 's'} "
                         f"folded in, {len(done)} kept")
        logger.info("%s", self.note)
        return new, pairs

    def _fold(self, engine, agg, params: BuildParams, new: pd.DataFrame) -> None:
        """Fold the used snapshots `new` into the tables: the build's own steps select their
        rows (duplicates, language, bots), the sums are made here."""
        from twitchgraph.build import definition as d

        engine.register("_tg_new", new[["snapshot_id"]])
        engine.table("_tg_sel_new",
                     "SELECT s.* FROM _tg_sel s JOIN _tg_new n USING (snapshot_id)")
        engine.table("_tg_sel", "SELECT * FROM _tg_sel_new")  # the build's steps read _tg_sel
        scratch = d.BuildState(engine=engine, params=params,
                               stats={"snapshots": {"used": len(new)}, "warnings": []})
        try:
            d.live_streams(scratch)
        except d.BuildError:  # no live stream (in the language) in these snapshots
            _insert_used(agg, new)
            return
        d.chatters_without_bots(scratch)
        delta = {
            "live": engine.df("""
                WITH chat AS (SELECT snapshot_id, cid, count(*) AS n FROM _tg_chat GROUP BY 1, 2)
                SELECT l.login, count(*) AS n, CAST(sum(l.viewer_count) AS BIGINT) AS viewers,
                       max(l.viewer_count) AS peak,
                       CAST(sum(coalesce(c.n, 0)) AS BIGINT) AS chat,
                       max(l.snapshot_at) AS label_at,
                       arg_max(l.user_name, l.snapshot_at) AS label
                FROM _tg_live l LEFT JOIN chat c USING (snapshot_id, cid) GROUP BY 1"""),
            "langs": engine.df("SELECT login, language, count(*) AS n FROM _tg_live "
                               "GROUP BY 1, 2"),
            "games": engine.df("""
                SELECT login, game_name, count(*) AS n, max(snapshot_at) AS last_at
                FROM _tg_live WHERE coalesce(game_name, '') <> '' GROUP BY 1, 2"""),
            "game_ids": engine.df("""
                SELECT game_name, game_id, count(*) AS n FROM _tg_live
                WHERE coalesce(game_id, '') <> '' GROUP BY 1, 2"""),
            "presence": engine.df("""
                SELECT DISTINCT l.login, u.viewer
                FROM _tg_chat c
                JOIN (SELECT DISTINCT cid, login FROM _tg_live) l USING (cid)
                JOIN _tg_uid u USING (uid)"""),
        }
        for name, frame in delta.items():
            agg.register(f"d_{name}", frame)
        agg.execute("BEGIN")
        try:
            agg.execute("""
                CREATE OR REPLACE TEMP TABLE t AS
                SELECT login, sum(n) AS n, CAST(sum(viewers) AS BIGINT) AS viewers,
                       max(peak) AS peak, CAST(sum(chat) AS BIGINT) AS chat,
                       max(label_at) AS label_at,
                       arg_max(label, label_at) AS label
                FROM (SELECT * FROM live UNION ALL
                      SELECT login, n, viewers, peak, chat, label_at, label FROM d_live)
                GROUP BY 1""")
            agg.execute("DELETE FROM live")
            agg.execute("INSERT INTO live SELECT * FROM t")
            for table, keys, extra in (
                    ("langs", "login, language", ""),
                    ("games", "login, game_name", ", max(last_at) AS last_at"),
                    ("game_ids", "game_name, game_id", "")):
                agg.execute(f"""
                    CREATE OR REPLACE TEMP TABLE t AS
                    SELECT {keys}, sum(n) AS n{extra}
                    FROM (SELECT * FROM {table} UNION ALL SELECT * FROM d_{table})
                    GROUP BY ALL""")
                agg.execute(f"DELETE FROM {table}")
                agg.execute(f"INSERT INTO {table} SELECT * FROM t")
            # Pairs gain the users new to a chat: for each such user, every other chat they
            # are in (old or new) makes one more shared user; a pair of two new rows counts
            # once (a < b).
            agg.execute("""
                CREATE OR REPLACE TEMP TABLE fresh AS
                SELECT login, viewer FROM d_presence
                EXCEPT SELECT login, viewer FROM presence""")
            agg.execute("""
                CREATE OR REPLACE TEMP TABLE t AS
                WITH touched AS (
                    SELECT p.login, p.viewer, false AS fresh FROM presence p
                    WHERE p.viewer IN (SELECT viewer FROM fresh)
                    UNION ALL SELECT login, viewer, true FROM fresh
                ),
                gained AS (
                    SELECT x.login AS a, y.login AS b, count(*) AS shared
                    FROM touched x JOIN touched y ON x.viewer = y.viewer AND x.login < y.login
                    WHERE x.fresh OR y.fresh GROUP BY 1, 2
                )
                SELECT a, b, sum(shared) AS shared
                FROM (SELECT * FROM pairs UNION ALL SELECT * FROM gained) GROUP BY 1, 2""")
            agg.execute("DELETE FROM pairs")
            agg.execute("INSERT INTO pairs SELECT * FROM t")
            agg.execute("INSERT INTO presence SELECT * FROM fresh")
            _insert_used(agg, new)
            agg.execute("COMMIT")
        except BaseException:
            agg.execute("ROLLBACK")
            raise
        finally:
            for name in delta:
                agg.unregister(f"d_{name}")

    def _fold_flows(self, engine, agg, window: pd.DataFrame) -> None:
        """Fold in the stream ends between consecutive snapshots of `window` (complete
        snapshots in time order; its first is already folded in when flows were before):
        the build's flow steps over these pairs only, every channel's ends followed, no gap
        left out (the gap rule is applied when finishing)."""
        from twitchgraph.build import flows as f
        from twitchgraph.build.bots import known_bots_frame

        folded = int(agg.execute("SELECT count(*) FROM fwindow").fetchone()[0])
        fresh = window.iloc[1:] if folded else window
        frames: dict[str, pd.DataFrame] = {"fwindow": fresh[["snapshot_id", "started_at"]]}
        if len(window) > 1:
            engine.register("_tg_fwindow", window.assign(rn=range(len(window))))
            engine.table("_tg_window", "SELECT snapshot_id, started_at, rn FROM _tg_fwindow")
            spacing = [s for _, s in f.window_spacing(engine)]
            f.flow_pairs(engine, skip_gaps=False)
            f.stream_ends(engine)
            listed = ([r[0] for r in engine.rows("SELECT DISTINCT lower(login) FROM bots")]
                      if engine.has_table("bots") else [])
            engine.register("_tg_known_bots", known_bots_frame(listed))
            f.end_chatters(engine, drop_suspected=False)
            f.end_moves(engine, every_channel=True)
            f.end_figures(engine)
            after = window.iloc[1:].reset_index(drop=True)
            frames["fpairs"] = pd.DataFrame({
                "s": window["snapshot_id"].iloc[:-1].reset_index(drop=True),
                "s2": after["snapshot_id"], "s2_at": after["started_at"], "spacing": spacing})
            frames["fends"] = engine.df(
                "SELECT a, s2, s2_at, chatters, retained FROM _tg_fend")
            frames["fdests"] = engine.df("SELECT a, s2, s2_at, b, viewers FROM _tg_fdest")
        agg.execute("BEGIN")
        try:
            for table, frame in frames.items():
                agg.register("d_flow", frame)
                agg.execute(f"INSERT INTO {table} SELECT * FROM d_flow")
                agg.unregister("d_flow")
            agg.execute("COMMIT")
        except BaseException:
            agg.execute("ROLLBACK")
            raise

    def _finish(self, engine, agg, params: BuildParams, step: float,
                stats: dict) -> tuple[pd.DataFrame, ...]:
        """The graph from the tables: thresholds, played, games, raids and the streamers'
        facts by the build's own steps; the edges from ``pairs``; flows by the build's
        finishing flow steps over the ends of the pairs that are no gap."""
        from twitchgraph.build import definition as d
        from twitchgraph.build import flows as f
        from twitchgraph.build.engines import DuckDBEngine

        folded = int(agg.execute("SELECT count(*) FROM live").fetchone()[0])
        if folded == 0:
            raise d.BuildError(f"the {stats['snapshots']['used']} snapshots used hold no live "
                               "stream: check the collector's streams table")
        mine = DuckDBEngine(agg)
        try:
            # _tg_streamers as the build's streamer statistics step makes it, from the sums.
            mine.table("_tg_streamers", f"""
                WITH main_language AS (
                    SELECT login, language FROM (
                        SELECT login, language, row_number() OVER (
                            PARTITION BY login ORDER BY n DESC, language NULLS LAST) AS r
                        FROM langs) WHERE r = 1
                ),
                main_game AS (
                    SELECT login, arg_max(game_name, (n, last_at)) AS main_game
                    FROM games GROUP BY 1
                ),
                totals AS (SELECT login, count(*) AS chatters_total FROM presence GROUP BY 1)
                SELECT l.login, l.label, ml.language,
                       l.n * {d.sql_literal(float(step))} AS minutes_live,
                       CAST(l.viewers AS DOUBLE) / l.n AS viewer_mean,
                       l.peak AS viewer_peak,
                       CAST(l.chat AS DOUBLE) / l.n AS chatter_mean,
                       coalesce(t.chatters_total, 0) AS chatters_total,
                       mg.main_game
                FROM live l
                LEFT JOIN main_language ml USING (login)
                LEFT JOIN main_game mg USING (login)
                LEFT JOIN totals t USING (login)""")
            stats["streamers"] = {"seen": folded}
            d.apply_thresholds(mine, params, stats)
            stats["streamers"]["kept"] = int(mine.rows("SELECT count(*) FROM _tg_kept")[0][0])
            # The build's kept_edges over the stored pair counts instead of a self-join.
            mine.view("_tg_sid", "SELECT login AS sid, login, viewer_mean, "
                      "chatters_total AS n FROM _tg_kept")
            mine.table("_tg_pairs", """
                SELECT p.a, p.b, p.shared FROM pairs p
                JOIN _tg_kept ka ON ka.login = p.a JOIN _tg_kept kb ON kb.login = p.b""")
            edges = d.kept_edges(mine, params, stats)
            # The build's played_edges over the live rows of each (streamer, game), unfolded.
            mine.view("_tg_live", "SELECT login, game_name FROM games, range(n)")
            played = d.played_edges(mine, params, step, stats)
            kept = mine.df("SELECT * FROM _tg_kept")
            game_ids = agg.execute("SELECT game_name, game_id, n FROM game_ids").df()
            # The gap rule over all pairs; only then the ends of the pairs that count.
            spaced = agg.execute("SELECT s2, spacing FROM fpairs").df()
            _, gap = f.gap_rule(spaced["spacing"].tolist())
            mine.register("_tg_fcount", spaced.loc[[not g for g in gap], ["s2"]])
            for name, table in (("_tg_fend", "fends"), ("_tg_fdest", "fdests")):
                mine.view(name, f"SELECT * FROM {table} WHERE s2 IN (SELECT s2 FROM _tg_fcount)")
            f.flow_aggregates(mine)
            flows = f.flow_table(mine)
            f.streamer_end_figures(mine)
            stats["flows"] = {**f.spacing_figures(spaced["spacing"].tolist()),
                              **f.flow_totals(mine), "pairs": len(flows)}
            ends = mine.df("SELECT * FROM _tg_fstreamer")
        finally:
            mine.cleanup()
        engine.register("_tg_kept_frame", kept)
        engine.table("_tg_kept", "SELECT * FROM _tg_kept_frame")
        engine.register("_tg_game_ids", game_ids)
        engine.view("_tg_live", "SELECT game_name, game_id FROM _tg_game_ids, range(n)")
        games = d.game_table(engine, played)
        raids = d.raid_table(engine, stats)
        engine.register("_tg_fstreamer", ends)
        final = d.BuildState(engine=engine, params=params, stats=stats)
        d.streamers_table(final)
        streamers = final.frames["streamers"]
        return streamers, edges, played, games, raids, flows


def _insert_used(agg, new: pd.DataFrame) -> None:
    agg.register("d_used", new[["snapshot_id", "started_at"]])
    agg.execute("INSERT INTO used SELECT snapshot_id, started_at FROM d_used")
    agg.unregister("d_used")


def _bots(engine) -> str:
    """The imported bot list, as a digest (built-in bots come with the code's version)."""
    if not engine.has_table("bots"):
        return ""
    rows = engine.rows("SELECT DISTINCT lower(login) FROM bots ORDER BY 1")
    return hashlib.sha256("\n".join(r[0] for r in rows).encode()).hexdigest()


def _key(params: BuildParams, schema_version: int, bots: str) -> str:
    from twitchgraph import __version__
    from twitchgraph.build.bots import BUILTIN_BOTS

    record = {k: v for k, v in params.as_record().items() if k not in ("since", "until")}
    return json.dumps({"format": FORMAT, "schema": schema_version, "params": record,
                       "bots": bots, "builtin": sorted(BUILTIN_BOTS), "version": __version__},
                      sort_keys=True)
