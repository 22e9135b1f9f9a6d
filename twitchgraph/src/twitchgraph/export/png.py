"""`--to png`: a picture of the map (matplotlib), coloured by community, with a legend.

It shows what the web map opens on (`export.mapview`): the components that hold the shown
communities fill the picture, the loners around them fall outside it, small communities are
grey "other", and the legend lists the shown communities plus "other". The biggest streamers
are named, skipping a name that would cover one already drawn. Names in Chinese, Japanese or
Korean need a CJK font (Debian's fonts-noto-cjk, installed by `make system-deps`); matplotlib
falls back to it glyph by glyph.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: render to a file

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import font_manager, patheffects  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from twitchgraph.export import require_columns  # noqa: E402
from twitchgraph.export.mapview import map_view  # noqa: E402
from twitchgraph.graphio import GraphData  # noqa: E402

__all__ = ["export_png", "font_families", "map_figure"]

logger = logging.getLogger(__name__)

BACKGROUND = "#111318"
# One of these covers kana, hangul and the CJK ideographs; the first found is used.
CJK_FAMILIES = ("Noto Sans CJK JP", "Noto Sans CJK KR", "Noto Sans CJK SC", "Noto Sans CJK TC",
                "WenQuanYi Zen Hei", "Droid Sans Fallback")
MARGIN = 0.03  # of the frame's width and height, around it


@functools.cache
def font_families() -> list[str]:
    """matplotlib's font list for labels: DejaVu Sans, then a CJK font when one is installed."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    if not known & set(CJK_FAMILIES):
        # matplotlib's font cache may predate the font's install: look on disk once.
        for path in font_manager.findSystemFonts():
            if "CJK" in Path(path).name or "wqy" in Path(path).name.lower():
                font_manager.fontManager.addfont(path)
        known = {f.name for f in font_manager.fontManager.ttflist}
    cjk = [f for f in CJK_FAMILIES if f in known]
    if not cjk:
        logger.warning("no CJK font found: Chinese, Japanese and Korean names will draw as "
                       "boxes; install one (Debian: apt-get install fonts-noto-cjk)")
    return ["DejaVu Sans", *cjk[:1]]


def _plain(text: str, limit: int = 60) -> str:
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return text.replace("$", r"\$")  # a '$' would start matplotlib mathtext


def export_png(
    data: GraphData,
    path: str | os.PathLike,
    *,
    labels: int = 30,
    size_inches: float = 12.0,
    dpi: int = 150,
) -> Path:
    """Draw the laid-out graph to `path` (see `map_figure` for the parameters)."""
    with plt.rc_context({"font.family": font_families()}):
        fig = map_figure(data, labels=labels, size_inches=size_inches, dpi=dpi)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            fig.savefig(target, facecolor=fig.get_facecolor(), bbox_inches="tight")
        finally:
            plt.close(fig)
    logger.info("wrote %s", target)
    return target


def map_figure(
    data: GraphData,
    *,
    labels: int = 30,
    size_inches: float = 12.0,
    dpi: int = 150,
) -> Figure:
    """The map as a matplotlib figure: one axes framed on the main graph, legend at its right.

    Parameters
    ----------
    labels : how many of the largest streamers (by mean viewers) in the frame may get their
        name drawn; a name that would overlap one already drawn is left out.
    size_inches, dpi : size of the map part; the default is 1800 x 1800 pixels, and the
        legend is added on its right.

    Draw it under ``plt.rc_context({"font.family": font_families()})`` for CJK names; close it
    with ``plt.close(fig)``.
    """
    require_columns(data, ["community", "x", "y", "size"], target="png")
    streamers = data.streamers.reset_index(drop=True)
    view = map_view(data)
    index = {login: i for i, login in enumerate(streamers["Id"])}
    xy = streamers[["x", "y"]].to_numpy(float)
    colors = view.color
    sizes = streamers["size"].to_numpy(float)
    fig, ax = plt.subplots(figsize=(size_inches, size_inches), dpi=dpi)
    fig.patch.set_facecolor(BACKGROUND)
    ax.set_facecolor(BACKGROUND)
    if len(data.edges):
        src = data.edges["Source"].map(index).to_numpy()
        dst = data.edges["Target"].map(index).to_numpy()
        segments = np.stack([xy[src], xy[dst]], axis=1)
        # Edges take the source's colour, faint, as in Gephi's default rendering.
        ax.add_collection(LineCollection(segments, colors=colors[src], linewidths=0.3,
                                         alpha=0.15, zorder=1))
    # Marker area in points²; size is a radius in layout units. Big nodes on top.
    order = np.argsort(sizes, kind="stable")
    ax.scatter(xy[order, 0], xy[order, 1], s=(sizes[order] * 1.2) ** 2,
               c=list(colors[order]), linewidths=0, zorder=2)
    _frame(ax, view.frame)
    _label(fig, ax, streamers, xy, view.framed, labels)
    _legend(ax, view)
    ax.axis("off")
    return fig


def _frame(ax, frame: tuple[float, float, float, float]) -> None:
    # The axes fill the square figure, so a square box around the frame is the view.
    xmin, xmax, ymin, ymax = frame
    half = (1 + 2 * MARGIN) * max(xmax - xmin, ymax - ymin, 1e-9) / 2
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    ax.set_position([0.0, 0.0, 1.0, 1.0])
    ax.set_xlim(cx - half, cx + half)
    ax.set_ylim(cy - half, cy + half)
    ax.set_aspect("equal")


def _label(fig, ax, streamers, xy: np.ndarray, framed: np.ndarray, labels: int) -> None:
    viewers = streamers.get("viewer_mean")
    if viewers is None or labels <= 0:
        return
    ranked = np.argsort(-viewers.fillna(0).to_numpy(float), kind="stable")
    renderer = fig.canvas.get_renderer()
    placed = []
    outline = [patheffects.withStroke(linewidth=2.5, foreground=BACKGROUND)]
    for i in [i for i in ranked if framed[i]][:labels]:
        name = str(streamers.at[i, "Label"]) if isinstance(streamers.at[i, "Label"], str) else ""
        text = ax.annotate(_plain(name or str(streamers.at[i, "Id"]), 40), xy[i], fontsize=7,
                           color="white", ha="center", va="center", zorder=3,
                           path_effects=outline)
        box = text.get_window_extent(renderer)
        if any(box.overlaps(other) for other in placed):
            text.remove()
        else:
            placed.append(box)


def _legend(ax, view) -> None:
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=7,
                      markerfacecolor=entry.color, markeredgewidth=0,
                      label=f"{_plain(entry.name)} · {entry.size}")
               for entry in view.legend]
    legend = ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                       frameon=False, fontsize=8, labelcolor="#e6e6e6", title="communities",
                       borderaxespad=0.5)
    legend.get_title().set_color("#e6e6e6")
