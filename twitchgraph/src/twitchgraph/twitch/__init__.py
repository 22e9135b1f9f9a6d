"""Talking to Twitch: endpoints, credentials, app-token auth, the Helix client, anonymous chat.

Every base URL comes from `Endpoints`, so the same code talks to Twitch or to the simulator.
"""

from __future__ import annotations

from twitchgraph.twitch.auth import AppTokenAuth
from twitchgraph.twitch.chat import ChannelView, ChatClient
from twitchgraph.twitch.credentials import Credentials, load_credentials
from twitchgraph.twitch.endpoints import Endpoints
from twitchgraph.twitch.errors import (
    AuthError,
    MalformedResponse,
    MissingCredentials,
    RateLimited,
    ServerError,
    TwitchAPIError,
    TwitchError,
    Unauthorized,
)
from twitchgraph.twitch.helix import HelixClient, HelixStats

__all__ = [
    "AppTokenAuth",
    "AuthError",
    "ChannelView",
    "ChatClient",
    "Credentials",
    "Endpoints",
    "HelixClient",
    "HelixStats",
    "MalformedResponse",
    "MissingCredentials",
    "RateLimited",
    "ServerError",
    "TwitchAPIError",
    "TwitchError",
    "Unauthorized",
    "load_credentials",
]
