"""IGDB game metadata: genres, themes, first release date, developers and publishers.

``POST {igdb_url}/games`` with an Apicalypse body and the same app token as Helix
(``AppTokenAuth``: ``Client-Id`` + ``Authorization: Bearer``). IGDB allows 4 requests per
second; calls are spaced by ``1 / requests_per_s`` and a 429 waits and retries. Ids are asked
in batches of up to 500 (IGDB's largest ``limit``); answers are cached in ``igdb_games``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import httpx
import pandas as pd

from twitchgraph.clock import Clock, SystemClock
from twitchgraph.enrich.schema import ensure_enrich_tables, upsert_frame
from twitchgraph.enrich.sources import Pacer, SourceReport, decode_json
from twitchgraph.twitch.errors import MalformedResponse
from twitchgraph.twitch.retry import Backoff, ClosingClient, send_with_retries

__all__ = ["IGDB_FIELDS", "IGDBClient", "enrich_igdb", "parse_igdb_game"]

logger = logging.getLogger(__name__)

IGDB_FIELDS = (
    "name",
    "genres.name",
    "themes.name",
    "first_release_date",
    "involved_companies.company.name",
    "involved_companies.developer",
    "involved_companies.publisher",
)
BATCH = 500


class IGDBClient(ClosingClient):
    """IGDB v4 ``/games`` over an injected ``httpx.Client``.

    Args:
        http: the HTTP client (tests pass one with ``httpx.MockTransport``).
        auth: the app-token auth (``twitchgraph.twitch.auth.AppTokenAuth``) or any ``httpx.Auth``.
        igdb_url: ``Endpoints.igdb_url``.
        clock: waits between calls; default ``SystemClock()``.
        requests_per_s: IGDB's limit (4).
        max_retries: retries of one call after 429/5xx/timeouts.
    """

    def __init__(
        self,
        *,
        http: httpx.Client,
        auth: httpx.Auth,
        igdb_url: str,
        clock: Clock | None = None,
        requests_per_s: float = 4.0,
        max_retries: int = 4,
    ) -> None:
        self._http = http
        self._auth = auth
        self._url = igdb_url.rstrip("/") + "/games"
        self._pacer = Pacer(clock or SystemClock(), 1.0 / requests_per_s)
        self.max_retries = max_retries
        self.requests = 0

    def _post(self, body: str) -> httpx.Response:
        self.requests += 1
        return self._http.post(self._url, content=body.encode(), auth=self._auth,
                               headers={"Accept": "application/json",
                                        "Content-Type": "text/plain"})  # fmt: skip

    def query(self, body: str) -> list[dict[str, Any]]:
        """POST one Apicalypse body to ``/games``; the decoded list of games."""
        response = send_with_retries(lambda: self._post(body), service="IGDB", url=self._url,
                                     clock=self._pacer.clock, backoff=Backoff(0.5, 30.0),
                                     max_retries=self.max_retries,
                                     before=self._pacer.wait)  # fmt: skip
        data = decode_json(response, source="IGDB")
        if not isinstance(data, list):
            raise MalformedResponse("IGDB reply is not a JSON list", status=response.status_code,
                                    url=self._url)
        return [g for g in data if isinstance(g, dict)]

    def games(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """Games by IGDB id, with the fields of :data:`IGDB_FIELDS`."""
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            body = (
                f"fields {','.join(IGDB_FIELDS)}; "
                f"where id = ({','.join(str(int(i)) for i in batch)}); limit {len(batch)};"
            )
            out.extend(self.query(body))
        return out


def _names(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(i["name"]) for i in items if isinstance(i, dict) and i.get("name")]


def parse_igdb_game(game: dict[str, Any]) -> dict[str, Any]:
    """One IGDB game (references expanded) as an ``igdb_games`` row."""
    released = game.get("first_release_date")
    release_date = (
        datetime.fromtimestamp(int(released), UTC).date()
        if isinstance(released, int | float)
        else None
    )
    companies = [c for c in game.get("involved_companies") or [] if isinstance(c, dict)]

    def company_names(role: str) -> list[str]:
        return [
            str(c["company"]["name"])
            for c in companies
            if c.get(role) and isinstance(c.get("company"), dict) and c["company"].get("name")
        ]

    return {
        "igdb_id": str(game["id"]),
        "name": str(game.get("name") or ""),
        "genres": _names(game.get("genres")),
        "themes": _names(game.get("themes")),
        "release_date": release_date,
        "developers": company_names("developer"),
        "publishers": company_names("publisher"),
        "found": True,
    }


def enrich_igdb(con: duckdb.DuckDBPyConnection, client: IGDBClient) -> SourceReport:
    """Fetch IGDB data for the IGDB ids Helix gave (``games.igdb_id``) not cached yet."""
    ensure_enrich_tables(con)
    report = SourceReport("igdb")
    ids = [
        r[0]
        for r in con.execute(
            """SELECT DISTINCT g.igdb_id FROM games g
               LEFT JOIN igdb_games i ON i.igdb_id = g.igdb_id
               WHERE g.found AND coalesce(g.igdb_id, '') <> '' AND i.igdb_id IS NULL
               ORDER BY 1"""
        ).fetchall()
    ]
    numeric = [i for i in ids if i.isdigit()]
    if not numeric:
        return report
    for start in range(0, len(numeric), BATCH):
        batch = numeric[start : start + BATCH]
        games = client.games([int(i) for i in batch])
        report.asked += len(batch)
        got = {}
        for game in games:
            try:
                row = parse_igdb_game(game)
            except (KeyError, TypeError, ValueError) as exc:
                logger.warning("skipping a malformed IGDB game (%s): %.200r", exc, game)
                continue
            got[row["igdb_id"]] = row
        rows = [got.get(i) or {"igdb_id": i, "name": None, "genres": None, "themes": None,
                               "release_date": None, "developers": None, "publishers": None,
                               "found": False} for i in batch]  # fmt: skip
        report.found += len(got)
        # per batch, so a later failure keeps earlier answers
        upsert_frame(con, "igdb_games", pd.DataFrame(rows))
    return report

