"""`twitchgraph serve`: a local, read-only web app over the store (Starlette).

Pages, each with a JSON twin at the same URL plus ``.json``:

- ``/``: the map (the offline map's sigma.js page and script), state in the URL's hash;
- ``/streamer/{login}``: top overlaps, raids in and out, where its viewers go when it ends and
  where the viewers it gains come from (flows, with counts and shares), games played,
  community;
- ``/status``: the facts of `twitchgraph status` and of the server's own rebuilds;
- ``/download/map.png`` and ``/download/map.gexf``: the map as the page shows it (``hide``:
  legend groups left out, ``t``: a window of the time slider).

Safety: GET only (no endpoint writes anything; a rebuild is asked for with SIGHUP or comes
on the schedule); templates escape every value (Jinja2 autoescape) and the map's data sits
in a JSON block escaped for ``<script>``; every response carries a strict
Content-Security-Policy (scripts and styles only from this server, nothing inline, no
frames); static files come only from the package's own list, anything else is a 404.

The view functions are module-level and find the app's rebuilder and map payload cache on
``request.app.state`` (`twitchgraph.serve.app.create_app` puts them there); `ROUTES` lists
every URL.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import re
import threading
from importlib import resources
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from twitchgraph.graph.flow_shares import flows_of
from twitchgraph.graphio import GraphData
from twitchgraph.serve.rebuild import Rebuilder

__all__ = [
    "CSP",
    "EXCEPTION_HANDLERS",
    "ROUTES",
    "STATIC_FILES",
    "PayloadCache",
    "served_map",
    "streamer_facts",
]

logger = logging.getLogger(__name__)

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
# The only files /static/ serves, all from the twitchgraph.web package.
STATIC_FILES = {
    "map.js": "text/javascript", "map.css": "text/css", "serve.js": "text/javascript",
    "serve.css": "text/css", "vendor/sigma-graphology.min.js": "text/javascript",
}
_TOP = 20


def _clean(value: Any) -> Any:
    """A JSON-safe value: NaN and missing become None, numpy numbers plain numbers."""
    if value is None:
        return None
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def streamer_facts(data: GraphData, login: str, *, top: int = _TOP) -> dict[str, Any] | None:
    """What the streamer page shows, as plain data; None when `login` is not in the graph."""
    streamers = data.streamers
    rows = streamers[streamers["Id"].str.lower() == login.lower()]
    if rows.empty:
        return None
    row = rows.iloc[0]
    key = row["Id"]
    labels = dict(zip(streamers["Id"], streamers["Label"], strict=True))
    edges = data.edges[(data.edges["Source"] == key) | (data.edges["Target"] == key)]
    overlaps = pd.DataFrame({
        "login": [t if s == key else s for s, t in zip(edges["Source"], edges["Target"],
                                                       strict=True)],
        "weight": edges["Weight"].to_numpy(),
        "shared": edges["shared"].to_numpy() if "shared" in edges else None,
    }).sort_values(["weight", "login"], ascending=[False, True]).head(top)
    overlaps["name"] = overlaps["login"].map(labels)
    raids = data.raids
    raids_out = raids[raids["Source"] == key].rename(columns={"Target": "login"})
    raids_in = raids[raids["Target"] == key].rename(columns={"Source": "login"})
    columns = ["login", "name", "raids", "viewers_total", "first_at", "last_at"]
    raids_out = raids_out.assign(name=raids_out["login"].map(labels))[columns]
    raids_in = raids_in.assign(name=raids_in["login"].map(labels))[columns]
    flows = flows_of(data, key, top=top)
    # going: share of the chatters at this streamer's ends; coming: share of its arrivals
    flows_out = flows["out"].rename(columns={"Target": "login", "share_of_ends": "share"})
    flows_in = flows["in"].rename(columns={"Source": "login", "share_of_arrivals": "share"})
    columns = ["login", "name", "viewers", "share", "ends", "first_at", "last_at"]
    flows_out = flows_out.assign(name=flows_out["login"].map(labels),
                                 share=(100 * flows_out["share"]).round(1))[columns]
    flows_in = flows_in.assign(name=flows_in["login"].map(labels),
                               share=(100 * flows_in["share"]).round(1))[columns]
    games = data.played[data.played["Source"] == key].sort_values(
        "minutes_played", ascending=False).rename(columns={"Target": "game"})
    community = _clean(row.get("community")) if "community" in row.index else None
    return {
        "login": key,
        "name": row["Label"] or key,
        "community": community,
        "facts": {k: _clean(row.get(k)) for k in (
            "viewer_mean", "viewer_peak", "chatter_mean", "chatters_total", "minutes_live",
            "language", "main_game", "broadcaster_type", "ends", "end_chatters",
            "end_retained")},
        "social_links": [u for u in str(row.get("social_links") or "").split(";") if u],
        "overlaps": _records(overlaps[["login", "name", "weight", "shared"]]),
        "raids_out": _records(raids_out.sort_values("viewers_total", ascending=False)),
        "raids_in": _records(raids_in.sort_values("viewers_total", ascending=False)),
        "flows_out": _records(flows_out),
        "flows_in": _records(flows_in),
        "games": _records(games[["game", "minutes_played"]]),
    }


def for_people(value: Any) -> Any:
    """A number as a page shows it: whole numbers with thousands separators, others to one
    decimal (two below 10); anything else unchanged. The JSON twins keep the exact values.

    >>> for_people(42.54545454545455), for_people(1234567), for_people(3.14159), for_people("it")
    ('42.5', '1,234,567', '3.14', 'it')
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return "–"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"


