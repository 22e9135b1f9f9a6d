"""Late fusion of the spatial and temporal streams' class scores.

Three methods, as in Simonyan & Zisserman (2014):

* ``average`` - the mean of the two softmax score vectors;
* ``weighted`` - ``w * spatial + (1 - w) * temporal`` with ``w`` chosen on the *training*
  clips' scores (grid 0, 0.05, ..., 1; ties go to the weight nearest 0.5), never on test clips;
* ``svm`` - a linear SVM (scikit-learn ``LinearSVC``) on the two score vectors, each
  L2-normalised, stacked, and trained on the training clips.

Inputs are what ``twostream evaluate`` writes into each run folder: ``scores_split{k}.npz``
(test clips) and ``train_scores_split{k}.npz`` (training clips). Both runs must share the class
list and the clips of each split; otherwise :class:`FusionError` says which.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from twostream.errors import TwostreamError
from twostream.evaluate import classification_report, load_scores
from twostream.train import load_run

__all__ = [
    "METHODS",
    "FusionError",
    "average_fusion",
    "format_table",
    "fuse_runs",
    "fuse_split",
    "load_run_pair",
    "svm_fusion",
    "weighted_fusion",
]

METHODS = ("spatial", "temporal", "average", "weighted", "svm")


class FusionError(TwostreamError):
    """The two runs cannot be fused (different classes, splits or clips)."""


def average_fusion(spatial: np.ndarray, temporal: np.ndarray) -> np.ndarray:
    """Mean of the two streams' softmax scores, ``(N, C)``."""
    return (spatial + temporal) / 2.0


