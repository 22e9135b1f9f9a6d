"""One duration spelling for every command, bounded so a typo is an error, not an overflow."""

from __future__ import annotations

import pytest

from twitchgraph.durations import MAX_DURATION_S, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("10m", 600), ("1.5h", 5400), ("2d", 172800), ("1w", 604800),
    (" 6H ", 21600), ("0", 0), (".5m", 30), ("366d", MAX_DURATION_S),
])
def test_every_unit_is_accepted(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "-5m", "nan", "inf", "1e3s", "10 minutes", "5y",
                                  "1h30m"])
def test_malformed_durations_name_the_forms(text):
    with pytest.raises(ValueError, match="not a duration.*10m, 24h, 1d or 1w"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["99999999999999h", "99999999999d", "367d", "53w"])
def test_durations_beyond_a_year_are_refused_not_overflowing(text):
    with pytest.raises(ValueError, match="longer than the 366 days allowed"):
        parse_duration(text)
