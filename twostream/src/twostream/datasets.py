"""Rawframe datasets for the spatial (RGB) and temporal (stacked flow) streams.

Reads what ``twostream extract`` writes, in MMAction2's layout, or the same layout made by
MMAction2's own tools (``annotations/classInd.txt`` in place of ``classes.txt``; see
:func:`read_class_list`)::

    RAWFRAMES_DIR/classes.txt                              one class per line; label = index
    RAWFRAMES_DIR/hmdb51_{train,val}_split_{k}_rawframes.txt   "<class>/<clip> <n_frames> <label>"
    RAWFRAMES_DIR/rawframes/<class>/<clip>/img_00001.jpg, flow_x_00001.jpg, flow_y_00001.jpg

Sampling follows Simonyan & Zisserman (2014):

* training, spatial: one random frame per clip per epoch, a random ``crop`` x ``crop`` window
  and a horizontal flip with probability 1/2, ImageNet normalisation;
* training, temporal: a random start and L consecutive flow pairs stacked as 2L channels
  (``x1, y1, ..., xL, yL``), same crop and flip; flipping negates the x displacements;
* test: ``segments`` (25) evenly spaced frames or stacks per clip, the centre crop or
  10 crops (4 corners + centre, and their flips); the caller averages the scores.

A clip of n frames has n - 1 flow fields; ``extract`` also writes flow n as a copy of flow
n - 1 for MMAction2's sake, and MMAction2's own tools write no such copy. Sampling here reads
flow 1..n-1 only, so it works on both and never takes the copy for motion.

Flow JPEGs are mapped back to displacements in pixels (``value / 255 * 2 * bound - bound``)
and each displacement field has its mean subtracted (camera-motion compensation).

Randomness: every training sample draws from a generator seeded by ``(seed, epoch, clip name)``,
so the samples do not depend on the number of loader workers or on resuming mid-run.

Unreadable or missing frames never crash an epoch: clips whose frame folder is missing or too
short are dropped when the dataset is built (see :attr:`RawframeDataset.skipped`); a frame that
fails to decode makes ``__getitem__`` return ``None`` with a warning, and :func:`collate_skip`
drops it from the batch.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

try:  # faster; Pillow reads the JPEGs where OpenCV is absent (benchmarks/gpu_check.py)
    import cv2
except ImportError:
    cv2 = None

from twostream.errors import DatasetError
from twostream.flow.methods import dequantize_flow
from twostream.textfiles import read_text

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Clip",
    "RawframeDataset",
    "annotation_path",
    "collate_skip",
    "flow_stack_views",
    "read_annotations",
    "read_class_list",
    "read_extract_settings",
    "rgb_views",
    "view_positions",
]

logger = logging.getLogger(__name__)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
STREAMS = ("spatial", "temporal")


@dataclass(frozen=True)
class Clip:
    """One line of an annotation list: ``<class>/<clip stem> <total_frames> <label>``."""

    name: str
    num_frames: int
    label: int


def read_class_list(root: str | Path) -> list[str]:
    """Class names of a rawframes folder; label = index in the returned list.

    From ``root/classes.txt`` (written by ``twostream extract``), else
    ``root/annotations/classInd.txt`` (MMAction2's ``tools/data/parse_file_list.py``: lines
    ``<id> <name>``, ids from 1, label = id - 1), else the sorted class folder names under
    ``root/rawframes`` (the order MMAction2 numbers HMDB51's classes in).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"rawframes folder not found: {root} (run `twostream extract` first)")
    path = root / "classes.txt"
    if path.is_file():
        classes = [line.strip() for line in read_text(path).splitlines()]
        return [c for c in classes if c]
    index = root / "annotations" / "classInd.txt"
    if index.is_file():
        return _read_class_index(index)
    folders = root / "rawframes"
    classes = sorted(p.name for p in folders.iterdir()
                     if p.is_dir() and not p.name.startswith(".")) if folders.is_dir() else []
    if not classes:
        raise DatasetError(f"no class list in {root}: expected classes.txt, "
                           "annotations/classInd.txt or class folders under rawframes/ "
                           "(run `twostream extract` first)")
    logger.info("class names from the sorted folder names under %s", folders)
    return classes


def _read_class_index(path: Path) -> list[str]:
    ids: dict[int, str] = {}
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        try:
            ids[int(parts[0])] = parts[1].strip()
        except (IndexError, ValueError):
            raise DatasetError(f"{path}:{lineno}: expected '<id> <class name>', got {line!r}"
                               ) from None
    if sorted(ids) != list(range(1, len(ids) + 1)):
        raise DatasetError(f"{path}: class ids must run 1..{len(ids)}, got {sorted(ids)[:5]}...")
    return [ids[i] for i in range(1, len(ids) + 1)]


def read_extract_settings(root: str | Path) -> dict:
    """Settings ``twostream extract`` used (flow method, short side, bound, JPEG quality), from
    ``root/extract_report.json``; empty when the folder was made another way."""
    path = Path(root) / "extract_report.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")).get("settings") or {})
    except (OSError, ValueError, AttributeError):
        return {}


