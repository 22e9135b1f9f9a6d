"""HMDB51's class list and split files.

As distributed: videos under ``<videos>/<class>/<clip>.avi`` and a folder of
``<class>_test_split<k>.txt`` files (k = 1, 2, 3), each line ``<clip file name> <flag>`` with
flag 1 = train, 2 = test, 0 = unused. The real files end lines with a space, some with CRLF,
and clip names hold characters such as ``! & # ( ) [ ] ' + ,``. Labels are indices into the
sorted list of class folder names.

Problems with the data (lines naming clips that do not exist, clips no split names, lines that
cannot be parsed) are collected in :class:`Splits` and logged, never raised: one bad line in
6,766 should not stop anything.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from twostream.atomic import write_text_atomic
from twostream.errors import DatasetError

__all__ = [
    "SplitEntry",
    "Splits",
    "VIDEO_EXTENSIONS",
    "load_splits",
    "parse_split_file",
    "read_classes",
    "write_classes",
]

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v")
FLAGS = {0: "unused", 1: "train", 2: "test"}
_SPLIT_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<k>\d+)\.txt$")


@dataclass(frozen=True)
class SplitEntry:
    """One clip in one split: ``flag`` 1 = train, 2 = test, 0 = unused."""

    class_name: str
    clip: str  # file name, e.g. "Glory_(1989)_brush_hair_h_nm_np1_ba_goo_0.avi"
    flag: int

    @property
    def key(self) -> str:
        """``<class>/<clip file name>``: unique across the dataset."""
        return f"{self.class_name}/{self.clip}"


@dataclass
class Splits:
    """Parsed splits checked against the videos on disk.

    ``entries[k]`` lists split k's entries whose video exists, sorted by class then clip.
    ``missing`` lists ``<class>/<clip>`` named in a split with no such video; ``unlisted``
    videos no split names; ``bad_lines`` lines that could not be parsed (``file:line: text``);
    ``without_splits`` class folders no split file names (left out of ``classes``).
    """

    classes: list[str]
    entries: dict[int, list[SplitEntry]] = field(default_factory=dict)
    without_splits: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)

    def label(self, class_name: str) -> int:
        return self.classes.index(class_name)

    def subset(self, k: int, flag: int) -> list[SplitEntry]:
        """Entries of split ``k`` with ``flag`` (1 = train, 2 = test)."""
        return [e for e in self.entries.get(k, []) if e.flag == flag]

    def empty_classes(self, k: int, flag: int) -> list[str]:
        """Classes with no clip in split ``k`` with ``flag`` (1 = train, 2 = test)."""
        present = {e.class_name for e in self.subset(k, flag)}
        return [c for c in self.classes if c not in present]

    def used_clips(self) -> list[tuple[str, str]]:
        """Sorted ``(class, clip)`` pairs that some split puts in train or test."""
        used = {(e.class_name, e.clip) for es in self.entries.values() for e in es if e.flag}
        return sorted(used)


def _video_files(class_dir: Path) -> list[str]:
    return sorted(
        p.name
        for p in class_dir.iterdir()
        if p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith(".")
    )


def read_classes(videos_dir: str | os.PathLike[str]) -> list[str]:
    """Sorted class folder names under ``videos_dir``: a class's label is its index.

    Hidden folders are ignored. Raises :class:`DatasetError` when ``videos_dir`` is missing
    or has no class folders.
    """
    root = Path(videos_dir)
    if not root.is_dir():
        raise DatasetError(
            f"videos folder not found: {root} (expected <videos>/<class>/<clip>.avi)"
        )
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(
            f"no class folders in {root} (expected <videos>/<class>/<clip>.avi)"
        )
    return classes


def write_classes(classes: list[str], path: str | os.PathLike[str]) -> None:
    """Write one class name per line, in label order (atomically: train reads it)."""
    write_text_atomic(path, "".join(f"{c}\n" for c in classes))


def _decode(raw: bytes) -> str:
    """Text of a split file: UTF-16 (with or without a BOM), UTF-8 (with or without a BOM),
    else Latin-1."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")  # the BOM picks the byte order and is dropped
    # UTF-16 without a BOM (as Windows editors save "Unicode"): ASCII names put a NUL in
    # every other byte, on the odd positions for little-endian.
    if len(raw) >= 4 and raw.count(0) * 3 >= len(raw):
        odd = raw[1::2].count(0) >= raw[0::2].count(0)
        try:
            return raw.decode("utf-16-le" if odd else "utf-16-be")
        except UnicodeDecodeError:
            pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # never fails; names stay byte-identical to the disk's
    return text.removeprefix("\ufeff")


