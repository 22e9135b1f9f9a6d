"""Prediction on a new video: same preprocessing as extract, same protocol as evaluate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from twostream.decode import VideoDecodeError
from twostream.evaluate import evaluate_run, load_scores
from twostream.predict import predict_video
from twostream.train import TrainConfig, main


@pytest.fixture(scope="module")
def runs(extracted_dataset, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs")
    for stream in ("spatial", "temporal"):
        main(TrainConfig(rawframes=str(extracted_dataset.out_dir), stream=stream,
                         out=str(out / stream), arch="resnet18", weights="none", epochs=1,
                         batch_size=4, crop=32, workers=0, device="cpu", val_segments=0,
                         progress=False))
        evaluate_run(out / stream, splits=[1], segments=5, score_train=False, device="cpu",
                     progress=False)
    return out / "spatial", out / "temporal"


@pytest.mark.slow
def test_prediction_equals_the_fused_evaluation_scores(runs, synth_dataset):
    spatial, temporal = runs
    s, t = load_scores(spatial, 1), load_scores(temporal, 1)
    name = s["name"][0]  # "<class>/<clip stem>" of a test clip
    cls, stem = name.split("/", 1)
    (video,) = [p for p in (synth_dataset.videos_dir / cls).iterdir() if p.stem == stem]
    top = predict_video(video, spatial, temporal, top_k=3, segments=5)
    assert len(top) == 3
    assert [r["score"] for r in top] == sorted((r["score"] for r in top), reverse=True)
    # Re-extracting the video the way extract did gives the same frames, hence the same scores.
    fused = (s["scores"][0] + t["scores"][list(t["name"]).index(name)]) / 2
    expected = [(synth_dataset.classes[i], fused[i]) for i in np.argsort(-fused)[:3]]
    assert [r["label"] for r in top] == [c for c, _ in expected]
    np.testing.assert_allclose([r["score"] for r in top], [v for _, v in expected], rtol=1e-4)


def test_undecodable_video_is_one_clear_error(runs, tmp_path):
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage")
    with pytest.raises(VideoDecodeError, match="broken.avi"):
        predict_video(bad, *runs)
