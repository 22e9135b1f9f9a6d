"""Benchmark `twitchgraph build` on a synthetic store shaped like the original's two weeks.

The original Italian-Twitch collection: 3,823 snapshots (5-minute cron, 14 days), ~1,390 live
streams and ~44,500 chatter rows per snapshot: ~170 M (snapshot, channel, user) rows.
`--scale` keeps that per-snapshot shape and scales the number of snapshots (1/10 = the first
~1.4 days); `--scale 1` is the full two weeks.

The store is generated inside DuckDB with SQL: range() + hash-based pseudo-random numbers.
Streamers have Zipf-like popularity (viewers ~ rank^-0.85) and sessions of 30-120 minutes;
each belongs to one of 40 communities whose users are its chatters (55 % regulars of the
channel, 35 % drawn from the community, 10 % from everyone), so audiences overlap within
communities. Service bots (nightbot, streamelements) and five viewer bots sit in many rooms.

Then, each in its own process so that peak memory (ru_maxrss) is the step's own:
  1. `build_graph` + `write_graph_dir` with the original's parameters (every 3rd snapshot,
     60 min, 10 viewers, 10 chatters, overlap >= 10 %, 30 game minutes): wall time, peak RSS;
  2. a plain pandas version of the same definitions (groupby + merge self-join on the user,
     the way a notebook does it) on the same data, and the check that both give the same
     edges. pandas may not fit at the larger scales: `--pandas-scale` runs the pair at a
     smaller scale that both handle (and says so).

With `--engine spark` (or `both`), the same store is also exported as a partitioned Parquet
dataset (`export-parquet --partitioned`, timed apart) and built by `build --engine spark`
(local[*], driver memory `--spark-memory`), and its graph is checked against DuckDB's
(streamers, edges, played: same rows, floats within 1e-9). Spark's peak memory is the JVM's
(the child process), beside Python's.

Run: .venv/bin/python benchmarks/build.py [--scale 0.1] [--pandas-scale S] [--workdir DIR]
     [--engine duckdb|spark|both]

Measured 2026-12-01, `--scale 0.1` and `0.01` with `--engine both`, on the machine while
seven other jobs shared its 2 cores (load average 13-20: every figure is several times a
quiet machine's; DuckDB's build took 2.0 s quiet, 36.7 s here):

| scale | chatter rows | step                          | wall s | peak MiB | streamers | edges  |
| 0.1   | 16,522,515   | build (DuckDB)                | 36.7   | 717      | 2,267     | 12,239 |
| 0.1   |              | export --partitioned (99 MiB) | 59.2   |          |           |        |
| 0.1   |              | build --engine spark (+90 s)  | 620.1  | 674 (Py) | 2,267     | 12,239 |
| 0.01  | 1,649,675    | build (DuckDB)                | 2.7    | 232      | 524       | 625    |
| 0.01  |              | export --partitioned (10 MiB) | 3.2    |          |           |        |
| 0.01  |              | build --engine spark (+33 s)  | 180.0  | 2,669 JVM| 524       | 625    |

Graph Spark vs DuckDB at 0.1 and at 0.01: identical (streamers, edges, played). Spark on one
machine is 17x (0.1) to 67x (0.01) slower here, 3 minutes even for the small store: each of
the build's ~20 steps is a job with its own scheduling, shuffle files and checkpoint, which
a cluster spreads and DuckDB never pays. Full scale was not run with Spark (at this load,
about two hours of both cores shared with seven engineers).

The flow step (flows.csv: every complete snapshot, not every 3rd, followed into the next)
measured 2026-12-07, `--scale 0.1 --pandas-scale 0`, DuckDB, 2 cores shared with five other
jobs (load average 9-11): build 50.3 s (write included), of which the flow step 20.3 s (40 %;
39,708 stream ends, 604,553 flow pairs). Run apart under the same load, the step's share
ranged from 31 % to 43 %: it reads all 382 snapshots' chatters twice where the rest of the
build reads every third snapshot's once.

Measured 2026-11-25 on this project's machine (2 cores shared with other jobs, 23 GiB RAM),
`--scale 1 --pandas-scale 0.1`, DuckDB memory_limit 4GB:

| scale | chatter rows | step                      | wall s      | peak MiB | streamers | edges  |
| 1     | 165,370,274  | generate (SQL)            | 145.3       | 4,030    |           |        |
| 1     |              | twitchgraph build         | 34.3        | 3,965    | 2,499     | 44,314 |
| 0.1   | 16,522,515   | twitchgraph build         | 2.0         | 636      | 2,267     | 12,239 |
| 0.1   |              | pandas (+2.5 s load)      | 12.8 (6.5x) | 3,247    | 2,267     | 12,239 |

Edges identical between DuckDB and pandas at 0.1. Full scale with memory_limit 2GB: 26.6 s,
2,267 MiB; the plain CLI (`twitchgraph build`, DuckDB's default limit): 27.3 s, 5.2 GiB.
pandas was not run at full scale: at 0.1 it already peaks at 3.2 GiB, and its self-join
and string columns grow with the data (roughly 10x at full scale, more than this machine).
The original's figures for comparison: 45,583 streamers -> 2,977, 1.1 M candidate pairs ->
47,222 edges (median overlap 15.8); here 45,441 -> 2,499, 1.88 M -> 44,314 (median 18.0).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twitchgraph.build.params import BuildParams

SNAPSHOTS_FULL = 3823
STREAMS_PER_SNAPSHOT = 1390
CHATTER_ROWS_PER_SNAPSHOT = 44_500
STREAMERS = 45_583
COMMUNITIES = 40
USERS_PER_COMMUNITY = 20_000
GLOBAL_USERS = 200_000
PARAMS = BuildParams(every_nth=3, min_live_minutes=60, min_viewer_mean=10,
                     min_chatter_mean=10, min_weight=10, weight="overlap",
                     min_game_minutes=30)
FLOW_STEP = "audience flows at stream ends"  # the build's name for its flow step
GAMES = ["Just Chatting", "Ashen Frontier", "Skyward Isles", "Pixel Farmstead", "Tidebreaker",
         "Rogue Circuit", "Cardbound", "Crimson Vanguard", "Music", "Art"]  # fmt: skip


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def generate(db: Path, scale: float, threads: int, memory_limit: str) -> dict:
    """Write a synthetic store to ``db``; return its size figures."""
    from twitchgraph.store.db import open_store

    db.unlink(missing_ok=True)
    con = open_store(db)
    con.execute(f"SET threads = {threads}")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    n_snap = max(2, round(SNAPSHOTS_FULL * scale))
    t0 = time.perf_counter()
    con.execute(
        f"""
        INSERT INTO snapshots
        SELECT t, TIMESTAMPTZ '2022-05-02 00:00:00+00' + to_minutes(5 * t),
               TIMESTAMPTZ '2022-05-02 00:01:00+00' + to_minutes(5 * t), 'complete', 300.0, NULL
        FROM range({n_snap}) r(t)
        """
    )
    games = "[" + ", ".join(f"'{g}'" for g in GAMES) + "]"
    # Slot k hosts sessions of 6..24 snapshots (30-120 min); each session draws a streamer
    # with a bias towards popular (low) ranks. 7 % more slots than streams make up for
    # the draws that land on a streamer already live in that snapshot.
    con.execute(
        f"""
        INSERT INTO streams
        WITH picks AS (
            SELECT s.snapshot_id, k,
                   CAST(floor({STREAMERS} * pow(
                       (hash(s.snapshot_id // (6 + k % 19), k, 11) % 1000003) / 1000003.0, 2.2))
                       AS BIGINT) AS i
            FROM snapshots s, range({int(STREAMS_PER_SNAPSHOT * 1.07)}) r(k)
        ),
        live AS (
            SELECT snapshot_id, i, min(k) AS k FROM picks GROUP BY 1, 2
        )
        SELECT snapshot_id, 's' || i || '-' || (snapshot_id // 288), 'u' || i, 'ch' || i,
               'Ch' || i, CAST(i % {len(GAMES)} AS VARCHAR),
               {games}[1 + (i + snapshot_id // 288) % {len(GAMES)}], 'title',
               greatest(1, CAST(20000 / pow(i + 1, 0.85)
                                * (0.7 + 0.6 * (hash(i, snapshot_id) % 1000) / 1000.0) AS INTEGER)),
               TIMESTAMPTZ '2022-05-02 00:00:00+00', 'it', [], false
        FROM live
        """
    )
    mean_viewers = con.execute(
        "SELECT sum(viewer_count) / count(DISTINCT snapshot_id) FROM streams"
    ).fetchall()[0][0]
    bots = 2 * 0.35 + 5 * 0.25  # rows per stream added by the bots below
    per_stream = CHATTER_ROWS_PER_SNAPSHOT / STREAMS_PER_SNAPSHOT - bots
    # +9 %: the DISTINCT below drops draws that hit the same user twice in a room.
    factor = 1.09 * per_stream * STREAMS_PER_SNAPSHOT / mean_viewers
    uc, g = USERS_PER_COMMUNITY, GLOBAL_USERS
    con.execute(
        f"""
        INSERT INTO chatters
        WITH rooms AS (
            SELECT snapshot_id, CAST(substr(user_login, 3) AS BIGINT) AS i,
                   least(3000, CAST(viewer_count * CAST({factor:.6f} AS DOUBLE) AS INTEGER)) AS n
            FROM streams
        ),
        draws AS (
            SELECT snapshot_id, i, unnest(range(n)) AS j FROM rooms
        ),
        users AS (
            SELECT snapshot_id, i,
                   CASE WHEN hash(i, j, snapshot_id // 288) % 100 < 55
                            THEN (i % {COMMUNITIES}) * {uc} + hash(i, j) % {uc}
                        WHEN hash(i, j, snapshot_id // 288) % 100 < 90
                            THEN (i % {COMMUNITIES}) * {uc} + hash(i, j, snapshot_id) % {uc}
                        ELSE {COMMUNITIES * uc} + hash(j, snapshot_id, i, 3) % {g} END AS u
            FROM draws
        ),
        bots AS (
            SELECT snapshot_id, i, b.name AS login FROM rooms,
                   (VALUES ('nightbot', 35), ('streamelements', 35), ('viewerbot0', 25),
                           ('viewerbot1', 25), ('viewerbot2', 25), ('viewerbot3', 25),
                           ('viewerbot4', 25)) b(name, pct)
            WHERE hash(i, b.name) % 100 < b.pct
        )
        SELECT DISTINCT snapshot_id, 'ch' || i, login, 'names' FROM (
            SELECT snapshot_id, i, 'v' || u AS login FROM users
            UNION ALL SELECT snapshot_id, i, login FROM bots
        )
        """
    )
    figures = con.execute(
        """SELECT (SELECT count(*) FROM snapshots), (SELECT count(*) FROM streams),
                  (SELECT count(*) FROM chatters),
                  (SELECT count(DISTINCT user_login) FROM streams)"""
    ).fetchall()[0]
    con.close()
    return {
        "snapshots": figures[0],
        "stream_rows": figures[1],
        "chatter_rows": figures[2],
        "streamers": figures[3],
        "streams_per_snapshot": figures[1] / figures[0],
        "chatters_per_snapshot": figures[2] / figures[0],
        "generate_s": time.perf_counter() - t0,
        "db_mib": db.stat().st_size / 2**20,
        "peak_rss_mib": _peak_mib(),
    }


def run_duckdb(db: Path, out: Path, threads: int, memory_limit: str) -> dict:
    from twitchgraph.build.definition import build_graph
    from twitchgraph.graphio import write_graph_dir
    from twitchgraph.store.db import open_store

    con = open_store(db)
    con.execute(f"SET threads = {threads}")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    t0 = time.perf_counter()
    result = build_graph(con, PARAMS)
    write_graph_dir(result, out)
    seconds = time.perf_counter() - t0
    con.close()
    return {
        "seconds": seconds,
        "peak_rss_mib": _peak_mib(),
        "streamers": len(result.streamers),
        "edges": len(result.edges),
        "candidate_pairs": result.build["edges"]["candidate_pairs"],
        "median_weight": float(result.edges["Weight"].median()) if len(result.edges) else None,
        "chatter_rows_used": result.build["chatter_rows"]["in_live_channels"],
        "removed_bots": result.build["removed_bots"],
        "flow_pairs": len(result.flows),
        "stream_ends": result.build["flows"]["stream_ends"],
        "step_seconds": result.build["step_seconds"],
        "flow_s": result.build["step_seconds"][FLOW_STEP],
    }


def _jvm_peak_mib(spark) -> float:
    """Peak resident memory of the local Spark JVM (pyspark's gateway process)."""
    proc = getattr(spark.sparkContext._gateway, "proc", None)
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text()
    except (AttributeError, OSError):
        return float("nan")
    kib = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")),
               "nan")
    return float(kib) / 1024


def run_spark(db: Path, out: Path, memory: str) -> dict:
    """Export the store as a partitioned dataset, then the same build on Spark (local[*])."""
    from twitchgraph.build.definition import build_graph
    from twitchgraph.build.engines import SparkEngine, spark_session
    from twitchgraph.graphio import write_graph_dir
    from twitchgraph.store.dataset import export_partitioned
    from twitchgraph.store.db import open_store

    dataset = out.parent / f"{out.name}-dataset"
    con = open_store(db, read_only=True)
    t0 = time.perf_counter()
    export_partitioned(con, dataset)
    export_s = time.perf_counter() - t0
    con.close()
    dataset_mib = sum(p.stat().st_size for p in dataset.rglob("*.parquet")) / 2**20
    t0 = time.perf_counter()
    spark = spark_session(conf={"spark.driver.memory": memory,
                                "spark.local.dir": str(out.parent / "spark-tmp")})
    start_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = build_graph(SparkEngine(spark, dataset), PARAMS)
    write_graph_dir(result, out)
    seconds = time.perf_counter() - t0
    jvm = _jvm_peak_mib(spark)
    spark.stop()
    return {
        "export_s": export_s,
        "dataset_mib": dataset_mib,
        "start_s": start_s,
        "seconds": seconds,
        "peak_rss_mib": _peak_mib(),
        "jvm_peak_rss_mib": jvm,
        "streamers": len(result.streamers),
        "edges": len(result.edges),
    }


def _same_graph(a: Path, b: Path) -> str:
    """Same rows after sorting, floats within 1e-9, for the three graph files."""
    import numpy as np
    import pandas as pd

    for name in ("streamers.csv", "edges.csv", "played.csv", "flows.csv"):
        x = pd.read_csv(a / name, keep_default_na=False)
        y = pd.read_csv(b / name, keep_default_na=False)
        if list(x.columns) != list(y.columns) or len(x) != len(y):
            return f"DIFFERENT {name} ({len(x)} vs {len(y)} rows)"
        x = x.sort_values(list(x.columns)).reset_index(drop=True)
        y = y.sort_values(list(y.columns)).reset_index(drop=True)
        for column in x.columns:
            if pd.api.types.is_float_dtype(x[column]):
                same = np.allclose(x[column], y[column], rtol=0, atol=1e-9)
            else:
                same = x[column].astype(str).tolist() == y[column].astype(str).tolist()
            if not same:
                return f"DIFFERENT {name}.{column}"
    return "identical"


def run_pandas(db: Path, out: Path) -> dict:
    """The notebook way: load the rows, then pandas groupby + merge for every step."""
    import duckdb
    import pandas as pd

    from twitchgraph.build.bots import BUILTIN_BOTS

    con = duckdb.connect(str(db), read_only=True)
    t0 = time.perf_counter()
    snaps = con.execute(
        "SELECT snapshot_id, started_at FROM snapshots WHERE status = 'complete'"
    ).df()
    streams = con.execute(
        "SELECT snapshot_id, lower(user_login) AS login, viewer_count, game_name FROM streams"
    ).df()
    chatters = con.execute(
        "SELECT snapshot_id, lower(channel_login) AS login, lower(user_login) AS user "
        "FROM chatters"
    ).df()
    con.close()
    load_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    snaps = snaps.sort_values(["started_at", "snapshot_id"]).reset_index(drop=True)
    used = snaps.iloc[:: PARAMS.every_nth]
    step = used["started_at"].diff().dt.total_seconds().median() / 60
    streams = streams[streams.snapshot_id.isin(used.snapshot_id)]
    streams = streams.sort_values("viewer_count", ascending=False).drop_duplicates(
        ["snapshot_id", "login"]
    )
    chat = chatters.merge(streams[["snapshot_id", "login"]], on=["snapshot_id", "login"])
    chat = chat[(chat.user != chat.login) & ~chat.user.isin(BUILTIN_BOTS)].drop_duplicates()
    per_snap = chat.groupby(["snapshot_id", "login"]).size().rename("n").reset_index()
    live = streams.merge(per_snap, on=["snapshot_id", "login"], how="left").fillna({"n": 0})
    stats = live.groupby("login").agg(snaps=("snapshot_id", "size"),
                                      viewer_mean=("viewer_count", "mean"),
                                      chatter_mean=("n", "mean"))  # fmt: skip
    stats["minutes_live"] = stats["snaps"] * step
    kept = stats[(stats.minutes_live >= PARAMS.min_live_minutes)
                 & (stats.viewer_mean >= PARAMS.min_viewer_mean)
                 & (stats.chatter_mean >= PARAMS.min_chatter_mean)]  # fmt: skip
    s = chat[chat.login.isin(kept.index)][["login", "user"]].drop_duplicates()
    sizes = s.groupby("login").size()
    pairs = s.merge(s, on="user", suffixes=("_a", "_b"))
    pairs = pairs[pairs.login_a < pairs.login_b]
    shared = pairs.groupby(["login_a", "login_b"]).size().rename("shared").reset_index()
    pair_rows = len(pairs)
    del pairs
    smaller = pd.concat([shared.login_a.map(sizes), shared.login_b.map(sizes)], axis=1).min(axis=1)
    shared["overlap"] = 100 * shared["shared"] / smaller
    edges = shared[shared.overlap >= PARAMS.min_weight - 1e-9]
    seconds = time.perf_counter() - t1
    edges.to_csv(out, index=False)
    return {
        "load_s": load_s,
        "seconds": seconds,
        "peak_rss_mib": _peak_mib(),
        "streamers": len(kept),
        "edges": len(edges),
        "self_join_rows": pair_rows,
    }


def _child(phase: str, **kw: str) -> dict:
    args = [sys.executable, __file__, "--phase", phase] + [
        f"--{k.replace('_', '-')}={v}" for k, v in kw.items()
    ]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        return {"failed": f"exit {done.returncode}: " + " | ".join(tail)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _same_edges(graph_dir: Path, pandas_csv: Path) -> str:
    import pandas as pd

    ours = pd.read_csv(graph_dir / "edges.csv")
    theirs = pd.read_csv(pandas_csv)
    a = {tuple(sorted(p)): round(w, 6) for *p, w in ours[["Source", "Target", "overlap"]].values}
    b = {(x, y): round(w, 6) for x, y, w in theirs[["login_a", "login_b", "overlap"]].values}
    return "identical" if a == b else f"DIFFERENT ({len(a)} vs {len(b)} edges)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.1,
                        help="fraction of the original's 3,823 snapshots (1 = two weeks)")
    parser.add_argument("--pandas-scale", type=float, default=None,
                        help="scale of the DuckDB-vs-pandas pair (default: --scale; 0: skip)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--engine", choices=("duckdb", "spark", "both"), default="duckdb",
                        help="also build on Spark (spark/both) and check it equals DuckDB")
    parser.add_argument("--spark-memory", default="4g", help="Spark driver memory (local)")
    parser.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase == "generate":
        print(json.dumps(generate(args.db, args.scale, args.threads, args.memory_limit)))
        return
    if args.phase == "duckdb":
        print(json.dumps(run_duckdb(args.db, args.out, args.threads, args.memory_limit)))
        return
    if args.phase == "spark":
        print(json.dumps(run_spark(args.db, args.out, args.spark_memory)))
        return
    if args.phase == "pandas":
        print(json.dumps(run_pandas(args.db, args.out)))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tg-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"cpus={os.cpu_count()} threads={args.threads} memory_limit={args.memory_limit} "
          f"workdir={workdir}")  # fmt: skip
    scales = [args.scale]
    pandas_scale = args.pandas_scale if args.pandas_scale is not None else args.scale
    if pandas_scale > 0 and pandas_scale != args.scale:
        scales.append(pandas_scale)
    rows = {}
    for scale in scales:
        db = workdir / f"store-{scale:g}.duckdb"
        gen = _child("generate", db=str(db), scale=str(scale), threads=str(args.threads),
                     memory_limit=args.memory_limit)  # fmt: skip
        print(f"\nscale {scale:g}: store {json.dumps(gen)}")
        if "failed" in gen:
            continue
        duck = _child("duckdb", db=str(db), out=str(workdir / f"graph-{scale:g}"),
                      threads=str(args.threads), memory_limit=args.memory_limit)  # fmt: skip
        print(f"scale {scale:g}: twitchgraph build {json.dumps(duck)}")
        rows[scale] = {"store": gen, "duckdb": duck}
        if args.engine != "duckdb":
            spark = _child("spark", db=str(db), out=str(workdir / f"spark-{scale:g}"),
                           spark_memory=args.spark_memory)
            print(f"scale {scale:g}: twitchgraph build --engine spark {json.dumps(spark)}")
            rows[scale]["spark"] = spark
            if "failed" not in spark and "failed" not in duck:
                rows[scale]["spark_check"] = _same_graph(workdir / f"graph-{scale:g}",
                                                         workdir / f"spark-{scale:g}")
        if scale == pandas_scale:
            pandas_csv = workdir / f"pandas-edges-{scale:g}.csv"
            pan = _child("pandas", db=str(db), out=str(pandas_csv))
            print(f"scale {scale:g}: pandas {json.dumps(pan)}")
            rows[scale]["pandas"] = pan
            if "failed" not in pan and "failed" not in duck:
                rows[scale]["check"] = _same_edges(workdir / f"graph-{scale:g}", pandas_csv)

    (workdir / "results.json").write_text(json.dumps({str(k): v for k, v in rows.items()},
                                                     indent=2))  # fmt: skip
    print("\n| scale | snapshots | chatter rows | step | wall s | peak RSS MiB | streamers "
          "| edges |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for scale, r in rows.items():
        g, d = r["store"], r["duckdb"]
        print(f"| {scale:g} | {g['snapshots']:,} | {g['chatter_rows']:,} | generate (SQL) | "
              f"{g['generate_s']:.1f} | {g['peak_rss_mib']:.0f} | | |")  # fmt: skip
        if "failed" in d:
            print(f"| {scale:g} | | | twitchgraph build | FAILED {d['failed']} | | | |")
        else:
            print(f"| {scale:g} | | | twitchgraph build (DuckDB) | {d['seconds']:.1f} | "
                  f"{d['peak_rss_mib']:.0f} | {d['streamers']:,} | {d['edges']:,} |")  # fmt: skip
            print(f"| {scale:g} | | | of which the flow step ({d['stream_ends']:,} stream ends, "
                  f"{d['flow_pairs']:,} flow pairs) | {d['flow_s']:.1f} "
                  f"({100 * d['flow_s'] / d['seconds']:.0f} % of build) | | | |")
        if "spark" in r:
            sp = r["spark"]
            if "failed" in sp:
                print(f"| {scale:g} | | | build --engine spark | FAILED {sp['failed']} | | | |")
            else:
                print(f"| {scale:g} | | | export --partitioned ({sp['dataset_mib']:.0f} MiB) | "
                      f"{sp['export_s']:.1f} | | | |")
                print(f"| {scale:g} | | | build --engine spark (+{sp['start_s']:.1f} s start) | "
                      f"{sp['seconds']:.1f} | {sp['jvm_peak_rss_mib']:.0f} (JVM) + "
                      f"{sp['peak_rss_mib']:.0f} | {sp['streamers']:,} | {sp['edges']:,} |")
            if "spark_check" in r:
                print(f"graph Spark vs DuckDB at scale {scale:g}: {r['spark_check']}")
        if "pandas" in r:
            p = r["pandas"]
            if "failed" in p:
                print(f"| {scale:g} | | | pandas | FAILED {p['failed']} | | | |")
            else:
                ratio = p["seconds"] / d["seconds"] if "seconds" in d else float("nan")
                print(f"| {scale:g} | | | pandas (+{p['load_s']:.1f} s load) | {p['seconds']:.1f} "
                      f"({ratio:.1f}x) | {p['peak_rss_mib']:.0f} | {p['streamers']:,} | "
                      f"{p['edges']:,} |")  # fmt: skip
            if "check" in r:
                print(f"edges DuckDB vs pandas at scale {scale:g}: {r['check']}")
    print("pandas time is compute only (after loading the rows); the ratio is pandas / DuckDB.")


if __name__ == "__main__":
    main()
