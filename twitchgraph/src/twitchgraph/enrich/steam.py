"""Steam's public store data for the games streamed: app list, name matching, appdetails.

- ``GET {steam_api_url}/ISteamApps/GetAppList/v2/`` gives every (appid, name); cached in
  ``steam_apps`` and fetched only when that table is empty.
- Twitch game names are matched to Steam titles (:mod:`twitchgraph.enrich.matching`) into
  ``game_matches``; a rerun matches only new names (and re-tries fuzzy/unmatched names when
  the threshold changed).
- ``GET {steam_store_url}/api/appdetails?appids=N`` (one app per call) gives developers,
  publishers, release date, categories and genres; cached in ``steam_details``. The store
  allows about 200 calls per 5 minutes, so calls are spaced by ``min_interval_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import duckdb
import httpx
import pandas as pd

from twitchgraph.clock import Clock, SystemClock
from twitchgraph.enrich.matching import DEFAULT_THRESHOLD, match_titles
from twitchgraph.enrich.schema import ensure_enrich_tables, upsert_frame
from twitchgraph.enrich.sources import Pacer, SourceReport, decode_json
from twitchgraph.store.db import registered
from twitchgraph.twitch.errors import MalformedResponse
from twitchgraph.twitch.retry import Backoff, ClosingClient, send_with_retries

__all__ = ["SteamClient", "enrich_steam", "steam_date"]

logger = logging.getLogger(__name__)


class SteamClient(ClosingClient):
    """Steam Web API app list and store appdetails over an injected ``httpx.Client``.

    Args:
        http: the HTTP client (tests pass one with ``httpx.MockTransport``).
        store_url: ``Endpoints.steam_store_url``.
        api_url: ``Endpoints.steam_api_url``.
        clock: waits between calls; default ``SystemClock()``.
        min_interval_s: seconds between appdetails calls (1.5 s keeps under 200 per 5 min).
        max_retries: retries of one call after 429/5xx/timeouts.
    """

    def __init__(
        self,
        *,
        http: httpx.Client,
        store_url: str,
        api_url: str,
        clock: Clock | None = None,
        min_interval_s: float = 1.5,
        max_retries: int = 3,
    ) -> None:
        self._http = http
        self._store_url = store_url.rstrip("/")
        self._api_url = api_url.rstrip("/")
        self._pacer = Pacer(clock or SystemClock(), min_interval_s)
        self.max_retries = max_retries
        self.requests = 0

    def _get(self, url: str, params: dict[str, str] | None = None) -> Any:
        def send() -> httpx.Response:
            self.requests += 1
            return self._http.get(url, params=params)

        response = send_with_retries(send, service="Steam", url=url, clock=self._pacer.clock,
                                     backoff=Backoff(2.0, 60.0), max_retries=self.max_retries,
                                     before=self._pacer.wait)  # fmt: skip
        return decode_json(response, source="Steam")

    def app_list(self) -> list[tuple[int, str]]:
        """Every Steam app as (appid, name)."""
        body = self._get(f"{self._api_url}/ISteamApps/GetAppList/v2/")
        try:
            apps = body["applist"]["apps"]
            return [(int(a["appid"]), str(a.get("name") or "")) for a in apps]
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(f"Steam app list without applist.apps ({exc})",
                                    status=200, url=self._api_url) from None

    def app_details(self, appid: int) -> dict[str, Any] | None:
        """The store's data of one app, or None when the store has no page for it."""
        body = self._get(f"{self._store_url}/api/appdetails", {"appids": str(appid)})
        entry = body.get(str(appid)) if isinstance(body, dict) else None
        if not isinstance(entry, dict) or not entry.get("success"):
            return None
        data = entry.get("data")
        return data if isinstance(data, dict) else None


def _descriptions(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(i["description"]) for i in items if isinstance(i, dict) and i.get("description")]


_STEAM_DATES = ("%d %b, %Y", "%b %d, %Y", "%d %B, %Y", "%B %d, %Y", "%d %b %Y", "%Y-%m-%d")


