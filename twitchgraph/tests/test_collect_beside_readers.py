"""`twitchgraph collect --every` as a separate process, with reading commands on the same
store at the same time, and the faults around it: kill -9 of the collector or of a reader,
two collectors started at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from twitchgraph.cli import app
from twitchgraph.sim import run_simulator

from ._collect_fixtures import empty_env_file, store_held_by_another_process

runner = CliRunner()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sim():
    with run_simulator(channels=30, users=600, seed=5, time_scale=1.0,
                       chat_joins_per_10s=1000) as sim:
        yield sim


def _collect(sim, db: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from twitchgraph.cli import main; main()", "collect",
         "--window", "1s", "--top", "8", "--joins-per-10s", "1000", "--no-users",
         "--db", str(db), "--env-file", str(empty_env_file(db.parent)), *args],
        env={**os.environ, **sim.env()}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _whole_snapshots(db: Path) -> int:
    """Assert every complete snapshot holds exactly the rows it recorded; return how many."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        complete = con.execute("SELECT s.snapshot_id, i.stats FROM snapshots s JOIN "
                               "snapshot_info i USING (snapshot_id) WHERE status = 'complete'"
                               ).fetchall()
        for sid, stats in complete:
            for table, n in json.loads(stats)["rows"].items():
                got = con.execute(f"SELECT count(*) FROM {table} WHERE snapshot_id = ?",
                                  [sid]).fetchall()[0][0]
                assert got == n, (sid, table)
        orphans = con.execute("SELECT count(*) FROM streams WHERE snapshot_id NOT IN "
                              "(SELECT snapshot_id FROM snapshots WHERE status = 'complete')"
                              ).fetchall()[0][0]
        assert orphans == 0
        return len(complete)
    finally:
        con.close()


def test_reading_commands_work_while_collect_every_runs(sim, tmp_path) -> None:
    db = tmp_path / "tg.duckdb"
    proc = _collect(sim, db, "--every", "3s", "--for", "10s")
    _wait_for(lambda: db.exists())
    results = []
    # A long reader (a two-minute report, shortened) holds the store across a snapshot's
    # end: that snapshot waits in the spool; the schedule does not wait for it.
    with store_held_by_another_process(db, read_only=True):
        results.append(runner.invoke(app, ["export-parquet", str(tmp_path / "pq0"),
                                           "--db", str(db)]))
        time.sleep(4)
    _wait_for(lambda: _snapshots_in(db) >= 1)  # a build needs one snapshot to build from
    bots = tmp_path / "bots.csv"
    bots.write_text("login\nsome_bot\n")
    loose = ["--every-nth", "1", "--min-live-minutes", "0", "--min-viewer-mean", "0",
             "--min-chatter-mean", "0", "--min-weight", "1"]
    while proc.poll() is None:
        for args in (["export-parquet", str(tmp_path / "pq")],
                     ["bots", "import", str(bots)],  # a writer, beside the collector too
                     ["status", "--json"],
                     ["build", "--out", str(tmp_path / "graph"), *loose],
                     ["report", "explore", "--graph", str(tmp_path / "graph"),
                      "--out", str(tmp_path / "re")],
                     ["evolve", "--window", "1h", "--out", str(tmp_path / "ev"), *loose],
                     ["report", "quality", "--out", str(tmp_path / "rq")]):
            results.append(runner.invoke(app, [*args, "--db", str(db)]))
            if args[0] == "status" and results[-1].exit_code == 0:
                running = json.loads(results[-1].output)["collector"]
                assert running is None or running["missed"] == 0, running
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "4 of 4 snapshot(s) complete" in out and "missed" not in out, out + err
    assert len(results) >= 8
    for result in results:
        assert result.exit_code == 0, result.output
    assert _whole_snapshots(db) == 4
    assert not list(Path(f"{db}.spool").glob("*.json"))


def test_two_collectors_started_together_one_runs_one_is_refused(sim, tmp_path) -> None:
    db = tmp_path / "tg.duckdb"
    procs = [_collect(sim, db, "--once") for _ in range(2)]
    outcomes = sorted((p.wait(timeout=60), p.stderr.read()) for p in procs)
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    (ok, _), (refused, message) = outcomes
    assert ok == 0 and refused == 1
    assert f"another collector is already running on {db}" in message
    # the simulator's endpoints are named first (issue 27 item 6), then the one error line
    first, error = message.strip().splitlines()
    assert first.startswith("collecting from endpoints that are not Twitch's")
    assert error.startswith("error: another collector") and "Traceback" not in message
    assert _whole_snapshots(db) == 1


def test_kill_9_of_the_collector_or_of_a_reader_loses_nothing_committed(sim, tmp_path) -> None:
    db = tmp_path / "tg.duckdb"
    proc = _collect(sim, db, "--every", "2s")
    _wait_for(lambda: db.exists())
    reader = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from twitchgraph.store.db import open_store\n"
         "while True:\n"
         "    con = open_store(sys.argv[1], read_only=True)\n"
         "    print(con.execute('SELECT count(*) FROM streams').fetchall()[0][0], flush=True)\n"
         "    time.sleep(0.5); con.close()", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: _snapshots_in(db) >= 2)
    proc.kill()  # kill -9, mid-schedule, while the reader reads
    proc.communicate()
    assert reader.poll() is None  # the reader goes on
    reader.kill()  # and dies mid-read: its lock goes with it
    reader.communicate()
    before = _whole_snapshots(db)
    again = _collect(sim, db, "--once")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert _whole_snapshots(db) >= before + 1


def _snapshots_in(db: Path) -> int:
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:
        return 0
    try:
        return con.execute("SELECT count(*) FROM snapshots").fetchall()[0][0]
    except duckdb.Error:
        return 0
    finally:
        con.close()


def test_sigint_ends_with_130(sim, tmp_path) -> None:
    db = tmp_path / "tg.duckdb"
    proc = _collect(sim, db, "--every", "2s")
    _wait_for(lambda: _snapshots_in(db) >= 1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "stopped" in err and "Traceback" not in err
