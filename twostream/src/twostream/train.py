"""Train one stream (spatial or temporal) on one or all HMDB51 splits.

The loop reads top to bottom, in the style of torchvision's ``references/`` scripts:
:func:`train_one_epoch`, :func:`evaluate` and :func:`main`. The same code runs on one device
or, under ``torchrun``, as DistributedDataParallel (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``;
gloo on CPU, nccl on CUDA; each rank trains on its shard, rank 0 writes every file).

Run folder (``RUN_DIR``; :mod:`twostream.runs` names its files and reads them back; each is
written atomically, :mod:`twostream.atomic`, so a kill never leaves one truncated)::

    run.json                  stream, arch, crop, L, bound, class list, rawframes folder and
                              the extraction settings (from extract_report.json; predict
                              re-extracts new videos with them; "unknown" for rawframes made
                              by other tools)
    checkpoint_split{k}.pt    written after every epoch (model, optimizer, lr_scheduler, scaler,
                              epoch, RNG states, config as a plain dict)
    metrics.csv               one row per (split, epoch); epochs count from 1, as in the logs
                              and curves.png (the checkpoint's ``epoch`` is the 0-based index
                              of the last finished epoch, as in torchvision)
    curves.png                loss and accuracy per epoch, one line per split

Optimisation: SGD (momentum 0.9, weight decay 5e-4), cosine learning-rate decay stepped per
iteration, cross-entropy; on CUDA, mixed precision (:func:`twostream.device.amp_dtype`):
bfloat16 autocast where the GPU supports it, else float16 with a ``GradScaler``.

``--split all`` trains splits 1, 2, 3 in turn into the same folder (files carry the split).
Each split is its own run: ``run.json`` keeps each split's training settings
(``train_configs``), ``--resume`` continues each split with its own, and training another split
into the folder leaves the first split's record as it was.
Validation after each epoch uses a cheap protocol (``val_segments`` evenly spaced views per
test clip, centre crop); ``twostream evaluate`` applies the full 25-view protocol.

Determinism: a run killed and resumed (``resume=True``) ends, on CPU with a fixed seed, with
the same weights as an uninterrupted one: the checkpoint restores the optimizer, scheduler
and RNG states, and the data order and augmentation depend only on ``(seed, epoch)``.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from twostream.atomic import atomic_file
from twostream.datasets import (
    RawframeDataset,
    annotation_path,
    collate_skip,
    read_annotations,
    read_class_list,
    read_extract_settings,
)
from twostream.device import DEFAULT_DEVICE, amp_dtype, resolve_device
from twostream.errors import DatasetError, OptionError, TwostreamError, writing
from twostream.models import build_model
from twostream.options import parse_splits
from twostream.runs import (
    CURVES,
    METRICS,
    RUN_JSON,
    RunRecord,
    checkpoint_path,
    eval_path,
    load_checkpoint,
    load_run,
    trained_splits,
)

__all__ = [
    "METRIC_FIELDS",
    "TrainConfig",
    "curves_figure",
    "evaluate",
    "main",
    "resume_config",
    "resume_configs",
    "train_one_epoch",
]

logger = logging.getLogger(__name__)

MIN_CROP = 32
MAX_NEW_LENGTH = 64
CURVES_EVERY_S = 30.0  # curves.png is redrawn at most this often, and after the last epoch
METRIC_FIELDS = [
    "split", "epoch", "lr", "train_loss", "train_acc", "val_loss", "val_frame_acc",
    "val_video_acc", "skipped", "seconds",
]


@dataclass
class TrainConfig:
    """Everything a training run depends on; stored in each checkpoint as a plain dict."""

    rawframes: str
    stream: str
    out: str
    split: str = "1"  # "1", "2", "3" or "all"
    arch: str = "resnet50"
    weights: str | None = None
    epochs: int = 10
    batch_size: int = 32
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    drop_rate: float = 0.5
    workers: int = 2
    device: str = DEFAULT_DEVICE
    seed: int = 0
    crop: int = 224
    new_length: int = 10
    bound: float | None = None  # None: from RAWFRAMES_DIR/extract_report.json, else 20
    val_segments: int = 3
    flip: bool = True
    resume: bool = False
    progress: bool = True

    def splits(self) -> list[int]:
        return parse_splits(self.split)

    def check(self) -> None:
        """Raise :class:`TwostreamError` naming the first option out of its range."""
        self.splits()
        if self.stream not in ("spatial", "temporal"):
            raise OptionError(f"--stream must be spatial or temporal, got {self.stream!r}")
        for name, value in (("--lr", self.lr), ("--momentum", self.momentum),
                            ("--weight-decay", self.weight_decay), ("--dropout", self.drop_rate),
                            ("--bound", self.bound)):
            if value is not None and not math.isfinite(value):  # inf gave NaN weights
                raise OptionError(f"{name} must be a finite number, got {value}")
        limits = [
            ("--epochs", self.epochs, self.epochs >= 1, "at least 1"),
            ("--batch-size", self.batch_size, self.batch_size >= 1, "at least 1"),
            ("--lr", self.lr, self.lr > 0, "positive"),
            ("--momentum", self.momentum, 0 <= self.momentum < 1, "in [0, 1)"),
            ("--weight-decay", self.weight_decay, self.weight_decay >= 0, "0 or more"),
            # ResNets downsample 32x: below that the last blocks see less than one pixel.
            ("--crop", self.crop, self.crop >= MIN_CROP, f"at least {MIN_CROP}"),
            # 2 L input channels, and L flow images read per sample.
            ("--new-length", self.new_length, 1 <= self.new_length <= MAX_NEW_LENGTH,
             f"1-{MAX_NEW_LENGTH}"),
            ("--dropout", self.drop_rate, 0 <= self.drop_rate < 1, "in [0, 1)"),
            ("--workers", self.workers, self.workers >= 0, "0 or more"),
            ("--val-segments", self.val_segments, self.val_segments >= 0, "0 or more"),
        ]
        for name, value, ok, allowed in limits:
            if not ok:
                raise OptionError(f"{name} must be {allowed}, got {value}")


# --------------------------------------------------------------------------- distributed


@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_kind: str) -> _Dist:
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return _Dist()
    info = _Dist(
        int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    )
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return info


# --------------------------------------------------------------------------- loop


def train_one_epoch(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: DataLoader,
    device: torch.device,
    epoch: int,
    scaler: torch.amp.GradScaler | None = None,
    *,
    autocast_dtype: torch.dtype | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """One pass over ``loader``; the scheduler steps per iteration. Returns mean loss/accuracy.

    Mixed precision is on when ``autocast_dtype`` is given (bfloat16 needs no ``scaler``) or
    ``scaler`` is (float16, autocast's default dtype on CUDA)."""
    model.train()
    distributed = dist.is_available() and dist.is_initialized()
    sums = torch.zeros(3, dtype=torch.float64)  # loss * n, correct, n
    for batch in tqdm(loader, desc=f"epoch {epoch + 1}", disable=not progress, leave=False):
        if distributed:
            # Ranks must step together (DDP all-reduces gradients): if any rank's batch was
            # entirely unreadable, every rank skips this step.
            ok = torch.tensor([int(batch is not None)], device=device)
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
            if ok.item() == 0:
                continue
        elif batch is None:  # every clip of the batch was unreadable
            continue
        x, y = batch
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=autocast_dtype,
                            enabled=autocast_dtype is not None or scaler is not None):
            logits = model(x)
            loss = criterion(logits, y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        lr_scheduler.step()
        n = y.shape[0]
        sums += torch.tensor(
            [loss.item() * n, (logits.argmax(1) == y).sum().item(), n], dtype=torch.float64
        )
    if distributed:
        totals = sums.to(device)  # nccl reduces CUDA tensors only
        dist.all_reduce(totals)
        sums = totals.cpu()
    n = max(sums[2].item(), 1.0)
    return {"loss": sums[0].item() / n, "acc": sums[1].item() / n, "samples": int(sums[2].item())}


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    criterion: nn.Module,
    loader: DataLoader,
    device: torch.device,
    *,
    max_views: int = 64,
    progress: bool = False,
) -> dict[str, Any]:
    """Score test clips: each item holds V views; the clip score is their mean softmax.

    Returns ``loss`` and ``frame_acc`` over single views, ``video_acc`` over clips, and the
    per-clip ``scores`` (N, C), ``labels`` (N,) and dataset ``indices`` (N,) as numpy arrays.
    """
    model.eval()
    loss_sum, frame_correct, frame_n = 0.0, 0, 0
    scores, labels, indices = [], [], []
    for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        if batch is None:
            continue
        x, y, idx = batch
        b, v = x.shape[:2]
        flat = x.flatten(0, 1)
        chunks = [flat[i : i + max_views] for i in range(0, len(flat), max_views)]
        logits = torch.cat([model(c.to(device)).float() for c in chunks]).cpu()
        loss_sum += criterion(logits, y.repeat_interleave(v)).item() * b * v
        probs = logits.softmax(1).view(b, v, -1)
        frame_correct += (probs.argmax(-1) == y[:, None]).sum().item()
        frame_n += b * v
        scores.append(probs.mean(1).numpy())
        labels.append(y.numpy())
        indices.append(idx.numpy())
    if not scores:
        return {"loss": math.nan, "frame_acc": math.nan, "video_acc": math.nan,
                "scores": np.zeros((0, 0), np.float32), "labels": np.zeros(0, np.int64),
                "indices": np.zeros(0, np.int64)}
    s, y_all = np.concatenate(scores), np.concatenate(labels)
    return {
        "loss": loss_sum / frame_n,
        "frame_acc": frame_correct / frame_n,
        "video_acc": float((s.argmax(1) == y_all).mean()),
        "scores": s,
        "labels": y_all,
        "indices": np.concatenate(indices),
    }


