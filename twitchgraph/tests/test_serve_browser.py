"""`twitchgraph serve` in headless Chromium: the map under the strict CSP, search, filter,
state in the URL, the raid layer, the streamer page, and hostile names kept inert."""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _graph_fixtures import write_planted_graph_dir  # noqa: E402
from test_webapp import OPEN, small_store  # noqa: E402

from twitchgraph.graph.communities import communities_for_dir  # noqa: E402
from twitchgraph.graph.layout import layout_for_dir  # noqa: E402
from twitchgraph.graphio import read_graph_dir  # noqa: E402
from twitchgraph.serve.app import create_app  # noqa: E402
from twitchgraph.serve.rebuild import Rebuilder  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
EVIL = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
pytestmark = pytest.mark.slow
SERVED: dict = {}  # the server fixture's rebuilder, for tests that swap its timeline
SHOTS = Path(tempfile.gettempdir()) / "twitchgraph-screenshots"  # for a person to look at


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _two_windows(data):
    """Day 1: the planted communities; day 2: communities 0 and 1 merged, 3 gone."""
    from twitchgraph.graph.evolve import track_communities

    community = dict(zip(data.streamers["Id"], data.streamers["community"], strict=True))
    day1 = {k: int(c) for k, c in community.items()}
    day2 = {k: (0 if c in (0, 1) else int(c)) for k, c in community.items() if c != 3}
    evolution = track_communities(["2026-05-01", "2026-05-02"], [day1, day2], min_jaccard=0.3)
    evolution.edges = [data.edges, data.edges]
    return evolution


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    root = tmp_path_factory.mktemp("serve-browser")
    db = small_store(root / "s.duckdb")
    graph = root / "graph"
    write_planted_graph_dir(graph, communities=4, size=15, seed=3, evil_names=True)
    communities_for_dir(graph, seed=0)
    layout_for_dir(graph, iterations=100, seed=0)
    rebuilder = Rebuilder(db, root / "graphs", every_s=None, build_params=OPEN)
    rebuilder.state.graph = read_graph_dir(graph)
    rebuilder.state.timeline = _two_windows(rebuilder.state.graph)
    SERVED["rebuilder"] = rebuilder
    port = _free_port()
    config = uvicorn.Config(create_app(rebuilder, start=False), host="127.0.0.1", port=port,
                            log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", rebuilder.state.graph
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; `make system-deps`)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.errors = []
    page.csp = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.csp.append(m.text)
            if "Content Security Policy" in m.text else None)
    yield page
    page.close()


def _open_map(page, url: str) -> None:
    page.goto(url)
    # Polled from here: page.wait_for_function evaluates strings in the page, which the CSP
    # (rightly) forbids.
    deadline = time.monotonic() + 15
    while not page.evaluate("!!(window.__map && window.__map.ready && window.__map.urlReady)"):
        assert time.monotonic() < deadline, "the map did not load"
        page.wait_for_timeout(50)


def test_map_runs_under_the_csp_searches_and_keeps_state_in_the_url(server, page):
    url, data = server
    _open_map(page, url + "/")
    assert page.errors == [] and page.csp == []
    assert page.evaluate("window.__map.graph.order") == len(data.streamers)
    login = "streamer_2_004"
    page.fill("#search", login)
    page.press("#search", "Enter")
    page.wait_for_timeout(700)
    assert page.evaluate("window.__map.selected") == login
    page.click("#legend li:nth-child(2) input[type=checkbox]")  # hide community 1
    page.click("#raids-layer")
    page.wait_for_timeout(700)
    shared = page.url
    assert f"q={login}" in shared and "hide=1" in shared and "raids=1" in shared
    assert page.get_attribute("#streamer-link", "href") == f"/streamer/{login}"
    # the download buttons export what is shown
    assert page.get_attribute("#download-png", "href") == "/download/map.png?hide=1"
    assert page.get_attribute("#download-gexf", "href") == "/download/map.gexf?hide=1"
    with page.expect_download() as download:
        page.click("#download-png")
    assert download.value.suggested_filename == "twitchgraph-map.png"
    # The shared URL opens the same view.
    other = page.context.browser.new_page(viewport={"width": 1000, "height": 800})
    _open_map(other, shared)
    wanted = float(parse_qs(urlsplit(shared).fragment)["cam"][0].split(",")[2])
    # The camera glides to the shared view: wait for it to arrive (a fixed pause was too
    # short on a loaded machine), then check it is exactly there.
    other.wait_for_function(
        f"Math.abs(window.__map.renderer.getCamera().getState().ratio - {wanted}) < 1e-3",
        timeout=15_000)
    assert other.evaluate("window.__map.selected") == login
    assert other.evaluate("window.__map.raids") is True
    assert other.is_checked("#legend li:nth-child(2) input[type=checkbox]") is False
    hidden = other.evaluate("(() => { const m = window.__map; const n = m.graph.filterNodes("
                            "(k, a) => a.group === 1)[0]; "
                            "return m.renderer.getNodeDisplayData(n).hidden; })()")
    assert hidden is True
    camera = other.evaluate("window.__map.renderer.getCamera().getState().ratio")
    assert camera == pytest.approx(wanted, abs=1e-3)
    other.close()