@functools.cache
def _templates() -> Environment:
    env = Environment(loader=PackageLoader("twitchgraph", "web"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["num"] = for_people
    return env


def page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The template `name` rendered with `context`, with the app's security headers."""
    html = _templates().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=_HEADERS)


def as_json(value: Any, status_code: int = 200) -> JSONResponse:
    """`value` as JSON, with the app's security headers."""
    return JSONResponse(value, status_code=status_code, headers=_HEADERS)


def _rebuilder(request: Request) -> Rebuilder:
    return request.app.state.rebuilder


def _graph(request: Request) -> GraphData | None:
    return _rebuilder(request).state.graph


async def map_page(request: Request) -> Response:
    """``/``: the map, or a wait page (503) before the first graph."""
    from twitchgraph.export.html import safe_json

    payload = await asyncio.to_thread(request.app.state.payloads.get)
    if payload is None:
        return _wait_page(_rebuilder(request))
    return HTMLResponse(served_map(safe_json(payload)), headers=_HEADERS)


async def map_json(request: Request) -> Response:
    """``/map.json``: the map's data."""
    payload = await asyncio.to_thread(request.app.state.payloads.get)
    return as_json(payload) if payload else as_json(_no_graph(_rebuilder(request)), 503)


async def streamer_page(request: Request) -> Response:
    """``/streamer/{login}`` and ``/streamer/{login}.json``: one streamer's facts."""
    rebuilder = _rebuilder(request)
    login = request.path_params["login"]
    wants_json = login.endswith(".json")
    login = login.removesuffix(".json")
    if not login.strip():
        return (as_json({"error": "no login given: /streamer/LOGIN"}, 404) if wants_json
                else Response("not found", status_code=404, headers=_HEADERS))
    data = _graph(request)
    if data is None:
        return (as_json(_no_graph(rebuilder), 503) if wants_json
                else _wait_page(rebuilder))
    facts = streamer_facts(data, login)
    if facts is not None and rebuilder.state.timeline is not None:
        facts.update(_history(rebuilder.state.timeline, facts["login"],
                              [o["login"] for o in facts["overlaps"]]))
    if facts is None:
        message = {"error": f"{login} is not in the graph"}
        return (as_json(message, 404) if wants_json
                else page("serve_missing.html", 404, login=login))
    return as_json(facts) if wants_json else page("serve_streamer.html", s=facts)


def status_facts(rebuilder: Rebuilder) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The facts of `twitchgraph status` for the served store, with the server's own state,
    and their coloured lines."""
    from twitchgraph.collect.status import collection_status, status_lines
    from twitchgraph.store.db import StoreError

    try:
        status = collection_status(rebuilder.db)
        lines = status_lines(status)
    except StoreError as exc:
        status, lines = {"error": str(exc)}, [(str(exc), "red")]
    status["server"] = rebuilder.state.as_dict()
    return status, lines


async def status_page(request: Request) -> Response:
    """``/status``: how the collection and the server's rebuilds are going."""
    # In a thread: opening the store may wait a few seconds for a collector's commit.
    status, lines = await asyncio.to_thread(status_facts, _rebuilder(request))
    return page("serve_status.html", lines=lines, server=status["server"])


async def status_json(request: Request) -> Response:
    """``/status.json``: the status page's facts."""
    return as_json((await asyncio.to_thread(status_facts, _rebuilder(request)))[0])


async def static(request: Request) -> Response:
    """``/static/{path}``: one of `STATIC_FILES`, anything else a 404."""
    name = request.path_params["path"]
    kind = STATIC_FILES.get(name)
    if kind is None:
        return Response("not found", status_code=404, headers=_HEADERS)
    body = resources.files("twitchgraph.web").joinpath(*name.split("/")).read_bytes()
    return Response(body, media_type=kind,
                    headers={**_HEADERS, "Cache-Control": "no-cache"})


async def download(request: Request) -> Response:
    """``/download/map.{png,gexf}``: the map as the page shows it (``hide``, ``t``)."""
    rebuilder = _rebuilder(request)
    kind = request.path_params["kind"]
    if kind not in ("png", "gexf"):
        return Response("not found", status_code=404, headers=_HEADERS)
    data = _graph(request)
    if data is None:
        return as_json(_no_graph(rebuilder), 503)
    try:
        hide = {int(x) for x in request.query_params.get("hide", "").split(",") if x}
        window = request.query_params.get("t")
        window = None if window in (None, "") else int(window)
    except ValueError:
        return as_json({"error": "hide is a comma list of community ids, t a window "
                                 "number"}, 400)
    view = view_of(data, hide=hide, window=window, timeline=rebuilder.state.timeline)
    if view.streamers.empty:
        return as_json({"error": "nothing shown: every community is hidden"}, 400)
    body = await asyncio.to_thread(_render_download, view, kind)
    media = "image/png" if kind == "png" else "application/gexf+xml"
    return Response(body, media_type=media, headers={
        **_HEADERS, "Content-Disposition": f'attachment; filename="twitchgraph-map.{kind}"'})


async def not_found(request: Request, exc: Exception) -> Response:
    """Any unknown URL."""
    return Response("not found", status_code=404, headers=_HEADERS)


async def not_allowed(request: Request, exc: Exception) -> Response:
    """Any method but GET and HEAD: the app is read-only."""
    return Response("read-only: GET only", status_code=405,
                    headers={**_HEADERS, "Allow": "GET, HEAD"})


# The app's every URL, in one place.
ROUTES = [
    Route("/", map_page, methods=["GET"]),
    Route("/map.json", map_json, methods=["GET"]),
    Route("/streamer/{login}", streamer_page, methods=["GET"]),
    Route("/status", status_page, methods=["GET"]),
    Route("/status.json", status_json, methods=["GET"]),
    Route("/static/{path:path}", static, methods=["GET"]),
    Route("/download/map.{kind:str}", download, methods=["GET"]),
]
EXCEPTION_HANDLERS = {404: not_found, 405: not_allowed}


_MAP_PARTS = {
    r"<style>/\*__CSS__\*/</style>": '<link rel="stylesheet" href="/static/map.css">'
                                      '<link rel="stylesheet" href="/static/serve.css">',
    r"<script>/\*__BUNDLE__\*/</script>":
        '<script src="/static/vendor/sigma-graphology.min.js"></script>',
    r"<script>/\*__APP__\*/</script>":
        '<script src="/static/map.js"></script><script src="/static/serve.js"></script>',
    r'<meta http-equiv="Content-Security-Policy"[^>]*>': "",
    r"<body>": '<body><nav id="serve-nav"><a href="/">map</a> <a href="/status">status</a> '
               '<a id="streamer-link" hidden>streamer page</a> download this view: '
               '<a id="download-png" href="/download/map.png" download>PNG</a> '
               '<a id="download-gexf" href="/download/map.gexf" download>GEXF</a></nav>',
}


def served_map(data_json: str) -> str:
    """The offline map's page with its script and style linked from /static/ instead of
    inlined (the CSP allows no inline script) and `data_json` (from `safe_json`) as data."""
    html = resources.files("twitchgraph.web").joinpath("map.html").read_text(encoding="utf-8")
    for pattern, replacement in _MAP_PARTS.items():
        html, n = re.subn(pattern, lambda _m, r=replacement: r, html, count=1)
        if n != 1:
            raise RuntimeError(f"web/map.html has no {pattern!r}: update views._MAP_PARTS")
    return html.replace("/*__DATA__*/", data_json, 1)


def view_of(data: GraphData, *, hide: set[int], window: int | None,
            timeline: Any = None) -> GraphData:
    """The part of `data` the map shows: streamers of legend groups not in `hide` and, for a
    window of `timeline`, only those in that window's graph; their edges, raids, flows and
    games."""
    from twitchgraph.export.mapview import map_view

    keep = ~pd.Series(map_view(data).group).isin(hide).to_numpy()
    if timeline is not None and window is not None and 0 <= window < len(timeline.windows):
        keep &= data.streamers["Id"].isin(timeline.memberships[window].keys()).to_numpy()
    streamers = data.streamers[keep].reset_index(drop=True)
    kept = set(streamers["Id"])

    def both(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame["Source"].isin(kept) & frame["Target"].isin(kept)]

    return GraphData(streamers=streamers, edges=both(data.edges),
                     played=data.played[data.played["Source"].isin(kept)],
                     games=data.games, build=data.build, raids=both(data.raids),
                     flows=both(data.flows))


def _render_download(view: GraphData, kind: str) -> bytes:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="twitchgraph-view-") as tmp:
        if kind == "png":
            from twitchgraph.export.png import export_png

            path = export_png(view, Path(tmp) / "map.png", size_inches=10.0, dpi=110)
        else:
            from twitchgraph.export.gexf import export_gexf

            path = export_gexf(view, Path(tmp) / "map.gexf")
        return path.read_bytes()


