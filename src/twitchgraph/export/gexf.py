"""`--to gexf`: GEXF 1.3 for Gephi, with positions, sizes, community colours and all columns.

Gephi opens the file as the finished map: `viz:position` from the ForceAtlas2 layout,
`viz:size` from mean viewers, `viz:color` by community, every streamers.csv column as a node
attribute and every edges.csv column as an edge attribute (edges keep their direction,
weighted by `Weight`). Written with networkx's GEXF writer.
"""

from __future__ import annotations

import io
import logging
import math
import os
from pathlib import Path

import networkx as nx

from twitchgraph.export import community_colors, require_columns
from twitchgraph.graphio import GraphData

__all__ = ["export_gexf", "to_gexf_graph"]

logger = logging.getLogger(__name__)

# networkx 3.6 writes the XML Schema instance namespace without "www."; fix it so validators
# resolve xsi:schemaLocation.
_BAD_XSI = b'xmlns:xsi="http://w3.org/2001/XMLSchema-instance"'
_GOOD_XSI = b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def _rgb(hex_color: str) -> dict[str, int | float]:
    value = hex_color.lstrip("#")
    return {"r": int(value[0:2], 16), "g": int(value[2:4], 16), "b": int(value[4:6], 16),
            "a": 1.0}


def _clean(value: object) -> object | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):  # numpy scalar -> Python scalar, so GEXF types are right
        return value.item()
    return value


def to_gexf_graph(data: GraphData) -> nx.DiGraph:
    """The directed streamer graph with GEXF `viz` data and all attributes on nodes and edges."""
    require_columns(data, ["community", "x", "y", "size"], target="gexf")
    streamers = data.streamers
    communities = streamers["community"].astype(int)
    colors = community_colors(int(communities.max()) + 1)
    graph = nx.DiGraph(name="twitchgraph")
    for row in streamers.to_dict(orient="records"):
        attrs = {k: _clean(v) for k, v in row.items() if k not in ("Id", "Label", "x", "y",
                                                                   "size")}
        attrs = {k: v for k, v in attrs.items() if v is not None}
        attrs["community"] = int(row["community"])
        attrs["label"] = str(row["Label"]) or row["Id"]
        attrs["viz"] = {
            "position": {"x": float(row["x"]), "y": float(row["y"]), "z": 0.0},
            "size": float(row["size"]),
            "color": _rgb(colors[int(row["community"])]),
        }
        graph.add_node(row["Id"], **attrs)
    for row in data.edges.to_dict(orient="records"):
        attrs = {k: _clean(v) for k, v in row.items() if k not in ("Source", "Target", "Type")}
        attrs = {k: v for k, v in attrs.items() if v is not None}
        attrs["weight"] = float(attrs.pop("Weight"))
        graph.add_edge(row["Source"], row["Target"], **attrs)
    return graph


def export_gexf(data: GraphData, path: str | os.PathLike) -> Path:
    """Write the map as GEXF 1.3 to `path`; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    nx.write_gexf(to_gexf_graph(data), buffer, version="1.3")
    target.write_bytes(buffer.getvalue().replace(_BAD_XSI, _GOOD_XSI))
    logger.info("wrote %s", target)
    return target
