"""`--to png`: a picture of the map (matplotlib), coloured by community, labelled for big nodes."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: render to a file

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from twitchgraph.export import community_colors, require_columns  # noqa: E402
from twitchgraph.graphio import GraphData  # noqa: E402

__all__ = ["export_png"]

logger = logging.getLogger(__name__)


def export_png(
    data: GraphData,
    path: str | os.PathLike,
    *,
    labels: int = 30,
    size_inches: float = 12.0,
    dpi: int = 150,
) -> Path:
    """Draw the laid-out graph to `path`.

    Parameters
    ----------
    labels : how many of the largest streamers (by mean viewers) get their name drawn.
    size_inches, dpi : picture size; the default is 1800 x 1800 pixels.
    """
    require_columns(data, ["community", "x", "y", "size"], target="png")
    streamers = data.streamers.reset_index(drop=True)
    index = {login: i for i, login in enumerate(streamers["Id"])}
    xy = streamers[["x", "y"]].to_numpy(float)
    community = streamers["community"].astype(int).to_numpy()
    colors = np.array(community_colors(int(community.max()) + 1))[community]
    sizes = streamers["size"].to_numpy(float)

    fig, ax = plt.subplots(figsize=(size_inches, size_inches), dpi=dpi)
    fig.patch.set_facecolor("#111318")
    ax.set_facecolor("#111318")
    if len(data.edges):
        src = data.edges["Source"].map(index).to_numpy()
        dst = data.edges["Target"].map(index).to_numpy()
        segments = np.stack([xy[src], xy[dst]], axis=1)
        # Edges take the source's colour, faint, as in Gephi's default rendering.
        ax.add_collection(LineCollection(segments, colors=colors[src], linewidths=0.3,
                                         alpha=0.15, zorder=1))
    # Marker area in points²; size is a radius in layout units.
    ax.scatter(xy[:, 0], xy[:, 1], s=(sizes * 1.2) ** 2, c=colors, linewidths=0, zorder=2)
    viewers = streamers.get("viewer_mean")
    order = np.argsort(-viewers.fillna(0).to_numpy(float)) if viewers is not None else []
    for i in list(order)[:labels]:
        name = str(streamers.at[i, "Label"]) or str(streamers.at[i, "Id"])
        name = name.replace("$", r"\$")  # a '$' would start matplotlib mathtext
        ax.annotate(name, xy[i], fontsize=7, color="white", ha="center", va="center",
                    zorder=3)
    ax.set_aspect("equal")
    ax.autoscale()
    ax.axis("off")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # Names in scripts DejaVu Sans lacks (CJK, ...) draw as boxes; one warning per glyph
        # would drown the output.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        fig.savefig(target, facecolor=fig.get_facecolor(), bbox_inches="tight")
    plt.close(fig)
    logger.info("wrote %s", target)
    return target
