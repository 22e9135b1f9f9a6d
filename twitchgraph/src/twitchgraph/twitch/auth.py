"""App access tokens by the OAuth client-credentials grant, as an `httpx.Auth`.

App tokens cannot be refreshed: when one expires (or Twitch answers 401) we ask for a new one.
`AppTokenAuth` adds `Client-Id` and `Authorization: Bearer` to each request; on a 401 it gets
one new token and retries the request once. The token request itself is retried after 5xx
replies and timeouts (`send_with_retries`). Tokens are kept in memory only and never logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator
from datetime import datetime, timedelta

import httpx

from twitchgraph.clock import Clock, SystemClock
from twitchgraph.twitch.credentials import Credentials
from twitchgraph.twitch.errors import (
    AuthError,
    MalformedResponse,
    RateLimited,
    ServerError,
    TwitchAPIError,
)
from twitchgraph.twitch.retry import Backoff, send_with_retries

__all__ = ["AppTokenAuth"]

log = logging.getLogger(__name__)

# Renew a little before the announced expiry so a request never races the deadline.
_EXPIRY_MARGIN = timedelta(seconds=60)


class AppTokenAuth(httpx.Auth):
    """Client-credentials app token for Helix, IGDB and the other Twitch-authenticated APIs.

    Args:
        credentials: the application's client id and secret.
        auth_url: base of the id service (`Endpoints.auth_url`); tokens come from `POST /token`.
        http: the client used for the token request (it must not itself carry this auth).
        clock: tells when a token is about to expire, and waits between retries; default
            `SystemClock()`.
        max_retries: retries of the token request after 5xx replies and timeouts.
    """

    requires_response_body = False

    def __init__(
        self,
        credentials: Credentials,
        *,
        auth_url: str,
        http: httpx.Client,
        clock: Clock | None = None,
        max_retries: int = 3,
    ) -> None:
        self._credentials = credentials
        self._token_url = auth_url.rstrip("/") + "/token"
        self._http = http
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at: datetime | None = None
        self.tokens_fetched = 0
        self.max_retries = max_retries

    @property
    def client_id(self) -> str:
        return self._credentials.client_id

    def __repr__(self) -> str:
        return f"AppTokenAuth(client_id={self.client_id!r}, token_url={self._token_url!r})"

    def token(self) -> str:
        """A valid app token, fetching a new one when none is held or it is about to expire."""
        with self._lock:
            if self._token is None or self._expiring():
                self._fetch()
            assert self._token is not None
            return self._token

    def renew(self, stale: str | None = None) -> str:
        """Get a new token, unless another caller already replaced `stale`."""
        with self._lock:
            if self._token is None or self._token == stale:
                self._fetch()
            assert self._token is not None
            return self._token

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        self._sign(request, token)
        response = yield request
        if response.status_code == 401:
            # (httpx reads and closes this response itself before sending the retry)
            log.info("got 401 from %s; getting a new app token and retrying once", request.url)
            self._sign(request, self.renew(stale=token))
            yield request

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # Only the sync flow is supported: the token request goes through a sync client.
        raise RuntimeError("AppTokenAuth works with httpx.Client, not httpx.AsyncClient")

    def _sign(self, request: httpx.Request, token: str) -> None:
        request.headers["Client-Id"] = self._credentials.client_id
        request.headers["Authorization"] = f"Bearer {token}"

    def _expiring(self) -> bool:
        return self._expires_at is not None and self._clock.now() >= self._expires_at

    def _fetch(self) -> None:
        data = {
            "client_id": self._credentials.client_id,
            "client_secret": self._credentials.client_secret,
            "grant_type": "client_credentials",
        }
        try:
            response = send_with_retries(
                lambda: self._http.post(self._token_url, data=data, auth=None),
                service="the token endpoint", url=self._token_url, clock=self._clock,
                backoff=Backoff(0.5, 30.0), max_retries=self.max_retries)  # fmt: skip
        except (ServerError, RateLimited):
            raise
        except TwitchAPIError as exc:
            raise AuthError(
                "Twitch refused the client credentials; check TWITCH_CLIENT_ID and "
                "TWITCH_CLIENT_SECRET",
                status=exc.status,
                url=self._token_url,
            ) from None
        try:
            body = response.json()
            token = body["access_token"]
            expires_in = body.get("expires_in")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise MalformedResponse("token reply without an access_token",
                                    status=response.status_code, url=self._token_url) from None
        if not isinstance(token, str) or not token:
            raise MalformedResponse("token reply without an access_token",
                                    status=response.status_code, url=self._token_url)
        self._token = token
        self._expires_at = None
        if isinstance(expires_in, int | float) and expires_in > 0:
            margin = min(_EXPIRY_MARGIN, timedelta(seconds=expires_in * 0.1))
            self._expires_at = self._clock.now() + timedelta(seconds=expires_in) - margin
        self.tokens_fetched += 1
        log.debug("got a new app token (expires in %s s)", expires_in)
