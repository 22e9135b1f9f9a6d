"""One error base: every user-facing error is a TwitchgraphError, and the CLI turns only those
into one red line; a bug (any other exception) keeps its traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _build_fixtures import add_live, add_snapshots, new_store, users_named  # noqa: E402
from _graph_fixtures import write_planted_graph_dir  # noqa: E402

from twitchgraph.build.bots import BotListError  # noqa: E402
from twitchgraph.build.definition import BuildError  # noqa: E402
from twitchgraph.build.engines import EngineError  # noqa: E402
from twitchgraph.cli import app  # noqa: E402
from twitchgraph.collect.collector import CollectError  # noqa: E402
from twitchgraph.collect.importer import BadSnapshotFile  # noqa: E402
from twitchgraph.demo import DemoError  # noqa: E402
from twitchgraph.errors import BadValue, TwitchgraphError  # noqa: E402
from twitchgraph.export.cypher_guard import QueryRefused  # noqa: E402
from twitchgraph.export.kuzu_db import DatabaseMissing, DatabaseUnreadable  # noqa: E402
from twitchgraph.export.query import QueryFailed  # noqa: E402
from twitchgraph.graph.evolve import EvolveError  # noqa: E402
from twitchgraph.graphio import GraphDirError  # noqa: E402
from twitchgraph.store.dataset import DatasetError  # noqa: E402
from twitchgraph.store.db import StoreBusy, StoreError  # noqa: E402
from twitchgraph.twitch.errors import MissingCredentials, RateLimited, TwitchError  # noqa: E402

runner = CliRunner()


@pytest.mark.parametrize("error", [
    BadValue, BotListError, BuildError, CollectError, DatasetError, DemoError, EngineError,
    EvolveError, QueryRefused, DatabaseMissing, DatabaseUnreadable, QueryFailed, GraphDirError,
    BadSnapshotFile, StoreError, StoreBusy, TwitchError, MissingCredentials, RateLimited,
])
def test_user_facing_errors_share_one_base(error):
    assert issubclass(error, TwitchgraphError)


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("graph")
    write_planted_graph_dir(path, communities=2, size=5, seed=3)
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "s.duckdb"
    con = new_store(str(path))
    sids = add_snapshots(con, 2)
    add_live(con, sids, "alpha", viewers=300, chatters=users_named("u", 20))
    con.close()
    return path


@pytest.mark.parametrize("bug", [RuntimeError("a bug"), ValueError("a numpy-like bug")])
@pytest.mark.parametrize("module, name, command", [
    ("twitchgraph.graph.communities", "communities_for_dir",
     lambda p: ["communities", str(p["graph"])]),
    ("twitchgraph.graph.layout", "layout_for_dir", lambda p: ["layout", str(p["graph"])]),
    ("twitchgraph.export", "export_graph",
     lambda p: ["export", str(p["graph"]), "--to", "gexf"]),
    ("twitchgraph.build.definition", "build_graph",
     lambda p: ["build", "--db", str(p["store"]), "--out", str(p["tmp"] / "g")]),
])
def test_a_bug_keeps_its_traceback(bug, module, name, command, graph, store, tmp_path,
                                   monkeypatch):
    def broken(*args, **kwargs):
        raise bug

    monkeypatch.setattr(f"{module}.{name}", broken)
    result = runner.invoke(app, command({"graph": graph, "store": store, "tmp": tmp_path}))
    assert result.exception is bug  # not turned into SystemExit(1) and a red line
    assert "error:" not in result.output


def test_a_user_error_from_the_same_place_is_one_line(graph, monkeypatch):
    def refused(*args, **kwargs):
        raise GraphDirError(f"{graph} lacks columns x; rebuild it.")

    monkeypatch.setattr("twitchgraph.graph.communities.communities_for_dir", refused)
    result = runner.invoke(app, ["communities", str(graph)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output.strip().splitlines() == [f"error: {graph} lacks columns x; rebuild it."]
