"""Late fusion of the spatial and temporal streams' class scores.

Three methods, as in Simonyan & Zisserman (2014):

* ``average`` - the mean of the two softmax score vectors;
* ``weighted`` - ``w * spatial + (1 - w) * temporal`` with ``w`` chosen on the *training*
  clips' scores (grid 0, 0.05, ..., 1; ties go to the weight nearest 0.5), never on test clips;
* ``svm`` - a linear SVM (scikit-learn ``LinearSVC``) on the two score vectors, each
  L2-normalised, stacked, and trained on the training clips.

Inputs are what ``twostream evaluate`` writes into each run folder: ``scores_split{k}.npz``
(test clips) and ``train_scores_split{k}.npz`` (training clips). What is learned from the
training clips (the weight, the SVM, and which of the three fusions did best on the training
clips out of fold) is saved in ``SPATIAL_RUN/fusion_model.json`` with the SHA-256 of the two
checkpoints it was learned from; ``twostream predict`` fuses with it, and refuses it once either
run holds another checkpoint. Both runs must share the class
list and the clips of each split; otherwise :class:`FusionError` says which.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from twostream.atomic import atomic_files, write_text_atomic
from twostream.errors import TwostreamError, writing
from twostream.evaluate import classification_report, load_scores
from twostream.runs import (
    FUSION_JSON,
    FUSION_TABLE,
    RunRecord,
    checkpoint_path,
    file_sha256,
    fusion_model_path,
    load_run,
    scores_path,
)

__all__ = [
    "FUSIONS",
    "METHODS",
    "FusionError",
    "apply_fusion",
    "apply_svm",
    "average_fusion",
    "fit_svm",
    "format_table",
    "fuse_runs",
    "fuse_split",
    "learn_fusion",
    "load_fusion",
    "load_run_pair",
    "svm_fusion",
    "weighted_fusion",
]

METHODS = ("spatial", "temporal", "average", "weighted", "svm")
FUSIONS = ("average", "weighted", "svm")

logger = logging.getLogger(__name__)


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


def fit_svm(
    train_spatial: np.ndarray,
    train_temporal: np.ndarray,
    train_labels: np.ndarray,
    *,
    C: float = 1.0,
    seed: int = 0,
) -> dict[str, list]:
    """A linear SVM on the stacked L2-normalised training-clip scores, as plain lists
    (``coef``, ``intercept``, ``classes``) that JSON can hold and :func:`apply_svm` applies.

    Raises:
        FusionError: fewer than two classes among the training clips.
    """
    from sklearn.svm import LinearSVC

    if len(np.unique(train_labels)) < 2:
        raise FusionError("the SVM needs training clips of at least two classes")
    svm = LinearSVC(C=C, random_state=seed, max_iter=10000)
    svm.fit(np.hstack([_l2(train_spatial), _l2(train_temporal)]), train_labels)
    return {"coef": svm.coef_.tolist(), "intercept": svm.intercept_.tolist(),
            "classes": svm.classes_.tolist()}


def apply_svm(svm: dict[str, list], spatial: np.ndarray, temporal: np.ndarray) -> np.ndarray:
    """Decision scores ``(N, C)`` of an SVM from :func:`fit_svm`; classes it never saw get
    ``-inf`` so they never win."""
    x = np.hstack([_l2(np.atleast_2d(spatial)), _l2(np.atleast_2d(temporal))])
    decision = x @ np.asarray(svm["coef"], dtype=np.float64).T + np.asarray(svm["intercept"])
    if decision.shape[1] == 1:  # binary problem: one hyperplane, as sklearn returns it
        decision = np.hstack([-decision, decision])
    scores = np.full((len(x), np.atleast_2d(spatial).shape[1]), -np.inf)
    scores[:, svm["classes"]] = decision
    return scores


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
    svm = fit_svm(train_spatial, train_temporal, train_labels, C=C, seed=seed)
    return apply_svm(svm, test_spatial, test_temporal)


def apply_fusion(
    method: str, spatial: np.ndarray, temporal: np.ndarray, learned: dict[str, Any] | None
) -> np.ndarray:
    """Fuse score vectors with ``method`` (average, weighted or svm) and what
    :func:`learn_fusion` learned (needed for weighted and svm)."""
    if method == "average":
        return average_fusion(spatial, temporal)
    if method not in FUSIONS:
        raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {method!r}")
    if learned is None:
        raise FusionError(f"{method} fusion needs what `twostream fuse` learns from the "
                          "training clips: run `twostream fuse` on these runs first")
    if method == "weighted":
        w = learned["spatial_weight"]
        return w * spatial + (1 - w) * temporal
    return apply_svm(learned["svm"], spatial, temporal)


def learn_fusion(
    train_spatial: np.ndarray,
    train_temporal: np.ndarray,
    train_labels: np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the weight and the SVM on the training clips, and pick the best fusion.

    The choice compares each method's accuracy on the training clips *out of fold*
    (stratified ``folds``-fold: the weight and the SVM are refitted without the clips they are
    scored on; an SVM scored on its own training data would always look best). Ties go to the
    simpler method (average, then weighted, then svm). With fewer than two training clips in
    some class no folds can be made, and ``best`` is average.

    Returns ``{"spatial_weight", "svm", "train_accuracy": {method: acc}, "best", "folds"}``.
    """
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(train_labels)
    learned: dict[str, Any] = {
        "spatial_weight": weighted_fusion(train_spatial, train_temporal, labels),
        "svm": fit_svm(train_spatial, train_temporal, labels, seed=seed),
    }
    counts = np.unique(labels, return_counts=True)[1]
    k = min(folds, int(counts.min())) if len(counts) else 0
    if k < 2:
        return {**learned, "train_accuracy": {}, "best": "average", "folds": 0}
    pred = {m: np.zeros(len(labels), dtype=np.int64) for m in FUSIONS}
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for fit, held in cv.split(train_spatial, labels):
        s, t = train_spatial[held], train_temporal[held]
        fold = {"spatial_weight": weighted_fusion(train_spatial[fit], train_temporal[fit],
                                                  labels[fit]),
                "svm": fit_svm(train_spatial[fit], train_temporal[fit], labels[fit], seed=seed)}
        for m in FUSIONS:
            pred[m][held] = apply_fusion(m, s, t, fold).argmax(1)
    acc = {m: float((pred[m] == labels).mean()) for m in FUSIONS}
    best = max(FUSIONS, key=lambda m: (acc[m], -FUSIONS.index(m)))
    return {**learned, "train_accuracy": acc, "best": best, "folds": k}


