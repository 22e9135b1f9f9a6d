"""Evaluate a trained stream with Simonyan & Zisserman's test protocol.

For every test clip of a split: ``segments`` (25) evenly spaced frames (spatial) or flow
stacks (temporal), the centre crop or 10 crops (4 corners + centre, and their flips); the
clip's class scores are the mean softmax over those views.

Writes into the run folder, per evaluated split ``k``:

* ``scores_split{k}.npz`` - ``name``, ``label``, ``scores`` (clips x classes) of the test clips;
* ``train_scores_split{k}.npz`` - the same for the *training* clips (``train_segments`` views,
  centre crop), which ``twostream fuse`` needs to choose fusion weights and to fit its SVM
  without looking at test clips;
* ``eval_split{k}.json`` - top-1, top-5, mean class accuracy, per-class accuracy, and the clips
  skipped because their frames could not be read;
* ``confusion_split{k}.png`` - the row-normalised confusion matrix.

With several splits, ``eval_summary.json`` holds the mean and standard deviation over splits.
Every file is written atomically (:mod:`twostream.atomic`): an interrupted evaluation leaves
the previous results whole.
"""

from __future__ import annotations

import json
import logging
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from twostream.atomic import atomic_files, write_text_atomic
from twostream.datasets import (
    Clip,
    RawframeDataset,
    annotation_path,
    collate_skip,
    read_annotations,
    read_class_list,
)
from twostream.device import DEFAULT_DEVICE, resolve_device
from twostream.errors import DatasetError, TwostreamError, writing
from twostream.options import check_test_options
from twostream.runs import (
    EVAL_SUMMARY,
    RunRecord,
    checkpoint_path,
    confusion_path,
    eval_path,
    file_sha256,
    load_run,
    load_stream_model,
    scores_path,
    trained_splits,
)
from twostream.train import evaluate

__all__ = [
    "classification_report",
    "confusion_figure",
    "evaluate_run",
    "load_evaluation",
    "load_scores",
    "plot_confusion",
    "score_clips",
]

logger = logging.getLogger(__name__)


def score_clips(
    model: nn.Module,
    root: str | Path,
    clips: Sequence[Clip],
    run: RunRecord,
    *,
    segments: int = 25,
    crops: int = 1,
    device: torch.device | str = "cpu",
    batch_size: int = 4,
    workers: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Class scores of ``clips`` (mean softmax over their test views).

    Returns ``names`` (list), ``labels`` (N,), ``scores`` (N, C) and ``skipped`` (list of
    ``[name, reason]``) for clips whose frames were missing or unreadable.
    """
    ds = RawframeDataset(
        root, clips, stream=run.stream, train=False, crop=run.crop,
        new_length=run.new_length, bound=run.bound, segments=segments, crops=crops,
    )
    loader = DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=collate_skip)
    res = evaluate(model, nn.CrossEntropyLoss(), loader, torch.device(device), progress=progress)
    scored = set(res["indices"].tolist())
    skipped = [[c, r] for c, r in ds.skipped]
    skipped += [[ds.clips[i].name, "unreadable frame"] for i in range(len(ds)) if i not in scored]
    return {
        "names": [ds.clips[i].name for i in res["indices"]],
        "labels": res["labels"],
        "scores": res["scores"],
        "skipped": skipped,
    }


def classification_report(
    scores: np.ndarray, labels: np.ndarray, classes: Sequence[str]
) -> dict[str, Any]:
    """Top-1, top-5, mean class accuracy, per-class accuracy and the confusion matrix.

    Examples:
        >>> r = classification_report(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]),
        ...                           np.array([0, 1, 1]), ["a", "b"])
        >>> round(r["top1"], 3), r["mean_class_accuracy"], r["per_class"]
        (0.667, 0.75, {'a': 1.0, 'b': 0.5})
    """
    n_classes = len(classes)
    pred = scores.argmax(1)
    k = min(5, n_classes)
    topk = np.argsort(-scores, axis=1)[:, :k]
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    support = confusion.sum(1)
    per_class = {
        c: float(confusion[i, i] / support[i]) for i, c in enumerate(classes) if support[i] > 0
    }
    return {
        "clips": int(len(labels)),
        "top1": float((pred == labels).mean()) if len(labels) else float("nan"),
        "top5": float((topk == labels[:, None]).any(1).mean()) if len(labels) else float("nan"),
        "mean_class_accuracy": float(np.mean(list(per_class.values()))) if per_class else 0.0,
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def confusion_figure(confusion: np.ndarray, classes: Sequence[str], title: str):
    """The row-normalised confusion matrix; up to 20 classes, each cell also shows its count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(confusion, dtype=np.int64)
    c = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = max(5.5, 0.22 * len(classes) + 3)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(c, vmin=0, vmax=1, cmap="viridis")
    ticks = np.arange(len(classes))
    fontsize = 8 if len(classes) <= 20 else 5
    ax.set_xticks(ticks, classes, rotation=90, fontsize=fontsize)
    ax.set_yticks(ticks, classes, fontsize=fontsize)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if len(classes) <= 20:  # beyond that the numbers no longer fit their cells
        for (i, j), n in np.ndenumerate(counts):
            if n:
                ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                        color="black" if c[i, j] > 0.6 else "white")
    bar = fig.colorbar(im, ax=ax, fraction=0.046)
    bar.set_label("fraction of the true class's test clips")
    fig.tight_layout()
    return fig


