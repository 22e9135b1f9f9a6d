"""`twitchgraph query GRAPH_DIR "CYPHER"`: run Cypher on the embedded database of a GRAPH_DIR.

Values reach the query only as Cypher parameters (``$name``), never pasted into its text, so
a login such as ``x' OR 1=1`` is just a string to compare with.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any

from twitchgraph.errors import BadValue, TwitchgraphError
from twitchgraph.export.cypher_guard import QueryRefused, check_query
from twitchgraph.export.kuzu_db import connect

__all__ = ["QueryFailed", "QueryRefused", "QueryResult", "EXAMPLE_QUERIES", "parse_params",
           "run_query"]


# The example queries: shown as commands in docs/twitchgraph/guide/querying.md, written to
# queries.cypher (Neo4j), and run by the tests against both.
# Kùzu 0.11.3 returns NULL for an aggregate that follows a DISTINCT aggregate in the same
# RETURN (e.g. `count(DISTINCT s), sum(x)`), so DISTINCT aggregates come last.
EXAMPLE_QUERIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "neighbours": (
        "A streamer's neighbours with overlap > 50, strongest first",
        "MATCH (s:Streamer {login: $login})-[r:HAS_VIEWERSHIP_OVERLAPPED_WITH]-(n:Streamer)\n"
        "WHERE r.overlap > $min_overlap\n"
        "RETURN n.login AS login, n.name AS name, r.overlap AS overlap\n"
        "ORDER BY overlap DESC, login",
        {"login": "", "min_overlap": 50},
    ),
    "genre_minutes": (
        "Minutes played on games of a genre, per game",
        "MATCH (s:Streamer)-[p:PLAYED]->(g:Game)\n"
        "WHERE $genre IN g.genres\n"
        "RETURN g.name AS game, sum(p.minutes_played) AS minutes, count(DISTINCT s) AS streamers\n"
        "ORDER BY minutes DESC, game",
        {"genre": "Shooter"},
    ),
    "game_communities": (
        "The communities a game's players fall in",
        "MATCH (s:Streamer)-[p:PLAYED]->(g:Game {name: $game})\n"
        "RETURN s.community AS community, sum(p.minutes_played) AS minutes, count(s) AS streamers\n"
        "ORDER BY minutes DESC, community",
        {"game": ""},
    ),
    "recommendations": (
        "Two-hop recommendations: streamers your viewers also watch, that you share no edge with",
        "MATCH (me:Streamer {login: $login})-[r1:HAS_VIEWERSHIP_OVERLAPPED_WITH]-(mid:Streamer)"
        "-[r2:HAS_VIEWERSHIP_OVERLAPPED_WITH]-(rec:Streamer)\n"
        "WHERE rec.login <> me.login\n"
        "  AND r1.overlap >= $min_overlap AND r2.overlap >= $min_overlap\n"
        "  AND NOT EXISTS { MATCH (me)-[:HAS_VIEWERSHIP_OVERLAPPED_WITH]-(rec) }\n"
        "RETURN rec.login AS login, sum(r1.overlap * r2.overlap) / 100.0 AS score, "
        "count(DISTINCT mid) AS via\n"
        "ORDER BY score DESC, login\n"
        "LIMIT $limit",
        {"login": "", "min_overlap": 20, "limit": 10},
    ),
    "flow_destinations": (
        "Top destinations of a streamer's audience: where its chatters are seen when it ends",
        "MATCH (s:Streamer {login: $login})-[f:FLOWED_TO]->(d:Streamer)\n"
        "RETURN d.login AS login, d.name AS name, f.viewers AS viewers,\n"
        "       f.`ends` AS stream_ends, 100.0 * f.viewers / s.end_chatters AS percent\n"
        "ORDER BY viewers DESC, login\n"
        "LIMIT $limit",
        {"login": "", "limit": 10},
    ),
}


@dataclass
class QueryResult:
    """Column names and rows (lists of plain Python values) of one query."""

    columns: list[str]
    rows: list[list[Any]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


# A plain decimal number, ASCII digits only: the only untyped value that becomes a number.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_INT64 = (-(2**63), 2**63 - 1)
_KINDS = ("str", "int", "float", "bool", "json")


def _int(value: str, pair: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise BadValue(f"parameter {pair!r}: {value!r} is not an integer") from None
    if not _INT64[0] <= number <= _INT64[1]:
        raise BadValue(f"parameter {pair!r}: {value} does not fit a 64-bit integer")
    return number


def _typed(value: str, kind: str, pair: str) -> Any:
    if kind == "str":
        return value
    if kind == "int":
        return _int(value, pair)
    if kind == "float":
        try:
            return float(value)  # here inf and nan are asked for
        except ValueError:
            raise BadValue(f"parameter {pair!r}: {value!r} is not a number") from None
    if kind == "bool":
        if value.lower() not in ("true", "false"):
            raise BadValue(f"parameter {pair!r}: a bool is true or false")
        return value.lower() == "true"
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise BadValue(f"parameter {pair!r}: not JSON ({exc.msg})") from None


def _untyped(value: str, pair: str) -> Any:
    if _DECIMAL.fullmatch(value):
        return _int(value, pair) if re.fullmatch(r"[+-]?[0-9]+", value) else float(value)
    if value[:1] == "[":  # a list, e.g. genres=["RPG"]
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
    return value


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """Parse ``name=value`` pairs into query parameters.

    A value is a number only when written as a plain decimal number (``50``, ``-2.5``), a
    list when written as a JSON list, and a string otherwise: ``infinity``, ``nan``, ``null``,
    ``true`` and ``1e3`` stay strings (a login may be any of them). A type after the name
    says otherwise: ``name:str=007``, ``name:int=…``, ``name:float=inf``, ``name:bool=true``,
    ``name:json=null``.

    >>> parse_params(["login=zeta", "min_overlap=50", "id:str=007", "genres=[\\"RPG\\"]"])
    {'login': 'zeta', 'min_overlap': 50, 'id': '007', 'genres': ['RPG']}
    >>> parse_params(["login=infinity", "x=null", "y:float=inf", "z:bool=true"])
    {'login': 'infinity', 'x': 'null', 'y': inf, 'z': True}
    """
    params: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise BadValue(f"parameter {pair!r} is not name=value (e.g. --param login=zeta)")
        name, _, kind = name.partition(":")
        if not name.isidentifier():
            raise BadValue(f"parameter name {name!r} is not an identifier")
        if kind and kind not in _KINDS:
            raise BadValue(f"parameter {pair!r}: the type after ':' is one of "
                           f"{', '.join(_KINDS)}")
        params[name] = _typed(value, kind, pair) if kind else _untyped(value, pair)
    return params


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class QueryFailed(TwitchgraphError, RuntimeError):
    """Kùzu refused or could not run the query; the message is its first line."""


def run_query(
    graph: str | os.PathLike,
    cypher: str,
    params: dict[str, Any] | None = None,
) -> QueryResult:
    """Run one read-only Cypher statement on `graph` (a GRAPH_DIR or a graph.kuzu file).

    Raises QueryRefused (a ValueError) before Kùzu sees a query that is more than one
    read-only statement or whose ``$names`` and `params` differ (see `cypher_guard`),
    DatabaseMissing (a FileNotFoundError) when the database is missing and QueryFailed when
    Kùzu cannot parse, bind or run the query.
    """
    params = params or {}
    check_query(cypher, params)
    with connect(graph, read_only=True) as con:
        try:
            result = con.execute(cypher, params)
        except RuntimeError as exc:  # Kùzu's parser, binder and runtime errors: the query's
            raise QueryFailed(f"query failed: {str(exc).splitlines()[0]}") from exc
        columns = list(result.get_column_names())
        rows = []
        while result.has_next():
            rows.append([_plain(v) for v in result.get_next()])
        result.close()
    return QueryResult(columns=columns, rows=rows)
