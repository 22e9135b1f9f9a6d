"""PNG export: a real picture with community colours, a legend, framed on the main graph."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _graph_fixtures import write_planted_graph_dir  # noqa: E402

from twitchgraph.export import OTHER_COLOR, community_colors  # noqa: E402
from twitchgraph.export.png import export_png, font_families, map_figure  # noqa: E402
from twitchgraph.graph.communities import communities_for_dir  # noqa: E402
from twitchgraph.graph.layout import layout_for_dir  # noqa: E402
from twitchgraph.graphio import read_graph_dir  # noqa: E402

LONERS = 10


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory):
    """4 planted communities and 10 isolated streamers, laid out (they ring the graph)."""
    path = tmp_path_factory.mktemp("png")
    write_planted_graph_dir(path, communities=4, size=15, p_in=0.5, seed=3, evil_names=True,
                            loners=LONERS)
    communities_for_dir(path, seed=0)
    layout_for_dir(path, iterations=100, seed=0)
    return path


def _rgb(hex_color: str) -> tuple[int, ...]:
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))


def test_png_shows_every_community_colour_and_other_in_grey(graph_dir, tmp_path):
    data = read_graph_dir(graph_dir)
    data.streamers.loc[2, "Label"] = "costs $5 and $10"  # mathtext must not break drawing
    path = export_png(data, tmp_path / "g.png", size_inches=4, dpi=100, labels=5)
    image = Image.open(path).convert("RGB")
    assert image.size[0] > 400 and image.size[1] >= 400  # the map, and the legend beside it
    pixels = {rgb for _, rgb in image.getcolors(maxcolors=1 << 24)}
    for hex_color in [*community_colors(4), OTHER_COLOR]:
        assert any(sum(abs(a - b) for a, b in zip(_rgb(hex_color), px, strict=True)) < 10
                   for px in pixels), hex_color


def test_legend_lists_the_communities_and_one_other(graph_dir):
    data = read_graph_dir(graph_dir)
    fig = map_figure(data, size_inches=4, dpi=50, labels=0)
    try:
        legend = fig.axes[0].get_legend()
        texts = [t.get_text() for t in legend.get_texts()]
        colours = [h.get_markerfacecolor() for h in legend.legend_handles]
    finally:
        plt.close(fig)
    assert len(texts) == 5 and texts[-1].startswith(f"other: {LONERS} isolated streamers")
    assert texts[-1].endswith(f"· {LONERS}")
    assert colours == [*community_colors(4), OTHER_COLOR]
    # A community is named after its biggest streamers.
    sizes = data.streamers.groupby("community").size()
    assert texts[0].endswith(f"· {sizes[0]}")


def test_the_main_graph_fills_the_frame_and_loners_fall_outside(graph_dir):
    data = read_graph_dir(graph_dir)
    fig = map_figure(data, size_inches=4, dpi=50, labels=0)
    try:
        ax = fig.axes[0]
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    finally:
        plt.close(fig)
    loner = data.streamers["Id"].str.startswith("loner_").to_numpy()
    xy = data.streamers[["x", "y"]].to_numpy()
    main = xy[~loner]
    inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    assert inside[~loner].all()
    assert not inside[loner].all()  # ForceAtlas2 pushes loners out: they are not framed
    spread = max(np.ptp(main[:, 0]) / (x1 - x0), np.ptp(main[:, 1]) / (y1 - y0))
    assert spread > 0.7  # the main graph spans the picture (discs and margin aside)


@pytest.mark.skipif(len(font_families()) < 2, reason="no CJK font (fonts-noto-cjk)")
def test_japanese_and_korean_names_have_glyphs(graph_dir, tmp_path):
    data = read_graph_dir(graph_dir)
    top = data.streamers["viewer_mean"].nlargest(2).index
    data.streamers.loc[top, "Label"] = ["ゆっくり実況", "한국어방송"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_png(data, tmp_path / "g.png", size_inches=4, dpi=50, labels=2)
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []


def test_png_refuses_without_communities(tmp_path):
    write_planted_graph_dir(tmp_path, communities=2, size=5)
    with pytest.raises(ValueError, match="twitchgraph communities"):
        export_png(read_graph_dir(tmp_path), tmp_path / "g.png")
