"""Enrichment sources against httpx.MockTransport with the real APIs' documented shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pandas as pd
import pytest

from twitchgraph.build.definition import build_graph
from twitchgraph.build.params import BuildParams
from twitchgraph.enrich import run_enrichment
from twitchgraph.enrich.igdb import IGDBClient, parse_igdb_game
from twitchgraph.twitch.credentials import Credentials
from twitchgraph.twitch.endpoints import Endpoints

from ._build_fixtures import add_live, add_snapshots, new_store

ENDPOINTS = Endpoints(
    api_url="https://api.test/helix",
    auth_url="https://id.test/oauth2",
    igdb_url="https://igdb.test/v4",
    steam_store_url="https://store.test",
    steam_api_url="https://steamapi.test",
    gql_url="https://gql.test/gql",
)
CREDS = Credentials(client_id="cid", client_secret="s3cret")

HELIX_GAMES = {  # Helix Get Games: data[] of {id, name, box_art_url, igdb_id}
    "1": {"id": "1", "name": "Ashen Frontier", "box_art_url": "https://x/{width}x{height}.jpg",
          "igdb_id": "101"},
    "2": {"id": "2", "name": "Starfall Tactics", "box_art_url": "", "igdb_id": "102"},
    "3": {"id": "3", "name": "Just Chatting", "box_art_url": "", "igdb_id": ""},
}  # fmt: skip
IGDB = {  # IGDB /games with expanded references
    101: {"id": 101, "name": "Ashen Frontier", "first_release_date": 1552521600,
          "genres": [{"id": 5, "name": "Shooter"}, {"id": 31, "name": "Adventure"}],
          "themes": [{"id": 1, "name": "Action"}],
          "involved_companies": [
              {"id": 1, "company": {"id": 9, "name": "Greyline Studio"}, "developer": True,
               "publisher": False},
              {"id": 2, "company": {"id": 8, "name": "Northgate Games"}, "developer": False,
               "publisher": True}]},
}  # fmt: skip
STEAM_APPS = [{"appid": 730, "name": "Ashen Frontier"}, {"appid": 440, "name": "Starfall Tactics™"},
              {"appid": 570, "name": "Something Else"}]  # fmt: skip
STEAM_DETAILS = {
    730: {"type": "game", "name": "Ashen Frontier", "steam_appid": 730,
          "developers": ["Greyline Studio"], "publishers": ["Northgate Games"],
          "release_date": {"coming_soon": False, "date": "14 Mar, 2019"},
          "categories": [{"id": 2, "description": "Single-player"},
                         {"id": 1, "description": "Multi-player"}],
          "genres": [{"id": "1", "description": "Action"}]},
}  # fmt: skip


class FakeClock:
    """Virtual time: sleeping advances it instantly and is recorded."""

    def __init__(self) -> None:
        self.t = datetime(2022, 5, 2, tzinfo=UTC)
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += timedelta(seconds=max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


class FakeServices:
    def __init__(self, *, steam_down: bool = False) -> None:
        self.calls: list[str] = []
        self.igdb_bodies: list[str] = []
        self.steam_down = steam_down

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, request.url.path
        self.calls.append(f"{host}{path}")
        if path == "/oauth2/token":
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 5000000,
                                             "token_type": "bearer"})  # fmt: skip
        if host in ("api.test", "igdb.test"):
            assert request.headers["Authorization"] == "Bearer tok"
            assert request.headers["Client-Id"] == "cid"
        if path == "/helix/games":
            ids = parse_qs(request.url.query.decode())["id"]
            return httpx.Response(200, json={"data": [HELIX_GAMES[i] for i in ids
                                                      if i in HELIX_GAMES]})  # fmt: skip
        if path == "/helix/users":
            return httpx.Response(200, json={"data": [
                {"id": "77", "login": "alpha", "display_name": "Alpha", "type": "",
                 "broadcaster_type": "partner", "description": "ig: instagram.com/alpha",
                 "profile_image_url": "", "created_at": "2016-01-01T00:00:00Z"}]})  # fmt: skip
        if path == "/v4/games":
            body = request.content.decode()
            self.igdb_bodies.append(body)
            ids = [int(x) for x in body.split("where id = (")[1].split(")")[0].split(",")]
            return httpx.Response(200, json=[IGDB[i] for i in ids if i in IGDB])
        if path == "/ISteamApps/GetAppList/v2/":
            if self.steam_down:
                return httpx.Response(503, text="down")
            return httpx.Response(200, json={"applist": {"apps": STEAM_APPS}})
        if path == "/api/appdetails":
            appid = int(request.url.params["appids"])
            if appid in STEAM_DETAILS:
                return httpx.Response(200, json={str(appid): {"success": True,
                                                              "data": STEAM_DETAILS[appid]}})
            return httpx.Response(200, json={str(appid): {"success": False}})
        return httpx.Response(404)


@pytest.fixture
def store():
    con = new_store()
    sids = add_snapshots(con, 12)
    add_live(con, sids, "alpha", viewers=300, game="Ashen Frontier", game_id="1",
             chatters=[f"u{i}" for i in range(12)])  # fmt: skip
    add_live(con, sids, "beta", viewers=200, game="Starfall Tactics", game_id="2",
             chatters=[f"u{i}" for i in range(12)])  # fmt: skip
    add_live(con, sids, "gamma", viewers=100, game="Lost Game", game_id="9",
             chatters=[f"u{i}" for i in range(12)])  # fmt: skip
    return con


def _run(con, services, clock, **kw):
    http = httpx.Client(transport=httpx.MockTransport(services))
    return {r.source: r for r in run_enrichment(
        con, endpoints=ENDPOINTS, credentials=CREDS, http=http, clock=clock,
        steam_interval_s=0, **kw)}  # fmt: skip


def test_all_sources_fill_the_cache_and_the_graph(store):
    services, clock, seen = FakeServices(), FakeClock(), []
    reports = _run(store, services, clock, progress=lambda *step: seen.append(step))
    assert all(r.error is None for r in reports.values()), reports
    assert seen == [("steam", 1, 2), ("steam", 2, 2)]  # appdetails of 440 and 730
    assert (reports["helix games"].asked, reports["helix games"].found) == (3, 2)
    assert (reports["igdb"].asked, reports["igdb"].found) == (2, 1)
    assert "fields name,genres.name" in services.igdb_bodies[0]
    assert "where id = (101,102); limit 2;" in services.igdb_bodies[0]
    assert reports["steam"].matched == 2
    assert reports["helix users"].found == 1
    fetched = store.execute("SELECT login, found FROM user_fetches ORDER BY 1").fetchall()
    assert fetched == [("alpha", True), ("beta", False), ("gamma", False)]
    params = BuildParams(every_nth=1, min_chatter_mean=0)
    games = build_graph(store, params).games.set_index("Id")
    ashen = games.loc["Ashen Frontier"]
    assert ashen.igdb_id == "101"
    assert ashen.genres == "Shooter;Adventure"
    assert ashen.release_date == "2019-03-14"
    assert (ashen.developers, ashen.publishers) == ("Greyline Studio", "Northgate Games")
    assert (ashen.steam_appid, ashen.steam_match, ashen.steam_match_score) == (730, "exact", 100)
    assert (ashen.categories, ashen.tags) == ("Single-player;Multi-player", "Action")
    star = games.loc["Starfall Tactics"]
    assert (star.steam_appid, star.steam_match) == (440, "normalised")
    assert pd.isna(games.loc["Lost Game"].steam_appid)
    details = dict(store.execute("SELECT appid, release_date FROM steam_details").fetchall())
    assert details == {730: "2019-03-14", 440: None}  # "14 Mar, 2019"; 440 has no page
    links = store.execute("SELECT login, url FROM social_links").fetchall()
    assert links == [("alpha", "https://instagram.com/alpha")]


def test_rerun_asks_only_for_what_is_missing(store):
    services, clock = FakeServices(), FakeClock()
    _run(store, services, clock)
    first = len(services.calls)
    reports = _run(store, services, clock)
    assert services.calls[first:] == ["id.test/oauth2/token"] or services.calls[first:] == []
    assert reports["helix games"].asked == 0 and reports["steam"].asked == 0
    add_live(store, [1], "delta", game="New Game", game_id="4")
    _run(store, services, clock)
    new = [c for c in services.calls[first:] if "token" not in c]
    assert new == ["api.test/helix/users", "api.test/helix/games"]  # 4 unknown: no IGDB id


def test_a_failing_source_is_reported_and_the_others_go_on(store):
    services, clock = FakeServices(steam_down=True), FakeClock()
    reports = _run(store, services, clock)
    assert "Steam kept failing (HTTP 503" in reports["steam"].error
    assert reports["igdb"].error is None and reports["igdb"].found == 1
    assert reports["social (description)"].error is None
    assert services.calls.count("steamapi.test/ISteamApps/GetAppList/v2/") == 4  # 1 + 3 retries


def test_no_credentials_skips_twitch_sources(store):
    http = httpx.Client(transport=httpx.MockTransport(FakeServices()))
    reports = {r.source: r for r in run_enrichment(
        store, endpoints=ENDPOINTS, credentials=None, http=http, clock=FakeClock(),
        steam_interval_s=0)}  # fmt: skip
    assert "TWITCH_CLIENT_ID" in reports["helix games"].error
    assert "TWITCH_CLIENT_ID" in reports["igdb"].error
    assert reports["steam"].error is None and reports["steam"].matched == 2


def test_igdb_paces_four_requests_per_second_and_retries_429():
    replies = [httpx.Response(429), httpx.Response(200, json=[IGDB[101]]),
               httpx.Response(200, json=[])]  # fmt: skip
    bodies = []

    def handler(request):
        bodies.append(request.content.decode())
        return replies.pop(0)

    clock = FakeClock()
    client = IGDBClient(http=httpx.Client(transport=httpx.MockTransport(handler)),
                        auth=httpx.BasicAuth("a", "b"), igdb_url="https://igdb.test/v4",
                        clock=clock)  # fmt: skip
    assert [g["id"] for g in client.games([101])] == [101]
    assert client.games([5]) == []
    assert len(bodies) == 3
    # after the 429 a backoff (0.5 s), then each call at least 0.25 s after the previous one
    assert clock.sleeps[0] == pytest.approx(0.5)
    assert all(s <= 0.25 + 1e-9 for s in clock.sleeps[1:])
    assert json.dumps(parse_igdb_game(IGDB[101])["release_date"], default=str) == '"2019-03-14"'


def test_a_bug_in_a_source_is_not_reported_as_its_failure(store, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug, not a service failing")

    monkeypatch.setattr("twitchgraph.enrich.steam.enrich_steam", broken)
    with pytest.raises(ZeroDivisionError):
        _run(store, FakeServices(), FakeClock())