def annotation_path(root: str | Path, split: int, subset: str) -> Path:
    """Path of MMAction2's list for ``subset`` ("train" or "val") of ``split`` (1-3)."""
    if subset not in ("train", "val"):
        raise ValueError(f"subset must be 'train' or 'val', got {subset!r}")
    return Path(root) / f"hmdb51_{subset}_split_{split}_rawframes.txt"


def read_annotations(path: str | Path, classes: Sequence[str] | None = None) -> list[Clip]:
    """Parse an annotation list. Clip names may contain spaces: the last two fields are numbers.

    With ``classes``, each label must name the class folder its clip sits in
    (``<class>/<clip>``); the first line that disagrees is a :class:`DatasetError`.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"annotation list not found: {path} (run `twostream extract` first)")
    clips = []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=2)
        try:
            clip = Clip(parts[0], int(parts[1]), int(parts[2]))
        except (IndexError, ValueError):
            raise DatasetError(
                f"{path}:{lineno}: expected '<class>/<clip> <total_frames> <label>', got {line!r}"
            ) from None
        if classes is not None:
            _check_label(path, lineno, clip, classes)
        clips.append(clip)
    return clips


def _check_label(path: Path, lineno: int, clip: Clip, classes: Sequence[str]) -> None:
    folder = clip.name.split("/", 1)[0] if "/" in clip.name else None
    if not 0 <= clip.label < len(classes):
        raise DatasetError(f"{path}:{lineno}: label {clip.label} of {clip.name!r} is outside "
                           f"the {len(classes)} classes of the class list")
    if folder is not None and classes[clip.label] != folder:
        raise DatasetError(
            f"{path}:{lineno}: label {clip.label} is {classes[clip.label]!r} in the class list, "
            f"but the clip {clip.name!r} is in folder {folder!r}: the list and the class names "
            "disagree (fix the list, or the class list it was written with)"
        )


def view_positions(count: int, segments: int) -> np.ndarray:
    """``segments`` evenly spaced 0-based positions among ``count`` (centres of equal bins)."""
    count = max(count, 1)
    return ((np.arange(segments) + 0.5) * count / segments).astype(np.int64).clip(0, count - 1)


def _crop_boxes(h: int, w: int, crop: int, crops: int) -> list[tuple[int, int, bool]]:
    """(top, left, flip) of the test crops: the centre, or 4 corners + centre and their flips."""
    centre = ((h - crop) // 2, (w - crop) // 2)
    if crops == 1:
        return [(*centre, False)]
    if crops != 10:
        raise ValueError(f"crops must be 1 or 10, got {crops}")
    corners = [(0, 0), (0, w - crop), (h - crop, 0), (h - crop, w - crop), centre]
    return [(t, left, False) for t, left in corners] + [(t, left, True) for t, left in corners]


def _fit(img: np.ndarray, crop: int) -> np.ndarray:
    """Upscale (keeping the aspect ratio) when the short side is below ``crop``."""
    h, w = img.shape[:2]
    if min(h, w) >= crop:
        return img
    scale = crop / min(h, w)
    size = (max(crop, round(w * scale)), max(crop, round(h * scale)))
    if img.ndim == 2 or img.dtype == np.uint8:
        return np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))
    chans = [Image.fromarray(img[..., c]).resize(size, Image.BILINEAR) for c in range(img.shape[2])]
    return np.stack([np.asarray(c) for c in chans], axis=-1)


def _normalise_rgb(img: np.ndarray) -> torch.Tensor:
    x = (img.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def _stack_flow(pairs: Sequence[tuple[np.ndarray, np.ndarray]], bound: float) -> np.ndarray:
    """(H, W, 2L) float32 displacements, channels x1, y1, ..., each field minus its mean."""
    chans = []
    for fx, fy in pairs:
        for f in (fx, fy):
            d = dequantize_flow(f, bound)
            chans.append(d - d.mean())
    return np.stack(chans, axis=-1)


def _flow_tensor(stack: np.ndarray, top: int, left: int, crop: int, flip: bool) -> torch.Tensor:
    x = stack[top : top + crop, left : left + crop]
    if flip:
        x = x[:, ::-1].copy()
        x[..., 0::2] *= -1.0  # mirrored motion: horizontal displacements change sign
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def rgb_views(
    frame: np.ndarray, *, crop: int, crops: int = 1
) -> list[torch.Tensor]:
    """Test views of one RGB frame (H, W, 3 uint8): normalised ``(3, crop, crop)`` tensors."""
    img = _fit(frame, crop)
    h, w = img.shape[:2]
    out = []
    for top, left, flip in _crop_boxes(h, w, crop, crops):
        x = img[top : top + crop, left : left + crop]
        out.append(_normalise_rgb(x[:, ::-1] if flip else x))
    return out


def flow_stack_views(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], *, bound: float, crop: int, crops: int = 1
) -> list[torch.Tensor]:
    """Test views of one stack of L quantised flow pairs: ``(2L, crop, crop)`` tensors."""
    stack = _fit(_stack_flow(pairs, bound), crop)
    h, w = stack.shape[:2]
    return [_flow_tensor(stack, t, left, crop, f) for t, left, f in _crop_boxes(h, w, crop, crops)]


def _read_jpeg(path: Path, mode: str) -> np.ndarray:
    # OpenCV decodes these JPEGs ~1.4-1.8x faster than Pillow (benchmarks/train_throughput.py);
    # both use libjpeg(-turbo), and give the same pixels on twostream's JPEGs.
    if cv2 is None:
        with Image.open(path) as img:  # OSError when missing or corrupt, as below
            return np.asarray(img.convert(mode))
    flag = cv2.IMREAD_GRAYSCALE if mode == "L" else cv2.IMREAD_COLOR
    img = cv2.imread(str(path), flag)
    if img is None:  # OpenCV signals a missing or corrupt file by returning None
        raise OSError(f"cannot read {path}")
    return img if mode == "L" else img[..., ::-1]


class RawframeDataset(torch.utils.data.Dataset):
    """Frames (spatial) or flow stacks (temporal) of the clips of one annotation list.

    Args:
        root: the rawframes folder written by ``twostream extract``.
        clips: the clips to serve (from :func:`read_annotations`).
        stream: ``"spatial"`` (RGB frames) or ``"temporal"`` (stacked flow).
        train: training sampling (one random view per clip) or the test protocol.
        crop: side of the square input.
        new_length: L, flow pairs per stack (temporal only).
        segments: evenly spaced frames or stacks per clip at test time.
        crops: 1 (centre) or 10 (corners + centre, and flips) at test time.
        bound: the flow bound used when the flow JPEGs were written.
        seed: seed of the training-time sampling.
        flip: random horizontal flips in training. Turn off when classes are mirror images
            of each other (e.g. "move left" vs "move right"): a flip would swap their labels.

    Training items are ``(x, label)`` with ``x`` of shape ``(C, crop, crop)``; test items are
    ``(x, label, index)`` with ``x`` of shape ``(segments * crops, C, crop, crop)``. An item whose
    frames cannot be read is ``None`` (use :func:`collate_skip`).
    """

    def __init__(
        self,
        root: str | Path,
        clips: Sequence[Clip],
        *,
        stream: str,
        train: bool,
        crop: int = 224,
        new_length: int = 10,
        segments: int = 25,
        crops: int = 1,
        bound: float = 20.0,
        seed: int = 0,
        flip: bool = True,
    ) -> None:
        if stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
        if crops not in (1, 10):
            raise ValueError(f"crops must be 1 or 10, got {crops}")
        self.root = Path(root)
        self.frames_dir = self.root / "rawframes"
        if not self.frames_dir.is_dir():
            raise DatasetError(f"rawframes folder not found: {self.frames_dir}")
        self.stream = stream
        self.train = train
        self.crop = crop
        self.new_length = new_length
        self.segments = segments
        self.crops = crops
        self.bound = bound
        self.seed = seed
        self.flip = flip
        self.epoch = 0
        self.clips: list[Clip] = []
        self.skipped: list[tuple[str, str]] = []
        for clip in clips:
            reason = self._check(clip)
            if reason is None:
                self.clips.append(clip)
            else:
                self.skipped.append((clip.name, reason))
        if self.skipped:
            logger.warning(
                "%d clip(s) skipped (missing or incomplete frames), e.g. %s: %s",
                len(self.skipped), *self.skipped[0],
            )

    @property
    def in_chans(self) -> int:
        return 3 if self.stream == "spatial" else 2 * self.new_length

    def _check(self, clip: Clip) -> str | None:
        folder = self.frames_dir / clip.name
        if not folder.is_dir():
            return f"folder missing: {folder}"
        if clip.num_frames < (1 if self.stream == "spatial" else 2):
            return f"too few frames ({clip.num_frames})"
        names = set(os.listdir(folder))
        if self.stream == "spatial":
            needed = [f"img_{i:05d}.jpg" for i in (1, clip.num_frames)]
        else:
            last = clip.num_frames - 1
            needed = [f"flow_{a}_{i:05d}.jpg" for a in "xy" for i in (1, last)]
        absent = [n for n in needed if n not in names]
        return f"frames missing in {folder}: {', '.join(absent)}" if absent else None

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random views training items draw."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.clips)

    def _rgb(self, clip: Clip, i: int) -> np.ndarray:
        return _read_jpeg(self.frames_dir / clip.name / f"img_{i + 1:05d}.jpg", "RGB")

    def _flow_pairs(self, clip: Clip, start: int) -> list[tuple[np.ndarray, np.ndarray]]:
        n_flow = clip.num_frames - 1
        folder = self.frames_dir / clip.name
        pairs = []
        for j in range(start, start + self.new_length):
            k = min(j, n_flow - 1) + 1  # clips shorter than L repeat their last flow field
            pairs.append(
                (
                    _read_jpeg(folder / f"flow_x_{k:05d}.jpg", "L"),
                    _read_jpeg(folder / f"flow_y_{k:05d}.jpg", "L"),
                )
            )
        return pairs

    def _starts(self, clip: Clip) -> int:
        """How many positions a view can start at: frames, or flow stacks of length L."""
        if self.stream == "spatial":
            return clip.num_frames
        return max(1, clip.num_frames - 1 - self.new_length + 1)

    def __getitem__(self, index: int):
        clip = self.clips[index]
        try:
            return self._train_item(clip) if self.train else self._test_item(clip, index)
        except (OSError, ValueError) as exc:
            # _read_jpeg raises OSError for a missing or corrupt JPEG; a frame of another
            # size than its neighbours fails the stacking with ValueError.
            logger.warning("skipped clip %s: unreadable frame (%s)", clip.name, exc)
            return None

    def _train_item(self, clip: Clip) -> tuple[torch.Tensor, int]:
        rng = np.random.default_rng([self.seed, self.epoch, _hash_name(clip.name)])
        start = int(rng.integers(self._starts(clip)))
        if self.stream == "spatial":
            fields = [_fit(self._rgb(clip, start), self.crop)]
        else:
            fields = [_fit(f, self.crop) for pair in self._flow_pairs(clip, start) for f in pair]
        h, w = fields[0].shape[:2]
        top = int(rng.integers(h - self.crop + 1))
        left = int(rng.integers(w - self.crop + 1))
        flip = bool(rng.random() < 0.5) and self.flip
        c = self.crop
        if self.stream == "spatial":
            x = fields[0][top : top + c, left : left + c]
            return _normalise_rgb(x[:, ::-1] if flip else x), clip.label
        # Dequantise only the crop; the mean subtracted is still the whole field's. Both maps
        # are linear: deq(u) - mean(deq(u)) = (u - mean(u)) * 2 * bound / 255.
        scale = 2.0 * self.bound / 255.0
        stack = np.stack(
            [(f[top : top + c, left : left + c].astype(np.float32) - np.float32(f.mean())) * scale
             for f in fields],
            axis=-1,
        )
        return _flow_tensor(stack, 0, 0, c, flip), clip.label

    def _test_item(self, clip: Clip, index: int) -> tuple[torch.Tensor, int, int]:
        views: list[torch.Tensor] = []
        for p in view_positions(self._starts(clip), self.segments):
            if self.stream == "spatial":
                views += rgb_views(self._rgb(clip, int(p)), crop=self.crop, crops=self.crops)
            else:
                pairs = self._flow_pairs(clip, int(p))
                views += flow_stack_views(pairs, bound=self.bound, crop=self.crop, crops=self.crops)
        return torch.stack(views), clip.label, index


def _hash_name(name: str) -> int:
    """A stable (process-independent) 32-bit hash of a clip name, for seeding its sampling."""
    h = 2166136261
    for b in name.encode("utf-8"):
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def collate_skip(batch: list) -> tuple | None:
    """Default collation without the ``None`` items of unreadable clips; ``None`` if none left."""
    items = [b for b in batch if b is not None]
    if not items:
        return None
    return torch.utils.data.default_collate(items)

