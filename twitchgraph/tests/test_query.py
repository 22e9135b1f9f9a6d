"""`twitchgraph query`: parameters, results, and the docs' example queries run as written."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _graph_fixtures import write_planted_graph_dir  # noqa: E402

from twitchgraph.cli import app  # noqa: E402
from twitchgraph.export.kuzu_db import export_kuzu  # noqa: E402
from twitchgraph.export.query import EXAMPLE_QUERIES, parse_params, run_query  # noqa: E402
from twitchgraph.graph.communities import communities_for_dir  # noqa: E402
from twitchgraph.graphio import read_graph_dir  # noqa: E402

# The user guide's page on querying shows the example queries as commands to copy.
QUERYING = Path(__file__).resolve().parents[2] / "docs" / "twitchgraph" / "guide" / "querying.md"


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("q")
    write_planted_graph_dir(path, communities=3, size=15, seed=8)
    communities_for_dir(path, seed=0)
    export_kuzu(read_graph_dir(path), path)
    return path


def test_parse_params_types():
    params = parse_params(["a=5", "b=2.5", "c=true", "d=zeta", "e:str=007", "f=[1, 2]",
                           "g=null", "h=x=y", "i=-3", "j=.5"])
    assert params == {"a": 5, "b": 2.5, "c": "true", "d": "zeta", "e": "007", "f": [1, 2],
                      "g": "null", "h": "x=y", "i": -3, "j": 0.5}
    for bad in ("novalue", "=5", "1a=3", "a:date=3", "a:int=3.5", "a:bool=yes",
                "a=99999999999999999999", "a:json={"):
        with pytest.raises(ValueError):
            parse_params([bad])


@pytest.mark.parametrize(("pair", "value"), [
    # issue 27: these silently matched nothing as a float, NULL or a bool
    ("login=infinity", "infinity"), ("login=inf", "inf"), ("login=nan", "nan"),
    ("login=NaN", "NaN"), ("login=null", "null"), ("login=true", "true"),
    ("login=False", "False"), ("login=1e3", "1e3"), ("login=0x10", "0x10"),
    ("login=1_000", "1_000"), ("login=²", "²"), ("login=٣", "٣"), ("login= 5", " 5"),
    ("login={}", "{}"),
    # the README's --param min_overlap=50 keeps working: plain decimals are numbers
    ("min_overlap=50", 50), ("x=+7", 7), ("x=2.", 2.0), ("x=9223372036854775807", 2**63 - 1),
    # and a type asks for the rest
    ("x:float=infinity", float("inf")), ("x:float=1e3", 1000.0), ("x:int= 12", 12),
    ("x:bool=TRUE", True), ("x:json=null", None), ("x:str=50", "50"),
])
def test_a_param_is_a_number_only_when_written_as_a_plain_decimal(pair, value):
    (got,) = parse_params([pair]).values()
    assert got == value and type(got) is type(value)


def test_a_word_param_reaches_the_query_as_a_string(graph_dir):
    from twitchgraph.export.query import run_query

    rows = run_query(graph_dir, "RETURN $login AS v", parse_params(["login=infinity"])).rows
    assert rows == [["infinity"]]


def test_run_query_returns_columns_rows_and_lists(graph_dir):
    result = run_query(graph_dir, "MATCH (g:Game) WHERE $genre IN g.genres "
                       "RETURN g.name AS name, g.genres AS genres ORDER BY name",
                       {"genre": "Shooter"})
    assert result.columns == ["name", "genres"]
    assert result.rows and all("Shooter" in genres for _, genres in result.rows)
    assert result.records()[0]["name"] == result.rows[0][0]


def test_number_like_login_stays_a_string(tmp_path):
    write_planted_graph_dir(tmp_path, communities=2, size=4)
    data = read_graph_dir(tmp_path)
    data.streamers.loc[0, ["Id", "login"]] = "007"
    data.edges.loc[data.edges["Source"] == "streamer_0_000", "Source"] = "007"
    data.edges.loc[data.edges["Target"] == "streamer_0_000", "Target"] = "007"
    export_kuzu(data, tmp_path)
    rows = run_query(tmp_path, "MATCH (s:Streamer {login: $l}) RETURN s.login",
                     parse_params(["l:str=007"])).rows
    assert rows == [["007"]]


def _documented_commands() -> list[list[str]]:
    text = QUERYING.read_text(encoding="utf-8")
    section = text.split("## Example queries", 1)[1]
    blocks = re.findall(r"```\n(twitchgraph query .*?)\n```", section, re.DOTALL)
    # bash turns \$ and \` into $ and ` inside double quotes; shlex leaves them, so do it here.
    return [[arg.replace("\\$", "$").replace("\\`", "`") for arg in shlex.split(block)]
            for block in blocks]


def test_docs_show_the_five_queries():
    commands = _documented_commands()
    assert len(commands) == 5
    assert [c[3] for c in commands] == [q for _, q, _ in EXAMPLE_QUERIES.values()]


def test_documented_queries_run_and_answer(graph_dir):
    data = read_graph_dir(graph_dir)
    edges = data.edges
    busy = edges[edges["overlap"] > 50]["Source"].value_counts().index[0]
    substitutions = {"login=some_login": f"login={busy}",
                     "game=Just Chatting": "game=Game 1-0"}
    for command in _documented_commands():
        args = [substitutions.get(a, a) for a in command[1:]]
        args[1] = str(graph_dir)
        result = CliRunner().invoke(app, [*args, "--json"])
        assert result.exit_code == 0, (args, result.output)
        assert json.loads(result.output), args
