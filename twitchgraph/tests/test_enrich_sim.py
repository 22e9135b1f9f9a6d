"""Enrichment end to end against the simulated Twitch (Helix, IGDB, Steam, GQL on loopback)."""

from __future__ import annotations

import httpx

from twitchgraph.build.definition import build_graph
from twitchgraph.build.params import BuildParams
from twitchgraph.enrich import run_enrichment
from twitchgraph.sim import run_simulator
from twitchgraph.twitch.credentials import load_credentials
from twitchgraph.twitch.endpoints import Endpoints

from ._build_fixtures import add_live, add_snapshots, new_store


def test_enrich_against_the_simulator():
    with run_simulator(channels=60, users=600, seed=5) as sim:
        env = sim.env()
        truth = sim.ground_truth()["games"]
        channels = sim.ground_truth()["channels"]
        streams = sim.live_streams()
        con = new_store()
        sids = add_snapshots(con, 4)
        for s in streams:
            add_live(con, sids, s["user_login"], viewers=s["viewer_count"], game=s["game_name"],
                     game_id=s["game_id"], chatters=["x"])  # fmt: skip
        with httpx.Client(timeout=10) as http:
            reports = {r.source: r for r in run_enrichment(
                con, endpoints=Endpoints.from_env(env), credentials=load_credentials(env, None),
                http=http, social_source="gql", steam_interval_s=0.0)}  # fmt: skip
            assert all(r.error is None for r in reports.values()), reports
            # a rerun asks nothing new of any source
            again = {r.source: r for r in run_enrichment(
                con, endpoints=Endpoints.from_env(env), credentials=load_credentials(env, None),
                http=http, social_source="gql", steam_interval_s=0.0)}  # fmt: skip
        assert sum(r.asked for r in again.values() if r.source != "social (description)") == 0
    played = {s["game_name"] for s in streams}
    params = BuildParams(every_nth=1, min_viewer_mean=0, min_chatter_mean=0,
                         min_live_minutes=0, min_game_minutes=0)
    games = build_graph(con, params).games.set_index("Id")
    for name in played:
        row, want = games.loc[name], truth[name]
        assert row.game_id == want["twitch_id"]
        if want["igdb_id"] is not None:
            assert row.igdb_id == str(want["igdb_id"]) and row.genres
        if want["match"] in ("exact", "normalised"):
            assert row.steam_appid == want["steam_appid"], name
            assert row.categories, name
        elif want["match"] == "absent":
            assert row.steam_appid is None or str(row.steam_appid) == "<NA>", name
    stored = con.execute(
        "SELECT login, list_sort(list(url)) FROM social_links WHERE source = 'gql' GROUP BY 1"
    ).fetchall()
    assert stored, "no About-panel links stored"
    for login, urls in stored:
        assert urls == sorted(channels[login]["social_links"])
    btypes = dict(con.execute("SELECT login, broadcaster_type FROM users").fetchall())
    assert btypes == {s["user_login"]: channels[s["user_login"]]["broadcaster_type"]
                      for s in streams}  # fmt: skip
