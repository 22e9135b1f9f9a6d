"""Every failure case of issue 12, through the CLI: one line naming the thing and what to do,
the exit code saying what happened, and no traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _build_fixtures import add_live, add_snapshots, new_store, users_named  # noqa: E402
from _collect_fixtures import terminal_ctrl_c  # noqa: E402
from _graph_fixtures import write_planted_graph_dir  # noqa: E402

from twitchgraph.cli import app  # noqa: E402
from twitchgraph.export.kuzu_db import export_kuzu  # noqa: E402
from twitchgraph.graphio import read_graph_dir  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("errors")
    store = root / "store.duckdb"
    con = new_store(str(store))
    sids = add_snapshots(con, 4)
    add_live(con, sids, "alpha", viewers=300, chatters=users_named("u", 20))
    add_live(con, sids, "beta", viewers=200, chatters=users_named("u", 20, start=10))
    con.close()
    graph = root / "graph"
    write_planted_graph_dir(graph, communities=2, size=6, seed=4)
    export_kuzu(read_graph_dir(graph), graph)
    negative = root / "negative"
    write_planted_graph_dir(negative, communities=2, size=6, seed=4)
    edges = pd.read_csv(negative / "edges.csv")
    edges.loc[0, "Weight"] = -3.0
    edges.to_csv(negative / "edges.csv", index=False)
    broken = root / "broken"
    write_planted_graph_dir(broken, communities=2, size=6, seed=4)
    with (broken / "edges.csv").open("a") as f:
        f.write('a,b\n1,2,3,4\n"unclosed\n')
    (broken / "graph.kuzu").write_text("not a database")
    (root / "binary.env").write_bytes(b"TWITCH_CLIENT_ID=\xff\xfe\x00\x81")
    (root / "deep").mkdir()
    (root / "deep" / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "far").mkdir()
    (root / "far" / "far.json").write_text('{"date_time": "9999-12-31T00:00:00Z", '
                                           '"streams": []}')
    (root / "a_file").write_text("not a folder")
    (root / "a_folder").mkdir()
    locked_graph = root / "locked_graph"
    write_planted_graph_dir(locked_graph, communities=2, size=6, seed=4)
    unlocks = [u for u in (_lock(root / "locked"), _lock(locked_graph)) if u is not None]
    extra = {"locked": root / "locked", "locked_graph": locked_graph} if len(unlocks) == 2 else {}
    yield {**extra, "root": root, "store": store, "graph": graph, "negative": negative,
            "broken": broken, "binary_env": root / "binary.env", "file": root / "a_file",
            "folder": root / "a_folder"}
    for unlock in unlocks:
        unlock()


def _writable(folder: Path) -> bool:
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def _lock(folder: Path):
    """Make `folder` unwritable (chmod; as root, which ignores modes, `chattr +i`); returns
    the undo, or None when neither works here."""
    folder.mkdir(exist_ok=True)
    folder.chmod(0o555)
    if not _writable(folder):
        return lambda: folder.chmod(0o755)
    folder.chmod(0o755)
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)],
                                                 capture_output=True).returncode == 0:
        if not _writable(folder):
            return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    return None


@dataclass
class Case:
    name: str
    args: Callable[[dict[str, Path]], list[str]]
    expected: str  # in the one error line
    code: int = 1
    needs: str = ""  # a path of the fixture some machines cannot make (an unwritable folder)


CASES = [
    # import: a bad file is skipped and named (issue 27 items 4 and 5)
    Case("import of a 100,000-deep nested JSON file",
         lambda p: ["import", str(p["root"] / "deep"), "--db", str(p["root"] / "i.duckdb")],
         "skipped deep.json: JSON nested too deeply to read"),
    Case("import of a dump dated 9999-12-31",
         lambda p: ["import", str(p["root"] / "far"), "--db", str(p["root"] / "i.duckdb")],
         "skipped far.json: date_time 9999-12-31 00:00:00 is outside the sane range (2011-01-01 "
         "to a day from now)"),
    # query: read-only in fact
    Case("query with two statements",
         lambda p: ["query", str(p["graph"]), "MATCH (s:Streamer) RETURN count(s); "
                    "MATCH (s:Streamer) RETURN count(s)"],
         "second statement after ';'"),
    Case("query $name without --param",
         lambda p: ["query", str(p["graph"]), "MATCH (s:Streamer {login: $login}) RETURN s"],
         "query uses $login but no --param login=… was given"),
    Case("query COPY TO a file",
         lambda p: ["query", str(p["graph"]),
                    f"COPY (MATCH (s:Streamer) RETURN s.login) TO '{p['root'] / 'leak.csv'}'"],
         "query is read-only: COPY reads or writes files"),
    Case("query on a graph.kuzu that is not a database",
         lambda p: ["query", str(p["broken"]), "RETURN 1"],
         "graph.kuzu (Runtime exception: Unable to open database"),
    Case("query INSTALL httpfs", lambda p: ["query", str(p["graph"]), "INSTALL httpfs"],
         "query is read-only: INSTALL downloads extensions"),
    # DuckDB out of memory
    Case("build out of memory",
         lambda p: ["build", "--db", str(p["store"]), "--out", str(p["root"] / "oom"),
                    "--memory-limit", "1KB", "--every-nth", "1"],
         "raise --memory-limit (e.g. 8GB) or narrow --since/--until"),
    Case("report quality out of memory",
         lambda p: ["report", "quality", "--db", str(p["store"]), "--out",
                    str(p["root"] / "oom-report"), "--memory-limit", "1KB"],
         "DuckDB ran out of memory within --memory-limit 1KB: raise --memory-limit"),
    # --out naming a file
    Case("evolve --out a file",
         lambda p: ["evolve", "--db", str(p["store"]), "--out", str(p["file"])],
         "is not a folder: pass a folder"),
    Case("demo --out a file", lambda p: ["demo", "--out", str(p["file"])],
         "is not a folder: pass a folder"),
    # unwritable output folders, found before any work
    Case("evolve --out an unwritable folder",
         lambda p: ["evolve", "--db", str(p["store"]), "--out", str(p["locked"] / "evolve")],
         "cannot write to --out", needs="locked"),
    Case("evolve --out an unwritable existing folder",
         lambda p: ["evolve", "--db", str(p["store"]), "--out", str(p["locked"])],
         "; pass a folder you can write", needs="locked"),
    Case("communities on an unwritable GRAPH_DIR",
         lambda p: ["communities", str(p["locked_graph"])],
         "this command writes streamers.csv and communities.csv there", needs="locked_graph"),
    Case("layout on an unwritable GRAPH_DIR", lambda p: ["layout", str(p["locked_graph"])],
         "cannot write to GRAPH_DIR", needs="locked_graph"),
    # values out of range
    Case("sim serve --port 99999", lambda p: ["sim", "serve", "--port", "99999"],
         "--port 99999 is not a port: use 0-65535"),
    Case("sim serve --port -1", lambda p: ["sim", "serve", "--port", "-1"],
         "--port -1 is not a port: use 0-65535"),
    Case("sim serve --for inf", lambda p: ["sim", "serve", "--for", "inf"],
         "--for must be a number of seconds >= 0"),
    Case("sim serve --time-scale nan", lambda p: ["sim", "serve", "--time-scale", "nan"],
         "--time-scale must be a number > 0"),
    Case("sim serve --channels 0", lambda p: ["sim", "serve", "--channels", "0"],
         "sim serve: channels and users must be >= 1"),
    Case("sim serve --chat-joins-per-10s 0",
         lambda p: ["sim", "serve", "--chat-joins-per-10s", "0"],
         "--chat-joins-per-10s must be >= 1"),
    Case("serve --rebuild-every soon",
         lambda p: ["serve", "--db", str(p["store"]), "--rebuild-every", "soon"],
         "--rebuild-every: not a duration: 'soon'"),
    Case("serve --window 0s", lambda p: ["serve", "--db", str(p["store"]), "--window", "0s"],
         "--window: window '0s' must be longer than zero"),
    Case("serve --min-weight -5",
         lambda p: ["serve", "--db", str(p["store"]), "--min-weight", "-5",
                    "--graph-dir", str(p["root"] / "served")],
         "min_weight must be a finite number >= 0, got -5.0"),
    Case("communities --seed beyond a C integer",
         lambda p: ["communities", str(p["graph"]), "--seed", "99999999999999999999"],
         "seed must be an integer of at most 19 digits"),
    Case("sim serve --ground-truth a folder",
         lambda p: ["sim", "serve", "--ground-truth", str(p["folder"])],
         "is a folder: pass a file name"),
    Case("collect --every 99999999999999h",
         lambda p: ["collect", "--every", "99999999999999h", "--db", str(p["store"])],
         "--every: '99999999999999h' is longer than the 366 days allowed"),
    Case("evolve --window 99999999999d",
         lambda p: ["evolve", "--db", str(p["store"]), "--window", "99999999999d",
                    "--out", str(p["root"] / "evolve")],
         "--window: '99999999999d' is longer than the 366 days allowed"),
    Case("layout --edge-weight-influence 1e6",
         lambda p: ["layout", str(p["negative"]), "--edge-weight-influence", "1e6"],
         "edge weight influence must be between 0 and 10"),
    Case("layout --scaling nan", lambda p: ["layout", str(p["negative"]), "--scaling", "nan"],
         "scaling must be a finite number, got nan"),
    Case("communities on a negative edge weight", lambda p: ["communities", str(p["negative"])],
         "1 edges have a Weight that is negative"),
    Case("communities --resolution nan",
         lambda p: ["communities", str(p["graph"]), "--resolution", "nan"],
         "resolution must be a finite number > 0"),
    Case("build --min-weight -5",
         lambda p: ["build", "--db", str(p["store"]), "--out", str(p["root"] / "neg"),
                    "--min-weight", "-5"],
         "min_weight must be a finite number >= 0, got -5.0"),
    # upper bounds on counts (issue 27)
    Case("build --every-nth 10**20",
         lambda p: ["build", "--db", str(p["store"]), "--out", str(p["root"] / "nth"),
                    "--every-nth", "99999999999999999999"],
         "every_nth must be between 1 and 100,000 (every k-th snapshot), got "
         "99999999999999999999"),
    Case("evolve --every-nth 10**20",
         lambda p: ["evolve", "--db", str(p["store"]), "--out", str(p["root"] / "nth-evolve"),
                    "--every-nth", "99999999999999999999"],
         "every_nth must be between 1 and 100,000"),
    Case("serve --every-nth 10**20",
         lambda p: ["serve", "--db", str(p["store"]), "--graph-dir", str(p["root"] / "nth-s"),
                    "--every-nth", "99999999999999999999"],
         "every_nth must be between 1 and 100,000"),
    Case("serve --layout-iterations 10**20",
         lambda p: ["serve", "--db", str(p["store"]), "--graph-dir", str(p["root"] / "it-s"),
                    "--layout-iterations", "99999999999999999999"],
         "--layout-iterations must be at most 100,000, got 99999999999999999999"),
    Case("layout --iterations 10**20",
         lambda p: ["layout", str(p["negative"]), "--iterations", "99999999999999999999"],
         "iterations must be between 1 and 100,000, got 99999999999999999999"),
    Case("demo --users 10**20",
         lambda p: ["demo", "--out", str(p["root"] / "demo"), "--users", "99999999999999999999"],
         "demo: at most 100,000 --channels, 10,000,000 --users and 1,000 --snapshots"),
    Case("sim serve --channels 10**20",
         lambda p: ["sim", "serve", "--channels", "99999999999999999999"],
         "at most 100,000 channels and 10,000,000 users"),
    # query parameters: a number only when written as one, and one that fits
    Case("query --param beyond 64 bits",
         lambda p: ["query", str(p["graph"]), "RETURN $n", "--param",
                    "n=99999999999999999999"],
         "parameter 'n=99999999999999999999': 99999999999999999999 does not fit a 64-bit "
         "integer"),
    Case("query --param with an unknown type",
         lambda p: ["query", str(p["graph"]), "RETURN $n", "--param", "n:date=3"],
         "the type after ':' is one of str, int, float, bool, json"),
    # serve
    Case("serve --db a folder", lambda p: ["serve", "--db", str(p["folder"])],
         "is a folder: pass the store's file (e.g. twitchgraph.duckdb)"),
    # messages that name the file
    Case("report explore on a broken CSV",
         lambda p: ["report", "explore", "--graph", str(p["broken"]), "--out",
                    str(p["root"] / "explore")],
         "edges.csv is not a readable CSV"),
    Case("collect with a binary --env-file",
         lambda p: ["collect", "--once", "--env-file", str(p["binary_env"]), "--db",
                    str(p["root"] / "collect.duckdb")],
         "binary.env is not a text .env file"),
    Case("collect with a missing --env-file",
         lambda p: ["collect", "--once", "--env-file", str(p["root"] / "none.env"), "--db",
                    str(p["root"] / "collect.duckdb")],
         "none.env is not a file: pass an existing .env file"),
    Case("enrich with a missing --env-file",
         lambda p: ["enrich", "--env-file", str(p["root"] / "none.env"), "--db",
                    str(p["store"])],
         "none.env is not a file: pass an existing .env file"),
    Case("enrich with a binary --env-file",
         lambda p: ["enrich", "--env-file", str(p["binary_env"]), "--db", str(p["store"])],
         "binary.env is not a text .env file"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_failure_is_one_line_with_its_exit_code(case, paths):
    if case.needs and case.needs not in paths:
        pytest.skip(f"cannot make {case.needs} here")
    result = runner.invoke(app, case.args(paths))
    assert result.exit_code == case.code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and case.expected in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_sim_serve_writes_an_env_file_into_a_new_folder(paths):
    env_file = paths["root"] / "new" / "sim.env"
    result = runner.invoke(app, ["sim", "serve", "--channels", "10", "--users", "100",
                                 "--for", "0", "--env-file", str(env_file)])
    assert result.exit_code == 0, result.output
    assert "TWITCH_CLIENT_ID=" in env_file.read_text()


def test_enrich_reads_credentials_and_urls_from_its_env_file(paths, tmp_path, monkeypatch):
    from twitchgraph.sim import run_simulator

    monkeypatch.chdir(tmp_path)  # no .env here
    for var in ("TWITCH_CLIENT_ID", "TWITCH_CLIENT_SECRET", "TWITCH_API_URL", "STEAM_API_URL"):
        monkeypatch.delenv(var, raising=False)
    store = tmp_path / "store.duckdb"
    store.write_bytes(paths["store"].read_bytes())
    with run_simulator(channels=10, users=100, seed=1) as sim:
        env_file = tmp_path / "sim.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in sim.env().items()))
        result = runner.invoke(app, ["enrich", "--db", str(store), "--env-file", str(env_file),
                                     "--no-igdb"])
        requests = sim.stats()["http_requests"]
    assert result.exit_code == 0, result.output
    assert "credentials missing" not in result.output and "FAILED" not in result.output
    assert "helix games: asked 1" in result.output and "steam: asked 1" in result.output
    assert requests > 0  # the simulator's Helix and Steam answered, not the real ones


def test_build_warns_when_a_filter_empties_a_whole_table(paths, tmp_path):
    out = tmp_path / "graph"
    # Four snapshots 5 minutes apart: every game was played 20 minutes, under the default 30.
    result = runner.invoke(app, ["build", "--db", str(paths["store"]), "--out", str(out),
                                 "--every-nth", "1", "--min-live-minutes", "15"])
    assert result.exit_code == 0, result.output
    assert "0 played edges, 0 games" in result.stdout
    assert result.stdout.strip().endswith("; warning: a filter emptied a table, see below")
    warning = ("min_game_minutes=30.0 left no played edge and so no game (2 before, 0 after; "
               "the longest was 20 minutes): lower --min-game-minutes")
    assert result.stderr.strip() == f"warning: {warning}"
    assert json.loads((out / "build.json").read_text())["warnings"] == [warning]
    result = runner.invoke(app, ["build", "--db", str(paths["store"]), "--out", str(out),
                                 "--every-nth", "1", "--min-live-minutes", "15",
                                 "--min-game-minutes", "20"])
    assert result.exit_code == 0 and "2 played edges, 1 games" in result.stdout
    assert result.stderr == ""
    assert json.loads((out / "build.json").read_text())["warnings"] == []


def test_export_removes_the_outputs_a_rebuild_made_stale_and_says_which(tmp_path):
    from twitchgraph.export.kuzu_db import DB_NAME
    from twitchgraph.export.stale import OUTPUTS

    assert OUTPUTS["db"] == DB_NAME
    graph = tmp_path / "graph"
    write_planted_graph_dir(graph, communities=2, size=5, seed=2)
    for command in (["communities", str(graph)], ["layout", str(graph), "--iterations", "20"],
                    ["export", str(graph), "--to", "db,gexf,html,neo4j"]):
        assert runner.invoke(app, command).exit_code == 0
    made = {t: graph / OUTPUTS[t] for t in ("db", "gexf", "html", "neo4j")}
    assert all(p.exists() for p in made.values())
    # Nothing is stale yet: exporting one target leaves the others alone.
    result = runner.invoke(app, ["export", str(graph), "--to", "png"])
    assert result.exit_code == 0 and "removed" not in result.output
    assert all(p.exists() for p in made.values())
    # A rebuild rewrites the tables (here: a newer streamers.csv).
    later = (graph / OUTPUTS["png"]).stat().st_mtime + 10
    os.utime(graph / "streamers.csv", (later, later))
    result = runner.invoke(app, ["export", str(graph), "--to", "gexf"])
    assert result.exit_code == 0, result.output
    for target in ("db", "html", "neo4j", "png"):
        assert f"{target}: removed {graph / OUTPUTS[target]}, older than the graph's tables " \
               f"(remake it with --to {target})" in result.stdout
        assert not (graph / OUTPUTS[target]).exists()
    assert (graph / OUTPUTS["gexf"]).exists() and not list(graph.glob("graph.kuzu*"))
    result = runner.invoke(app, ["query", str(graph), "RETURN 1"])
    assert result.exit_code == 1 and "--to db" in result.stderr


@pytest.mark.parametrize("command", ["build", "report", "evolve", "communities"])
def test_ctrl_c_exits_130_also_inside_a_duckdb_query(command, paths, monkeypatch):
    """DuckDB turns Ctrl-C during a query into InterruptException ("Query interrupted"),
    which used to leave `build` and `report` with exit 1."""
    import duckdb

    def interrupted(*args, **kwargs):
        raise duckdb.InterruptException("INTERRUPT Error: Query interrupted")

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    out = str(paths["root"] / f"interrupted-{command}")
    if command == "build":
        monkeypatch.setattr("twitchgraph.build.definition.build_graph", interrupted)
        args = ["build", "--db", str(paths["store"]), "--out", out]
    elif command == "report":
        monkeypatch.setattr("twitchgraph.reports.write_quality_report", interrupted)
        args = ["report", "quality", "--db", str(paths["store"]), "--out", out]
    elif command == "evolve":
        monkeypatch.setattr("twitchgraph.graph.evolve.evolve_store", ctrl_c)
        args = ["evolve", "--db", str(paths["store"]), "--out", out]
    else:
        monkeypatch.setattr("twitchgraph.graph.communities.communities_for_dir", ctrl_c)
        args = ["communities", str(paths["graph"])]
    result = runner.invoke(app, args)
    assert result.exit_code == 130, result.output
    assert result.stderr.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in result.output and "Query interrupted" not in result.output


def test_a_real_ctrl_c_inside_a_duckdb_query_exits_130(monkeypatch):
    """A real SIGINT while DuckDB runs a query: DuckDB 2.0 raises a plain RuntimeError "Query
    interrupted" in its place, and a collector pressed there (the store's migration) ended
    with a traceback and exit 1."""
    import signal
    import threading

    import duckdb
    import typer

    from twitchgraph.cli._app import exit_130_on_interrupt

    demo = typer.Typer()

    @demo.command()
    def count() -> None:
        con = duckdb.connect()
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        # About a minute uninterrupted on one core.
        con.execute("SELECT count(*) FROM range(20000000000) t(i) WHERE i % 7 = 3").fetchall()

    @demo.command()
    def other() -> None:  # two commands, so `count` is a subcommand as in the real app
        pass

    exit_130_on_interrupt(demo)
    with terminal_ctrl_c():
        result = runner.invoke(demo, ["count"])
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert result.exit_code == 130, result.output
    assert result.stderr.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in result.output
