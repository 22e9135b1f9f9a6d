"""The whole two-stream pipeline on a small synthetic dataset, on a CPU.

synth (3 classes that differ only in appearance, 3 only in motion) -> extract (frames + TV-L1
flow, "fast" preset) -> train both streams (ResNet-18, small crops, few epochs, from random
init) -> evaluate (25-view protocol) -> fuse -> predict one test clip. It ends with accuracy per
stream on the appearance classes, the motion classes and overall: the spatial stream should win
on appearance, the temporal one on motion, and fusion on both.

Horizontal flips are off here: the synthetic motion classes include "left" and "right",
which a flip turns into each other (HMDB51 has no such mirror-image pair of classes).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twostream.atomic import write_text_atomic
from twostream.errors import TwostreamError, writing

__all__ = ["DemoConfig", "group_accuracy", "run_demo"]

logger = logging.getLogger(__name__)

DEMO_RECORD = "demo_config.json"


@dataclass
class DemoConfig:
    """Sizes of the demo. With the defaults it took about 70 seconds on 2 idle CPU cores (load
    average 1.1), measured 2026-12-07 (`twostream demo --help` says the same)."""

    classes: int = 6
    clips_per_class: int = 12
    width: int = 80
    height: int = 64
    frames: int = 24
    crop: int = 48
    epochs: int = 15
    batch_size: int = 8
    lr: float = 0.01
    workers: int = 0
    seed: int = 0


def group_accuracy(scores: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Top-1 accuracy on ``appearance_*`` clips, ``motion_*`` clips and all clips."""
    correct = scores.argmax(1) == labels
    kinds = np.array([classes[y].split("_", 1)[0] for y in labels])
    out = {g: float(correct[kinds == g].mean()) if (kinds == g).any() else float("nan")
           for g in ("appearance", "motion")}
    out["overall"] = float(correct.mean())
    return out


def _claim_folder(out: Path, cfg: DemoConfig) -> None:
    """Make ``out`` this demo's folder, or check that it already is: a folder made with another
    seed, size or epoch count is refused before anything in it is reused or changed."""
    wanted = {k: v for k, v in asdict(cfg).items() if k != "workers"}  # workers: speed only
    path = out / DEMO_RECORD
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        diff = [f"--{k.replace('_', '-')} {stored.get(k)} (now {v})"
                for k, v in wanted.items() if stored.get(k) != v]
        if diff:
            raise TwostreamError(f"{out} holds a demo made with {', '.join(diff)}: rerun with "
                                 "those values to reuse it, or use another --out")
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TwostreamError(f"{out} is not empty and holds no {DEMO_RECORD}: use another "
                             "--out (the demo never mixes its files with others)")
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(wanted, indent=2) + "\n")


def _say(echo, t0: float, message: str) -> None:
    echo(f"[{time.perf_counter() - t0:6.1f}s] {message}")


def run_demo(out: str | Path, config: DemoConfig | None = None, *, echo=print) -> dict[str, Any]:
    """Run the pipeline into ``out``; returns the accuracy table and the prediction.

    ``echo`` receives one line per stage (``print`` by default).
    """
    from twostream.extract.dataset import extract_dataset
    from twostream.extract.settings import ExtractSettings
    from twostream.flow.presets import TVL1_PRESETS
    from twostream.fusion import fuse_runs, fuse_split

    cfg = config or DemoConfig()
    out = Path(out)
    _claim_folder(out, cfg)
    t0 = time.perf_counter()
    classes, videos_dir = _synth(out / "synth", cfg, echo, t0)

    raw = out / "rawframes"
    settings = ExtractSettings(flow="tvl1", tvl1=TVL1_PRESETS["fast"], short_side=None)
    summary = extract_dataset(videos_dir, out / "synth" / "splits", raw, settings,
                              progress=False)
    _say(echo, t0, f"extract: {summary.complete} clips, {summary.frames_extracted} frames; flow: "
         "OpenCV TV-L1 with the 'fast' preset (4 levels, 2 warps; ~15x faster than default "
         "TV-L1), native size")

    for stream in ("spatial", "temporal"):
        _train_and_evaluate(raw, out / stream, stream, cfg, echo, t0)

    fused = fuse_runs(out / "spatial", out / "temporal", splits=[1], out=out)
    _say(echo, t0, "fuse: average, weighted (weight from training clips), linear SVM")
    echo(fused["table"])

    scores = fuse_split(out / "spatial", out / "temporal", 1)
    table = {m: group_accuracy(s, scores["labels"], classes)
             for m, s in scores["scores"].items()}
    prediction = _predict_a_test_clip(out, videos_dir, echo, t0)
    _echo_table(echo, table, len(scores["labels"]), len(classes))
    result = {"table": table, "prediction": prediction,
              "seconds": round(time.perf_counter() - t0, 1)}
    write_text_atomic(out / "demo.json", json.dumps(result, indent=2))
    _say(echo, t0, f"done; everything is in {out}")
    return result


