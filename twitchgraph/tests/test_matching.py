"""Game-name matching tiers: exact, normalised, fuzzy with score and threshold."""

from __future__ import annotations

import pytest

from twitchgraph.enrich.matching import match_titles, normalise_title


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Starfall Tactics™", "starfall tactics"),
        ("Kingdoms of Ember®", "kingdoms of ember"),
        ("Hollow Crown: Rebirth", "hollow crown rebirth"),
        ("Deep-Core Miners", "deep core miners"),
        ("Dungeon Keeper's Legacy - Remastered Edition", "dungeon keepers legacy"),
        ("Iron Harbor: Game of the Year Edition", "iron harbor"),
        ("Chrono Siege II", "chrono siege 2"),
        ("Mario & Luigi", "mario and luigi"),
        ("Edition", ""),
    ],
)
def test_normalise_title(raw, clean):
    assert normalise_title(raw) == clean


APPS = [
    (10, "Ashen Frontier"),
    (11, "Ashen Frontier"),  # a duplicate title: the lowest id wins
    (20, "Starfall Tactics™"),
    (30, "Lantern Light"),
    (40, "Outpost 09"),
    (50, "Ashen Frontier Soundtrack"),
]


def test_tiers_in_order_with_scores():
    got = {m.name: m for m in match_titles(
        ["Ashen Frontier", "STARFALL TACTICS", "Lanternlight", "Outpost Zero-Nine", ""], APPS
    )}  # fmt: skip
    assert (got["Ashen Frontier"].appid, got["Ashen Frontier"].method) == (10, "exact")
    assert (got["STARFALL TACTICS"].appid, got["STARFALL TACTICS"].method) == (20, "normalised")
    lantern = got["Lanternlight"]
    assert (lantern.appid, lantern.method, lantern.steam_name) == (30, "fuzzy", "Lantern Light")
    assert lantern.score == pytest.approx(96.0)  # ratio("lanternlight", "lantern light")
    assert got["Outpost Zero-Nine"].method == "none" and got["Outpost Zero-Nine"].appid is None
    assert got[""].method == "none"


def test_threshold_decides_fuzzy_matches():
    assert match_titles(["Lanternlight"], APPS, threshold=97)[0].method == "none"
    assert match_titles(["Lanternlight"], APPS, threshold=95)[0].appid == 30
    with pytest.raises(ValueError, match="between 0 and 100"):
        match_titles(["x"], APPS, threshold=101)
