"""AppTokenAuth: client-credentials tokens, one renewal on 401, expiry, no secret in errors."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
import pytest

from twitchgraph.twitch.auth import AppTokenAuth
from twitchgraph.twitch.credentials import Credentials
from twitchgraph.twitch.errors import AuthError, ServerError, Unauthorized

from ._collect_fixtures import AUTH, CLIENT_ID, SECRET, FakeClock, FakeTwitch, make_stream


def test_token_fetched_once_by_client_credentials_and_reused() -> None:
    fake = FakeTwitch([make_stream(i, 100 - i) for i in range(5)])
    client = fake.helix()
    client.streams()
    client.streams()
    assert fake.tokens_issued == 1
    (token_request,) = fake.token_requests
    assert token_request.method == "POST" and str(token_request.url) == AUTH + "/token"
    assert SECRET not in str(token_request.url)  # secret goes in the body, not the URL
    form = parse_qs(token_request.content.decode())
    assert form["grant_type"] == ["client_credentials"]
    assert all(r.headers["Client-Id"] == CLIENT_ID for r in fake.requests)
    assert fake.sent_auth == ["Bearer tok1", "Bearer tok1"]


def test_expired_token_gets_one_refresh_and_the_request_succeeds() -> None:
    fake = FakeTwitch([make_stream(i, 100 - i) for i in range(5)])
    client = fake.helix()
    assert len(client.streams()) == 5
    fake.valid_tokens.clear()  # Twitch expired or revoked the token
    assert len(client.streams()) == 5
    assert fake.tokens_issued == 2
    assert fake.sent_auth == ["Bearer tok1", "Bearer tok1", "Bearer tok2"]


def test_401_after_refresh_is_not_retried_again() -> None:
    fake = FakeTwitch([make_stream(1, 10)])
    client = fake.helix()
    fake.script += [(lambda r: True, httpx.Response(401)) for _ in range(5)]
    with pytest.raises(Unauthorized) as info:
        client.streams()
    assert fake.tokens_issued == 2  # the first token, and exactly one renewal
    assert len(fake.requests) == 2
    assert "HTTP 401" in str(info.value)


def test_token_renewed_before_announced_expiry() -> None:
    clock = FakeClock()
    fake = FakeTwitch([make_stream(1, 10)], clock)
    fake.expires_in = 600
    client = fake.helix()
    client.streams()
    clock.advance(500)
    client.streams()
    assert fake.tokens_issued == 1
    clock.advance(60)  # within the safety margin of the expiry
    client.streams()
    assert fake.tokens_issued == 2


def test_refused_credentials_raise_auth_error_without_the_secret() -> None:
    fake = FakeTwitch([])
    http = fake.client()
    auth = AppTokenAuth(Credentials(CLIENT_ID, "wrong-" + SECRET), auth_url=AUTH, http=http)
    with pytest.raises(AuthError) as info:
        auth.token()
    text = str(info.value) + repr(info.value)
    assert "HTTP 403" in text and "TWITCH_CLIENT_SECRET" in text and AUTH in text
    assert SECRET not in text
    assert SECRET not in repr(auth)


def test_credentials_repr_hides_the_secret() -> None:
    creds = Credentials(CLIENT_ID, SECRET)
    assert SECRET not in repr(creds) and SECRET not in str(creds)
    assert CLIENT_ID in repr(creds)


def test_token_endpoint_failures_are_retried_then_reported() -> None:
    replies: list[httpx.Response | Exception] = [
        httpx.Response(503), httpx.ConnectError("refused"),
        httpx.Response(200, json={"access_token": "tok", "expires_in": 3600}),
    ]  # fmt: skip

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        reply = replies.pop(0) if replies else httpx.Response(502)
        if isinstance(reply, Exception):
            raise reply
        return reply

    clock = FakeClock()
    http = httpx.Client(transport=httpx.MockTransport(token_endpoint))
    auth = AppTokenAuth(Credentials(CLIENT_ID, SECRET), auth_url=AUTH, http=http, clock=clock)
    assert auth.token() == "tok"
    assert clock.sleeps == [0.5, 1.0]
    auth = AppTokenAuth(Credentials(CLIENT_ID, SECRET), auth_url=AUTH, http=http, clock=clock,
                        max_retries=1)  # fmt: skip
    with pytest.raises(ServerError, match="HTTP 502") as info:
        auth.token()
    assert SECRET not in str(info.value)
