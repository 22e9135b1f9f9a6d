"""Neo4j import files: headers in neo4j-admin's format, parsed back, loaded into Kùzu."""

from __future__ import annotations

import csv
import os
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _graph_fixtures import write_planted_graph_dir  # noqa: E402

from twitchgraph.export.kuzu_db import export_kuzu  # noqa: E402
from twitchgraph.export.neo4j import NEO4J_FILES, export_neo4j  # noqa: E402
from twitchgraph.export.query import EXAMPLE_QUERIES, run_query  # noqa: E402
from twitchgraph.graph.communities import communities_for_dir  # noqa: E402
from twitchgraph.graphio import GraphData, read_graph_dir  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = tmp_path_factory.mktemp("neo")
    write_planted_graph_dir(path, communities=3, size=15, seed=2, evil_names=True)
    communities_for_dir(path, seed=0)
    data = read_graph_dir(path)
    return data, export_neo4j(data, path / "neo4j")


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return next(csv.reader(fh))


def test_headers_follow_neo4j_admin_format(exported):
    _, out = exported
    streamers = _header(out / "streamers.csv")
    assert streamers[0] == "login:ID(Streamer)" and streamers[-1] == ":LABEL"
    assert "viewer_mean:float" in streamers and "chatters_total:long" in streamers
    assert "social_links:string[]" in streamers and "community:long" in streamers
    games = _header(out / "games.csv")
    assert games[0] == "name:ID(Game)" and "genres:string[]" in games
    overlaps = _header(out / "overlaps.csv")
    assert overlaps[:2] == [":START_ID(Streamer)", ":END_ID(Streamer)"]
    assert overlaps[-1] == ":TYPE" and "overlap:float" in overlaps and "shared:long" in overlaps
    played = _header(out / "played.csv")
    assert played == [":START_ID(Streamer)", ":END_ID(Game)", "minutes_played:float", ":TYPE"]
    script = (out / "import.sh").read_text()
    assert "neo4j-admin database import full" in script
    assert "--nodes=Streamer=streamers.csv" in script and "--array-delimiter=';'" in script
    assert "--relationships=RAIDED=raids.csv" in script
    assert "--relationships=FLOWED_TO=flows.csv" in script
    assert _header(out / "raids.csv") == [":START_ID(Streamer)", ":END_ID(Streamer)",
                                          "raids:long", "viewers_total:long", ":TYPE"]
    assert sorted(p.name for p in out.iterdir()) == sorted(NEO4J_FILES)


_TYPED = re.compile(r"^(?P<name>[^:]*)(?::(?P<kind>[A-Za-z_\[\]]+)(?:\((?P<group>\w+)\))?)?$")


