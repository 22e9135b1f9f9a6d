"""Social links from descriptions (regexes) and the About panel over GQL (MockTransport)."""

from __future__ import annotations

import json

import httpx
import pytest

from twitchgraph.enrich.social import (
    GqlClient,
    enrich_social_descriptions,
    enrich_social_gql,
    extract_links,
    platform_of,
)
from twitchgraph.twitch.errors import MalformedResponse, TwitchAPIError

from ._build_fixtures import add_live, add_snapshots, new_store


def test_extract_links_known_platforms_with_and_without_scheme():
    text = (
        "Live every day! YT: https://www.youtube.com/@MarioLive, tw: twitter.com/mario. "
        "x.com/mario2 | IG instagram.com/mario_ita | TikTok https://www.tiktok.com/@mario "
        "discord.gg/AbC123 facebook.com/mario.page kick.com/mario "
        "mail mario@gmail.com, site https://example.com/mario, netflix.com/title/1"
    )
    assert extract_links(text) == [
        ("youtube", "https://www.youtube.com/@MarioLive"),
        ("twitter", "https://twitter.com/mario"),
        ("twitter", "https://x.com/mario2"),
        ("instagram", "https://instagram.com/mario_ita"),
        ("tiktok", "https://www.tiktok.com/@mario"),
        ("discord", "https://discord.gg/AbC123"),
        ("facebook", "https://facebook.com/mario.page"),
        ("kick", "https://kick.com/mario"),
    ]
    assert extract_links("just youtube.com, no account") == []
    assert extract_links(None) == []
    assert platform_of("https://discord.com/invite/xyz") == "discord"
    assert platform_of("https://example.org/me") == "other"


def _store_with_profiles():
    con = new_store()
    sids = add_snapshots(con, 1)
    add_live(con, sids, "alpha", viewers=500)
    add_live(con, sids, "beta", viewers=100)
    add_live(con, sids, "ghost", viewers=50)
    con.execute(
        """INSERT INTO users VALUES
           ('1', 'alpha', 'Alpha', 'partner', 'yt: youtube.com/@alpha', NULL, '', '', now()),
           ('2', 'beta', 'Beta', '', 'nothing here', NULL, '', '', now())"""
    )
    return con


def test_description_links_are_recomputed_not_duplicated():
    con = _store_with_profiles()
    report = enrich_social_descriptions(con)
    assert (report.asked, report.found, report.matched) == (2, 1, 1)
    enrich_social_descriptions(con)
    assert con.execute("SELECT login, platform, url, source FROM social_links").fetchall() == [
        ("alpha", "youtube", "https://youtube.com/@alpha", "description")
    ]


def _gql_handler(calls, *, fail=False):
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Client-Id"] == "web-id"
        ops = json.loads(request.content)
        calls.append([op["variables"]["login"] for op in ops])
        if fail:
            return httpx.Response(200, json={"errors": [{"message": "PersistedQueryNotFound"}]})
        answers = []
        for op in ops:
            login = op["variables"]["login"]
            user = None if login == "ghost" else {
                "login": login,
                "channel": {"socialMedias": [
                    {"name": "twitter", "title": "T", "url": f"https://twitter.com/{login}"},
                    {"name": "site", "title": "S", "url": f"https://{login}.example.org"},
                ]},
            }  # fmt: skip
            answers.append({"data": {"user": user}})
        return httpx.Response(200, json=answers)

    return handler


def test_gql_about_panel_links_and_rerun_asks_only_missing():
    con = _store_with_profiles()
    calls: list[list[str]] = []
    http = httpx.Client(transport=httpx.MockTransport(_gql_handler(calls)))
    client = GqlClient(http=http, gql_url="https://gql.test/gql", client_id="web-id",
                       min_interval_s=0, batch=2)  # fmt: skip
    report = enrich_social_gql(con, client)
    assert calls == [["alpha", "beta"], ["ghost"]]  # by peak viewers
    assert (report.asked, report.found, report.matched, report.error) == (3, 2, 4, None)
    rows = con.execute(
        "SELECT login, platform, url FROM social_links WHERE source = 'gql' ORDER BY 1, 2"
    ).fetchall()
    assert rows[:2] == [("alpha", "other", "https://alpha.example.org"),
                        ("alpha", "twitter", "https://twitter.com/alpha")]  # fmt: skip
    enrich_social_gql(con, client)
    assert len(calls) == 2  # nobody left to ask


def test_gql_schema_change_fails_soft_and_gives_up():
    con = _store_with_profiles()
    calls: list[list[str]] = []
    http = httpx.Client(transport=httpx.MockTransport(_gql_handler(calls, fail=True)))
    client = GqlClient(http=http, gql_url="https://gql.test/gql", client_id="web-id",
                       min_interval_s=0, batch=1)  # fmt: skip
    report = enrich_social_gql(con, client, max_failures=2)
    assert len(calls) == 2
    assert "gave up after 2 failed requests" in report.error
    assert "PersistedQueryNotFound" in report.error
    with pytest.raises(MalformedResponse, match="schema may have changed"):
        client.social_medias(["alpha"])


def test_enrichment_of_a_store_without_streamers_is_a_no_op():
    con = new_store()
    assert enrich_social_descriptions(con).asked == 0
    http = httpx.Client(transport=httpx.MockTransport(_gql_handler([])))
    client = GqlClient(http=http, gql_url="https://gql.test/gql", client_id="web-id")
    assert enrich_social_gql(con, client).asked == 0


def test_gql_refusal_names_the_client_id_variable():
    http = httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(400, json={"message": "The Client-ID header is invalid"})))
    client = GqlClient(http=http, gql_url="https://gql.test/gql", client_id="app-id")
    with pytest.raises(TwitchAPIError, match="HTTP 400 .* set TWITCH_GQL_CLIENT_ID"):
        client.social_medias(["alpha"])
