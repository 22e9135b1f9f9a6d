"""PNG export: a real picture with community colours."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _graph_fixtures import write_planted_graph_dir  # noqa: E402

from twitchgraph.communities import communities_for_dir  # noqa: E402
from twitchgraph.export import community_colors  # noqa: E402
from twitchgraph.export.png import export_png  # noqa: E402
from twitchgraph.graphio import read_graph_dir  # noqa: E402
from twitchgraph.layout import layout_for_dir  # noqa: E402


def test_png_shows_every_community_colour(tmp_path):
    write_planted_graph_dir(tmp_path, communities=4, size=15, seed=3, evil_names=True)
    communities_for_dir(tmp_path, seed=0)
    layout_for_dir(tmp_path, iterations=100, seed=0)
    data = read_graph_dir(tmp_path)
    data.streamers.loc[2, "Label"] = "costs $5 and $10"  # mathtext must not break drawing
    path = export_png(data, tmp_path / "g.png", size_inches=4, dpi=100, labels=5)
    image = Image.open(path).convert("RGB")
    assert image.size[0] > 200 and image.size[1] > 200
    pixels = {rgb for _, rgb in image.getcolors(maxcolors=1 << 24)}
    k = int(data.streamers["community"].max()) + 1
    for hex_color in community_colors(k):
        rgb = tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
        assert any(sum(abs(a - b) for a, b in zip(rgb, px, strict=True)) < 10 for px in pixels)


def test_png_refuses_without_communities(tmp_path):
    write_planted_graph_dir(tmp_path, communities=2, size=5)
    with pytest.raises(ValueError, match="twitchgraph communities"):
        export_png(read_graph_dir(tmp_path), tmp_path / "g.png")
