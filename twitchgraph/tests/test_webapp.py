"""`twitchgraph serve` in-process (Starlette's TestClient): pages, JSON twins, read-only,
escaping, CSP, static files, rebuilds from a store."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _build_fixtures import add_live, add_snapshots, users_named  # noqa: E402
from _collect_fixtures import empty_env_file  # noqa: E402
from _graph_fixtures import write_planted_graph_dir  # noqa: E402

from twitchgraph.build.params import BuildParams  # noqa: E402
from twitchgraph.graph.communities import communities_for_dir  # noqa: E402
from twitchgraph.graph.layout import layout_for_dir  # noqa: E402
from twitchgraph.graphio import read_graph_dir  # noqa: E402
from twitchgraph.serve.app import create_app  # noqa: E402
from twitchgraph.serve.rebuild import Rebuilder  # noqa: E402
from twitchgraph.serve.views import CSP, served_map  # noqa: E402
from twitchgraph.store.db import open_store  # noqa: E402

LOCAL = "http://127.0.0.1:8000"  # what a browser on this machine sends as Host
EVIL = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
OPEN = BuildParams(every_nth=1, min_live_minutes=0, min_viewer_mean=0, min_chatter_mean=0,
                   min_weight=0)


def small_store(path: Path) -> Path:
    """Two snapshots: a, b, c sharing chatters, and a raid from a to b."""
    con = open_store(path)
    sids = add_snapshots(con, 2)
    add_live(con, sids, "a", viewers=300, chatters=users_named("u", 10))
    add_live(con, sids, "b", viewers=200, chatters=users_named("u", 10, start=5))
    add_live(con, sids, "c", viewers=100, chatters=users_named("u", 4))
    con.execute("INSERT INTO raids SELECT 1, started_at, 'a', 'A', 'b', 77 FROM snapshots "
                "WHERE snapshot_id = 1")
    con.close()
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    db = small_store(root / "s.duckdb")
    graph = root / "graph"
    write_planted_graph_dir(graph, communities=3, size=12, seed=1, evil_names=True)
    communities_for_dir(graph, seed=0)
    layout_for_dir(graph, iterations=50, seed=0)
    rebuilder = Rebuilder(db, root / "graphs", every_s=None, build_params=OPEN,
                          layout_iterations=20)
    rebuilder.state.graph = read_graph_dir(graph)
    with TestClient(create_app(rebuilder, start=False), base_url=LOCAL) as client:
        yield client, rebuilder


def test_map_page_links_its_code_and_carries_the_graph_as_inert_json(served):
    client, rebuilder = served
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    html = r.text
    # no inline code: every <script> either has a src or is the JSON data block
    for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.DOTALL):
        assert "src=" in attrs or ('type="application/json"' in attrs and body), attrs
    assert "<script>window.__pwned" not in html and "unsafe-inline" not in html
    data = json.loads(re.search(r'id="graph-data">(.*?)</script>', html, re.DOTALL)[1])
    assert data["nodes"][0]["label"] == EVIL
    assert data == client.get("/map.json").json()
    assert len(data["raids"]) == len(rebuilder.state.graph.raids) > 0
    assert data["flows"] and data["flows"][0][2] == 250  # the largest: first -> second


def test_streamer_page_and_its_json_twin(served):
    client, rebuilder = served
    data = rebuilder.state.graph
    login = data.logins[0]  # the hostile display name; raids the second streamer twice
    facts = client.get(f"/streamer/{login}.json").json()
    assert facts["name"] == EVIL and facts["login"] == login
    edges = data.edges[(data.edges.Source == login) | (data.edges.Target == login)]
    assert [o["weight"] for o in facts["overlaps"]] == sorted(edges["Weight"], reverse=True)[:20]
    out = {r["login"]: r["raids"] for r in facts["raids_out"]}
    assert out[data.logins[1]] >= 2
    expected_in = data.raids[data.raids.Target == login]
    assert {r["login"] for r in facts["raids_in"]} == set(expected_in["Source"])
    assert {g["game"] for g in facts["games"]} == set(data.played[data.played.Source == login]
                                                      ["Target"])
    page = client.get(f"/streamer/{login}")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    assert EVIL not in page.text and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page.text
    assert 'href="javascript:' not in page.text  # a javascript: link is shown as text only
    assert "javascript:alert(1)" in page.text
    assert f'/streamer/{data.logins[1]}"' in page.text  # raids out link to the raided


def test_streamer_says_where_its_viewers_go_and_come_from(served):
    client, rebuilder = served
    data = rebuilder.state.graph
    first, second = data.logins[0], data.logins[1]
    facts = client.get(f"/streamer/{first}.json").json()
    streamers = data.streamers.set_index("Id")
    mine = data.flows[data.flows.Source == first].sort_values("viewers", ascending=False)
    assert [(f["login"], f["viewers"], f["ends"]) for f in facts["flows_out"]] == list(
        zip(mine["Target"], mine["viewers"], mine["ends"], strict=True))
    assert facts["flows_out"][0]["share"] == round(
        100 * 250 / streamers.loc[first, "end_chatters"], 1)
    assert facts["facts"]["end_chatters"] == streamers.loc[first, "end_chatters"]
    into = client.get(f"/streamer/{second}.json").json()["flows_in"]
    arrivals = data.flows[data.flows.Target == second]
    assert {f["login"] for f in into} == set(arrivals["Source"])
    assert into[0]["login"] == first
    assert into[0]["share"] == round(100 * 250 / arrivals["viewers"].sum(), 1)
    assert sum(f["share"] for f in into) == pytest.approx(100, abs=0.1 * len(into))
    page = client.get(f"/streamer/{first}").text
    # the hostile name is escaped in the headings too
    assert "When &lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert "its viewers go to" in page and "'s viewers come from" in page
    assert f'/streamer/{second}"' in page.split('id="flows-out"')[1].split("</table>")[0]
    assert f"{facts['flows_out'][0]['share']:.1f} %" in page


def test_unknown_streamer_is_a_404_that_echoes_escaped(served):
    client, _ = served
    r = client.get("/streamer/%3Cb%3Enobody")
    assert r.status_code == 404 and "<b>nobody" not in r.text and "&lt;b&gt;nobody" in r.text
    assert client.get("/streamer/nobody.json").status_code == 404


def test_status_page_has_the_facts_of_twitchgraph_status(served):
    client, _ = served
    status = client.get("/status.json").json()
    assert status["store"]["complete"] == 2
    assert status["server"]["streamers"] == 36 and status["server"]["rebuilds"] == 0
    page = client.get("/status")
    assert "store: 2 complete, 0 failed" in page.text
    assert page.headers["content-security-policy"] == CSP


def test_static_files_come_only_from_the_package_list(served):
    client, _ = served
    js = client.get("/static/map.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/vendor/sigma-graphology.min.js").status_code == 200
    for path in ("/static/../errors.py", "/static/%2e%2e/errors.py", "/static/..%2Ferrors.py",
                 "/static/vendor/../../errors.py", "/static/__init__.py", "/static/map.html",
                 "/static//etc/passwd", "/static/serve_base.html", "/etc/passwd"):
        assert client.get(path).status_code == 404, path


def test_no_endpoint_writes(served):
    client, _ = served
    for path in ("/", "/map.json", "/status", "/streamer/a", "/static/map.js"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            r = client.request(method, path)
            assert r.status_code == 405, (method, path)
            assert r.headers["content-security-policy"] == CSP


def test_served_map_replaces_every_inline_part():
    html = served_map('{"nodes":[]}')
    assert "/*__" not in html and 'http-equiv="Content-Security-Policy"' not in html
    assert '<script src="/static/map.js">' in html and '<script src="/static/serve.js">' in html


def test_rebuild_from_the_store_and_a_failure_keeps_the_last_graph(tmp_path):
    db = small_store(tmp_path / "s.duckdb")
    rebuilder = Rebuilder(db, tmp_path / "graphs", every_s=None, build_params=OPEN,
                          layout_iterations=20)
    with TestClient(create_app(rebuilder, start=False), base_url=LOCAL) as client:
        assert client.get("/").status_code == 503  # no graph yet
        assert client.get("/map.json").status_code == 503
        assert rebuilder.rebuild_now()
        data = client.get("/map.json").json()
        assert sorted(n["key"] for n in data["nodes"]) == ["a", "b", "c"]
        logins = [n["key"] for n in data["nodes"]]
        assert [[logins[s], logins[t], n, v] for s, t, n, v in data["raids"]] == [
            ["a", "b", 1, 77]]
        rebuilder.options["build_params"] = replace(OPEN, min_viewer_mean=10_000)
        assert not rebuilder.rebuild_now()
        status = client.get("/status.json").json()["server"]
        assert "min_viewer_mean" in status["last_error"] and status["failures"] == 1
        assert client.get("/map.json").status_code == 200  # still the last good graph
        assert len(list((tmp_path / "graphs").glob("graph-*"))) == 1  # the failed one went


def test_serve_refuses_a_missing_store_and_a_bad_interval(tmp_path):
    from twitchgraph.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["serve", "--db", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 1 and "no store at" in result.stderr
    db = small_store(tmp_path / "s.duckdb")
    result = runner.invoke(app, ["serve", "--db", str(db), "--rebuild-every", "soon"])
    assert result.exit_code == 1 and "--rebuild-every" in result.stderr


@pytest.mark.slow
def test_rebuilds_run_while_a_collector_writes_the_same_store(tmp_path):
    import os
    import subprocess
    import time

    import duckdb

    from twitchgraph.sim import run_simulator

    db = tmp_path / "tg.duckdb"
    with run_simulator(channels=30, users=600, seed=5, time_scale=1.0,
                       chat_joins_per_10s=1000) as sim:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from twitchgraph.cli import main; main()", "collect",
             "--window", "1s", "--top", "8", "--joins-per-10s", "1000", "--no-users",
             "--every", "2s", "--for", "12s", "--db", str(db),
             "--env-file", str(empty_env_file(tmp_path))],
            env={**os.environ, **sim.env()}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        try:
            rebuilder = Rebuilder(db, tmp_path / "graphs", every_s=None, build_params=OPEN,
                                  layout_iterations=20)
            deadline = time.monotonic() + 30
            while not (db.exists() and rebuilder.rebuild_now()):
                assert time.monotonic() < deadline, rebuilder.state.last_error
                time.sleep(0.2)
            with TestClient(create_app(rebuilder, start=False), base_url=LOCAL) as client:
                seen = set()
                while proc.poll() is None:  # rebuild over and over while it collects
                    assert rebuilder.rebuild_now(), rebuilder.state.last_error
                    status = client.get("/status.json").json()
                    seen.add(status["store"]["complete"])
                    assert client.get("/map.json").status_code == 200
            _, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, stderr
    assert rebuilder.state.rebuilds >= 3 and len(seen) >= 2  # the graph followed the store
    con = duckdb.connect(str(db), read_only=True)
    statuses = [r[0] for r in con.execute("SELECT status FROM snapshots").fetchall()]
    con.close()
    # every snapshot taken while rebuilding is whole and stored (a loaded machine may skip a slot)
    assert len(statuses) >= 3 and set(statuses) == {"complete"}


def test_windows_give_the_slider_its_lineages_and_streamers_their_trends(tmp_path):
    from datetime import timedelta

    from _build_fixtures import T0

    db = small_store(tmp_path / "s.duckdb")
    con = open_store(db)
    day2 = add_snapshots(con, 2, start=T0 + timedelta(days=1), first_id=3)
    add_live(con, day2, "a", viewers=300, chatters=users_named("u", 10))
    add_live(con, day2, "b", viewers=200, chatters=users_named("u", 10, start=8))  # less alike
    con.close()
    rebuilder = Rebuilder(db, tmp_path / "graphs", every_s=None, build_params=OPEN,
                          layout_iterations=20, window=timedelta(days=1))
    assert rebuilder.rebuild_now()
    with TestClient(create_app(rebuilder, start=False), base_url=LOCAL) as client:
        data = client.get("/map.json").json()
        timeline = data["timeline"]
        assert timeline["windows"] == ["2022-05-02", "2022-05-03"]
        logins = [n["key"] for n in data["nodes"]]
        day1, day2_ = ({k: lin for k, lin in zip(logins, row, strict=True)}
                       for row in timeline["lineage"])
        assert day2_["c"] == -1 and day1["c"] >= 0  # c was not live on day 2
        assert set(timeline["colors"]) == {str(v) for v in [*day1.values(), *day2_.values()]
                                           if v >= 0}
        facts = client.get("/streamer/a.json").json()
        assert [h["window"] for h in facts["history"]] == timeline["windows"]
        # a-b overlap: 5 of 10 shared on day 1 (50 %), 2 of 10 on day 2 (20 %)
        assert facts["trends"]["b"] == [50.0, 20.0]
        assert facts["trends"]["c"] == [100.0, None]
        page = client.get("/streamer/a").text
        assert "Community history" in page and "2022-05-03" in page


def test_downloads_export_the_view_as_png_and_gexf(served):
    import xml.etree.ElementTree as ET

    client, rebuilder = served
    data = rebuilder.state.graph
    png = client.get("/download/map.png?hide=1")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert png.headers["content-disposition"].startswith("attachment")
    gexf = client.get("/download/map.gexf?hide=1")
    assert gexf.status_code == 200
    ns = {"g": "http://gexf.net/1.3"}
    nodes = {n.get("id") for n in ET.fromstring(gexf.content).findall(".//g:node", ns)}
    shown = set(data.streamers.loc[data.streamers["community"] != 1, "Id"])
    assert nodes == shown
    assert client.get("/download/map.gexf").status_code == 200
    assert client.get("/download/map.exe").status_code == 404
    assert client.get("/download/map.png?hide=x").status_code == 400


def test_a_foreign_host_header_is_refused(served):
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 sends
    Host: evil.example; only this server's own names are answered."""
    client, _ = served
    for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"):
        assert client.get("/status.json", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example",
                 "[::2]:8000", "", "localhost@evil.example"):
        r = client.get("/map.json", headers={"Host": host})
        assert r.status_code == 400, host
        assert r.text.startswith("bad Host header") and "evil" not in r.text
        assert r.headers["content-security-policy"] == CSP
    # A redirect after a refused Host is never sent, and the redirect itself is relative.
    assert client.get("/status/", headers={"Host": "evil.example"}).status_code == 400
    r = client.get("/status/?x=1", headers={"Host": "evil.example:8000"},
                   follow_redirects=False)
    assert r.status_code == 400
    r = client.get("/status/?x=1", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/status?x=1"
    for path in ("//evil.example/status/", "/nothing/", "/streamer/"):
        r = client.get(f"{LOCAL}{path}", follow_redirects=False)
        assert r.status_code == 404 and "location" not in r.headers, path


def test_allowed_hosts_add_names_and_wildcards(tmp_path):
    from twitchgraph.serve.app import TrustedHosts

    guard = TrustedHosts(lambda *a: None, allowed=["127.0.0.1", "Graph.Lan", "*.example.org",
                                                     "[fe80::1]", "0.0.0.0"])
    assert guard.allows("graph.lan:8000") and guard.allows("a.b.example.org")
    assert guard.allows("[fe80::1]:80") and guard.allows("0.0.0.0:8000")
    assert not guard.allows("example.org") and not guard.allows("graph.lan.evil")
    assert not guard.allows("localhost")  # only what it was given (create_app adds LOCAL_HOSTS)
    assert TrustedHosts(lambda *a: None, allowed=["*"]).allows("anything")
    rebuilder = Rebuilder(tmp_path / "none.duckdb", tmp_path / "graphs", every_s=None)
    app = create_app(rebuilder, start=False, allowed_hosts=["graph.lan"])
    with TestClient(app, base_url="http://graph.lan:8000") as client:
        assert client.get("/static/map.css").status_code == 200
    with TestClient(app, base_url="http://testserver") as client:
        assert client.get("/static/map.css").status_code == 400


def test_an_empty_login_is_a_404(served):
    client, _ = served
    r = client.get("/streamer/.json")
    assert r.status_code == 404 and r.json() == {"error": "no login given: /streamer/LOGIN"}
    assert client.get("/streamer/%20").status_code == 404


def test_serve_refuses_a_folder_as_db_and_a_port_in_use(tmp_path):
    import socket

    from twitchgraph.cli import app

    runner = CliRunner()
    (tmp_path / "folder.duckdb").mkdir()
    result = runner.invoke(app, ["serve", "--db", str(tmp_path / "folder.duckdb")])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: --db {tmp_path / 'folder.duckdb'} is a folder: pass the store's file "
        "(e.g. twitchgraph.duckdb)"]
    db = small_store(tmp_path / "s.duckdb")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["serve", "--db", str(db), "--port", str(port),
                                     "--graph-dir", str(tmp_path / "served")])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""  # no "serving" line before the bind failed
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot listen on 127.0.0.1:{port}: "
                                                   "Address already in use"), result.stderr


