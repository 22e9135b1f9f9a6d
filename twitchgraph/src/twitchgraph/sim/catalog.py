"""Fixed catalogue of the simulated games, their IGDB records and their Steam store pages.

The titles are invented. Each game states how its Twitch name relates to its Steam title so that
enrichment tests know which matching tier should find it:

- ``exact``: the Steam title is the Twitch name;
- ``normalised``: equal once trademark signs, punctuation, spacing and case are cleaned;
- ``fuzzy``: only a fuzzy ratio finds it (edition suffixes, numerals, word splits);
- ``absent``: not on Steam at all (console-only games and non-game categories).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GAMES", "IGDB_GENRES", "IGDB_THEMES", "STEAM_CATEGORIES", "STEAM_GENRES", "Game"]

# Real IGDB ids of genres and themes, so that ids look like the service's own.
IGDB_GENRES: dict[str, int] = {
    "Fighting": 4,
    "Shooter": 5,
    "Platform": 8,
    "Puzzle": 9,
    "Racing": 10,
    "Real Time Strategy (RTS)": 11,
    "Role-playing (RPG)": 12,
    "Simulator": 13,
    "Sport": 14,
    "Strategy": 15,
    "Tactical": 24,
    "Adventure": 31,
    "Indie": 32,
    "Arcade": 33,
    "Card & Board Game": 35,
    "MOBA": 36,
}
IGDB_THEMES: dict[str, int] = {
    "Action": 1,
    "Fantasy": 17,
    "Science fiction": 18,
    "Horror": 19,
    "Survival": 21,
    "Historical": 22,
    "Stealth": 23,
    "Comedy": 27,
    "Sandbox": 33,
    "Open world": 38,
    "Warfare": 39,
    "Party": 40,
}
STEAM_CATEGORIES: dict[str, int] = {
    "Multi-player": 1,
    "Single-player": 2,
    "Co-op": 9,
    "Steam Achievements": 22,
    "Steam Cloud": 23,
    "Full controller support": 28,
    "Steam Trading Cards": 29,
    "Online PvP": 36,
    "PvP": 49,
}
STEAM_GENRES: dict[str, str] = {
    "Action": "1",
    "Strategy": "2",
    "RPG": "3",
    "Casual": "4",
    "Racing": "9",
    "Sports": "18",
    "Indie": "23",
    "Adventure": "25",
    "Simulation": "28",
    "Massively Multiplayer": "29",
    "Free to Play": "37",
}


@dataclass(frozen=True)
class Game:
    """One Twitch category with its IGDB and Steam counterparts (``None`` where absent)."""

    name: str
    steam_name: str | None
    match: str  # exact | normalised | fuzzy | absent
    genres: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    release: str | None = None  # ISO date
    developers: tuple[str, ...] = ()
    publishers: tuple[str, ...] = ()
    steam_genres: tuple[str, ...] = ()
    steam_categories: tuple[str, ...] = ()
    is_game: bool = True
    twitch_id: str | None = None  # fixed for real categories, derived otherwise


def _g(name, steam, match, genres, themes, release, dev, pub, sg, sc) -> Game:
    return Game(name, steam, match, tuple(genres), tuple(themes), release, (dev,), (pub,),
                tuple(sg), tuple(sc))


_SP = ("Single-player", "Steam Achievements", "Steam Cloud")
_MP = ("Multi-player", "Online PvP", "PvP", "Steam Achievements")
_CO = ("Single-player", "Multi-player", "Co-op", "Full controller support")

GAMES: tuple[Game, ...] = (
    Game("Just Chatting", None, "absent", is_game=False, twitch_id="509658"),
    Game("Music", None, "absent", is_game=False, twitch_id="26936"),
    Game("Art", None, "absent", is_game=False, twitch_id="509660"),
    _g("Ashen Frontier", "Ashen Frontier", "exact", ["Shooter", "Adventure"],
       ["Action", "Survival", "Open world"], "2019-03-14", "Greyline Studio", "Northgate Games",
       ["Action", "Adventure"], _CO),
    _g("Starfall Tactics", "Starfall Tactics™", "normalised", ["Strategy", "Tactical"],
       ["Science fiction", "Warfare"], "2021-09-02", "Orbit Forge", "Orbit Forge",
       ["Strategy"], _SP),
    _g("Hollow Crown: Rebirth", "Hollow Crown Rebirth", "normalised", ["Role-playing (RPG)"],
       ["Fantasy", "Action"], "2022-02-24", "Bramble & Oak", "Lumen Interactive",
       ["RPG", "Action"], _SP),
    _g("Neon Drift Racing", "NEON DRIFT RACING", "normalised", ["Racing", "Arcade"],
       ["Action"], "2018-06-21", "Velocity Works", "Velocity Works", ["Racing", "Indie"], _MP),
    _g("Kingdoms of Ember", "Kingdoms of Ember®", "normalised", ["Strategy"],
       ["Fantasy", "Warfare", "Historical"], "2016-10-11", "Castlewright", "Northgate Games",
       ["Strategy"], _SP),
    _g("Dungeon Keeper's Legacy", "Dungeon Keepers Legacy - Remastered Edition", "fuzzy",
       ["Strategy", "Simulator"], ["Fantasy", "Comedy"], "2020-11-19", "Pitfall Labs",
       "Lumen Interactive", ["Strategy", "Simulation"], _SP),
    _g("Skyward Isles", "Skyward Isles", "exact", ["Adventure", "Indie"],
       ["Fantasy", "Open world", "Sandbox"], "2023-05-09", "Cloudkite", "Cloudkite",
       ["Adventure", "Indie"], _CO),
    _g("Iron Harbor", "Iron Harbor: Definitive Edition", "fuzzy", ["Simulator", "Strategy"],
       ["Historical"], "2017-08-30", "Dockside Digital", "Meridian Publishing",
       ["Simulation", "Strategy"], _SP),
    _g("Mythic Arena", None, "absent", ["Fighting", "MOBA"], ["Fantasy", "Action"], "2021-04-15",
       "Helix Bay", "Helix Bay", [], ()),
    _g("Pixel Farmstead", "Pixel Farmstead", "exact", ["Simulator", "Indie"],
       ["Sandbox", "Comedy"], "2019-12-05", "Sprout Pixel", "Sprout Pixel",
       ["Casual", "Indie", "Simulation"], _CO),
    _g("Void Runners", "VOID RUNNERS™", "normalised", ["Shooter", "Arcade"],
       ["Science fiction", "Action"], "2022-07-28", "Parallax Nine", "Meridian Publishing",
       ["Action", "Free to Play"], _MP),
    _g("Tidebreaker", "Tidebreaker", "exact", ["Adventure", "Platform"], ["Fantasy"],
       "2020-03-03", "Saltwater Games", "Saltwater Games", ["Adventure", "Indie"], _SP),
    _g("Chrono Siege II", "Chrono Siege 2", "fuzzy", ["Real Time Strategy (RTS)", "Strategy"],
       ["Science fiction", "Warfare"], "2018-01-25", "Temporal Arts", "Northgate Games",
       ["Strategy"], _MP),
    _g("Whisper of the Wilds", "Whisper Of The Wilds", "normalised", ["Adventure"],
       ["Survival", "Open world", "Horror"], "2021-10-29", "Fernlight", "Fernlight",
       ["Adventure", "Indie"], _CO),
    _g("Rogue Circuit", "Rogue Circuit", "exact", ["Shooter", "Indie"],
       ["Science fiction", "Action"], "2023-01-17", "Bitmoss", "Bitmoss", ["Action", "Indie"], _SP),
    _g("Frostbound Saga", None, "absent", ["Role-playing (RPG)", "Adventure"],
       ["Fantasy", "Open world"], "2024-02-08", "Polar Crown", "Helix Bay", [], ()),
    _g("Galactic Haulers", "Galactic Haulers: Deluxe", "fuzzy", ["Simulator"],
       ["Science fiction", "Sandbox"], "2019-07-11", "Freightline", "Meridian Publishing",
       ["Simulation", "Indie"], _CO),
    _g("Midnight Courier", "Midnight Courier", "exact", ["Adventure", "Puzzle"],
       ["Stealth", "Comedy"], "2022-10-20", "Lamplight Co", "Lamplight Co",
       ["Adventure", "Indie"], _SP),
    _g("Emberfall Online", "Emberfall Online®", "normalised", ["Role-playing (RPG)"],
       ["Fantasy", "Open world"], "2015-05-26", "Emberfall Ltd", "Emberfall Ltd",
       ["Massively Multiplayer", "RPG", "Free to Play"], _MP),
    _g("Sandcastle Siege", "Sandcastle Siege", "exact", ["Strategy", "Arcade"],
       ["Party", "Comedy"], "2021-06-03", "Tiny Tower", "Tiny Tower", ["Casual", "Strategy"], _CO),
    _g("Lanternlight", "Lantern Light", "fuzzy", ["Puzzle", "Platform"], ["Fantasy"],
       "2020-08-13", "Wickworks", "Wickworks", ["Casual", "Indie"], _SP),
    _g("Copperhead Rally", "Copperhead Rally", "exact", ["Racing", "Sport"], ["Action"],
       "2017-04-04", "Velocity Works", "Northgate Games", ["Racing", "Sports"], _MP),
    _g("Witchwood Tales", None, "absent", ["Adventure", "Puzzle"], ["Fantasy", "Horror"],
       "2023-10-31", "Hexhollow", "Helix Bay", [], ()),
    _g("Deep Core Miners", "Deep-Core Miners", "normalised", ["Shooter", "Simulator"],
       ["Science fiction", "Sandbox"], "2020-05-14", "Bedrock Bros", "Bedrock Bros",
       ["Action", "Indie"], _CO),
    _g("Soulforge Legends", "Soulforge Legends", "exact", ["MOBA", "Strategy"],
       ["Fantasy", "Action"], "2016-02-18", "Anvil Peak", "Anvil Peak",
       ["Strategy", "Free to Play"], _MP),
    _g("Cardbound", "Cardbound", "exact", ["Card & Board Game", "Strategy"], ["Fantasy"],
       "2019-09-26", "Foldwise", "Lumen Interactive", ["Strategy", "Free to Play"], _MP),
    _g("Quantum Quarry", "Quantum Quarry™", "normalised", ["Puzzle", "Simulator"],
       ["Science fiction", "Sandbox"], "2022-03-31", "Qubit Forge", "Qubit Forge",
       ["Simulation", "Indie"], _SP),
    _g("Harbor Lights Hotel", None, "absent", ["Simulator"], ["Comedy"], "2018-11-08",
       "Seaside Pixel", "Seaside Pixel", [], ()),
    _g("Outpost Zero-Nine", "Outpost 09", "fuzzy", ["Shooter", "Tactical"],
       ["Science fiction", "Horror", "Survival"], "2021-01-21", "Black Meridian",
       "Meridian Publishing", ["Action"], _CO),
    _g("Thunder Pals Party", "Thunder Pals Party", "exact", ["Arcade", "Sport"],
       ["Party", "Comedy"], "2020-12-10", "Jolly Bolt", "Jolly Bolt", ["Casual", "Sports"], _CO),
    _g("Crimson Vanguard", "Crimson Vanguard", "exact", ["Shooter", "Tactical"],
       ["Warfare", "Action", "Historical"], "2017-11-16", "Redline Tactical", "Northgate Games",
       ["Action"], _MP),
)
