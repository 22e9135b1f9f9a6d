"""The run folder: the one place that names its files and reads a run back.

``twostream train`` writes ``run.json``, ``checkpoint_split{k}.pt``, ``metrics.csv`` and
``curves.png``; ``twostream evaluate`` adds ``scores_split{k}.npz``,
``train_scores_split{k}.npz``, ``eval_split{k}.json``, ``confusion_split{k}.png`` and
``eval_summary.json``; ``twostream fuse`` adds ``fusion_model.json`` to the spatial run (and
``fusion.csv``/``fusion.json`` unless ``--out`` sends them elsewhere). Each is written
atomically (:mod:`twostream.atomic`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from twostream.atomic import write_text_atomic
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
    "RunRecord",
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


@dataclass
class RunRecord:
    """``run.json``: what a training run is, written by ``twostream train`` and read by every
    command that uses the run. The one reader and writer of the file.

    Args:
        stream: ``"spatial"`` or ``"temporal"``.
        classes: the class names, in label order.
        arch: the network (``resnet50``, ...).
        crop: side of the square crop, in px.
        new_length: flow pairs per temporal stack (L).
        bound: flow was quantised from ``±bound`` px.
        in_chans: input channels of the network (3, or 2 L).
        drop_rate: dropout before the classifier.
        rawframes: the rawframes folder trained on (absolute).
        extract_settings: how those rawframes were extracted (``ExtractSettings.record``), or
            ``"unknown"`` for rawframes made by other tools.
        train_config: the training options of the whole run, in run folders written before
            each split kept its own (``train_configs``); read, never written any more.
        train_configs: each split's own training options (a plain dict per split, keyed
            ``"1"``, ``"2"``, ``"3"``): what ``train --resume --split k`` continues with.
        extra: keys this version does not know, kept as read so a rewrite loses nothing.

    Only ``stream`` and ``classes`` are required; a key left ``None`` is absent from the file
    (runs from older versions lack some). Keys are written in the order above, as
    ``json.dumps(..., indent=2)``, the format every existing run folder has.
    """

    stream: str
    classes: list[str]
    arch: str | None = None
    crop: int | None = None
    new_length: int | None = None
    bound: float | None = None
    in_chans: int | None = None
    drop_rate: float | None = None
    rawframes: str | None = None
    extract_settings: dict[str, Any] | str | None = None
    train_config: dict[str, Any] | None = None
    train_configs: dict[str, dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def train_settings(self, split: int | None = None) -> dict[str, Any] | None:
        """The training options split ``split`` was trained with (``train --resume`` continues
        with them); without ``split``, or for a split run.json keeps none of its own, the whole
        run's from before splits kept their own (``None`` in runs from before run.json kept
        any: each checkpoint has its split's)."""
        if split is not None and self.train_configs and str(split) in self.train_configs:
            return self.train_configs[str(split)]
        return self.train_config

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``run.json``, keys in the file's order."""
        known = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                 if f.name != "extra" and getattr(self, f.name) is not None}
        ordered = ("stream", "arch", "crop", "new_length", "bound", "in_chans", "drop_rate",
                   "classes", "rawframes", "extract_settings", "train_config", "train_configs")
        return {**{k: known[k] for k in ordered if k in known}, **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in names},
                   extra={k: v for k, v in data.items() if k not in names})

    def write(self, run_dir: str | Path) -> Path:
        """Write ``run_dir/run.json`` atomically; returns its path."""
        path = Path(run_dir) / RUN_JSON
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2))
        return path


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


def load_run(run_dir: str | Path) -> RunRecord:
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
    return RunRecord.from_dict(run)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by ``twostream train``; one clear error if it is damaged."""
    ckpt = read_torch_file(path, "checkpoint")
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise DatasetError(f"checkpoint {path} holds no model: not written by `twostream train`")
    return ckpt


def load_stream_model(
    run_dir: str | Path, split: int, device: torch.device | str = "cpu"
) -> tuple[nn.Module, RunRecord]:
    """The trained network of ``split`` in eval mode, and the run's ``run.json``."""
    run = load_run(run_dir)
    path = checkpoint_path(run_dir, split)
    if not path.is_file():
        raise DatasetError(f"no checkpoint for split {split} in {run_dir} ({path.name})")
    ckpt = load_checkpoint(path)
    model = build_model(
        run.arch, in_chans=run.in_chans, num_classes=len(run.classes), weights="none",
        drop_rate=run.drop_rate or 0.0,
    )
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), run
