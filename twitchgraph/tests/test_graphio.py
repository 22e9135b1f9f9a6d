"""GRAPH_DIR reading and writing: string logins, dangling edges, column order, conversions."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _graph_fixtures import write_planted_graph_dir  # noqa: E402

from twitchgraph.graphio import (  # noqa: E402
    GraphDirError,
    read_graph_dir,
    to_igraph,
    to_networkx,
    undirected_edges,
    write_streamers,
)


def test_number_like_and_nan_like_logins_stay_strings(tmp_path):
    write_planted_graph_dir(tmp_path, communities=2, size=4)
    streamers = pd.read_csv(tmp_path / "streamers.csv", dtype=str, keep_default_na=False)
    streamers.loc[0, ["Id", "login"]] = "0123"
    streamers.loc[1, ["Id", "login", "Label"]] = "nan"
    streamers.to_csv(tmp_path / "streamers.csv", index=False)
    data = read_graph_dir(tmp_path)
    assert data.logins[:2] == ["0123", "nan"]
    assert data.streamers["viewer_mean"].dtype.kind == "f"


def test_dangling_edges_are_dropped(tmp_path):
    write_planted_graph_dir(tmp_path, communities=2, size=4)
    edges = pd.read_csv(tmp_path / "edges.csv")
    extra = edges.iloc[:1].assign(Target="ghost")
    pd.concat([edges, extra]).to_csv(tmp_path / "edges.csv", index=False)
    assert len(read_graph_dir(tmp_path).edges) == len(edges)


def test_missing_and_malformed_dirs_say_what_to_do(tmp_path):
    with pytest.raises(GraphDirError, match="twitchgraph build"):
        read_graph_dir(tmp_path / "nope")
    tmp_path.joinpath("streamers.csv").write_text("Id,Label\na,A\n")
    tmp_path.joinpath("edges.csv").write_text("Source,Target,Weight\n")
    with pytest.raises(GraphDirError, match="lacks columns"):
        read_graph_dir(tmp_path)


def test_write_streamers_keeps_build_columns_first(tmp_path):
    write_planted_graph_dir(tmp_path, communities=2, size=4)
    data = read_graph_dir(tmp_path)
    streamers = data.streamers.assign(size=1.0, community=0, extra="e", x=0.0, y=0.0)
    write_streamers(tmp_path, streamers)
    columns = list(pd.read_csv(tmp_path / "streamers.csv").columns)
    n = len(data.streamers.columns)  # the build's columns, the end figures included
    assert columns[:n] == list(data.streamers.columns) and columns[n - 1] == "end_retained"
    assert columns[n:] == ["community", "x", "y", "size", "extra"]


def test_undirected_collapse_and_graph_conversions():
    edges = pd.DataFrame({"Source": ["a", "b", "a", "c"], "Target": ["b", "a", "a", "a"],
                          "Weight": [10.0, 30.0, 5.0, 20.0]})
    und = undirected_edges(edges)
    assert und.values.tolist() == [["a", "b", 30.0], ["a", "c", 20.0]]  # max kept, loop gone
    from twitchgraph.graphio import GraphData

    data = GraphData(streamers=pd.DataFrame({"Id": ["a", "b", "c"], "Label": list("ABC")}),
                     edges=edges)
    ig_graph = to_igraph(data)
    assert ig_graph.vs["name"] == ["a", "b", "c"] and ig_graph.ecount() == 2
    assert sorted(ig_graph.es["weight"]) == [20.0, 30.0]
    nx_graph = to_networkx(data)
    assert nx_graph["a"]["b"]["weight"] == 30.0 and nx_graph.nodes["c"]["Label"] == "C"
    assert to_networkx(data, directed=True).number_of_edges() == 4