def plot_confusion(confusion: np.ndarray, classes: Sequence[str], out: Path, title: str) -> None:
    """Save :func:`confusion_figure` as a PNG."""
    import matplotlib.pyplot as plt

    fig = confusion_figure(confusion, classes, title)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def load_evaluation(run_dir: str | Path, split: int) -> dict[str, Any]:
    """The ``evaluation`` record of ``eval_split{split}.json``, checked against the checkpoint.

    Raises:
        DatasetError: no evaluation of ``split``, one from an older twostream, or one of
            another checkpoint than the current (the run was trained on since).
    """
    run_dir = Path(run_dir)
    path = eval_path(run_dir, split)
    redo = f"run `twostream evaluate {run_dir} --split {split}`"
    try:
        record = json.loads(path.read_text(encoding="utf-8")).get("evaluation")
    except FileNotFoundError:
        raise DatasetError(f"split {split} of {run_dir} was never evaluated: {redo}") from None
    except (OSError, ValueError, AttributeError) as exc:
        raise DatasetError(f"{path} is unreadable ({exc}): {redo}") from None
    if not isinstance(record, dict) or "sha256" not in record:
        raise DatasetError(f"{path} records no checkpoint (an older twostream wrote it): {redo}")
    ckpt = run_dir / record["checkpoint"]
    if not ckpt.is_file() or file_sha256(ckpt) != record["sha256"]:
        raise DatasetError(f"the results in {path} were made from another {ckpt.name} than the "
                           f"one now in {run_dir} (trained on since?): {redo}")
    return record


def load_scores(run_dir: str | Path, split: int, subset: str = "test") -> dict[str, np.ndarray]:
    """Scores written by :func:`evaluate_run`: ``name``, ``label``, ``scores``.

    Only scores of the run's current checkpoint, from the same evaluation as
    ``eval_split{split}.json``, are returned (see :func:`load_evaluation`).

    Raises:
        DatasetError: the scores are missing, stale or from another evaluation.
    """
    path = scores_path(run_dir, split, subset)
    if not path.is_file():
        raise DatasetError(
            f"no {subset} scores for split {split} in {run_dir} "
            f"(run `twostream evaluate {run_dir}` first)"
        )
    record = load_evaluation(run_dir, split)
    try:
        with np.load(path, allow_pickle=False) as z:
            scores = {k: z[k] for k in ("name", "label", "scores")}
            meta = json.loads(str(z["evaluation"])) if "evaluation" in z else {}
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path} is unreadable (truncated or damaged: {exc}): run "
                           f"`twostream evaluate {run_dir} --split {split}` again") from None
    if meta.get("id") != record["id"]:
        raise DatasetError(
            f"{path.name} and eval_split{split}.json in {run_dir} come from different "
            f"evaluations (one was interrupted?): run `twostream evaluate {run_dir} "
            f"--split {split}`"
        )
    return scores


def _save_scores(path: Path, scored: dict[str, Any], evaluation: dict[str, Any]) -> None:
    with open(path, "wb") as f:
        np.savez_compressed(
            f,
            name=np.array(scored["names"], dtype=str),
            label=np.asarray(scored["labels"], dtype=np.int64),
            scores=np.asarray(scored["scores"], dtype=np.float32),
            evaluation=np.array(json.dumps(evaluation)),
        )


def _rawframes_root(run_dir: Path, run: RunRecord, rawframes: str | Path | None) -> Path:
    """The rawframes folder to score, checked against the run's class list."""
    if rawframes is None:
        root = Path(run.rawframes)
        if not root.is_dir():
            raise DatasetError(f"the rawframes folder {run_dir} was trained on is gone: {root}; "
                               "if it moved, pass --rawframes NEW_PLACE")
    else:
        root = Path(rawframes)
    classes = read_class_list(root)
    if classes != run.classes:
        diff = sorted(set(classes) ^ set(run.classes))
        what = f"e.g. {diff[0]!r} is in only one" if diff else "same names in another order"
        raise DatasetError(
            f"{root / 'classes.txt'} does not match the classes {run_dir} was trained on "
            f"({len(classes)} classes there, {len(run.classes)} in the run, {what}); pass the "
            "rawframes folder the run was trained on"
        )
    return root


