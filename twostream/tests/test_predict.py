"""Prediction on a new video: same preprocessing as extract, same protocol as evaluate, and the
fusion `fuse` learned."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from twostream.decode import VideoDecodeError
from twostream.evaluate import evaluate_run, load_scores
from twostream.fusion import FusionError, apply_fusion, fuse_runs, load_fusion
from twostream.predict import predict_video
from twostream.train import TrainConfig, main


@pytest.fixture(scope="module")
def runs(extracted_dataset, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs")
    for stream in ("spatial", "temporal"):
        main(TrainConfig(rawframes=str(extracted_dataset.out_dir), stream=stream,
                         out=str(out / stream), arch="resnet18", weights="none", epochs=1,
                         batch_size=4, crop=32, new_length=5, workers=0, device="cpu",
                         val_segments=0, progress=False))
        evaluate_run(out / stream, splits=[1], segments=5, train_segments=1, device="cpu",
                     progress=False)
    return out / "spatial", out / "temporal"


def _test_clip(runs, synth_dataset):
    """A test clip's video and its evaluated (spatial, temporal) scores."""
    spatial, temporal = runs
    s, t = load_scores(spatial, 1), load_scores(temporal, 1)
    name = s["name"][0]  # "<class>/<clip stem>" of a test clip
    cls, stem = name.split("/", 1)
    (video,) = [p for p in (synth_dataset.videos_dir / cls).iterdir() if p.stem == stem]
    return video, s["scores"][0], t["scores"][list(t["name"]).index(name)]


def _expected(fused, classes, k=3):
    order = np.argsort(-fused)[:k]
    return [classes[i] for i in order], fused[order]


@pytest.mark.slow
def test_prediction_equals_the_fused_evaluation_scores(runs, synth_dataset):
    video, s, t = _test_clip(runs, synth_dataset)
    result = predict_video(video, *runs, top_k=3, segments=5)
    assert (result["fusion"], result["split"]) == ("average", 1)  # fuse never ran on these
    top = result["top"]
    assert [r["score"] for r in top] == sorted((r["score"] for r in top), reverse=True)
    # Re-extracting the video the way extract did gives the same frames, hence the same scores.
    labels, scores = _expected((s + t) / 2, synth_dataset.classes)
    assert [r["label"] for r in top] == labels
    np.testing.assert_allclose([r["score"] for r in top], scores, rtol=1e-4)
    with pytest.raises(FusionError, match="twostream fuse"):
        predict_video(video, *runs, fusion="weighted", segments=5)


@pytest.mark.slow
def test_prediction_fuses_with_what_fuse_learned(runs, synth_dataset, tmp_path):
    spatial, temporal = tmp_path / "spatial", tmp_path / "temporal"
    shutil.copytree(runs[0], spatial)
    shutil.copytree(runs[1], temporal)
    fuse_runs(spatial, temporal, out=tmp_path / "fusion")
    learned = load_fusion(spatial, temporal, 1)
    video, s, t = _test_clip((spatial, temporal), synth_dataset)
    for method in ("average", "weighted", "svm"):
        result = predict_video(video, spatial, temporal, fusion=method, top_k=3, segments=5)
        assert result["fusion"] == method
        fused = apply_fusion(method, s[None], t[None], learned)[0]
        labels, scores = _expected(fused, synth_dataset.classes)
        assert [r["label"] for r in result["top"]] == labels
        np.testing.assert_allclose([r["score"] for r in result["top"]], scores, rtol=1e-4,
                                   atol=1e-5)
    # The default is the method fuse found best on the training clips...
    path = spatial / "fusion_model.json"
    saved = json.loads(path.read_text())
    for best in ("svm", "weighted"):
        saved["splits"]["1"]["best"] = best
        path.write_text(json.dumps(saved))
        assert predict_video(video, spatial, temporal, top_k=1, segments=5)["fusion"] == best
    # ...and the weight is the one saved: all of it on the spatial stream gives its scores.
    saved["splits"]["1"]["spatial_weight"] = 1.0
    path.write_text(json.dumps(saved))
    result = predict_video(video, spatial, temporal, top_k=3, segments=5)
    labels, scores = _expected(s.astype(np.float64), synth_dataset.classes)
    assert [r["label"] for r in result["top"]] == labels
    np.testing.assert_allclose([r["score"] for r in result["top"]], scores, rtol=1e-4)


def test_undecodable_video_is_one_clear_error(runs, tmp_path):
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage")
    with pytest.raises(VideoDecodeError, match="broken.avi"):
        predict_video(bad, *runs)


# Non-default settings of three methods, as a user types them to `twostream extract`.
EXTRACTIONS = {
    "tvl1 fast-third, short side 32": ["--flow", "tvl1", "--tvl1-preset", "fast-third",
                                       "--short-side", "32"],
    "tvl1-torch fast, 3 warps": ["--flow", "tvl1-torch", "--tvl1-preset", "fast",
                                 "--tvl1-warps", "3", "--short-side", "0", "--device", "cpu"],
    "dis at half scale, bound 15": ["--flow", "dis", "--flow-scale", "0.5", "--bound", "15",
                                    "--short-side", "0", "--jpeg-quality", "90"],
}


@pytest.mark.parametrize("options", EXTRACTIONS.values(), ids=EXTRACTIONS.keys())
def test_predict_extracts_a_video_byte_for_byte_as_extract_did(synth_dataset, tmp_path,
                                                                 options):
    # Issue 23 item 3: predict once dropped the TV-L1 parameters of tvl1-torch runs.
    from typer.testing import CliRunner

    from twostream.cli import app
    from twostream.datasets import read_extract_settings
    from twostream.extract.dataset import extract_clip
    from twostream.predict import settings_as_trained
    from twostream.runs import RunRecord

    videos, splits = tmp_path / "videos", tmp_path / "splits"
    cls = "motion_left"
    shutil.copytree(synth_dataset.videos_dir / cls, videos / cls)
    for k in (1, 2, 3):
        name = f"{cls}_test_split{k}.txt"
        shutil.copy(synth_dataset.splits_dir / name, splits.mkdir(exist_ok=True) or splits / name)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["extract", str(videos), str(splits), str(out), "--workers", "1",
                                 "--no-progress", *options])
    assert r.exit_code == 0, r.output
    # What train records in run.json, and predict reads back.
    run = RunRecord(stream="temporal", classes=[cls],
                    extract_settings=read_extract_settings(out))
    for video in sorted(videos.glob(f"{cls}/*.avi"))[:2]:
        clip = tmp_path / "predict" / video.stem
        settings = settings_as_trained([run])  # then predict_video runs exactly this:
        n = extract_clip(video, clip, settings)
        assert settings.record() == run.extract_settings
        made = out / "rawframes" / cls / video.stem
        names = sorted(p.name for p in made.glob("*.jpg"))
        assert n == 8 and len(names) == 8 * 3
        assert sorted(p.name for p in clip.glob("*.jpg")) == names
        for name in names:
            assert (clip / name).read_bytes() == (made / name).read_bytes(), (video.name, name)
