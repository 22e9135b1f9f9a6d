"""What the enrichment sources share: their report, the pacing of their HTTP calls and the
decoding of the replies. Requests go through :func:`twitchgraph.twitch.retry.send_with_retries`
and failures are raised from the :mod:`twitchgraph.twitch.errors` tree."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import httpx

from twitchgraph.clock import Clock
from twitchgraph.twitch.errors import MalformedResponse

__all__ = ["Pacer", "SourceReport", "decode_json"]


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


def decode_json(response: httpx.Response, *, source: str) -> Any:
    """The JSON body of a 2xx reply; invalid JSON is a :class:`MalformedResponse`."""
    try:
        return response.json()
    except ValueError:
        raise MalformedResponse(f"{source} sent invalid JSON", status=response.status_code,
                                url=response.request.url) from None
