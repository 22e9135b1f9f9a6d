"""The simulator's HTTP endpoints, exercised with plain httpx as a client would."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from twitchgraph.sim import run_simulator

IGDB_FIELDS = ("fields name,genres.name,themes.name,first_release_date,"
               "involved_companies.company.name,involved_companies.developer,"
               "involved_companies.publisher;")


@pytest.fixture(scope="module")
def sim():
    with run_simulator(channels=250, users=3000, seed=5) as s:
        yield s


@pytest.fixture(scope="module")
def http():
    with httpx.Client(timeout=10) as client:
        yield client


def _token(http: httpx.Client, env: dict[str, str]) -> str:
    r = http.post(env["TWITCH_AUTH_URL"] + "/token", data={
        "client_id": env["TWITCH_CLIENT_ID"], "client_secret": env["TWITCH_CLIENT_SECRET"],
        "grant_type": "client_credentials"})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def _headers(http: httpx.Client, env: dict[str, str]) -> dict[str, str]:
    return {"Client-Id": env["TWITCH_CLIENT_ID"], "Authorization": f"Bearer {_token(http, env)}"}


def _all_pages(http, env, headers, max_pages=50, **params):
    pages, cursor = [], None
    for _ in range(max_pages):
        query = {"first": 100, **params}
        if cursor:
            query["after"] = cursor
        r = http.get(env["TWITCH_API_URL"] + "/streams", params=query, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body["data"])
        cursor = body["pagination"].get("cursor")
        if not cursor:
            break
    return pages, cursor


def test_env_points_every_endpoint_at_loopback(sim):
    env = sim.env()
    assert env["TWITCH_CHAT_TLS"] == "0"
    for key in ("TWITCH_API_URL", "TWITCH_AUTH_URL", "IGDB_API_URL", "STEAM_STORE_URL",
                "STEAM_API_URL", "TWITCH_GQL_URL"):
        assert env[key].startswith("http://127.0.0.1:")
    assert env["TWITCH_CHAT_HOST"].startswith("127.0.0.1:")
    shown = repr(sim.credentials)
    assert "***" in shown and sim.credentials.client_secret not in shown


def test_client_credentials_token_and_bad_credentials(sim, http):
    env = sim.env()
    url = env["TWITCH_AUTH_URL"] + "/token"
    good = {"client_id": env["TWITCH_CLIENT_ID"], "client_secret": env["TWITCH_CLIENT_SECRET"],
            "grant_type": "client_credentials"}
    body = http.post(url, params=good).json()  # Twitch also takes query parameters
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert http.post(url, data={**good, "client_secret": "nope"}).status_code == 403
    assert http.post(url, data={**good, "client_id": "nope"}).status_code == 400
    assert http.post(url, data={**good, "grant_type": "password"}).status_code == 400


def test_helix_needs_token_and_client_id(sim, http):
    env = sim.env()
    url = env["TWITCH_API_URL"] + "/streams"
    no_token = http.get(url, headers={"Client-Id": env["TWITCH_CLIENT_ID"]})
    assert no_token.status_code == 401
    assert no_token.json()["error"] == "Unauthorized"
    bad = http.get(url, headers={"Client-Id": env["TWITCH_CLIENT_ID"],
                                 "Authorization": "Bearer 0123456789"})
    assert bad.status_code == 401 and "WWW-Authenticate" in bad.headers
    headers = _headers(http, env)
    assert http.get(url, headers={**headers, "Client-Id": "someoneelse"}).status_code == 401
    assert http.get(url, headers={"Authorization": headers["Authorization"]}).status_code == 401
    assert http.post(env["IGDB_API_URL"] + "/games", content="fields name;").status_code == 401


def test_rate_limit_headers_and_429_beyond_the_budget(http):
    with run_simulator(channels=20, users=200, seed=1, helix_points_per_minute=5) as small:
        env = small.env()
        headers = _headers(http, env)
        url = env["TWITCH_API_URL"] + "/streams"
        replies = [http.get(url, headers=headers) for _ in range(7)]
        statuses = [r.status_code for r in replies]
        assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
        remaining = [int(r.headers["Ratelimit-Remaining"]) for r in replies[:5]]
        assert remaining == sorted(remaining, reverse=True) and remaining[-1] == 0
        assert all(r.headers["Ratelimit-Limit"] == "5" for r in replies)
        reset = int(replies[-1].headers["Ratelimit-Reset"])
        assert time.time() < reset <= time.time() + 61
        assert small.stats()["http_429"] == 2


def test_streams_paging_is_sorted_and_complete_without_faults(sim, http):
    env = sim.env()
    pages, cursor = _all_pages(http, env, _headers(http, env))
    streams = [s for page in pages for s in page]
    counts = [s["viewer_count"] for s in streams]
    assert cursor is None and len(pages) >= 2
    assert counts == sorted(counts, reverse=True)
    assert len({s["id"] for s in streams}) == len(streams) == len(sim.live_streams())


def test_streams_filters(sim, http):
    env = sim.env()
    headers = _headers(http, env)
    url = env["TWITCH_API_URL"] + "/streams"
    live = sim.live_streams()
    lang = live[0]["language"]
    data = http.get(url, params={"language": lang, "first": 100}, headers=headers).json()["data"]
    assert data and all(s["language"] == lang for s in data)
    logins = [live[3]["user_login"], live[7]["user_login"]]
    data = http.get(url, params={"user_login": logins}, headers=headers).json()["data"]
    assert sorted(s["user_login"] for s in data) == sorted(logins)
    game = live[0]["game_id"]
    data = http.get(url, params={"game_id": game, "first": 100}, headers=headers).json()["data"]
    assert data and all(s["game_id"] == game for s in data)
    assert http.get(url, params={"first": 101}, headers=headers).status_code == 400


def test_duplicate_pages_and_looping_cursor_faults(http):
    with run_simulator(channels=400, users=2000, seed=2,
                       faults=("duplicate_pages", "loop_cursor")) as faulty:
        env = faulty.env()
        pages, cursor = _all_pages(http, env, _headers(http, env), max_pages=6)
        ids = [s["id"] for page in pages[:-1] for s in page]
        assert len(ids) > len(set(ids))  # the same stream on two pages
        # following the cursor past the end leads back to page 1
        first_page_ids = [s["id"] for s in pages[0]]
        looped = [p for p in pages[1:] if [s["id"] for s in p] == first_page_ids]
        assert looped


def test_users_and_games(sim, http):
    env = sim.env()
    headers = _headers(http, env)
    live = sim.live_streams()[:3]
    r = http.get(env["TWITCH_API_URL"] + "/users", headers=headers,
                 params=[("login", live[0]["user_login"]), ("id", live[1]["user_id"]),
                         ("login", "nosuchuser_zz")])
    users = r.json()["data"]
    assert {u["login"] for u in users} == {live[0]["user_login"], live[1]["user_login"]}
    assert {"id", "login", "display_name", "broadcaster_type", "description",
            "created_at", "profile_image_url", "type"} <= set(users[0])
    too_many = [("login", f"u{i}") for i in range(101)]
    assert http.get(env["TWITCH_API_URL"] + "/users", headers=headers,
                    params=too_many).status_code == 400
    r = http.get(env["TWITCH_API_URL"] + "/games", headers=headers,
                 params=[("id", live[0]["game_id"]), ("name", "Starfall Tactics")])
    games = {g["name"]: g for g in r.json()["data"]}
    assert "Starfall Tactics" in games and games["Starfall Tactics"]["igdb_id"].isdigit()
    assert live[0]["game_name"] in games


def test_igdb_apicalypse_expanded_and_plain_fields(sim, http):
    env = sim.env()
    headers = _headers(http, env)
    truth = sim.ground_truth()["games"]
    ids = [truth["Ashen Frontier"]["igdb_id"], truth["Iron Harbor"]["igdb_id"]]
    time.sleep(1.0)  # a fresh IGDB second
    body = f"{IGDB_FIELDS} where id = ({ids[0]},{ids[1]}); limit 10;"
    r = http.post(env["IGDB_API_URL"] + "/games", content=body, headers=headers)
    assert r.status_code == 200, r.text
    games = {g["name"]: g for g in r.json()}
    ashen = games["Ashen Frontier"]
    assert {"id", "name", "genres", "themes", "first_release_date",
            "involved_companies"} == set(ashen)
    assert all(set(g) == {"id", "name"} for g in ashen["genres"])
    companies = ashen["involved_companies"]
    assert any(c["developer"] and c["company"]["name"] == "Greyline Studio" for c in companies)
    r = http.post(env["IGDB_API_URL"] + "/games", headers=headers,
                  content='fields name,genres; where name = "Iron Harbor";')
    (plain,) = r.json()
    assert plain["id"] == ids[1] and all(isinstance(g, int) for g in plain["genres"])
    r = http.post(env["IGDB_API_URL"] + "/games", headers=headers, content="fields name; limt 3;")
    assert r.status_code == 400


def test_igdb_four_requests_per_second(sim, http):
    env = sim.env()
    headers = _headers(http, env)
    time.sleep(1.0)
    statuses = [http.post(env["IGDB_API_URL"] + "/games", headers=headers,
                          content="fields name; limit 1;").status_code for _ in range(6)]
    assert statuses.count(200) == 4 and statuses.count(429) == 2


def test_steam_app_list_and_appdetails(sim, http):
    env = sim.env()
    apps = http.get(env["STEAM_API_URL"] + "/ISteamApps/GetAppList/v2/").json()["applist"]["apps"]
    truth = sim.ground_truth()["games"]["Starfall Tactics"]
    assert {"appid": truth["steam_appid"], "name": "Starfall Tactics™"} in apps
    assert len(apps) > 200
    appid = str(truth["steam_appid"])
    r = http.get(env["STEAM_STORE_URL"] + "/api/appdetails", params={"appids": appid}).json()
    data = r[appid]["data"]
    assert r[appid]["success"] is True and data["developers"] == ["Orbit Forge"]
    assert data["release_date"]["date"] == "2 Sep, 2021"
    assert {"id", "description"} == set(data["categories"][0])
    missing = http.get(env["STEAM_STORE_URL"] + "/api/appdetails", params={"appids": "7"}).json()
    assert missing == {"7": {"success": False}}


def test_gql_about_panel_social_medias(sim, http):
    env = sim.env()
    truth = sim.ground_truth()["channels"]
    login = next(name for name, c in truth.items() if c["social_links"])
    query = {"query": f'query {{ user(login: "{login}") {{ channel {{ socialMedias '
                      "{ name title url } } } }"}
    r = http.post(env["TWITCH_GQL_URL"], json=query, headers={"Client-Id": "webclient"})
    medias = r.json()["data"]["user"]["channel"]["socialMedias"]
    assert [m["url"] for m in medias] == truth[login]["social_links"]
    batch = [{"operationName": "ChannelRoot_AboutPanel", "variables": {"channelLogin": login}}]
    r = http.post(env["TWITCH_GQL_URL"], json=batch, headers={"Client-Id": "webclient"})
    assert r.json()[0]["data"]["user"]["login"] == login
    r = http.post(env["TWITCH_GQL_URL"], json={"variables": {"login": "nosuch_zz"}},
                  headers={"Client-Id": "webclient"})
    assert r.json()["data"]["user"] is None
    assert http.post(env["TWITCH_GQL_URL"], json=query).status_code == 400


def test_expire_tokens_fault_and_revocation(http):
    with run_simulator(channels=20, users=200, seed=4, faults=("expire_tokens",),
                       expire_tokens_after=3) as faulty:
        env = faulty.env()
        headers = _headers(http, env)
        url = env["TWITCH_API_URL"] + "/users"
        statuses = [http.get(url, params={"login": "x"}, headers=headers).status_code
                    for _ in range(4)]
        assert statuses == [200, 200, 200, 401]
        headers = _headers(http, env)  # a fresh token works again
        assert http.get(url, params={"login": "x"}, headers=headers).status_code == 200
        faulty.revoke_tokens()
        assert http.get(url, params={"login": "x"}, headers=headers).status_code == 401


def test_armed_and_static_faults(http):
    with run_simulator(channels=60, users=500, seed=6,
                       faults=("missing_fields", "server_error")) as faulty:
        env = faulty.env()
        headers = _headers(http, env)
        url = env["TWITCH_API_URL"] + "/streams"
        faulty.arm_fault("malformed_json", path_prefix="/helix/streams")
        with pytest.raises(json.JSONDecodeError):
            json.loads(http.get(url, headers=headers).text)
        statuses = [http.get(url, params={"first": 100}, headers=headers) for _ in range(8)]
        assert {r.status_code for r in statuses} & {500, 503}
        data = next(r.json()["data"] for r in statuses if r.status_code == 200)
        required = ("viewer_count", "user_login", "started_at")
        assert any(not all(k in s for k in required) for s in data)
        with pytest.raises(ValueError):
            faulty.arm_fault("no_such_fault")
    with pytest.raises(ValueError, match="unknown fault"):
        run_simulator(faults=("bogus",)).__enter__()


def test_streams_follow_the_simulated_clock(http):
    with run_simulator(channels=80, users=500, seed=13, time_scale=0) as frozen:
        env = frozen.env()
        headers = _headers(http, env)
        url = env["TWITCH_API_URL"] + "/streams"
        before = http.get(url, params={"first": 100}, headers=headers).json()["data"]
        again = http.get(url, params={"first": 100}, headers=headers).json()["data"]
        assert before == again  # a frozen clock freezes the world
        frozen.advance(8 * 60)
        after = http.get(url, params={"first": 100}, headers=headers).json()["data"]
        ids_before, ids_after = {s["id"] for s in before}, {s["id"] for s in after}
        assert ids_before != ids_after
        start = frozen.clock.start.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert any(s["started_at"] > start for s in after if s["id"] not in ids_before)


def test_steam_store_rate_limit_and_slow_fault(http):
    with run_simulator(channels=20, users=200, seed=14, faults="slow",
                       steam_requests_per_5min=2) as limited:
        env = limited.env()
        url = env["STEAM_STORE_URL"] + "/api/appdetails"
        began = time.monotonic()
        statuses = [http.get(url, params={"appids": "10"}).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert time.monotonic() - began >= 3 * 0.05  # every reply waited