def test_raids_are_shown_on_the_map_and_the_streamer_page(server, page):
    url, data = server
    _open_map(page, url + "/#raids=1")
    page.wait_for_timeout(300)
    drawn = page.evaluate("window.__map.graph.filterEdges((e, a) => a.raid).length")
    assert drawn == len(data.raids) > 0
    first, second = data.logins[0], data.logins[1]
    page.goto(f"{url}/streamer/{first}")
    rows = page.evaluate("Array.from(document.querySelectorAll('#raids-out tr')).slice(1)"
                         ".map(tr => Array.from(tr.cells).map(c => c.textContent))")
    label = data.streamers.set_index("Id").loc[second, "Label"]
    assert any(r[0] == label and int(r[1]) >= 2 for r in rows)
    page.click("#raids-out a >> nth=0")
    page.wait_for_load_state()
    assert "/streamer/" in page.url and page.text_content("#name")
    assert page.errors == [] and page.csp == []


def test_flows_are_shown_on_the_map_and_the_streamer_page(server, page):
    url, data = server
    _open_map(page, url + "/#flows=1")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__map.flows") is True and page.is_checked("#flows-layer")
    drawn = page.evaluate("window.__map.graph.filterEdges((e, a) => a.flow).length")
    assert drawn == len(page.evaluate("fetch('/map.json').then(r => r.json())")["flows"]) > 0
    first, second = data.logins[0], data.logins[1]
    page.goto(f"{url}/streamer/{first}")
    assert page.text_content("#flows-out-title") == f"When {EVIL} ends, its viewers go to"
    rows = page.evaluate("Array.from(document.querySelectorAll('#flows-out tr')).slice(1)"
                         ".map(tr => Array.from(tr.cells).map(c => c.textContent))")
    label = data.streamers.set_index("Id").loc[second, "Label"]
    assert rows[0][:2] == [label, "250"] and rows[0][2].endswith(" %") and rows[0][3] == "6"
    page.click("#flows-out a >> nth=0")
    page.wait_for_load_state()
    assert page.url.endswith(f"/streamer/{second}")
    into = page.evaluate("Array.from(document.querySelectorAll('#flows-in tr')).slice(1)"
                         ".map(tr => tr.cells[0].textContent)")
    assert into[0] == EVIL
    assert page.evaluate("window.__pwned") is None
    assert page.errors == [] and page.csp == []


def test_hostile_names_stay_inert_on_every_page(server, page):
    url, data = server
    evil = data.logins[0]
    _open_map(page, f"{url}/#q={evil}")
    page.wait_for_timeout(500)
    assert page.text_content("#panel-name") == EVIL
    for path in (f"/streamer/{evil}", f"/streamer/{data.logins[1]}", "/status",
                 "/streamer/%3Cscript%3Ewindow.__pwned=3%3C%2Fscript%3E"):
        page.goto(url + path)
        page.wait_for_timeout(100)
        assert page.evaluate("window.__pwned") is None, path
        assert page.evaluate("document.querySelectorAll('main img, main script').length") == 0
    page.goto(f"{url}/streamer/{evil}")
    assert page.text_content("#name") == EVIL
    assert page.errors == [] and page.csp == []


