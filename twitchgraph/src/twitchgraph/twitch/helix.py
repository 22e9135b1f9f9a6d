"""A paced, retrying client for the Helix endpoints twitchgraph needs.

- `streams()` pages `GET /streams` (`first=100` + `after` cursor). The list is sorted by viewers
  and shifts while we page, so streams repeat (deduped by stream id) and the cursor has been
  seen to loop back to page 1: pagination stops on a cursor seen before, on a page whose top
  viewer count jumps back up well above the previous page's lowest, or on a page that is
  mostly repeats.
- Every reply's `Ratelimit-Limit/Remaining/Reset` headers are read. When the bucket runs low,
  requests are spaced by the time one point takes to refill, so a 429 is rare; a 429 waits
  until `Ratelimit-Reset` and retries the same request. 5xx replies and timeouts are retried
  with bounded exponential backoff. A retry repeats the same page, so none is lost.
- A reply that is not the documented JSON (bad JSON, no `data` list) is logged, counted in
  `stats.malformed` and skipped; an item missing a required field is dropped and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from twitchgraph.clock import Clock, SystemClock
from twitchgraph.store.limits import COUNT_MAX
from twitchgraph.twitch.auth import AppTokenAuth
from twitchgraph.twitch.errors import MalformedResponse
from twitchgraph.twitch.retry import Backoff, ClosingClient, send_with_retries

__all__ = ["HelixClient", "HelixStats", "PAGE_SIZE"]

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # Helix maximum for `first` and for id/login lists
# A page's top may exceed the previous page's bottom by this much (viewers come and go while
# we page); more than that means the list restarted from the top.
_JUMP_FACTOR = 1.5
_JUMP_SLACK = 5


@dataclass
class HelixStats:
    """What a client did, for progress displays, summaries and benchmarks."""

    requests: int = 0
    pages: int = 0
    retries: int = 0
    rate_limited: int = 0  # HTTP 429 replies received
    server_errors: int = 0  # 5xx replies
    timeouts: int = 0  # timeouts and connection errors
    malformed: int = 0  # replies and items skipped as malformed
    duplicates: int = 0  # streams seen again while paging
    paced_s: float = 0.0  # time spent waiting for the rate limit (pacing and 429s)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class HelixClient(ClosingClient):
    """Helix (`/streams`, `/users`, `/games`) over an injected `httpx.Client`.

    Args:
        http: the HTTP client (tests pass one with `httpx.MockTransport`).
        auth: app-token auth added to every request.
        api_url: the Helix base URL (`Endpoints.api_url`).
        clock: tells time and waits; it must run on the same time as the server's
            `Ratelimit-Reset` (real time for Twitch and for the simulator). Default `SystemClock()`.
        max_retries: retries of one request after 5xx/timeouts/malformed replies.
        max_rate_limited: 429 replies tolerated for one request before giving up.
        backoff_s: first backoff delay; doubles per retry up to `max_backoff_s`.
        reserve: points left in the bucket below which requests are paced.
    """

    def __init__(
        self,
        *,
        http: httpx.Client,
        auth: AppTokenAuth,
        api_url: str,
        clock: Clock | None = None,
        max_retries: int = 5,
        max_rate_limited: int = 10,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        reserve: int = 2,
    ) -> None:
        self._http = http
        self._auth = auth
        self._api_url = api_url.rstrip("/")
        self._clock = clock or SystemClock()
        self.max_retries = max_retries
        self.max_rate_limited = max_rate_limited
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.reserve = reserve
        self.stats = HelixStats()
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._skipped: list[str] = []

    def __repr__(self) -> str:
        return f"HelixClient(api_url={self._api_url!r})"

    # -- endpoints -------------------------------------------------------------------------

    def streams(
        self,
        *,
        language: str | None = None,
        game_ids: Sequence[str] = (),
        min_viewers: int = 0,
        limit: int | None = None,
        max_pages: int | None = None,
        on_page: Callable[[int, int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Live streams, most viewed first, deduplicated by stream id.

        Args:
            language: only streams in this language (e.g. "it").
            game_ids: only streams of these game/category ids (at most 100).
            min_viewers: drop streams below this; paging stops once a page ends below it.
            limit: keep only the `limit` most viewed streams (stops paging once reached).
            max_pages: stop after this many pages.
            on_page: called as `on_page(pages_fetched, streams_kept)` after each page.

        Returns:
            Normalised stream dicts (Helix fields; `user_login` lower case, `tags` a list).
        """
        if len(game_ids) > PAGE_SIZE:
            raise ValueError(f"at most {PAGE_SIZE} game_ids per request, got {len(game_ids)}")
        kept: list[dict[str, Any]] = []
        seen_ids: set[str] = set()
        seen_cursors: set[str] = set()
        cursor: str | None = None
        prev_bottom: int | None = None
        page = 0
        while True:
            try:
                body = self._get_json("/streams", _stream_params(language, game_ids, cursor))
                items = self._data_list(body, "/streams")
            except MalformedResponse as exc:
                log.warning("skipping the rest of the stream list after page %d: %s", page, exc)
                break
            page += 1
            self.stats.pages += 1
            valid = [s for s in map(self._stream, items) if s is not None]
            self._report_skipped(f"streams page {page}")
            fresh = [s for s in valid if s["id"] not in seen_ids]
            repeats = len(valid) - len(fresh)
            if page > 1 and valid and self._looped(page, valid, repeats, prev_bottom):
                break
            self.stats.duplicates += repeats
            for s in fresh:
                seen_ids.add(s["id"])
                if s["viewer_count"] >= min_viewers:
                    kept.append(s)
            if on_page is not None:
                on_page(page, len(kept))
            if _enough(valid, kept, page, min_viewers=min_viewers, limit=limit,
                       max_pages=max_pages):  # fmt: skip
                break
            cursor = _cursor(body)
            if not items or not cursor:
                break
            if cursor in seen_cursors:
                log.info("cursor repeated after page %d; stopping", page)
                break
            seen_cursors.add(cursor)
            if valid:
                prev_bottom = min(s["viewer_count"] for s in valid)
        kept.sort(key=lambda s: s["viewer_count"], reverse=True)
        return kept if limit is None else kept[:limit]

    def _looped(
        self, page: int, valid: list[dict[str, Any]], repeats: int, prev_bottom: int | None
    ) -> bool:
        """Whether `page` shows the cursor looping back to the top of the list: it is mostly
        repeats, or its top viewer count jumps well above the previous page's lowest."""
        if 2 * repeats > len(valid):
            log.info("page %d is mostly repeats: the cursor looped; stopping", page)
            self.stats.duplicates += repeats
            return True
        top = max(s["viewer_count"] for s in valid)
        if prev_bottom is not None and top > prev_bottom * _JUMP_FACTOR + _JUMP_SLACK:
            log.info("viewer counts jumped back up on page %d (%d after %d): the "
                     "cursor looped; stopping", page, top, prev_bottom)  # fmt: skip
            return True
        return False

    def users(
        self, *, ids: Iterable[str] = (), logins: Iterable[str] = ()
    ) -> list[dict[str, Any]]:
        """User profiles by id and/or login, in batches of 100; unknown users are absent."""
        return self._lookup("/users", self._user,
                            {"id": ids, "login": (x.lower() for x in logins)})

    def games(
        self, *, ids: Iterable[str] = (), names: Iterable[str] = ()
    ) -> list[dict[str, Any]]:
        """Games (categories) by id and/or exact name, in batches of 100."""
        return self._lookup("/games", self._game, {"id": ids, "name": names})

    # -- one request, paced and retried ----------------------------------------------------

    def _get_json(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        url = self._api_url + path
        for _ in range(2):  # once may be a truncated transfer; twice is the server
            response = send_with_retries(
                lambda: self._http.get(url, params=params, auth=self._auth),
                service="Helix", url=url, clock=self._clock,
                backoff=Backoff(self.backoff_s, self.max_backoff_s),
                max_retries=self.max_retries, max_rate_limited=self.max_rate_limited,
                before=self._pace, on_reply=self._count_reply, on_wait=self._count_wait,
            )  # fmt: skip
            try:
                body = response.json()
                if isinstance(body, dict):
                    return body
            except ValueError:
                pass
            self.stats.malformed += 1
            log.warning("malformed reply (not a JSON object) from %s", response.url)
        raise MalformedResponse("reply is not a JSON object", status=response.status_code,
                                url=response.url)

    def _lookup(
        self,
        path: str,
        normalise: Callable[[Any], dict[str, Any] | None],
        queries: dict[str, Iterable[str]],
    ) -> list[dict[str, Any]]:
        """Items of `path` looked up by each query key in batches of 100, once per item id."""
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for key, values in queries.items():
            for batch in _chunks(_unique(values), PAGE_SIZE):
                for raw in self._batch(path, key, batch):
                    item = normalise(raw)
                    if item is not None and item["id"] not in seen:
                        seen.add(item["id"])
                        out.append(item)
                self._report_skipped(f"a {path.strip('/')} batch")
        return out

    def _batch(self, path: str, key: str, values: list[str]) -> list[Any]:
        try:
            body = self._get_json(path, [(key, v) for v in values])
            return self._data_list(body, path)
        except MalformedResponse as exc:
            log.warning("skipping a batch of %d %s: %s", len(values), path.strip("/"), exc)
            return []

    def _data_list(self, body: dict[str, Any], path: str) -> list[Any]:
        data = body.get("data")
        if not isinstance(data, list):
            self.stats.malformed += 1
            raise MalformedResponse("reply has no 'data' list", status=200,
                                    url=self._api_url + path)
        return data

    def _note_limits(self, response: httpx.Response) -> None:
        headers = response.headers
        try:
            if "ratelimit-limit" in headers:
                self._limit = int(headers["ratelimit-limit"])
            if "ratelimit-remaining" in headers:
                self._remaining = int(headers["ratelimit-remaining"])
            if "ratelimit-reset" in headers:
                self._reset_at = float(headers["ratelimit-reset"])
        except ValueError:
            log.debug("unparsable Ratelimit headers from %s", response.url)

    def _pace(self) -> None:
        """Wait when the bucket is nearly empty: by one point's refill time per missing point.

        Twitch's bucket refills continuously and `Ratelimit-Reset` is when it is full again,
        so (reset - now) / (limit - remaining) is the refill time of one point. An empty
        bucket waits for the reset itself (also right for a fixed-window limiter).
        """
        if self._remaining is None or self._reset_at is None or self._remaining > self.reserve:
            return
        until_reset = self._reset_at - self._clock.now().timestamp()
        if until_reset <= 0:
            return
        if self._remaining <= 0:
            wait = until_reset
        else:
            missing = max(1, (self._limit or self._remaining + 1) - self._remaining)
            wait = min(until_reset, until_reset / missing * (self.reserve - self._remaining + 1))
        self.stats.paced_s += wait
        self._clock.sleep(wait)
        self._remaining = None  # unknown until the next reply

    def _count_reply(self, response: httpx.Response | None) -> None:
        self.stats.requests += 1
        if response is None:
            self.stats.timeouts += 1
            return
        self._note_limits(response)
        if response.status_code == 429:
            self.stats.rate_limited += 1
        elif response.status_code >= 500:
            self.stats.server_errors += 1

    def _count_wait(self, rate_limited: bool, seconds: float) -> None:
        self.stats.retries += 1
        if rate_limited:
            self.stats.paced_s += seconds
            self._remaining = None  # unknown until the next reply

    # -- normalising items -----------------------------------------------------------------

    def _stream(self, raw: Any) -> dict[str, Any] | None:
        try:
            viewers = raw["viewer_count"]
            if isinstance(viewers, bool) or not isinstance(viewers, int | float):
                raise TypeError("viewer_count is not a number")
            if not (0 <= viewers <= COUNT_MAX):  # also NaN: the store's column is INTEGER
                raise ValueError(f"viewer_count {viewers!r} out of range")
            stream = {
                "id": _text(raw["id"]),
                "user_id": _text(raw["user_id"]),
                "user_login": _text(raw["user_login"]).lower(),
                "user_name": str(raw.get("user_name") or raw["user_login"]),
                "game_id": str(raw.get("game_id") or ""),
                "game_name": str(raw.get("game_name") or ""),
                "type": str(raw.get("type") or "live"),
                "title": str(raw.get("title") or ""),
                "viewer_count": int(viewers),
                "started_at": raw.get("started_at") or None,
                "language": str(raw.get("language") or ""),
                "tags": [str(t) for t in (raw.get("tags") or []) if t is not None],
                "is_mature": bool(raw["is_mature"]) if raw.get("is_mature") is not None
                else None,
            }
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            self._skip_item("stream", raw, exc)
            return None
        return stream

    def _user(self, raw: Any) -> dict[str, Any] | None:
        try:
            return {
                "id": _text(raw["id"]),
                "login": _text(raw["login"]).lower(),
                "display_name": str(raw.get("display_name") or raw["login"]),
                "broadcaster_type": str(raw.get("broadcaster_type") or ""),
                "description": str(raw.get("description") or ""),
                "created_at": raw.get("created_at") or None,
                "profile_image_url": str(raw.get("profile_image_url") or ""),
                "type": str(raw.get("type") or ""),
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self._skip_item("user", raw, exc)
            return None

    def _game(self, raw: Any) -> dict[str, Any] | None:
        try:
            return {
                "id": _text(raw["id"]),
                "name": _text(raw["name"]),
                "box_art_url": str(raw.get("box_art_url") or ""),
                "igdb_id": str(raw.get("igdb_id") or ""),
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self._skip_item("game", raw, exc)
            return None

    def _skip_item(self, kind: str, raw: Any, exc: Exception) -> None:
        self.stats.malformed += 1
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        self._skipped.append(f"{kind} ({what})")
        log.debug("skipping a malformed %s (%s): %.200r", kind, what, raw)

    def _report_skipped(self, where: str) -> None:
        # One warning per page or batch, however many of its items were bad.
        if self._skipped:
            log.warning("skipped %d malformed item(s) in %s, e.g. a %s", len(self._skipped),
                        where, self._skipped[0])
            self._skipped = []


def _text(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        raise ValueError(f"expected text, got {value!r}")
    text = str(value)
    if not text:
        raise ValueError("empty value")
    return text


def _stream_params(
    language: str | None, game_ids: Sequence[str], cursor: str | None
) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = [("first", str(PAGE_SIZE))]
    if language:
        params.append(("language", language))
    params += [("game_id", g) for g in game_ids]
    if cursor:
        params.append(("after", cursor))
    return params


def _enough(
    valid: list[dict[str, Any]],
    kept: list[dict[str, Any]],
    page: int,
    *,
    min_viewers: int,
    limit: int | None,
    max_pages: int | None,
) -> bool:
    """Whether paging can stop: the page ended below `min_viewers` (the list is sorted by
    viewers), `limit` streams are kept, or `max_pages` are read."""
    return (
        (bool(valid) and min(s["viewer_count"] for s in valid) < min_viewers)
        or (limit is not None and len(kept) >= limit)
        or (max_pages is not None and page >= max_pages)
    )


def _cursor(body: dict[str, Any]) -> str | None:
    pagination = body.get("pagination")
    if isinstance(pagination, dict) and isinstance(pagination.get("cursor"), str):
        return pagination["cursor"] or None
    return None


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _chunks(values: list[str], size: int) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]
