"""Every `Example:` line of every `twitchgraph` command's help runs as written, against a small
demo store (issue 27: the `query --help` example failed, "Variable r is not in scope").

The examples are taken from the help itself (``_examples.help_examples``) and parsed as a
shell would (`shlex`); the Spark one runs in ``test_build_engines``, beside its Spark
session. They run in a folder laid out as the examples expect: ``twitchgraph.duckdb`` (the
demo's store), ``shard1.duckdb``, ``graph/``, ``dumps/``, ``twitchinsights_bots.csv``, and a
simulator's variables in the environment (``enrich``, ``collect``). Commands that run until
stopped (``collect --every``, ``serve``, ``sim serve``) run in a subprocess until they show
they work, then get Ctrl-C and must exit 130.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twitchgraph.cli import app

from ._examples import SPARK_EXAMPLE, help_examples

pytestmark = pytest.mark.slow
LONG_RUNNING = {"collect", "serve", "sim serve"}


EXAMPLES = help_examples()
# The Spark example runs in test_build_engines, in the Spark session that file starts anyway.
HERE = [(c, line) for c, line in EXAMPLES if not line.startswith(SPARK_EXAMPLE)]


def test_every_command_has_an_example():
    commands = {path for path, _ in EXAMPLES}
    assert {"collect", "status", "import", "export-parquet", "bots import", "build", "report",
            "enrich", "communities", "layout", "export", "query", "evolve", "demo",
            "sim serve", "serve"} <= commands


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    """A small demo's store and graph, laid out as the examples name them,
    and a simulator for the commands that talk to Twitch."""
    from twitchgraph.demo import DemoConfig, run_demo
    from twitchgraph.sim import run_simulator
    from twitchgraph.store.db import open_store

    root = tmp_path_factory.mktemp("examples")
    demo = root / "demo"
    # Eight snapshots 10 simulated minutes apart: 80 minutes, over the default 60 minutes
    # live, so the examples' default thresholds keep streamers. They fall within one UTC day
    # (yesterday from 01:00), as `evolve --window 1d` needs: started now, a run after 22:40
    # UTC split them over two days, neither with a graph.
    day = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0)
    run_demo(demo, config=DemoConfig(channels=40, users=800, seed=2, snapshots=8,
                                     time_scale=300.0, window_s=120.0, layout_iterations=100,
                                     start=day - timedelta(days=1)), echo=lambda _line: None)
    work = root / "work"
    work.mkdir()
    shutil.copy(demo / "demo.duckdb", work / "twitchgraph.duckdb")
    shutil.copy(demo / "demo.duckdb", work / "shard1.duckdb")
    shutil.copy(demo / "bots.csv", work / "twitchinsights_bots.csv")
    shutil.copytree(demo / "graph", work / "graph")
    con = open_store(work / "twitchgraph.duckdb", read_only=True)
    first = con.execute("SELECT min(started_at) FROM snapshots").fetchone()[0]
    con.close()
    # An original-tool dump from just before the demo's snapshots (the same windows).
    (work / "dumps").mkdir()
    at = (first - timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M:%S")
    (work / "dumps" / "snapshot.json").write_text(json.dumps({
        "pippo": {"chatters": ["alice", "carl"], "game_name": "Chess", "viewer_count": 50,
                  "date_time": at}}))
    with run_simulator(channels=40, users=800, seed=2, time_scale=60.0,
                       chat_joins_per_10s=1000) as sim:
        yield work, sim.env()


@pytest.fixture
def workspace(template, tmp_path):
    """A copy of the template for one example: examples write (a build replaces graph/, an
    import adds to the store), and under pytest-xdist any subset of them may run in any
    order."""
    work, sim_env = template
    copy = tmp_path / "work"
    shutil.copytree(work, copy)
    return copy, sim_env


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _until_up(args: list[str], cwd: Path, env: dict[str, str], ready, timeout: float = 90.0):
    """Run a command that runs until stopped; once `ready(output so far)` is true, send
    Ctrl-C; returns (exit code, output)."""
    out = cwd / f"out-{args[1]}-{time.monotonic_ns()}.txt"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from twitchgraph.cli import main; main()", *args[1:]],
            cwd=cwd, env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT,
            text=True)
        try:
            deadline = time.monotonic() + timeout
            while not ready(out.read_text()):
                assert proc.poll() is None, out.read_text()
                assert time.monotonic() < deadline, out.read_text()
                time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return code, out.read_text()


@pytest.mark.parametrize(("command", "line"), HERE,
                         ids=[f"{c}: {line[12:60]}" for c, line in HERE])
def test_the_help_example_runs_as_written(command, line, workspace, monkeypatch):
    work, sim_env = workspace
    args = shlex.split(line)
    assert args[0] == "twitchgraph"
    if command in LONG_RUNNING:
        if command == "serve":
            if not _port_free(8000):
                pytest.skip("port 8000 is taken on this machine")
            code, output = _until_up(args, work, {}, lambda text: "twitchgraph serve:" in text
                                     and _answers("http://127.0.0.1:8000/status.json"))
        elif command == "sim serve":
            code, output = _until_up(args, work, {}, lambda text: "# serving" in text)
        else:  # collect, in a folder of its own: a new store, the simulator's endpoints
            fresh = work / "collect"
            fresh.mkdir(exist_ok=True)
            code, output = _until_up(args, fresh, sim_env,
                                     lambda text: (fresh / "twitchgraph.duckdb").exists())
        assert code == 130, output
        assert "Traceback" not in output and "error:" not in output, output
        return
    monkeypatch.chdir(work)
    for key, value in sim_env.items():  # enrich and the like talk to the simulator
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, args[1:])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    if command == "query":
        assert re.search(r"\d+ rows", result.stdout)


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False
