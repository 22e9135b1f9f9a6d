"""Durations on the command line (`collect --every/--for/--window`, `import --interval`,
`evolve --window`): one spelling everywhere, and one upper bound so that a typo such as
``99999999999h`` is a plain error instead of an overflow deep in a timer or a date."""

from __future__ import annotations

import re

from twitchgraph.errors import BadValue

__all__ = ["MAX_DURATION_S", "UNITS", "parse_duration"]

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# A year and a day: longer than any collection or evolution window anyone means to ask for.
MAX_DURATION_S = 366 * 86400

_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhdw]?)\s*", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``10m``, ``1.5h``, ``2d`` or ``1w`` (a bare number is seconds).

    Raises ValueError, naming the allowed forms and range, for anything else, including a
    negative, non-finite or longer-than-366-days duration.

    >>> parse_duration("10m"), parse_duration("1.5h"), parse_duration("1w")
    (600.0, 5400.0, 604800.0)
    """
    match = _DURATION.fullmatch(text or "")
    if match is None:
        raise BadValue(f"not a duration: {text!r} (use e.g. 60s, 10m, 24h, 1d or 1w)")
    seconds = float(match[1]) * UNITS[(match[2] or "s").lower()]
    if seconds > MAX_DURATION_S:
        raise BadValue(f"{text.strip()!r} is longer than the {MAX_DURATION_S // 86400} days "
                         "allowed")
    return seconds
