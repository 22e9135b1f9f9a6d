"""`twostream train/evaluate/fuse/predict/export`: one chain end to end, and bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from twostream.cli import app
from twostream.demo import group_accuracy

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _one_red_line(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert "Traceback" not in result.output
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture(scope="module")
def trained(extracted_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    raw = extracted_dataset.out_dir
    for stream in ("spatial", "temporal"):
        r = _run("train", raw, "--stream", stream, "--out", out / stream, "--arch", "resnet18",
                 "--weights", "none", "--epochs", "1", "--batch-size", "4", "--crop", "32",
                 "--workers", "0", "--device", "cpu", "--val-segments", "1")
        assert r.exit_code == 0, r.output
        assert "split 1: train acc" in r.output
    return raw, out


@pytest.mark.slow
def test_train_evaluate_fuse_predict_export(trained, synth_dataset, tmp_path):
    raw, out = trained
    for stream in ("spatial", "temporal"):
        r = _run("evaluate", out / stream, "--segments", "3", "--train-segments", "2",
                 "--batch-size", "2")
        assert r.exit_code == 0, r.output
        report = json.loads((out / stream / "eval_split1.json").read_text())
        assert f"top-1 {report['top1']:.1%}" in r.output
    r = _run("fuse", out / "spatial", out / "temporal", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    assert all(m in r.output for m in ("spatial", "temporal", "average", "weighted", "svm"))
    assert (tmp_path / "fusion.csv").exists()

    video = next((synth_dataset.videos_dir / synth_dataset.classes[0]).iterdir())
    r = _run("predict", video, "--spatial", out / "spatial", "--temporal", out / "temporal",
             "--top-k", "2", "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    learned = json.loads((out / "spatial" / "fusion_model.json").read_text())
    assert (result["fusion"], result["split"]) == (learned["splits"]["1"]["best"], 1)
    top = result["top"]
    assert [set(d) for d in top] == [{"label", "score"}] * 2
    assert {d["label"] for d in top} <= set(synth_dataset.classes)

    r = _run("export", out / "temporal", tmp_path / "t.onnx")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "t.onnx").stat().st_size > 100_000


def test_bad_input_is_one_red_line(trained, tmp_path):
    raw, out = trained
    _one_red_line(_run("train", tmp_path / "nowhere", "--stream", "spatial", "--out",
                       tmp_path / "r"), "nowhere")
    copy = tmp_path / "raw"
    shutil.copytree(raw, copy)
    (copy / "hmdb51_train_split_1_rawframes.txt").write_text("")
    _one_red_line(_run("train", copy, "--stream", "spatial", "--out", tmp_path / "r"),
                  "training list is empty", "hmdb51_train_split_1_rawframes.txt")
    assert not (tmp_path / "r").exists()
    shutil.copy(raw / "hmdb51_train_split_1_rawframes.txt", copy)
    (copy / "hmdb51_val_split_1_rawframes.txt").unlink()
    _one_red_line(_run("train", copy, "--stream", "spatial", "--out", tmp_path / "r"),
                  "hmdb51_val_split_1_rawframes.txt")
    _one_red_line(_run("train", raw, "--stream", "spatial", "--out", out / "spatial",
                       "--weights", "none", "--arch", "resnet18", "--crop", "32"), "--resume")
    _one_red_line(_run("train", raw, "--stream", "spatial", "--out", out / "spatial",
                       "--resume"), "another arch")
    _one_red_line(_run("train", raw, "--stream", "depth", "--out", tmp_path / "r"), "stream")
    (tmp_path / "a_file").write_text("")
    _one_red_line(_run("train", raw, "--stream", "spatial", "--out", tmp_path / "a_file",
                       "--weights", "none", "--arch", "resnet18", "--crop", "32"), "a_file")
    _one_red_line(_run("train", raw, "--stream", "spatial", "--out", tmp_path / "r",
                       "--device", "tpu"), "device")
    _one_red_line(_run("evaluate", out / "spatial", "--crops", "3"), "--crops")
    _one_red_line(_run("evaluate", tmp_path), "checkpoint")
    _one_red_line(_run("fuse", out / "temporal", out / "spatial"), "spatial run then")
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"\x00" * 64)
    _one_red_line(_run("predict", broken, "--spatial", out / "spatial", "--temporal",
                       out / "temporal"), "cannot decode", "broken.avi")
    _one_red_line(_run("export", tmp_path, tmp_path / "x.onnx"), "run.json")


def test_group_accuracy():
    classes = ["appearance_a", "appearance_b", "motion_a", "motion_b"]
    labels = np.array([0, 1, 2, 3, 3])
    scores = np.eye(4)[[0, 0, 2, 3, 2]]
    acc = group_accuracy(scores, labels, classes)
    assert acc == {"appearance": 0.5, "motion": 2 / 3, "overall": 0.6}


@pytest.mark.slow
def test_demo_pipeline_on_a_tiny_dataset(tmp_path):
    from twostream.demo import DemoConfig, run_demo
    from twostream.fusion import fuse_split

    lines: list[str] = []
    cfg = DemoConfig(classes=4, clips_per_class=4, width=48, height=32, frames=10, crop=32,
                     epochs=1, batch_size=4)
    result = run_demo(tmp_path, cfg, echo=lines.append)
    text = "\n".join(lines)
    assert "TV-L1" in text and "appearance" in text and "predict" in text
    # The printed/saved table is the group accuracy of the fused scores on split 1.
    fused = fuse_split(tmp_path / "spatial", tmp_path / "temporal", 1)
    classes = json.loads((tmp_path / "spatial" / "run.json").read_text())["classes"]
    for method in ("spatial", "temporal", "average", "svm"):
        expected = group_accuracy(fused["scores"][method], fused["labels"], classes)
        assert result["table"][method] == pytest.approx(expected)
    saved = json.loads((tmp_path / "demo.json").read_text())
    assert saved["prediction"]["true"] in classes
    assert saved["prediction"]["top"][0]["label"] in classes
