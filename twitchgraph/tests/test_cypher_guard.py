"""`query` is read-only in fact: the guard's verdicts, and a seeded fuzz run against Kùzu."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _graph_fixtures import write_planted_graph_dir  # noqa: E402

from twitchgraph.export.cypher_guard import (  # noqa: E402
    MAX_DEPTH,
    QueryRefused,
    check_query,
    tokenize,
)
from twitchgraph.export.kuzu_db import export_kuzu  # noqa: E402
from twitchgraph.export.query import EXAMPLE_QUERIES  # noqa: E402
from twitchgraph.graphio import read_graph_dir  # noqa: E402

ACCEPTED = [
    "MATCH (s:Streamer) RETURN count(s)",
    "MATCH (s:Streamer) RETURN count(s);",
    "MATCH (s:Streamer) RETURN count(s); // done",
    "RETURN 'a;b'",
    'RETURN "COPY (x) TO \'/tmp/x\'; INSTALL httpfs"',
    "RETURN 1 /* ; COPY */",
    "RETURN 1 AS `LOAD; x`",
    "RETURN 'it\\'s; \\u00e9'",
    "CALL show_tables() RETURN *",
    "call TABLE_INFO('Streamer') RETURN *",
    "MATCH (s:Streamer) WHERE s.login ENDS WITH 'a' RETURN CASE WHEN true THEN 1 END",
    "PROFILE MATCH (s:Streamer) RETURN count(s)",
    # Kùzu reads all of '/* a **/ COPY … /* */' as one comment (checked against Kùzu 0.11.3).
    "RETURN 1 /* a **/ COPY (RETURN 1) TO '/tmp/x.csv' /* */",
]

REFUSED = {
    "MATCH (s:Streamer) RETURN count(s); MATCH (s:Streamer) RETURN count(s)": "second statement",
    "RETURN 'a;b'; RETURN 1": "second statement",
    "RETURN 1;;": "second statement",
    "RETURN 1 /* x */ ; /* y */ RETURN 2": "second statement",
    "COPY (MATCH (s:Streamer) RETURN s.login) TO '/tmp/x.csv'": "COPY",
    "copy (MATCH (s:Streamer) RETURN s.login) TO '/tmp/x.csv'": "COPY",
    "INSTALL httpfs": "INSTALL",
    "LOAD EXTENSION httpfs": "LOAD",
    "LOAD FROM '/etc/passwd' RETURN *": "LOAD",
    "ATTACH '/tmp/other.kuzu' AS o (dbtype kuzu)": "ATTACH",
    "EXPORT DATABASE '/tmp/dump'": "EXPORT",
    "IMPORT DATABASE '/tmp/dump'": "IMPORT",
    "CREATE (s:Streamer {login: 'x'})": "CREATE",
    "MATCH (s:Streamer) SET s.name = 'x'": "SET",
    "MATCH (s:Streamer) DETACH DELETE s": "DETACH",
    "CALL current_setting('home_directory') RETURN *": "CALL is allowed only",
    "CALL home_directory = '/tmp'": "CALL is allowed only",
    "CALL show_tables RETURN *": "CALL is allowed only",
    "RETURN $login": "$login but no --param login",
    "RETURN 'x' /* unterminated": "unterminated /* comment",
    "RETURN 'x": "unterminated string",
    "RETURN `x": "unterminated `name`",
    "RETURN 'a\\z; COPY'": "escape",
    # Kùzu's comment rule reads '**/' as inside the comment: the comment ends at the next '*/'.
    "RETURN 1 /* a **/ */ COPY (RETURN 1) TO '/tmp/x.csv'": "COPY",
    "RETURN 1 /* a **/ + 2": "unterminated /* comment",
    "RETURN " + "[" * (MAX_DEPTH + 1) + "1" + "]" * (MAX_DEPTH + 1): "deeper than",
    "RETURN " + "CASE WHEN true THEN " * 30 + "1" + " END" * 30: "CASE deeper than",
    "RETURN " + "1+" * 3000 + "1": "tokens",
    "  // only a comment": "empty",
}


@pytest.mark.parametrize("cypher", ACCEPTED)
def test_read_only_single_statements_pass(cypher):
    check_query(cypher)


@pytest.mark.parametrize(("cypher", "reason"), REFUSED.items())
def test_dangerous_or_broken_queries_are_refused_with_a_reason(cypher, reason):
    with pytest.raises(QueryRefused) as info:
        check_query(cypher)
    assert reason in str(info.value) and "\n" not in str(info.value)


def test_readme_queries_pass_with_their_parameters():
    for _, cypher, params in EXAMPLE_QUERIES.values():
        check_query(cypher, params)


def test_parameters_must_match_both_ways():
    check_query("RETURN $a, $`b c`, $1", ["a", "b c", "1"])
    with pytest.raises(QueryRefused, match=r"uses \$b but no --param b="):
        check_query("RETURN $a, $b", ["a"])
    with pytest.raises(QueryRefused, match="--param c is not used"):
        check_query("RETURN $a", ["a", "c"])
    check_query("RETURN '$a'")  # a dollar inside a string is not a parameter


def test_tokens_keep_strings_names_and_comments_whole():
    tokens = tokenize("MATCH (s) // c ; COPY\nRETURN \"x\\\"; y\" AS `a``b`, $p /* **/ */")
    assert [(t.kind, t.text) for t in tokens][-6:] == [
        ("word", "RETURN"), ("string", '"x\\"; y"'), ("word", "AS"), ("name", "`a``b`"),
        ("symbol", ","), ("param", "$p")]


# -- fuzz ------------------------------------------------------------------------------------

# Runs in its own process, so a crash in Kùzu shows as an exit code instead of killing pytest;
# it names each query on stderr before running it.
_RUNNER = """
import json, sys
from twitchgraph.export.query import QueryRefused, run_query
graph, cases = sys.argv[1], json.load(open(sys.argv[2], encoding="utf-8"))
outcomes = []
for i, (cypher, params) in enumerate(cases):
    print(i, repr(cypher)[:300], file=sys.stderr, flush=True)
    try:
        run_query(graph, cypher, params)
        outcomes.append("ran")
    except QueryRefused:
        outcomes.append("refused")
    except RuntimeError:
        outcomes.append("kuzu error")
