"""`twitchgraph serve`'s ASGI app: the routes of `twitchgraph.serve.views` over a rebuilder.

Pages, safety and the JSON twins are described in `twitchgraph.serve.views`. The app answers
only requests whose ``Host`` names this server (`TrustedHosts`, as Starlette's
TrustedHostMiddleware and Jupyter do): a page on another site cannot read it through DNS
rebinding, whose requests carry that site's name. Its redirects are relative, never built
from the ``Host`` header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from twitchgraph.serve.rebuild import Rebuilder
from twitchgraph.serve.views import _HEADERS, EXCEPTION_HANDLERS, ROUTES, PayloadCache

__all__ = ["LOCAL_HOSTS", "TrustedHosts", "create_app", "host_name"]

# What a browser on this machine sends as Host for a server bound to loopback.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def create_app(rebuilder: Rebuilder, *, start: bool = True,
               allowed_hosts: Iterable[str] = ()) -> Starlette:
    """The ASGI app over `rebuilder`'s graph and store; `start` runs its rebuild thread
    for the app's lifetime (tests pass False and rebuild by hand).

    Requests are answered only when their Host is one of `LOCAL_HOSTS` or `allowed_hosts`
    (the bound address and the names given with ``--allow-host``; ``*.example.org`` matches
    its subdomains, ``*`` anything); any other Host gets a 400.
    """
    app = Starlette(routes=ROUTES, exception_handlers=EXCEPTION_HANDLERS,
                    lifespan=_lifespan(rebuilder) if start else None)
    # Starlette's own trailing-slash redirect writes the Host header into Location.
    app.router.redirect_slashes = False
    # What the views read: the graph and store (rebuilder), the map's JSON made once per graph.
    app.state.rebuilder = rebuilder
    app.state.payloads = PayloadCache(rebuilder)
    app.add_middleware(TrustedHosts, allowed=(*LOCAL_HOSTS, *allowed_hosts))
    return app


def _lifespan(rebuilder: Rebuilder):
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        rebuilder.start()
        try:
            yield
        finally:
            rebuilder.stop()

    return lifespan


def host_name(header: str) -> str:
    """The host part of a Host header, lower case, without port or IPv6 brackets.

    >>> host_name("[::1]:8000"), host_name("LocalHost:80"), host_name("127.0.0.1")
    ('::1', 'localhost', '127.0.0.1')
    """
    header = header.strip().lower()
    if header.startswith("["):  # [IPv6]:port
        return header[1:].partition("]")[0]
    if header.count(":") > 1:  # a bare IPv6 address (no port possible)
        return header
    return header.partition(":")[0].rstrip(".")


def _normal(pattern: str) -> str:
    pattern = pattern.strip().lower()
    if pattern.startswith("*"):
        return pattern
    if pattern.startswith("[") or ":" in pattern:
        try:
            return str(ipaddress.ip_address(pattern.strip("[]")))
        except ValueError:
            return host_name(pattern)
    return pattern.rstrip(".")


class TrustedHosts:
    """Answer 400 to a request whose Host is not allowed, and redirect ``/path/`` to
    ``/path`` with a relative Location (the router's own redirect is off).

    Args:
        app: the app to guard.
        allowed: host names or addresses; ``*.example.org`` allows its subdomains and ``*``
            any host (as Starlette's TrustedHostMiddleware).
    """

    def __init__(self, app: ASGIApp, *, allowed: Iterable[str]) -> None:
        self.app = app
        names = {_normal(p) for p in allowed if p.strip()}
        self.any = "*" in names
        self.suffixes = tuple(p[1:] for p in names if p.startswith("*.") and len(p) > 2)
        self.names = {p for p in names if not p.startswith("*")}

    def allows(self, header: str) -> bool:
        host = _normal(host_name(header)) if header.strip() else ""
        if not host:
            return False
        return self.any or host in self.names or host.endswith(self.suffixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not self.allows(headers.get(b"host", b"").decode("latin-1")):
            response: Response = PlainTextResponse(
                "bad Host header: this server answers only to the names it was started "
                "with (twitchgraph serve --allow-host NAME adds one)", status_code=400,
                headers=_HEADERS)
            await response(scope, receive, send)
            return
        redirect = _slash_redirect(scope)
        if redirect is not None:
            await redirect(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _slash_redirect(scope: Scope) -> Response | None:
    """``/status/`` -> ``/status`` when that is a route, as a relative redirect."""
    path = scope["path"]
    if scope["type"] != "http" or path == "/" or not path.endswith("/"):
        return None
    target = "/" + path.strip("/")  # one leading slash: "//host" would leave the site
    router = scope["app"].router if "app" in scope else None
    routes: list[Any] = router.routes if router is not None else ROUTES
    if not any(route.matches({**scope, "path": target})[0] is Match.FULL for route in routes):
        return None
    query = scope.get("query_string", b"").decode("latin-1")
    location = quote(target) + (f"?{query}" if query else "")
    return Response(status_code=307, headers={**_HEADERS, "Location": location})
