"""The ranges a value from Twitch must fit before it goes into the store.

One place for them, read by the chat client, the Helix client, the importer and the store
itself (`write_snapshot` checks again: a spooled file may come from an older version), so a
value a column cannot hold is refused where it enters, never as a failed SQL commit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["COUNT_MAX", "EARLIEST", "count_fits", "latest", "time_is_sane"]

COUNT_MAX = 2**31 - 1  # DuckDB INTEGER: viewer counts of streams and raids
EARLIEST = datetime(2011, 1, 1, tzinfo=UTC)  # Twitch (and its chat) began in June 2011
_AHEAD = timedelta(days=1)  # clocks may be off by hours, never by days


def count_fits(value: object) -> bool:
    """True for a whole number (not a bool) from 0 to `COUNT_MAX`."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= COUNT_MAX


def latest(now: datetime | None = None) -> datetime:
    """The latest time accepted: now plus a day."""
    return (now or datetime.now(UTC)) + _AHEAD


def time_is_sane(value: datetime, now: datetime | None = None) -> bool:
    """True when `value` (aware) lies between 2011 and now plus a day."""
    return EARLIEST <= value <= latest(now)
