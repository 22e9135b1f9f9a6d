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

import logging
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from twostream.atomic import write_text_atomic
from twostream.errors import DatasetError
from twostream.textfiles import read_text

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


def parse_split_file(path: str | os.PathLike[str]) -> tuple[list[tuple[str, int]], list[str]]:
    """Parse one ``<class>_test_split<k>.txt``.

    Returns ``(pairs, bad_lines)``: ``(clip file name, flag)`` per usable line, and
    ``"<file>:<line number>: <text>"`` for lines that are not ``<name> <0|1|2>``. Trailing
    spaces, tabs, CRLF/CR line ends and blank lines are accepted. The flag is the last
    whitespace-separated field, so a name with inner spaces survives.
    """
    numbered, bad = _parse_numbered(Path(path))
    return [(clip, flag) for _, clip, flag in numbered], bad


def _parse_numbered(path: Path) -> tuple[list[tuple[int, str, int]], list[str]]:
    """:func:`parse_split_file` with each pair's line number: ``(line, clip, flag)``."""
    pairs: list[tuple[int, str, int]] = []
    bad: list[str] = []
    for i, line in enumerate(read_text(path).splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            bad.append(f"{path.name}:{i}: {line}")
            continue
        pairs.append((i, parts[0].strip(), int(parts[1])))
    return pairs, bad


def _refuse_two_flags(path: Path, numbered: list[tuple[int, str, int]]
                      ) -> list[tuple[int, str, int]]:
    """The pairs of one split file, each clip once; a clip given two flags (train and test:
    a leak) is a :class:`DatasetError` naming both lines."""
    first: dict[str, tuple[int, int]] = {}
    unique = []
    for line, clip, flag in numbered:
        if clip in first:
            line0, flag0 = first[clip]
            if flag0 != flag:
                raise DatasetError(
                    f"{path}:{line}: {clip} is flagged {flag} ({FLAGS[flag]}) here and {flag0} "
                    f"({FLAGS[flag0]}) on line {line0}: a clip in both the training and the "
                    "test list would leak; keep one line"
                )
            continue
        first[clip] = (line, flag)
        unique.append((line, clip, flag))
    return unique


def _refuse_shared_stems(entries: dict[int, list[SplitEntry]]) -> None:
    """Two videos of one class with one stem (``a.avi``, ``a.mp4``) would share one clip
    folder and be listed twice: a :class:`DatasetError` naming both."""
    seen: dict[tuple[str, str], str] = {}
    for es in entries.values():
        for e in es:
            if not e.flag:
                continue
            key = (e.class_name, Path(e.clip).stem)
            other = seen.setdefault(key, e.clip)
            if other != e.clip:
                raise DatasetError(
                    f"{e.class_name}/{other} and {e.class_name}/{e.clip} would share one clip "
                    f"folder ({e.class_name}/{key[1]}): rename or remove one of them"
                )


def _warn_unlistable_names(classes: list[str], entries: dict[int, list[SplitEntry]]) -> None:
    """MMAction2 splits list lines on whitespace: a class or clip name with a space gives
    lists it cannot parse (twostream's own reader can)."""
    names = [c for c in classes if any(ch.isspace() for ch in c)]
    names += sorted({e.key for es in entries.values() for e in es if e.flag
                     and any(ch.isspace() for ch in Path(e.clip).stem)})
    if names:
        logger.warning(
            "%d class or clip name(s) hold whitespace, e.g. %r: twostream reads the lists, "
            "MMAction2 cannot (it splits lines on whitespace); to use them there, rename the "
            "folders and videos with '_' for spaces and extract again", len(names), names[0])


def load_splits(
    splits_dir: str | os.PathLike[str], videos_dir: str | os.PathLike[str]
) -> Splits:
    """Read every split file in ``splits_dir`` and check it against ``videos_dir``.

    Raises :class:`DatasetError` when a folder is missing, ``videos_dir`` has no class
    folders, ``splits_dir`` has no ``<class>_test_split<k>.txt`` file, a split file gives one
    clip two flags (``file:line``), or two videos of a class share a stem. Everything else
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
        numbered, bad = _parse_numbered(path)
        result.bad_lines.extend(bad)
        for _, clip, flag in _refuse_two_flags(path, numbered):
            named.add((cls, clip))
            if clip not in on_disk.get(cls, ()):
                missing.add(f"{cls}/{clip}")
                continue
            per_split[k].append(SplitEntry(cls, clip, flag))
    result.entries = {
        k: sorted(es, key=lambda e: (e.class_name, e.clip)) for k, es in sorted(per_split.items())
    }
    _refuse_shared_stems(result.entries)
    _warn_unlistable_names(classes, result.entries)
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