def test_the_slider_bridges_an_empty_window_and_says_why_it_is_empty(tmp_path):
    """Issue 27: a day without a snapshot broke every lineage on the slider, its legend kept
    the first window's colours, and the empty day showed an empty map with no word."""
    from datetime import timedelta

    from _build_fixtures import T0

    db = small_store(tmp_path / "s.duckdb")
    con = open_store(db)
    day3 = add_snapshots(con, 2, start=T0 + timedelta(days=2), first_id=3)
    add_live(con, day3, "a", viewers=300, chatters=users_named("u", 10))
    add_live(con, day3, "b", viewers=200, chatters=users_named("u", 10, start=5))
    add_live(con, day3, "c", viewers=100, chatters=users_named("u", 4))
    con.close()
    rebuilder = Rebuilder(db, tmp_path / "graphs", every_s=None, build_params=OPEN,
                          layout_iterations=20, window=timedelta(days=1))
    assert rebuilder.rebuild_now()
    with TestClient(create_app(rebuilder, start=False), base_url=LOCAL) as client:
        timeline = client.get("/map.json").json()["timeline"]
        assert timeline["windows"] == ["2022-05-02", "2022-05-03", "2022-05-04"]
        assert timeline["notes"] == ["", "no graph: no complete snapshot in this window", ""]
        first, gap, third = timeline["lineage"]
        assert first == third and set(gap) == {-1}  # the same lineages after the gap
        # Each window's legend: its own lineages, largest first, in the slider's colours.
        assert timeline["legends"][1] == []
        assert [e[0] for e in timeline["legends"][0]] == [e[0] for e in timeline["legends"][2]]
        assert sum(e[1] for e in timeline["legends"][0]) == sum(v >= 0 for v in first)
        assert all(str(e[0]) in timeline["colors"] for e in timeline["legends"][0])
        history = client.get("/streamer/a.json").json()["history"]
        assert [h["note"] for h in history] == ["", "no graph in this window", ""]
        assert history[0]["community"] == history[2]["community"] is not None
        assert "no graph in this window" in client.get("/streamer/a").text


