"""The demo end to end against the simulator: hidden communities are recovered (NMI >= 0.8)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from twitchgraph.demo import DemoConfig, run_demo


@pytest.mark.slow
@pytest.mark.timeout(180)  # a hung collector fails the test instead of stalling the suite
def test_demo_recovers_the_planted_communities(tmp_path):
    # Smaller and faster than `twitchgraph demo`, same pipeline.
    config = DemoConfig(channels=80, users=1500, seed=3, snapshots=4, every_min=10.0,
                        window_s=150.0, time_scale=300.0, layout_iterations=100)
    lines: list[str] = []
    result = run_demo(tmp_path, config=config, echo=lines.append)

    truth = json.loads((tmp_path / "ground_truth.json").read_text())["communities"]
    streamers = pd.read_csv(result.graph_dir / "streamers.csv", dtype={"Id": str})
    found = dict(zip(streamers["Id"], streamers["community"], strict=True))
    known = [x for x in found if x in truth]
    assert len(known) == len(found) >= 30
    from sklearn.metrics import normalized_mutual_info_score  # slow to import

    nmi = normalized_mutual_info_score([truth[x] for x in known], [found[x] for x in known])
    assert nmi >= 0.8
    assert nmi == pytest.approx(result.nmi)

    assert result.html.exists() and result.html.stat().st_size > 100_000
    for name in ("graph.kuzu", "graph.gexf", "graph.png", "neo4j/load.cypher",
                 "communities.csv"):
        assert (result.graph_dir / name).exists(), name
    assert {"x", "y", "size", "community"} <= set(streamers.columns)
    assert any(line.startswith("build thresholds (demo scale):") for line in lines)
    # The line names the thresholds the demo changes, and only those.
    thresholds = next(line for line in lines if line.startswith("build thresholds"))
    assert "every_nth=1" in thresholds and "drop_suspected=True" in thresholds
    assert "weight=overlap" not in thresholds  # the study's default, unchanged
    assert sum("complete" in line for line in lines if line.startswith("snapshot")) == 4
    # Bots from the simulator's published list never become streamers or edges.
    bots = set(pd.read_csv(tmp_path / "bots.csv")["login"])
    assert not bots & set(found)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_demo_command_prints_where_the_map_is(tmp_path):
    from typer.testing import CliRunner

    from twitchgraph.cli import app

    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--channels", "40",
                                      "--users", "800", "--snapshots", "2",
                                      "--time-scale", "600"])
    assert result.exit_code == 0, result.output
    assert f"open the map: {out / 'graph' / 'map.html'}" in result.output.replace("\n", "")
    assert (out / "graph" / "map.html").exists()
    summary = json.loads((out / "demo.json").read_text())
    assert summary["config"]["channels"] == 40 and summary["streamers"] > 0
