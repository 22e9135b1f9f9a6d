"""serve's incremental aggregates equal a full build row for row, batch after batch, and start
again when what they were folded under changes (issue 25 item 2)."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _build_fixtures import T0  # noqa: E402

from twitchgraph.build.bots import ensure_bot_table  # noqa: E402
from twitchgraph.build.definition import build_graph  # noqa: E402
from twitchgraph.build.params import BuildParams  # noqa: E402
from twitchgraph.serve.aggregates import IncrementalBuild, covers  # noqa: E402
from twitchgraph.store.db import SCHEMA_VERSION, open_store  # noqa: E402

PARAMS = BuildParams(every_nth=2, min_live_minutes=0, min_viewer_mean=5, min_chatter_mean=2,
                     min_weight=5)
CHANNELS = [f"ch{i}" for i in range(14)]
GAMES = ["Chess", "Art", "", None, "Music"]


def _snapshots(con, first_id: int, n: int, *, start=None, seed: int = 0,
               minutes: int = 10) -> None:
    """`n` snapshots `minutes` apart: random channels live, chatters from pools shared by
    neighbouring channels, a duplicate stream row, bots, a streamer in their own chat."""
    rng = np.random.default_rng(seed + first_id)
    start = start or T0 + timedelta(minutes=10 * (first_id - 1))
    for k in range(n):
        sid = first_id + k
        at = start + timedelta(minutes=minutes * k)
        con.execute("INSERT INTO snapshots (snapshot_id, started_at, finished_at, status, "
                    "interval_s) VALUES (?, ?, ?, 'complete', 600)",
                    [sid, at, at + timedelta(minutes=1)])
        for i, channel in enumerate(CHANNELS):
            if rng.random() < 0.35:
                continue
            game = GAMES[int(rng.integers(len(GAMES)))]
            rows = [(int(rng.integers(1, 400)), game)]
            if rng.random() < 0.1:  # Helix paging gave the stream twice
                rows.append((rows[0][0] - 1, "Art"))
            for viewers, g in rows:
                con.execute("INSERT INTO streams VALUES (?, ?, ?, ?, ?, ?, ?, 'title', ?, ?, ?, "
                            "[], false)",
                            [sid, f"s-{channel}", f"u-{channel}", channel,
                             f"{channel.title()}{sid % 3}", None if g is None else f"g-{g}", g,
                             viewers, at, "en" if i % 5 == 0 else "it"])
            pool = [f"v{(i // 3) * 40 + j}" for j in range(40)] + [f"w{j}" for j in range(60)]
            users = set(rng.choice(pool, size=int(rng.integers(3, 30)), replace=False))
            users |= {"nightbot", "listedbot"} if rng.random() < 0.5 else set()
            if rng.random() < 0.2:
                users.add(channel)  # the streamer in their own chat
            con.executemany("INSERT INTO chatters VALUES (?, ?, ?, 'names')",
                            [[sid, channel, u] for u in sorted(users)])
        if rng.random() < 0.5:
            a, b = rng.choice(CHANNELS, 2, replace=False)
            con.execute("INSERT INTO raids VALUES (?, ?, ?, ?, ?, ?)",
                        [sid, at, str(a), str(a), str(b), int(rng.integers(1, 90))])


def _same(full, got) -> None:
    for name in ("streamers", "edges", "played", "games", "raids", "flows"):
        a = getattr(full, name).reset_index(drop=True)
        b = getattr(got, name).reset_index(drop=True)
        pd.testing.assert_frame_equal(b, a, check_dtype=False, check_exact=False, rtol=1e-9,
                                      atol=1e-9, obj=name)
    # the streamers' end figures: counts exact
    for column in ("ends", "end_chatters"):
        assert got.streamers[column].astype(int).tolist() == full.streamers[column].tolist()
    assert got.build["flows"] == full.build["flows"]


def _both(db: Path, incremental: IncrementalBuild, params: BuildParams):
    con = open_store(db, read_only=True)
    try:
        return (build_graph(con, params),
                incremental.build(con, params, schema_version=SCHEMA_VERSION))
    finally:
        con.close()


def test_incremental_equals_a_full_build_after_each_batch(tmp_path):
    db = tmp_path / "s.duckdb"
    open_store(db).close()
    incremental = IncrementalBuild(tmp_path / "aggregates.duckdb")
    first = 1
    for n in (5, 1, 8, 1, 6):
        con = open_store(db)
        _snapshots(con, first, n)
        con.close()
        first += n
        full, got = _both(db, incremental, PARAMS)
        # something to compare
        assert len(full.edges) and len(full.streamers) > 5 and (first < 8 or len(full.flows))
        _same(full, got)
    # 21 snapshots, every second used: the last batch brought 3 of the 11.
    assert incremental.note == "aggregates: 3 new snapshots folded in, 8 kept"
    # A language filter and the other weights are parameters: their own aggregates.
    for params in (replace(PARAMS, language="it"), replace(PARAMS, weight="jaccard"),
                   replace(PARAMS, every_nth=1, weight="shared", min_weight=3)):
        full, got = _both(db, incremental, params)
        assert "other build parameters" in incremental.note
        _same(full, got)


def _late_channel(con, first_id: int, n: int, viewers: int) -> None:
    """A channel "late" live in every other snapshot of ``first_id .. first_id + n - 1``
    (so that its streams end), with `viewers` viewers and chatters the others share."""
    for sid in range(first_id, first_id + n, 2):
        at = con.execute("SELECT started_at FROM snapshots WHERE snapshot_id = ?",
                         [sid]).fetchone()[0]
        con.execute("INSERT INTO streams VALUES (?, 's-late', 'u-late', 'late', 'Late', "
                    "'g-Chess', 'Chess', 'title', ?, ?, 'it', [], false)", [sid, viewers, at])
        con.executemany("INSERT INTO chatters VALUES (?, 'late', ?, 'names')",
                        [[sid, f"w{j}"] for j in range(sid % 7, 60, 3)])


def test_flows_follow_a_new_median_spacing_and_a_streamer_kept_later(tmp_path):
    """A 25 minute pause is a gap while snapshots come every 10 minutes, and no gap once
    most come every 15; a channel under the thresholds at first is kept later, with the ends
    it had before."""
    db = tmp_path / "s.duckdb"
    open_store(db).close()
    incremental = IncrementalBuild(tmp_path / "aggregates.duckdb")
    params = replace(PARAMS, every_nth=1, min_viewer_mean=20)
    batches = [(1, 6, T0, 10, 1), (7, 1, T0 + timedelta(minutes=75), 10, 1),
               (8, 8, T0 + timedelta(minutes=90), 15, 2000)]
    gaps = []
    for first, n, start, minutes, viewers in batches:
        con = open_store(db)
        _snapshots(con, first, n, start=start, minutes=minutes)
        _late_channel(con, first, n, viewers)
        con.close()
        full, got = _both(db, incremental, params)
        _same(full, got)
        gaps.append(full.build["flows"]["gaps_skipped"])
        kept = set(full.streamers["login"])
        assert ("late" in kept) == (viewers > 1)
    assert gaps == [0, 1, 0]
    late = full.streamers.set_index("login").loc["late"]
    # live in 1, 3, 5, 7, 8, 10, 12, 14: three of its ends came before it was kept
    assert late["ends"] == 7 and late["end_chatters"] > 0
    assert incremental.note == "aggregates: 8 new snapshots folded in, 7 kept"


def test_a_past_snapshot_or_new_bots_start_the_aggregates_again(tmp_path):
    db = tmp_path / "s.duckdb"
    con = open_store(db)
    _snapshots(con, 10, 8)
    con.close()
    incremental = IncrementalBuild(tmp_path / "aggregates.duckdb")
    _same(*_both(db, incremental, PARAMS))
    assert "from scratch: first build" in incremental.note
    con = open_store(db)  # imported late: older than everything folded in
    _snapshots(con, 1, 1, start=T0 - timedelta(hours=1))
    con.close()
    _same(*_both(db, incremental, PARAMS))
    assert "every_nth shifts" in incremental.note
    con = open_store(db)
    ensure_bot_table(con)
    con.execute("INSERT INTO bots (login, source) VALUES ('listedbot', 'test')")
    con.close()
    full, got = _both(db, incremental, PARAMS)
    assert "from scratch: new bots" in incremental.note
    _same(full, got)
    assert "listedbot" not in set(full.edges["Source"]) | set(full.edges["Target"])
    con = open_store(db)
    _snapshots(con, 18, 3)
    con.close()
    _same(*_both(db, incremental, PARAMS))
    # 12 snapshots, every second used: one more than the 5 folded in.
    assert incremental.note == "aggregates: 1 new snapshot folded in, 5 kept"


def test_what_the_aggregates_do_not_cover_is_said():
    assert covers(PARAMS) == ""
    assert "window" in covers(replace(PARAMS, since=T0))
    assert "drop_suspected" in covers(replace(PARAMS, drop_suspected=True))


@pytest.mark.parametrize("batch", [1, 3])
def test_nothing_to_build_fails_as_the_build_does(tmp_path, batch):
    from twitchgraph.build.definition import BuildError

    db = tmp_path / "s.duckdb"
    con = open_store(db)
    _snapshots(con, 1, batch)
    con.close()
    incremental = IncrementalBuild(tmp_path / "aggregates.duckdb")
    strict = replace(PARAMS, min_viewer_mean=10_000)
    con = open_store(db, read_only=True)
    with pytest.raises(BuildError) as full:
        build_graph(con, strict)
    with pytest.raises(BuildError) as got:
        incremental.build(con, strict, schema_version=SCHEMA_VERSION)
    con.close()
    assert str(got.value) == str(full.value)
