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

    from twitchgraph.store import upsert_users

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
    from twitchgraph.enrich.games import enrich_helix_games
    from twitchgraph.enrich.igdb import IGDBClient, enrich_igdb
    from twitchgraph.enrich.social import GqlClient, enrich_social_descriptions, enrich_social_gql
    from twitchgraph.enrich.steam import SteamClient, enrich_steam

    if social_source not in (None, "gql"):
        raise ValueError(f"social_source must be 'gql' or None, got {social_source!r}")
    ensure_enrich_tables(con)
    reports: list[SourceReport] = []

    def done(report: SourceReport) -> None:
        reports.append(report)
        if on_report is not None:
            on_report(report)

    auth = helix = None
    if credentials is not None:
        from twitchgraph.twitch.auth import AppTokenAuth
        from twitchgraph.twitch.helix import HelixClient

        auth = AppTokenAuth(credentials, auth_url=endpoints.auth_url, http=http, clock=clock)
        helix = HelixClient(http=http, auth=auth, api_url=endpoints.api_url, clock=clock)

    def needs_credentials(name: str) -> SourceReport:
        return SourceReport(name, error="no Twitch credentials: set TWITCH_CLIENT_ID and "
                                        "TWITCH_CLIENT_SECRET")  # fmt: skip

    if helix is None:
        done(needs_credentials("helix users"))
        done(needs_credentials("helix games"))
    else:
        done(_soft("helix users", lambda: enrich_profiles(con, helix)))
        done(_soft("helix games", lambda: enrich_helix_games(con, helix)))
    if igdb:
        if auth is None:
            done(needs_credentials("igdb"))
        else:
            client = IGDBClient(http=http, auth=auth, igdb_url=endpoints.igdb_url, clock=clock,
                                requests_per_s=igdb_requests_per_s)  # fmt: skip
            done(_soft("igdb", lambda: enrich_igdb(con, client)))
    if steam:
        steam_client = SteamClient(http=http, store_url=endpoints.steam_store_url,
                                   api_url=endpoints.steam_api_url, clock=clock,
                                   min_interval_s=steam_interval_s)  # fmt: skip
        done(_soft("steam", lambda: enrich_steam(
            con, steam_client, threshold=match_threshold,
            progress=(lambda d, t: progress("steam", d, t)) if progress else None)))  # fmt: skip
    done(_soft("social (description)", lambda: enrich_social_descriptions(con)))
    if social_source == "gql":
        client_id = gql_client_id or (credentials.client_id if credentials else None)
        if not client_id:
            done(SourceReport("social (gql)", error=f"no client id: set {GQL_CLIENT_ID_VAR}"))
        else:
            gql = GqlClient(http=http, gql_url=endpoints.gql_url, client_id=client_id,
                            clock=clock)  # fmt: skip
            done(_soft("social (gql)", lambda: enrich_social_gql(
                con, gql, limit=gql_limit,
                progress=(lambda d, t: progress("gql", d, t)) if progress else None)))  # fmt: skip
    return reports
