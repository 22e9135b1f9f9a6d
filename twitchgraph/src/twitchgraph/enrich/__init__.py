"""Enrichment of the store: games (Helix, IGDB, Steam) and streamers' profiles and links.

Every source caches in store tables (see :mod:`twitchgraph.enrich.schema`), asks only for
what is missing on a rerun, and fails soft: its error is reported and the others go on.
:func:`run_enrichment` runs them in order: Helix profiles and games, IGDB, Steam, social links
from descriptions, and (opt-in) social links from the About panel over GQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import duckdb
import httpx

from twitchgraph.enrich.matching import DEFAULT_THRESHOLD
from twitchgraph.enrich.schema import ensure_enrich_tables, upsert_frame
from twitchgraph.enrich.sources import SourceReport
from twitchgraph.twitch.auth import AppTokenAuth
from twitchgraph.twitch.credentials import GQL_CLIENT_ID_VAR
from twitchgraph.twitch.errors import TwitchError

if TYPE_CHECKING:
    from twitchgraph.clock import Clock
    from twitchgraph.twitch.credentials import Credentials
    from twitchgraph.twitch.endpoints import Endpoints

__all__ = [
    "SourceReport",
    "enrich_profiles",
    "ensure_enrich_tables",
    "run_enrichment",
]

logger = logging.getLogger(__name__)


def enrich_profiles(con: duckdb.DuckDBPyConnection, helix) -> SourceReport:
    """Fetch the Helix profile of streamers in ``streams`` that have no ``users`` row.

    Logins Helix does not know (renamed, banned) are remembered in ``user_fetches`` and not
    asked again.
    """
    import pandas as pd

    from twitchgraph.store.db import upsert_users

    report = SourceReport("helix users")
    logins = [
        r[0]
        for r in con.execute(
            """SELECT DISTINCT lower(user_login) FROM streams
               WHERE lower(user_login) NOT IN (SELECT lower(login) FROM users)
                 AND lower(user_login) NOT IN (SELECT login FROM user_fetches) ORDER BY 1"""
        ).fetchall()
    ]
    if not logins:
        return report
    users = helix.users(logins=logins)
    report.asked, report.found = len(logins), len(users)
    upsert_users(con, users)
    found = {u["login"].lower() for u in users}
    upsert_frame(
        con, "user_fetches", pd.DataFrame({"login": logins, "found": [x in found for x in logins]})
    )
    return report


def _soft(report_name: str, step: Callable[[], SourceReport]) -> SourceReport:
    try:
        return step()
    except TwitchError as exc:  # a service failing; a bug shows its traceback
        logger.debug("enrichment source %s failed", report_name, exc_info=True)
        message = str(exc) or type(exc).__name__
        return SourceReport(report_name, error=f"{type(exc).__name__}: {message}")


def run_enrichment(
    con: duckdb.DuckDBPyConnection,
    *,
    endpoints: Endpoints,
    credentials: Credentials | None,
    http: httpx.Client,
    steam: bool = True,
    igdb: bool = True,
    social_source: str | None = None,
    match_threshold: float = DEFAULT_THRESHOLD,
    clock: Clock | None = None,
    steam_interval_s: float = 1.5,
    igdb_requests_per_s: float = 4.0,
    gql_client_id: str | None = None,
    gql_limit: int | None = None,
    on_report: Callable[[SourceReport], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[SourceReport]:
    """Run every enabled source against the store; one report per source, in order.

    Parameters
    ----------
    con : an open store.
    endpoints : where the services live (``Endpoints.from_env()``; the simulator sets them).
    credentials : the app's Twitch credentials; None skips the Twitch sources (Helix, IGDB,
        GQL without ``gql_client_id``) with an error in their reports.
    http : the HTTP client every source uses.
    steam, igdb : enable these sources.
    social_source : ``"gql"`` to also read the About panel (undocumented endpoint).
    match_threshold : lowest fuzzy score accepted when matching names to Steam titles.
    clock : waits for pacing; default the system clock.
    steam_interval_s, igdb_requests_per_s : the services' rate limits.
    gql_client_id : the ``Client-Id`` for GQL (the caller reads ``TWITCH_GQL_CLIENT_ID``
        with :func:`~twitchgraph.twitch.credentials.read_env`); default the app's client id.
    gql_limit : ask GQL about at most this many streamers (largest first).
    on_report : called with each report as soon as its source is done.
    progress : called as ``progress(source, done, total)`` during the long sources
        (Steam appdetails, GQL), for a progress bar.
    """
    from twitchgraph.enrich.social import enrich_social_descriptions

    if social_source not in (None, "gql"):
        raise ValueError(f"social_source must be 'gql' or None, got {social_source!r}")
    ensure_enrich_tables(con)
    reports: list[SourceReport] = []

    def done(report: SourceReport) -> None:
        reports.append(report)
        if on_report is not None:
            on_report(report)

    auth = AppTokenAuth(credentials, auth_url=endpoints.auth_url, http=http, clock=clock
                        ) if credentials is not None else None  # fmt: skip
    for report in _helix_steps(con, auth, endpoints=endpoints, http=http, clock=clock):
        done(report)
    if igdb:
        done(_igdb_step(con, auth, endpoints=endpoints, http=http, clock=clock,
                        requests_per_s=igdb_requests_per_s))  # fmt: skip
    if steam:
        done(_steam_step(con, endpoints=endpoints, http=http, clock=clock,
                         interval_s=steam_interval_s, threshold=match_threshold,
                         progress=_progress_of("steam", progress)))  # fmt: skip
    done(_soft("social (description)", lambda: enrich_social_descriptions(con)))
    if social_source == "gql":
        client_id = gql_client_id or (credentials.client_id if credentials else None)
        done(_gql_step(con, client_id, endpoints=endpoints, http=http, clock=clock,
                       limit=gql_limit, progress=_progress_of("gql", progress)))  # fmt: skip
    return reports


def _needs_credentials(name: str) -> SourceReport:
    return SourceReport(name, error="no Twitch credentials: set TWITCH_CLIENT_ID and "
                                    "TWITCH_CLIENT_SECRET")  # fmt: skip


def _progress_of(
    source: str, progress: Callable[[str, int, int], None] | None
) -> Callable[[int, int], None] | None:
    """`progress` bound to one source's name, for the sources that report (done, total)."""
    if progress is None:
        return None
    return lambda done, total: progress(source, done, total)


