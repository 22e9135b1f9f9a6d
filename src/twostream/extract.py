"""Extract RGB frames and quantised optical flow from HMDB51-format videos, MMAction2 layout.

Output under ``OUT``::

    rawframes/<class>/<clip stem>/img_00001.jpg ...        n frames (1-based)
    rawframes/<class>/<clip stem>/flow_x_00001.jpg ...     n - 1 flow pairs
    rawframes/<class>/<clip stem>/flow_y_00001.jpg ...
    classes.txt                                            label order
    hmdb51_{train,val}_split_{k}_rawframes.txt             "<class>/<stem> <total_frames> <label>"
    extract_report.json                                    failures, missing/unlisted clips, speed

Each clip is written into a hidden sibling folder and renamed into place when complete (with a
``.complete.json`` marker holding its frame count and the settings used), so killing the run at
any moment loses no finished clip, and a rerun skips complete clips and redoes the rest. Bad
clips are skipped and reported; the run goes on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from twostream.decode import VideoDecodeError, iter_frames
from twostream.flow import FLOW_METHODS, TVL1Params, iter_flow, quantize_flow
from twostream.splits import DatasetError, load_splits, write_classes

__all__ = ["ClipResult", "ExtractSummary", "clip_settings", "extract_clip", "extract_dataset"]

logger = logging.getLogger(__name__)

MARKER = ".complete.json"
REPORT = "extract_report.json"


def clip_settings(
    *,
    flow: str = "tvl1",
    short_side: int | None = 256,
    bound: float = 20.0,
    tvl1: TVL1Params | None = None,
    jpeg_quality: int = 95,
) -> dict[str, Any]:
    """The settings a clip's outputs depend on, as stored in its completion marker."""
    return {
        "flow": flow,
        "short_side": short_side,
        "bound": float(bound),
        "tvl1": dataclasses.asdict(tvl1 or TVL1Params()) if flow.startswith("tvl1") else None,
        "jpeg_quality": int(jpeg_quality),
    }


def _write_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"JPEG encoding failed for {path}")
    path.write_bytes(buf.tobytes())