def parse_split_file(path: str | os.PathLike[str]) -> tuple[list[tuple[str, int]], list[str]]:
    """Parse one ``<class>_test_split<k>.txt``.

    Returns ``(pairs, bad_lines)``: ``(clip file name, flag)`` per usable line, and
    ``"<file>:<line number>: <text>"`` for lines that are not ``<name> <0|1|2>``. Trailing
    spaces, tabs, CRLF/CR line ends and blank lines are accepted. The flag is the last
    whitespace-separated field, so a name with inner spaces survives.
    """
    path = Path(path)
    pairs: list[tuple[str, int]] = []
    bad: list[str] = []
    for i, line in enumerate(_decode(path.read_bytes()).splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            bad.append(f"{path.name}:{i}: {line}")
            continue
        pairs.append((parts[0].strip(), int(parts[1])))
    return pairs, bad


def load_splits(
    splits_dir: str | os.PathLike[str], videos_dir: str | os.PathLike[str]
) -> Splits:
    """Read every split file in ``splits_dir`` and check it against ``videos_dir``.

    Raises :class:`DatasetError` when a folder is missing, ``videos_dir`` has no class
    folders, or ``splits_dir`` has no ``<class>_test_split<k>.txt`` file. Everything else
    (missing clips, unlisted clips, bad lines, split files for unknown classes, class folders
    without split files, classes with no train or test clip in a split) is reported in the
    result and logged as a warning.
    """
    splits_root, videos_root = Path(splits_dir), Path(videos_dir)
    classes = read_classes(videos_root)
    if not splits_root.is_dir():
        raise DatasetError(
            f"splits folder not found: {splits_root} (expected <class>_test_split<k>.txt files)"
        )
    split_files = sorted(
        (m["cls"], int(m["k"]), p)
        for p in splits_root.iterdir()
        if p.is_file() and (m := _SPLIT_FILE.match(p.name))
    )
    if not split_files:
        raise DatasetError(
            f"no split files in {splits_root} (expected <class>_test_split<k>.txt, k = 1, 2, 3)"
        )
    # A class folder without split files would become a class no clip ever trains.
    named_classes = {cls for cls, _, _ in split_files}
    without = [c for c in classes if c not in named_classes]
    classes = [c for c in classes if c in named_classes]
    on_disk = {c: set(_video_files(videos_root / c)) for c in classes}
    result = Splits(classes=classes, without_splits=without)
    named: set[tuple[str, str]] = set()
    missing: set[str] = set()
    per_split: dict[int, list[SplitEntry]] = defaultdict(list)
    for cls, k, path in split_files:
        pairs, bad = parse_split_file(path)
        result.bad_lines.extend(bad)
        for clip, flag in pairs:
            named.add((cls, clip))
            if clip not in on_disk.get(cls, ()):
                missing.add(f"{cls}/{clip}")
                continue
            per_split[k].append(SplitEntry(cls, clip, flag))
    result.entries = {
        k: sorted(es, key=lambda e: (e.class_name, e.clip)) for k, es in sorted(per_split.items())
    }
    result.missing = sorted(missing)
    result.unlisted = sorted(
        f"{c}/{clip}" for c in classes for clip in on_disk[c] if (c, clip) not in named
    )
    if result.missing:
        logger.warning("%d clips named in split files have no video, e.g. %s",
                       len(result.missing), result.missing[0])
    if result.unlisted:
        logger.warning("%d videos are in no split, e.g. %s",
                       len(result.unlisted), result.unlisted[0])
    if result.bad_lines:
        logger.warning("%d unparseable split lines, e.g. %s",
                       len(result.bad_lines), result.bad_lines[0])
    if without:
        logger.warning("%d class folder(s) have no split file and are left out of the class "
                       "list: %s", len(without), ", ".join(without))
    for k in result.entries:
        for flag in (1, 2):
            empty = result.empty_classes(k, flag)
            if empty:
                logger.warning("split %d has no %s clip of %d class(es): %s", k, FLAGS[flag],
                               len(empty), ", ".join(empty))
    return result
