"""The collector's one-line live progress on a terminal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ConsoleProgress",
]


@dataclass
class ConsoleProgress:
    """A one-line live progress display on the console."""

    console: Any
    status: Any = None

    def __call__(self, state: Mapping[str, Any]) -> None:
        text = (f"snapshot {state.get('snapshot', '?')}: {state.get('phase', '')} | "
                f"pages {state.get('pages', 0)} | streams {state.get('streams', 0):,} | "
                f"channels joined {state.get('channels_joined', 0):,} | "
                f"users seen {state.get('users_seen', 0):,}")
        if self.status is None:
            self.status = self.console.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
