"""An accelerated clock for the simulator, shaped like `twitchgraph.clock.Clock`.

Simulated time runs ``time_scale`` times faster than real time from ``start``; ``advance()``
jumps it forward for tests. ``time_scale=0`` freezes it: only ``advance()`` moves it, and
``sleep()`` / ``asleep()`` advance it by the requested amount and return at once (virtual time),
so a scheduler loop driven by this clock runs instantly.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

__all__ = ["AcceleratedClock"]


class AcceleratedClock:
    """Simulated wall clock: ``now()`` (UTC-aware), ``sleep(s)``, ``async asleep(s)``.

    Args:
        time_scale: simulated seconds per real second (``0`` = manual, see module docstring).
        start: simulated time at creation; defaults to the real time, to the second.
    """

    def __init__(self, *, time_scale: float = 1.0, start: datetime | None = None) -> None:
        if time_scale < 0:
            raise ValueError(f"time_scale must be >= 0, got {time_scale}")
        self.time_scale = float(time_scale)
        self.start = (start or datetime.now(UTC).replace(microsecond=0)).astimezone(UTC)
        self._real0 = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        """Simulated seconds since ``start``."""
        with self._lock:
            offset = self._offset
        return (time.monotonic() - self._real0) * self.time_scale + offset

    def now(self) -> datetime:
        """The simulated current time (UTC-aware)."""
        return self.start + timedelta(seconds=self.elapsed())

    def advance(self, seconds: float) -> None:
        """Jump simulated time forward by ``seconds`` (for tests and control calls)."""
        if seconds < 0:
            raise ValueError(f"cannot advance by a negative amount ({seconds} s)")
        with self._lock:
            self._offset += seconds

    def real_seconds(self, seconds: float) -> float:
        """How long ``seconds`` of simulated time take in real time (0 when manual)."""
        return 0.0 if self.time_scale == 0 else max(0.0, seconds) / self.time_scale

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` of simulated time."""
        if self.time_scale == 0:
            self.advance(max(0.0, seconds))
            return
        time.sleep(self.real_seconds(seconds))

    async def asleep(self, seconds: float) -> None:
        """Wait for ``seconds`` of simulated time without blocking the event loop."""
        if self.time_scale == 0:
            self.advance(max(0.0, seconds))
            await asyncio.sleep(0)
            return
        await asyncio.sleep(self.real_seconds(seconds))
