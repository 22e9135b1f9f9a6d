"""GEXF 1.3 export: read back with networkx and checked as XML."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _graph_fixtures import write_planted_graph_dir  # noqa: E402

from twitchgraph.export import community_colors  # noqa: E402
from twitchgraph.export.gexf import export_gexf  # noqa: E402
from twitchgraph.graph.communities import communities_for_dir  # noqa: E402
from twitchgraph.graph.layout import layout_for_dir  # noqa: E402
from twitchgraph.graphio import read_graph_dir  # noqa: E402

NS = {"g": "http://gexf.net/1.3", "viz": "http://gexf.net/1.3/viz"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = tmp_path_factory.mktemp("gexf")
    write_planted_graph_dir(path, communities=3, size=12, seed=1, evil_names=True)
    communities_for_dir(path, seed=0)
    layout_for_dir(path, iterations=50, seed=0)
    data = read_graph_dir(path)
    return data, export_gexf(data, path / "graph.gexf")


def test_networkx_reads_nodes_edges_and_attributes(exported):
    data, path = exported
    graph = nx.read_gexf(path)
    assert graph.is_directed()
    assert graph.number_of_nodes() == len(data.streamers)
    assert len(data.raids) > 0
    assert len(data.flows) > 0
    assert graph.number_of_edges() == len(data.edges) + len(data.raids) + len(data.flows)
    kinds = {}
    for source, target, attrs in graph.edges(data=True):
        kinds.setdefault(attrs["kind"], []).append((source, target, attrs))
    assert len(kinds["overlap"]) == len(data.edges) and len(kinds["raid"]) == len(data.raids)
    raid = data.raids.iloc[0]
    (got,) = [a for s, t, a in kinds["raid"] if (s, t) == (raid["Source"], raid["Target"])]
    assert got["raids"] == raid["raids"] and got["viewers_total"] == raid["viewers_total"]
    assert got["weight"] == raid["raids"] and got["first_at"] == raid["first_at"]
    assert len(kinds["flow"]) == len(data.flows)
    flow = data.flows.iloc[0]
    (got,) = [a for s, t, a in kinds["flow"] if (s, t) == (flow["Source"], flow["Target"])]
    assert (got["viewers"], got["ends"], got["weight"]) == (flow["viewers"], flow["ends"],
                                                            flow["viewers"])
    assert got["last_at"] == flow["last_at"]
    row = data.streamers.iloc[0]
    node = graph.nodes[row["Id"]]
    assert node["label"] == row["Label"]  # hostile label survives as text
    assert node["viewer_mean"] == pytest.approx(row["viewer_mean"])
    assert node["social_links"] == row["social_links"]
    assert node["main_game"] == row["main_game"] and node["community"] == row["community"]
    assert node["viz"]["position"]["x"] == pytest.approx(row["x"])
    assert node["viz"]["size"] == pytest.approx(row["size"])
    edge = data.edges.iloc[0]
    (attrs,) = [a for s, t, a in kinds["overlap"] if (s, t) == (edge["Source"], edge["Target"])]
    assert attrs["weight"] == pytest.approx(edge["Weight"])
    assert attrs["shared"] == edge["shared"] and attrs["jaccard"] == pytest.approx(edge["jaccard"])


def test_xml_is_gexf_1_3_with_viz_colour_by_community(exported):
    data, path = exported
    root = ET.parse(path).getroot()
    assert root.tag == "{http://gexf.net/1.3}gexf" and root.get("version") == "1.3"
    assert "http://www.w3.org/2001/XMLSchema-instance" in path.read_text()
    colors = community_colors(int(data.streamers["community"].max()) + 1)
    community = data.streamers.set_index("Id")["community"]
    nodes = root.findall("g:graph/g:nodes/g:node", NS)
    assert len(nodes) == len(data.streamers)
    for node in nodes:
        color = node.find("viz:color", NS)
        rgb = "#{:02x}{:02x}{:02x}".format(*(int(color.get(c)) for c in "rgb"))
        assert rgb == colors[community[node.get("id")]]
        assert node.find("viz:position", NS) is not None and node.find("viz:size", NS) is not None
    titles = {a.get("title") for a in root.findall("g:graph/g:attributes/g:attribute", NS)}
    assert {"viewer_mean", "chatters_total", "social_links", "community", "overlap"} <= titles


def test_refuses_a_graph_without_layout(tmp_path):
    write_planted_graph_dir(tmp_path, communities=2, size=5)
    communities_for_dir(tmp_path)
    with pytest.raises(ValueError, match="twitchgraph layout"):
        export_gexf(read_graph_dir(tmp_path), tmp_path / "g.gexf")


def test_control_characters_and_missing_values_keep_the_xml_valid(exported, tmp_path):
    data, _ = exported
    data = type(data)(streamers=data.streamers.copy(), edges=data.edges.copy())
    data.streamers.loc[3, "Label"] = "bell\x07 & <tag> \"quoted\""
    data.streamers["viewer_peak"] = data.streamers["viewer_peak"].astype(float)
    data.streamers.loc[4, "viewer_peak"] = float("nan")
    path = export_gexf(data, tmp_path / "g.gexf")
    ET.parse(path)  # well-formed
    graph = nx.read_gexf(path)
    assert graph.nodes[data.streamers.loc[3, "Id"]]["label"] == 'bell & <tag> "quoted"'
    assert "viewer_peak" not in graph.nodes[data.streamers.loc[4, "Id"]]


def test_a_failed_export_leaves_no_partial_file(exported, tmp_path):
    data, _ = exported
    data = type(data)(streamers=data.streamers.copy(), edges=data.edges.astype({"Weight": object}))
    data.edges.loc[len(data.edges) - 1, "Weight"] = "heavy"  # fails after the nodes are written
    with pytest.raises(ValueError):
        export_gexf(data, tmp_path / "g.gexf")
    assert list(tmp_path.iterdir()) == []
