"""The one base of twitchgraph's user-facing errors, which the CLI turns into one red line.

Anything else that reaches the CLI is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["BadValue", "TwitchgraphError"]


class TwitchgraphError(Exception):
    """A user-facing error: the message names the thing and what to do."""


class BadValue(TwitchgraphError, ValueError):
    """An argument outside its allowed values; the message says what is allowed.

    Still a ValueError, so library callers catch it as the bad argument it is.
    """