def test_a_far_dated_snapshot_keeps_the_rebuild_and_names_the_date(tmp_path):
    """Issue 27: a snapshot dated 9999-12-31 made every rebuild fail with OverflowError."""
    from datetime import UTC, datetime, timedelta

    db = small_store(tmp_path / "s.duckdb")
    con = open_store(db)
    far = datetime(9999, 12, 31, 12, tzinfo=UTC)
    con.execute("INSERT INTO snapshots VALUES (9, ?, ?, 'failed', 600, 'x')", [far, far])
    con.execute("INSERT INTO snapshots VALUES (10, ?, ?, 'complete', 600, NULL)", [far, far])
    con.close()
    rebuilder = Rebuilder(db, tmp_path / "graphs", every_s=None, build_params=OPEN,
                          layout_iterations=20, window=timedelta(minutes=30))
    assert rebuilder.rebuild_now(), rebuilder.state.last_error
    assert rebuilder.state.timeline is None
    assert "dated outside 2011-01-01 .. now plus a day" in rebuilder.state.timeline_error
    assert "9999-12-31" in rebuilder.state.timeline_error


def test_the_status_page_shows_no_error_in_red(served):
    client, rebuilder = served
    page = client.get("/status").text
    assert re.search(r"<th>last error</th><td>none</td>", page)
    assert 'class="red">none' not in page
    rebuilder.state.last_error = "the store is busy"
    rebuilder.state.timeline_error = "no window has a graph"
    try:
        page = client.get("/status").text
    finally:
        rebuilder.state.last_error = rebuilder.state.timeline_error = ""
    assert '<td class="red">the store is busy</td>' in page
    assert '<td class="yellow">no window has a graph</td>' in page