def steam_date(text: str) -> str:
    """A store page's release date as ISO ``YYYY-MM-DD`` when it is a day, else as given.

    >>> steam_date("14 Mar, 2019"), steam_date("Mar 14, 2019"), steam_date("Coming soon")
    ('2019-03-14', '2019-03-14', 'Coming soon')
    """
    for fmt in _STEAM_DATES:
        try:
            return datetime.strptime(text.strip(), fmt).date().isoformat()
        except ValueError:
            continue
    return text


def _details_row(appid: int, data: dict[str, Any] | None) -> dict[str, Any]:
    if data is None:
        empty = ("name", "developers", "publishers", "release_date", "categories", "genres")
        return {"appid": appid, **dict.fromkeys(empty), "found": False}
    release = data.get("release_date")
    return {
        "appid": appid,
        "name": str(data.get("name") or ""),
        "developers": [str(x) for x in data.get("developers") or []],
        "publishers": [str(x) for x in data.get("publishers") or []],
        "release_date": (steam_date(str(release.get("date") or ""))
                         if isinstance(release, dict) else None),  # fmt: skip
        "categories": _descriptions(data.get("categories")),
        "genres": _descriptions(data.get("genres")),
        "found": True,
    }


def enrich_steam(
    con: duckdb.DuckDBPyConnection,
    client: SteamClient,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    progress: Callable[[int, int], None] | None = None,
) -> SourceReport:
    """Match the store's game names to Steam apps and fetch the matched apps' details.

    Asks only for what is missing: the app list when ``steam_apps`` is empty, names without
    a match row (or whose fuzzy/no match was made at another threshold), details of matched
    apps without a ``steam_details`` row. ``progress(done, total)`` follows the appdetails calls.
    """
    ensure_enrich_tables(con)
    report = SourceReport("steam")
    if con.execute("SELECT count(*) FROM steam_apps").fetchall()[0][0] == 0:
        apps = client.app_list()
        _insert_apps(con, apps)
        report.asked += 1
        logger.info("cached the Steam app list (%d apps)", len(apps))
    names = [
        r[0]
        for r in con.execute(
            """
            SELECT DISTINCT st.game_name FROM streams st
            LEFT JOIN game_matches m ON m.game_name = st.game_name
            WHERE coalesce(st.game_name, '') <> ''
              AND (m.game_name IS NULL OR (m.method IN ('fuzzy', 'none') AND m.threshold <> ?))
            ORDER BY 1
            """,
            [float(threshold)],
        ).fetchall()
    ]
    if names:
        apps = [(int(a), str(n)) for a, n in con.execute("SELECT appid, name FROM steam_apps")
                .fetchall()]  # fmt: skip
        matches = match_titles(names, apps, threshold=threshold)
        frame = pd.DataFrame(
            {
                "game_name": [m.name for m in matches],
                "steam_appid": pd.array([m.appid for m in matches], dtype="Int64"),
                "steam_name": [m.steam_name for m in matches],
                "method": [m.method for m in matches],
                "score": [m.score for m in matches],
                "threshold": [float(threshold)] * len(matches),
            }
        )
        upsert_frame(con, "game_matches", frame)
        report.matched = sum(m.appid is not None for m in matches)
    appids = [
        int(r[0])
        for r in con.execute(
            """SELECT DISTINCT m.steam_appid FROM game_matches m
               LEFT JOIN steam_details d ON d.appid = m.steam_appid
               WHERE m.steam_appid IS NOT NULL AND d.appid IS NULL ORDER BY 1"""
        ).fetchall()
    ]
    rows = []
    try:
        for i, appid in enumerate(appids, 1):
            rows.append(_details_row(appid, client.app_details(appid)))
            report.asked += 1
            if progress is not None:
                progress(i, len(appids))
    finally:
        # Keep what was fetched even when a later call fails.
        if rows:
            upsert_frame(con, "steam_details", pd.DataFrame(rows))
            report.found += sum(r["found"] for r in rows)
    return report


def _insert_apps(con: duckdb.DuckDBPyConnection, apps: list[tuple[int, str]]) -> None:
    frame = pd.DataFrame(apps, columns=["appid", "name"])
    with registered(con, "_tg_apps", frame):
        con.execute("DELETE FROM steam_apps")
        con.execute("INSERT INTO steam_apps SELECT appid, name FROM _tg_apps")