def load_fusion(
    spatial_run: str | Path, temporal_run: str | Path, split: int
) -> dict[str, Any] | None:
    """What ``twostream fuse`` learned for ``split`` of this pair of runs, or None when it was
    never run on them (or was last run with another temporal run).

    Raises:
        FusionError: it was learned from other checkpoints than the runs hold now (one was
            trained on since), or by an older twostream that did not record them.
    """
    path = fusion_model_path(spatial_run)
    redo = f"rerun `twostream fuse {spatial_run} {temporal_run} --split {split}`"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FusionError(f"{path} is unreadable or not valid JSON ({exc}): {redo}, or pass "
                          "--fusion average") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("splits"), dict):
        raise FusionError(f"{path} is damaged (no learned splits): {redo}, or pass "
                          "--fusion average")
    learned = saved["splits"].get(str(split))
    if learned is None:
        return None
    if not isinstance(learned, dict):
        raise FusionError(f"{path} is damaged (split {split}): {redo}")
    recorded = learned.get("checkpoints")
    if not isinstance(recorded, dict):
        raise FusionError(f"{path} records no checkpoints (an older twostream wrote it): {redo}")
    # Learned with another temporal run: stale unless that run only moved here (the same
    # checkpoints, so the same scores).
    other = saved.get("temporal_run") != str(Path(temporal_run).resolve())
    now = _checkpoint_hashes(spatial_run, temporal_run, split)
    for stream, run in (("spatial", spatial_run), ("temporal", temporal_run)):
        if recorded.get(stream) != now[stream]:
            if other:
                raise FusionError(f"{path} was learned with the temporal run "
                                  f"{saved.get('temporal_run')}, not {run}: {redo}")
            raise FusionError(f"{path} was learned from another {checkpoint_path(run, split).name} "
                              f"than the one now in {run} (trained on since?): {redo}")
    return learned


def _checkpoint_hashes(spatial_run: str | Path, temporal_run: str | Path,
                       split: int) -> dict[str, str | None]:
    """The SHA-256 of each run's checkpoint of ``split`` (None when it is gone): what a learned
    fusion is valid for."""
    return {stream: file_sha256(path) if path.is_file() else None
            for stream, path in (("spatial", checkpoint_path(spatial_run, split)),
                                 ("temporal", checkpoint_path(temporal_run, split)))}


