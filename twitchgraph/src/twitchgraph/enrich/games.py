"""Helix games: the store's game ids -> names, box art and IGDB ids, cached in ``games``.

Only ids never asked for are requested; an id Helix does not know is kept with
``found = false`` so that it is not asked again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from twitchgraph.enrich.schema import ensure_enrich_tables, upsert_frame
from twitchgraph.enrich.sources import SourceReport

if TYPE_CHECKING:
    from twitchgraph.twitch.helix import HelixClient

__all__ = ["enrich_helix_games", "missing_game_ids"]

logger = logging.getLogger(__name__)


def missing_game_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Game ids seen in ``streams`` that have no row in ``games`` yet."""
    ensure_enrich_tables(con)
    return [
        r[0]
        for r in con.execute(
            """SELECT DISTINCT st.game_id FROM streams st
               LEFT JOIN games g ON g.game_id = st.game_id
               WHERE coalesce(st.game_id, '') <> '' AND g.game_id IS NULL ORDER BY 1"""
        ).fetchall()
    ]


def enrich_helix_games(con: duckdb.DuckDBPyConnection, helix: HelixClient) -> SourceReport:
    """Fetch the missing game ids with ``HelixClient.games`` and cache them."""
    report = SourceReport("helix games")
    ids = missing_game_ids(con)
    if not ids:
        return report
    games = helix.games(ids=ids)
    report.asked = len(ids)
    by_id = {g["id"]: g for g in games}
    frame = pd.DataFrame(
        {
            "game_id": ids,
            "name": [by_id[i]["name"] if i in by_id else None for i in ids],
            "igdb_id": [(by_id[i].get("igdb_id") or None) if i in by_id else None for i in ids],
            "box_art_url": [by_id[i].get("box_art_url") if i in by_id else None for i in ids],
            "found": [i in by_id for i in ids],
        }
    )
    upsert_frame(con, "games", frame)
    report.found = len(by_id)
    logger.info("Helix games: %d asked, %d found", len(ids), len(by_id))
    return report
