"""One way to make an HTTP request to Helix, IGDB, Steam or GQL: paced, retried, classified.

`send_with_retries` repeats one request until it gets a 2xx reply. 5xx replies and
timeouts/connection errors are retried with exponential `Backoff`; a 429 waits until the
reply's `Ratelimit-Reset` (or by the backoff when it gives none) on its own budget. Every
other status is final. What is given up on is raised from the `twitch.errors` tree, so a
caller catches one base (`TwitchError`) for every service.

The loop is written here rather than with tenacity or stamina: both count one budget of
attempts and sleep on their own, while these callers wait on an injected clock (tests and
the simulator run on virtual time) with separate budgets for 429s and failures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

import httpx

from twitchgraph.clock import Clock
from twitchgraph.twitch.errors import RateLimited, ServerError, TwitchAPIError, Unauthorized

__all__ = ["Backoff", "ClosingClient", "send_with_retries"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Exponential waits: `first_s`, twice that, ... capped at `max_s`."""

    first_s: float = 0.5
    max_s: float = 30.0

    def delay(self, attempt: int) -> float:
        """The wait before retry number `attempt` (1 for the first retry).

        >>> [Backoff(1.0, 5.0).delay(n) for n in (1, 2, 3, 4)]
        [1.0, 2.0, 4.0, 5.0]
        """
        return min(self.max_s, self.first_s * 2 ** (max(1, attempt) - 1))


class ClosingClient:
    """The explicit lifecycle of a client over an injected `httpx.Client`: `with` or `close()`."""

    _http: httpx.Client

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def send_with_retries(
    send: Callable[[], httpx.Response],
    *,
    service: str,
    url: object,
    clock: Clock,
    backoff: Backoff,
    max_retries: int,
    max_rate_limited: int | None = None,
    before: Callable[[], None] | None = None,
    on_reply: Callable[[httpx.Response | None], None] | None = None,
    on_wait: Callable[[bool, float], None] | None = None,
) -> httpx.Response:
    """Call `send` until it answers 2xx; that reply.

    Args:
        send: makes the request once.
        service: names the service in messages ("Helix", "IGDB", "Steam", "GQL").
        url: the request URL, for messages (secrets are redacted by the errors).
        clock: waits between attempts.
        backoff: the waits after 5xx replies and missing replies.
        max_retries: retries after 5xx replies and missing replies (timeouts, refused
            connections).
        max_rate_limited: 429 replies tolerated; default `max_retries`.
        before: called before each attempt (pacing).
        on_reply: called with each reply, or None when none came (counting, rate headers).
        on_wait: called as `on_wait(rate_limited, seconds)` before each wait.

    Raises:
        ServerError: still 5xx or no reply after the retries.
        RateLimited: still 429 after `max_rate_limited` waits.
        Unauthorized: HTTP 401.
        TwitchAPIError: any other 3xx/4xx status.
    """
    limit_429 = max_retries if max_rate_limited is None else max_rate_limited
    failures = limited = 0
    while True:
        if before is not None:
            before()
        try:
            response = send()
        except httpx.TransportError as exc:  # timeouts and connection errors
            if on_reply is not None:
                on_reply(None)
            failures += 1
            if failures > max_retries:
                raise ServerError(f"{service} gave no reply ({type(exc).__name__})", url=url,
                                  detail=f"gave up after {failures} attempts") from None
            wait = backoff.delay(failures)
            log.warning("%s from %s; retry %d/%d in %.1f s", type(exc).__name__,
                        url, failures, max_retries, wait)  # fmt: skip
        else:
            if on_reply is not None:
                on_reply(response)
            status = response.status_code
            if status < 300:
                return response
            if status == 429:
                limited += 1
                reset_at = _reset_at(response)
                if limited > limit_429:
                    raise RateLimited(f"{service} still rate limited after waiting",
                                      url=response.url, reset_at=reset_at)  # fmt: skip
                now = clock.now().timestamp()
                wait = (reset_at - now + 0.05 if reset_at is not None and reset_at > now
                        else backoff.delay(limited))  # fmt: skip
                log.info("rate limited (429) by %s; waiting %.1f s", service, wait)
                if on_wait is not None:
                    on_wait(True, wait)
                clock.sleep(wait)
                continue
            if status >= 500:
                failures += 1
                if failures > max_retries:
                    raise ServerError(f"{service} kept failing", status=status,
                                      url=response.url,
                                      detail=f"gave up after {failures} attempts")  # fmt: skip
                wait = backoff.delay(failures)
                log.warning("HTTP %d from %s; retry %d/%d in %.1f s", status, response.url,
                            failures, max_retries, wait)  # fmt: skip
            elif status == 401:
                raise Unauthorized(f"{service} rejected the credentials", status=status,
                                   url=response.url)  # fmt: skip
            else:
                raise TwitchAPIError(f"{service} refused the request: {_reason(response)}",
                                     status=status, url=response.url)  # fmt: skip
        if on_wait is not None:
            on_wait(False, wait)
        clock.sleep(wait)


def _reset_at(response: httpx.Response) -> float | None:
    """When the rate-limit bucket is full again (epoch seconds), from `Ratelimit-Reset`."""
    try:
        return float(response.headers["ratelimit-reset"])
    except (KeyError, ValueError):
        return None


def _reason(response: httpx.Response) -> str:
    """The service's own words for a refusal: its JSON `message`, else the body's start."""
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        message = None
    text = str(message) if message else response.text.strip()
    return text[:200] if text else response.reason_phrase