def _helix_steps(
    con: duckdb.DuckDBPyConnection,
    auth: AppTokenAuth | None,
    *,
    endpoints: Endpoints,
    http: httpx.Client,
    clock: Clock | None,
) -> list[SourceReport]:
    """Streamers' profiles and the games' Helix records (with their IGDB ids)."""
    from twitchgraph.enrich.games import enrich_helix_games
    from twitchgraph.twitch.helix import HelixClient

    if auth is None:
        return [_needs_credentials("helix users"), _needs_credentials("helix games")]
    helix = HelixClient(http=http, auth=auth, api_url=endpoints.api_url, clock=clock)
    return [_soft("helix users", lambda: enrich_profiles(con, helix)),
            _soft("helix games", lambda: enrich_helix_games(con, helix))]  # fmt: skip


def _igdb_step(
    con: duckdb.DuckDBPyConnection,
    auth: AppTokenAuth | None,
    *,
    endpoints: Endpoints,
    http: httpx.Client,
    clock: Clock | None,
    requests_per_s: float,
) -> SourceReport:
    from twitchgraph.enrich.igdb import IGDBClient, enrich_igdb

    if auth is None:
        return _needs_credentials("igdb")
    client = IGDBClient(http=http, auth=auth, igdb_url=endpoints.igdb_url, clock=clock,
                        requests_per_s=requests_per_s)  # fmt: skip
    return _soft("igdb", lambda: enrich_igdb(con, client))


def _steam_step(
    con: duckdb.DuckDBPyConnection,
    *,
    endpoints: Endpoints,
    http: httpx.Client,
    clock: Clock | None,
    interval_s: float,
    threshold: float,
    progress: Callable[[int, int], None] | None,
) -> SourceReport:
    from twitchgraph.enrich.steam import SteamClient, enrich_steam

    client = SteamClient(http=http, store_url=endpoints.steam_store_url,
                         api_url=endpoints.steam_api_url, clock=clock,
                         min_interval_s=interval_s)  # fmt: skip
    return _soft("steam", lambda: enrich_steam(con, client, threshold=threshold,
                                               progress=progress))  # fmt: skip


def _gql_step(
    con: duckdb.DuckDBPyConnection,
    client_id: str | None,
    *,
    endpoints: Endpoints,
    http: httpx.Client,
    clock: Clock | None,
    limit: int | None,
    progress: Callable[[int, int], None] | None,
) -> SourceReport:
    from twitchgraph.enrich.social import GqlClient, enrich_social_gql

    if not client_id:
        return SourceReport("social (gql)", error=f"no client id: set {GQL_CLIENT_ID_VAR}")
    client = GqlClient(http=http, gql_url=endpoints.gql_url, client_id=client_id, clock=clock)
    return _soft("social (gql)", lambda: enrich_social_gql(con, client, limit=limit,
                                                           progress=progress))  # fmt: skip