# --------------------------------------------------------------------------- state


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
         n["cached_gaussian"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _reschedule(scheduler: torch.optim.lr_scheduler.CosineAnnealingLR, total_steps: int) -> None:
    """Stretch (or shrink) a cosine schedule to ``total_steps``, continuing from its step.

    The scheduler's update is recursive (each lr from the last), so the current lr is reset
    to the closed form of the new schedule; a finished 2-epoch run resumed with 3 epochs
    would otherwise train the extra epoch at lr 0.
    """
    scheduler.T_max = max(1, total_steps)
    step = scheduler.last_epoch
    for group, base in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, strict=True):
        group["lr"] = scheduler.eta_min + (base - scheduler.eta_min) * (
            1 + math.cos(math.pi * min(step, scheduler.T_max) / scheduler.T_max)) / 2
    scheduler._last_lr = [g["lr"] for g in scheduler.optimizer.param_groups]


def _save_atomic(obj: Any, path: Path) -> None:
    with atomic_file(path) as tmp:  # a kill mid-save never leaves a truncated checkpoint
        torch.save(obj, tmp)


def _append_metrics(path: Path, row: dict[str, Any]) -> None:
    """Append a row, first dropping rows of the same split from this epoch on (a resumed run
    repeats the epoch that was interrupted)."""
    rows = []
    if path.exists():
        with path.open(newline="") as f:
            rows = [
                r for r in csv.DictReader(f)
                if not (int(r["split"]) == row["split"] and int(r["epoch"]) >= row["epoch"])
            ]
    rows.append(row)
    with atomic_file(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def curves_figure(rows: list[dict[str, str]], title: str):
    """Loss and accuracy per epoch (rows of ``metrics.csv``), one line per split.

    Epochs count from 1 on integer ticks. The loss axis is logarithmic, so one early spike
    does not flatten the rest of the curve.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for split in sorted({r["split"] for r in rows}):
        rs = [r for r in rows if r["split"] == split]
        ep = [int(r["epoch"]) for r in rs]

        def col(name: str, rs: list[dict[str, str]] = rs) -> list[float]:
            return [float(r[name]) if r[name] not in ("", "nan") else math.nan for r in rs]

        ax_loss.plot(ep, col("train_loss"), "-o", label=f"train, split {split}")
        ax_acc.plot(ep, col("train_acc"), "-o", label=f"train, split {split}")
        if not all(math.isnan(v) for v in col("val_loss")):  # validation may be off
            ax_loss.plot(ep, col("val_loss"), "--o", label=f"test, split {split}")
            ax_acc.plot(ep, col("val_video_acc"), "--o", label=f"test (clip), split {split}")
    ax_loss.set(xlabel="epoch", ylabel="loss (log scale)", title="loss", yscale="log")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _plot_curves(metrics: Path, out: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    with metrics.open(newline="") as f:
        fig = curves_figure(list(csv.DictReader(f)), title)
    with atomic_file(out) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


# Options that belong to one invocation, not to the run.
_SESSION_KEYS = ("resume", "progress", "out")
# Options a resumed run must keep: changing them mid-run would mix two different trainings.
_FIXED_ON_RESUME = ("rawframes", "stream", "arch", "weights", "crop", "new_length", "drop_rate",
                    "seed", "lr", "batch_size", "momentum", "weight_decay", "flip")


def _own_settings(out: Path, run: RunRecord) -> dict[int, dict[str, Any]]:
    """Each trained split's own training settings: run.json's record of the split, else (run
    folders from before splits kept their own) its checkpoint's config."""
    own: dict[int, dict[str, Any]] = {}
    for k in (1, 2, 3):
        if run.train_configs and str(k) in run.train_configs:
            own[k] = dict(run.train_configs[str(k)])
        elif checkpoint_path(out, k).is_file():
            own[k] = dict(load_checkpoint(checkpoint_path(out, k))["config"])
    return own


def resume_configs(out: str | Path, given: dict[str, Any]) -> dict[int, TrainConfig]:
    """The config of each split to continue in ``out``: that split's own settings, updated by
    the options in ``given`` that may change (``epochs``, ``device``, ``workers``,
    ``val_segments``, ...).

    The splits are ``given["split"]``, else those the run's splits were asked for (``--split
    all`` killed during split 2 goes on to split 3). A split not trained yet starts from the
    settings of the run's first split, and ``given`` may change any of them.

    Raises:
        TwostreamError: nothing to resume in ``out``, or ``given`` changes a setting a split
            must keep (the message names the split and the setting), or the rawframes folder
            is gone or its class list differs.
    """
    out = Path(out)
    if not (out / RUN_JSON).is_file():
        raise TwostreamError(f"nothing to resume in {out} (no run.json); drop --resume to "
                             "start a new run there")
    run = load_run(out)
    own = _own_settings(out, run)
    base = own[min(own)] if own else run.train_settings()
    if base is None:
        raise TwostreamError(f"nothing to resume in {out} (no checkpoint); drop --resume "
                             "to start a new run there")
    if "split" in given:
        splits = parse_splits(given["split"])
    else:
        asked = {k for settings in (own.values() or [base])
                 for k in parse_splits(settings.get("split", "1"))}
        splits = sorted(asked | set(own))
    conflicts = []
    for k in splits:
        stored = own.get(k)
        for key in _FIXED_ON_RESUME if stored is not None else ():
            if key not in given or key not in stored:
                continue
            old, new = stored[key], given[key]
            if key == "rawframes":
                if Path(new).resolve() == Path(old).resolve() or not Path(old).exists():
                    continue  # the same folder, or the run's folder moved here
            if old != new:
                conflicts.append(f"split {k} was trained with {key}={old!r}, not {new!r}")
    if conflicts:
        raise TwostreamError(
            f"cannot resume {out}: {'; '.join(conflicts)}; drop those options to keep each "
            "split's own values, or start a new run in another --out"
        )
    fields = {f for f in TrainConfig.__dataclass_fields__}
    configs = {}
    for k in splits:
        merged = {**own.get(k, base), **given, "out": str(out), "resume": True}
        if "split" in given:
            merged["split"] = str(k)
        configs[k] = TrainConfig(**{n: v for n, v in merged.items() if n in fields})
    for config in configs.values():
        if "rawframes" not in given and not Path(config.rawframes).is_dir():
            raise TwostreamError(
                f"the rawframes folder {out} was trained on is gone: {config.rawframes}; if it "
                "moved, pass its new place as RAWFRAMES")
        classes = read_class_list(config.rawframes)
        if classes != run.classes:
            raise TwostreamError(
                f"cannot resume {out}: {Path(config.rawframes) / 'classes.txt'} lists "
                f"{len(classes)} classes, the run was trained on {len(run.classes)} (or in "
                "another order); pass the rawframes folder the run was trained on"
            )
    return configs


def resume_config(out: str | Path, given: dict[str, Any]) -> TrainConfig:
    """:func:`resume_configs` for a run that continues one split (``given["split"]``, or a
    run that trained one): that split's config."""
    configs = resume_configs(out, given)
    if len(configs) != 1:
        raise OptionError(f"{out} continues splits {', '.join(map(str, configs))}, each with "
                          "its own settings: use resume_configs, or give one split")
    return next(iter(configs.values()))


def _bound(config: TrainConfig) -> float:
    if config.bound is not None:
        return float(config.bound)
    return float(read_extract_settings(config.rawframes).get("bound", 20.0))


def _write_run_json(config: TrainConfig, classes: list[str], in_chans: int, split: int) -> None:
    """Write run.json with ``split``'s own training settings, keeping the other splits'."""
    path = Path(config.out) / RUN_JSON
    run = RunRecord(
        stream=config.stream, arch=config.arch, crop=config.crop,
        new_length=config.new_length, bound=_bound(config), in_chans=in_chans,
        drop_rate=config.drop_rate, classes=classes,
        rawframes=str(Path(config.rawframes).resolve()),
        # "unknown" for rawframes made by other tools (MMAction2's denseflow): predict then
        # asks for --flow/--short-side/--bound rather than guess how to treat a new video.
        extract_settings=read_extract_settings(config.rawframes) or "unknown",
    )
    # What `train --resume --split k` reuses so the user need not retype it: split k's own.
    own = {str(split): {k: v for k, v in asdict(config).items() if k not in _SESSION_KEYS}}
    if path.exists():
        old = load_run(config.out)
        for key in ("stream", "arch", "in_chans", "classes"):
            if getattr(old, key) != getattr(run, key):
                raise TwostreamError(
                    f"{path} belongs to a run with another {key} ({getattr(old, key)!r}); "
                    "choose another --out"
                )
        # The other splits' records stay as they are (a folder from before splits kept their
        # own gets them from their checkpoints; its one train_config is then dropped).
        own = {**{str(k): v for k, v in _own_settings(Path(config.out), old).items()}, **own}
        run.extra = old.extra
    run.train_configs = dict(sorted(own.items()))
    if run.extract_settings == "unknown":
        logger.warning("%s does not record how its frames and flow were extracted (no "
                       "extract_report.json): run.json says 'unknown', and predict will ask "
                       "for --flow, --short-side and --bound", config.rawframes)
    run.write(config.out)


def _split_data(config: TrainConfig, split: int) -> tuple[list[str], RawframeDataset,
                                                          RawframeDataset]:
    """The class list and the training and test datasets of ``split``; a split without a
    readable training clip is refused."""
    root = Path(config.rawframes)
    classes = read_class_list(root)
    train_clips = read_annotations(annotation_path(root, split, "train"), classes)
    val_clips = read_annotations(annotation_path(root, split, "val"), classes)
    if not train_clips:
        raise DatasetError(f"training list is empty: {annotation_path(root, split, 'train')}")
    for subset, clips in (("training", train_clips), ("test", val_clips)):
        labels = {c.label for c in clips}
        empty = [c for i, c in enumerate(classes) if i not in labels]
        if empty:
            logger.warning("split %d has no %s clip of %d class(es): %s", split, subset,
                           len(empty), ", ".join(empty))
    common = dict(stream=config.stream, crop=config.crop, new_length=config.new_length,
                  bound=_bound(config))
    ds_train = RawframeDataset(root, train_clips, train=True, seed=config.seed, flip=config.flip,
                               **common)
    if len(ds_train) == 0:
        raise DatasetError(
            f"no readable training clips in {root} for split {split} "
            f"({len(ds_train.skipped)} skipped, e.g. {ds_train.skipped[0][1]})"
        )
    ds_val = RawframeDataset(root, val_clips, train=False, segments=max(config.val_segments, 1),
                             **common)
    return classes, ds_train, ds_val


def _resume_state(ckpt_file: Path, config: TrainConfig, split: int, model: nn.Module,
                  optimizer: torch.optim.Optimizer,
                  lr_scheduler: torch.optim.lr_scheduler.CosineAnnealingLR,
                  scaler: torch.amp.GradScaler | None, total_steps: int) -> int:
    """Restore model, optimizer, scheduler, scaler and RNG states from ``ckpt_file``; return
    the epoch to start from. A larger ``config.epochs`` stretches the schedule."""
    ckpt = load_checkpoint(ckpt_file)
    for key in ("stream", "arch", "crop", "new_length"):
        if ckpt["config"][key] != getattr(config, key):
            raise TwostreamError(f"cannot resume {ckpt_file}: it was trained with "
                                 f"{key}={ckpt['config'][key]!r}, not {getattr(config, key)!r}")
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    lr_scheduler.load_state_dict(ckpt["lr_scheduler"])
    if scaler is not None and ckpt["scaler"]:
        scaler.load_state_dict(ckpt["scaler"])
    _set_rng_state(ckpt["rng"])
    start_epoch = ckpt["epoch"] + 1
    planned = ckpt["config"]["epochs"]
    if start_epoch >= config.epochs:
        logger.info("split %d: already trained %d epoch(s) (pass a larger --epochs to "
                    "train on)", split, start_epoch)
    elif planned != config.epochs:
        _reschedule(lr_scheduler, total_steps)
        logger.warning("split %d: --epochs %d instead of the run's %d: the learning-rate "
                       "schedule now ends at epoch %d (lr %.3g at epoch %d)", split,
                       config.epochs, planned, config.epochs,
                       optimizer.param_groups[0]["lr"], start_epoch + 1)
    else:
        logger.info("split %d: resumed from %s at epoch %d", split, ckpt_file,
                    start_epoch + 1)
    out = Path(config.out)
    if eval_path(out, split).exists() and start_epoch < config.epochs:
        logger.warning("split %d: the evaluation files in %s describe the checkpoint "
                       "before this training; rerun `twostream evaluate %s`", split, out,
                       out)
    return start_epoch


def _train_split(config: TrainConfig, split: int, info: _Dist, device: torch.device) -> dict:
    out = Path(config.out)
    classes, ds_train, ds_val = _split_data(config, split)
    ckpt_file = checkpoint_path(out, split)
    resuming = ckpt_file.exists()
    if resuming and not config.resume:
        raise OptionError(
            f"{ckpt_file} exists: pass --resume to continue that run, or choose another --out"
        )
    if info.main:
        with writing(out):
            out.mkdir(parents=True, exist_ok=True)
            _write_run_json(config, classes, ds_train.in_chans, split)

    sampler, loader, val_loader, expected = _loaders(config, ds_train, ds_val, info, device)
    torch.manual_seed(config.seed)
    # A resumed run takes its weights from the checkpoint: no ImageNet look-up, no warning.
    model = build_model(config.arch, in_chans=ds_train.in_chans, num_classes=len(classes),
                        weights="none" if resuming else config.weights,
                        drop_rate=config.drop_rate).to(device)
    model_without_ddp = model
    if info.enabled:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[info.local_rank] if device.type == "cuda" else None
        )
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, config.epochs * len(loader))
    )
    amp = amp_dtype(device)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None  # bf16 needs none
    start_epoch = 0
    if resuming:
        start_epoch = _resume_state(ckpt_file, config, split, model_without_ddp, optimizer,
                                    lr_scheduler, scaler, config.epochs * len(loader))

    last: dict[str, Any] = {}
    drawn_at = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        ds_train.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        train_stats = train_one_epoch(model, criterion, optimizer, lr_scheduler, loader, device,
                                      epoch, scaler, autocast_dtype=amp,
                                      progress=config.progress and info.main)
        if info.main:
            val = {"loss": math.nan, "frame_acc": math.nan, "video_acc": math.nan}
            if config.val_segments > 0 and len(ds_val):
                val = evaluate(model_without_ddp, criterion, val_loader, device)
            last = {
                "split": split, "epoch": epoch + 1, "lr": lr,
                "train_loss": train_stats["loss"], "train_acc": train_stats["acc"],
                "val_loss": val["loss"], "val_frame_acc": val["frame_acc"],
                "val_video_acc": val["video_acc"],
                "skipped": expected * info.world_size - train_stats["samples"],
                "seconds": round(time.perf_counter() - t0, 2),
            }
            # The row before the checkpoint: a kill between the two repeats the epoch on
            # --resume, which drops the rows of epochs the checkpoint does not hold.
            _append_metrics(out / METRICS, last)
            _save_atomic(_checkpoint(model_without_ddp, optimizer, lr_scheduler, scaler, epoch,
                                     config), ckpt_file)
            # Drawing costs ~0.6 s: on short epochs (small sets, fast GPUs) it would be a
            # third of the run, so it waits CURVES_EVERY_S, except after the last epoch.
            if (epoch + 1 == config.epochs
                    or time.perf_counter() - drawn_at >= CURVES_EVERY_S):
                _plot_curves(out / METRICS, out / CURVES,
                             f"{config.stream} stream, {config.arch}: {config.crop} px crops, "
                             f"random in training, centre on {config.val_segments} views per "
                             "test clip")
                drawn_at = time.perf_counter()
            logger.info(
                "split %d epoch %d: loss %.3f acc %.3f | test clip acc %.3f (%.1fs)",
                split, epoch + 1, last["train_loss"], last["train_acc"], last["val_video_acc"],
                last["seconds"],
            )
        if info.enabled:
            dist.barrier()
    return last


