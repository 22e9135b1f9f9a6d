"""Decode video files to RGB frames with PyAV.

Every way a clip can be unusable (missing, unreadable, empty, corrupt, truncated, too short)
surfaces as one exception type, :class:`VideoDecodeError`, whose message names the path and the
reason, so batch jobs can skip the clip and report it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from twostream.errors import OptionError, TwostreamError

__all__ = [
    "VideoDecodeError",
    "decode_video",
    "iter_frames",
    "declared_frame_count",
    "resized_size",
]

logger = logging.getLogger(__name__)


class VideoDecodeError(TwostreamError):
    """A video could not be decoded into usable frames; the message names path and reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str, frames: int = 0) -> None:
        self.path = str(path)
        self.reason = reason
        self.frames = frames  # good frames yielded before a truncated or corrupt end
        super().__init__(f"{self.path}: {reason}")


def resized_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """Return ``(width, height)`` scaled so the shorter side equals ``short_side`` (aspect kept).

    ``short_side=None`` keeps the native size.
    """
    if short_side is None:
        return width, height
    if short_side <= 0:
        raise OptionError(f"short_side must be a positive integer or None, got {short_side}")
    if height <= width:
        return max(1, round(width * short_side / height)), short_side
    return short_side, max(1, round(height * short_side / width))


def _check_path(path: Path) -> None:
    if not path.exists():
        raise VideoDecodeError(path, "missing: no such file")
    if not path.is_file():
        raise VideoDecodeError(path, "unreadable: not a regular file")
    if not os.access(path, os.R_OK):
        raise VideoDecodeError(path, "unreadable: permission denied")
    if path.stat().st_size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")


def _open(path: Path) -> av.container.InputContainer:
    _check_path(path)
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoDecodeError(path, f"corrupt: cannot open container ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(path, "corrupt: no video stream")
    return container


def declared_frame_count(path: str | os.PathLike[str]) -> int | None:
    """Frame count the container header declares, or None when it declares none."""
    container = _open(Path(path))
    try:
        n = container.streams.video[0].frames
    finally:
        container.close()
    return int(n) if n and n > 0 else None


def _to_rgb(frame: av.VideoFrame, size: tuple[int, int] | None) -> np.ndarray:
    rgb = frame.to_ndarray(format="rgb24")
    if size is None or (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    # INTER_AREA avoids aliasing when shrinking; bilinear is the usual choice when enlarging.
    shrinking = size[0] * size[1] < rgb.shape[0] * rgb.shape[1]
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def iter_frames(
    path: str | os.PathLike[str],
    *,
    short_side: int | None = 256,
    min_frames: int = 2,
) -> Iterator[np.ndarray]:
    """Yield frames of ``path`` one at a time as (H, W, 3) uint8 RGB arrays.

    The checks of :func:`decode_video` run as the stream goes: errors are raised when found,
    so a corrupt or truncated clip raises after its good frames have been yielded.
    """
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        declared = int(stream.frames or 0)
        size = None
        n = packets = 0
        try:
            for packet in container.demux(stream):
                if packet.size:
                    packets += 1
                for frame in packet.decode():
                    if size is None:
                        size = resized_size(frame.width, frame.height, short_side)
                    yield _to_rgb(frame, size)
                    n += 1
        except av.FFmpegError as exc:
            reason = f"corrupt: decoding failed after {n} frames ({exc})"
            raise VideoDecodeError(path, reason, frames=n) from exc
        if n == 0:
            raise VideoDecodeError(
                path, "no frames: the video stream decodes to zero frames (empty or corrupt)"
            )
        if declared and n < declared:
            if packets < declared:  # the data of the missing frames is not in the file
                raise VideoDecodeError(
                    path, f"truncated: decoded {n} frames but the container declares {declared}",
                    frames=n,
                )
            # Every packet is there but some decode to no picture: Xvid/DivX AVIs store
            # "not coded" placeholder frames this way. The clip is whole.
            logger.info("%s: %d of %d declared frames are placeholders (not coded)",
                        path, declared - n, declared)
        if n < min_frames:
            raise VideoDecodeError(
                path, f"too short: {n} frame(s), need at least {min_frames} (flow needs 2)"
            )
    finally:
        container.close()


def decode_video(
    path: str | os.PathLike[str],
    *,
    short_side: int | None = 256,
    min_frames: int = 2,
) -> np.ndarray:
    """Decode a whole video to a (T, H, W, 3) uint8 RGB array.

    Parameters
    ----------
    path:
        Video file (any container/codec FFmpeg reads: HMDB51's .avi, .mp4, ...).
    short_side:
        Resize every frame so its shorter side has this many pixels, keeping the aspect ratio
        (HMDB51's 320x240 becomes 341x256). ``None`` keeps the native size.
    min_frames:
        Fewer decoded frames than this is an error (default 2: optical flow needs a pair).

    Raises
    ------
    VideoDecodeError
        Missing or unreadable path, empty file, corrupt container or stream, zero frames,
        fewer than ``min_frames`` frames, or truncated (fewer decoded frames than the container
        declares because packets are missing; "not coded" placeholder packets, which decode
        to no picture, do not count as missing). The message names the path and the reason.
    """
    frames = list(iter_frames(path, short_side=short_side, min_frames=min_frames))
    return np.stack(frames)
