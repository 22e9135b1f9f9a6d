"""The simulator's HTTP side: id service, Helix, IGDB, Steam and the web GQL endpoint.

One `ThreadingHTTPServer` on loopback serves every path (see `SimHTTP`). It follows the real
services' documented behaviour:

- ``POST /oauth2/token`` (client-credentials grant; params in the query or a form body) answers
  ``{access_token, expires_in, token_type: "bearer"}``; an unknown client id gets 400
  ``invalid client``, a wrong secret 403 ``invalid client secret``. ``GET /oauth2/validate``
  answers for ``Authorization: OAuth <token>``.
- Helix (``/helix/streams``, ``/helix/users``, ``/helix/games``) needs ``Client-Id`` and
  ``Authorization: Bearer`` (401 otherwise, also for expired tokens or a client id that does not
  own the token), costs one point per request from a bucket of ``helix_points_per_minute`` per
  client id refilled continuously in real time, and reports ``Ratelimit-Limit``,
  ``Ratelimit-Remaining`` and ``Ratelimit-Reset`` (epoch seconds when the bucket is full again)
  on every authenticated reply; an empty bucket gives 429.
- ``/helix/streams`` is sorted by viewers (desc), ``first`` <= 100 (default 20), opaque ``after``
  cursors (base64 JSON holding an offset into the list as it is at each request, so streams
  whose counts changed in between repeat or are skipped), ``pagination: {}`` on the last page.
- IGDB ``POST /v4/games`` takes an Apicalypse body: ``fields`` (dotted paths expand references,
  ``*`` for all), ``exclude``, ``where`` (``=``, ``!=``, ``~`` with ``*`` wildcards, ``>``/``<``,
  ``(a,b)`` lists, ``&``/``|``), ``search``, ``sort``, ``limit`` (default 10, max 500),
  ``offset``. Same app token; more than ``igdb_requests_per_s`` per second gives 429. Records
  hold ``name``, ``slug``, ``genres``, ``themes``, ``first_release_date``,
  ``involved_companies`` (``company``, ``developer``, ``publisher``) and, for games on Steam,
  ``external_games`` (``category`` 1 = Steam, ``uid`` = app id).
- Steam ``GET /ISteamApps/GetAppList/v2/`` (``{"applist": {"apps": [{appid, name}]}}``) and
  ``GET /api/appdetails?appids=N`` (``{"N": {"success": true, "data": {...}}}``; one app id per
  call, several give 400 ``null`` as the store does without ``filters``); no auth.
- ``POST /gql`` (Twitch's undocumented web GQL; a ``Client-Id`` header is required). Accepts one
  operation object or a list of them. The channel is taken from ``variables.login`` or
  ``variables.channelLogin`` or from ``user(login: "name")`` in the query text, so both a raw
  query ``query { user(login: "x") { channel { socialMedias { name title url } } } }`` and the
  web client's ``ChannelRoot_AboutPanel`` operation work. Each answer is
  ``{"data": {"user": {id, login, displayName, description, channel: {id, socialMedias:
  [{id, name, title, url}]}}}}`` (``user: null`` for an unknown login).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from twitchgraph.sim.catalog import GAMES, STEAM_CATEGORIES, STEAM_GENRES
from twitchgraph.sim.clock import AcceleratedClock
from twitchgraph.sim.config import SimConfig
from twitchgraph.sim.population import Population, igdb_record, uniform

__all__ = ["SimHTTP", "parse_apicalypse", "project_fields", "steam_catalogue"]

logger = logging.getLogger(__name__)

_JSON = "application/json; charset=utf-8"


class ApiError(Exception):
    """A reply other than 200 (status, JSON body, extra headers)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _helix_error(status: int, message: str) -> ApiError:
    names = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
             429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'OAuth realm="TwitchTV", error="invalid_token"'
    return ApiError(status, {"error": names.get(status, "Error"), "status": status,
                             "message": message}, headers)


