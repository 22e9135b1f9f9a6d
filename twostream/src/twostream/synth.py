"""A small synthetic dataset in HMDB51's on-disk format, for offline tests and the demo.

Two families of classes, so each stream of a two-stream network has something to learn:

- ``appearance_*``: static scenes that differ only in colour and texture (a single frame is
  enough; optical flow carries nothing but noise);
- ``motion_*``: the same look for every class (a randomly textured object on a textured
  background) that differs only in how it moves: direction, speed, rotation or zoom (a single
  frame says nothing; flow says everything).

Nuisance factors vary per clip (position, phase, tint, speed jitter, sensor noise), so the task
is learnable but not trivial. Videos are real encoded AVI files (MPEG-4 Part 2, like HMDB51's
DivX/Xvid) under ``videos/<class>/<clip>.avi``; splits are ``splits/<class>_test_split{1,2,3}.txt``
with 70/30 train/test per class, a different seeded partition per split, lines ending in a
space as in the real files (half the classes also with CRLF). The same arguments give the same
bytes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from twostream.atomic import write_text_atomic
from twostream.errors import OptionError, TwostreamError, writing

__all__ = [
    "APPEARANCES",
    "MOTIONS",
    "SynthInfo",
    "class_names",
    "make_synthetic_dataset",
    "read_synth_record",
    "render_appearance_clip",
    "render_motion_clip",
    "write_avi",
]

logger = logging.getLogger(__name__)

SYNTH_RECORD = "synth.json"
MAX_SIDE = 1920  # px: a synthetic clip is rendered whole in memory
MAX_FPS = 120
MAX_PIXELS = 50_000_000  # width x height x frames of one clip: 150 MB of RGB

_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 200),
    "yellow": (220, 200, 40),
    "cyan": (40, 190, 200),
    "magenta": (190, 50, 180),
    "orange": (230, 120, 30),
    "purple": (110, 50, 160),
    "grey": (128, 128, 128),
}
_TEXTURES = ("stripes", "checker", "dots", "blobs")

# Motion kind -> (vx, vy) in units of the base speed, rotation (deg/frame), zoom (per frame).
# Ordered so that small class counts still get clearly different motions.
MOTIONS: dict[str, tuple[float, float, float, float]] = {
    "right": (1, 0, 0, 1),
    "left": (-1, 0, 0, 1),
    "up": (0, -1, 0, 1),
    "down": (0, 1, 0, 1),
    "rotate_cw": (0, 0, 6, 1),
    "rotate_ccw": (0, 0, -6, 1),
    "zoom_in": (0, 0, 0, 1.03),
    "zoom_out": (0, 0, 0, 1 / 1.03),
    "up_right": (0.7, -0.7, 0, 1),
    "down_left": (-0.7, 0.7, 0, 1),
    "up_left": (-0.7, -0.7, 0, 1),
    "down_right": (0.7, 0.7, 0, 1),
    "right_fast": (2.2, 0, 0, 1),
    "left_fast": (-2.2, 0, 0, 1),
    "up_fast": (0, -2.2, 0, 1),
    "down_fast": (0, 2.2, 0, 1),
}


def _appearance_names(n: int) -> list[str]:
    colours = list(_COLOURS)
    nc, nt = len(colours), len(_TEXTURES)
    if n > nc * nt:
        raise OptionError(f"at most {nc * nt} appearance classes are available, asked for {n}")
    # Colour and texture both change from one class to the next; all pairs are distinct.
    return [f"{colours[i % nc]}_{_TEXTURES[(i + i // nc) % nt]}" for i in range(n)]


APPEARANCES: list[str] = _appearance_names(len(_COLOURS) * len(_TEXTURES))

# Real HMDB51 names look like `Glory_(1989)_brush_hair_h_nm_np1_ba_goo_0.avi`; these prefixes
# carry the awkward characters real names have (! & # ( ) [ ] ' + , ;).
_PREFIXES = (
    "Glory_(1989)",
    "#20_Rhythm",
    "Tips!_&_Tricks",
    "Ocean's_Eleven",
    "[HD]_Home_Video",
    "A+_Moves",
    "Part_1,_Take_2",
    "Me;_Myself",
    "Faster!_Faster!",
    "Show_(Live)_[2008]",
)


def class_names(n_classes: int) -> list[str]:
    """Sorted names for ``n_classes`` classes: about half ``appearance_*``, half ``motion_*``."""
    if n_classes < 2:
        raise OptionError(f"need at least 2 classes, got {n_classes}")
    n_motion = n_classes // 2
    n_app = n_classes - n_motion
    if n_motion > len(MOTIONS):
        raise OptionError(
            f"at most {len(MOTIONS)} motion classes are available, asked for {n_motion}"
        )
    names = [f"appearance_{a}" for a in _appearance_names(n_app)]
    names += [f"motion_{m}" for m in list(MOTIONS)[:n_motion]]
    return sorted(names)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    """Zero-mean, unit-std smooth random field."""
    x = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), sigma)
    return (x - x.mean()) / (x.std() + 1e-6)


def _texture(kind: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A [0, 1] pattern with a random phase, angle and scale (the per-clip nuisance)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(-0.3, 0.3)
    period = rng.uniform(0.16, 0.22) * min(h, w)
    u = (xx * math.cos(angle) + yy * math.sin(angle)) / period + rng.uniform(0, 1)
    v = (-xx * math.sin(angle) + yy * math.cos(angle)) / period + rng.uniform(0, 1)
    if kind == "stripes":
        return 0.5 + 0.5 * np.sin(2 * np.pi * u)
    if kind == "checker":
        return ((np.floor(2 * u) + np.floor(2 * v)) % 2).astype(np.float32)
    if kind == "dots":
        d = np.hypot(u - np.round(u), v - np.round(v))
        return (d < 0.25).astype(np.float32)
    if kind == "blobs":
        return (_smooth_noise(rng, h, w, period / 4) > 0).astype(np.float32)
    raise ValueError(f"unknown texture {kind!r}; allowed: {', '.join(_TEXTURES)}")


def _finish(frames: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    frames = frames + rng.normal(0.0, noise, frames.shape).astype(np.float32)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def render_appearance_clip(
    name: str, rng: np.random.Generator, *, width: int, height: int, frames: int
) -> np.ndarray:
    """Render a static ``appearance_*`` clip (``name`` without the prefix, e.g. ``red_stripes``)."""
    colour_name, texture = name.split("_", 1)
    base = np.array(_COLOURS[colour_name], np.float32) * rng.uniform(0.85, 1.15)
    pattern = _texture(texture, rng, height, width)[..., None]
    # Texture modulates the colour between a dark and a light shade of it.
    image = base * (0.45 + 0.75 * pattern)
    # A still grey distractor blob at a random place, so position is not a shortcut.
    cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
    yy, xx = np.mgrid[0:height, 0:width]
    r = rng.uniform(0.08, 0.15) * min(width, height)
    blob = (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r)[..., None]
    image = np.where(blob, 128.0, image)
    clip = np.broadcast_to(image, (frames, height, width, 3)).astype(np.float32)
    return _finish(clip, rng, noise=3.0)


def _motion_params(kind: str, rng: np.random.Generator, width: int) -> tuple[float, ...]:
    vx, vy, omega, zoom = MOTIONS[kind]
    speed = 0.015 * width * rng.uniform(0.8, 1.2)
    omega = omega * rng.uniform(0.8, 1.2)
    zoom = zoom ** rng.uniform(0.8, 1.2)
    return vx * speed, vy * speed, omega, zoom


def render_motion_clip(
    kind: str, rng: np.random.Generator, *, width: int, height: int, frames: int
) -> np.ndarray:
    """Render a ``motion_*`` clip: a textured disc on a textured background, moving as ``kind``.

    Every kind uses the same distribution of looks; only the motion differs.
    """
    if kind not in MOTIONS:
        raise ValueError(f"unknown motion {kind!r}; allowed: {', '.join(MOTIONS)}")
    vx, vy, omega, zoom = _motion_params(kind, rng, width)
    background = 110 + 25 * _smooth_noise(rng, height, width, 2.0)[..., None]
    background = np.repeat(background, 3, axis=2)
    size = int(0.42 * min(width, height)) | 1
    tint = rng.uniform(0.6, 1.4, 3).astype(np.float32)
    obj = 128 + 70 * _smooth_noise(rng, size, size, 1.2)[..., None] * tint
    obj = np.clip(obj, 0, 255).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2
    mask = (((yy - c) ** 2 + (xx - c) ** 2) <= c * c).astype(np.float32)
    # Start where the whole path stays inside the frame.
    margin = c + 2
    span_x, span_y = vx * (frames - 1), vy * (frames - 1)
    lo_x, hi_x = margin + max(0.0, -span_x), width - margin - max(0.0, span_x)
    lo_y, hi_y = margin + max(0.0, -span_y), height - margin - max(0.0, span_y)
    x0 = rng.uniform(lo_x, hi_x) if hi_x > lo_x else width / 2 - span_x / 2
    y0 = rng.uniform(lo_y, hi_y) if hi_y > lo_y else height / 2 - span_y / 2
    angle0 = rng.uniform(0, 360)
    out = np.empty((frames, height, width, 3), np.float32)
    for t in range(frames):
        m = cv2.getRotationMatrix2D((c, c), angle0 + omega * t, zoom**t)
        m[:, 2] += (x0 + vx * t - c, y0 + vy * t - c)
        warped = cv2.warpAffine(obj, m, (width, height), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(mask, m, (width, height), flags=cv2.INTER_LINEAR)[..., None]
        out[t] = alpha * warped + (1 - alpha) * background
    return _finish(out, rng, noise=3.0)


def write_avi(path: str | os.PathLike[str], frames: np.ndarray, *, fps: int = 25) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as an MPEG-4 Part 2 AVI (even width and height)."""
    t, h, w, _ = frames.shape
    with av.open(str(path), mode="w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        # High bit rate: compression artefacts would add spurious flow on tiny frames.
        stream.bit_rate = int(w * h * fps * 2)
        stream.codec_context.thread_count = 1  # one thread: identical bytes on every run
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@dataclass
class SynthInfo:
    """What :func:`make_synthetic_dataset` wrote.

    ``classes`` is sorted, so a class's label is its index. ``clips`` maps a class to its clip
    file names; ``kinds`` maps a class to ``"appearance"`` or ``"motion"``.
    """

    out_dir: Path
    videos_dir: Path
    splits_dir: Path
    classes: list[str]
    clips: dict[str, list[str]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    width: int = 160
    height: int = 120
    frames: int = 24
    fps: int = 25

    def __getitem__(self, key: str):  # also readable as a mapping: info["classes"]
        return getattr(self, key)


def _clip_names(cls: str, n: int, rng: np.random.Generator) -> list[str]:
    names = []
    for j in range(n):
        prefix = _PREFIXES[int(rng.integers(len(_PREFIXES)))]
        body = "fhul"[int(rng.integers(4))]
        view = ("fr", "ba", "le", "ri")[int(rng.integers(4))]
        quality = ("goo", "med", "bad")[int(rng.integers(3))]
        names.append(f"{prefix}_{cls}_{body}_nm_np1_{view}_{quality}_{j}.avi")
    return names


def make_synthetic_dataset(
    out_dir: str | os.PathLike[str],
    *,
    classes: int,
    clips_per_class: int,
    seed: int = 0,
    width: int = 160,
    height: int = 120,
    frames: int = 24,
    fps: int = 25,
) -> SynthInfo:
    """Write a synthetic HMDB51-format dataset under ``out_dir`` and describe it.

    Parameters
    ----------
    out_dir:
        Receives ``videos/<class>/<clip>.avi``, ``splits/<class>_test_split{1,2,3}.txt`` and,
        last, ``synth.json`` (these arguments). Must be missing or empty.
    classes:
        Number of classes (2..); ``classes - classes // 2`` are ``appearance_*``, the rest
        ``motion_*``.
    clips_per_class:
        Clips per class (2..); each split puts round(70 %) of them in train (flag 1) and the
        rest in test (flag 2), with a different seeded partition per split.
    seed:
        Everything random derives from it: the same arguments give the same bytes.
    width, height, frames, fps:
        Video geometry (width and height even, 32..1920), length (>= 2 frames, width x height
        x frames at most 50 million) and frame rate (1..120).

    The dataset is written into a hidden sibling folder and renamed into place, so a failure
    leaves nothing behind.

    Examples
    --------
    >>> import tempfile
    >>> info = make_synthetic_dataset(tempfile.mkdtemp(), classes=2, clips_per_class=2,
    ...                               width=64, height=48, frames=4)
    >>> info.classes
    ['appearance_red_stripes', 'motion_right']
    """
    if clips_per_class < 2:
        raise OptionError(
            f"clips_per_class must be >= 2 (one train, one test), got {clips_per_class}"
        )
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise OptionError(f"width and height must be even and >= 32, got {width}x{height}")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise OptionError(f"width and height must be at most {MAX_SIDE}, got {width}x{height}")
    if frames < 2:
        raise OptionError(f"frames must be >= 2, got {frames}")
    if width * height * frames > MAX_PIXELS:
        raise OptionError(f"a clip of {frames} frames of {width}x{height} is rendered whole in "
                          f"memory: keep width x height x frames at most {MAX_PIXELS:,}")
    if not 1 <= fps <= MAX_FPS:
        raise OptionError(f"fps must be 1-{MAX_FPS}, got {fps}")
    if seed < 0:
        raise OptionError(f"seed must be 0 or more, got {seed}")
    names = class_names(classes)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        # Writing into an existing dataset would rewrite its split files and mix its videos
        # with new ones.
        raise TwostreamError(f"{out} is not empty: synth writes a whole new dataset; choose "
                             "a new folder or empty this one")
    # Written aside and renamed into place: a failure or a kill leaves no half-written
    # folder to block the rerun.
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    with writing(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "splits").mkdir(parents=True)
    try:
        info = _write_dataset(tmp, names, clips_per_class=clips_per_class, seed=seed,
                              width=width, height=height, frames=frames, fps=fps)
        with writing(out):
            if out.is_dir():
                out.rmdir()  # empty: checked above
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    info.out_dir, info.videos_dir, info.splits_dir = out, out / "videos", out / "splits"
    logger.info("wrote %d classes x %d clips to %s", classes, clips_per_class, out)
    return info


def _write_dataset(out: Path, names: list[str], *, clips_per_class: int, seed: int,
                   width: int, height: int, frames: int, fps: int) -> SynthInfo:
    info = SynthInfo(
        out_dir=out, videos_dir=out / "videos", splits_dir=out / "splits", classes=names,
        seed=seed, width=width, height=height, frames=frames, fps=fps,
    )
    for ci, cls in enumerate(names):
        kind, sub = cls.split("_", 1)
        info.kinds[cls] = kind
        clip_dir = info.videos_dir / cls
        clip_dir.mkdir(parents=True, exist_ok=True)
        clips = _clip_names(cls, clips_per_class, np.random.default_rng([seed, ci, 1]))
        info.clips[cls] = clips
        render = render_appearance_clip if kind == "appearance" else render_motion_clip
        for j, clip in enumerate(clips):
            rng = np.random.default_rng([seed, ci, 2, j])
            video = render(sub, rng, width=width, height=height, frames=frames)
            write_avi(clip_dir / clip, video, fps=fps)
        n_train = min(clips_per_class - 1, max(1, round(0.7 * clips_per_class)))
        newline = "\r\n" if ci % 2 else "\n"  # the real files mix line endings
        for k in (1, 2, 3):
            order = np.random.default_rng([seed, ci, 3, k]).permutation(clips_per_class)
            flags = np.empty(clips_per_class, int)
            flags[order[:n_train]] = 1
            flags[order[n_train:]] = 2
            pairs = zip(clips, flags, strict=True)
            lines = "".join(f"{clip} {flag} {newline}" for clip, flag in pairs)
            (info.splits_dir / f"{cls}_test_split{k}.txt").write_bytes(lines.encode())
    # Written last: its presence says the dataset is whole, and what made it.
    record = {"classes": names, "clips_per_class": clips_per_class, "seed": seed,
              "width": width, "height": height, "frames": frames, "fps": fps}
    write_text_atomic(out / SYNTH_RECORD, json.dumps(record, indent=2) + "\n")
    return info


def read_synth_record(out_dir: str | os.PathLike[str]) -> dict | None:
    """What :func:`make_synthetic_dataset` recorded in ``out_dir``; None if it never finished
    there."""
    try:
        return json.loads((Path(out_dir) / SYNTH_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
