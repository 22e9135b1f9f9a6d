"""Store schema versions: migrating older stores in place, refusing what is not ours, and
reading commands that open the store read-only and never create tables."""

from __future__ import annotations

import hashlib

import duckdb
import pytest
from typer.testing import CliRunner

from twitchgraph.cli import app
from twitchgraph.store import db as store_module
from twitchgraph.store.db import SCHEMA_VERSION, StoreError, open_store

from ._build_fixtures import add_live, add_snapshots, new_store, users_named

runner = CliRunner()

# The first released schema: the columns the README documented, before snapshots.interval_s,
# users.fetched_at and snapshots.error, and before the version was recorded.
FIRST_SCHEMA_DROPS = ("ALTER TABLE snapshots DROP COLUMN interval_s",
                      "ALTER TABLE snapshots DROP COLUMN error",
                      "ALTER TABLE users DROP COLUMN fetched_at",
                      "ALTER TABLE snapshot_info DROP COLUMN endpoints",
                      "DROP TABLE twitchgraph_meta")


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position", [table]).fetchall()]


def _tables(path) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        con.close()


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def first_schema_store(tmp_path):
    """A store at schema 1 with three streamers live in four snapshots."""
    path = tmp_path / "v1.duckdb"
    con = new_store(str(path))
    sids = add_snapshots(con, 4)
    add_live(con, sids, "alpha", viewers=300, chatters=users_named("u", 20))
    add_live(con, sids, "beta", viewers=200, chatters=users_named("u", 20, start=10))
    add_live(con, sids, "gamma", viewers=50, chatters=users_named("u", 20, start=5))
    con.execute("INSERT INTO users (user_id, login) VALUES ('u-alpha', 'alpha')")
    for statement in FIRST_SCHEMA_DROPS:
        con.execute(statement)
    con.close()
    con = duckdb.connect(str(path))
    assert "interval_s" not in _columns(con, "snapshots")
    assert "fetched_at" not in _columns(con, "users")
    con.close()
    return path


def test_a_first_schema_store_migrates_in_place_with_one_line_and_builds(
    first_schema_store, tmp_path
):
    out = tmp_path / "graph"
    result = runner.invoke(app, ["build", "--db", str(first_schema_store), "--out", str(out),
                                 "--every-nth", "1", "--min-live-minutes", "15"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "migrated" in line]
    assert len(lines) == 1, result.output
    assert f"from schema 1 to {SCHEMA_VERSION}" in lines[0]
    assert "snapshots.interval_s" in lines[0] and "users.fetched_at" in lines[0]
    assert "3 streamers" in result.output
    con = duckdb.connect(str(first_schema_store), read_only=True)
    assert _columns(con, "snapshots")[-2:] == ["interval_s", "error"]
    assert _columns(con, "users")[-1] == "fetched_at"
    assert con.execute("SELECT count(*) FROM snapshots WHERE status = 'complete'"
                       ).fetchall() == [(4,)]
    con.close()
    # migrated once: the next open says nothing
    again = runner.invoke(app, ["build", "--db", str(first_schema_store), "--out", str(out),
                                "--every-nth", "1", "--min-live-minutes", "15"])
    assert again.exit_code == 0 and "migrated" not in again.output


def test_a_failed_migration_leaves_the_store_as_it_was(first_schema_store, monkeypatch):
    bad = dict(store_module._MIGRATIONS)
    what, statements = bad[2]
    bad[2] = (what, (*statements, "ALTER TABLE no_such_table ADD COLUMN x INT"))
    monkeypatch.setattr(store_module, "_MIGRATIONS", bad)
    with pytest.raises(duckdb.CatalogException):
        open_store(first_schema_store)
    con = duckdb.connect(str(first_schema_store), read_only=True)
    # the 1 -> 2 step ran in the same transaction, and was rolled back with it
    assert "interval_s" not in _columns(con, "snapshots")
    assert "twitchgraph_meta" not in {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}
    con.close()


def test_newer_foreign_and_non_duckdb_files_are_one_line_and_untouched(tmp_path):
    newer = tmp_path / "newer.duckdb"
    open_store(newer).close()
    con = duckdb.connect(str(newer))
    con.execute("UPDATE twitchgraph_meta SET value = ? WHERE key = 'schema_version'",
                [str(SCHEMA_VERSION + 1)])
    con.close()
    foreign = tmp_path / "other.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE orders (id INT, total DOUBLE)")
    con.close()
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 200)
    cases = {newer: "newer twitchgraph", foreign: "not a twitchgraph store",
             text: "not a DuckDB database"}
    for path, expected in cases.items():
        before = _digest(path)
        with pytest.raises(StoreError, match=expected):
            open_store(path)
        for args in (["report", "quality", "--out", str(tmp_path / "r")],
                     ["build", "--out", str(tmp_path / "g")],
                     ["bots", "import", str(text)],
                     ["export-parquet", str(tmp_path / "pq")],
                     ["evolve", "--out", str(tmp_path / "e")]):
            result = runner.invoke(app, [*args, "--db", str(path)])
            assert result.exit_code == 1, (path, args, result.output)
            assert expected in result.output, (path, args, result.output)
            assert "collector" not in result.output and "Traceback" not in result.output
            assert len(result.output.strip().splitlines()) == 1, result.output
        assert _digest(path) == before, path