def _write_result_set(run_dir: Path, split: int, scored: dict[str, Any],
                      train_scored: dict[str, Any] | None, report: dict[str, Any],
                      run: RunRecord) -> None:
    """Write one split's results aside, then rename them into place, ``eval_split{k}.json``
    last. Every file carries the evaluation's id, so a set left half-renamed by a crash is
    refused by :func:`load_scores` instead of being mixed with older results."""
    evaluation = report["evaluation"]
    view = "centre crop" if evaluation["crops"] == 1 else "10 crops"
    title = (f"{run.stream} stream, split {split}: {evaluation['segments']} views x {view}"
             f"\ntop-1 {report['top1']:.1%}")
    writers = {
        scores_path(run_dir, split).name: lambda p: _save_scores(p, scored, evaluation),
        confusion_path(run_dir, split).name: lambda p: plot_confusion(
            np.array(report["confusion"]), run.classes, p, title),
        eval_path(run_dir, split).name: lambda p: p.write_text(json.dumps(report, indent=2),
                                                               encoding="utf-8"),
    }
    if train_scored is not None:
        writers = {scores_path(run_dir, split, "train").name:
                   lambda p: _save_scores(p, train_scored, evaluation), **writers}
    # eval_split{k}.json is renamed last: it names the set.
    with atomic_files([run_dir / name for name in writers]) as tmps:
        for write, tmp in zip(writers.values(), tmps, strict=True):
            write(tmp)


def evaluate_run(
    run_dir: str | Path,
    *,
    splits: Sequence[int] | None = None,
    crops: int = 1,
    segments: int = 25,
    train_segments: int = 5,
    score_train: bool = True,
    rawframes: str | Path | None = None,
    device: str = DEFAULT_DEVICE,
    batch_size: int = 4,
    workers: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate every trained split of a run (or ``splits``) and write the files listed above.

    Returns ``{"splits": {k: report}, "summary": {metric: {"mean", "std"}}}``.

    Raises:
        DatasetError: not a run folder, no checkpoint, or missing rawframes / lists.
    """
    run_dir = Path(run_dir)
    check_test_options(crops=crops, segments=segments, train_segments=train_segments,
                       batch_size=batch_size, workers=workers)
    run = load_run(run_dir)
    if splits is None:
        splits = trained_splits(run_dir)
        if not splits:
            raise DatasetError(f"no checkpoint_split{{1,2,3}}.pt in {run_dir}: train first")
    for split in splits:
        if split not in (1, 2, 3):
            raise TwostreamError(f"--split must be 1, 2, 3 or all, got {split}")
        if not checkpoint_path(run_dir, split).is_file():
            raise DatasetError(f"no checkpoint for split {split} in {run_dir} "
                               f"(trained: {trained_splits(run_dir) or 'none'})")
    root = _rawframes_root(run_dir, run, rawframes)
    dev = resolve_device(device)
    reports: dict[int, dict[str, Any]] = {}
    for split in splits:
        ckpt = checkpoint_path(run_dir, split)
        sha256 = file_sha256(ckpt)  # before loading: the hash of what is scored
        model, run = load_stream_model(run_dir, split, dev)
        test_clips = read_annotations(annotation_path(root, split, "val"), run.classes)
        common = dict(device=dev, batch_size=batch_size, workers=workers, progress=progress)
        val = annotation_path(root, split, "val")
        if not test_clips:
            raise DatasetError(f"split {split}: the test list {val} is empty: nothing to "
                               "evaluate")
        scored = score_clips(model, root, test_clips, run, segments=segments, crops=crops,
                             **common)
        if not scored["names"]:
            name, reason = scored["skipped"][0]
            raise DatasetError(f"split {split}: none of the {len(test_clips)} test clips of {val} "
                               f"could be read (e.g. {name}: {reason}); extract them again")
        train_scored = None
        if score_train:
            train_clips = read_annotations(annotation_path(root, split, "train"), run.classes)
            train_scored = score_clips(model, root, train_clips, run, segments=train_segments,
                                       crops=1, **common)
        evaluation = {"id": uuid.uuid4().hex, "checkpoint": ckpt.name, "sha256": sha256,
                      "crops": crops, "segments": segments,
                      "train_segments": train_segments if score_train else None,
                      "rawframes": str(root.resolve())}
        report = classification_report(scored["scores"], scored["labels"], run.classes)
        report.update(split=split, stream=run.stream, crops=crops, segments=segments,
                      skipped=scored["skipped"], evaluation=evaluation)
        with writing(run_dir):
            _write_result_set(run_dir, split, scored, train_scored, report, run)
        if scored["skipped"]:
            logger.warning("split %d: %d test clip(s) skipped", split, len(scored["skipped"]))
        reports[split] = report
    summary = {
        m: {"mean": float(np.mean([r[m] for r in reports.values()])),
            "std": float(np.std([r[m] for r in reports.values()]))}
        for m in ("top1", "top5", "mean_class_accuracy")
    }
    if len(reports) > 1:
        with writing(run_dir):
            write_text_atomic(run_dir / EVAL_SUMMARY,
                              json.dumps({"splits": sorted(reports), **summary}, indent=2))
    return {"splits": reports, "summary": summary}
