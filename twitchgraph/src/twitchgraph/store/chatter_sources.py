"""How a chatter was seen in a channel's chat, in the order one sighting is preferred.

``names``: the member list Twitch sends on joining (``353``); ``join``: a ``JOIN`` while
listening; ``message``: a chat message. One user seen several ways keeps the first in
`SOURCES`, both in the chat client (`twitchgraph.twitch.chat`) and in the store
(`twitchgraph.store.db`); this module is the one place that says so.
"""

from __future__ import annotations

__all__ = ["RANK", "SOURCES"]

SOURCES = ("names", "join", "message")
RANK = {source: rank for rank, source in enumerate(SOURCES)}  # lower is preferred
