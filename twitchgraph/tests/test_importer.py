"""Importing JSON snapshot dumps: both shapes, idempotence, bad files skipped and reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from twitchgraph.collect.importer import import_json_dir, parse_snapshot_file
from twitchgraph.store.db import open_store

from ._collect_fixtures import make_stream


def _helix_file(path, minute: int, n: int = 3) -> None:
    streams = [make_stream(i, 100 - i) for i in range(n)]
    doc = {"date_time": f"2022-05-02T10:{minute:02d}:00Z", "streams": streams,
           "chatters": {s["user_login"]: ["Alice", "bob", f"only{i}"]
                        for i, s in enumerate(streams)},
           "users": [{"id": "u0", "login": "chan00000", "display_name": "Chan00000"}]}
    path.write_text(json.dumps(doc))


def _original_file(path, minute: int) -> None:
    at = f"2022-05-02 10:{minute:02d}:00"
    doc = {
        "Pippo": {"chatters": ["Alice", "carl"], "game_name": "Chess", "viewer_count": 50,
                  "date_time": at},
        "pluto": {"chatters": {"chatter_count": 3, "chatters": {
            "broadcaster": ["pluto"], "moderators": ["mod1"], "viewers": ["alice"]}},
            "game_name": "Just Chatting", "viewer_count": 7, "date_time": at},
    }
    path.write_text(json.dumps(doc))


def test_both_shapes_are_imported(tmp_path) -> None:
    _helix_file(tmp_path / "a.json", 0)
    _original_file(tmp_path / "b.json", 5)
    con = open_store(":memory:")
    report = import_json_dir(con, tmp_path)
    assert report.imported == ["a.json", "b.json"] and not report.bad
    snaps = con.execute("SELECT snapshot_id, started_at, status, interval_s FROM snapshots "
                        "ORDER BY 1").fetchall()
    assert [s[1] for s in snaps] == [datetime(2022, 5, 2, 10, 0, tzinfo=UTC),
                                     datetime(2022, 5, 2, 10, 5, tzinfo=UTC)]
    assert {s[2] for s in snaps} == {"complete"} and {s[3] for s in snaps} == {300.0}
    second = snaps[1][0]
    assert con.execute(f"SELECT user_login, game_name, viewer_count FROM streams WHERE "
                       f"snapshot_id = {second} ORDER BY 1").fetchall() == [
        ("pippo", "Chess", 50), ("pluto", "Just Chatting", 7)]
    assert con.execute(f"SELECT channel_login, user_login, source FROM chatters WHERE "
                       f"snapshot_id = {second} ORDER BY 1, 2").fetchall() == [
        ("pippo", "alice", "names"), ("pippo", "carl", "names"),
        ("pluto", "alice", "names"), ("pluto", "mod1", "names"), ("pluto", "pluto", "names")]
    assert con.execute("SELECT count(*) FROM chatters WHERE snapshot_id = 1").fetchone() == (9,)
    assert con.execute("SELECT login FROM users").fetchall() == [("chan00000",)]
    assert con.execute("SELECT count(*) FROM listens").fetchone() == (0,)


def test_reimport_is_idempotent_even_under_another_name(tmp_path) -> None:
    _helix_file(tmp_path / "a.json", 0)
    _helix_file(tmp_path / "b.json", 10)
    con = open_store(":memory:")
    assert len(import_json_dir(con, tmp_path).imported) == 2
    (tmp_path / "copy.json").write_bytes((tmp_path / "a.json").read_bytes())
    _helix_file(tmp_path / "c.json", 20)
    again = import_json_dir(con, tmp_path)
    assert again.imported == ["c.json"]
    assert sorted(again.duplicates) == ["a.json", "b.json", "copy.json"]
    assert con.execute("SELECT count(*) FROM snapshots").fetchone() == (3,)
    assert con.execute("SELECT count(*) FROM streams").fetchone() == (9,)


def test_bad_files_are_reported_and_skipped(tmp_path) -> None:
    _helix_file(tmp_path / "good.json", 0)
    (tmp_path / "broken.json").write_text('{"date_time": "2022-05-02T10:00:00Z", "streams": [')
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "nodate.json").write_text(json.dumps({"x": {"chatters": [], "viewer_count": 1}}))
    (tmp_path / "badchat.json").write_text(json.dumps(
        {"date_time": "2022-05-02T10:00:00Z", "streams": [], "chatters": {"a": "bob"}}))
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    con = open_store(":memory:")
    report = import_json_dir(con, tmp_path)
    assert report.imported == ["good.json"]
    reasons = dict(report.bad)
    assert set(reasons) == {"broken.json", "list.json", "nodate.json", "badchat.json",
                            "bin.json"}
    assert "not valid JSON" in reasons["broken.json"]
    assert "date_time" in reasons["nodate.json"]
    assert "list of logins" in reasons["badchat.json"]
    assert con.execute("SELECT count(*) FROM snapshots").fetchone() == (1,)
    assert "1 snapshot file(s)" in report.line() and "5 bad" in report.line()


def test_out_of_range_numbers_are_bad_files_not_a_crash(tmp_path) -> None:
    _helix_file(tmp_path / "good.json", 0)
    (tmp_path / "far.json").write_text('{"date_time": 1e20, "streams": []}')
    (tmp_path / "inf.json").write_text(
        '{"x": {"chatters": [], "viewer_count": Infinity, "date_time": 1651485600}}')
    (tmp_path / "nan.json").write_text(
        '{"date_time": 1651485600, "streams": [{"user_login": "a", "viewer_count": NaN}]}')
    con = open_store(":memory:")
    report = import_json_dir(con, tmp_path)
    assert report.imported == ["good.json"]
    reasons = dict(report.bad)
    assert "date_time is not a time" in reasons["far.json"]
    assert "viewer_count is not a number" in reasons["inf.json"]
    assert "streams[0].viewer_count is not a number" in reasons["nan.json"]


def test_wrongly_typed_values_are_bad_files_not_a_crash(tmp_path) -> None:
    _helix_file(tmp_path / "good.json", 0)
    (tmp_path / "tags.json").write_text(json.dumps(
        {"date_time": 1651485600, "streams": [{"user_login": "a", "tags": [1, 2]}]}))
    (tmp_path / "mongo.json").write_text(json.dumps(
        {"date_time": {"$date": {"$numberLong": None}}, "streams": []}))
    con = open_store(":memory:")
    report = import_json_dir(con, tmp_path)
    assert report.imported == ["good.json"]
    reasons = dict(report.bad)
    assert "streams[0].tags must be a list of strings" in reasons["tags.json"]
    assert "$numberLong holds no number" in reasons["mongo.json"]


def test_epoch_and_naive_times(tmp_path) -> None:
    path = tmp_path / "e.json"
    path.write_text(json.dumps({"date_time": 1651485600, "streams": [], "chatters": {}}))
    (snapshot,) = parse_snapshot_file(path)
    assert snapshot.started_at == datetime(2022, 5, 2, 10, 0, tzinfo=UTC)


def test_missing_directory_is_an_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="not a directory"):
        import_json_dir(open_store(":memory:"), tmp_path / "nope")


def test_mongoexport_json_lines_and_arrays(tmp_path) -> None:
    def doc(minute: int, oid: str) -> dict:
        return {"_id": {"$oid": oid},
                "pippo": {"chatters": ["a", "b"], "game_name": "Chess",
                          "viewer_count": {"$numberInt": "12"},
                          "date_time": {"$date": f"2022-05-02T10:{minute:02d}:00Z"}}}

    lines = "\n".join(json.dumps(doc(m, f"o{m}")) for m in (0, 5, 10))
    (tmp_path / "export.json").write_text(lines + "\n")
    (tmp_path / "array.json").write_text(json.dumps([
        {"date_time": {"$date": 1651486500000}, "streams": [make_stream(1, 5)],
         "chatters": {"chan00001": ["z"]}}]))  # 10:15 in canonical milliseconds
    con = open_store(":memory:")
    report = import_json_dir(con, tmp_path)
    assert sorted(report.imported) == ["array.json", "export.json"] and not report.bad
    rows = con.execute("SELECT started_at, interval_s FROM snapshots ORDER BY 1").fetchall()
    assert [r[0].minute for r in rows] == [0, 5, 10, 15] and {r[1] for r in rows} == {300.0}
    assert con.execute("SELECT DISTINCT user_login, viewer_count FROM streams WHERE "
                       "user_login = 'pippo'").fetchall() == [("pippo", 12)]
    # _id is not a channel; a re-import adds nothing
    assert con.execute("SELECT count(*) FROM streams WHERE user_login = '_id'").fetchone() == (
        0,)
    again = import_json_dir(con, tmp_path)
    assert sorted(again.duplicates) == ["array.json", "export.json"] and not again.imported
    assert con.execute("SELECT count(*) FROM snapshots").fetchone() == (4,)


def test_a_bad_line_in_json_lines_names_the_line(tmp_path) -> None:
    (tmp_path / "x.json").write_text('{"date_time": 0, "streams": []}\n{oops}\n')
    report = import_json_dir(open_store(":memory:"), tmp_path)
    assert report.bad == [("x.json", "JSON Lines: line 2 is not valid JSON (Expecting property "
                                     "name enclosed in double quotes)")]


def test_dates_outside_the_sane_range_are_refused_with_the_file_named(tmp_path) -> None:
    """Issue 27 item 4: a dump dated 9999-12-31 made `evolve` overflow after all its work."""
    _helix_file(tmp_path / "good.json", 0)
    (tmp_path / "far.json").write_text('{"date_time": "9999-12-31T00:00:00Z", "streams": []}')
    (tmp_path / "early.json").write_text('{"date_time": "2010-12-31T23:00:00Z", "streams": []}')
    (tmp_path / "epoch.json").write_text('{"date_time": 0, "streams": []}')
    con = open_store(":memory:")
    report = import_json_dir(con, tmp_path)
    assert report.imported == ["good.json"]
    reasons = dict(report.bad)
    assert reasons["far.json"] == ("date_time 9999-12-31 00:00:00 is outside the sane range "
                                   "(2011-01-01 to a day from now)")
    assert "1970-01-01 00:00:00 is outside the sane range" in reasons["epoch.json"]
    assert "2010-12-31 23:00:00 is outside" in reasons["early.json"]


def test_a_deeply_nested_file_is_skipped_and_named_and_the_rest_imported(tmp_path) -> None:
    """Issue 27 item 5: one 100,000-deep file used to abort the whole import."""
    _helix_file(tmp_path / "a_good.json", 0)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "deep_lines.json").write_text('{"a": 1}\n' + "[" * 100_000 + "]" * 100_000)
    (tmp_path / "huge_count.json").write_text(
        '{"date_time": 1651485600, "streams": [{"user_login": "a", "viewer_count": 1e30}]}')
    con = open_store(":memory:")
    report = import_json_dir(con, tmp_path)
    assert report.imported == ["a_good.json"]
    reasons = dict(report.bad)
    assert reasons["deep.json"] == ("JSON nested too deeply to read (no snapshot is nested "
                                    "like this)")
    assert reasons["deep_lines.json"].startswith("JSON Lines: line 2: JSON nested too deeply")
    assert reasons["huge_count.json"] == ("streams[0].viewer_count 1e+30 is not a count from 0 to "
                                          "2147483647")
