"""`twitchgraph collect`, `import` and `export-parquet` through the CLI runner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest
from typer.testing import CliRunner

from twitchgraph.cli import app
from twitchgraph.sim import run_simulator
from twitchgraph.store.db import open_store

from ._collect_fixtures import (
    empty_env_file,
    make_stream,
    store_held_by_another_process,
    terminal_ctrl_c,
)

runner = CliRunner()
NO_CREDS = {"TWITCH_CLIENT_ID": "", "TWITCH_CLIENT_SECRET": ""}


@pytest.fixture(scope="module")
def sim():
    with run_simulator(channels=40, users=800, seed=3, time_scale=1.0,
                       chat_joins_per_10s=1000) as sim:
        yield sim


@pytest.mark.slow
def test_collect_once_against_the_simulator(sim, tmp_path) -> None:
    db = tmp_path / "tg.duckdb"
    result = runner.invoke(app, ["collect", "--once", "--db", str(db), "--top", "12",
                                 "--window", "1.5s", "--joins-per-10s", "1000",
                                 "--env-file", str(empty_env_file(tmp_path))], env=sim.env())
    assert result.exit_code == 0, result.output
    assert "snapshot 1 complete" in result.output and "12 streams" in result.output
    assert "1 of 1 snapshot(s) complete" in result.output
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT status FROM snapshots").fetchall() == [("complete",)]
    assert con.execute("SELECT count(*) FROM streams").fetchone() == (12,)
    truth = {s["user_login"] for s in sim.live_streams()[:12]}
    got = {r[0] for r in con.execute("SELECT user_login FROM streams").fetchall()}
    assert len(got & truth) >= 10  # viewer counts drift between the two looks
    n_chatters, n_channels = con.execute(
        "SELECT count(*), count(DISTINCT channel_login) FROM chatters").fetchone()
    assert n_chatters > 50 and n_channels >= 10
    assert con.execute("SELECT count(*) FROM users").fetchone()[0] == 12
    assert sim.credentials.client_secret not in result.output


def test_missing_credentials_is_one_clear_line(tmp_path) -> None:
    result = runner.invoke(app, ["collect", "--once", "--db", str(tmp_path / "x.duckdb"),
                                 "--env-file", str(empty_env_file(tmp_path))], env=NO_CREDS)
    assert result.exit_code == 1
    assert "TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_refused_credentials_fail_without_printing_the_secret(sim, tmp_path) -> None:
    env = dict(sim.env(), TWITCH_CLIENT_SECRET="wrong-secret-value-xyz")
    result = runner.invoke(app, ["collect", "--once", "--db", str(tmp_path / "x.duckdb"),
                                 "--window", "0s", "--env-file", str(empty_env_file(tmp_path))],
                           env=env)
    assert result.exit_code == 1
    assert "snapshot 1 failed" in result.output and "TWITCH_CLIENT_SECRET" in result.output
    assert "wrong-secret-value-xyz" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--window", "soon"], "--window: not a duration"),
    (["--once", "--every", "10m"], "either --once or --every"),
    (["--for", "1h"], "--for needs --every"),
    (["--every", "30s", "--window", "60s"], "must not be shorter than the listening window"),
    (["--every", "30d"], "every must be positive and at most 7 days"),
    (["--every", "1h", "--for", "99999d"], "--for: '99999d' is longer than the 366 days"),
    (["--window", "2d", "--once"], "window must be from 0 to 24 hours"),
])
def test_bad_options_are_one_line(tmp_path, args, message) -> None:
    result = runner.invoke(app, ["collect", "--db", str(tmp_path / "x.duckdb"), *args],
                           env=NO_CREDS)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("option", ["--top", "--min-viewers", "--channels-per-connection",
                                    "--max-connections", "--joins-per-10s"])
def test_counts_have_upper_bounds(tmp_path, option) -> None:
    result = runner.invoke(app, ["collect", "--once", "--db", str(tmp_path / "x.duckdb"),
                                 option, "99999999999999999999"], env=NO_CREDS)
    text = " ".join(result.output.replace("│", " ").split())  # typer's box, unwrapped
    assert result.exit_code == 2 and "less than or equal to" in text, text


def test_a_symlink_to_the_store_cannot_get_a_second_collector_in(tmp_path) -> None:
    from twitchgraph.collect.collector import CollectError
    from twitchgraph.collect.run import collector_lock
    from twitchgraph.store.locks import collector_running

    db = tmp_path / "real.duckdb"
    open_store(db).close()
    link = tmp_path / "link.duckdb"
    link.symlink_to(db)
    with collector_lock(db):
        with pytest.raises(CollectError, match="another collector is already running on"):
            with collector_lock(link):
                pass
        assert collector_running(link) == os.getpid()  # status through the link sees it


def test_sighup_is_ignored_while_collecting(caplog) -> None:
    from twitchgraph.collect.signals import ignore_hangup

    before = signal.getsignal(signal.SIGHUP)
    with caplog.at_level("WARNING"), ignore_hangup():
        os.kill(os.getpid(), signal.SIGHUP)  # would end the process with the default action
        time.sleep(0.05)
    assert "SIGHUP ignored: the collection goes on" in caplog.text
    assert signal.getsignal(signal.SIGHUP) == before


def test_ctrl_c_while_the_collector_starts_is_an_interrupt(sim, tmp_path, monkeypatch) -> None:
    """Ctrl-C between the store's creation and the first snapshot (a CI run of the help
    example sent it there) stops the run as an interrupt, so the CLI exits 130: asyncio.run's
    own handler used to cancel the collector's task, and the run ended as if nothing had
    completed (exit 1)."""
    import twitchgraph.collect.run as collect_run
    from twitchgraph.collect.options import CollectOptions

    write_state = collect_run._write_state
    sent = []

    def ctrl_c_on_first_state(path, state) -> None:
        write_state(path, state)
        if not sent:  # the collector's first state: written before anything awaits
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(collect_run, "_write_state", ctrl_c_on_first_state)
    with terminal_ctrl_c():
        run = collect_run.run_collector(
            tmp_path / "tg.duckdb", CollectOptions(window_s=1.0, every_s=3600.0),
            env=sim.env(), dotenv_path=None)
    assert sent
    assert run.interrupted == "SIGINT" and run.summaries == []
    state = json.loads(collect_run.collector_state_path(tmp_path / "tg.duckdb").read_text())
    assert state["running"] is False


def test_snapshots_record_their_endpoints_and_a_store_does_not_mix_them_silently(
        sim, tmp_path) -> None:
    from datetime import UTC, datetime

    from twitchgraph.store.db import SnapshotData, write_snapshot
    from twitchgraph.twitch.endpoints import Endpoints

    db = tmp_path / "real.duckdb"
    con = open_store(db)
    at = datetime(2026, 3, 1, tzinfo=UTC)
    twitch = Endpoints().collect_label()
    write_snapshot(con, SnapshotData(started_at=at, finished_at=at, endpoints=twitch))
    con.close()
    args = ["collect", "--once", "--db", str(db), "--top", "3", "--window", "0.5s",
            "--joins-per-10s", "1000", "--env-file", str(empty_env_file(tmp_path))]
    refused = runner.invoke(app, args, env=sim.env())
    assert refused.exit_code == 1
    lines = refused.output.splitlines()
    sim_label = Endpoints.from_env(sim.env()).collect_label()
    assert lines[0] == (f"collecting from endpoints that are not Twitch's: {sim_label} "
                        "(TWITCH_API_URL, TWITCH_AUTH_URL or TWITCH_CHAT_HOST are set, e.g. by "
                        "`sim serve`)")
    assert (f"holds snapshots collected from other endpoints (1 from {twitch}); this run "
            f"collects from {sim_label}: use another --db, or pass --mix-endpoints") \
        in refused.output
    mixed = runner.invoke(app, [*args, "--mix-endpoints"], env=sim.env())
    assert mixed.exit_code == 0, mixed.output
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT endpoints FROM snapshot_info ORDER BY snapshot_id").fetchall() \
        == [(twitch,), (sim_label,)]
    con.close()
    status = runner.invoke(app, ["status", "--db", str(db)])
    assert status.output.splitlines()[:3] == [
        "the store mixes snapshots from Twitch and from other endpoints (the simulator?); a "
        "build cannot tell them apart:", f"  1 snapshot(s) from {sim_label}",
        f"  1 snapshot(s) from {twitch}"]
    # two simulator runs differ in their ports only: they may share a store
    from twitchgraph.collect.run import _refuse_other_endpoints

    sim_db = tmp_path / "sim.duckdb"
    con = open_store(sim_db)
    write_snapshot(con, SnapshotData(started_at=at, finished_at=at, endpoints=sim_label))
    con.close()
    _refuse_other_endpoints(sim_db, sim_label.replace(str(sim.chat_address[1]), "1"))


def test_import_then_export_parquet(tmp_path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    for minute in (0, 5):
        doc = {"date_time": f"2022-05-02T10:0{minute}:00Z",
               "streams": [make_stream(i, 10 - i) for i in range(2)],
               "chatters": {"chan00000": ["a", "b"], "chan00001": ["b"]}}
        (dumps / f"{minute}.json").write_text(json.dumps(doc))
    (dumps / "bad.json").write_text("{")
    db = tmp_path / "tg.duckdb"
    result = runner.invoke(app, ["import", str(dumps), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "imported 2 snapshot file(s)" in result.output and "bad.json" in result.output
    again = runner.invoke(app, ["import", str(dumps), "--db", str(db), "--strict"])
    assert again.exit_code == 1  # --strict: the bad file fails the run
    assert "skipped 2 already imported" in again.output

    out = tmp_path / "parquet"
    result = runner.invoke(app, ["export-parquet", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "chatters.parquet: 6 rows" in result.output
    rows = duckdb.connect().execute(f"SELECT count(*) FROM '{out / 'streams.parquet'}'")
    assert rows.fetchone() == (4,)


def test_import_and_export_errors(tmp_path) -> None:
    result = runner.invoke(app, ["import", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "is not a directory" in result.output
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["import", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "no *.json files" in result.output
    result = runner.invoke(app, ["export-parquet", str(tmp_path / "o"), "--db",
                                 str(tmp_path / "nope.duckdb")])
    assert result.exit_code == 1 and "no store at" in result.output


def test_a_db_path_under_a_file_is_one_line(tmp_path) -> None:
    (tmp_path / "f").write_text("a file, not a folder")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.json").write_text("{}")
    db = str(tmp_path / "f" / "tg.duckdb")
    creds = {"TWITCH_CLIENT_ID": "id", "TWITCH_CLIENT_SECRET": "s3cret"}
    for args, env in ((["import", str(tmp_path / "d")], {}),
                      (["collect", "--once", "--env-file", str(empty_env_file(tmp_path))], creds)):
        result = runner.invoke(app, [*args, "--db", db], env=env)
        assert result.exit_code == 1, result.output
        assert "File exists" in result.output and "Traceback" not in result.output


def test_export_parquet_to_a_file_is_one_line(tmp_path) -> None:
    db = tmp_path / "tg.duckdb"
    open_store(db).close()
    (tmp_path / "taken").write_text("not a directory")
    result = runner.invoke(app, ["export-parquet", str(tmp_path / "taken"), "--db", str(db)])
    assert result.exit_code == 1, result.output
    assert f"cannot write Parquet files to {tmp_path / 'taken'}" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_import_and_export_name_a_store_locked_by_another_process(tmp_path) -> None:
    db = tmp_path / "tg.duckdb"
    (tmp_path / "dumps").mkdir()
    (tmp_path / "dumps" / "a.json").write_text("{}")
    with store_held_by_another_process(db):
        for args in (["import", str(tmp_path / "dumps")],
                     ["export-parquet", str(tmp_path / "out")]):
            result = runner.invoke(app, [*args, "--db", str(db)])
            assert result.exit_code == 1, result.output
            assert f"cannot open the store {db}" in result.output
            # a collector no longer holds the store: the message names the holder instead
            assert "another collector" not in result.output
            assert "process" in result.output
            assert "Traceback" not in result.output


@pytest.mark.slow
def test_sigterm_ends_every_cleanly_and_leaves_only_whole_snapshots(sim, tmp_path) -> None:
    db = tmp_path / "tg.duckdb"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from twitchgraph.cli import main; main()", "collect",
         "--every", "3s", "--window", "2s", "--top", "10", "--joins-per-10s", "1000",
         "--db", str(db), "--env-file", str(empty_env_file(tmp_path))],
        env={**os.environ, **sim.env()}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        if "snapshot 1 complete" in line or not line:
            break
    assert "snapshot 1 complete" in "".join(seen), "".join(seen)
    time.sleep(1.5)  # into the next snapshot (it starts 3 s after the first)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    err = "".join(seen) + err
    assert proc.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err
    con = duckdb.connect(str(db), read_only=True)
    statuses = con.execute("SELECT status FROM snapshots ORDER BY snapshot_id").fetchall()
    assert statuses[0] == ("complete",)
    assert all(s in (("complete",), ("failed",)) for s in statuses)
    assert err.count("complete in") == statuses.count(("complete",))
    failed = "SELECT snapshot_id FROM snapshots WHERE status <> 'complete'"
    assert con.execute(f"SELECT count(*) FROM chatters WHERE snapshot_id IN ({failed})"
                       ).fetchone() == (0,)
