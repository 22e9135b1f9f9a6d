"""What a collector collects and how often (`CollectOptions`), and the chat limits it runs
under (`ChatLimits`)."""

from __future__ import annotations

from dataclasses import dataclass

from twitchgraph.errors import BadValue
from twitchgraph.store.limits import COUNT_MAX

__all__ = [
    "MAX_EVERY_S",
    "MAX_FOR_S",
    "MAX_TOP",
    "MAX_WINDOW_S",
    "ChatLimits",
    "CollectOptions",
]

# Upper bounds: a mistyped value is refused, not run for 3e12 years (Twitch has about
# 100,000 live channels at its peak).
MAX_TOP = 1_000_000
MAX_WINDOW_S = 86_400.0
MAX_EVERY_S = 7 * 86_400.0
MAX_FOR_S = 366 * 86_400.0  # as `parse_duration` allows


@dataclass(frozen=True)
class CollectOptions:
    """What to collect and how often.

    Attributes:
        top: keep only the `top` most viewed live channels (None: all).
        min_viewers: ignore streams below this many viewers.
        language: only streams in this language (e.g. "it").
        game_ids: only streams of these game/category ids.
        window_s: how long to listen to chat per snapshot.
        every_s: seconds between snapshot starts; None takes one snapshot (`--once`).
        for_s: stop starting snapshots after this long (with `every_s`).
        fetch_users: fetch broadcaster profiles into the users table.
        shard: (K, N): collect only the live channels whose login hashes to shard K of N
            (`shard_of`), with snapshots on the schedule grid (multiples of `every_s` since
            the epoch), so that N collectors' snapshots of one slot form one snapshot.
    """

    top: int | None = None
    min_viewers: int = 0
    language: str | None = None
    game_ids: tuple[str, ...] = ()
    window_s: float = 60.0
    every_s: float | None = None
    for_s: float | None = None
    fetch_users: bool = True
    shard: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.top is not None and not 1 <= self.top <= MAX_TOP:
            raise BadValue(f"top must be from 1 to {MAX_TOP:,}")
        if not 0 <= self.min_viewers <= COUNT_MAX:
            raise BadValue(f"min viewers must be from 0 to {COUNT_MAX:,}")
        if not 0 <= self.window_s <= MAX_WINDOW_S:
            raise BadValue(f"window must be from 0 to {MAX_WINDOW_S / 3600:g} hours")
        if self.every_s is not None and not 0 < self.every_s <= MAX_EVERY_S:
            raise BadValue(f"every must be positive and at most {MAX_EVERY_S / 86400:g} days")
        if self.for_s is not None and not 0 <= self.for_s <= MAX_FOR_S:
            raise BadValue(f"for must be from 0 to {MAX_FOR_S / 86400:g} days")
        if self.every_s is not None and self.every_s < self.window_s:
            raise BadValue(f"every ({self.every_s:g} s) must not be shorter than the "
                             f"listening window ({self.window_s:g} s)")
        if self.shard is not None:
            k, n = self.shard
            if not 1 <= k <= n:
                raise BadValue(f"shard {k}/{n}: K must be between 1 and N")
            if self.every_s is None:
                raise BadValue("a shard needs --every: its snapshots sit on the schedule "
                                 "grid, where the other shards' snapshots meet them")


@dataclass(frozen=True)
class ChatLimits:
    """Chat limits (Twitch's by default; the demo relaxes them)."""

    channels_per_connection: int = 100
    max_connections: int = 10
    joins_per_window: int = 20
    join_window_s: float = 10.0
