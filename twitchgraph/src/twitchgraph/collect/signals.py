"""SIGINT/SIGTERM end a collection cleanly: the run loop's handlers on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable

__all__ = [
    "STOP_SIGNALS",
    "install_stop_handlers",
    "remove_stop_handlers",
]


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
