"""Streamers' social links: from profile descriptions (always) and the About panel (opt-in).

- ``description``: links to known platforms found in ``users.description`` by regular
  expressions, with or without a scheme (``instagram.com/x``, ``https://youtu.be/...``,
  ``discord.gg/abc``). Recomputed from the stored profiles on every run: no network.
- ``gql``: the channel's About panel (``socialMedias[].url``) through Twitch's web GraphQL
  endpoint, as the original study read it. The endpoint is undocumented and may change:
  429s, 5xx replies and timeouts are retried, any other failure is reported and the run goes
  on; after ``max_failures`` failed requests in a row the source gives up. Logins asked
  once (answered or unknown) are not asked again.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import httpx
import pandas as pd

from twitchgraph.clock import Clock, SystemClock
from twitchgraph.enrich.schema import ensure_enrich_tables
from twitchgraph.enrich.sources import Pacer, SourceReport, decode_json
from twitchgraph.store.db import registered
from twitchgraph.twitch.errors import MalformedResponse, TwitchAPIError
from twitchgraph.twitch.retry import Backoff, ClosingClient, send_with_retries

__all__ = [
    "PLATFORMS",
    "GqlClient",
    "enrich_social_descriptions",
    "enrich_social_gql",
    "extract_links",
    "platform_of",
]

logger = logging.getLogger(__name__)

_PATH = r"[A-Za-z0-9_.\-/@%?=&#~+]*[A-Za-z0-9_/=\-]"
# platform -> host pattern (the part before the path); order matters for the first match.
PLATFORMS: dict[str, str] = {
    "youtube": r"(?:www\.|m\.)?(?:youtube\.com|youtu\.be)",
    "twitter": r"(?:www\.|mobile\.)?(?:twitter\.com|x\.com)",
    "instagram": r"(?:www\.)?(?:instagram\.com|instagr\.am)",
    "tiktok": r"(?:www\.|vm\.)?tiktok\.com",
    "discord": r"(?:www\.)?(?:discord\.gg|discord\.com/invite|discordapp\.com/invite)",
    "facebook": r"(?:www\.|m\.)?(?:facebook\.com|fb\.com|fb\.me)",
    "kick": r"(?:www\.)?kick\.com",
    "reddit": r"(?:www\.|old\.)?reddit\.com",
    "threads": r"(?:www\.)?threads\.net",
    "linkedin": r"(?:www\.)?linkedin\.com",
    "github": r"(?:www\.)?github\.com",
    "spotify": r"open\.spotify\.com",
    "patreon": r"(?:www\.)?patreon\.com",
    "linktree": r"(?:www\.)?linktr\.ee",
}
_LINK = re.compile(
    r"(?<![\w.@/])(?:https?://)?(?P<host>"
    + "|".join(f"(?P<{name}>{host})" for name, host in PLATFORMS.items())
    + rf")(?P<path>/{_PATH})",
    re.IGNORECASE,
)


def extract_links(text: str | None) -> list[tuple[str, str]]:
    """(platform, https URL) of every link to a known platform in ``text``, in order, once.

    A bare domain without a path (``youtube.com``) names no account and is skipped.

    >>> extract_links("clips on youtube.com/@Mario and IG: instagram.com/mario_ita!")
    [('youtube', 'https://youtube.com/@Mario'), ('instagram', 'https://instagram.com/mario_ita')]
    """
    if not text:
        return []
    out: list[tuple[str, str]] = []
    for m in _LINK.finditer(text):
        platform = next(name for name in PLATFORMS if m.group(name))
        path = m.group("path").rstrip(".")
        if len(path.strip("/")) == 0:
            continue
        url = f"https://{m.group('host').lower()}{path}"
        if (platform, url) not in out:
            out.append((platform, url))
    return out


def platform_of(url: str) -> str:
    """The known platform a URL points to, or ``other``."""
    found = extract_links(url if "://" in url else f"https://{url}")
    return found[0][0] if found else "other"


def _replace_links(
    con: duckdb.DuckDBPyConnection, source: str, logins: Sequence[str], rows: list[tuple]
) -> None:
    """Replace the ``source`` links of ``logins`` by ``rows`` (login, platform, url)."""
    if not logins:
        return  # an empty frame has no column types DuckDB could compare with
    with registered(con, "_tg_logins", pd.DataFrame({"login": list(logins)})):
        con.execute(
            "DELETE FROM social_links WHERE source = ? "
            "AND login IN (SELECT login FROM _tg_logins)",
            [source],
        )
    if not rows:
        return
    with registered(con, "_tg_links", pd.DataFrame(rows, columns=["login", "platform", "url"])):
        con.execute(
            "INSERT OR IGNORE INTO social_links SELECT DISTINCT login, platform, url, ? "
            "FROM _tg_links",
            [source],
        )


def enrich_social_descriptions(con: duckdb.DuckDBPyConnection) -> SourceReport:
    """Extract links from every stored profile description into ``social_links``."""
    ensure_enrich_tables(con)
    profiles = con.execute(
        """SELECT lower(login), arg_max(description, fetched_at) FROM users
           GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    rows = [(login, p, url) for login, text in profiles for p, url in extract_links(text)]
    _replace_links(con, "description", [login for login, _ in profiles], rows)
    report = SourceReport("social (description)", asked=len(profiles))
    report.found = len({r[0] for r in rows})
    report.matched = len(rows)
    return report


_GQL_QUERY = (
    "query ChannelSocialMedias($login: String!) { user(login: $login) { login "
    "channel { socialMedias { name title url } } } }"
)


