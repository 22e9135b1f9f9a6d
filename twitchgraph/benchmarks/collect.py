"""Benchmark the Helix side of `twitchgraph collect` against the simulator's real rate limit.

Twitch gives an app 800 points per minute in a token bucket (capacity 800, refilled
continuously at 800/60 = 13.3 points/s); `/helix/streams` costs one point per page of 100.
A snapshot of 10,000 live channels is therefore 100 requests (200 with the broadcasters'
profiles from `/helix/users`, 100 ids per request). The floor the rate limit allows for R
requests on a bucket that starts with B points is max(0, R - B) / (800/60) seconds; anything
above it is request latency and the client's own waiting.

Scenarios, each on a fresh simulator (10,000+ live channels, population frozen):

1. one snapshot of the streams (cold, full bucket): the floor is 0 s - latency only;
2. `--snapshots` snapshots back to back (sustained): the bucket empties after 800 requests and
   every further request must wait for a refill; the floor is (R - 800) / 13.3 s;
3. the same sustained run with pacing turned off (the client only reacts to 429 by waiting for
   the reset), to show what reading Ratelimit-Remaining/Reset saves.

Printed: requests, wall time, the floor, time over the floor, and 429s received.

`--chat-channels N` also times joining N channels' chats at Twitch's JOIN limit (20 per 10 s,
enforced by the simulator, which drops excess JOINs silently): the floor is (N - 20) / 20 * 10 s;
the client paces with 10 % slack and waits for every JOIN to be confirmed.

`--beside-readers N` runs instead an accelerated `collect --every` of N (>= 12) snapshots
against the simulator (its clock runs 20x, real limits relaxed) while a loop runs
`twitchgraph build` and `twitchgraph report quality` on the same store back to back, as
separate processes. Printed, with their targets: snapshots lost (0), schedule slots missed
(0), the longest time a finished snapshot waited (spooled) before it was visible in the
store, and the readers' mean latency (process start to exit) and failures.

Run: .venv/bin/python benchmarks/collect.py [--channels 11800] [--snapshots 12] [--no-naive]
     [--chat-channels 60] [--beside-readers 12]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from twitchgraph.sim import run_simulator
from twitchgraph.twitch.auth import AppTokenAuth
from twitchgraph.twitch.chat import ChatClient
from twitchgraph.twitch.credentials import load_credentials
from twitchgraph.twitch.endpoints import Endpoints
from twitchgraph.twitch.helix import HelixClient

POINTS_PER_MINUTE = 800
RATE = POINTS_PER_MINUTE / 60.0


def _client(sim, **kwargs) -> HelixClient:
    env = sim.env()
    endpoints = Endpoints.from_env(env)
    http = httpx.Client(timeout=30)
    auth = AppTokenAuth(load_credentials(env, dotenv_path=None), auth_url=endpoints.auth_url,
                        http=http)
    return HelixClient(http=http, auth=auth, api_url=endpoints.api_url, **kwargs)


def floor_s(requests: int, bucket: int = POINTS_PER_MINUTE) -> float:
    """Least time `requests` can take on a full bucket of `bucket` points at 800/min."""
    return max(0, requests - bucket) / RATE


def run(channels: int, snapshots: int, *, pace: bool, users: bool) -> dict:
    with run_simulator(channels=channels, users=30_000, seed=0, time_scale=0,
                       helix_points_per_minute=POINTS_PER_MINUTE) as sim:
        live = len(sim.live_streams())
        # reserve=-1: never pace on Ratelimit-Remaining; only a 429 makes the client wait
        helix = _client(sim, **({} if pace else {"reserve": -1}))
        sizes = []
        start = time.perf_counter()
        with helix:
            for _ in range(snapshots):
                streams = helix.streams()
                sizes.append(len(streams))
                if users:
                    helix.users(ids=[s["user_id"] for s in streams])
        wall = time.perf_counter() - start
        server_429 = sim.stats()["http_429"]
    return {"live": live, "streams": sizes[-1], "requests": helix.stats.requests, "wall": wall,
            "floor": floor_s(helix.stats.requests), "429": helix.stats.rate_limited,
            "server_429": server_429, "paced": helix.stats.paced_s}


def run_chat(n: int, joins_per_10s: int = 20) -> dict:
    """Join the `n` most viewed live channels at the real JOIN limit; time until confirmed."""
    with run_simulator(channels=max(60, int(n * 1.3)), users=5_000, seed=0, time_scale=0,
                       chat_joins_per_10s=joins_per_10s) as sim:
        logins = [s["user_login"] for s in sim.live_streams()[:n]]
        endpoints = Endpoints.from_env(sim.env())

        async def join() -> tuple[float, int]:
            async with ChatClient.from_endpoints(endpoints, joins_per_window=joins_per_10s,
                                                 join_window_s=10.0) as chat:
                start = time.perf_counter()
                taken = await chat.join(logins)
                confirmed = await chat.wait_joined(taken, timeout=120)
                return time.perf_counter() - start, confirmed

        wall, confirmed = asyncio.run(join())
        dropped = sim.stats()["chat_joins_dropped"]
    floor = max(0, n - joins_per_10s) / joins_per_10s * 10.0
    return {"n": len(logins), "wall": wall, "floor": floor, "confirmed": confirmed,
            "dropped": dropped}


def run_beside_readers(snapshots: int, *, channels: int = 150, every_s: float = 60.0,
                       time_scale: float = 20.0) -> dict:
    """An accelerated `collect --every` with `build` and `report quality` looping beside it."""
    import duckdb

    from twitchgraph.collect.options import ChatLimits, CollectOptions
    from twitchgraph.collect.run import run_collector
    from twitchgraph.store.spool import Spool

    # When each spooled snapshot was written and when it reached the store (real time).
    spooled_at: dict[str, float] = {}
    waited: list[float] = []
    put, commit = Spool.put, Spool.commit

    def timed_put(self, data):
        path = put(self, data)
        spooled_at[path.name] = time.monotonic()
        return path

    def timed_commit(self, **kwargs):
        done = commit(self, **kwargs)
        now = time.monotonic()
        waited.extend(now - spooled_at.pop(name, now) for name in done)
        return done

    Spool.put, Spool.commit = timed_put, timed_commit
    tmp = Path(tempfile.mkdtemp(prefix="tg-bench-"))
    db = tmp / "tg.duckdb"
    readers: dict[str, list[tuple[float, int, str]]] = {"build": [], "report quality": []}
    done = threading.Event()
    cli = [sys.executable, "-c", "from twitchgraph.cli import main; main()"]
    commands = {
        "build": [*cli, "build", "--db", str(db), "--out", str(tmp / "graph"), "--every-nth",
                  "1", "--min-live-minutes", "0", "--min-viewer-mean", "0",
                  "--min-chatter-mean", "0", "--min-weight", "1"],
        "report quality": [*cli, "report", "quality", "--db", str(db), "--out",
                           str(tmp / "report")],
    }

    def read_loop() -> None:
        while not db.exists() and not done.is_set():
            time.sleep(0.1)
        while not done.is_set():
            for name, command in commands.items():
                start = time.monotonic()
                proc = subprocess.run(command, capture_output=True, text=True)
                readers[name].append((time.monotonic() - start, proc.returncode,
                                      proc.stderr.strip().splitlines()[-1:]))

    with run_simulator(channels=channels, users=4_000, seed=1, time_scale=time_scale,
                       helix_points_per_minute=100_000, chat_joins_per_10s=100_000,
                       membership_interval_s=0.3) as sim:
        options = CollectOptions(window_s=20.0, every_s=every_s,
                                 for_s=every_s * (snapshots - 1) + 1.0, fetch_users=False)
        limits = ChatLimits(joins_per_window=100_000)
        loop = threading.Thread(target=read_loop)
        loop.start()
        try:
            run = run_collector(db, options, env=sim.env(), dotenv_path=None, clock=sim.clock,
                                chat_limits=limits)
        finally:
            done.set()
            loop.join()
            Spool.put, Spool.commit = put, commit
    con = duckdb.connect(str(db), read_only=True)
    stored = dict(con.execute("SELECT status, count(*) FROM snapshots GROUP BY 1").fetchall())
    con.close()
    taken = len(run.summaries)
    return {
        "slots": snapshots, "taken": taken, "complete": run.complete,
        "stored": sum(stored.values()), "lost": taken - sum(stored.values()),
        "missed": run.slots_missed + (snapshots - taken), "spooled_left": run.spooled,
        "max_wait": max(waited, default=0.0),
        "waited": sum(w > 0.5 for w in waited), "readers": readers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=11_800,
                        help="simulated channels (about 85%% are live)")
    parser.add_argument("--snapshots", type=int, default=12,
                        help="back-to-back snapshots in the sustained scenarios")
    parser.add_argument("--no-naive", action="store_true", help="skip the unpaced scenario")
    parser.add_argument("--chat-channels", type=int, default=0,
                        help="also time joining this many chats at 20 JOINs / 10 s")
    parser.add_argument("--users", action="store_true",
                        help="also fetch the broadcasters' profiles (2x the requests)")
    parser.add_argument("--beside-readers", type=int, default=0, metavar="N",
                        help="instead: N accelerated snapshots with build and report quality "
                        "looping beside the collector")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    if args.beside_readers:
        r = run_beside_readers(max(12, args.beside_readers))
        print(f"\ncollect --every beside build + report quality ({r['slots']} slots, "
              f"clock x20):")
        print(f"{'figure':44} {'measured':>10} {'target':>8}")
        print(f"{'snapshots lost (taken but not stored)':44} {r['lost']:10d} {0:8d}")
        print(f"{'schedule slots missed':44} {r['missed']:10d} {0:8d}")
        print(f"{'snapshots complete / taken':44} {r['complete']:>5}/{r['taken']:<4} "
              f"{'all':>8}")
        print(f"{'longest wait before visible (s)':44} {r['max_wait']:10.2f} {'-':>8}")
        print(f"{'snapshots that waited > 0.5 s in the spool':44} {r['waited']:10d} {'-':>8}")
        print(f"{'left in the spool at the end':44} {r['spooled_left']:10d} {0:8d}")
        for name, runs in r["readers"].items():
            ok = [t for t, code, _ in runs if code == 0]
            bad = [msg for _, code, msg in runs if code != 0]
            mean = statistics.mean(ok) if ok else float("nan")
            print(f"{name + ': runs ok / failed, mean s':44} {len(ok):>4}/{len(bad):<3} "
                  f"{mean:8.2f}")
            for msg in bad[:3]:
                print(f"    failed: {msg}")
        return

    rows = [("1 snapshot, cold bucket", run(args.channels, 1, pace=True, users=args.users)),
            (f"{args.snapshots} snapshots, paced",
             run(args.channels, args.snapshots, pace=True, users=args.users))]
    if not args.no_naive:
        rows.append((f"{args.snapshots} snapshots, no pacing (429 -> wait)",
                     run(args.channels, args.snapshots, pace=False, users=args.users)))

    live = rows[0][1]["live"]
    print(f"\nHelix /streams against the simulator: {live:,} live channels, "
          f"{POINTS_PER_MINUTE} points/min token bucket (refill {RATE:.2f}/s)")
    print(f"{'scenario':42} {'requests':>8} {'wall s':>8} {'floor s':>8} {'over s':>8} "
          f"{'429s':>5} {'req/s':>7}")
    for name, r in rows:
        print(f"{name:42} {r['requests']:8d} {r['wall']:8.1f} {r['floor']:8.1f} "
              f"{r['wall'] - r['floor']:8.1f} {r['429']:5d} {r['requests'] / r['wall']:7.1f}")
    one = rows[0][1]
    print(f"\nstreams per snapshot: {one['streams']:,} of {live:,} live; one snapshot = "
          f"{one['requests']} requests; sustained ceiling {RATE * 100 * 60:,.0f} streams/min "
          f"= {RATE * 60 / max(1, one['requests']):.1f} snapshots/min of this size")
    if args.chat_channels:
        c = run_chat(args.chat_channels)
        print(f"\nchat: joined {c['confirmed']}/{c['n']} channels in {c['wall']:.1f} s at 20 "
              f"JOINs/10 s (floor {c['floor']:.1f} s, {c['wall'] - c['floor']:+.1f} s); "
              f"JOINs dropped by the server: {c['dropped']}")


if __name__ == "__main__":
    main()
