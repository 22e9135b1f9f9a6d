"""The graph commands through Typer's test runner: exit codes and messages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _graph_fixtures import write_planted_graph_dir  # noqa: E402

from twitchgraph.cli import app  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli")
    write_planted_graph_dir(path, communities=3, size=12, seed=6)
    return path


def test_pipeline_communities_layout_export_query(graph_dir):
    result = runner.invoke(app, ["communities", str(graph_dir), "--resolution", "0.7",
                                 "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "Q = 0." in result.output and "communities.csv" in result.output
    assert "community" in pd.read_csv(graph_dir / "streamers.csv").columns

    result = runner.invoke(app, ["layout", str(graph_dir), "--iterations", "40", "--linlog"])
    assert result.exit_code == 0, result.output
    assert "laid out 36 streamers" in result.output

    result = runner.invoke(app, ["export", str(graph_dir), "--to", "all"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert [line.split(":")[0] for line in lines] == ["db", "neo4j", "gexf", "png", "html"]
    for name in ("graph.kuzu", "graph.gexf", "graph.png", "map.html", "neo4j/load.cypher"):
        assert (graph_dir / name).exists(), name

    login = "streamer_1_003"
    cypher = ("MATCH (s:Streamer {login: $login})-[r:HAS_VIEWERSHIP_OVERLAPPED_WITH]-"
              "(n:Streamer) RETURN n.login AS login, r.overlap AS overlap "
              "ORDER BY overlap DESC")
    result = runner.invoke(app, ["query", str(graph_dir), cypher, "--param", f"login={login}",
                                 "--json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    edges = pd.read_csv(graph_dir / "edges.csv")
    mine = edges[(edges.Source == login) | (edges.Target == login)]
    assert len(records) == len(mine) > 0
    assert [r["overlap"] for r in records] == sorted(mine["overlap"], reverse=True)

    result = runner.invoke(app, ["query", str(graph_dir), cypher, "-p", f"login={login}"])
    assert result.exit_code == 0 and f"{len(mine)} rows" in result.output


def test_query_errors_are_one_line(graph_dir, tmp_path):
    result = runner.invoke(app, ["query", str(tmp_path), "RETURN 1"])
    assert result.exit_code == 1 and "--to db" in result.output
    runner.invoke(app, ["export", str(graph_dir), "--to", "db"])
    result = runner.invoke(app, ["query", str(graph_dir), "MATCH (s:Nope) RETURN s"])
    assert result.exit_code == 1 and result.output.startswith("error: query failed")
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["query", str(graph_dir), "RETURN $x", "--param", "x"])
    assert result.exit_code == 1 and "name=value" in result.output


def test_export_errors(graph_dir, tmp_path):
    result = runner.invoke(app, ["export", str(graph_dir), "--to", "svg"])
    assert result.exit_code == 1 and "unknown export 'svg'" in result.output
    # "all" beside an unknown target still refuses it, before exporting anything.
    result = runner.invoke(app, ["export", str(graph_dir), "--to", "all,svg",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "unknown export 'svg'" in result.output
    assert not (tmp_path / "out").exists()
    (tmp_path / "taken").write_text("a file, not a folder")
    result = runner.invoke(app, ["export", str(graph_dir), "--to", "neo4j",
                                 "--out", str(tmp_path / "taken")])
    assert result.exit_code == 1, result.output
    assert f"cannot write the export to {tmp_path / 'taken'}" in result.output.replace("\n", "")
    write_planted_graph_dir(tmp_path / "raw", communities=2, size=5)
    result = runner.invoke(app, ["export", str(tmp_path / "raw"), "--to", "html"])
    assert result.exit_code == 1
    assert "twitchgraph communities" in result.output and "twitchgraph layout" in result.output


def test_missing_graph_dir(tmp_path):
    result = runner.invoke(app, ["communities", str(tmp_path / "none")])
    assert result.exit_code == 1 and "twitchgraph build" in result.output
    result = runner.invoke(app, ["layout", str(tmp_path / "none")])
    assert result.exit_code == 1 and "twitchgraph build" in result.output


def test_bad_options(graph_dir):
    result = runner.invoke(app, ["communities", str(graph_dir), "--resolution", "0"])
    assert result.exit_code == 1 and "resolution" in result.output
    result = runner.invoke(app, ["layout", str(graph_dir), "--engine", "gephi"])
    assert result.exit_code == 1 and "engine" in result.output


def test_query_notes_a_database_older_than_the_tables(graph_dir):
    import os
    import time

    runner.invoke(app, ["export", str(graph_dir), "--to", "db"])
    later = time.time() + 5
    os.utime(graph_dir / "streamers.csv", (later, later))
    result = runner.invoke(app, ["query", str(graph_dir), "MATCH (s:Streamer) RETURN count(*)"])
    assert result.exit_code == 0 and "is newer than" in result.output


def test_names_with_brackets_print_as_text(tmp_path):
    # Twitch game names may hold brackets; "[/b]" must not be read as rich markup.
    graph = tmp_path / "graph"
    write_planted_graph_dir(graph, communities=2, size=8, seed=2)
    streamers = pd.read_csv(graph / "streamers.csv", dtype=str, keep_default_na=False)
    streamers["main_game"] = "[/b] Beta [bold]"
    streamers.to_csv(graph / "streamers.csv", index=False)
    result = runner.invoke(app, ["communities", str(graph)])
    assert result.exit_code == 0, result.output
    assert "[/b] Beta [bold]" in result.output

    missing = tmp_path / "[/x]"
    result = runner.invoke(app, ["communities", str(missing)])
    assert result.exit_code == 1
    assert f"error: {missing} is not a directory" in result.output.replace("\n", "")
