"""Time as a dependency: a `Clock` protocol and the real `SystemClock`.

Everything in twitchgraph that waits or stamps time takes a clock, so tests can run a window
of minutes in milliseconds and the simulator can run its population on an accelerated clock.
The product never imports a fake clock; any object with these three methods will do.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "as_utc", "utcnow"]


@runtime_checkable
class Clock(Protocol):
    """Something that tells the time (UTC-aware) and can wait."""

    def now(self) -> datetime:
        """The current time, timezone-aware in UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for `seconds` (of this clock's time)."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Wait `seconds` (of this clock's time) without blocking the event loop."""
        ...


def utcnow() -> datetime:
    """The wall-clock time, timezone-aware in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime | str) -> datetime:
    """`value` (a datetime or an ISO 8601 string, ``Z`` allowed) in UTC; a time without a
    zone is taken as UTC. Raises ValueError for a string that is not an ISO time."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class SystemClock:
    """The real clock: wall time in UTC, `time.sleep` and `asyncio.sleep`."""

    def now(self) -> datetime:
        return utcnow()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"
