"""Train one stream (spatial or temporal) on one or all HMDB51 splits.

The loop reads top to bottom, in the style of torchvision's ``references/`` scripts:
:func:`train_one_epoch`, :func:`evaluate` and :func:`main`. The same code runs on one device
or, under ``torchrun``, as DistributedDataParallel (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``;
gloo on CPU, nccl on CUDA; each rank trains on its shard, rank 0 writes every file).

Run folder (``RUN_DIR``)::

    run.json                  stream, arch, crop, L, bound, class list, rawframes folder and
                              the extraction settings (from extract_report.json; predict
                              re-extracts new videos with them; "unknown" for rawframes made
                              by other tools)
    checkpoint_split{k}.pt    written after every epoch (model, optimizer, lr_scheduler, scaler,
                              epoch, RNG states, config as a plain dict)
    metrics.csv               one row per (split, epoch)
    curves.png                loss and accuracy per epoch, one line per split

Optimisation: SGD (momentum 0.9, weight decay 5e-4), cosine learning-rate decay stepped per
iteration, cross-entropy; on CUDA, mixed precision (``torch.autocast`` + ``GradScaler``).

``--split all`` trains splits 1, 2, 3 in turn into the same folder (files carry the split).
Validation after each epoch uses a cheap protocol (``val_segments`` evenly spaced views per
test clip, centre crop); ``twostream evaluate`` applies the full 25-view protocol.

Determinism: a run killed and resumed (``resume=True``) ends, on CPU with a fixed seed, with
the same weights as an uninterrupted one: the checkpoint restores the optimizer, scheduler
and RNG states, and the data order and augmentation depend only on ``(seed, epoch)``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from twostream.datasets import (
    DatasetError,
    RawframeDataset,
    annotation_path,
    collate_skip,
    read_annotations,
    read_class_list,
    read_extract_settings,
)
from twostream.models import build_model

__all__ = [
    "METRIC_FIELDS",
    "TrainConfig",
    "checkpoint_path",
    "evaluate",
    "load_run",
    "load_stream_model",
    "main",
    "resolve_device",
    "train_one_epoch",
    "trained_splits",
]

logger = logging.getLogger(__name__)

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
    device: str = "auto"
    seed: int = 0
    crop: int = 224
    new_length: int = 10
    bound: float | None = None  # None: from RAWFRAMES_DIR/extract_report.json, else 20
    val_segments: int = 3
    flip: bool = True
    resume: bool = False
    progress: bool = True

    def splits(self) -> list[int]:
        if str(self.split) == "all":
            return [1, 2, 3]
        if str(self.split) in ("1", "2", "3"):
            return [int(self.split)]
        raise ValueError(f"split must be 1, 2, 3 or 'all', got {self.split!r}")


def checkpoint_path(run_dir: str | Path, split: int) -> Path:
    return Path(run_dir) / f"checkpoint_split{split}.pt"


def trained_splits(run_dir: str | Path) -> list[int]:
    """The splits (of 1, 2, 3) that have a checkpoint in ``run_dir``, in order."""
    return [k for k in (1, 2, 3) if checkpoint_path(run_dir, k).is_file()]


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


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a ValueError."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda asked for, but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


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
    progress: bool = True,
) -> dict[str, float]:
    """One pass over ``loader``; the scheduler steps per iteration. Returns mean loss/accuracy."""
    model.train()
    distributed = dist.is_available() and dist.is_initialized()
    sums = torch.zeros(3, dtype=torch.float64)  # loss * n, correct, n
    for batch in tqdm(loader, desc=f"epoch {epoch}", disable=not progress, leave=False):
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
        with torch.autocast(device_type=device.type, enabled=scaler is not None):
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


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-save never leaves a truncated checkpoint


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
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def _plot_curves(metrics: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with metrics.open(newline="") as f:
        rows = list(csv.DictReader(f))
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for split in sorted({r["split"] for r in rows}):
        rs = [r for r in rows if r["split"] == split]
        ep = [int(r["epoch"]) + 1 for r in rs]

        def col(name: str, rs: list[dict[str, str]] = rs) -> list[float]:
            return [float(r[name]) if r[name] not in ("", "nan") else math.nan for r in rs]

        ax_loss.plot(ep, col("train_loss"), "-o", label=f"train, split {split}")
        ax_acc.plot(ep, col("train_acc"), "-o", label=f"train, split {split}")
        if not all(math.isnan(v) for v in col("val_loss")):  # validation may be off
            ax_loss.plot(ep, col("val_loss"), "--o", label=f"test, split {split}")
            ax_acc.plot(ep, col("val_video_acc"), "--o", label=f"test (clip), split {split}")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- runs


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The ``run.json`` of a training run (stream, arch, crop, L, bound, classes, rawframes)."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise DatasetError(f"not a training run (no run.json): {run_dir}")
    return json.loads(path.read_text(encoding="utf-8"))


def load_stream_model(
    run_dir: str | Path, split: int, device: torch.device | str = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """The trained network of ``split`` in eval mode, and the run's ``run.json``."""
    run = load_run(run_dir)
    path = checkpoint_path(run_dir, split)
    if not path.is_file():
        raise DatasetError(f"no checkpoint for split {split} in {run_dir} ({path.name})")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(
        run["arch"], in_chans=run["in_chans"], num_classes=len(run["classes"]), weights="none",
        drop_rate=run.get("drop_rate", 0.0),
    )
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), run


def _bound(config: TrainConfig) -> float:
    if config.bound is not None:
        return float(config.bound)
    return float(read_extract_settings(config.rawframes).get("bound", 20.0))


