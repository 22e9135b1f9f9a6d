"""The build's step list says what each step reads and makes, and the SQL agrees with it.

A build runs on an engine that records, per step, the tables each step creates and the
tables its SQL names after FROM or JOIN; the list in ``BUILD_STEPS`` must match both.
"""

from __future__ import annotations

import re

import pytest

from twitchgraph.build.definition import BUILD_STEPS, build_graph
from twitchgraph.build.engines import DuckDBEngine
from twitchgraph.build.params import BuildParams

from ._build_fixtures import add_live, add_snapshots, new_store, users_named

_NAMED = re.compile(r"\b(?:FROM|JOIN)\s+\"?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_CTE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s+AS\s*\(", re.IGNORECASE)  # WITH x AS (...)


class _Recording(DuckDBEngine):
    """A DuckDB engine that notes, for the step under way, what it creates and reads."""

    def __init__(self, con) -> None:
        super().__init__(con)  # makes the enrichment tables a new store lacks readable
        self.store_tables = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
        self.step: str | None = None
        self.created: dict[str, list[str]] = {}
        self.read: dict[str, set[str]] = {}

    def start(self, step: str) -> None:
        self.step = step
        self.created.setdefault(step, [])
        self.read.setdefault(step, set())

    def _note(self, sql: str) -> None:
        names = set(_NAMED.findall(sql)) - set(_CTE.findall(sql))
        names = {n for n in names if n.startswith("_tg_") or n in self.store_tables}
        self.read[self.step] |= names

    def table(self, name: str, sql: str) -> None:
        self.created[self.step].append(name)
        self._note(sql)
        super().table(name, sql)

    def view(self, name: str, sql: str) -> None:
        self.created[self.step].append(name)
        self._note(sql)
        super().view(name, sql)

    def register(self, name, frame) -> None:
        self.created[self.step].append(name)
        super().register(name, frame)

    def rows(self, sql: str) -> list[tuple]:
        self._note(sql)
        return super().rows(sql)

    def df(self, sql: str):
        self._note(sql)
        return super().df(sql)

    def columns(self, table: str) -> list[str]:
        self.read[self.step].add(table)
        return super().columns(table)

    def has_table(self, name: str) -> bool:
        self.read[self.step].add(name)
        return super().has_table(name)


@pytest.fixture(scope="module")
def recorded() -> _Recording:
    """A build over streams that end, a raid and a bot, with suspected bots dropped, so that
    every step has work and every table is read."""
    con = new_store()
    sids = add_snapshots(con, 4)
    add_live(con, sids, "a", viewers=300, chatters=users_named("u", 10) + ["nightbot"])
    add_live(con, sids[:2], "b", viewers=200, chatters=users_named("u", 10, start=5))
    add_live(con, sids[2:], "c", viewers=100, chatters=users_named("u", 8, start=8))
    con.execute("INSERT INTO raids SELECT snapshot_id, started_at, 'b', 'B', 'a', 12 "
                "FROM snapshots WHERE snapshot_id = ?", [sids[1]])
    engine = _Recording(con)
    params = BuildParams(every_nth=1, min_live_minutes=0, min_viewer_mean=0,
                         min_chatter_mean=0, min_weight=0, min_game_minutes=0,
                         drop_suspected=True)
    data = build_graph(engine, params, progress=engine.start)
    assert len(data.flows) and len(data.raids), "the fixture must give every step work"
    return engine


def test_the_steps_run_in_the_listed_order(recorded):
    assert list(recorded.created) == [step.name for step in BUILD_STEPS]


@pytest.mark.parametrize("step", BUILD_STEPS, ids=lambda s: s.name)
def test_each_step_creates_what_it_says(recorded, step):
    assert sorted(set(recorded.created[step.name])) == sorted(step.creates)


@pytest.mark.parametrize("step", BUILD_STEPS, ids=lambda s: s.name)
def test_each_step_reads_what_it_says_and_nothing_else(recorded, step):
    read = recorded.read[step.name] - set(step.creates)
    assert read == set(step.reads)


def test_a_step_reads_only_tables_made_before_it():
    made: set[str] = set()
    for step in BUILD_STEPS:
        early = [t for t in step.reads if t.startswith("_tg_") and t not in made]
        assert early == [], f"{step.name} reads {early} before any step makes them"
        made |= set(step.creates)


def test_the_steps_return_every_table_of_the_graph():
    returned = [name for step in BUILD_STEPS for name in step.returns]
    assert sorted(returned) == sorted(["streamers", "edges", "played", "games", "raids",
                                       "flows"])
