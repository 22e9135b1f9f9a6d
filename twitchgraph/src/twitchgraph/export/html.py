"""`--to html`: one self-contained HTML file with the interactive map, working offline.

The file inlines the vendored sigma.js + graphology bundle (`twitchgraph/web/vendor/`, rebuilt
by `web/build-bundle.sh`), the map's script and style, and the graph as JSON. Safety:

- the JSON sits in a ``<script type="application/json">`` block with ``<``, ``>``, ``&`` and
  the JavaScript line separators escaped as ``\\uXXXX``, so no display name can close the block;
- the page's script puts every string from the data into the page as text (``textContent``,
  property values), never as HTML; social links become links only for http(s) URLs;
- a Content-Security-Policy forbids loading anything from anywhere.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from twitchgraph.atomic import write_text
from twitchgraph.export import require_columns
from twitchgraph.export.mapview import map_view
from twitchgraph.graph.flow_shares import flow_shares
from twitchgraph.graphio import GraphData

__all__ = ["bundle_versions", "export_html", "map_payload", "safe_json"]

logger = logging.getLogger(__name__)

_MARKERS = re.compile(r"/\*__(CSS|DATA|BUNDLE|APP)__\*/")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                 "\u2029": "\\u2029"}


def _asset(*parts: str) -> str:
    return resources.files("twitchgraph.web").joinpath(*parts).read_text(encoding="utf-8")


def bundle_versions() -> dict[str, str]:
    """Versions of the vendored JavaScript packages (from vendor/VERSIONS.txt)."""
    versions = {}
    for line in _asset("vendor", "VERSIONS.txt").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition(" ")
            versions[name] = version.strip()
    return versions


def safe_json(value: Any) -> str:
    """JSON that can sit inside a ``<script>`` block: no ``</script>``, ``<!--`` or U+2028."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _JSON_ESCAPES[m.group(0)], text)


def _num(value: Any) -> float | int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(number) or math.isinf(number):
        return None
    return int(number) if number.is_integer() else round(number, 3)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def map_payload(data: GraphData, *, top_games: int = 5, title: str = "",
                top_flows: int = 5) -> dict[str, Any]:
    """The JSON the page reads: nodes, edges (as index pairs), raids (raider and raided index,
    raids, viewers), flows (ended and next index, viewers, ends, share of the ended one's end
    chatters, share of the next one's arrivals; each streamer's `top_flows` largest out and
    in), legend, frame, metadata.

    Each node has its `community` and its legend `group` (the community, or -1 for "other",
    see `export.mapview`); `communities` are the legend's entries; `meta.frame` is the box the
    map opens on.
    """
    require_columns(data, ["community", "x", "y", "size"], target="html")
    streamers = data.streamers.reset_index(drop=True)
    view = map_view(data)
    index = {login: i for i, login in enumerate(streamers["Id"])}
    games: dict[str, list[list[Any]]] = {}
    if len(data.played):
        played = data.played.sort_values(["Source", "minutes_played"], ascending=[True, False])
        for login, group in played.groupby("Source", sort=False):
            games[login] = [[_text(g), _num(m)] for g, m in
                            zip(group["Target"].head(top_games),
                                group["minutes_played"].head(top_games), strict=True)]
    nodes = []
    for i, row in enumerate(streamers.to_dict(orient="records")):
        login = row["Id"]
        nodes.append({
            "key": login,
            "label": _text(row.get("Label")),
            "x": _num(row["x"]) or 0.0,
            "y": _num(row["y"]) or 0.0,
            "size": _num(row["size"]) or 1.0,
            "community": int(row["community"]),
            "group": int(view.group[i]),
            "color": view.color[i],
            "viewer_mean": _num(row.get("viewer_mean")),
            "viewer_peak": _num(row.get("viewer_peak")),
            "chatter_mean": _num(row.get("chatter_mean")),
            "chatters_total": _num(row.get("chatters_total")),
            "minutes_live": _num(row.get("minutes_live")),
            "language": _text(row.get("language")),
            "main_game": _text(row.get("main_game")),
            "broadcaster_type": _text(row.get("broadcaster_type")),
            "social": [u for u in _text(row.get("social_links")).split(";") if u],
            "games": games.get(login, []),
        })
    edges = [[index[s], index[t], _num(w)] for s, t, w in
             zip(data.edges["Source"], data.edges["Target"], data.edges["Weight"], strict=True)]
    raids = [[index[s], index[t], int(n), _num(v)] for s, t, n, v in
             zip(data.raids["Source"], data.raids["Target"], data.raids["raids"],
                 data.raids["viewers_total"], strict=True) if s in index and t in index]
    xmin, xmax, ymin, ymax = view.frame
    return {
        "nodes": nodes,
        "edges": edges,
        "raids": raids,
        "flows": _flows(data, index, top_flows),
        "communities": [{"id": e.id, "color": e.color, "size": e.size, "name": e.name}
                        for e in view.legend],
        "meta": {"title": title or "twitchgraph map", "bundle": bundle_versions(),
                 "communities": int(streamers["community"].nunique()),
                 "frame": {"x": [xmin, xmax], "y": [ymin, ymax]}},
    }


def _flows(data: GraphData, index: dict[str, int], top: int) -> list[list[Any]]:
    """Each streamer's `top` largest flows out and in (a build has up to millions of small
    ones; the map and the panels show the largest)."""
    flows = flow_shares(data)
    flows = flows[flows["Source"].isin(index) & flows["Target"].isin(index)]
    flows = flows.sort_values(["viewers", "ends", "Source", "Target"],
                              ascending=[False, False, True, True])
    keep = flows.groupby("Source").head(top).index.union(flows.groupby("Target").head(top).index)
    flows = flows.loc[flows.index.isin(keep)]
    return [[index[s], index[t], int(v), int(e), _num(so), _num(sa)] for s, t, v, e, so, sa in
            zip(flows["Source"], flows["Target"], flows["viewers"], flows["ends"],
                flows["share_of_ends"], flows["share_of_arrivals"], strict=True)]


def render_html(payload: dict[str, Any]) -> str:
    """Fill the page template with the bundle, the app, the style and the data."""
    parts = {
        "CSS": _asset("map.css"),
        "DATA": safe_json(payload),
        "BUNDLE": _asset("vendor", "sigma-graphology.min.js"),
        "APP": _asset("map.js"),
    }
    for name in ("BUNDLE", "APP", "CSS"):
        if re.search(r"</(script|style)", parts[name], re.IGNORECASE):
            raise ValueError(f"the {name.lower()} asset contains a closing tag; rebuild it")
    # One pass: text inserted for one marker is never scanned for another.
    return _MARKERS.sub(lambda m: parts[m.group(1)], _asset("map.html"))


def export_html(data: GraphData, path: str | os.PathLike, *, title: str = "") -> Path:
    """Write the offline map to `path`; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text(target, render_html(map_payload(data, title=title)))
    logger.info("wrote %s (%d bytes)", target, target.stat().st_size)
    return target
