"""`--to db`: the graph as an embedded Kùzu database (`GRAPH_DIR/graph.kuzu`), queried with Cypher.

Model (the original's Neo4j model, with the build's columns)::

    (:Streamer {login, name, language, viewer_mean, viewer_peak, minutes_live, chatter_mean,
                chatters_total, main_game, broadcaster_type, social_links, ends, end_chatters,
                end_retained, community, x, y, size})
    (:Game {name, game_id, igdb_id, developers, publishers, release_date, genres, themes,
            categories, tags, steam_appid, steam_match, steam_match_score})
    (:Streamer)-[:HAS_VIEWERSHIP_OVERLAPPED_WITH {overlap, shared, jaccard, weight}]->(:Streamer)
    (:Streamer)-[:PLAYED {minutes_played}]->(:Game)
    (:Streamer)-[:RAIDED {raids, viewers_total}]->(:Streamer)   (raider -> raided, raids.csv)
    (:Streamer)-[:FLOWED_TO {viewers, ends}]->(:Streamer)  (ended -> seen next, flows.csv)

Multi-valued fields (social links, genres, …) are `STRING[]` lists, so Cypher can ask
``'Shooter' IN g.genres``. Tables are bulk-loaded with `COPY … FROM (LOAD FROM df …)`: the
sub-query splits the ';'-joined fields in the database. Kùzu 0.11.3 is pinned: its fork
`ladybug` 0.22.0 returns fewer two-hop recommendations than networkx finds (see the docs'
Cypher model page); tests compare multi-hop answers with networkx.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import kuzu
import numpy as np
import pandas as pd

from twitchgraph.errors import TwitchgraphError
from twitchgraph.graphio import GraphData

__all__ = ["DB_NAME", "DatabaseMissing", "DatabaseUnreadable", "KuzuExport", "connect",
           "export_kuzu", "known_flows", "known_raids", "played_and_games", "remove_db"]

logger = logging.getLogger(__name__)

DB_NAME = "graph.kuzu"

# (property, Kùzu type, GRAPH_DIR column). Lists come from ';'-joined strings.
STREAMER_PROPS = [
    ("login", "STRING", "Id"),
    ("name", "STRING", "Label"),
    ("language", "STRING", "language"),
    ("viewer_mean", "DOUBLE", "viewer_mean"),
    ("viewer_peak", "INT64", "viewer_peak"),
    ("minutes_live", "DOUBLE", "minutes_live"),
    ("chatter_mean", "DOUBLE", "chatter_mean"),
    ("chatters_total", "INT64", "chatters_total"),
    ("main_game", "STRING", "main_game"),
    ("broadcaster_type", "STRING", "broadcaster_type"),
    ("social_links", "STRING[]", "social_links"),
    ("ends", "INT64", "ends"),
    ("end_chatters", "INT64", "end_chatters"),
    ("end_retained", "DOUBLE", "end_retained"),
    ("community", "INT64", "community"),
    ("x", "DOUBLE", "x"),
    ("y", "DOUBLE", "y"),
    ("size", "DOUBLE", "size"),
]
GAME_PROPS = [
    ("name", "STRING", "Id"),
    ("game_id", "STRING", "game_id"),
    ("igdb_id", "STRING", "igdb_id"),
    ("developers", "STRING[]", "developers"),
    ("publishers", "STRING[]", "publishers"),
    ("release_date", "STRING", "release_date"),
    ("genres", "STRING[]", "genres"),
    ("themes", "STRING[]", "themes"),
    ("categories", "STRING[]", "categories"),
    ("tags", "STRING[]", "tags"),
    ("steam_appid", "STRING", "steam_appid"),
    ("steam_match", "STRING", "steam_match"),
    ("steam_match_score", "DOUBLE", "steam_match_score"),
]
OVERLAP_PROPS = [
    ("overlap", "DOUBLE", "overlap"),
    ("shared", "INT64", "shared"),
    ("jaccard", "DOUBLE", "jaccard"),
    ("weight", "DOUBLE", "Weight"),
]
PLAYED_PROPS = [("minutes_played", "DOUBLE", "minutes_played")]
RAID_PROPS = [("raids", "INT64", "raids"), ("viewers_total", "INT64", "viewers_total")]
FLOW_PROPS = [("viewers", "INT64", "viewers"), ("ends", "INT64", "ends")]


@dataclass(frozen=True)
class KuzuExport:
    """Where the database went and what it holds."""

    path: Path
    streamers: int
    games: int
    overlaps: int
    played: int
    raids: int = 0
    flows: int = 0


def _frame(table: pd.DataFrame, props: list[tuple[str, str, str]]) -> pd.DataFrame:
    """A frame Kùzu can scan: strings as object (Kùzu 0.11 rejects pandas' str dtype), numbers
    as float64 (NaN is read as NULL), absent columns as NULL."""
    out = {}
    for name, kind, column in props:
        values = table[column].tolist() if column in table.columns else [None] * len(table)
        if kind == "STRING[]":
            out[name] = pd.Series(["" if _missing(v) else str(v) for v in values], dtype=object)
        elif kind == "STRING":
            out[name] = pd.Series([None if _missing(v) else str(v) for v in values],
                                  dtype=object)
        else:
            out[name] = pd.to_numeric(pd.Series(values, dtype=object),
                                      errors="coerce").astype(np.float64).to_numpy()
    return pd.DataFrame(out)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _projection(props: list[tuple[str, str, str]], prefix: list[str] | None = None) -> str:
    parts = list(prefix or [])
    for name, kind, _ in props:
        name = f"`{name}`"
        if kind == "STRING[]":
            parts.append(f"CASE WHEN {name} = '' THEN CAST([] AS STRING[]) "
                         f"ELSE string_split({name}, ';') END")
        elif kind == "INT64":
            parts.append(f"CAST({name} AS INT64)")
        else:
            parts.append(name)
    return ", ".join(parts)


def _schema(props: list[tuple[str, str, str]]) -> str:
    # Quoted: `ends` is a Cypher keyword (ENDS WITH) in Kùzu's grammar.
    return ", ".join(f"`{name}` {kind}" for name, kind, _ in props)


def _create_schema(con: kuzu.Connection) -> None:
    con.execute(f"CREATE NODE TABLE Streamer({_schema(STREAMER_PROPS)}, PRIMARY KEY (login))")
    con.execute(f"CREATE NODE TABLE Game({_schema(GAME_PROPS)}, PRIMARY KEY (name))")
    con.execute("CREATE REL TABLE HAS_VIEWERSHIP_OVERLAPPED_WITH(FROM Streamer TO Streamer, "
                f"{_schema(OVERLAP_PROPS)})")
    con.execute(f"CREATE REL TABLE PLAYED(FROM Streamer TO Game, {_schema(PLAYED_PROPS)})")
    con.execute(f"CREATE REL TABLE RAIDED(FROM Streamer TO Streamer, {_schema(RAID_PROPS)})")
    con.execute(f"CREATE REL TABLE FLOWED_TO(FROM Streamer TO Streamer, {_schema(FLOW_PROPS)})")


def _copy(con: kuzu.Connection, table: str, frame: pd.DataFrame, projection: str) -> None:
    if frame.empty:
        return
    # `frame` is picked up by name from this scope by Kùzu's pandas scan.
    con.execute(f"COPY {table} FROM (LOAD FROM frame RETURN {projection})")


def played_and_games(data: GraphData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The played rows of known streamers, and the games with a name-only row added for each
    played game missing from games.csv (so every PLAYED edge has its Game node)."""
    played = data.played[data.played["Source"].isin(set(data.logins))]
    games = data.games
    known = set(games["Id"]) if "Id" in games.columns else set()
    missing = sorted(set(played["Target"]) - known)
    if missing:
        games = pd.concat([games, pd.DataFrame({"Id": missing, "Label": missing})],
                          ignore_index=True)
    return played, games


def known_raids(data: GraphData) -> pd.DataFrame:
    """The raids whose raider and raided are both streamers of `data` (a trimmed streamers
    table leaves others, which no relationship could hold)."""
    return _between_streamers(data, data.raids)


def known_flows(data: GraphData) -> pd.DataFrame:
    """The flows whose both ends are streamers of `data` (as `known_raids`)."""
    return _between_streamers(data, data.flows)


def _between_streamers(data: GraphData, table: pd.DataFrame) -> pd.DataFrame:
    known = set(data.logins)
    return table[table["Source"].isin(known) & table["Target"].isin(known)]


def export_kuzu(data: GraphData, out_dir: str | os.PathLike) -> KuzuExport:
    """Write `data` as a Kùzu database at `out_dir/graph.kuzu` (replacing an older one).

    The database is built beside the target and moved into place, so a failed export never
    leaves half a database. Played games missing from games.csv become Game nodes with a name
    only; played rows of unknown streamers are dropped.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / DB_NAME
    staging = out / f".{DB_NAME}.building"
    remove_db(staging)

    streamers = _frame(data.streamers, STREAMER_PROPS)
    played, games_table = played_and_games(data)
    games = _frame(games_table, GAME_PROPS)
    overlaps = _frame(data.edges, [("src", "STRING", "Source"), ("dst", "STRING", "Target")]
                      + OVERLAP_PROPS)
    played_frame = _frame(played, [("src", "STRING", "Source"), ("dst", "STRING", "Target")]
                          + PLAYED_PROPS)
    raids = _frame(known_raids(data), [("src", "STRING", "Source"),
                                       ("dst", "STRING", "Target")] + RAID_PROPS)
    flows = _frame(known_flows(data), [("src", "STRING", "Source"),
                                       ("dst", "STRING", "Target")] + FLOW_PROPS)

    db = kuzu.Database(str(staging))
    con = kuzu.Connection(db)
    try:
        _create_schema(con)
        _copy(con, "Streamer", streamers, _projection(STREAMER_PROPS))
        _copy(con, "Game", games, _projection(GAME_PROPS))
        _copy(con, "HAS_VIEWERSHIP_OVERLAPPED_WITH", overlaps,
              _projection(OVERLAP_PROPS, prefix=["src", "dst"]))
        _copy(con, "PLAYED", played_frame, _projection(PLAYED_PROPS, prefix=["src", "dst"]))
        _copy(con, "RAIDED", raids, _projection(RAID_PROPS, prefix=["src", "dst"]))
        _copy(con, "FLOWED_TO", flows, _projection(FLOW_PROPS, prefix=["src", "dst"]))
    finally:
        # Close explicitly: leaving it to the garbage collector has crashed Kùzu at exit.
        con.close()
        db.close()
    remove_db(target)
    os.replace(staging, target)
    logger.info("wrote %s", target)
    return KuzuExport(path=target, streamers=len(streamers), games=len(games),
                      overlaps=len(overlaps), played=len(played_frame), raids=len(raids),
                      flows=len(flows))


def remove_db(path: Path) -> None:
    """Remove the Kùzu database at `path` with its .wal and .lock beside it."""
    for candidate in (path, Path(f"{path}.wal"), Path(f"{path}.lock")):
        if candidate.is_dir():
            shutil.rmtree(candidate)
        elif candidate.exists():
            candidate.unlink()


class DatabaseMissing(TwitchgraphError, FileNotFoundError):
    """A GRAPH_DIR has no Kùzu database yet; the message says how to make it."""


class DatabaseUnreadable(TwitchgraphError, ValueError):
    """Kùzu cannot open the database (not one, or another version's); remake it."""


@contextlib.contextmanager
def connect(path: str | os.PathLike, *, read_only: bool = True) -> Iterator[kuzu.Connection]:
    """Open a Kùzu database file (or a GRAPH_DIR holding graph.kuzu) and close it afterwards.

    Raises DatabaseMissing (a FileNotFoundError) when it is missing and DatabaseUnreadable
    (a ValueError), naming it, when Kùzu cannot open it.
    """
    db_path = Path(path)
    if db_path.is_dir():
        db_path = db_path / DB_NAME
    if not db_path.exists():
        raise DatabaseMissing(
            f"{db_path} not found: run `twitchgraph export {db_path.parent} --to db` first."
        )
    try:
        db = kuzu.Database(str(db_path), read_only=read_only)
    except RuntimeError as exc:  # e.g. not a Kùzu file, or one of another Kùzu version
        raise DatabaseUnreadable(
            f"cannot open {db_path} ({str(exc).splitlines()[0]}): remake it with "
            f"`twitchgraph export {db_path.parent} --to db`"
        ) from None
    con = kuzu.Connection(db)
    try:
        yield con
    finally:
        con.close()
        db.close()
