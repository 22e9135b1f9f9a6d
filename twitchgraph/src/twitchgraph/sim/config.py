"""Settings of a simulator run, shared by its HTTP and chat servers."""

from __future__ import annotations

from dataclasses import dataclass

from twitchgraph.errors import BadValue

__all__ = ["FAULTS", "SimConfig", "parse_faults"]

FAULTS: dict[str, str] = {
    "duplicate_pages": "each /helix/streams page repeats the last 1-3 streams of the page "
    "before (viewer counts shifted while paging)",
    "loop_cursor": "the last /helix/streams page returns a cursor that leads back to page 1",
    "expire_tokens": "app tokens stop working after a few requests (401) although expires_in "
    "said otherwise",
    "malformed_json": "the 2nd Helix reply (and each armed one) is truncated, invalid JSON",
    "missing_fields": "about one stream in nine lacks viewer_count, user_login or started_at",
    "server_error": "every 7th API request gets a 500 or 503",
    "chat_disconnect": "the chat server drops each connection after 4-10 s (half of the time "
    "after a RECONNECT, half abruptly)",
    "slow": "every HTTP reply waits 50-250 ms",
}


def parse_faults(faults: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """Fault names from a tuple or a comma-separated string; unknown names raise BadValue."""
    if not faults:
        return ()
    items = faults.split(",") if isinstance(faults, str) else list(faults)
    names = tuple(dict.fromkeys(f.strip() for f in items if f.strip()))
    unknown = [f for f in names if f not in FAULTS]
    if unknown:
        raise BadValue(
            f"unknown fault(s) {', '.join(unknown)}; choose from {', '.join(FAULTS)}"
        )
    return names


@dataclass(frozen=True)
class SimConfig:
    """Every knob of a simulator run. Rates are in REAL time; population dynamics in sim time.

    Args:
        client_id, client_secret: the simulator's fake app credentials.
        faults: names from `FAULTS`.
        helix_points_per_minute: Helix token bucket per client id (1 point per request).
        igdb_requests_per_s: IGDB requests per second per client id before 429.
        steam_requests_per_5min: Steam store appdetails calls per 5 minutes before 429.
        token_ttl_s: lifetime of app tokens (reported as expires_in).
        expire_tokens_after: with the ``expire_tokens`` fault, requests a token survives.
        chat_joins_per_10s: JOINs accepted per 10 s over all connections (excess is dropped).
        max_channels_per_connection: channels one chat connection may hold.
        membership_interval_s: how often batched JOIN/PART membership lines are sent.
        membership_limit: rooms with this many users or more get no membership lines.
        messages_per_chatter_per_min: PRIVMSGs per chatter-minute (real minutes), before cap.
        max_messages_per_room_per_s: cap on PRIVMSGs per room per real second.
        usernotice_share: share of messages sent as USERNOTICE (subscriptions; the sender is
            in the ``login`` tag, not the prefix) to clients with tags and commands.
        raid_share: probability that a channel raids when its stream ends.
        raid_home_weight: how much more a channel of the raider's community is picked as the
            raid's target (beyond its audience).
        ping_interval_s, pong_timeout_s: server PING period and how long it waits for PONG.
        chat_disconnect_s: (min, max) connection life with the ``chat_disconnect`` fault.
    """

    client_id: str
    client_secret: str
    faults: tuple[str, ...] = ()
    helix_points_per_minute: int = 800
    igdb_requests_per_s: int = 4
    steam_requests_per_5min: int = 200
    token_ttl_s: int = 5_011_271
    expire_tokens_after: int = 12
    chat_joins_per_10s: int = 20
    max_channels_per_connection: int = 100
    membership_interval_s: float = 2.0
    membership_limit: int = 1000
    messages_per_chatter_per_min: float = 2.0
    max_messages_per_room_per_s: float = 20.0
    usernotice_share: float = 0.03
    raid_share: float = 0.6
    raid_home_weight: float = 8.0
    ping_interval_s: float = 60.0
    pong_timeout_s: float = 10.0
    chat_disconnect_s: tuple[float, float] = (4.0, 10.0)

    def has(self, fault: str) -> bool:
        return fault in self.faults
