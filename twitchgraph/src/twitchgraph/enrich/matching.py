"""Match Twitch game names to Steam titles: exact, then normalised, then fuzzy.

The original study matched SteamDB titles the same way (exact, after cleaning, then by a
ratio score with manual review). Every match keeps its method and score so that a reviewer
can sort by score and check the fuzzy ones.

Examples
--------
>>> normalise_title("Starfall Tactics™")
'starfall tactics'
>>> normalise_title("Iron Harbor: Definitive Edition")
'iron harbor'
>>> [m.method for m in match_titles(["Chess II"], [(7, "Chess 2")])]
['normalised']
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

__all__ = ["DEFAULT_THRESHOLD", "Match", "match_titles", "normalise_title"]

DEFAULT_THRESHOLD = 85.0

_MARKS = re.compile(r"[\u2122\u00ae\u00a9]")  # ™ ® ©
_APOSTROPHES = re.compile(r"['\u2019`]")
_PUNCT = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")
# Edition suffixes that name the same game on a store page ("X: Definitive Edition").
_EDITION = re.compile(
    r"(?:\s+|^)(?:(?:game of the year|goty|definitive|deluxe|complete|ultimate|gold|enhanced|"
    r"remastered|anniversary|special|collectors|directors cut|legendary|premium|standard|"
    r"digital deluxe)(?:\s+edition)?|edition)$"
)
# Roman numerals of sequels (I, V and X alone are too often words or letters).
_ROMAN = {"ii": "2", "iii": "3", "iv": "4", "vi": "6", "vii": "7", "viii": "8", "ix": "9"}


def normalise_title(name: str) -> str:
    """Lower case, without ™®©, punctuation, edition suffixes or sequel roman numerals."""
    # Marks go before NFKC, which would spell ™ as "TM".
    text = unicodedata.normalize("NFKC", _MARKS.sub("", name))
    text = text.lower().replace("&", " and ")
    text = _APOSTROPHES.sub("", text)
    text = _PUNCT.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    previous = None
    while previous != text:  # "X Gold Edition Remastered" -> "X"
        previous = text
        text = _EDITION.sub("", text).strip()
    words = [_ROMAN.get(w, w) for w in text.split(" ")]
    return " ".join(words) if text else ""


@dataclass(frozen=True)
class Match:
    """How one Twitch game name matched (or did not match) a Steam title."""

    name: str
    appid: int | None
    steam_name: str | None
    method: str  # 'exact' | 'normalised' | 'fuzzy' | 'none'
    score: float | None


def match_titles(
    names: Iterable[str],
    apps: Sequence[tuple[int, str]],
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> list[Match]:
    """Match each name to one Steam app.

    Parameters
    ----------
    names : Twitch game names.
    apps : (appid, title) pairs, e.g. Steam's app list.
    threshold : the lowest fuzzy score (rapidfuzz ``ratio`` of normalised titles, 0-100)
        accepted as a match.

    Returns
    -------
    One :class:`Match` per name, in order. Exact and normalised matches score 100; when
    several apps carry the same title the lowest app id (usually the base game) wins.
    """
    if not 0 <= threshold <= 100:
        raise ValueError(f"threshold must be between 0 and 100, got {threshold}")
    exact: dict[str, tuple[int, str]] = {}
    normal: dict[str, tuple[int, str]] = {}
    for appid, title in sorted(apps):
        if not title:
            continue
        exact.setdefault(title, (appid, title))
        key = normalise_title(title)
        if key:
            normal.setdefault(key, (appid, title))
    keys = list(normal)
    out: list[Match] = []
    for name in names:
        if name in exact:
            appid, title = exact[name]
            out.append(Match(name, appid, title, "exact", 100.0))
            continue
        key = normalise_title(name)
        if key and key in normal:
            appid, title = normal[key]
            out.append(Match(name, appid, title, "normalised", 100.0))
            continue
        best = (
            process.extractOne(key, keys, scorer=fuzz.ratio, score_cutoff=threshold)
            if key and keys
            else None
        )
        if best is None:
            out.append(Match(name, None, None, "none", None))
        else:
            appid, title = normal[best[0]]
            out.append(Match(name, appid, title, "fuzzy", round(float(best[1]), 2)))
    return out
