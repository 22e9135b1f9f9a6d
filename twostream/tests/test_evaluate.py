"""Evaluation: the report's arithmetic, and the files written for a trained run."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import make_rawframes  # noqa: E402

from twostream.errors import DatasetError, TwostreamError  # noqa: E402
from twostream.evaluate import (  # noqa: E402
    classification_report,
    evaluate_run,
    load_scores,
)
from twostream.runs import file_sha256  # noqa: E402
from twostream.train import TrainConfig, main  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    root = make_rawframes(tmp_path_factory.mktemp("raw"), clips_per_class=3, frames=8, size=40)
    out = tmp_path_factory.mktemp("run")
    main(TrainConfig(rawframes=str(root), stream="temporal", out=str(out), split="all",
                     arch="resnet18", weights="none", epochs=1, batch_size=4, crop=32,
                     new_length=3, workers=0, device="cpu", val_segments=0, progress=False))
    return root, out


def test_classification_report_arithmetic():
    scores = np.array([
        [0.5, 0.3, 0.2, 0.0],  # label 0, right
        [0.1, 0.2, 0.3, 0.4],  # label 0, wrong, label is 4th best
        [0.2, 0.5, 0.3, 0.0],  # label 1, right
        [0.1, 0.6, 0.3, 0.0],  # label 2, wrong, 2nd best
    ])
    r = classification_report(scores, np.array([0, 0, 1, 2]), ["a", "b", "c", "d"])
    assert r["top1"] == 0.5 and r["top5"] == 1.0  # top-5 caps at the number of classes
    assert r["per_class"] == {"a": 0.5, "b": 1.0, "c": 0.0}  # no clip of "d": not averaged
    assert r["mean_class_accuracy"] == pytest.approx(0.5)
    assert r["confusion"][0] == [1, 0, 0, 1]


def test_evaluate_run_writes_scores_reports_and_summary(trained):
    root, out = trained
    result = evaluate_run(out, crops=10, segments=3, train_segments=2, device="cpu",
                          progress=False)
    assert sorted(result["splits"]) == [1, 2, 3]
    n_test = len((root / "hmdb51_val_split_1_rawframes.txt").read_text().splitlines())
    n_train = len((root / "hmdb51_train_split_1_rawframes.txt").read_text().splitlines())
    test, train = load_scores(out, 1), load_scores(out, 1, "train")
    assert test["scores"].shape == (n_test, 6) and len(train["name"]) == n_train
    np.testing.assert_allclose(test["scores"].sum(1), 1.0, rtol=1e-5)
    assert test["name"][0].startswith("appearance_blue/")
    report = json.loads((out / "eval_split2.json").read_text())
    assert report["crops"] == 10 and report["clips"] == n_test
    evaluation = report["evaluation"]
    assert (evaluation["crops"], evaluation["segments"], evaluation["train_segments"]) == (
        10, 3, 2)
    assert evaluation["sha256"] == file_sha256(out / "checkpoint_split2.pt")
    assert not list(out.glob(".*tmp*"))
    assert set(report) >= {"top1", "top5", "mean_class_accuracy", "per_class", "skipped"}
    assert report["top1"] == pytest.approx(
        float((load_scores(out, 2)["scores"].argmax(1) == load_scores(out, 2)["label"]).mean())
    )
    summary = json.loads((out / "eval_summary.json").read_text())
    tops = [result["splits"][k]["top1"] for k in (1, 2, 3)]
    assert summary["top1"]["mean"] == pytest.approx(np.mean(tops))
    assert summary["top1"]["std"] == pytest.approx(np.std(tops))
    assert (out / "confusion_split3.png").stat().st_size > 1000


def test_unreadable_test_clips_are_skipped_and_listed(trained, tmp_path):
    root, out = trained
    raw, run = tmp_path / "raw", tmp_path / "run"
    shutil.copytree(root, raw)
    shutil.copytree(out, run)
    first = (raw / "hmdb51_val_split_1_rawframes.txt").read_text().split()[0]
    for f in (raw / "rawframes" / first).glob("flow_*.jpg"):
        f.write_bytes(b"\xff\xd8 truncated")
    result = evaluate_run(run, splits=[1], segments=2, score_train=False, rawframes=raw,
                          device="cpu", progress=False)
    assert result["splits"][1]["skipped"] == [[first, "unreadable frame"]]
    assert first not in load_scores(run, 1)["name"].tolist()


def test_no_readable_test_clip_is_one_clear_error(trained, tmp_path):
    # Once a traceback (issue 23 item 5); the result set of the run stays as it was.
    root, out = trained
    raw, run = tmp_path / "raw", tmp_path / "run"
    shutil.copytree(root, raw)
    shutil.copytree(out, run)
    before = sorted(p.name for p in run.iterdir())
    lines = (raw / "hmdb51_val_split_1_rawframes.txt").read_text().splitlines()
    for line in lines:
        for f in (raw / "rawframes" / line.split()[0]).glob("flow_*.jpg"):
            f.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DatasetError, match=rf"split 1: none of the {len(lines)} test clips of "
                       r".*hmdb51_val_split_1_rawframes.txt could be read \(e.g. .*: unreadable "
                       r"frame\); extract them again"):
        evaluate_run(run, splits=[1], segments=2, score_train=False, rawframes=raw,
                     device="cpu", progress=False)
    (raw / "hmdb51_val_split_1_rawframes.txt").write_text("")
    with pytest.raises(DatasetError, match="the test list .* is empty: nothing to evaluate"):
        evaluate_run(run, splits=[1], segments=2, score_train=False, rawframes=raw,
                     device="cpu", progress=False)
    assert sorted(p.name for p in run.iterdir()) == before


def test_truncated_scores_are_one_clear_error_in_fuse(evaluated, tmp_path):
    from twostream.fusion import fuse_runs

    path = evaluated / "scores_split1.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetError, match=r"scores_split1.npz is unreadable \(truncated"):
        load_scores(evaluated, 1)
    spatial = tmp_path / "spatial"  # the same scores posing as the spatial stream's
    shutil.copytree(evaluated, spatial)
    run = json.loads((spatial / "run.json").read_text())
    (spatial / "run.json").write_text(json.dumps({**run, "stream": "spatial"}))
    with pytest.raises(TwostreamError, match="scores_split1.npz is unreadable"):
        fuse_runs(spatial, evaluated, splits=[1], out=tmp_path / "fusion")


def test_not_a_run(tmp_path):
    with pytest.raises(DatasetError, match="no run.json"):
        evaluate_run(tmp_path, device="cpu")
    (tmp_path / "run.json").write_text('{"stream": "spatial", "classes": ["a", "b"]}')
    with pytest.raises(DatasetError, match="checkpoint"):
        evaluate_run(tmp_path, device="cpu")


def test_a_crash_half_way_leaves_the_previous_result_set_whole(trained, tmp_path, monkeypatch):
    from twostream import evaluate as evaluate_mod

    root, out = trained
    run = tmp_path / "run"
    shutil.copytree(out, run)
    evaluate_run(run, splits=[1], segments=2, train_segments=1, device="cpu", progress=False)
    before = {p.name: p.read_bytes() for p in run.iterdir() if "split1" in p.name}

    def crash(*args, **kwargs):
        raise RuntimeError("killed while plotting")

    monkeypatch.setattr(evaluate_mod, "plot_confusion", crash)
    with pytest.raises(RuntimeError, match="killed"):
        evaluate_run(run, splits=[1], crops=10, segments=3, device="cpu", progress=False)
    assert {p.name: p.read_bytes() for p in run.iterdir() if "split1" in p.name} == before
    assert not list(run.glob(".*tmp*"))
    assert json.loads((run / "eval_split1.json").read_text())["evaluation"]["crops"] == 1
    load_scores(run, 1, "train")  # still one consistent set


@pytest.fixture()
def evaluated(trained, tmp_path):
    """A copy of the trained run with splits 1 and 2 evaluated (so with eval_summary.json)."""
    run = tmp_path / "run"
    shutil.copytree(trained[1], run)
    evaluate_run(run, splits=[1, 2], segments=2, score_train=False, device="cpu",
                 progress=False)
    return run


def test_a_full_disk_mid_write_leaves_the_previous_results_whole(evaluated, monkeypatch):
    from twostream import evaluate as evaluate_mod

    run = evaluated
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    save_scores = evaluate_mod._save_scores

    def disk_full(path, *args):
        save_scores(path, *args)
        with open(path, "r+b") as f:  # half of it reached the disk
            f.truncate(path.stat().st_size // 2)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(evaluate_mod, "_save_scores", disk_full)
    with pytest.raises(TwostreamError, match=f"cannot write {run}: No space left"):
        evaluate_run(run, splits=[1, 2], segments=3, score_train=False, device="cpu",
                     progress=False)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert load_scores(run, 1)["scores"].shape[1] == 6


def test_an_interrupted_summary_keeps_the_previous_one(evaluated, monkeypatch):
    from twostream import atomic

    run = evaluated
    summary = (run / "eval_summary.json").read_bytes()
    replace = os.replace

    def interrupted(src, dst):
        if Path(dst).name == "eval_summary.json":
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        evaluate_run(run, splits=[1, 3], segments=2, score_train=False, device="cpu",
                     progress=False)
    assert (run / "eval_summary.json").read_bytes() == summary
    assert json.loads(summary)["splits"] == [1, 2]
    assert not list(run.glob(".*tmp*"))
    load_scores(run, 3)  # the split evaluated before the interruption is kept


@pytest.mark.parametrize("n_classes, counts_shown", [(4, True), (21, False)])
def test_confusion_figure_shows_counts_and_a_labelled_colour_bar(n_classes, counts_shown):
    from twostream.evaluate import confusion_figure

    confusion = np.eye(n_classes, dtype=np.int64) * 3
    confusion[0, 1] = 2
    fig = confusion_figure(confusion, [f"c{i}" for i in range(n_classes)],
                           "spatial stream, split 1: 25 views x 10 crops")
    ax, bar = fig.axes
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == (sorted(["2"] + ["3"] * n_classes) if counts_shown else [])
    assert bar.get_ylabel() == "fraction of the true class's test clips"
    assert "10 crops" in ax.get_title()
