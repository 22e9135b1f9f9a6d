"""Quality and exploration reports on a tiny store: tables say what was put in, pages embed."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pandas as pd
import pytest

from twitchgraph.build.definition import build_graph
from twitchgraph.build.params import BuildParams
from twitchgraph.graphio import RAID_COLUMNS, GraphDirError, write_graph_dir
from twitchgraph.reports.explore import explore_tables, write_explore_report
from twitchgraph.reports.quality import quality_tables, write_quality_report

from ._build_fixtures import T0, add_live, add_snapshots, new_store, users_named


@pytest.fixture
def store():
    con = new_store()
    add_snapshots(con, 3)  # 10:00, 10:05, 10:10
    add_snapshots(con, 1, start=T0 + timedelta(minutes=25), first_id=4)  # 15 min: gap
    add_snapshots(con, 1, start=T0 + timedelta(minutes=31), first_id=5)  # 6 min: late
    add_snapshots(con, 1, start=T0 + timedelta(minutes=35), first_id=6, status="failed")
    sids = [1, 2, 3, 4, 5]
    for i in range(12):
        chat = users_named(f"f{i}_", 12) + ["omni"] + (["shared"] if i < 2 else [])
        add_live(con, sids, f"ch{i}", viewers=50 + i, chatters=chat,
                 game="Chess" if i % 2 else "Tetris", language="it" if i < 10 else "en")
    add_live(con, [2], "ch0", viewers=40)  # a paging repeat in snapshot 2
    add_live(con, [1], "big", viewers=5000, chatters=["talker"], source="message")
    con.execute("INSERT INTO listens VALUES (1, 'big', 60, false), (1, 'ch1', 60, true)")
    return con


def test_quality_tables_find_what_was_put_in(store):
    t = quality_tables(store)
    assert t["failures"][["snapshot_id", "reason"]].values.tolist() == [[6, "failed"]]
    verdicts = dict(zip(t["schedule"].snapshot_id, t["schedule"].verdict, strict=True))
    assert verdicts == {1: "ok", 2: "ok", 3: "ok", 4: "gap", 5: "late", 6: "failed"}
    assert t["duplicates"][["snapshot_id", "login", "rows"]].values.tolist() == [[2, "ch0", 2]]
    assert list(t["suspected_bots"].login) == ["omni"]  # in 12 of 12 channels
    rooms = t["message_only_rooms"]
    assert list(rooms.channel) == ["big"]
    assert rooms.no_membership.iloc[0] == 1 and rooms.only_message_senders.iloc[0] == 1
    chat = t["chatters"].set_index("snapshot_id")
    assert chat.loc[1, "chatter_rows"] == 2 * 14 + 10 * 13 + 1  # 12 fans + omni (+ shared)
    assert chat.loc[1, "messages"] == 1
    comp = t["completeness"].set_index(["table", "column"])
    assert comp.loc[("streams", "game_name"), "filled_pct"] == 100.0
    enrich = t["enrichment"].set_index("source")
    assert enrich.loc["helix games", "items"] == 2 and enrich.loc["helix games", "asked"] == 0


def _embedded_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def test_quality_page_is_self_contained(store, tmp_path):
    page = write_quality_report(store, tmp_path / "q")
    html = page.read_text()
    pngs = _embedded_pngs(html)
    assert len(pngs) == 2 and all(p.startswith(b"\x89PNG") for p in pngs)
    assert sorted(p.name for p in (tmp_path / "q" / "figures").iterdir()) == [
        "chatters_per_snapshot.png", "snapshot_spacing.png"]  # fmt: skip
    assert "http://" not in html and "https://" not in html  # opens offline
    assert "omni" in html and "Rooms where only message senders" in html
    # failures come first
    assert html.index("Failed snapshots") < html.index("Snapshots against the schedule")


def test_explore_with_store_and_graph(store, tmp_path):
    result = build_graph(store, BuildParams(every_nth=1, min_live_minutes=0, min_viewer_mean=0,
                         min_chatter_mean=0, min_weight=0, min_game_minutes=0,
                         drop_suspected=True))  # fmt: skip
    graph = write_graph_dir(result, tmp_path / "g")
    (graph / "raids.csv").write_text(
        "Source,Target,raids,viewers_total,first_at,last_at,Type\n"
        "ch1,ch2,1,30,2022-05-02T10:01:00Z,2022-05-02T10:01:00Z,Directed\n"
        "ch3,ch0,2,300,2022-05-02T10:02:00Z,2022-05-02T10:07:00Z,Directed\n")
    (graph / "flows.csv").write_text(
        "Source,Target,viewers,ends,first_at,last_at,Type\n"
        "ch1,ch2,10,1,2022-05-02T10:05:00Z,2022-05-02T10:05:00Z,Directed\n"
        "ch3,ch2,30,2,2022-05-02T10:05:00Z,2022-05-02T10:10:00Z,Directed\n")
    streamers = pd.read_csv(graph / "streamers.csv", keep_default_na=False)
    streamers["end_chatters"] = streamers["login"].map({"ch1": 40}).fillna(0).astype(int)
    streamers.to_csv(graph / "streamers.csv", index=False)
    t = explore_tables(store, graph)
    assert t["top_raids"][["Source", "Target", "viewers_total"]].values.tolist() == [
        ["ch3", "ch0", 300], ["ch1", "ch2", 30]]
    flows = t["top_flows"]
    assert flows[["Source", "Target", "viewers"]].values.tolist() == [
        ["ch3", "ch2", 30], ["ch1", "ch2", 10]]
    # ch1's ends had 40 chatters, 10 went to ch2; ch2 gained 40 at ends, 30 from ch3;
    # ch3 had no chatters at its ends in streamers.csv: no share of them
    assert flows["share_of_arrivals_pct"].tolist() == [75.0, 25.0]
    assert flows["share_of_ends_pct"].iloc[1] == 25.0 and pd.isna(flows["share_of_ends_pct"][0])
    degree = t["degree"].set_index("Id")["degree"]
    assert degree["ch0"] == 1 and degree["ch1"] == 1 and degree["ch5"] == 0  # via "shared"
    assert t["languages"].set_index("language").loc["it", "streamers"] == 11  # ch0..ch9 + big
    assert set(t["hourly"].hour_utc) == {10}
    page = write_explore_report(store, graph, tmp_path / "x")
    html = page.read_text()
    assert len(_embedded_pngs(html)) == 7
    assert "min_weight=0" in html
    assert html.index("Top raid flows") > html.index("Top edges")
    assert html.index("Top flows at stream ends") > html.index("Top raid flows")


def test_explore_needs_an_input(tmp_path):
    with pytest.raises(ValueError, match="--db"):
        explore_tables(None, None)
    with pytest.raises(GraphDirError, match="not a GRAPH_DIR"):
        explore_tables(None, tmp_path)


def test_explore_keeps_a_login_called_nan(store, tmp_path):
    # A streamer may be called "nan": a bare read_csv would turn it into a missing value.
    data = build_graph(store, BuildParams(every_nth=1, min_live_minutes=0, min_viewer_mean=0,
                       min_chatter_mean=0, min_weight=0, min_game_minutes=0))
    rename = {"ch0": "nan", "ch1": "null"}
    data.streamers[["Id", "login"]] = data.streamers[["Id", "login"]].replace(rename)
    data.edges[["Source", "Target"]] = data.edges[["Source", "Target"]].replace(rename)
    data.raids = pd.DataFrame([("nan", "null", 1, 7, "2022-05-02T10:01:00Z",
                                "2022-05-02T10:01:00Z", "Directed")], columns=RAID_COLUMNS)
    t = explore_tables(None, write_graph_dir(data, tmp_path / "g"))
    assert {"nan", "null"} <= set(t["degree"]["Id"])
    assert t["degree"].set_index("Id").loc["nan", "degree"] >= 1
    assert t["top_raids"][["Source", "Target"]].values.tolist() == [["nan", "null"]]


def test_quality_page_shows_snapshots_set_aside_first(store, tmp_path):
    error = "the raid a -> b has viewer count 10000000000, not a whole number from 0 to 2147483647"
    page = write_quality_report(store, tmp_path / "q", set_aside=[("x.bad", error)])
    html = page.read_text()
    assert html.index("Snapshots set aside") < html.index("Failed snapshots")
    assert error.replace(">", "&gt;") in html


def test_quality_page_flags_a_store_that_mixes_endpoints(tmp_path):
    from datetime import UTC, datetime

    from twitchgraph.store.db import SnapshotData, open_store, write_snapshot
    from twitchgraph.twitch.endpoints import Endpoints

    con = open_store(":memory:")
    at = datetime(2026, 3, 1, tzinfo=UTC)
    write_snapshot(con, SnapshotData(started_at=at, finished_at=at, status="failed",
                                     endpoints=Endpoints().collect_label()))
    html = write_quality_report(con, tmp_path / "one").read_text()
    assert "Snapshots from different endpoints" not in html
    write_snapshot(con, SnapshotData(started_at=at, finished_at=at, status="failed",
                                     endpoints="api=http://127.0.0.1:5/helix"))
    html = write_quality_report(con, tmp_path / "two").read_text()
    assert html.index("Snapshots from different endpoints") < html.index("Failed snapshots")
    assert "api=http://127.0.0.1:5/helix" in html
