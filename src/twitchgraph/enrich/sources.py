"""What each enrichment source reports, and the error a source raises when it gives up."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["SourceError", "SourceReport"]


class SourceError(RuntimeError):
    """An enrichment source could not answer (HTTP status and URL in the message)."""


@dataclass
class SourceReport:
    """Counts of one source's run. ``error`` is set when the source failed (softly)."""

    source: str
    asked: int = 0  # remote calls or keys asked for
    found: int = 0  # keys the source knew
    matched: int = 0  # names matched (Steam) or links stored (social)
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        text = f"{self.source}: asked {self.asked}, found {self.found}"
        if self.matched:
            text += f", matched {self.matched}"
        return text + (f" - FAILED: {self.error}" if self.error else "")