def _write_run_json(config: TrainConfig, classes: list[str], in_chans: int) -> None:
    path = Path(config.out) / "run.json"
    run = {
        "stream": config.stream, "arch": config.arch, "crop": config.crop,
        "new_length": config.new_length, "bound": _bound(config), "in_chans": in_chans,
        "drop_rate": config.drop_rate, "classes": classes,
        "rawframes": str(Path(config.rawframes).resolve()),
        # "unknown" for rawframes made by other tools (MMAction2's denseflow): predict then
        # asks for --flow/--short-side/--bound rather than guess how to treat a new video.
        "extract_settings": read_extract_settings(config.rawframes) or "unknown",
    }
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        for key in ("stream", "arch", "in_chans", "classes"):
            if old.get(key) != run[key]:
                raise ValueError(
                    f"{path} belongs to a run with another {key} ({old.get(key)!r}); "
                    "choose another --out"
                )
    if run["extract_settings"] == "unknown":
        logger.warning("%s does not record how its frames and flow were extracted (no "
                       "extract_report.json): run.json says 'unknown', and predict will ask "
                       "for --flow, --short-side and --bound", config.rawframes)
    path.write_text(json.dumps(run, indent=2), encoding="utf-8")


def _train_split(config: TrainConfig, split: int, info: _Dist, device: torch.device) -> dict:
    root, out = Path(config.rawframes), Path(config.out)
    classes = read_class_list(root)
    train_clips = read_annotations(annotation_path(root, split, "train"), classes)
    val_clips = read_annotations(annotation_path(root, split, "val"), classes)
    if not train_clips:
        raise DatasetError(f"training list is empty: {annotation_path(root, split, 'train')}")
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
    ckpt_file = checkpoint_path(out, split)
    resuming = ckpt_file.exists()
    if resuming and not config.resume:
        raise ValueError(
            f"{ckpt_file} exists: pass --resume to continue that run, or choose another --out"
        )
    if info.main:
        out.mkdir(parents=True, exist_ok=True)
        _write_run_json(config, classes, ds_train.in_chans)

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
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None

    start_epoch = 0
    if resuming:
        ckpt = torch.load(ckpt_file, map_location="cpu", weights_only=True)
        for key in ("stream", "arch", "crop", "new_length"):
            if ckpt["config"][key] != getattr(config, key):
                raise ValueError(f"cannot resume {ckpt_file}: it was trained with "
                                 f"{key}={ckpt['config'][key]!r}, not {getattr(config, key)!r}")
        model_without_ddp.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        lr_scheduler.load_state_dict(ckpt["lr_scheduler"])
        if scaler is not None and ckpt["scaler"]:
            scaler.load_state_dict(ckpt["scaler"])
        _set_rng_state(ckpt["rng"])
        start_epoch = ckpt["epoch"] + 1
        logger.info("split %d: resumed from %s at epoch %d", split, ckpt_file, start_epoch)

    last: dict[str, Any] = {}
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        ds_train.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        train_stats = train_one_epoch(model, criterion, optimizer, lr_scheduler, loader, device,
                                      epoch, scaler, progress=config.progress and info.main)
        if info.main:
            val = {"loss": math.nan, "frame_acc": math.nan, "video_acc": math.nan}
            if config.val_segments > 0 and len(ds_val):
                val = evaluate(model_without_ddp, criterion, val_loader, device)
            _save_atomic(
                {
                    "model": model_without_ddp.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "lr_scheduler": lr_scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else {},
                    "epoch": epoch,
                    "rng": _rng_state(),
                    "config": asdict(config),
                },
                ckpt_file,
            )
            last = {
                "split": split, "epoch": epoch, "lr": lr,
                "train_loss": train_stats["loss"], "train_acc": train_stats["acc"],
                "val_loss": val["loss"], "val_frame_acc": val["frame_acc"],
                "val_video_acc": val["video_acc"],
                "skipped": expected * info.world_size - train_stats["samples"],
                "seconds": round(time.perf_counter() - t0, 2),
            }
            _append_metrics(out / "metrics.csv", last)
            _plot_curves(out / "metrics.csv", out / "curves.png")
            logger.info(
                "split %d epoch %d: loss %.3f acc %.3f | test clip acc %.3f (%.1fs)",
                split, epoch, last["train_loss"], last["train_acc"], last["val_video_acc"],
                last["seconds"],
            )
        if info.enabled:
            dist.barrier()
    return last


def main(config: TrainConfig) -> dict[int, dict[str, Any]]:
    """Train ``config.stream`` on each requested split; returns the last metrics row per split.

    Raises:
        DatasetError: missing rawframes folder, class list or annotation list, or an empty
            training list (before any training starts).
        ValueError: bad options, or an existing checkpoint without ``resume``.
    """
    splits = config.splits()
    if config.stream not in ("spatial", "temporal"):
        raise ValueError(f"stream must be spatial or temporal, got {config.stream!r}")
    # Check every split's inputs before training any of them.
    classes = read_class_list(config.rawframes)
    for split in splits:
        train_list = annotation_path(config.rawframes, split, "train")
        if not read_annotations(train_list, classes):
            raise DatasetError(f"training list is empty: {train_list}")
        read_annotations(annotation_path(config.rawframes, split, "val"), classes)  # must exist
    info = _init_distributed(resolve_device(config.device).type)
    device = resolve_device(config.device, info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    results = {}
    for split in splits:
        results[split] = _train_split(config, split, info, device)
    return results