class GqlClient(ClosingClient):
    """Twitch's web GraphQL endpoint, for the About panel's social links only.

    Args:
        http: the HTTP client (tests pass one with ``httpx.MockTransport``).
        gql_url: ``Endpoints.gql_url``.
        client_id: the ``Client-Id`` header the endpoint requires (the web client's id for
            the real service; configure it, it is not a secret of this project).
        clock: waits between calls; default ``SystemClock()``.
        min_interval_s: seconds between requests.
        batch: operations per request (the endpoint accepts a list).
        max_retries: retries of one request after 429/5xx/timeouts.
    """

    def __init__(
        self,
        *,
        http: httpx.Client,
        gql_url: str,
        client_id: str,
        clock: Clock | None = None,
        min_interval_s: float = 0.2,
        batch: int = 20,
        max_retries: int = 2,
    ) -> None:
        self._http = http
        self._url = gql_url
        self._client_id = client_id
        self._pacer = Pacer(clock or SystemClock(), min_interval_s)
        self.batch = batch
        self.max_retries = max_retries
        self.requests = 0

    def _post(self, ops: list[dict[str, Any]]) -> httpx.Response:
        self.requests += 1
        return self._http.post(self._url, json=ops, headers={"Client-Id": self._client_id})

    def social_medias(self, logins: Sequence[str]) -> dict[str, list[dict[str, Any]] | None]:
        """login -> its About-panel links (``[{name, title, url}]``), None for unknown logins.

        Raises MalformedResponse when the reply is not the expected shape (the schema
        changed), and TwitchAPIError when the endpoint refuses or keeps failing.
        """
        ops = [{"operationName": "ChannelSocialMedias", "query": _GQL_QUERY,
                "variables": {"login": login}} for login in logins]  # fmt: skip
        try:
            response = send_with_retries(
                lambda: self._post(ops), service="GQL", url=self._url, clock=self._pacer.clock,
                backoff=Backoff(1.0, 30.0), max_retries=self.max_retries, before=self._pacer.wait)
        except TwitchAPIError as exc:
            if exc.status not in (400, 401, 403):
                raise
            raise TwitchAPIError("GQL refused the query", status=exc.status, url=self._url,
                                 detail="the endpoint wants the web client's id: set "
                                        "TWITCH_GQL_CLIENT_ID") from None  # fmt: skip
        body = decode_json(response, source="GQL")
        answers = body if isinstance(body, list) else [body]
        if len(answers) != len(logins):
            raise MalformedResponse(f"GQL answered {len(answers)} of {len(logins)} operations",
                                    status=response.status_code, url=self._url)
        out: dict[str, list[dict[str, Any]] | None] = {}
        for login, answer in zip(logins, answers, strict=True):
            try:
                user = answer["data"]["user"]
                if user is None:
                    out[login] = None
                    continue
                medias = user["channel"]["socialMedias"] or []
                out[login] = [m for m in medias if isinstance(m, dict) and m.get("url")]
            except (KeyError, TypeError) as exc:
                errors = answer.get("errors") if isinstance(answer, dict) else None
                raise MalformedResponse(
                    f"GQL reply without data.user.channel.socialMedias ({exc})",
                    status=response.status_code, url=self._url,
                    detail=f"the undocumented schema may have changed: "
                           f"{json.dumps(errors)[:200]}",
                ) from None
        return out


def enrich_social_gql(
    con: duckdb.DuckDBPyConnection,
    client: GqlClient,
    *,
    max_failures: int = 3,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SourceReport:
    """Ask the About panel of each streamer in ``streams`` not asked before.

    Streamers are asked in order of their peak viewers, so a ``limit`` keeps the largest.
    """
    ensure_enrich_tables(con)
    report = SourceReport("social (gql)")
    sql = """
        SELECT login FROM (
            SELECT lower(user_login) AS login, max(viewer_count) AS peak FROM streams GROUP BY 1
        ) s
        WHERE login NOT IN (SELECT login FROM social_fetches WHERE source = 'gql' AND ok)
        ORDER BY peak DESC, login
    """
    logins = [r[0] for r in con.execute(sql).fetchall()]
    if limit is not None:
        logins = logins[:limit]
    failures = 0
    done = 0
    for start in range(0, len(logins), client.batch):
        batch = logins[start : start + client.batch]
        report.asked += len(batch)
        try:
            answers = client.social_medias(batch)
        except TwitchAPIError as exc:
            failures += 1
            report.error = str(exc)
            _record_fetches(con, batch, ok=False, error=str(exc))
            logger.warning("social links by GQL failed for %d logins: %s", len(batch), exc)
            if failures >= max_failures:
                report.error = f"gave up after {failures} failed requests in a row: {exc}"
                break
            continue
        failures = 0
        rows = [
            (login, platform_of(m["url"]), str(m["url"]))
            for login, medias in answers.items()
            for m in medias or []
        ]
        _replace_links(con, "gql", batch, rows)
        _record_fetches(con, batch, ok=True, error=None)
        report.found += sum(v is not None for v in answers.values())
        report.matched += len(rows)
        done += len(batch)
        if progress is not None:
            progress(done, len(logins))
    if report.error and failures < max_failures and done:
        report.error = f"some requests failed (last: {report.error})"
    return report


def _record_fetches(
    con: duckdb.DuckDBPyConnection, logins: Sequence[str], *, ok: bool, error: str | None
) -> None:
    frame = pd.DataFrame({"login": list(logins)})
    with registered(con, "_tg_fetched", frame):
        con.execute(
            "INSERT OR REPLACE INTO social_fetches (login, source, ok, error, fetched_at) "
            "SELECT login, 'gql', ?, ?, now() FROM _tg_fetched",
            [ok, error],
        )
