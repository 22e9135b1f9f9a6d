"""One clip's output folder: how it is written whole or not at all, by every flow method.

A clip is written into a hidden sibling folder (``.<clip>.partial-<pid>``, made by
:func:`start_clip`), then :func:`commit_clip` pads the flow, writes the ``.complete.json``
marker (frame count and the settings used) and renames the folder into place. So a clip folder
either holds a whole clip or does not exist, and a crash leaves only hidden folders, which the
next attempt at that clip removes. :class:`ClipResult` is what a worker reports for one clip.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from twostream.decode import VideoDecodeError

__all__ = [
    "MARKER",
    "MIN_PARTIAL_FRAMES",
    "ClipResult",
    "commit_clip",
    "failed_result",
    "keeps_partial",
    "pad_flow",
    "read_marker",
    "start_clip",
    "write_flow",
    "write_frame",
    "write_jpeg",
]

logger = logging.getLogger(__name__)

MARKER = ".complete.json"
# A clip that decodes fewer frames than it declares is kept when this many decode: enough for
# one temporal stack of L = 10 flow fields.
MIN_PARTIAL_FRAMES = 11


@dataclass
class ClipResult:
    """Outcome of one clip: ``error`` is None when it was extracted."""

    key: str  # "<class>/<clip file name>"
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None
    disk_full: bool = False  # the error was ENOSPC: the run must stop, not skip the clip
    partial: str | None = None  # kept, but fewer frames decoded than declared: why


def failed_result(key: str, video: str, exc: Exception) -> ClipResult:
    """The result of a clip that failed with ``exc``: a bad video, a full disk (which stops
    the run) or anything else (logged with its traceback, then skipped)."""
    if isinstance(exc, VideoDecodeError):
        return ClipResult(key, error=exc.reason)
    full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if not full:
        logger.exception("extracting %s failed", video, exc_info=exc)
    return ClipResult(key, error=f"{type(exc).__name__}: {exc}", disk_full=full)


def write_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    """Encode ``image`` (BGR or grey uint8) as a JPEG file."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"JPEG encoding failed for {path}")
    path.write_bytes(buf.tobytes())


def write_frame(folder: Path, n: int, rgb: np.ndarray, quality: int) -> None:
    """Frame ``n`` (1-based) as MMAction2 names it: ``img_{n:05d}.jpg``."""
    write_jpeg(folder / f"img_{n:05d}.jpg", rgb[..., ::-1], quality)


def write_flow(folder: Path, i: int, flow_u8: np.ndarray, quality: int) -> None:
    """Quantised flow field ``i`` (1-based, ``(H, W, 2)`` uint8) as ``flow_x_{i:05d}.jpg`` and
    ``flow_y_{i:05d}.jpg``."""
    write_jpeg(folder / f"flow_x_{i:05d}.jpg", flow_u8[..., 0], quality)
    write_jpeg(folder / f"flow_y_{i:05d}.jpg", flow_u8[..., 1], quality)


def read_marker(clip_dir: Path) -> dict[str, Any] | None:
    """The completion marker of a finished clip folder; None when it is not finished."""
    try:
        return json.loads((clip_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def pad_flow(clip_dir: str | os.PathLike[str], total_frames: int) -> bool:
    """Write flow image ``total_frames`` as a copy of image ``total_frames - 1`` (both axes) if
    it is missing, so a list carrying the RGB count also loads Flow; True if it wrote any.

    Clips of one frame have no flow to copy and are left alone.
    """
    clip_dir, n, wrote = Path(clip_dir), int(total_frames), False
    if n < 2:
        return False
    for axis in "xy":
        last, pad = clip_dir / f"flow_{axis}_{n - 1:05d}.jpg", clip_dir / f"flow_{axis}_{n:05d}.jpg"
        if last.is_file() and not pad.is_file():
            shutil.copyfile(last, pad)
            wrote = True
    return wrote


def start_clip(clip_dir: Path) -> Path:
    """A fresh hidden folder to write ``clip_dir`` into, after removing the half-written
    folders an interrupted earlier attempt left."""
    clip_dir.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{clip_dir.name}.partial-"
    for stale in clip_dir.parent.iterdir():
        if stale.name.startswith(prefix):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = clip_dir.with_name(f"{prefix}{os.getpid()}")
    tmp.mkdir()
    return tmp


def keeps_partial(exc: VideoDecodeError, written: int) -> bool:
    """Whether a clip cut short after ``written`` good frames is kept with them: when they are
    enough for one flow stack and all of them (with their flow) were written whole."""
    return exc.frames >= MIN_PARTIAL_FRAMES and exc.frames == written


def commit_clip(tmp: Path, clip_dir: Path, total_frames: int, settings: dict[str, Any],
                partial: str | None = None) -> None:
    """Pad the flow, write the marker into the finished hidden folder ``tmp`` and move it to
    ``clip_dir``: the last step of every clip, whichever method made it."""
    pad_flow(tmp, total_frames)
    record: dict[str, Any] = {"total_frames": total_frames, "settings": settings}
    if partial:
        record["partial"] = partial
    (tmp / MARKER).write_text(json.dumps(record), encoding="utf-8")
    if clip_dir.exists():  # an older output made with other settings
        shutil.rmtree(clip_dir)
    os.rename(tmp, clip_dir)
