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
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from twostream.datasets import (
    Clip,
    DatasetError,
    RawframeDataset,
    annotation_path,
    collate_skip,
    read_annotations,
)
from twostream.train import evaluate, load_stream_model, resolve_device, trained_splits

__all__ = [
    "classification_report",
    "evaluate_run",
    "load_scores",
    "plot_confusion",
    "score_clips",
]

logger = logging.getLogger(__name__)


def score_clips(
    model: nn.Module,
    root: str | Path,
    clips: Sequence[Clip],
    run: dict[str, Any],
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
        root, clips, stream=run["stream"], train=False, crop=run["crop"],
        new_length=run["new_length"], bound=run["bound"], segments=segments, crops=crops,
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


def plot_confusion(confusion: np.ndarray, classes: Sequence[str], out: Path, title: str) -> None:
    """Save a row-normalised confusion matrix as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = np.asarray(confusion, dtype=np.float64)
    c = c / np.maximum(c.sum(1, keepdims=True), 1)
    size = max(5.5, 0.22 * len(classes) + 3)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(c, vmin=0, vmax=1, cmap="viridis")
    ticks = np.arange(len(classes))
    fontsize = 8 if len(classes) <= 20 else 5
    ax.set_xticks(ticks, classes, rotation=90, fontsize=fontsize)
    ax.set_yticks(ticks, classes, fontsize=fontsize)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def load_scores(run_dir: str | Path, split: int, subset: str = "test") -> dict[str, np.ndarray]:
    """Scores written by :func:`evaluate_run`: ``name``, ``label``, ``scores``."""
    prefix = "scores" if subset == "test" else "train_scores"
    path = Path(run_dir) / f"{prefix}_split{split}.npz"
    if not path.is_file():
        raise DatasetError(
            f"no {subset} scores for split {split} in {run_dir} "
            f"(run `twostream evaluate {run_dir}` first)"
        )
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in ("name", "label", "scores")}


def _save_scores(path: Path, scored: dict[str, Any]) -> None:
    np.savez_compressed(
        path,
        name=np.array(scored["names"], dtype=str),
        label=np.asarray(scored["labels"], dtype=np.int64),
        scores=np.asarray(scored["scores"], dtype=np.float32),
    )


def evaluate_run(
    run_dir: str | Path,
    *,
    splits: Sequence[int] | None = None,
    crops: int = 1,
    segments: int = 25,
    train_segments: int = 5,
    score_train: bool = True,
    rawframes: str | Path | None = None,
    device: str = "auto",
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
    if crops not in (1, 10):
        raise ValueError(f"crops must be 1 or 10, got {crops}")
    if splits is None:
        splits = trained_splits(run_dir)
        if not splits:
            raise DatasetError(f"no checkpoint_split{{1,2,3}}.pt in {run_dir}: train first")
    dev = resolve_device(device)
    reports: dict[int, dict[str, Any]] = {}
    for split in splits:
        model, run = load_stream_model(run_dir, split, dev)
        root = Path(rawframes) if rawframes is not None else Path(run["rawframes"])
        test_clips = read_annotations(annotation_path(root, split, "val"), run["classes"])
        common = dict(device=dev, batch_size=batch_size, workers=workers, progress=progress)
        scored = score_clips(model, root, test_clips, run, segments=segments, crops=crops,
                             **common)
        _save_scores(run_dir / f"scores_split{split}.npz", scored)
        if score_train:
            train_clips = read_annotations(annotation_path(root, split, "train"), run["classes"])
            _save_scores(
                run_dir / f"train_scores_split{split}.npz",
                score_clips(model, root, train_clips, run, segments=train_segments, crops=1,
                            **common),
            )
        report = classification_report(scored["scores"], scored["labels"], run["classes"])
        report.update(split=split, stream=run["stream"], crops=crops, segments=segments,
                      skipped=scored["skipped"])
        (run_dir / f"eval_split{split}.json").write_text(json.dumps(report, indent=2),
                                                         encoding="utf-8")
        plot_confusion(np.array(report["confusion"]), run["classes"],
                       run_dir / f"confusion_split{split}.png",
                       f"{run['stream']} stream, split {split}\ntop-1 {report['top1']:.1%}")
        if scored["skipped"]:
            logger.warning("split %d: %d test clip(s) skipped", split, len(scored["skipped"]))
        reports[split] = report
    summary = {
        m: {"mean": float(np.mean([r[m] for r in reports.values()])),
            "std": float(np.std([r[m] for r in reports.values()]))}
        for m in ("top1", "top5", "mean_class_accuracy")
    }
    if len(reports) > 1:
        (run_dir / "eval_summary.json").write_text(
            json.dumps({"splits": sorted(reports), **summary}, indent=2), encoding="utf-8"
        )
    return {"splits": reports, "summary": summary}
