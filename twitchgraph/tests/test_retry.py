"""The one request helper, through the enrichment clients that now share it with Helix."""

from __future__ import annotations

import httpx
import pytest

from twitchgraph.enrich.igdb import IGDBClient
from twitchgraph.enrich.social import GqlClient
from twitchgraph.enrich.steam import SteamClient
from twitchgraph.twitch.endpoints import Endpoints
from twitchgraph.twitch.errors import RateLimited, ServerError, TwitchError
from twitchgraph.twitch.retry import Backoff, send_with_retries

from ._collect_fixtures import FakeClock


def _scripted(*replies: httpx.Response | Exception):
    """A transport answering with `replies` in order, and the requests it saw."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        reply = replies[min(len(seen), len(replies)) - 1]
        if isinstance(reply, Exception):
            raise reply
        return reply

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def test_gql_retries_a_server_error_it_used_to_give_up_on() -> None:
    ok = httpx.Response(200, json=[{"data": {"user": None}}])
    http, seen = _scripted(httpx.Response(503), httpx.ConnectTimeout("slow"), ok)
    clock = FakeClock()
    client = GqlClient(http=http, gql_url="https://gql.test/gql", client_id="web-id",
                       clock=clock, min_interval_s=0)  # fmt: skip
    assert client.social_medias(["ghost"]) == {"ghost": None}
    assert len(seen) == 3 and client.requests == 3
    assert [s for s in clock.sleeps if s > 0] == [1.0, 2.0]


def test_igdb_429_waits_for_the_reset() -> None:
    clock = FakeClock()
    reset = clock.now().timestamp() + 7
    limited = httpx.Response(429, headers={"Ratelimit-Reset": str(int(reset))})
    http, seen = _scripted(limited, httpx.Response(200, json=[{"id": 1, "name": "A"}]))
    client = IGDBClient(http=http, auth=httpx.BasicAuth("u", "p"),
                        igdb_url="https://igdb.test/v4", clock=clock, max_retries=1)  # fmt: skip
    assert client.query("fields name;") == [{"id": 1, "name": "A"}]
    assert len(seen) == 2
    assert clock.now().timestamp() >= reset


def test_every_service_raises_from_the_twitch_error_tree() -> None:
    clock = FakeClock()
    http, _ = _scripted(httpx.Response(502, text="bad gateway"))
    steam = SteamClient(http=http, store_url="https://store.test",
                        api_url="https://steamapi.test", clock=clock, min_interval_s=0,
                        max_retries=1)  # fmt: skip
    with pytest.raises(ServerError, match=r"Steam kept failing \(HTTP 502 .*gave up after 2"):
        steam.app_list()
    limited, _ = _scripted(httpx.Response(429))
    with pytest.raises(RateLimited, match="still rate limited"):
        send_with_retries(lambda: limited.get("https://igdb.test/v4/games"), service="IGDB",
                          url="https://igdb.test/v4/games", clock=clock,
                          backoff=Backoff(1.0, 4.0), max_retries=5,
                          max_rate_limited=2)  # fmt: skip
    assert clock.sleeps[-2:] == [1.0, 2.0]  # no reset header: the backoff
    assert issubclass(ServerError, TwitchError) and issubclass(RateLimited, TwitchError)


def test_enrichment_clients_close_their_http_client() -> None:
    http, _ = _scripted(httpx.Response(200))
    with SteamClient(http=http, store_url="https://s.test", api_url="https://a.test"):
        pass
    assert http.is_closed


def test_endpoints_read_the_environment_through_read_env(monkeypatch) -> None:
    monkeypatch.setenv("TWITCH_API_URL", "http://127.0.0.1:9/helix/")
    assert Endpoints.from_env().api_url == "http://127.0.0.1:9/helix"