def _save_fusion(spatial_run: str | Path, temporal_run: str | Path,
                 learned: dict[int, dict[str, Any]]) -> Path:
    """Write (merge) the learned fusion of each split into ``SPATIAL_RUN/fusion_model.json``."""
    path = fusion_model_path(spatial_run)
    temporal = str(Path(temporal_run).resolve())
    saved = {"temporal_run": temporal, "splits": {}}
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):  # none yet, or damaged: start anew
        old = None
    if isinstance(old, dict) and old.get("temporal_run") == temporal and isinstance(
            old.get("splits"), dict):
        saved["splits"] = old["splits"]
    saved["splits"].update({str(k): v for k, v in learned.items()})
    write_text_atomic(path, json.dumps(saved, indent=2))
    return path


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
    """Scores of each stream and each fusion on the test clips of ``split``, and what was
    learned from the training clips (``learned``, see :func:`learn_fusion`)."""
    s_test, t_test = _aligned(load_scores(spatial_run, split), load_scores(temporal_run, split),
                              "test")
    s_train, t_train = _aligned(load_scores(spatial_run, split, "train"),
                                load_scores(temporal_run, split, "train"), "training")
    learned = learn_fusion(s_train["scores"], t_train["scores"], s_train["label"])
    scores = {
        "spatial": s_test["scores"],
        "temporal": t_test["scores"],
        **{m: apply_fusion(m, s_test["scores"], t_test["scores"], learned) for m in FUSIONS},
    }
    return {"names": s_test["name"], "labels": s_test["label"], "scores": scores,
            "spatial_weight": learned["spatial_weight"], "learned": learned}


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
) -> tuple[RunRecord, RunRecord]:
    """The ``run.json`` of a spatial and a temporal run that can be fused.

    Raises:
        FusionError: the runs are not spatial then temporal, or have different class lists.
    """
    s_run, t_run = load_run(spatial_run), load_run(temporal_run)
    if (s_run.stream, t_run.stream) != ("spatial", "temporal"):
        raise FusionError(
            f"expected a spatial run then a temporal run, got {s_run.stream} "
            f"({spatial_run}) and {t_run.stream} ({temporal_run})"
        )
    if s_run.classes != t_run.classes:
        raise FusionError(f"the runs were trained on different class lists: {spatial_run} has "
                          f"{len(s_run.classes)} classes, {temporal_run} "
                          f"{len(t_run.classes)} (or a different order)")
    return s_run, t_run


def fuse_runs(
    spatial_run: str | Path,
    temporal_run: str | Path,
    *,
    splits: Sequence[int] | None = None,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Fuse two evaluated runs on each split and write ``fusion.csv`` and ``fusion.json``.

    ``out`` defaults to the spatial run's folder. What was learned from the training clips
    goes to ``SPATIAL_RUN/fusion_model.json`` whatever ``out`` is: ``twostream predict`` reads
    it there. Each file is written atomically (:mod:`twostream.atomic`).

    Returns ``{"splits", "results", "table"}`` where ``results[str(k)][method]`` is a
    classification report (see :func:`twostream.evaluate.classification_report`).

    Raises:
        FusionError: different streams, class lists, splits or clips.
    """
    s_run, _ = load_run_pair(spatial_run, temporal_run)
    if splits is None:
        splits = [k for k in (1, 2, 3)
                  if scores_path(spatial_run, k).is_file()
                  and scores_path(temporal_run, k).is_file()]
        if not splits:
            raise FusionError("no split was evaluated in both runs: run `twostream evaluate` "
                              "on each run first")
    classes = s_run.classes
    results: dict[str, Any] = {}
    learned: dict[int, dict[str, Any]] = {}
    for k in splits:
        fused = fuse_split(spatial_run, temporal_run, k)
        # The checkpoints the scores came from (fuse_split checked that they are the current
        # ones): predict refuses this fusion for any others.
        learned[k] = {**fused["learned"],
                      "checkpoints": _checkpoint_hashes(spatial_run, temporal_run, k)}
        reports = {m: classification_report(fused["scores"][m], fused["labels"], classes)
                   for m in METHODS}
        for r in reports.values():
            r.pop("confusion")
        results[str(k)] = {**reports, "spatial_weight": fused["spatial_weight"],
                           "best_on_training_clips": fused["learned"]["best"]}
    with writing(spatial_run):
        _save_fusion(spatial_run, temporal_run, learned)
    table = {"splits": list(splits), "results": results}
    text = format_table(table)
    out_dir = Path(out) if out is not None else Path(spatial_run)
    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        # One set: a failure while writing either leaves both previous files in place.
        with atomic_files([out_dir / FUSION_JSON, out_dir / FUSION_TABLE]) as (js, cs):
            js.write_text(json.dumps(table, indent=2), encoding="utf-8")
            cs.write_text(_csv_text(table), encoding="utf-8", newline="")
    return {**table, "table": text}


def _csv_text(table: dict[str, Any]) -> str:
    """``fusion.csv``: one row per split and method."""
    f = io.StringIO()
    writer = csv.writer(f)
    writer.writerow(["split", "method", "top1", "top5", "mean_class_accuracy"])
    for k in table["splits"]:
        for m in METHODS:
            r = table["results"][str(k)][m]
            writer.writerow([k, m, r["top1"], r["top5"], r["mean_class_accuracy"]])
    return f.getvalue()
