"""Evidence that the two streams learn what they should, on synthetic data (seeded, CPU).

Appearance classes differ only in the colour of a moving square, motion classes only in its
direction. A network that sees single frames can tell appearance classes apart but not motion
classes; one that sees only flow can do the reverse; fusing them should do both.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import make_rawframes  # noqa: E402

from twostream.evaluate import evaluate_run  # noqa: E402
from twostream.fusion import fuse_runs  # noqa: E402
from twostream.train import TrainConfig, main  # noqa: E402

# 3 test clips per class in split 1, i.e. 9 per group; chance within a group is 1/3.
CHANCE = 1 / 3


def _group_accuracy(report: dict, prefix: str) -> float:
    return float(np.mean([a for c, a in report["per_class"].items() if c.startswith(prefix)]))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = make_rawframes(tmp_path_factory.mktemp("raw"), clips_per_class=12, frames=24,
                          size=56, seed=0)
    out = tmp_path_factory.mktemp("runs")
    for stream in ("spatial", "temporal"):
        main(TrainConfig(rawframes=str(root), stream=stream, out=str(out / stream), split="1",
                         arch="resnet18", weights="none", epochs=20, batch_size=8, lr=0.01,
                         drop_rate=0.0, crop=48, workers=0, device="cpu", seed=0,
                         val_segments=0, progress=False))
        evaluate_run(out / stream, segments=5, train_segments=3, device="cpu", progress=False)
    return fuse_runs(out / "spatial", out / "temporal")["results"]["1"]


@pytest.mark.slow
def test_spatial_stream_sees_appearance_not_motion(results):
    assert _group_accuracy(results["spatial"], "appearance_") >= 0.8
    assert _group_accuracy(results["spatial"], "motion_") <= CHANCE + 0.25


@pytest.mark.slow
def test_temporal_stream_sees_motion_not_appearance(results):
    assert _group_accuracy(results["temporal"], "motion_") >= 0.7
    assert _group_accuracy(results["temporal"], "appearance_") <= CHANCE + 0.25


@pytest.mark.slow
def test_fusion_is_at_least_as_good_as_the_better_stream(results):
    best = max(results["spatial"]["top1"], results["temporal"]["top1"])
    for method in ("average", "weighted", "svm"):
        assert results[method]["top1"] >= best - 0.05, method
    assert results["average"]["top1"] >= 0.8  # both cues together
