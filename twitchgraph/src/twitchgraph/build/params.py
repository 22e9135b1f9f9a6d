"""The parameters of one build (`BuildParams`), apart from the build so that the CLI can make
and check them without loading the build's engines."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from twitchgraph.clock import as_utc
from twitchgraph.errors import BadValue

__all__ = ["MAX_EVERY_NTH", "WEIGHTS", "BuildParams"]

WEIGHTS = ("overlap", "jaccard", "shared")
# A year of 5-minute snapshots is 105,120: a larger step keeps one snapshot whatever it is,
# and counts minutes live as k times the interval (3.3e19 minutes at k = 10**20).
MAX_EVERY_NTH = 100_000


@dataclass(frozen=True)
class BuildParams:
    """Parameters of one build; the defaults are the original study's.

    Args:
        since: first instant of the window (inclusive), ``None`` = from the first snapshot.
        until: end of the window (exclusive), ``None`` = through the last snapshot.
        every_nth: use every k-th complete snapshot of the window (3 = 15 min at 5-min cron).
        language: keep only streams in this language (ISO 639-1, e.g. ``"it"``).
        min_live_minutes: keep streamers live at least this many minutes.
        min_viewer_mean: keep streamers with at least this mean viewer count.
        min_chatter_mean: keep streamers with at least this mean number of chatters.
        min_weight: keep edges whose weight reaches this value.
        weight: the edge weight: ``overlap`` (percent of the smaller audience), ``jaccard``
            (percent of the union) or ``shared`` (count of shared chatters).
        min_game_minutes: keep streamer-game edges with at least this many minutes played.
        drop_suspected: also remove accounts the presence heuristic flags.
        bot_channel_share: an account present in more than this share of a snapshot's live
            channels is a suspected bot.
        bot_min_channels: ... and in at least this many channels (tiny snapshots).
    """

    since: datetime | None = None
    until: datetime | None = None
    every_nth: int = 3
    language: str | None = None
    min_live_minutes: float = 60.0
    min_viewer_mean: float = 10.0
    min_chatter_mean: float = 10.0
    min_weight: float = 10.0
    weight: str = "overlap"
    min_game_minutes: float = 30.0
    drop_suspected: bool = False
    bot_channel_share: float = 0.10
    bot_min_channels: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.every_nth <= MAX_EVERY_NTH:
            raise BadValue(f"every_nth must be between 1 and {MAX_EVERY_NTH:,} (every k-th "
                           f"snapshot), got {self.every_nth}")
        if self.weight not in WEIGHTS:
            raise BadValue(f"weight must be one of {', '.join(WEIGHTS)}, got {self.weight!r}")
        for name in ("min_live_minutes", "min_viewer_mean", "min_chatter_mean", "min_weight",
                     "min_game_minutes"):
            if not 0 <= getattr(self, name) < math.inf:
                raise BadValue(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        if self.weight != "shared" and self.min_weight > 100:
            raise BadValue(f"min_weight must be between 0 and 100 with weight {self.weight} "
                             f"(a percentage), got {self.min_weight}")
        if not 0 < self.bot_channel_share <= 1:
            raise BadValue(
                f"bot_channel_share must be in (0, 1], got {self.bot_channel_share}"
            )
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, as_utc(value))
        if self.since and self.until and self.since >= self.until:
            raise BadValue(f"since ({self.since}) must be before until ({self.until})")

    def as_record(self) -> dict[str, Any]:
        """The parameters as JSON-ready values (times in ISO 8601), as ``build.json`` holds them."""
        return {k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in asdict(self).items()}