json.dump(outcomes, sys.stdout)
"""

_VOCAB = [
    "MATCH", "RETURN", "WHERE", "WITH", "UNWIND", "OPTIONAL", "AS", "LIMIT", "ORDER BY",
    "count(*)", "(s:Streamer)", "(g:Game)", "-[r:HAS_VIEWERSHIP_OVERLAPPED_WITH]-",
    "-[p:PLAYED]->", "s.login", "r.overlap", "1", "2.5", "'it'", "\"x\"", "true", "null",
    "CASE", "WHEN", "THEN", "END", "EXISTS {", "}", "(", ")", "[", "]", "{", ",", ":", ".",
    "=", "<>", "+", "-", "*", "/", "$login", "$x", ";", "'", "\"", "`", "/*", "*/", "//",
    "\n", "\\", "COPY", "TO", "FROM", "LOAD", "INSTALL", "ATTACH", "EXPORT", "DATABASE",
    "CALL", "show_tables()", "current_setting('home_directory')", "httpfs", "EXPLAIN",
    "PROFILE", "é", "中文", "\u00a0", "\u2028", "\u180e", "🎮", "\x00", "\x1f", "$", "$`x`",
]


def _hostile(outside: Path) -> list[str]:
    target = str(outside / "leak.csv")
    copy = f"COPY (MATCH (s:Streamer) RETURN s.login) TO '{target}'"
    return [
        copy, copy.lower(), f"PROFILE {copy}", f"EXPLAIN {copy}",
        f"MATCH (s:Streamer) RETURN count(s); {copy}",
        f"MATCH (s:Streamer) RETURN count(s) /* x */;\n{copy}",
        f"RETURN 1 /* a **/ */ {copy}", f"RETURN 'a\\z'; {copy}; RETURN '",
        f"RETURN 1//\r{copy}", f"RETURN 1\u2028;\u2028{copy}",
        "INSTALL httpfs", "LOAD EXTENSION httpfs", "LOAD httpfs",
        f"LOAD FROM '{outside / 'x.csv'}' RETURN *",
        "LOAD FROM 'http://127.0.0.1:9/x.csv' RETURN *",
        f"EXPORT DATABASE '{outside / 'dump'}'", f"IMPORT DATABASE '{outside / 'dump'}'",
        f"ATTACH '{outside / 'other.kuzu'}' AS o (dbtype kuzu)",
        f"CALL home_directory = '{outside}'", f"CALL file_search_path = '{outside}'",
        f"CALL spill_to_disk_tmp_file = '{outside / 'spill'}'",
        "CREATE NODE TABLE T(id INT64 PRIMARY KEY)", "CHECKPOINT", "BEGIN TRANSACTION",
        "MATCH (s:Streamer) RETURN count(s); MATCH (s:Streamer) RETURN count(s)",
        "RETURN " + "[" * 1000 + "1" + "]" * 1000,
        "RETURN " + "CASE WHEN true THEN " * 25 + "1" + " END" * 25,
        "RETURN $login", "MATCH (s:Streamer {login: $login}) RETURN s",
    ]


_BASES = [
    "MATCH (s:Streamer) RETURN s.login, s.community ORDER BY s.login LIMIT 3",
    "MATCH (s:Streamer {login: $login})-[r:HAS_VIEWERSHIP_OVERLAPPED_WITH]-(n:Streamer) "
    "RETURN n.login, r.overlap",
    "MATCH (s:Streamer)-[p:PLAYED]->(g:Game) WHERE 'Shooter' IN g.genres "
    "RETURN g.name, sum(p.minutes_played)",
    "UNWIND [1, 2, $x] AS i RETURN i * 2, CASE WHEN i > 1 THEN 'big' ELSE 'small' END",
]


def _random_queries(rng: random.Random, count: int) -> list[str]:
    """Token soups, and valid queries with a few random edits (some stay valid)."""
    queries = []
    for _ in range(count):
        if rng.random() < 0.5:
            words = rng.choices(_VOCAB, k=rng.randint(1, 25))
        else:
            words = rng.choice(_BASES).split(" ")
            for _ in range(rng.choice([0, 0, 1, 2, 3])):
                at = rng.randrange(len(words) + 1)
                if rng.random() < 0.5:
                    words.insert(at, rng.choice(_VOCAB))
                else:
                    del words[at - 1 : at]
        glue = rng.choice([" ", " ", "\n", " /**/ ", "\t"])
        queries.append(glue.join(words))
    return queries


@pytest.fixture(scope="module")
def fuzz_graph(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    graph = root / "graph"
    graph.mkdir()
    write_planted_graph_dir(graph, communities=2, size=5, seed=3)
    export_kuzu(read_graph_dir(graph), graph)
    return root, graph


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.slow
def test_fuzzed_and_hostile_queries_never_crash_or_write(fuzz_graph):
    root, graph = fuzz_graph
    outside, home = root / "outside", root / "home"
    outside.mkdir()
    home.mkdir()
    hostile = _hostile(outside)
    rng = random.Random(12)
    cases = [(q, {}) for q in hostile + _random_queries(rng, 300)]
    cases += [(q, {"login": "streamer_0_000", "x": 1}) for q in _random_queries(rng, 60)]
    cases_file = root / "cases.json"
    cases_file.write_text(json.dumps(cases), encoding="utf-8")
    # Matplotlib (imported with the export package) keeps its font cache apart.
    mpl = root / "mplconfig"
    mpl.mkdir()
    before = _files(root) - _files(graph) - _files(mpl)
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(outside), "MPLCONFIGDIR": str(mpl)}
    proc = subprocess.run([sys.executable, "-c", _RUNNER, str(graph), str(cases_file)],
                          capture_output=True, text=True, cwd=outside, env=env, timeout=600)
    last = proc.stderr.strip().splitlines()[-1:] if proc.stderr else []
    assert proc.returncode == 0, f"exit {proc.returncode} after query {last}"
    outcomes = json.loads(proc.stdout)
    assert len(outcomes) == len(cases)
    assert outcomes[: len(hostile)] == ["refused"] * len(hostile)
    assert "ran" in outcomes[len(hostile):]  # the random queries do reach Kùzu sometimes
    after = _files(root) - _files(graph) - _files(mpl)
    assert after == before, f"a query wrote outside the graph folder: {after - before}"