@pytest.mark.slow
def test_reading_commands_open_read_only_and_create_no_table(tmp_path):
    db = tmp_path / "s.duckdb"
    con = new_store(str(db))
    sids = add_snapshots(con, 4)
    add_live(con, sids, "alpha", viewers=300, chatters=users_named("u", 20) + ["nightbot"])
    add_live(con, sids, "beta", viewers=200, chatters=users_named("u", 20, start=10))
    con.close()
    before = _tables(db)
    assert "bots" not in before and "games" not in before
    graph = tmp_path / "graph"
    commands = (
        ["build", "--out", str(graph), "--every-nth", "1", "--min-live-minutes", "15"],
        ["report", "quality", "--out", str(tmp_path / "rq")],
        ["report", "explore", "--graph", str(graph), "--out", str(tmp_path / "re")],
        ["export-parquet", str(tmp_path / "pq")],
        ["evolve", "--window", "1d", "--out", str(tmp_path / "ev"), "--min-live-minutes", "15"],
    )
    # A read-write connection held here would make every read-only open fail: DuckDB refuses
    # a second configuration. Holding a read-only one proves they all open read-only.
    reader = duckdb.connect(str(db), read_only=True)
    try:
        for args in commands:
            result = runner.invoke(app, [*args, "--db", str(db)])
            assert result.exit_code == 0, (args, result.output)
    finally:
        reader.close()
    assert _tables(db) == before


@pytest.mark.slow
def test_a_reader_waits_out_a_commit_but_not_a_long_writer(tmp_path):
    import subprocess
    import sys
    import time

    from twitchgraph.store.db import StoreBusy
    from twitchgraph.store.locks import collector_lock_path

    db = tmp_path / "s.duckdb"
    open_store(db).close()
    # a writer holding the store for 1.5 s, then letting go
    child = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); time.sleep(1.5); con.close(); time.sleep(30)", str(db)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(StoreBusy, match=rf"process {child.pid} is writing to it"):
            open_store(db, read_only=True)  # not the collector: gives up after 1 s
        child.kill()
        child.wait()
        child = subprocess.Popen(child.args, stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "held"
        collector_lock_path(db).write_text(str(child.pid))  # the holder is the collector
        started = time.monotonic()
        open_store(db, read_only=True, wait_s=10).close()  # its commit is waited out
        assert time.monotonic() - started > 0.5
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def _damage(path, how: str) -> None:
    if how == "truncated":
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.truncate(size // 3)
    elif how == "flipped bytes":
        data = bytearray(path.read_bytes())
        for i in range(4096, len(data), 997):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        statement = {"schema_version='four'": "UPDATE twitchgraph_meta SET value = 'four'",
                     "dropped meta table": "DROP TABLE twitchgraph_meta",
                     "missing chatters table": "DROP TABLE chatters"}[how]
        con = duckdb.connect(str(path))
        con.execute(statement)
        con.close()


DAMAGE = {"truncated": "Could not read enough bytes",
          "flipped bytes": "Corrupt database file",
          "schema_version='four'": "its schema version is 'four', not a number",
          "dropped meta table": "its twitchgraph_meta table is missing",
          "missing chatters table": "table(s) missing: chatters"}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_store_is_one_line_for_every_command_that_opens_it(tmp_path, how):
    """Issue 27 item 5: each used to end in a traceback."""
    from ._collect_fixtures import empty_env_file

    path = tmp_path / "store.duckdb"
    con = new_store(str(path))
    sids = add_snapshots(con, 4)
    add_live(con, sids, "alpha", viewers=300, chatters=users_named("u", 20))
    con.close()
    open_store(path).close()  # the current schema, with its meta table
    _damage(path, how)
    expected = f"the store {path} is damaged ("
    for read_only in (True, False):
        with pytest.raises(StoreError) as caught:
            open_store(path, read_only=read_only)
        assert str(caught.value).startswith(expected) and DAMAGE[how] in str(caught.value)
        assert str(caught.value).endswith("restore it from a backup, or move it aside and "
                                          "start a new one with `twitchgraph collect`")
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (dumps / "a.json").write_text('{"date_time": 1651485600, "streams": []}')
    env = {"TWITCH_CLIENT_ID": "id", "TWITCH_CLIENT_SECRET": "secret"}
    for args in (["status"], ["report", "quality", "--out", str(tmp_path / "r")],
                 ["build", "--out", str(tmp_path / "g")],
                 ["export-parquet", str(tmp_path / "pq")],
                 ["evolve", "--out", str(tmp_path / "e")],
                 ["import", str(dumps)],
                 ["collect", "--once", "--env-file", str(empty_env_file(tmp_path))]):
        result = runner.invoke(app, [*args, "--db", str(path)], env=env)
        assert result.exit_code == 1, (args, result.output)
        assert expected in result.output and DAMAGE[how] in result.output, (args, result.output)
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, (args, result.output)