def _read_marker(clip_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((clip_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _partial_dirs(clip_dir: Path) -> list[Path]:
    prefix = f".{clip_dir.name}.partial-"
    if not clip_dir.parent.is_dir():
        return []
    return [p for p in clip_dir.parent.iterdir() if p.name.startswith(prefix)]


def extract_clip(
    video_path: str | os.PathLike[str],
    clip_dir: str | os.PathLike[str],
    *,
    flow: str = "tvl1",
    short_side: int | None = 256,
    bound: float = 20.0,
    tvl1: TVL1Params | None = None,
    jpeg_quality: int = 95,
) -> int:
    """Write one clip's frames and flow into ``clip_dir`` atomically; return its frame count.

    Frames and flow stream through (one frame pair in memory at a time). Everything goes into
    a hidden sibling folder first, which is renamed to ``clip_dir`` only once complete, so
    ``clip_dir`` either holds a whole clip or does not exist. Leftover half-written folders of
    this clip are removed first. Raises :class:`~twostream.decode.VideoDecodeError` for a bad
    video (nothing is left behind).
    """
    video_path, clip_dir = Path(video_path), Path(clip_dir)
    settings = clip_settings(
        flow=flow, short_side=short_side, bound=bound, tvl1=tvl1, jpeg_quality=jpeg_quality
    )
    clip_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in _partial_dirs(clip_dir):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = clip_dir.with_name(f".{clip_dir.name}.partial-{os.getpid()}")
    tmp.mkdir()
    n = 0
    try:

        def frames():
            nonlocal n
            for frame in iter_frames(video_path, short_side=short_side):
                n += 1
                _write_jpeg(tmp / f"img_{n:05d}.jpg", frame[..., ::-1], jpeg_quality)
                yield frame

        for i, pair in enumerate(iter_flow(frames(), method=flow, tvl1=tvl1), start=1):
            q = quantize_flow(pair, bound)
            _write_jpeg(tmp / f"flow_x_{i:05d}.jpg", q[..., 0], jpeg_quality)
            _write_jpeg(tmp / f"flow_y_{i:05d}.jpg", q[..., 1], jpeg_quality)
        (tmp / MARKER).write_text(
            json.dumps({"total_frames": n, "settings": settings}), encoding="utf-8"
        )
        if clip_dir.exists():  # an older output made with other settings
            shutil.rmtree(clip_dir)
        os.rename(tmp, clip_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return n


@dataclass
class ClipResult:
    """Outcome of one clip: ``error`` is None when it was extracted."""

    key: str  # "<class>/<clip file name>"
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None


def _extract_job(video: str, clip_dir: str, kwargs: dict[str, Any], key: str) -> ClipResult:
    start = time.perf_counter()
    try:
        n = extract_clip(video, clip_dir, **kwargs)
    except VideoDecodeError as exc:
        return ClipResult(key, error=exc.reason)
    except Exception as exc:  # one bad clip must not stop the batch; the report names it
        logger.exception("extracting %s failed", video)
        return ClipResult(key, error=f"{type(exc).__name__}: {exc}")
    return ClipResult(key, frames=n, seconds=time.perf_counter() - start)


def _init_worker() -> None:
    # One OpenCV thread per process: parallelism comes from the pool, not from oversubscribing.
    cv2.setNumThreads(1)
    try:  # Linux: die with the parent, so `kill -9` of the run leaves no worker writing on.
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class ExtractSummary:
    """What :func:`extract_dataset` did; also written to ``OUT/extract_report.json``."""

    out_dir: Path
    settings: dict[str, Any]
    clips_in_splits: int = 0
    complete: int = 0  # clips extracted whole (now or earlier): the ones listed
    extracted_now: int = 0
    already_done: int = 0
    frames_extracted: int = 0
    seconds: float = 0.0
    failed: list[dict[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)
    annotation_files: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames_extracted / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["out_dir"] = str(self.out_dir)
        d["frames_per_second"] = round(self.frames_per_second, 2)
        d["seconds"] = round(self.seconds, 3)
        return d


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _stem(clip: str) -> str:
    return Path(clip).stem


def extract_dataset(
    videos_dir: str | os.PathLike[str],
    splits_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    flow: str = "tvl1",
    short_side: int | None = 256,
    bound: float = 20.0,
    workers: int | None = None,
    tvl1: TVL1Params | None = None,
    jpeg_quality: int = 95,
    progress: bool = True,
    device: str = "auto",
    flow_batch: int | None = None,
) -> ExtractSummary:
    """Extract frames and flow for every clip the splits use, resumably and in parallel.

    Parameters
    ----------
    videos_dir, splits_dir:
        HMDB51 as distributed: ``<videos>/<class>/<clip>.avi`` and ``<class>_test_split<k>.txt``.
    out_dir:
        Receives the MMAction2 layout (see the module docstring).
    flow:
        ``"tvl1"`` (default), ``"tvl1-torch"`` (the same TV-L1 in PyTorch, batched on
        ``device``), ``"dis"`` or ``"farneback"``.
    short_side:
        Resize so the shorter side has this many pixels (``None``: native size).
    bound:
        Flow is clipped to ``±bound`` px and mapped to 0..255.
    workers:
        Processes (default ``os.cpu_count()``); 1 runs in this process.
    tvl1:
        TV-L1 parameters (default OpenCV's; ``flow.TVL1_PRESETS["fast"]`` is faster).
    jpeg_quality:
        JPEG quality of frames and flow.
    progress:
        Show a progress bar (clips done, frames/s, ETA) on stderr.
    device, flow_batch:
        ``tvl1-torch`` only: ``auto`` (CUDA when present), ``cpu`` or ``cuda``, and the frame
        pairs per flow batch (default 64 on CUDA; on CPU 1 at 340x256, more for small frames
        only); the workers decode and write
        JPEGs meanwhile (:mod:`twostream.extract_batched`).

    Clips whose complete output with the same settings exists are skipped; bad clips are
    skipped and reported. Only clips extracted whole are listed in the annotation files.

    Raises
    ------
    DatasetError
        ``videos_dir`` or ``splits_dir`` is missing or holds nothing usable.
    ValueError
        Bad options.
    """
    if flow not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {flow!r}; allowed: {', '.join(FLOW_METHODS)}")
    if bound <= 0:
        raise ValueError(f"bound must be positive, got {bound}")
    if short_side is not None and short_side <= 0:
        raise ValueError(f"short_side must be positive or None, got {short_side}")
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    videos_dir, out = Path(videos_dir), Path(out_dir)
    splits = load_splits(splits_dir, videos_dir)
    used = splits.used_clips()
    if not used:
        raise DatasetError(
            f"no train/test clip named in {splits_dir} exists under {videos_dir} "
            f"({len(splits.missing)} named clips missing)"
        )
    rawframes = out / "rawframes"
    rawframes.mkdir(parents=True, exist_ok=True)
    write_classes(splits.classes, out / "classes.txt")

    kwargs = {"flow": flow, "short_side": short_side, "bound": bound, "tvl1": tvl1,
              "jpeg_quality": jpeg_quality}
    settings = clip_settings(**kwargs)
    summary = ExtractSummary(out_dir=out, settings=settings, clips_in_splits=len(used),
                             missing=splits.missing, unlisted=splits.unlisted,
                             bad_lines=splits.bad_lines)
    total_frames: dict[str, int] = {}
    todo: list[tuple[str, str, str]] = []
    for cls, clip in used:
        key, clip_dir = f"{cls}/{clip}", rawframes / cls / _stem(clip)
        marker = _read_marker(clip_dir)
        if marker is not None and marker.get("settings") == settings:
            total_frames[key] = int(marker["total_frames"])
        else:
            todo.append((str(videos_dir / cls / clip), str(clip_dir), key))
    summary.already_done = len(total_frames)
    if summary.already_done:
        logger.info("%d clips already extracted, %d to do", summary.already_done, len(todo))

    start = time.perf_counter()
    bar = tqdm(total=len(used), initial=summary.already_done, unit="clip", desc="extract",
               disable=not progress, dynamic_ncols=True)

    def record(result: ClipResult) -> None:
        if result.error is None:
            total_frames[result.key] = result.frames
            summary.extracted_now += 1
            summary.frames_extracted += result.frames
        else:
            cls, clip = result.key.split("/", 1)
            summary.failed.append({"clip": result.key, "path": str(videos_dir / cls / clip),
                                   "reason": result.error})
            logger.warning("skipped %s: %s", result.key, result.error)
        elapsed = time.perf_counter() - start
        bar.set_postfix_str(f"{summary.frames_extracted / max(elapsed, 1e-9):.1f} frames/s, "
                            f"{len(summary.failed)} failed", refresh=False)
        bar.update(1)

    try:
        if flow == "tvl1-torch":
            from twostream.extract_batched import extract_batched

            extract_batched(todo, record=record, settings=settings, short_side=short_side,
                            bound=bound, jpeg_quality=jpeg_quality, params=tvl1, device=device,
                            flow_batch=flow_batch, workers=min(workers, max(len(todo), 1)),
                            worker_init=_init_worker)
        elif workers == 1 or len(todo) <= 1:
            for video, clip_dir, key in todo:
                record(_extract_job(video, clip_dir, kwargs, key))
        else:
            ctx = multiprocessing.get_context("spawn")  # fork + OpenCV threads can deadlock
            with ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx,
                                     initializer=_init_worker) as pool:
                futures = [pool.submit(_extract_job, v, d, kwargs, k) for v, d, k in todo]
                try:
                    for fut in as_completed(futures):
                        record(fut.result())
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - start
        summary.complete = len(total_frames)
        summary.failed.sort(key=lambda f: f["clip"])
        summary.annotation_files = _write_annotations(out, splits, total_frames)
        _write_atomic(out / REPORT, json.dumps(summary.to_json(), indent=2) + "\n")

    logger.info(
        "%d/%d clips complete (%d now, %d earlier), %d failed, %.1f frames/s",
        summary.complete, summary.clips_in_splits, summary.extracted_now, summary.already_done,
        len(summary.failed), summary.frames_per_second,
    )
    return summary


def _write_annotations(out: Path, splits, total_frames: dict[str, int]) -> list[str]:
    """MMAction2 rawframe lists per split; only clips extracted whole are listed."""
    written = []
    for k in sorted(splits.entries):
        for name, flag in (("train", 1), ("val", 2)):
            lines = [
                f"{e.class_name}/{_stem(e.clip)} {total_frames[e.key]} "
                f"{splits.label(e.class_name)}\n"
                for e in splits.subset(k, flag)
                if e.key in total_frames
            ]
            path = out / f"hmdb51_{name}_split_{k}_rawframes.txt"
            _write_atomic(path, "".join(lines))
            written.append(path.name)
    return written
