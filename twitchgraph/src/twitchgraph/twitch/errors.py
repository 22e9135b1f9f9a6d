"""The exception tree of the Twitch clients.

Messages carry the HTTP status and the URL (with any secret-looking query parameter
redacted), never a client secret or an access token.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from twitchgraph.errors import TwitchgraphError

__all__ = [
    "AuthError",
    "MalformedResponse",
    "MissingCredentials",
    "RateLimited",
    "ServerError",
    "TwitchAPIError",
    "TwitchError",
    "Unauthorized",
    "redact_url",
]

_SECRET_PARAMS = {"client_secret", "access_token", "token", "refresh_token", "code", "password"}


def redact_url(url: object) -> str:
    """`url` as text with secret-looking query parameters replaced by `***`."""
    text = str(url)
    parts = urlsplit(text)
    if not parts.query:
        return text
    query = [
        (k, "***" if k.lower() in _SECRET_PARAMS else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


class TwitchError(TwitchgraphError):
    """Base of every twitchgraph.twitch error."""


class MissingCredentials(TwitchError):
    """TWITCH_CLIENT_ID / TWITCH_CLIENT_SECRET are not set."""


class TwitchAPIError(TwitchError):
    """An HTTP call to a Twitch-family service (Helix, IGDB, GQL, and Steam beside them) failed.

    Attributes:
        status: HTTP status code, or None when no reply came (timeout, connection error).
        url: the request URL, secrets redacted.

    `detail`, when given, follows the status and URL in the message (what was tried, what
    to do).
    """

    def __init__(self, message: str, *, status: int | None = None, url: object = "",
                 detail: str = "") -> None:
        self.status = status
        self.url = redact_url(url) if url else ""
        where = f" ({'HTTP ' + str(status) if status is not None else 'no reply'}"
        where += f" from {self.url})" if self.url else ")"
        super().__init__(message + where + (f"; {detail}" if detail else ""))


class RateLimited(TwitchAPIError):
    """HTTP 429: the rate-limit bucket is empty until `reset_at` (epoch seconds, if known)."""

    def __init__(self, message: str, *, status: int | None = 429, url: object = "",
                 reset_at: float | None = None) -> None:
        super().__init__(message, status=status, url=url)
        self.reset_at = reset_at


class Unauthorized(TwitchAPIError):
    """HTTP 401 even after getting a fresh token."""


class AuthError(TwitchAPIError):
    """The token endpoint refused the client credentials."""


class ServerError(TwitchAPIError):
    """HTTP 5xx or no reply, still failing after the bounded retries."""


class MalformedResponse(TwitchAPIError):
    """A reply that is not the JSON shape the endpoint documents."""