def test_time_slider_shows_each_windows_communities_and_is_kept_in_the_url(server, page):
    url, data = server
    _open_map(page, url + "/")
    assert page.text_content("#time-label") == "whole period"
    community = dict(zip(data.streamers["Id"], data.streamers["community"], strict=True))
    gone = next(k for k, c in community.items() if c == 3)
    a = next(k for k, c in community.items() if c == 0)
    b = next(k for k, c in community.items() if c == 1)
    colour = "(k => window.__map.graph.getNodeAttribute(k, 'color'))"
    before = [page.evaluate(f"{colour}({k!r})") for k in (a, b)]
    assert before[0] != before[1]
    page.fill("#time-slider", "1")  # day 2
    page.wait_for_timeout(400)
    assert page.text_content("#time-label") == "2026-05-02"
    assert page.evaluate(f"window.__map.renderer.getNodeDisplayData({gone!r}).hidden") is True
    after = [page.evaluate(f"{colour}({k!r})") for k in (a, b)]
    assert after[0] == after[1]  # merged: one lineage, one colour
    assert page.evaluate("window.__map.sliderMs") < 1000
    assert "t=1" in page.url
    again = page.context.browser.new_page(viewport={"width": 1000, "height": 800})
    _open_map(again, page.url)
    assert again.text_content("#time-label") == "2026-05-02"
    assert again.evaluate(f"window.__map.renderer.getNodeDisplayData({gone!r}).hidden") is True
    again.close()
    page.fill("#time-slider", "2")  # back to the whole period
    assert page.evaluate(f"window.__map.renderer.getNodeDisplayData({gone!r}).hidden") is False
    assert page.errors == [] and page.csp == []


def test_the_panels_close_button_is_not_under_the_top_bar(server, page):
    """Issue 27: the streamer panel's close button sat under serve's top bar."""
    url, data = server
    _open_map(page, f"{url}/#q={data.logins[2]}")
    page.wait_for_timeout(500)
    assert page.is_visible("#panel")
    close = page.locator("#panel-close").bounding_box()
    nav = page.locator("#serve-nav").bounding_box()
    assert close["y"] >= nav["y"] + nav["height"] or close["x"] + close["width"] <= nav["x"]
    centre = (close["x"] + close["width"] / 2, close["y"] + close["height"] / 2)
    on_top = page.evaluate(f"document.elementFromPoint({centre[0]}, {centre[1]}).id")
    assert on_top == "panel-close"
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "serve-panel.png"))
    page.click("#panel-close")
    page.wait_for_timeout(200)
    assert not page.is_visible("#panel")
    assert page.errors == [] and page.csp == []


def test_the_slider_legend_follows_the_window_and_an_empty_window_says_why(server, page):
    """Issue 27: the legend kept the whole period's colours, and an empty window was an empty
    map with no word of why."""
    from twitchgraph.graph.evolve import track_communities

    url, data = server
    rebuilder = SERVED["rebuilder"]
    kept = rebuilder.state.timeline
    community = dict(zip(data.streamers["Id"], data.streamers["community"], strict=True))
    day1 = {k: int(c) for k, c in community.items()}
    day3 = {k: (0 if c in (0, 1) else int(c)) for k, c in community.items() if c != 3}
    gap = track_communities(["2026-05-01", "2026-05-02", "2026-05-03"], [day1, {}, day3],
                            notes=["", "no complete snapshot in this window", ""])
    gap.edges = [data.edges, data.edges.iloc[:0], data.edges]
    rebuilder.state.timeline = gap
    try:
        _open_map(page, url + "/#t=1")
        page.wait_for_timeout(300)
        assert page.text_content("#time-label") == "2026-05-02"
        assert page.text_content("#time-note") == "no graph: no complete snapshot in this window"
        assert page.is_visible("#time-note") and not page.is_visible("#legend")
        assert page.text_content("#time-legend") == ("no graph: no complete snapshot in this "
                                                      "window")
        page.fill("#time-slider", "2")
        page.wait_for_timeout(300)
        assert not page.is_visible("#time-note")
        entries = page.evaluate(
            "Array.from(document.querySelectorAll('#time-legend li')).map(li => "
            "[li.dataset.lineage, getComputedStyle(li.querySelector('.swatch'))"
            ".backgroundColor])")
        a = next(k for k, c in community.items() if c == 0)
        colour = page.evaluate(f"window.__map.graph.getNodeAttribute({a!r}, 'color')")
        lineage = str(gap.lineages[2][day3[a]])
        assert lineage == str(gap.lineages[0][day1[a]])  # carried over the empty day
        shown = dict(entries)
        assert len(shown) == len(set(gap.lineages[2].values()))  # only this window's
        assert shown[lineage] == _css_rgb(colour)  # in the colour the map draws it
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "serve-slider.png"))
        page.fill("#time-slider", "3")  # the whole period: the full legend again
        page.wait_for_timeout(200)
        assert page.is_visible("#legend") and not page.is_visible("#time-legend")
        assert page.errors == [] and page.csp == []
    finally:
        rebuilder.state.timeline = kept


def _css_rgb(hex_color: str) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"
