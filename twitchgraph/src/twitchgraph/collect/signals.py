"""SIGINT/SIGTERM end a collection cleanly: the run loop's handlers on the event loop.

SIGHUP (the terminal that started `collect` was closed, an ssh session dropped) is ignored
for the whole run: a collection meant to run for a day must not end with a session. (`serve`
uses SIGHUP to ask for a rebuild; it runs in its own process.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator

__all__ = [
    "STOP_SIGNALS",
    "ignore_hangup",
    "install_stop_handlers",
    "remove_stop_handlers",
]


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

log = logging.getLogger(__name__)


@contextlib.contextmanager
def ignore_hangup() -> Iterator[None]:
    """Ignore SIGHUP for the body (where there is one and this is the main thread)."""
    hup = getattr(signal, "SIGHUP", None)
    if hup is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(hup, _hung_up)
    try:
        yield
    finally:
        signal.signal(hup, previous)


def _hung_up(signum: int, frame: object) -> None:
    log.warning("SIGHUP ignored: the collection goes on (stop it with Ctrl-C or SIGTERM)")


def install_stop_handlers(loop: asyncio.AbstractEventLoop,
                          handler: Callable[[str], None]) -> list[signal.Signals]:
    """Call `handler` with the signal's name on SIGINT/SIGTERM; the signals installed (none
    where the loop cannot take handlers: not the main thread, or no Unix signals)."""
    installed = []
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, handler, sig.name)
            installed.append(sig)
    return installed


def remove_stop_handlers(loop: asyncio.AbstractEventLoop,
                         installed: list[signal.Signals]) -> None:
    """Give back the signals `install_stop_handlers` took."""
    for sig in installed:
        loop.remove_signal_handler(sig)