class _Bucket:
    """Token bucket refilled continuously (real time)."""

    def __init__(self, capacity: float, per_s: float) -> None:
        self.capacity = capacity
        self.per_s = per_s
        self.tokens = capacity
        self.last = time.time()

    def take(self) -> tuple[bool, int, int]:
        now = time.time()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.per_s)
        self.last = now
        ok = self.tokens >= 1.0
        if ok:
            self.tokens -= 1.0
        reset = int(np.ceil(now + (self.capacity - self.tokens) / self.per_s))
        return ok, int(self.tokens), reset


class _Window:
    """At most ``limit`` events per ``seconds`` (sliding window, real time)."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.events: deque[float] = deque()

    def allow(self) -> bool:
        now = time.monotonic()
        while self.events and now - self.events[0] >= self.seconds:
            self.events.popleft()
        if len(self.events) >= self.limit:
            return False
        self.events.append(now)
        return True


# ----- Apicalypse ----------------------------------------------------------------------------

_STATEMENT = re.compile(r'((?:[^;"]|"[^"]*")*);')
_COND = re.compile(r'^\s*([\w.]+)\s*(!=|>=|<=|=|~|>|<)\s*(.+?)\s*$', re.S)


def _split_outside(text: str, seps: str) -> list[tuple[str, str]]:
    """Split on single characters in ``seps`` outside quotes and brackets; (sep, part) pairs."""
    parts, buf, depth, quote, sep = [], [], 0, False, ""
    for ch in text:
        if ch == '"':
            quote = not quote
        elif not quote and ch in "([{":
            depth += 1
        elif not quote and ch in ")]}":
            depth -= 1
        if not quote and depth == 0 and ch in seps:
            parts.append((sep, "".join(buf)))
            buf, sep = [], ch
            continue
        buf.append(ch)
    parts.append((sep, "".join(buf)))
    return parts


def _literal(text: str) -> Any:
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        return tuple(_literal(p) for _, p in _split_outside(text[1:-1], ",") if p.strip())
    if text.startswith('"') or text.startswith('*"'):
        return text  # kept raw: wildcards are read by the matcher
    if text in ("null", "true", "false"):
        return {"null": None, "true": True, "false": False}[text]
    try:
        return float(text) if "." in text else int(text)
    except ValueError as exc:
        raise ValueError(f"cannot read value {text!r}") from exc


def parse_apicalypse(body: str) -> dict[str, Any]:
    """Parse an Apicalypse query body into ``{fields, exclude, where, search, sort, limit,
    offset}``; ``where`` is a list of ``(joiner, field, op, value)``. Raises ValueError."""
    query: dict[str, Any] = {"fields": [], "exclude": [], "where": [], "search": None,
                             "sort": None, "limit": 10, "offset": 0}
    text = body.strip()
    if text and not text.endswith(";"):
        text += ";"
    consumed = 0
    for m in _STATEMENT.finditer(text):
        consumed = m.end()
        stmt = m.group(1).strip()
        if not stmt:
            continue
        word, _, rest = stmt.partition(" ")
        word, rest = word.lower(), rest.strip()
        if word in ("fields", "f", "exclude", "x"):
            key = "fields" if word in ("fields", "f") else "exclude"
            query[key] += [p.strip() for p in rest.split(",") if p.strip()]
        elif word in ("where", "w"):
            for joiner, cond in _split_outside(rest, "&|"):
                m2 = _COND.match(cond)
                if not m2:
                    raise ValueError(f"cannot read condition {cond.strip()!r}")
                query["where"].append((joiner, m2.group(1), m2.group(2), _literal(m2.group(3))))
        elif word in ("limit", "l", "offset", "o"):
            key = "limit" if word in ("limit", "l") else "offset"
            try:
                query[key] = int(rest)
            except ValueError as exc:
                raise ValueError(f"{key} needs a number, got {rest!r}") from exc
        elif word in ("sort", "s"):
            field, _, direction = rest.partition(" ")
            query["sort"] = (field, direction.strip().lower() or "asc")
        elif word == "search":
            query["search"] = rest.strip().strip('"')
        else:
            raise ValueError(f"unknown statement {word!r}")
    if text[consumed:].strip():
        raise ValueError(f"cannot read {text[consumed:].strip()!r}")
    if not 1 <= query["limit"] <= 500:
        raise ValueError("limit must be between 1 and 500")
    return query


def _values(record: Any, path: list[str]) -> list[Any]:
    """All values at a dotted path (lists are flattened; references compare by id)."""
    if not path:
        if isinstance(record, list):
            return [v for r in record for v in _values(r, [])]
        if isinstance(record, dict):
            return [record.get("id")]
        return [record]
    if isinstance(record, list):
        return [v for r in record for v in _values(r, path)]
    if isinstance(record, dict) and path[0] in record:
        return _values(record[path[0]], path[1:])
    return []


def _match(values: list[Any], op: str, want: Any) -> bool:
    if isinstance(want, tuple):
        hits = [_match(values, "=", w) for w in want]
        return any(hits) if op == "=" else not any(hits)
    if isinstance(want, str):
        raw = want
        starts, ends = raw.startswith("*"), raw.endswith("*")
        s = raw.strip("*").strip('"')
        texts = [str(v) for v in values if v is not None]
        if op == "~":
            low = [t.lower() for t in texts]
            s = s.lower()
            if starts and ends:
                return any(s in t for t in low)
            if starts:
                return any(t.endswith(s) for t in low)
            if ends:
                return any(t.startswith(s) for t in low)
            return any(t == s for t in low)
        if op == "=":
            return s in texts
        if op == "!=":
            return s not in texts
        return False
    if op == "=":
        return want in values
    if op == "!=":
        return want not in values
    nums = [v for v in values if isinstance(v, int | float)]
    return {">": any(v > want for v in nums), "<": any(v < want for v in nums),
            ">=": any(v >= want for v in nums), "<=": any(v <= want for v in nums)}.get(op, False)


def _tree(paths: list[str]) -> dict:
    tree: dict = {}
    for path in paths:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return tree


def _project(value: Any, tree: dict) -> Any:
    if isinstance(value, list):
        return [_project(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    if not tree:
        return value.get("id")  # an unexpanded reference is its id
    out: dict = {"id": value.get("id")} if "id" in value else {}
    if "*" in tree:
        for k, v in value.items():
            out[k] = _project(v, {}) if isinstance(v, dict | list) and k not in tree else v
    for k, sub in tree.items():
        if k != "*" and k in value:
            out[k] = _project(value[k], sub)
    return out


def project_fields(record: dict, fields: list[str], exclude: list[str] = ()) -> dict:
    """Keep the requested (dotted) fields of an expanded IGDB record, as IGDB returns them."""
    out = _project(record, _tree(fields)) if fields else {"id": record["id"]}
    for path in exclude:
        out.pop(path, None)
    return out


# ----- Steam ---------------------------------------------------------------------------------

def steam_catalogue(pop: Population) -> tuple[list[dict], dict[int, dict]]:
    """The simulated Steam store: the app list and the appdetails ``data`` per app id.

    Matching games have their Steam title; many also have a soundtrack, a demo or DLC, and
    unrelated filler apps fill the list, so name matching has something to get wrong.
    """
    rng = np.random.default_rng(pop.seed + 7)
    apps: list[dict] = []
    details: dict[int, dict] = {}
    for g, game in enumerate(GAMES):
        appid = pop.steam_appids[g]
        if appid is None:
            continue
        release = game.release or "2020-01-01"
        y, m, d = (int(x) for x in release.split("-"))
        month = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                 "Dec")[m - 1]
        details[appid] = {
            "type": "game",
            "name": game.steam_name,
            "steam_appid": appid,
            "required_age": 0,
            "is_free": "Free to Play" in game.steam_genres,
            "short_description": f"{game.steam_name}: {', '.join(game.themes).lower()}.",
            "developers": list(game.developers),
            "publishers": list(game.publishers),
            "categories": [{"id": STEAM_CATEGORIES[c], "description": c}
                           for c in game.steam_categories],
            "genres": [{"id": STEAM_GENRES[x], "description": x} for x in game.steam_genres],
            "release_date": {"coming_soon": False, "date": f"{d} {month}, {y}"},
        }
        apps.append({"appid": appid, "name": game.steam_name})
        for j, (suffix, kind) in enumerate((("Soundtrack", "music"), ("Demo", "demo"),
                                            ("- Season Pass", "dlc"))):
            if rng.random() < 0.5:
                extra = appid + 1 + j
                name = f"{game.steam_name} {suffix}"
                apps.append({"appid": extra, "name": name})
                details[extra] = {"type": kind, "name": name, "steam_appid": extra,
                                  "fullgame": {"appid": str(appid), "name": game.steam_name},
                                  "developers": list(game.developers),
                                  "publishers": list(game.publishers)}
    words = ("Legend", "Tales", "Kingdom", "Battle", "Space", "Farm", "Racer", "Quest", "Shadow",
             "Island", "Dungeon", "Empire", "Crown", "Harbor", "Frontier", "Siege", "Circuit")
    for i in range(240):
        a, b = rng.choice(words, size=2, replace=False)
        appid = 900_000 + i * 10
        name = f"{a} of the {b}" if i % 3 == 0 else f"{a} {b} {int(rng.integers(2, 5))}"
        apps.append({"appid": appid, "name": name})
        details[appid] = {"type": "game", "name": name, "steam_appid": appid,
                          "developers": ["Indie Dev"], "publishers": ["Indie Dev"],
                          "release_date": {"coming_soon": False, "date": "1 Jan, 2015"}}
    order = rng.permutation(len(apps))
    return [apps[i] for i in order], details


# ----- server --------------------------------------------------------------------------------

class SimHTTP:
    """The HTTP server and its state. ``start()`` serves in a daemon thread; ``stop()`` ends it."""

    def __init__(self, pop: Population, clock: AcceleratedClock, config: SimConfig, *,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.pop = pop
        self.clock = clock
        self.config = config
        self.lock = threading.Lock()
        self.tokens: dict[str, dict] = {}
        self.buckets: dict[str, _Bucket] = {}
        self.igdb_windows: dict[str, _Window] = {}
        self.steam_window = _Window(config.steam_requests_per_5min, 300.0)
        self.counts: dict[str, int] = {"requests": 0, "api": 0, "helix": 0, "429": 0, "401": 0}
        self.armed: dict[str, list[tuple[str, int]]] = {}
        self.igdb_games = {pop.igdb_ids[g]: igdb_record(pop, g)
                           for g in range(len(GAMES)) if pop.igdb_ids[g] is not None}
        self.steam_apps, self.steam_details = steam_catalogue(pop)
        handler = type("Handler", (_Handler,), {"sim": self})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self.thread = threading.Thread(target=self.server.serve_forever, name="twitchsim-http",
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)

    # ----- faults and tokens -------------------------------------------------------------
    def arm(self, fault: str, *, times: int = 1, path_prefix: str = "/") -> None:
        """Make the next ``times`` replies under ``path_prefix`` suffer ``fault``
        (``malformed_json``, ``server_error``, ``rate_limit`` or ``unauthorized``)."""
        with self.lock:
            self.armed.setdefault(fault, []).append((path_prefix, times))

    def _take_armed(self, fault: str, path: str) -> bool:
        with self.lock:
            slots = self.armed.get(fault, [])
            for i, (prefix, left) in enumerate(slots):
                if path.startswith(prefix) and left > 0:
                    slots[i] = (prefix, left - 1)
                    return True
        return False

    def revoke_tokens(self) -> None:
        """Invalidate every issued token (the next API call gets 401)."""
        with self.lock:
            self.tokens.clear()

    def issue_token(self, client_id: str) -> dict:
        token = secrets.token_hex(15)
        with self.lock:
            self.tokens[token] = {"client_id": client_id, "uses": 0,
                                  "expires": time.time() + self.config.token_ttl_s}
        return {"access_token": token, "expires_in": self.config.token_ttl_s,
                "token_type": "bearer"}

    def check_token(self, headers: Any, *, helix: bool = True) -> str:
        """Client id of a valid request, or an ApiError (401)."""
        def fail(message: str) -> ApiError:
            with self.lock:
                self.counts["401"] += 1
            if helix:
                return _helix_error(401, message)
            return ApiError(401, {"message": "Authorization Failure. Have you tried:",
                                  "Tip 1": "Ensure you are sending Authorization and Client-ID "
                                  "as headers.", "Tip 2": "Ensure Authorization value starts "
                                  "with 'Bearer ', including the space"})

        client_id = headers.get("Client-Id") or headers.get("Client-ID")
        auth = headers.get("Authorization") or ""
        if not auth:
            raise fail("OAuth token is missing")
        if not client_id:
            raise fail("Client ID is missing")
        if not auth.startswith("Bearer "):
            raise fail("Invalid OAuth token")
        token = auth[len("Bearer "):].strip()
        with self.lock:
            info = self.tokens.get(token)
            if info is not None:
                info["uses"] += 1
                dead = time.time() >= info["expires"] or (
                    self.config.has("expire_tokens")
                    and info["uses"] > self.config.expire_tokens_after)
                if dead:
                    del self.tokens[token]
                    info = None
        if info is None:
            raise fail("Invalid OAuth token")
        if info["client_id"] != client_id:
            raise fail("Client ID and OAuth token do not match")
        return client_id

    def spend_helix_point(self, client_id: str) -> dict[str, str]:
        with self.lock:
            bucket = self.buckets.get(client_id)
            if bucket is None:
                per_min = self.config.helix_points_per_minute
                bucket = self.buckets[client_id] = _Bucket(per_min, per_min / 60.0)
            ok, remaining, reset = bucket.take()
            if not ok:
                self.counts["429"] += 1
        headers = {"Ratelimit-Limit": str(int(bucket.capacity)),
                   "Ratelimit-Remaining": str(remaining), "Ratelimit-Reset": str(reset)}
        if not ok:
            err = _helix_error(429, "Too Many Requests")
            err.headers.update(headers)
            raise err
        return headers

    def now_s(self) -> float:
        return self.clock.elapsed()


class _Handler(BaseHTTPRequestHandler):
    sim: SimHTTP  # set on the subclass made per server
    protocol_version = "HTTP/1.1"
    server_version = "twitchsim/1.0"
    # Headers and body go out in two writes; with Nagle on, keep-alive clients wait ~40 ms for
    # the delayed ACK on every reply.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        logger.debug("http %s", format % args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._dispatch("POST")

    # ----- plumbing ----------------------------------------------------------------------
    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None, *,
              raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        sim = self.sim
        parts = urlsplit(self.path)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        body = self._body()
        routes: dict[tuple[str, str], Callable[..., tuple[Any, dict[str, str]]]] = {
            ("POST", "/oauth2/token"): self._token,
            ("GET", "/oauth2/validate"): self._validate,
            ("GET", "/helix/streams"): self._streams,
            ("GET", "/helix/users"): self._users,
            ("GET", "/helix/games"): self._games,
            ("POST", "/v4/games"): self._igdb_games,
            ("GET", "/ISteamApps/GetAppList/v2/"): self._steam_applist,
            ("GET", "/ISteamApps/GetAppList/v2"): self._steam_applist,
            ("GET", "/api/appdetails"): self._steam_appdetails,
            ("POST", "/gql"): self._gql,
        }
        with sim.lock:
            sim.counts["requests"] += 1
            n_api = sim.counts["api"] = sim.counts["api"] + (not path.startswith("/oauth2"))
            if path.startswith("/helix/"):
                sim.counts["helix"] += 1
            n_helix = sim.counts["helix"]
        handler = routes.get((method, path))
        try:
            if handler is None:
                raise _helix_error(404, f"no route for {method} {path}")
            api = not path.startswith("/oauth2")
            if sim.config.has("slow"):
                jitter = float(uniform(sim.pop.seed, 71, sim.counts["requests"])[0])
                time.sleep(0.05 + 0.2 * jitter)
            if api and (sim._take_armed("server_error", path)
                        or (sim.config.has("server_error") and n_api % 7 == 0)):
                status = 503 if n_api % 2 else 500
                raise _helix_error(status, "")
            payload, headers = handler(query, body)
            malformed = path.startswith("/helix/") and (
                sim._take_armed("malformed_json", path)
                or (sim.config.has("malformed_json") and n_helix == 2))
            if malformed:
                text = json.dumps(payload).encode()
                self._send(200, None, headers, raw=text[: max(1, len(text) // 2)])
                return
            self._send(200, payload, headers)
        except ApiError as err:
            raw = err.body if isinstance(err.body, bytes) else None
            self._send(err.status, err.body, err.headers, raw=raw)
        except Exception:  # a bug in the simulator must not kill the connection silently
            logger.exception("simulator error on %s %s", method, self.path)
            self._send(500, {"error": "Internal Server Error", "status": 500, "message": ""})

    # ----- id service --------------------------------------------------------------------
    def _token(self, query: dict, body: bytes) -> tuple[Any, dict]:
        params = dict(query)
        ctype = self.headers.get("Content-Type") or ""
        if body and "json" in ctype:
            params.update({k: [str(v)] for k, v in json.loads(body).items()})
        elif body:
            params.update(parse_qs(body.decode(), keep_blank_values=True))
        get = {k: v[-1] for k, v in params.items()}
        cfg = self.sim.config
        if not get.get("client_id"):
            raise ApiError(400, {"status": 400, "message": "missing client id"})
        if get["client_id"] != cfg.client_id:
            raise ApiError(400, {"status": 400, "message": "invalid client"})
        if get.get("client_secret") != cfg.client_secret:
            raise ApiError(403, {"status": 403, "message": "invalid client secret"})
        if get.get("grant_type") != "client_credentials":
            raise ApiError(400, {"status": 400, "message": "unsupported grant type"})
        return self.sim.issue_token(cfg.client_id), {}

    def _validate(self, query: dict, body: bytes) -> tuple[Any, dict]:
        auth = self.headers.get("Authorization") or ""
        token = auth.split(" ", 1)[1].strip() if " " in auth else ""
        with self.sim.lock:
            info = self.sim.tokens.get(token)
        if info is None or time.time() >= info["expires"]:
            raise ApiError(401, {"status": 401, "message": "invalid access token"})
        return {"client_id": info["client_id"], "scopes": [],
                "expires_in": int(info["expires"] - time.time())}, {}

    # ----- Helix -------------------------------------------------------------------------
    def _helix_auth(self) -> dict[str, str]:
        if self.sim._take_armed("unauthorized", self.path):
            raise _helix_error(401, "Invalid OAuth token")
        client_id = self.sim.check_token(self.headers)
        if self.sim._take_armed("rate_limit", self.path):
            err = _helix_error(429, "Too Many Requests")
            err.headers.update({"Ratelimit-Limit": str(self.sim.config.helix_points_per_minute),
                                "Ratelimit-Remaining": "0",
                                "Ratelimit-Reset": str(int(time.time()) + 1)})
            raise err
        return self.sim.spend_helix_point(client_id)

    def _streams(self, query: dict, body: bytes) -> tuple[Any, dict]:
        headers = self._helix_auth()
        sim, pop = self.sim, self.sim.pop
        first = _int_param(query, "first", 20, 1, 100)
        t = sim.now_s()
        ch, viewers = pop.ranked_live(t)
        mask = np.ones(len(ch), dtype=bool)
        if query.get("user_login") or query.get("user_id"):
            wanted = [pop.index_of_login(x) for x in query.get("user_login", [])]
            wanted += [pop.index_of_id(x) for x in query.get("user_id", [])]
            if len(wanted) > 100:
                raise _helix_error(400, "The parameter \"user_login\" may be specified no more "
                                   "than 100 times")
            mask &= np.isin(ch, [w for w in wanted if w is not None])
        if query.get("language"):
            langs = np.asarray(pop.ch_language, dtype=object)[ch]
            mask &= np.isin(langs, query["language"])
        game_by_ch = None
        if query.get("game_id"):
            _, idx, _ = pop.session(ch, t)
            game_by_ch = np.asarray([pop.game_ids[g] for g in pop.session_games(ch, idx)],
                                    dtype=object)
            mask &= np.isin(game_by_ch, query["game_id"])
        ch, viewers = ch[mask], viewers[mask]
        offset = 0
        after = (query.get("after") or [""])[-1]
        if after:
            offset = _decode_cursor(after)
        page_ch, page_v = ch[offset: offset + first], viewers[offset: offset + first]
        data = pop.streams(page_ch, t, page_v)
        if sim.config.has("missing_fields"):
            for item in data:
                h = int(item["id"]) % 9
                if h == 0:
                    item.pop(("viewer_count", "user_login", "started_at")[int(item["id"]) % 3])
        end = offset + first
        pagination: dict = {}
        if end < len(ch):
            nxt = end
            if sim.config.has("duplicate_pages"):
                nxt = end - 1 - int(uniform(pop.seed, 81, end)[0] * 3)
            pagination = {"cursor": _encode_cursor(max(nxt, offset + 1))}
        elif sim.config.has("loop_cursor") and len(ch) > first:
            pagination = {"cursor": _encode_cursor(0, loop=True)}
        return {"data": data, "pagination": pagination}, headers

    def _users(self, query: dict, body: bytes) -> tuple[Any, dict]:
        headers = self._helix_auth()
        pop = self.sim.pop
        ids, logins = query.get("id", []), query.get("login", [])
        if len(ids) + len(logins) > 100:
            raise _helix_error(400, "The sum of the number of IDs and logins must not exceed 100")
        if not ids and not logins:
            raise _helix_error(400, "Must provide an ID, Login or OAuth Token.")
        found = [pop.index_of_id(x) for x in ids] + [pop.index_of_login(x) for x in logins]
        seen: set[int] = set()
        data = []
        for acc in found:
            if acc is not None and acc not in seen:
                seen.add(acc)
                data.append(pop.user(acc))
        return {"data": data}, headers

    def _games(self, query: dict, body: bytes) -> tuple[Any, dict]:
        headers = self._helix_auth()
        pop = self.sim.pop
        ids, names, igdb = query.get("id", []), query.get("name", []), query.get("igdb_id", [])
        if len(ids) + len(names) + len(igdb) > 100:
            raise _helix_error(400, "The sum of the number of IDs, names and IGDB IDs must not "
                               "exceed 100")
        if not ids and not names and not igdb:
            raise _helix_error(400, "Missing required parameter \"id\", \"name\" or \"igdb_id\"")
        data = []
        for g, game in enumerate(GAMES):
            igdb_id = pop.igdb_ids[g]
            if (pop.game_ids[g] in ids or game.name in names
                    or (igdb_id is not None and str(igdb_id) in igdb)):
                data.append(pop.game(g))
        return {"data": data, "pagination": {}}, headers

    # ----- IGDB --------------------------------------------------------------------------
    def _igdb_games(self, query: dict, body: bytes) -> tuple[Any, dict]:
        sim = self.sim
        client_id = sim.check_token(self.headers, helix=False)
        with sim.lock:
            window = sim.igdb_windows.setdefault(
                client_id, _Window(sim.config.igdb_requests_per_s, 1.0))
            ok = window.allow()
            if not ok:
                sim.counts["429"] += 1
        if not ok:
            raise ApiError(429, {"message": "Too Many Requests"})
        try:
            q = parse_apicalypse(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, [{"title": "Syntax Error", "status": 400,
                                  "cause": str(exc)}]) from exc
        records = list(sim.igdb_games.values())
        if q["search"]:
            s = q["search"].lower()
            records = [r for r in records if s in r["name"].lower()]
        result: list[dict] = []
        for rec in records:
            ok_any = None
            for joiner, field, op, want in q["where"]:
                hit = _match(_values(rec, field.split(".")), op, want)
                ok_any = hit if ok_any is None else (ok_any or hit if joiner == "|"
                                                     else ok_any and hit)
            if ok_any is None or ok_any:
                result.append(rec)
        if q["sort"]:
            field, direction = q["sort"]
            result.sort(key=lambda r: (str(_values(r, field.split("."))[:1])),
                        reverse=direction == "desc")
        result = result[q["offset"]: q["offset"] + q["limit"]]
        return [project_fields(r, q["fields"], q["exclude"]) for r in result], {}

    # ----- Steam -------------------------------------------------------------------------
    def _steam_applist(self, query: dict, body: bytes) -> tuple[Any, dict]:
        return {"applist": {"apps": self.sim.steam_apps}}, {}

    def _steam_appdetails(self, query: dict, body: bytes) -> tuple[Any, dict]:
        sim = self.sim
        with sim.lock:
            ok = sim.steam_window.allow()
        if not ok:
            raise ApiError(429, b"")
        appids = [a for v in query.get("appids", []) for a in v.split(",") if a]
        if len(appids) != 1:
            raise ApiError(400, b"null")
        key = appids[0]
        data = sim.steam_details.get(int(key)) if key.isdigit() else None
        if data is None:
            return {key: {"success": False}}, {}
        return {key: {"success": True, "data": data}}, {}

    # ----- GQL ---------------------------------------------------------------------------
    def _gql(self, query: dict, body: bytes) -> tuple[Any, dict]:
        if not (self.headers.get("Client-Id") or self.headers.get("Client-ID")):
            raise ApiError(400, {"error": "Bad Request", "status": 400,
                                 "message": "The \"Client-ID\" header is missing from the "
                                 "request."})
        try:
            payload = json.loads(body or b"null")
        except json.JSONDecodeError as exc:
            raise ApiError(400, {"errors": [{"message": "invalid JSON body"}]}) from exc
        ops = payload if isinstance(payload, list) else [payload]
        if not ops or not all(isinstance(o, dict) for o in ops):
            raise ApiError(400, {"errors": [{"message": "expected an operation object"}]})
        answers = [self._gql_one(o) for o in ops]
        return (answers if isinstance(payload, list) else answers[0]), {}

    def _gql_one(self, op: dict) -> dict:
        pop = self.sim.pop
        variables = op.get("variables") or {}
        login = variables.get("login") or variables.get("channelLogin")
        if not login:
            m = re.search(r'user\s*\(\s*login\s*:\s*"([^"]+)"', op.get("query") or "")
            login = m.group(1) if m else None
        name = op.get("operationName")
        ext = {"durationMilliseconds": 9, "operationName": name, "requestID": secrets.token_hex(8)}
        if not login:
            return {"errors": [{"message": "no channel login in the operation",
                                "path": ["user"]}], "data": None, "extensions": ext}
        acc = pop.index_of_login(str(login))
        if acc is None or acc >= pop.n_channels:
            user = None if acc is None else {
                "id": str(pop.acc_id[acc]), "login": pop.acc_login[acc],
                "displayName": pop.acc_display[acc], "description": "",
                "channel": {"id": str(pop.acc_id[acc]), "socialMedias": []}}
            return {"data": {"user": user}, "extensions": ext}
        user = {
            "id": str(pop.acc_id[acc]),
            "login": pop.acc_login[acc],
            "displayName": pop.acc_display[acc],
            "description": pop.ch_description[acc],
            "channel": {
                "id": str(pop.acc_id[acc]),
                "socialMedias": [{**s, "__typename": "SocialMedia"} for s in pop.ch_socials[acc]],
                "__typename": "Channel",
            },
            "__typename": "User",
        }
        return {"data": {"user": user}, "extensions": ext}


def _int_param(query: dict, name: str, default: int, lo: int, hi: int) -> int:
    raw = (query.get(name) or [None])[-1]
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise _helix_error(400, f"The parameter \"{name}\" was malformed: the value must be an "
                           "integer") from exc
    if not lo <= value <= hi:
        raise _helix_error(400, f"The parameter \"{name}\" was malformed: the value must be "
                           f"between {lo} and {hi}")
    return value


def _encode_cursor(offset: int, *, loop: bool = False) -> str:
    # Shaped like Twitch's: base64 of a small JSON document; clients must treat it as opaque.
    doc = {"b": None, "a": {"Offset": offset, "Loop": loop}}
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return max(0, int(doc["a"]["Offset"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise _helix_error(400, "The parameter \"after\" was malformed: invalid cursor") from exc