def _synth(synth: Path, cfg: DemoConfig, echo, t0: float) -> tuple[list[str], Path]:
    """The synthetic dataset (made unless a finished one is there): its classes and videos."""
    from twostream.synth import make_synthetic_dataset, read_synth_record

    if read_synth_record(synth) is None:  # never written, or killed half-way: redo it
        shutil.rmtree(synth, ignore_errors=True)
        make_synthetic_dataset(synth, classes=cfg.classes, clips_per_class=cfg.clips_per_class,
                               seed=cfg.seed, width=cfg.width, height=cfg.height,
                               frames=cfg.frames)
    classes, videos_dir = read_synth_record(synth)["classes"], synth / "videos"
    _say(echo, t0, f"synth: {len(classes)} classes x {cfg.clips_per_class} clips "
         f"({cfg.width}x{cfg.height}, {cfg.frames} frames): {', '.join(classes)}")
    return classes, videos_dir


def _train_and_evaluate(raw: Path, run_dir: Path, stream: str, cfg: DemoConfig, echo,
                        t0: float) -> None:
    """Train ``stream`` on split 1 (resuming a run already there), then evaluate it."""
    from twostream.evaluate import evaluate_run
    from twostream.runs import RUN_JSON
    from twostream.train import TrainConfig, main

    train_cfg = TrainConfig(
        rawframes=str(raw), stream=stream, out=str(run_dir), split="1",
        arch="resnet18", weights="none", epochs=cfg.epochs, batch_size=cfg.batch_size,
        lr=cfg.lr, drop_rate=0.0, crop=cfg.crop, flip=False, workers=cfg.workers,
        device="cpu", seed=cfg.seed, val_segments=2, progress=False,
        resume=(run_dir / RUN_JSON).is_file(),
    )
    result = main(train_cfg)[1]
    _say(echo, t0, f"train {stream}: resnet18, random init, crop {cfg.crop}, "
         f"{cfg.epochs} epochs, final training accuracy {result.get('train_acc', 1):.1%}"
         if result else f"train {stream}: already trained")
    evaluate_run(run_dir, splits=[1], segments=25, train_segments=5, device="cpu",
                 progress=False)
    _say(echo, t0, f"evaluate {stream}: 25 views per test clip, centre crop")


def _predict_a_test_clip(out: Path, videos_dir: Path, echo, t0: float) -> dict[str, Any]:
    """``twostream predict`` on the first test clip of split 1, from its video file."""
    from twostream.evaluate import load_scores
    from twostream.predict import predict_video

    test = load_scores(out / "spatial", 1)
    name = str(test["name"][0])
    cls, stem = name.split("/", 1)
    video = next(p for p in (videos_dir / cls).iterdir() if p.stem == stem)
    top = predict_video(video, out / "spatial", out / "temporal", top_k=3)["top"]
    _say(echo, t0, f"predict {video.name} (true class {cls}): "
         + ", ".join(f"{r['label']} {r['score']:.2f}" for r in top))
    return {"video": str(video), "true": cls, "top": top}


def _echo_table(echo, table: dict[str, dict[str, float]], clips: int, classes: int) -> None:
    """Accuracy per stream and fusion (rows) on each class group (columns)."""
    echo("")
    echo(f"accuracy on the {clips} test clips of split 1 "
         f"(chance: {1 / classes:.0%} overall, "
         f"{1 / (classes // 2):.0%} within a group)")
    echo(f"{'':<18}{'appearance':>12}{'motion':>10}{'overall':>10}")
    for method, acc in table.items():
        echo(f"{method:<18}{acc['appearance']:>12.1%}{acc['motion']:>10.1%}"
             f"{acc['overall']:>10.1%}")