def _no_graph(rebuilder: Rebuilder) -> dict[str, Any]:
    return {"error": "no graph yet: the first build is running or failed (see /status)",
            "server": rebuilder.state.as_dict(), "short_trial": trial_command(rebuilder)}


def trial_command(rebuilder: Rebuilder) -> str:
    """`twitchgraph serve` with the options a few minutes of snapshots need (the simulator,
    a first try): the defaults (every 3rd snapshot, 60 minutes live, 1-day windows) suit
    days of collection and build nothing from minutes."""
    import shlex

    return (f"twitchgraph serve --db {shlex.quote(str(rebuilder.db))} {TRIAL_OPTIONS}")


# Measured with `sim serve` and `collect --every 1m --window 20s`: a map within 5 minutes.
TRIAL_OPTIONS = ("--every-nth 1 --min-live-minutes 1 --min-viewer-mean 1 --min-chatter-mean 1 "
                 "--window 2m --rebuild-every 30s")


def _wait_page(rebuilder: Rebuilder) -> Response:
    return page("serve_wait.html", 503, state=rebuilder.state.as_dict(),
                trial=trial_command(rebuilder))


class PayloadCache:
    """The map's JSON for the current graph (and windows), made once per rebuild."""

    def __init__(self, rebuilder: Rebuilder) -> None:
        self.rebuilder = rebuilder
        self._lock = threading.Lock()  # one maker, even when several pages ask at once
        self._last: tuple[Any, Any, dict[str, Any]] | None = None

    def get(self) -> dict[str, Any] | None:
        from twitchgraph.export.html import map_payload

        state = self.rebuilder.state
        data, timeline = state.graph, state.timeline
        if data is None:
            return None
        with self._lock:
            last = self._last
            if last is not None and last[0] is data and last[1] is timeline:
                return last[2]
            payload = map_payload(data, title="twitchgraph live map")
            if timeline is not None:
                payload["timeline"] = timeline_payload(timeline, payload["nodes"])
            self._last = (data, timeline, payload)
            return payload