def weighted_fusion(
    train_spatial: np.ndarray,
    train_temporal: np.ndarray,
    train_labels: np.ndarray,
    *,
    steps: int = 21,
) -> float:
    """The weight ``w`` of the spatial stream that maximises training-clip accuracy.

    Examples:
        >>> s = np.array([[0.9, 0.1], [0.6, 0.4]]); t = np.array([[0.4, 0.6], [0.1, 0.9]])
        >>> weighted_fusion(s, t, np.array([0, 1]))
        0.5
    """
    grid = np.linspace(0.0, 1.0, steps)
    acc = [
        float(((w * train_spatial + (1 - w) * train_temporal).argmax(1) == train_labels).mean())
        for w in grid
    ]
    best = max(acc)
    candidates = [w for w, a in zip(grid, acc, strict=True) if a == best]
    return float(min(candidates, key=lambda w: (abs(w - 0.5), w)))


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def svm_fusion(
    train_spatial: np.ndarray,
    train_temporal: np.ndarray,
    train_labels: np.ndarray,
    test_spatial: np.ndarray,
    test_temporal: np.ndarray,
    *,
    C: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Decision scores ``(N_test, C)`` of a linear SVM trained on the stacked L2-normalised
    training-clip scores.

    Raises:
        FusionError: fewer than two classes among the training clips.
    """
    from sklearn.svm import LinearSVC

    n_classes = test_spatial.shape[1]
    present = np.unique(train_labels)
    if len(present) < 2:
        raise FusionError("the SVM needs training clips of at least two classes")
    svm = LinearSVC(C=C, random_state=seed, max_iter=10000)
    svm.fit(np.hstack([_l2(train_spatial), _l2(train_temporal)]), train_labels)
    decision = svm.decision_function(np.hstack([_l2(test_spatial), _l2(test_temporal)]))
    if decision.ndim == 1:  # binary problem: sklearn returns one column
        decision = np.stack([-decision, decision], axis=1)
    scores = np.full((len(test_spatial), n_classes), -np.inf)
    scores[:, svm.classes_] = decision  # classes absent from training never win
    return scores


def _aligned(a: dict[str, np.ndarray], b: dict[str, np.ndarray], what: str):
    """Order ``b`` like ``a`` by clip name; the clip sets and labels must be identical."""
    if set(a["name"].tolist()) != set(b["name"].tolist()):
        only_a = sorted(set(a["name"].tolist()) - set(b["name"].tolist()))
        only_b = sorted(set(b["name"].tolist()) - set(a["name"].tolist()))
        raise FusionError(
            f"the runs scored different {what} clips (trained on different splits or lists?): "
            f"{len(only_a)} only in the spatial run (e.g. {only_a[:1]}), "
            f"{len(only_b)} only in the temporal run (e.g. {only_b[:1]})"
        )
    order = {n: i for i, n in enumerate(b["name"].tolist())}
    idx = np.array([order[n] for n in a["name"].tolist()], dtype=np.int64)
    b = {k: v[idx] for k, v in b.items()}
    if not np.array_equal(a["label"], b["label"]):
        raise FusionError(f"the runs give different labels to the same {what} clips")
    return a, b


def fuse_split(spatial_run: str | Path, temporal_run: str | Path, split: int) -> dict[str, Any]:
    """Scores of each stream and each fusion on the test clips of ``split``, with reports."""
    s_test, t_test = _aligned(load_scores(spatial_run, split), load_scores(temporal_run, split),
                              "test")
    s_train, t_train = _aligned(load_scores(spatial_run, split, "train"),
                                load_scores(temporal_run, split, "train"), "training")
    w = weighted_fusion(s_train["scores"], t_train["scores"], s_train["label"])
    scores = {
        "spatial": s_test["scores"],
        "temporal": t_test["scores"],
        "average": average_fusion(s_test["scores"], t_test["scores"]),
        "weighted": w * s_test["scores"] + (1 - w) * t_test["scores"],
        "svm": svm_fusion(s_train["scores"], t_train["scores"], s_train["label"],
                          s_test["scores"], t_test["scores"]),
    }
    return {"names": s_test["name"], "labels": s_test["label"], "scores": scores,
            "spatial_weight": w}


def format_table(table: dict[str, Any]) -> str:
    """A plain-text table: one row per method, top-1 and mean class accuracy per split."""
    splits = table["splits"]
    head = ["method"] + [f"top-1 s{k}" for k in splits] + [f"mca s{k}" for k in splits]
    if len(splits) > 1:
        head += ["top-1 mean", "mca mean"]
    lines = []
    for method in METHODS:
        rows = [table["results"][str(k)][method] for k in splits]
        cells = [f"{r['top1']:.1%}" for r in rows] + [f"{r['mean_class_accuracy']:.1%}"
                                                      for r in rows]
        if len(splits) > 1:
            cells += [f"{np.mean([r['top1'] for r in rows]):.1%}",
                      f"{np.mean([r['mean_class_accuracy'] for r in rows]):.1%}"]
        name = method
        if method == "weighted":
            name += " (w=" + "/".join(
                f"{table['results'][str(k)]['spatial_weight']:.2f}" for k in splits) + ")"
        lines.append([name] + cells)
    widths = [max(len(r[i]) for r in [head] + lines) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in [head] + lines)


def load_run_pair(
    spatial_run: str | Path, temporal_run: str | Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``run.json`` of a spatial and a temporal run that can be fused.

    Raises:
        FusionError: the runs are not spatial then temporal, or have different class lists.
    """
    s_run, t_run = load_run(spatial_run), load_run(temporal_run)
    if (s_run["stream"], t_run["stream"]) != ("spatial", "temporal"):
        raise FusionError(
            f"expected a spatial run then a temporal run, got {s_run['stream']} "
            f"({spatial_run}) and {t_run['stream']} ({temporal_run})"
        )
    if s_run["classes"] != t_run["classes"]:
        raise FusionError(f"the runs were trained on different class lists: {spatial_run} has "
                          f"{len(s_run['classes'])} classes, {temporal_run} "
                          f"{len(t_run['classes'])} (or a different order)")
    return s_run, t_run


def fuse_runs(
    spatial_run: str | Path,
    temporal_run: str | Path,
    *,
    splits: Sequence[int] | None = None,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Fuse two evaluated runs on each split and write ``fusion.csv`` and ``fusion.json``.

    ``out`` defaults to the spatial run's folder. Returns ``{"splits", "results", "table"}``
    where ``results[str(k)][method]`` is a classification report (see
    :func:`twostream.evaluate.classification_report`).

    Raises:
        FusionError: different streams, class lists, splits or clips.
    """
    s_run, _ = load_run_pair(spatial_run, temporal_run)
    if splits is None:
        splits = [k for k in (1, 2, 3)
                  if (Path(spatial_run) / f"scores_split{k}.npz").is_file()
                  and (Path(temporal_run) / f"scores_split{k}.npz").is_file()]
        if not splits:
            raise FusionError("no split was evaluated in both runs: run `twostream evaluate` "
                              "on each run first")
    classes = s_run["classes"]
    results: dict[str, Any] = {}
    for k in splits:
        fused = fuse_split(spatial_run, temporal_run, k)
        reports = {m: classification_report(fused["scores"][m], fused["labels"], classes)
                   for m in METHODS}
        for r in reports.values():
            r.pop("confusion")
        results[str(k)] = {**reports, "spatial_weight": fused["spatial_weight"]}
    table = {"splits": list(splits), "results": results}
    text = format_table(table)
    out_dir = Path(out) if out is not None else Path(spatial_run)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "fusion.json").write_text(json.dumps(table, indent=2), encoding="utf-8")
    with (out_dir / "fusion.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["split", "method", "top1", "top5", "mean_class_accuracy"])
        for k in splits:
            for m in METHODS:
                r = results[str(k)][m]
                writer.writerow([k, m, r["top1"], r["top5"], r["mean_class_accuracy"]])
    return {**table, "table": text}
