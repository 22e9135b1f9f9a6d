"""The offline web map in headless Chromium: it draws, searches, and shows hostile text as text."""

from __future__ import annotations

import io
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _graph_fixtures import write_planted_graph_dir  # noqa: E402

from twitchgraph.export import OTHER_COLOR, community_colors  # noqa: E402
from twitchgraph.export.html import export_html, map_payload, safe_json  # noqa: E402
from twitchgraph.graph.communities import OTHER, communities_for_dir  # noqa: E402
from twitchgraph.graph.layout import layout_for_dir  # noqa: E402
from twitchgraph.graphio import read_graph_dir  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
COMMUNITIES = 8
LONERS = 15
EVIL = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


@pytest.fixture(scope="module")
def map_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("web")
    write_planted_graph_dir(path, communities=COMMUNITIES, size=20, seed=4, evil_names=True,
                            loners=LONERS)
    communities_for_dir(path, seed=0)
    layout_for_dir(path, iterations=200, seed=0)
    return export_html(read_graph_dir(path), path / "map.html")


def test_file_is_self_contained_and_data_cannot_break_out(map_file):
    html = map_file.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html, re.IGNORECASE)
    assert "http://" not in html.split('<script type="application/json"')[0]
    blocks = re.findall(r'<script type="application/json" id="graph-data">(.*?)</script>', html,
                        re.DOTALL)
    assert len(blocks) == 1
    data = json.loads(blocks[0])
    assert data["nodes"][0]["label"] == EVIL  # escaped in the file, intact once parsed
    assert "<script>window.__pwned" not in blocks[0]
    assert html.count("</script>") == 3  # data, bundle, app: nothing from the data closes one