def test_streamer_pages_round_numbers_for_people(served):
    client, rebuilder = served
    data = rebuilder.state.graph
    login = data.logins[3]
    before = data.streamers.loc[3, "viewer_mean"]
    data.streamers.loc[3, "viewer_mean"] = 42.54545454545455  # issue 27's raw float
    try:
        exact = client.get(f"/streamer/{login}.json").json()
        page = client.get(f"/streamer/{login}").text
    finally:
        data.streamers.loc[3, "viewer_mean"] = before
    assert "42.54545454545455" not in page and "<td>42.5</td>" in page
    facts = re.search(r'<table id="facts">(.*?)</table>', page, re.DOTALL)[1]
    cells = re.findall(r"<td>(.*?)</td>", facts)
    numbers = [c for c in cells if re.fullmatch(r"[0-9.,]+", c)]
    assert numbers and all(re.fullmatch(r"[0-9]{1,3}(,[0-9]{3})*(\.[0-9]{1,2})?", c)
                           for c in numbers), numbers
    viewer_mean = exact["facts"]["viewer_mean"]
    assert f"{viewer_mean:,.1f}" in cells or f"{viewer_mean:,.2f}" in cells
    assert not re.search(r"\d\.\d{3,}", page)  # no raw float anywhere on the page
    assert viewer_mean == 42.54545454545455  # the JSON twin keeps the exact value