def _read_neo4j_csv(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Parse a neo4j-admin CSV back into plain columns, converting by the header's types."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    kinds: dict[str, str] = {}
    renamed = {}
    for column in frame.columns:
        m = _TYPED.match(column)
        assert m, column
        name, kind = m["name"], (m["kind"] or "string")
        key = name or kind  # ":LABEL" -> "LABEL", ":START_ID(Streamer)" -> "START_ID"
        renamed[column] = key
        kinds[key] = kind
        if kind == "float":
            frame[column] = pd.to_numeric(frame[column].replace("", None))
        elif kind == "long":
            frame[column] = pd.to_numeric(frame[column].replace("", None)).astype("Int64")
    return frame.rename(columns=renamed), kinds


def test_files_parse_back_to_the_same_data(exported):
    data, out = exported
    streamers, kinds = _read_neo4j_csv(out / "streamers.csv")
    assert set(streamers["LABEL"]) == {"Streamer"}
    assert streamers["login"].tolist() == data.logins
    assert streamers["name"].tolist() == data.streamers["Label"].tolist()  # incl. <script>
    assert streamers["viewer_mean"].tolist() == pytest.approx(data.streamers["viewer_mean"])
    assert streamers["community"].tolist() == data.streamers["community"].tolist()
    assert streamers["social_links"].tolist() == data.streamers["social_links"].tolist()
    overlaps, _ = _read_neo4j_csv(out / "overlaps.csv")
    assert set(overlaps["TYPE"]) == {"HAS_VIEWERSHIP_OVERLAPPED_WITH"}
    assert list(zip(overlaps["START_ID"], overlaps["END_ID"], strict=True)) == list(
        zip(data.edges["Source"], data.edges["Target"], strict=True))
    assert overlaps["overlap"].tolist() == pytest.approx(data.edges["overlap"].tolist())
    played, _ = _read_neo4j_csv(out / "played.csv")
    assert len(played) == len(data.played)
    raids, kinds = _read_neo4j_csv(out / "raids.csv")
    assert kinds["raids"] == "long" and kinds["viewers_total"] == "long"
    assert set(raids["TYPE"]) == {"RAIDED"} and len(raids) == len(data.raids) > 0
    assert list(zip(raids["START_ID"], raids["END_ID"], raids["raids"], raids["viewers_total"],
                    strict=True)) == list(zip(data.raids["Source"], data.raids["Target"],
                                              data.raids["raids"], data.raids["viewers_total"],
                                              strict=True))
    flows, kinds = _read_neo4j_csv(out / "flows.csv")
    assert kinds["viewers"] == "long" and kinds["ends"] == "long"
    assert set(flows["TYPE"]) == {"FLOWED_TO"} and len(flows) == len(data.flows) > 0
    assert list(zip(flows["START_ID"], flows["END_ID"], flows["viewers"], flows["ends"],
                    strict=True)) == list(zip(data.flows["Source"], data.flows["Target"],
                                              data.flows["viewers"], data.flows["ends"],
                                              strict=True))


def test_same_data_loaded_into_kuzu_answers_the_readme_queries_alike(exported, tmp_path):
    data, out = exported
    streamers, _ = _read_neo4j_csv(out / "streamers.csv")
    games, _ = _read_neo4j_csv(out / "games.csv")
    overlaps, _ = _read_neo4j_csv(out / "overlaps.csv")
    played, _ = _read_neo4j_csv(out / "played.csv")
    flows, _ = _read_neo4j_csv(out / "flows.csv")
    back = GraphData(
        streamers=streamers.rename(columns={"login": "Id", "name": "Label"}),
        edges=overlaps.rename(columns={"START_ID": "Source", "END_ID": "Target",
                                       "weight": "Weight"}),
        played=played.rename(columns={"START_ID": "Source", "END_ID": "Target"}),
        games=games.rename(columns={"name": "Id"}),
        flows=flows.rename(columns={"START_ID": "Source", "END_ID": "Target"}),
    )
    export_kuzu(back, tmp_path / "from_neo4j")
    export_kuzu(data, tmp_path / "direct")
    login = data.logins[0]
    game = data.played["Target"].iloc[0]
    for name, (_, cypher, defaults) in EXAMPLE_QUERIES.items():
        params = {**defaults, "login": login, "game": game, "genre": "Adventure",
                  "min_overlap": 10}
        params = {k: v for k, v in params.items() if f"${k}" in cypher}
        a = run_query(tmp_path / "from_neo4j", cypher, params)
        b = run_query(tmp_path / "direct", cypher, params)
        assert a.rows == b.rows, name
        assert a.rows, name


def _statements(text: str) -> list[str]:
    body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("//"))
    return [s.strip() for s in body.split(";") if s.strip()]


def test_load_cypher_uses_constraints_merge_and_parameters(exported):
    _, out = exported
    statements = _statements((out / "load.cypher").read_text())
    assert sum(s.startswith("CREATE CONSTRAINT") for s in statements) == 2
    loads = [s for s in statements if s.startswith("LOAD CSV")]
    assert len(loads) == 6
    assert any("raids.csv" in s and "MERGE (a)-[r:RAIDED]->(b)" in s for s in loads)
    assert any("flows.csv" in s and "MERGE (a)-[r:FLOWED_TO]->(b)" in s for s in loads)
    for statement in loads:
        assert "$base +" in statement and "MERGE" in statement
        file = re.search(r"\$base \+ '([^']+)'", statement)[1]
        header = set(_header(out / file))
        # Every column the statement reads exists in that file's header.
        for column in re.findall(r"row\.`([^`]+)`", statement):
            assert column in header, (file, column)


def test_queries_cypher_holds_the_readme_queries_and_they_run(exported, tmp_path):
    data, out = exported
    statements = _statements((out / "queries.cypher").read_text())
    assert statements == [q.strip() for _, q, _ in EXAMPLE_QUERIES.values()]
    export_kuzu(data, tmp_path)
    for statement, (_, _, defaults) in zip(statements, EXAMPLE_QUERIES.values(), strict=True):
        params = {**defaults, "login": data.logins[0], "game": "Game 0-0"}
        params = {k: v for k, v in params.items() if f"${k}" in statement}
        run_query(tmp_path, statement, params)  # parses, binds and runs


@pytest.mark.skipif(not os.environ.get("NEO4J_URI"), reason="NEO4J_URI is not set")
def test_load_cypher_against_a_real_server(exported):
    neo4j = pytest.importorskip("neo4j", reason="the neo4j driver is not installed")
    data, out = exported
    auth = (os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD", "neo4j"))
    base = os.environ.get("NEO4J_IMPORT_URL", "file:///")  # where the server sees `out`
    with neo4j.GraphDatabase.driver(os.environ["NEO4J_URI"], auth=auth) as driver:
        with driver.session() as session:
            for statement in _statements((out / "load.cypher").read_text()):
                session.run(statement, base=base).consume()
            count = session.run("MATCH (s:Streamer) RETURN count(s) AS n").single()["n"]
            assert count >= len(data.streamers)
