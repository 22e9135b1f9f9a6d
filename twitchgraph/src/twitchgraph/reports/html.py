"""One self-contained HTML page: headings, text, tables and matplotlib figures.

Figures are embedded as base64 PNG (the page opens offline, from a mail attachment or a USB
stick) and also written next to the page as ``figures/<name>.png``.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are written headless; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["HtmlReport", "new_figure"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { border-bottom: 2px solid #6441a5; padding-bottom: .2em; }
h2 { color: #6441a5; margin-top: 2em; }
table { border-collapse: collapse; font-size: .9em; margin: .5em 0 1em; }
th, td { border: 1px solid #ccc; padding: .2em .5em; text-align: right; }
th { background: #f1edf8; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; }
.note { color: #666; font-style: italic; }
"""


def new_figure(width: float = 8.0, height: float = 3.5) -> tuple[Figure, plt.Axes]:
    """A figure and its axes, not registered with pyplot's global state."""
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


@dataclass
class HtmlReport:
    """Collects sections and writes ``<out_dir>/<name>.html`` plus ``figures/*.png``."""

    title: str
    out_dir: Path
    _parts: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        (self.out_dir / "figures").mkdir(parents=True, exist_ok=True)

    def heading(self, text: str) -> None:
        self._parts.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text: str, *, note: bool = False) -> None:
        cls = ' class="note"' if note else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def table(self, frame: pd.DataFrame, *, max_rows: int = 30, caption: str = "") -> None:
        if frame.empty:
            self.text(f"{caption + ': ' if caption else ''}none.", note=True)
            return
        shown = frame.head(max_rows)
        body = shown.to_html(index=False, escape=True, border=0, float_format=lambda x: f"{x:,.2f}")
        if caption:
            self._parts.append(f"<p><b>{html.escape(caption)}</b></p>")
        self._parts.append(body)
        if len(frame) > max_rows:
            self.text(f"{len(frame) - max_rows} more rows not shown.", note=True)

    def figure(self, name: str, fig: Figure, *, alt: str = "") -> Path:
        """Embed ``fig`` as PNG and write it to ``figures/<name>.png``."""
        slug = re.sub(r"[^a-z0-9_-]+", "_", name.lower()).strip("_") or "figure"
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        png = buffer.getvalue()
        path = self.out_dir / "figures" / f"{slug}.png"
        path.write_bytes(png)
        self.figures.append(path)
        data = base64.b64encode(png).decode("ascii")
        self._parts.append(
            f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt or name)}">'
        )
        return path

    def write(self, name: str) -> Path:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        page = (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1><p class=\"note\">Written {stamp}.</p>"
            + "\n".join(self._parts)
            + "</body></html>\n"
        )
        path = self.out_dir / f"{name}.html"
        path.write_text(page, encoding="utf-8")
        return path
