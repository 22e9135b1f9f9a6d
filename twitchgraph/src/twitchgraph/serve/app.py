"""`twitchgraph serve`'s ASGI app: the routes of `twitchgraph.serve.views` over a rebuilder.

Pages, safety and the JSON twins are described in `twitchgraph.serve.views`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from twitchgraph.serve.rebuild import Rebuilder
from twitchgraph.serve.views import EXCEPTION_HANDLERS, ROUTES, PayloadCache

__all__ = ["create_app"]


def create_app(rebuilder: Rebuilder, *, start: bool = True) -> Starlette:
    """The ASGI app over `rebuilder`'s graph and store; `start` runs its rebuild thread
    for the app's lifetime (tests pass False and rebuild by hand)."""
    app = Starlette(routes=ROUTES, exception_handlers=EXCEPTION_HANDLERS,
                    lifespan=_lifespan(rebuilder) if start else None)
    # What the views read: the graph and store (rebuilder), the map's JSON made once per graph.
    app.state.rebuilder = rebuilder
    app.state.payloads = PayloadCache(rebuilder)
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
