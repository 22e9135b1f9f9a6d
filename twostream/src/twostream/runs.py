"""The run folder: the one place that names its files and reads a run back.

``twostream train`` writes ``run.json``, ``checkpoint_split{k}.pt``, ``metrics.csv`` and
``curves.png``; ``twostream evaluate`` adds ``scores_split{k}.npz``,
``train_scores_split{k}.npz``, ``eval_split{k}.json``, ``confusion_split{k}.png`` and
``eval_summary.json``; ``twostream fuse`` adds ``fusion_model.json`` to the spatial run (and
``fusion.csv``/``fusion.json`` unless ``--out`` sends them elsewhere). Each is written
atomically (:mod:`twostream.atomic`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from twostream.errors import DatasetError
from twostream.models import build_model, read_torch_file

__all__ = [
    "CURVES",
    "EVAL_SUMMARY",
    "FUSION_JSON",
    "FUSION_MODEL",
    "FUSION_TABLE",
    "METRICS",
    "RUN_JSON",
    "checkpoint_path",
    "confusion_path",
    "eval_path",
    "file_sha256",
    "fusion_model_path",
    "load_checkpoint",
    "load_run",
    "load_stream_model",
    "scores_path",
    "trained_splits",
]

RUN_JSON = "run.json"
EVAL_SUMMARY = "eval_summary.json"
FUSION_MODEL = "fusion_model.json"
FUSION_TABLE, FUSION_JSON = "fusion.csv", "fusion.json"  # fuse's results (or in --out)
METRICS, CURVES = "metrics.csv", "curves.png"  # train's epochs
RUN_KEYS = ("stream", "classes")  # what every reader of run.json needs


def checkpoint_path(run_dir: str | Path, split: int) -> Path:
    return Path(run_dir) / f"checkpoint_split{split}.pt"


def scores_path(run_dir: str | Path, split: int, subset: str = "test") -> Path:
    """``scores_split{k}.npz`` (test clips) or, for ``subset="train"``,
    ``train_scores_split{k}.npz``."""
    prefix = "scores" if subset == "test" else "train_scores"
    return Path(run_dir) / f"{prefix}_split{split}.npz"


def eval_path(run_dir: str | Path, split: int) -> Path:
    return Path(run_dir) / f"eval_split{split}.json"


def confusion_path(run_dir: str | Path, split: int) -> Path:
    return Path(run_dir) / f"confusion_split{split}.png"


def fusion_model_path(spatial_run: str | Path) -> Path:
    return Path(spatial_run) / FUSION_MODEL


def trained_splits(run_dir: str | Path) -> list[int]:
    """The splits (of 1, 2, 3) that have a checkpoint in ``run_dir``, in order."""
    return [k for k in (1, 2, 3) if checkpoint_path(run_dir, k).is_file()]


def file_sha256(path: str | Path) -> str:
    """The first 16 hex digits of ``path``'s SHA-256: names a checkpoint's exact contents."""
    path = Path(path)
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime key the cache
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:16]


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The ``run.json`` of a training run (stream, arch, crop, L, bound, classes, rawframes)."""
    path = Path(run_dir) / RUN_JSON
    if not path.is_file():
        raise DatasetError(f"not a training run (no run.json): {run_dir}")
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"{path} is not valid JSON ({exc}); restore it or train again "
                           "into a new --out") from None
    absent = [k for k in RUN_KEYS if not isinstance(run, dict) or k not in run]
    if absent:
        raise DatasetError(f"{path} lacks {', '.join(absent)}: not written by `twostream "
                           "train`, or damaged; restore it or train again into a new --out")
    return run


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by ``twostream train``; one clear error if it is damaged."""
    ckpt = read_torch_file(path, "checkpoint")
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise DatasetError(f"checkpoint {path} holds no model: not written by `twostream train`")
    return ckpt


def load_stream_model(
    run_dir: str | Path, split: int, device: torch.device | str = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """The trained network of ``split`` in eval mode, and the run's ``run.json``."""
    run = load_run(run_dir)
    path = checkpoint_path(run_dir, split)
    if not path.is_file():
        raise DatasetError(f"no checkpoint for split {split} in {run_dir} ({path.name})")
    ckpt = load_checkpoint(path)
    model = build_model(
        run["arch"], in_chans=run["in_chans"], num_classes=len(run["classes"]), weights="none",
        drop_rate=run.get("drop_rate", 0.0),
    )
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), run