def _loaders(config: TrainConfig, ds_train: RawframeDataset, ds_val: RawframeDataset,
             info: _Dist, device: torch.device
             ) -> tuple[DistributedSampler, DataLoader, DataLoader, int]:
    """The training sampler and loader (this process's share), the test-clip loader, and how
    many training samples an epoch should see here (to count the skipped ones)."""
    sampler = DistributedSampler(ds_train, num_replicas=info.world_size, rank=info.rank,
                                 shuffle=True, seed=config.seed)
    # drop_last keeps BatchNorm away from a 1-sample batch; kept off for tiny datasets.
    drop_last = len(sampler) > config.batch_size
    loader = DataLoader(ds_train, batch_size=config.batch_size, sampler=sampler,
                        num_workers=config.workers, collate_fn=collate_skip, drop_last=drop_last,
                        pin_memory=device.type == "cuda")
    val_loader = DataLoader(ds_val, batch_size=max(1, config.batch_size // ds_val.segments),
                            num_workers=config.workers, collate_fn=collate_skip)
    expected = len(loader) * config.batch_size if drop_last else len(sampler)
    return sampler, loader, val_loader, expected


def _checkpoint(model: nn.Module, optimizer: torch.optim.Optimizer, lr_scheduler,
                scaler: torch.amp.GradScaler | None, epoch: int, config: TrainConfig) -> dict:
    """Everything ``--resume`` needs to continue after ``epoch`` as if never stopped."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "lr_scheduler": lr_scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "epoch": epoch,
        "rng": _rng_state(),
        "config": asdict(config),
    }


def _check_crop(config: TrainConfig, clips: list) -> None:
    """Refuse a crop larger than the frames: upscaling every frame to it wastes memory and
    time (a 10000 px crop runs out of memory minutes later) and invents no detail."""
    for clip in clips[:1]:
        frame = Path(config.rawframes) / "rawframes" / clip.name / "img_00001.jpg"
        try:
            with Image.open(frame) as img:  # reads the header only
                w, h = img.size
        except OSError:
            continue  # unreadable clips are skipped and reported later
        if config.crop > min(h, w):
            raise TwostreamError(
                f"--crop {config.crop} is larger than the frames ({w}x{h} in {clip.name}): "
                f"use --crop {min(h, w)} or less, or extract with a larger --short-side"
            )


def _check_new_length(config: TrainConfig, split: int, clips: list) -> None:
    """Refuse a temporal stack longer than a clip's flow (it would repeat the last field)."""
    usable = [c for c in clips if c.num_frames >= 2]  # the others are skipped and reported
    if config.stream != "temporal" or not usable:
        return
    shortest = min(usable, key=lambda c: c.num_frames)
    fields = shortest.num_frames - 1
    if config.new_length > fields:
        raise OptionError(
            f"--new-length {config.new_length} is longer than the flow of {shortest.name} "
            f"({shortest.num_frames} frames, {fields} flow fields), the shortest clip of split "
            f"{split}: use --new-length {max(fields, 1)} or less"
        )


def main(config: TrainConfig | Mapping[int, TrainConfig]) -> dict[int, dict[str, Any]]:
    """Train ``config.stream`` on each requested split; returns the last metrics row per split.

    ``config`` is one config for every split it asks for, or (as :func:`resume_configs`
    gives) each split's own config.

    Raises:
        DatasetError: missing rawframes folder, class list or annotation list, or an empty
            training list (before any training starts).
        ValueError: bad options, or an existing checkpoint without ``resume``.
    """
    if isinstance(config, TrainConfig):
        config.check()
        per_split = {k: config for k in config.splits()}
    else:
        per_split = dict(config)
    if not per_split:
        raise OptionError("no split to train")
    first = next(iter(per_split.values()))
    for cfg in per_split.values():
        cfg.check()
        resolve_device(cfg.device)  # `--device cuda` without a GPU fails before any reading
    out = Path(first.out)
    if first.resume and not trained_splits(out) and not (out / RUN_JSON).is_file():
        raise TwostreamError(f"nothing to resume in {out} (no run.json, no checkpoint); "
                             "drop --resume to start a new run there")
    # Check every split's inputs before training any of them.
    for split, cfg in per_split.items():
        classes = read_class_list(cfg.rawframes)
        train_list = annotation_path(cfg.rawframes, split, "train")
        train_clips = read_annotations(train_list, classes)
        if not train_clips:
            raise DatasetError(f"training list is empty: {train_list}")
        val_clips = read_annotations(annotation_path(cfg.rawframes, split, "val"), classes)
        _check_crop(cfg, train_clips)
        _check_new_length(cfg, split, train_clips + val_clips)
    info = _init_distributed(resolve_device(first.device).type)
    device = resolve_device(first.device, info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    results = {}
    for split, cfg in per_split.items():
        results[split] = _train_split(cfg, split, info, device)
    return results
