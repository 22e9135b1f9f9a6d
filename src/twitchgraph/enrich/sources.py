"""What the enrichment sources share: their report, the error they raise when they give up,
and the pacing and retrying of their HTTP calls."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from twitchgraph.clock import Clock

__all__ = ["Pacer", "SourceError", "SourceReport", "decode_json", "send_with_retries"]

logger = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """An enrichment source could not answer (HTTP status and URL in the message)."""


@dataclass
class SourceReport:
    """Counts of one source's run. ``error`` is set when the source failed (softly)."""

    source: str
    asked: int = 0  # remote calls or keys asked for
    found: int = 0  # keys the source knew
    matched: int = 0  # names matched (Steam) or links stored (social)
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        text = f"{self.source}: asked {self.asked}, found {self.found}"
        if self.matched:
            text += f", matched {self.matched}"
        return text + (f" - FAILED: {self.error}" if self.error else "")


class Pacer:
    """Keeps calls at least ``interval_s`` apart on ``clock``: each source publishes a rate
    (IGDB 4/s, Steam ~200 per 5 min) and staying under it is cheaper than meeting its 429s."""

    def __init__(self, clock: Clock, interval_s: float) -> None:
        self.clock = clock
        self.interval_s = interval_s
        self._last: float | None = None

    def wait(self) -> None:
        now = self.clock.now().timestamp()
        if self._last is not None and now < self._last + self.interval_s:
            self.clock.sleep(self._last + self.interval_s - now)
        self._last = self.clock.now().timestamp()


def send_with_retries(
    send: Callable[[], httpx.Response],
    *,
    source: str,
    url: str,
    pacer: Pacer,
    max_retries: int,
    backoff_s: float,
    max_backoff_s: float,
) -> httpx.Response:
    """Call ``send`` (paced) until it answers 200.

    429, 5xx and transport errors are retried up to ``max_retries`` times with exponential
    backoff from ``backoff_s`` (capped at ``max_backoff_s``); any other status is final.

    Raises:
        SourceError: a final status, or still failing after the retries; the message names
            ``source``, the status and ``url``.
    """
    error = ""
    for attempt in range(max_retries + 1):
        pacer.wait()
        try:
            response = send()
        except httpx.TransportError as exc:
            error = f"{type(exc).__name__} from {url}"
        else:
            if response.status_code == 200:
                return response
            if response.status_code != 429 and response.status_code < 500:
                raise SourceError(f"{source} refused the request (HTTP {response.status_code} "
                                  f"from {url}): {response.text[:200]}")  # fmt: skip
            error = f"HTTP {response.status_code} from {url}"
        if attempt < max_retries:
            wait = min(max_backoff_s, backoff_s * 2**attempt)
            logger.info("%s call failed (%s); retrying in %.1f s", source, error, wait)
            pacer.clock.sleep(wait)
    raise SourceError(f"{source} kept failing ({error}) after {max_retries} retries")


def decode_json(response: httpx.Response, *, source: str) -> Any:
    """The JSON body of a 200 reply; invalid JSON is a :class:`SourceError` naming the URL."""
    try:
        return response.json()
    except ValueError:
        raise SourceError(f"{source} sent invalid JSON (HTTP 200 from {response.request.url})"
                          ) from None
