"""Read and write a GRAPH_DIR (the tables `twitchgraph build` writes) and convert it to graphs.

A GRAPH_DIR holds `streamers.csv` (one row per streamer, Gephi's `Id, Label` first),
`edges.csv` (streamer -> streamer, shared-viewer overlap), `played.csv` (streamer -> game,
minutes played), `games.csv` (game metadata), `raids.csv` (raider -> raided streamer) and
`flows.csv` (streamer that ended -> streamer its chatters were seen in next; both optional:
older builds have none) and `build.json` (build parameters). Communities
and the layout add `community`, `x`, `y` and `size` columns to `streamers.csv`.

Logins are read as strings on purpose: a login such as ``"1234"`` must never become a number.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import igraph as ig
import networkx as nx
import numpy as np
import pandas as pd

from twitchgraph.atomic import atomic_path
from twitchgraph.errors import TwitchgraphError

__all__ = [
    "EDGE_COLUMNS",
    "FLOW_COLUMNS",
    "GAME_COLUMNS",
    "GRAPH_FILES",
    "PLAYED_COLUMNS",
    "RAID_COLUMNS",
    "STREAMER_COLUMNS",
    "GraphData",
    "GraphDirError",
    "read_build_record",
    "read_graph_dir",
    "to_igraph",
    "to_networkx",
    "undirected_edges",
    "write_csv",
    "write_graph_dir",
    "write_streamers",
]

logger = logging.getLogger(__name__)

STREAMER_COLUMNS = [
    "Id", "Label", "login", "language", "minutes_live", "viewer_mean", "viewer_peak",
    "chatter_mean", "chatters_total", "main_game", "broadcaster_type", "social_links",
    "ends", "end_chatters", "end_retained",
]
# The stream-end figures came with flows.csv: an older streamers.csv lacks them.
END_COLUMNS = ["ends", "end_chatters", "end_retained"]
ADDED_STREAMER_COLUMNS = ["community", "x", "y", "size"]
# Every file `twitchgraph build` writes, build.json (written last) included.
GRAPH_FILES = ("streamers.csv", "edges.csv", "played.csv", "games.csv", "raids.csv", "flows.csv",
               "build.json")
EDGE_COLUMNS = ["Source", "Target", "Weight", "shared", "overlap", "jaccard", "Type"]
PLAYED_COLUMNS = ["Source", "Target", "minutes_played"]
RAID_COLUMNS = ["Source", "Target", "raids", "viewers_total", "first_at", "last_at", "Type"]
FLOW_COLUMNS = ["Source", "Target", "viewers", "ends", "first_at", "last_at", "Type"]
GAME_COLUMNS = [
    "Id", "Label", "game_id", "igdb_id", "genres", "themes", "release_date", "developers",
    "publishers", "steam_appid", "steam_match", "steam_match_score", "categories", "tags",
]

_STRING_COLUMNS = {
    "streamers.csv": ["Id", "Label", "login", "language", "main_game", "broadcaster_type",
                      "social_links"],
    "edges.csv": ["Source", "Target", "Type"],
    "played.csv": ["Source", "Target"],
    "raids.csv": ["Source", "Target", "first_at", "last_at", "Type"],
    "flows.csv": ["Source", "Target", "first_at", "last_at", "Type"],
    "games.csv": ["Id", "Label", "game_id", "igdb_id", "genres", "themes", "release_date",
                  "developers", "publishers", "steam_appid", "steam_match", "categories", "tags"],
}
_REQUIRED = {
    "streamers.csv": [c for c in STREAMER_COLUMNS if c not in END_COLUMNS],
    "edges.csv": ["Source", "Target", "Weight"],
    "played.csv": PLAYED_COLUMNS,
    "raids.csv": RAID_COLUMNS,
    "flows.csv": FLOW_COLUMNS,
    "games.csv": ["Id", "Label"],
}


class GraphDirError(TwitchgraphError, ValueError):
    """A GRAPH_DIR is missing, incomplete or malformed; the message says what to do."""


@dataclass
class GraphData:
    """The tables of one GRAPH_DIR, as `twitchgraph build` makes them and `read_graph_dir` reads.

    `streamers` is indexed by nothing in particular; `streamers["Id"]` holds the login.
    Optional tables (`played`, `games`, `raids`, `flows`) are empty frames with the expected
    columns when the file is absent. `build` is the record of how the graph was made
    (``build.json``: parameters and statistics).
    """

    streamers: pd.DataFrame
    edges: pd.DataFrame
    played: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PLAYED_COLUMNS))
    games: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=GAME_COLUMNS))
    build: dict = field(default_factory=dict)
    path: Path | None = None
    raids: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=RAID_COLUMNS))
    flows: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FLOW_COLUMNS))

    @property
    def logins(self) -> list[str]:
        return self.streamers["Id"].tolist()


def _read_csv(path: Path, name: str, *, required: bool) -> pd.DataFrame | None:
    file = path / name
    if not file.exists():
        if required:
            raise GraphDirError(
                f"{file} not found: point at a directory written by `twitchgraph build`."
            )
        return None
    strings = {c: "string" for c in _STRING_COLUMNS.get(name, [])}
    try:
        # keep_default_na=False: a streamer called "nan" or "null" stays a string.
        frame = pd.read_csv(file, dtype=strings, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise GraphDirError(f"{file} is not a readable CSV ({exc}); rebuild it.") from exc
    missing = [c for c in _REQUIRED.get(name, []) if c not in frame.columns]
    if missing:
        raise GraphDirError(f"{file} lacks columns {', '.join(missing)}; rebuild it.")
    for column in strings:
        if column in frame.columns:
            frame[column] = frame[column].fillna("").astype(object)
    return frame


def read_graph_dir(path: str | os.PathLike) -> GraphData:
    """Read the tables of a GRAPH_DIR.

    Parameters
    ----------
    path : directory written by `twitchgraph build` (`write_graph_dir`).

    Returns
    -------
    GraphData with string logins; edges whose endpoints are not streamers are dropped
    with a warning (they cannot be drawn or queried).

    Raises
    ------
    GraphDirError if the directory or a required table is missing or malformed.
    """
    root = Path(path)
    if not root.is_dir():
        raise GraphDirError(f"{root} is not a directory: run `twitchgraph build --out {root}`.")
    missing = [n for n in ("streamers.csv", "edges.csv") if not (root / n).is_file()]
    if missing:
        raise GraphDirError(f"{root} is not a GRAPH_DIR (missing {', '.join(missing)}): "
                            f"run `twitchgraph build --out {root}` first.")
    streamers = _read_csv(root, "streamers.csv", required=True)
    edges = _read_csv(root, "edges.csv", required=True)
    played = _read_csv(root, "played.csv", required=False)
    games = _read_csv(root, "games.csv", required=False)
    raids = _read_csv(root, "raids.csv", required=False)
    flows = _read_csv(root, "flows.csv", required=False)
    if streamers["Id"].duplicated().any():
        dupes = streamers.loc[streamers["Id"].duplicated(), "Id"].head(3).tolist()
        raise GraphDirError(f"{root / 'streamers.csv'} repeats Id {dupes}; rebuild it.")
    known = set(streamers["Id"])
    dangling = ~(edges["Source"].isin(known) & edges["Target"].isin(known))
    if dangling.any():
        logger.warning("dropping %d edges whose endpoints are not in streamers.csv",
                       int(dangling.sum()))
        edges = edges.loc[~dangling].reset_index(drop=True)
    # The build writes only raids and flows between its streamers; a hand-trimmed
    # streamers.csv (or an older one) leaves some that cannot be drawn.
    raids = _between(raids, known, RAID_COLUMNS)
    flows = _between(flows, known, FLOW_COLUMNS)
    return GraphData(
        streamers=streamers,
        edges=edges,
        played=played if played is not None else pd.DataFrame(columns=PLAYED_COLUMNS),
        games=games if games is not None else pd.DataFrame(columns=GAME_COLUMNS),
        build=read_build_record(root),
        path=root,
        raids=raids,
        flows=flows,
    )


def _between(frame: pd.DataFrame | None, known: set[str], columns: list[str]) -> pd.DataFrame:
    if frame is None:
        return pd.DataFrame(columns=columns)
    frame = frame.loc[frame["Source"].isin(known) & frame["Target"].isin(known)]
    return frame.reset_index(drop=True)


def _write_atomic(target: Path, write: Callable[[str], object]) -> None:
    """Call `write` on a file beside `target`, then rename it over `target`, so an
    interrupted run never leaves half a file."""
    with atomic_path(target) as tmp:
        write(str(tmp))


def read_build_record(path: str | os.PathLike) -> dict:
    """The ``build.json`` of a GRAPH_DIR (parameters and statistics); empty when it has none
    or it cannot be read (a warning says so)."""
    file = Path(path) / "build.json"
    if not file.exists():
        return {}
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        logger.warning("ignoring unreadable %s: %s", file, exc)
        return {}


def write_csv(frame: pd.DataFrame, target: Path) -> None:
    """Write `frame` (no index) to `target` atomically."""
    _write_atomic(target, lambda tmp: frame.to_csv(tmp, index=False))


def write_graph_dir(data: GraphData, out_dir: str | os.PathLike) -> Path:
    """Write the tables of `data` and its `build` record as a GRAPH_DIR; return the folder.

    Every file is written atomically, and ``build.json`` is removed first and written last, so a
    folder with a ``build.json`` holds a finished graph.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "build.json").unlink(missing_ok=True)
    tables = {"streamers": data.streamers, "edges": data.edges, "played": data.played,
              "games": data.games, "raids": data.raids, "flows": data.flows}
    for name, frame in tables.items():
        write_csv(frame, out / f"{name}.csv")
    record = {**data.build, "outputs": {name: len(frame) for name, frame in tables.items()}}
    text = json.dumps(record, indent=2, default=str) + "\n"
    _write_atomic(out / "build.json", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return out


def write_streamers(path: str | os.PathLike, streamers: pd.DataFrame) -> Path:
    """Write `streamers.csv` back: the build's columns first, then the graph stage's."""
    root = Path(path)
    columns = [c for c in STREAMER_COLUMNS if c in streamers.columns]
    columns += [c for c in ADDED_STREAMER_COLUMNS if c in streamers.columns]
    columns += [c for c in streamers.columns if c not in columns]
    target = root / "streamers.csv"
    write_csv(streamers[columns], target)
    return target


def undirected_edges(edges: pd.DataFrame, *, weight: str = "Weight") -> pd.DataFrame:
    """Collapse directed edges to one row per unordered pair: columns u, v, weight.

    The overlap is symmetric by construction (shared chatters over the smaller audience); the
    direction only records which side has more viewers. If both directions appear, the larger
    weight is kept. Self-loops are dropped.
    """
    if edges.empty:
        return pd.DataFrame({"u": pd.Series(dtype=object), "v": pd.Series(dtype=object),
                             "weight": pd.Series(dtype=float)})
    src = edges["Source"].to_numpy(dtype=object)
    dst = edges["Target"].to_numpy(dtype=object)
    swap = src > dst
    frame = pd.DataFrame({
        "u": np.where(swap, dst, src),
        "v": np.where(swap, src, dst),
        "weight": pd.to_numeric(edges[weight], errors="coerce").fillna(0.0).to_numpy(float),
    })
    frame = frame[frame["u"] != frame["v"]]
    return frame.groupby(["u", "v"], as_index=False, sort=True)["weight"].max()


def to_networkx(data: GraphData, *, directed: bool = False) -> nx.Graph:
    """A networkx graph of streamers (nodes keyed by login, all streamer columns as attributes).

    Undirected by default (see `undirected_edges`); with ``directed=True`` the edges keep
    their direction and all their columns.
    """
    graph: nx.Graph = nx.DiGraph() if directed else nx.Graph()
    records = data.streamers.to_dict(orient="records")
    graph.add_nodes_from((row["Id"], row) for row in records)
    if directed:
        for row in data.edges.to_dict(orient="records"):
            graph.add_edge(row["Source"], row["Target"], **row)
    else:
        und = undirected_edges(data.edges)
        graph.add_weighted_edges_from(und.itertuples(index=False, name=None))
    return graph


def to_igraph(data: GraphData) -> ig.Graph:
    """An undirected weighted igraph graph; vertex i is `data.streamers["Id"][i]` (attr "name")."""
    logins = data.logins
    index = {login: i for i, login in enumerate(logins)}
    und = undirected_edges(data.edges)
    graph = ig.Graph(n=len(logins), directed=False)
    graph.vs["name"] = logins
    if len(und):
        pairs = list(zip(und["u"].map(index), und["v"].map(index), strict=True))
        graph.add_edges(pairs)
        graph.es["weight"] = und["weight"].tolist()
    return graph
