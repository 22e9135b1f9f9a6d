"""Refuse a Cypher query that could do more than read the graph, before Kùzu sees it.

Opening the database read-only stops writes to the graph but not ``COPY (…) TO '/any/file'``,
``LOAD FROM 'file'``, ``INSTALL httpfs`` (network) or a second statement (which crashes Kùzu
0.11.3). So the query is tokenised the way Kùzu's lexer (its ``Cypher.g4``) reads it, string
literals, backquoted names and comments included, and then checked:

- one statement (a trailing ``;`` is fine);
- no keyword that touches files, the network, other databases or the schema, and no write;
- ``CALL`` only of a few catalogue functions;
- every ``$name`` has a value, and every value is used.

Where this lexer and Kùzu's could disagree it errs towards seeing code: an identifier is split
at any non-ASCII character, and a string with an escape Kùzu would not accept is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from twitchgraph.errors import TwitchgraphError

__all__ = ["ALLOWED_CALLS", "MAX_CASE_DEPTH", "MAX_DEPTH", "MAX_TOKENS", "QueryRefused", "Token",
           "check_query", "tokenize"]


class QueryRefused(TwitchgraphError, ValueError):
    """The query is not a single read-only statement with all its parameters; says why."""


# Keywords of statements or clauses that read or write files, reach the network, attach
# other databases, change the schema or the data, or control transactions.
_REFUSED = {
    "COPY": "reads or writes files",
    "LOAD": "reads files or loads extensions",
    "INSTALL": "downloads extensions",
    "UNINSTALL": "removes extensions",
    "ATTACH": "opens other databases",
    "DETACH": "changes the database",
    "USE": "switches databases",
    "EXPORT": "writes files",
    "IMPORT": "reads files",
    "CREATE": "changes the database",
    "MERGE": "changes the database",
    "SET": "changes the database",
    "DELETE": "changes the database",
    "REMOVE": "changes the database",
    "DROP": "changes the database",
    "ALTER": "changes the database",
    "COMMENT": "changes the database",
    "BEGIN": "controls transactions",
    "COMMIT": "controls transactions",
    "ROLLBACK": "controls transactions",
    "CHECKPOINT": "controls transactions",
}
# Catalogue functions that only describe the graph; any other CALL (table functions reading
# files, configuration such as `CALL home_directory='…'`, extension functions) is refused.
ALLOWED_CALLS = frozenset({"show_tables", "table_info", "show_connection", "db_version",
                           "show_functions"})
# Kùzu 0.11.3's ANTLR parser recurses per bracket (1,000 nested lists overflow its stack and
# kill the process), takes exponential time in nested CASE (20 levels: 24 s) and superlinear
# time in tokens (10,000: 8 s). Real queries stay far below these bounds.
MAX_DEPTH = 64
MAX_CASE_DEPTH = 10
MAX_TOKENS = 2000

_SPACE = re.compile(r"[\s\u180e]+")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+")
_LINE_COMMENT_BODY = re.compile(r"[^\r\n]*\r?")
_PARAM = re.compile(r"[^\W\d]\w*|[0-9]+")  # Kùzu: '$' ( SymbolicName | DecimalInteger )
# Kùzu's EscapedChar: \\ \' \" \b \f \n \r \t \uXXXX \UXXXXXXXX (letters in either case).
_ESCAPE = re.compile(r"\\(?:[\\'\"bfnrtBFNRT]|[uU][0-9a-fA-F]{4}(?:[0-9a-fA-F]{4})?)")


@dataclass(frozen=True)
class Token:
    """One lexical token: kind is word, number, string, name (backquoted), param or symbol."""

    kind: str
    text: str
    pos: int


def _comment_end(text: str, start: int) -> int | None:
    """End of the comment opening at `start`, or None where Kùzu's lexer sees no comment.

    Kùzu: '/*' ( ~'*' | '*' ~'/' )* '*/' and '//' ~[\r\n]* '\r'? ( '\n' | EOF ).
    """
    if text.startswith("//", start):
        end = _LINE_COMMENT_BODY.match(text, start + 2).end()
        if end == len(text):
            return end
        return end + 1 if text[end] == "\n" else None  # '//x\ry' is not a comment to Kùzu
    i = start + 2
    while i < len(text):
        if text[i] == "*":
            if text.startswith("*/", i):
                return i + 2
            i += 2  # '*' followed by anything but '/' is consumed as a pair
        else:
            i += 1
    raise QueryRefused(f"unterminated /* comment at character {start + 1}")


def _string_end(text: str, start: int) -> int:
    quote, i = text[start], start + 1
    while i < len(text):
        char = text[i]
        if char == quote:
            return i + 1
        if char == "\\":
            escape = _ESCAPE.match(text, i)
            if escape is None:
                raise QueryRefused(f"string literal at character {start + 1} has an escape "
                                   "Kùzu does not accept (use \\\\ \\' \\\" \\n \\t \\uXXXX)")
            i = escape.end()
        else:
            i += 1
    raise QueryRefused(f"unterminated string literal at character {start + 1}")


def _name_end(text: str, start: int) -> int:
    i = start
    while text.startswith("`", i):  # ( '`' ~'`'* '`' )+: a doubled backquote continues it
        end = text.find("`", i + 1)
        if end < 0:
            raise QueryRefused(f"unterminated `name` at character {start + 1}")
        i = end + 1
    return i


def tokenize(text: str) -> list[Token]:
    """Tokens of a Cypher query, without whitespace and comments.

    >>> [t.text for t in tokenize("RETURN 'a;b' /* ; */ AS `x``y`; // done")]
    ['RETURN', "'a;b'", 'AS', '`x``y`', ';']
    """
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if space := _SPACE.match(text, i):
            i = space.end()
            continue
        if text.startswith(("//", "/*"), i) and (end := _comment_end(text, i)) is not None:
            i = end
            continue
        if char in "'\"":
            end, kind = _string_end(text, i), "string"
        elif char == "`":
            end, kind = _name_end(text, i), "name"
        elif char == "$":
            match = _PARAM.match(text, i + 1)
            if match is not None:
                end, kind = match.end(), "param"
            elif text.startswith("`", i + 1):
                end, kind = _name_end(text, i + 1), "param"
            else:
                end, kind = i + 1, "symbol"
        elif match := _WORD.match(text, i):
            end, kind = match.end(), "word"
        elif match := _NUMBER.match(text, i):
            end, kind = match.end(), "number"
        else:
            end, kind = i + 1, "symbol"
        tokens.append(Token(kind, text[i:end], i))
        i = end
    return tokens


def _param_name(token: Token) -> str:
    name = token.text[1:]
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def check_query(cypher: str, params: Iterable[str] = ()) -> None:
    """Raise QueryRefused unless `cypher` is one read-only statement using exactly `params`.

    >>> check_query("MATCH (s:Streamer {login: $login}) RETURN s.name", ["login"])
    >>> try:
    ...     check_query("RETURN 1; RETURN 2")
    ... except QueryRefused as exc:
    ...     print(exc)
    query has a second statement after ';' at character 9: run one statement at a time
    """
    tokens = tokenize(cypher)
    if not tokens:
        raise QueryRefused("query is empty: pass one Cypher statement, e.g. "
                           "\"MATCH (s:Streamer) RETURN s.login LIMIT 5\"")
    if len(tokens) > MAX_TOKENS:
        raise QueryRefused(f"query has {len(tokens)} tokens, more than the {MAX_TOKENS} "
                           "allowed: split it or pass long values with --param")
    depth = case_depth = 0
    for index, token in enumerate(tokens):
        if token.kind == "symbol":
            if token.text == ";" and index < len(tokens) - 1:
                raise QueryRefused(f"query has a second statement after ';' at character "
                                   f"{token.pos + 1}: run one statement at a time")
            depth += token.text in "([{"
            depth -= token.text in ")]}"
            if depth > MAX_DEPTH:
                raise QueryRefused(f"query nests brackets deeper than {MAX_DEPTH}")
        elif token.kind in ("word", "param"):
            # A keyword could hide in a parameter name made of characters Kùzu splits at.
            words = [token.text] if token.kind == "word" else _WORD.findall(token.text[1:])
            if refused := [w.upper() for w in words if w.upper() in _REFUSED]:
                word = refused[0]
                raise QueryRefused(f"query is read-only: {word} {_REFUSED[word]} and is not "
                                   "allowed")
            if token.kind == "word" and token.text.upper() in ("CASE", "END"):
                case_depth += 1 if token.text.upper() == "CASE" else -1
                if case_depth > MAX_CASE_DEPTH:
                    raise QueryRefused(f"query nests CASE deeper than {MAX_CASE_DEPTH}")
            if token.kind == "word" and token.text.upper() == "CALL":
                following = tokens[index + 1: index + 3]
                name = following[0].text.lower() if following else ""
                if not (len(following) == 2 and following[0].kind == "word"
                        and name in ALLOWED_CALLS and following[1].text == "("):
                    raise QueryRefused("query is read-only: CALL is allowed only for "
                                       f"{', '.join(sorted(ALLOWED_CALLS))}")
    used = {_param_name(t) for t in tokens if t.kind == "param"}
    given = set(params)
    if missing := sorted(used - given):
        raise QueryRefused("query uses " + ", ".join(f"${n}" for n in missing) + " but no "
                           + " ".join(f"--param {n}=…" for n in missing) + " was given")
    if unused := sorted(given - used):
        raise QueryRefused("--param " + ", ".join(unused) + " is not used by the query (it "
                           "has " + (", ".join(f"${n}" for n in sorted(used)) or "no $name")
                           + ")")