def test_safe_json_escapes_script_breakers():
    text = safe_json({"a": "</script><!-- \u2028 & >"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!-- \u2028 & >"}


def test_payload_has_communities_colours_and_games(map_file):
    data = read_graph_dir(map_file.parent)
    payload = map_payload(data)
    assert len(payload["nodes"]) == len(data.streamers)
    assert len(payload["edges"]) == len(data.edges)
    logins = [n["key"] for n in payload["nodes"]]
    assert [(logins[s], logins[t], n, v) for s, t, n, v in payload["raids"]] == list(zip(
        data.raids["Source"], data.raids["Target"], data.raids["raids"],
        data.raids["viewers_total"], strict=True))
    legend = payload["communities"]
    assert [c["id"] for c in legend] == [*range(COMMUNITIES), OTHER]
    assert [c["color"] for c in legend] == [*community_colors(COMMUNITIES), OTHER_COLOR]
    assert legend[-1]["size"] == LONERS and "15 isolated streamers" in legend[-1]["name"]
    color = {c["id"]: c["color"] for c in legend}
    assert all(n["color"] == color[n["group"]] for n in payload["nodes"])
    assert all((n["group"] == OTHER) == n["key"].startswith("loner_") for n in payload["nodes"])
    assert payload["meta"]["communities"] == COMMUNITIES + LONERS
    assert any(n["games"] for n in payload["nodes"])


def test_payload_flows_are_each_streamers_largest_with_their_shares(map_file):
    data = read_graph_dir(map_file.parent)
    payload = map_payload(data, top_flows=2)
    logins = [n["key"] for n in payload["nodes"]]
    got = {(logins[s], logins[t]): (v, e, so, sa) for s, t, v, e, so, sa in payload["flows"]}
    flows = data.flows.sort_values(["viewers", "ends", "Source", "Target"],
                                   ascending=[False, False, True, True])
    wanted = set()
    for column in ("Source", "Target"):
        for _, group in flows.groupby(column, sort=False):
            wanted |= set(zip(group["Source"].head(2), group["Target"].head(2), strict=True))
    assert set(got) == wanted and len(got) < len(data.flows)
    chatters = data.streamers.set_index("Id")["end_chatters"]
    arrivals = data.flows.groupby("Target")["viewers"].sum()
    first, second = data.logins[0], data.logins[1]
    viewers, ends, of_ends, of_arrivals = got[(first, second)]
    assert (viewers, ends) == (250, 6)
    assert of_ends == pytest.approx(250 / chatters[first], abs=1e-3)
    assert of_arrivals == pytest.approx(250 / arrivals[second], abs=1e-3)


@pytest.fixture(scope="module")
def page(map_file):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; `make system-deps`)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(map_file.as_uri())
        page.wait_for_function("window.__map && window.__map.ready", timeout=15000)
        page.wait_for_timeout(300)  # first frame
        page.errors = errors
        yield page
        browser.close()


@pytest.mark.slow
def test_canvas_draws_the_communities_in_distinct_colours(page):
    from PIL import Image

    shot = Image.open(io.BytesIO(page.locator("#sigma").screenshot())).convert("RGB")
    pixels = {rgb for _, rgb in shot.getcolors(maxcolors=1 << 24)}
    found = 0
    for hex_color in community_colors(COMMUNITIES):
        rgb = tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
        if any(sum(abs(a - b) for a, b in zip(rgb, px, strict=True)) < 12 for px in pixels):
            found += 1
    assert found >= COMMUNITIES - 1
    assert page.errors == []


def _viewport_box(page, prefix: str) -> list[float]:
    """[x0, x1, y0, y1] on screen of the nodes whose login starts with `prefix`."""
    return page.evaluate(
        "(prefix => { const r = window.__map.renderer, xs = [], ys = []; "
        "window.__map.graph.forEachNode(k => { if (!k.startsWith(prefix)) return; "
        "const p = r.graphToViewport(window.__map.graph.getNodeAttributes(k)); "
        "xs.push(p.x); ys.push(p.y); }); "
        "return [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)]; })",
        prefix)


@pytest.mark.slow
def test_map_opens_framed_on_the_main_graph_not_the_loners(page):
    width, height = 1000, 800  # the viewport
    panel = page.evaluate("document.getElementById('controls').getBoundingClientRect().right")
    x0, x1, y0, y1 = _viewport_box(page, "streamer_")
    # Inside the screen, right of the controls, and spanning most of the room left.
    assert x0 >= panel - 5 and x1 <= width and y0 >= 0 and y1 <= height
    assert max((x1 - x0) / (width - panel), (y1 - y0) / height) > 0.6
    lx0, lx1, ly0, ly1 = _viewport_box(page, "loner_")
    assert lx0 < x0 or lx1 > x1 or ly0 < y0 or ly1 > y1  # the ring of loners is wider


@pytest.mark.slow
def test_legend_lists_the_communities_then_other_in_distinct_colours(page):
    rows = page.evaluate("Array.from(document.querySelectorAll('#legend li')).map(li => "
                         "[li.querySelector('input').dataset.community, "
                         "getComputedStyle(li.querySelector('.swatch')).backgroundColor, "
                         "li.querySelector('.name').textContent])")
    assert [int(r[0]) for r in rows] == [*range(COMMUNITIES), OTHER]
    assert len({r[1] for r in rows}) == len(rows)
    assert rows[-1][2].startswith(f"{LONERS} · other:")
    summary = page.text_content("#summary")
    assert f"{COMMUNITIES + LONERS} communities ({COMMUNITIES} shown" in summary
    # Unticking "other" hides the loners.
    page.click("#legend li:last-child input[type=checkbox]")
    hidden = page.evaluate("window.__map.renderer.getNodeDisplayData('loner_003').hidden")
    page.click("#show-all")
    assert hidden is True


@pytest.mark.slow
def test_search_focuses_the_streamer(page):
    login = "streamer_5_007"
    before = page.evaluate("JSON.stringify(window.__map.renderer.getCamera().getState())")
    page.fill("#search", login)
    page.press("#search", "Enter")
    page.wait_for_timeout(600)
    assert page.evaluate("window.__map.focused") == login
    assert page.evaluate("window.__map.selected") == login
    camera = json.loads(page.evaluate("JSON.stringify(window.__map.renderer.getCamera()"
                                      ".getState())"))
    node = page.evaluate(f"(() => {{ const d = window.__map.renderer.getNodeDisplayData("
                         f"{json.dumps(login)}); return [d.x, d.y]; }})()")
    assert json.loads(before) != camera
    assert camera["ratio"] < 0.5
    assert camera["x"] == pytest.approx(node[0], abs=1e-3)
    assert camera["y"] == pytest.approx(node[1], abs=1e-3)
    assert page.is_visible("#panel")
    assert page.text_content("#panel-login").startswith(f"login: {login}")


@pytest.mark.slow
def test_hostile_names_and_links_are_shown_as_text(page):
    page.fill("#search", "streamer_0_000")
    page.press("#search", "Enter")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert page.text_content("#panel-name") == EVIL
    assert page.evaluate("document.querySelectorAll('#panel img, #panel script').length") == 0
    links = page.evaluate("Array.from(document.querySelectorAll('#panel-social a'))"
                          ".map(a => a.getAttribute('href'))")
    assert links and all(h.startswith("https://") for h in links)  # javascript: is not a link
    assert "javascript:alert(1)" in page.text_content("#panel-social")
    # The neighbour list shows the other hostile label as text too.
    assert page.evaluate("document.querySelectorAll('#panel-neighbours b').length") == 0
    assert page.errors == []


@pytest.mark.slow
def test_legend_hides_and_zooms_to_a_community(page):
    page.click("#legend li:nth-child(3) input[type=checkbox]")
    hidden = page.evaluate("(() => { const m = window.__map; const n = m.graph.filterNodes("
                           "(k, a) => a.community === 2)[0]; "
                           "return m.renderer.getNodeDisplayData(n).hidden; })()")
    assert hidden is True
    page.click("#legend li:nth-child(4) button")
    page.wait_for_timeout(700)
    assert page.evaluate("window.__map.zoomedCommunity") == 3
    assert page.evaluate("window.__map.renderer.getCamera().getState().ratio") < 1.0


@pytest.mark.slow
def test_changing_the_filters_brings_the_camera_home(page):
    home = page.evaluate("window.__map.home")
    page.fill("#search", "streamer_5_007")
    page.press("#search", "Enter")
    page.wait_for_timeout(600)
    assert page.evaluate("window.__map.renderer.getCamera().getState().ratio") < 0.5
    page.click("#hide-all")
    page.click("#legend li:nth-child(1) input[type=checkbox]")
    page.wait_for_timeout(700)
    camera = page.evaluate("window.__map.renderer.getCamera().getState()")
    assert camera["ratio"] == pytest.approx(home["ratio"])
    assert (camera["x"], camera["y"]) == (pytest.approx(home["x"]), pytest.approx(home["y"]))
    # What is ticked is on screen.
    x0, x1, y0, y1 = _viewport_box(page, "streamer_0_")
    assert x0 >= 0 and x1 <= 1000 and y0 >= 0 and y1 <= 800
    page.click("#show-all")


@pytest.mark.slow
def test_hover_greys_out_everything_but_the_neighbours(page):
    page.click("#panel-close")
    page.click("#show-all")
    page.evaluate("window.__map.renderer.getCamera().setState({x: 0.5, y: 0.5, ratio: 1})")
    page.wait_for_timeout(200)
    login = "streamer_6_004"
    box = page.locator("#sigma").bounding_box()
    point = page.evaluate(
        f"(() => {{ const r = window.__map.renderer; const d = r.getNodeDisplayData("
        f"{json.dumps(login)}); const p = r.framedGraphToViewport(d); return [p.x, p.y]; }})()")
    page.mouse.move(box["x"] + point[0], box["y"] + point[1])
    page.wait_for_timeout(300)
    assert page.evaluate("window.__map.hovered") == login
    colours = page.evaluate(
        f"(() => {{ const m = window.__map, key = {json.dumps(login)}; const out = {{}}; "
        "m.graph.forEachNode(n => { out[n] = [m.graph.areNeighbors(n, key) || n === key, "
        "m.renderer.getNodeDisplayData(n).color]; }); return out; })()")
    grey = {c for near, c in colours.values() if not near}
    kept = {c for near, c in colours.values() if near}
    assert grey == {"#2b2f38"} and "#2b2f38" not in kept


@pytest.mark.slow
def test_raid_layer_is_off_by_default_and_draws_raids_as_arrows(page):
    data = read_graph_dir(Path(page.url.removeprefix("file://")).parent)
    overlaps = page.evaluate("window.__map.graph.size")
    assert page.evaluate("window.__map.raids") is False
    assert not page.is_checked("#raids-layer") and page.is_visible("#raids-layer")
    page.click("#raids-layer")
    raids = page.evaluate("window.__map.graph.filterEdges((e, a) => a.raid)"
                          ".map(e => [window.__map.graph.source(e), window.__map.graph.target(e),"
                          " window.__map.graph.getEdgeAttribute(e, 'weight')])")
    assert sorted(map(tuple, raids)) == sorted(
        zip(data.raids["Source"], data.raids["Target"], data.raids["raids"], strict=True))
    assert page.evaluate("window.__map.graph.filterEdges((e, a) => a.raid)"
                         ".every(e => window.__map.graph.isDirected(e))")
    # the first streamer raided the second twice: its panel lists it
    first, second = data.logins[0], data.logins[1]
    page.evaluate(f"window.__map.select({json.dumps(first)})")
    label = data.streamers.set_index("Id").loc[second, "Label"]
    assert any(t.startswith("raided " + label) and "2×" in t for t in page.evaluate(
        "Array.from(document.querySelectorAll('#panel-raids li')).map(li => li.textContent)"))
    page.click("#raids-layer")
    assert page.evaluate("window.__map.graph.size") == overlaps
    assert page.errors == []


@pytest.mark.slow
def test_flow_layer_is_off_by_default_and_the_panel_says_where_viewers_go(page):
    data = read_graph_dir(Path(page.url.removeprefix("file://")).parent)
    overlaps = page.evaluate("window.__map.graph.size")
    assert page.evaluate("window.__map.flows") is False
    assert not page.is_checked("#flows-layer") and page.is_visible("#flows-layer")
    page.click("#flows-layer")
    drawn = page.evaluate("window.__map.graph.filterEdges((e, a) => a.flow)"
                          ".map(e => [window.__map.graph.source(e), window.__map.graph.target(e),"
                          " window.__map.graph.isDirected(e)])")
    payload = map_payload(data)
    logins = [n["key"] for n in payload["nodes"]]
    assert sorted(map(tuple, drawn)) == sorted(
        (logins[f[0]], logins[f[1]], True) for f in payload["flows"])
    first, second = data.logins[0], data.logins[1]
    page.evaluate(f"window.__map.select({json.dumps(first)})")
    labels = data.streamers.set_index("Id")["Label"]
    assert page.text_content("#panel-flows-out-title") == (
        f"When {labels[first]} ends, its viewers go to")
    going = page.evaluate(
        "Array.from(document.querySelectorAll('#panel-flows-out li')).map(li => li.textContent)")
    share = round(100 * 250 / data.streamers.set_index("Id").loc[first, "end_chatters"], 1)
    assert going[0].startswith(f"{labels[second]} — 250 viewers, {share:g} %")
    assert going[0].endswith("(6 ends)")
    page.click("#flows-layer")
    assert page.evaluate("window.__map.graph.size") == overlaps
    assert page.errors == []


def test_vendored_bundle_has_versions_and_licences():
    from importlib import resources

    from twitchgraph.export.html import bundle_versions

    versions = bundle_versions()
    assert {"sigma", "graphology", "graphology-utils", "events"} <= set(versions)
    vendor = resources.files("twitchgraph.web").joinpath("vendor")
    for package in ("sigma", "graphology", "graphology-utils", "events"):
        assert "MIT" in vendor.joinpath(f"LICENSE-{package}.txt").read_text(encoding="utf-8")
    project = Path(__file__).resolve().parents[1]
    package_json = json.loads((project / "web" / "package.json").read_text())
    assert package_json["dependencies"]["sigma"] == versions["sigma"]
    assert package_json["dependencies"]["graphology"] == versions["graphology"]
