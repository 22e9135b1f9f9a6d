"""Late fusion: methods on known scores, and runs that cannot be fused."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from twostream.errors import TwostreamError
from twostream.evaluate import load_scores
from twostream.fusion import (
    FusionError,
    apply_fusion,
    apply_svm,
    average_fusion,
    fit_svm,
    fuse_runs,
    fuse_split,
    learn_fusion,
    load_fusion,
    svm_fusion,
    weighted_fusion,
)
from twostream.runs import file_sha256

CLASSES = ["appearance_a", "appearance_b", "motion_a", "motion_b"]


def _scores(labels, informative, rng, strength=3.0):
    """Softmax scores that point at the label only for classes in ``informative``."""
    logits = rng.normal(size=(len(labels), len(CLASSES)))
    for i, y in enumerate(labels):
        if y in informative:
            logits[i, y] += strength
        else:  # confused within its group, as a stream blind to that cue would be
            logits[i, list(informative)] -= strength
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _fake_run(path, stream, names, labels, scores, train, classes=CLASSES):
    """A run folder as `twostream evaluate` leaves it, with a stand-in checkpoint."""
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"stream": stream, "classes": classes}))
    (path / "checkpoint_split1.pt").write_bytes(f"{stream} weights".encode())
    evaluation = {"id": f"eval-{stream}", "checkpoint": "checkpoint_split1.pt",
                  "sha256": file_sha256(path / "checkpoint_split1.pt")}
    (path / "eval_split1.json").write_text(json.dumps({"evaluation": evaluation}))
    meta = np.array(json.dumps(evaluation))
    np.savez(path / "scores_split1.npz", name=np.array(names), label=labels, scores=scores,
             evaluation=meta)
    np.savez(path / "train_scores_split1.npz", name=np.array(train[0]), label=train[1],
             scores=train[2], evaluation=meta)


@pytest.fixture()
def runs(tmp_path):
    rng = np.random.default_rng(0)
    y_test, y_train = np.repeat(np.arange(4), 10), np.repeat(np.arange(4), 20)
    names = [f"c{i}" for i in range(40)]
    train_names = [f"t{i}" for i in range(80)]
    s = _scores(y_test, {0, 1}, rng), _scores(y_train, {0, 1}, rng)
    t = _scores(y_test, {2, 3}, rng), _scores(y_train, {2, 3}, rng)
    perm = rng.permutation(40)  # the temporal run lists its clips in another order
    _fake_run(tmp_path / "s", "spatial", names, y_test, s[0], (train_names, y_train, s[1]))
    _fake_run(tmp_path / "t", "temporal", [names[i] for i in perm], y_test[perm], t[0][perm],
              (train_names, y_train, t[1]))
    return tmp_path / "s", tmp_path / "t"


def test_average_and_weighted():
    s = np.array([[0.8, 0.2], [0.3, 0.7]])
    t = np.array([[0.1, 0.9], [0.9, 0.1]])
    np.testing.assert_allclose(average_fusion(s, t), [[0.45, 0.55], [0.6, 0.4]])
    # On training clips only the spatial stream is right: all the weight goes to it...
    assert weighted_fusion(s, t, np.array([0, 1])) >= 0.55
    # ...and only the temporal stream: the weight moves away from spatial.
    s2, t2 = np.array([[0.9, 0.1], [0.1, 0.9]]), np.array([[0.3, 0.7], [0.6, 0.4]])
    assert weighted_fusion(s2, t2, np.array([1, 0])) <= 0.45


@pytest.mark.slow
def test_svm_learns_which_stream_to_trust():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(4), 30)
    s, t = _scores(y, {0, 1}, rng), _scores(y, {2, 3}, rng)
    pred = svm_fusion(s[::2], t[::2], y[::2], s[1::2], t[1::2]).argmax(1)
    assert (pred == y[1::2]).mean() >= 0.9
    assert (s[1::2].argmax(1) == y[1::2]).mean() <= 0.75


def test_fuse_runs_table_and_files(runs, tmp_path):
    result = fuse_runs(*runs, out=tmp_path / "fusion")
    r = result["results"]["1"]
    assert r["spatial"]["per_class"]["appearance_a"] > 0.8
    assert r["temporal"]["per_class"]["motion_a"] > 0.8
    for method in ("average", "weighted", "svm"):
        assert r[method]["top1"] >= max(r["spatial"]["top1"], r["temporal"]["top1"]) - 0.05
    assert "svm" in result["table"] and "weighted (w=" in result["table"]
    assert (tmp_path / "fusion" / "fusion.csv").read_text().count("\n") == 1 + 5
    assert json.loads((tmp_path / "fusion" / "fusion.json").read_text())["splits"] == [1]


def test_runs_that_do_not_match_are_clear_errors(runs, tmp_path):
    s, t = runs
    with pytest.raises(FusionError, match="spatial run then a temporal run"):
        fuse_runs(t, s)
    rng = np.random.default_rng(0)
    y = np.arange(4)
    other = tmp_path / "other"
    _fake_run(other, "temporal", ["x0", "x1", "x2", "x3"], y, rng.random((4, 4)),
              (["t0"], y[:1], rng.random((1, 4))))
    with pytest.raises(FusionError, match="different test clips"):
        fuse_runs(s, other)
    diff = tmp_path / "diff"
    _fake_run(diff, "temporal", ["c0"], y[:1], rng.random((1, 3)), (["t0"], y[:1],
              rng.random((1, 3))), classes=CLASSES[:3])
    with pytest.raises(FusionError, match="class lists"):
        fuse_runs(s, diff)
    with pytest.raises(FusionError, match="evaluate"):
        fuse_runs(s, _empty(tmp_path))


def _empty(tmp_path):
    p = tmp_path / "empty"
    p.mkdir()
    (p / "run.json").write_text(json.dumps({"stream": "temporal", "classes": CLASSES}))
    return p


def test_several_splits_give_a_mean_column(runs, tmp_path):
    s, t = runs
    for run in (s, t):  # split 2 = split 1 reversed (same clips, so fusable)
        shutil.copy(run / "checkpoint_split1.pt", run / "checkpoint_split2.pt")
        report = json.loads((run / "eval_split1.json").read_text())
        report["evaluation"]["checkpoint"] = "checkpoint_split2.pt"
        (run / "eval_split2.json").write_text(json.dumps(report))
        for prefix in ("scores", "train_scores"):
            with np.load(run / f"{prefix}_split1.npz") as z:
                arrays = {k: z[k][::-1] for k in ("name", "label", "scores")}
                np.savez(run / f"{prefix}_split2.npz", **arrays,
                         evaluation=np.array(json.dumps(report["evaluation"])))
    result = fuse_runs(s, t, out=tmp_path)
    assert result["splits"] == [1, 2]
    header, *rows = result["table"].splitlines()
    assert header.split()[-4:] == ["top-1", "mean", "mca", "mean"]
    r1, r2 = (result["results"][k]["svm"]["top1"] for k in ("1", "2"))
    svm_row = next(r for r in rows if r.startswith("svm"))
    assert svm_row.split()[-2] == f"{(r1 + r2) / 2:.1%}"


def test_the_best_fusion_is_chosen_out_of_fold_on_training_clips():
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(4), 25)
    # Each stream knows half the classes: a fusion that learns which to trust beats averaging.
    s, t = _scores(y, {0, 1}, rng), _scores(y, {2, 3}, rng)
    learned = learn_fusion(s, t, y)
    acc = learned["train_accuracy"]
    assert learned["folds"] == 5 and set(acc) == {"average", "weighted", "svm"}
    assert learned["best"] == max(acc, key=acc.get) == "svm" and acc["svm"] > acc["average"]
    # Both streams always right: every fusion scores 100%, and the simplest wins the tie.
    right = [_scores(y, {0, 1, 2, 3}, rng, strength=10.0) for _ in range(2)]
    same = learn_fusion(*right, y)
    assert same["train_accuracy"] == {"average": 1.0, "weighted": 1.0, "svm": 1.0}
    assert same["best"] == "average"
    # Too few clips per class for folds: average, still with a weight and an SVM to offer.
    few = learn_fusion(s[::25], t[::25], y[::25])
    assert (few["best"], few["folds"]) == ("average", 0) and "svm" in few


def test_saved_fusion_reproduces_what_fuse_scored(runs, tmp_path):
    s_run, t_run = runs
    result = fuse_runs(s_run, t_run, out=tmp_path)
    learned = load_fusion(s_run, t_run, 1)
    saved = json.loads((s_run / "fusion_model.json").read_text())
    assert saved["temporal_run"] == str(t_run.resolve())
    assert learned["best"] == result["results"]["1"]["best_on_training_clips"]
    assert learned["spatial_weight"] == result["results"]["1"]["spatial_weight"]
    fused = fuse_split(s_run, t_run, 1)
    s, t = load_scores(s_run, 1), load_scores(t_run, 1)
    order = {n: i for i, n in enumerate(t["name"].tolist())}
    t_scores = t["scores"][[order[n] for n in s["name"].tolist()]]
    for method in ("average", "weighted", "svm"):
        np.testing.assert_allclose(apply_fusion(method, s["scores"], t_scores, learned),
                                   fused["scores"][method], rtol=1e-6)
    # The SVM saved as numbers is the SVM fuse fitted on the training clips.
    s_tr, t_tr = load_scores(s_run, 1, "train"), load_scores(t_run, 1, "train")
    np.testing.assert_allclose(
        apply_svm(learned["svm"], s["scores"], t_scores),
        svm_fusion(s_tr["scores"], t_tr["scores"], s_tr["label"], s["scores"], t_scores),
        rtol=1e-6)
    # Learned with another temporal run: refused as stale (issue 23 item 4); the same run
    # moved elsewhere (the same checkpoints) is the same fusion.
    with pytest.raises(FusionError, match=f"learned with the temporal run {t_run.resolve()}, "
                       f"not {tmp_path}: rerun `twostream fuse"):
        load_fusion(s_run, tmp_path, 1)
    moved = tmp_path / "moved"
    shutil.copytree(t_run, moved)
    assert load_fusion(s_run, moved, 1) == learned
    assert load_fusion(s_run, t_run, 2) is None


@pytest.mark.parametrize("text", ['{"temporal_run": ', "[]", '{"splits": {"1": 3}}', "\xff"])
def test_a_damaged_fusion_model_is_one_clear_error_and_fuse_rewrites_it(runs, tmp_path, text):
    s_run, t_run = tmp_path / "copy" / "s", tmp_path / "copy" / "t"
    shutil.copytree(runs[0], s_run)
    shutil.copytree(runs[1], t_run)
    (s_run / "fusion_model.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(FusionError, match="fusion_model.json is (unreadable|damaged)"):
        load_fusion(s_run, t_run, 1)
    fuse_runs(s_run, t_run, out=tmp_path)
    assert load_fusion(s_run, t_run, 1)["best"] in ("average", "weighted", "svm")


@pytest.mark.parametrize("damage, message", [
    ("spatial retrained", "another checkpoint_split1.pt than the one now in {s}"),
    ("temporal retrained", "another checkpoint_split1.pt than the one now in {t}"),
    ("older fuse", "records no checkpoints"),
])
def test_fusion_learned_from_other_checkpoints_is_refused(runs, tmp_path, damage, message):
    s_run, t_run = runs
    fuse_runs(s_run, t_run, out=tmp_path)
    saved = json.loads((s_run / "fusion_model.json").read_text())
    assert saved["splits"]["1"]["checkpoints"] == {
        "spatial": file_sha256(s_run / "checkpoint_split1.pt"),
        "temporal": file_sha256(t_run / "checkpoint_split1.pt")}
    if damage == "older fuse":
        del saved["splits"]["1"]["checkpoints"]
        (s_run / "fusion_model.json").write_text(json.dumps(saved))
    else:  # trained on after `fuse`: the weight and SVM were learned for other scores
        run = s_run if damage.startswith("spatial") else t_run
        (run / "checkpoint_split1.pt").write_bytes(b"weights after more epochs")
    with pytest.raises(FusionError, match=re.escape(message.format(s=s_run, t=t_run))) as err:
        load_fusion(s_run, t_run, 1)
    assert str(err.value).endswith(f"rerun `twostream fuse {s_run} {t_run} --split 1`")


def test_binary_svm_gives_one_column_per_class():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 20)
    s = np.eye(2)[y] * 0.6 + rng.random((40, 2)) * 0.4
    t = rng.random((40, 2))
    svm = fit_svm(s, t, y)
    scores = apply_svm(svm, s, t)
    assert scores.shape == (40, 2) and (scores.argmax(1) == y).mean() > 0.9
    with pytest.raises(FusionError, match="fuse"):
        apply_fusion("svm", s, t, None)


def _evaluation_of(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("damage, message", [
    ("retrained", "made from another checkpoint_split1.pt"),
    ("half-written set", "come from different evaluations"),
    ("older evaluate", "records no checkpoint"),
    ("never evaluated", "never evaluated"),
])
def test_stale_or_mixed_results_are_refused(runs, damage, message):
    s, t = runs
    if damage == "retrained":  # the checkpoint changed after the evaluation
        (t / "checkpoint_split1.pt").write_bytes(b"weights after more epochs")
    elif damage == "half-written set":  # a new train_scores beside the old eval json
        arrays = _evaluation_of(t / "train_scores_split1.npz")
        arrays["evaluation"] = np.array(json.dumps({"id": "a newer evaluation"}))
        np.savez(t / "train_scores_split1.npz", **arrays)
    elif damage == "older evaluate":
        (t / "eval_split1.json").write_text(json.dumps({"top1": 0.375}))
    else:
        (t / "eval_split1.json").unlink()
    with pytest.raises(TwostreamError, match=message) as err:
        fuse_runs(s, t, splits=[1])
    assert f"twostream evaluate {t}" in str(err.value)


def _previous_copies(s_run, out):
    """Stand-ins for the files of an earlier `fuse`, unlike what the next one writes."""
    files = {out / "fusion.csv": b"previous csv\n", out / "fusion.json": b'{"previous": 1}',
             s_run / "fusion_model.json": b'{"temporal_run": "elsewhere", "splits": {}}'}
    out.mkdir(exist_ok=True)
    for path, data in files.items():
        path.write_bytes(data)
    return files


def test_an_interrupted_fuse_keeps_the_previous_table(runs, tmp_path, monkeypatch):
    from twostream import fusion

    s_run, t_run = runs
    out = tmp_path / "fusion"
    previous = _previous_copies(s_run, out)

    def interrupted(table):  # fusion.json is written aside by then, not yet renamed
        assert [p.name for p in out.glob(".tmp-*fusion.json")]
        raise KeyboardInterrupt

    monkeypatch.setattr(fusion, "_csv_text", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fuse_runs(s_run, t_run, out=out)
    assert {p: p.read_bytes() for p in (out / "fusion.csv", out / "fusion.json")} == {
        p: d for p, d in previous.items() if p.parent == out}
    assert sorted(p.name for p in out.iterdir()) == ["fusion.csv", "fusion.json"]
    assert load_fusion(s_run, t_run, 1) is not None  # learned before the table was written


def test_a_full_disk_keeps_the_previous_fusion_model(runs, tmp_path, monkeypatch):
    from twostream import atomic

    s_run, t_run = runs
    out = tmp_path / "fusion"
    previous = _previous_copies(s_run, out)
    replace = os.replace

    def disk_full(src, dst):
        if Path(dst).name == "fusion_model.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", disk_full)
    with pytest.raises(TwostreamError, match=f"cannot write {s_run}: No space left"):
        fuse_runs(s_run, t_run, out=out)
    assert {p: p.read_bytes() for p in previous} == previous
    assert not list(s_run.glob(".*tmp*")) and not list(out.glob(".*tmp*"))