def test_the_wait_page_gives_the_exact_options_for_a_short_trial(tmp_path):
    """Issue 27: with the simulator, the defaults give no map for hours and only the 503 page
    said so; it now gives the options to restart with."""
    import shlex

    import typer

    from twitchgraph.cli import app

    db = small_store(tmp_path / "s db.duckdb")
    rebuilder = Rebuilder(db, tmp_path / "graphs", every_s=None, layout_iterations=20)
    assert not rebuilder.rebuild_now()  # the defaults: 2 snapshots are far from 60 minutes
    with TestClient(create_app(rebuilder, start=False), base_url=LOCAL) as client:
        page = client.get("/")
        assert page.status_code == 503
        command = client.get("/map.json").json()["short_trial"]
    assert command == (f"twitchgraph serve --db '{db}' --every-nth 1 --min-live-minutes 1 "
                       "--min-viewer-mean 1 --min-chatter-mean 1 --window 2m "
                       "--rebuild-every 30s")
    assert f"<code>{command.replace(chr(39), '&#39;')}</code>" in page.text
    # Every option is one of serve's, and the trial's thresholds build this store's graph.
    args = shlex.split(command)[2:]
    typer.main.get_command(app).commands["serve"].make_context("serve", list(args))
    trial = Rebuilder(db, tmp_path / "trial", every_s=None, layout_iterations=20,
                      build_params=replace(BuildParams(), every_nth=1, min_live_minutes=1,
                                           min_viewer_mean=1, min_chatter_mean=1))
    assert trial.rebuild_now(), trial.state.last_error


def test_the_docs_five_minute_block_uses_the_wait_pages_options():
    """The collecting guide's five-minute block and serve's waiting page give one set of
    options (measured once, kept in `views.TRIAL_OPTIONS`)."""
    from twitchgraph.serve.views import TRIAL_OPTIONS

    guide = Path(__file__).resolve().parents[2] / "docs/twitchgraph/guide/collecting.md"
    block = guide.read_text(encoding="utf-8").split("## A first map in five minutes", 1)[1]
    block = block.split("```", 2)[1].replace("\\\n", " ")
    serve = next(line for line in block.splitlines() if line.startswith("twitchgraph serve"))
    assert " ".join(serve.split("#")[0].split()) == f"twitchgraph serve --db trial.duckdb " \
                                                    f"{TRIAL_OPTIONS}"