def timeline_payload(evolution: Any, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The time slider's data: per window, each node's community lineage (-1: not in the
    graph of that window), one colour per lineage, kept as the community moves, each window's
    own legend, and why a window is empty.

    Lineages are coloured largest first (summed over windows), with the maps' palette. A
    window's legend lists the lineages it shows, largest first: [lineage, members, name]
    (the name: its three biggest streamers by mean viewers). Lineages carry over empty
    windows (`evolve.track_communities`), which `notes` explains ("" for a window with a
    graph).
    """
    from twitchgraph.export import community_colors

    logins = [n["key"] for n in nodes]
    per_window = []
    totals: dict[int, int] = {}
    for members, lineage in zip(evolution.memberships, evolution.lineages, strict=True):
        row = [lineage[members[login]] if login in members else -1 for login in logins]
        for lin in row:
            if lin >= 0:
                totals[lin] = totals.get(lin, 0) + 1
        per_window.append(row)
    order = sorted(totals, key=lambda lin: (-totals[lin], lin))
    colors = dict(zip(order, community_colors(len(order)), strict=True))
    viewers = [n.get("viewer_mean") or 0.0 for n in nodes]
    legends = []
    for row in per_window:
        members: dict[int, list[int]] = {}
        for i, lin in enumerate(row):
            if lin >= 0:
                members.setdefault(lin, []).append(i)
        legend = []
        for lin, idx in sorted(members.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            top = sorted(idx, key=lambda i: (-viewers[i], logins[i]))[:3]
            legend.append([lin, len(idx), ", ".join(nodes[i]["label"] or logins[i]
                                                    for i in top)])
        legends.append(legend)
    notes = list(getattr(evolution, "notes", None) or [""] * len(evolution.windows))
    notes = [f"no graph: {n or 'no streamer'}" if not m else ""
             for n, m in zip(notes, evolution.memberships, strict=True)]
    return {"windows": list(evolution.windows), "lineage": per_window,
            "colors": {str(lin): color for lin, color in colors.items()},
            "legends": legends, "notes": notes}


def _history(evolution: Any, login: str, partners: list[str]) -> dict[str, Any]:
    """A streamer's community lineage per window and the weight of each of `partners`'
    edges with them per window (None where there was none)."""
    history = []
    for window, members, lineage, sizes in zip(evolution.windows, evolution.memberships,
                                               evolution.lineages, evolution.sizes,
                                               strict=True):
        c = members.get(login)
        history.append({"window": window, "community": None if c is None else f"L{lineage[c]}",
                        "size": None if c is None else sizes[c],
                        "note": "" if members else "no graph in this window"})
    trends: dict[str, list[float | None]] = {p: [] for p in partners}
    for edges in evolution.edges:
        mine = edges[(edges["Source"] == login) | (edges["Target"] == login)]
        weight = {(t if s == login else s): float(w) for s, t, w in
                  zip(mine["Source"], mine["Target"], mine["Weight"], strict=True)}
        for partner in partners:
            trends[partner].append(weight.get(partner))
    return {"windows": list(evolution.windows), "history": history, "trends": trends}
