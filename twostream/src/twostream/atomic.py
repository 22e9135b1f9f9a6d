"""Write finished files so that a reader finds the old copy or the new one, never a part.

Each file is written beside its place under a hidden temporary name (``.tmp-<pid>-<random>-``
before its own name, so the extension that matplotlib and numpy read stays last), flushed to
disk, then renamed over the old copy with :func:`os.replace`, which is atomic. A crash, Ctrl-C
or a full disk before the rename leaves the old copy as it was, and the temporary file is
removed; only a ``kill -9`` can leave a ``.tmp-*`` file behind, never a truncated result.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["atomic_file", "atomic_files", "write_text_atomic"]

TEMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_files(paths: Sequence[str | os.PathLike[str]]) -> Iterator[list[Path]]:
    """Temporary paths to write ``paths`` to; renamed onto them when the block succeeds.

    The block must write every temporary path (by any means: ``torch.save``, ``savefig``,
    ``open``). When it returns, each is flushed to disk (fsync), then all are renamed onto
    ``paths`` in the order given. When it raises (``KeyboardInterrupt`` too), no path is
    touched and the temporary files are removed. Each rename is atomic, a set of them is not:
    a kill between two renames leaves the first files new and the rest old, each whole, so a
    set that must match marks its files (as ``twostream evaluate`` does with an id) and puts
    the file that names the set last.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> with atomic_files([folder / "a.txt", folder / "b.txt"]) as (a, b):
        ...     _ = a.write_text("one"), b.write_text("two")
        >>> sorted(p.name for p in folder.iterdir())
        ['a.txt', 'b.txt']
    """
    targets = [Path(p) for p in paths]
    tmps = [p.with_name(f"{TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{p.name}")
            for p in targets]
    try:
        yield tmps
        for tmp in tmps:
            _fsync(tmp)  # else a power cut after the rename can leave an empty file there
        for tmp, target in zip(tmps, targets, strict=True):
            os.replace(tmp, target)
        for folder in dict.fromkeys(t.parent for t in targets):
            _fsync_folder(folder)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """:func:`atomic_files` for one file: write the path it yields, and it replaces ``path``.

    Examples:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "scores.npz"
        >>> with atomic_file(out) as tmp:
        ...     _ = tmp.write_bytes(b"scores")
        ...     tmp.suffix, tmp.parent == out.parent, out.exists()
        ('.npz', True, False)
        >>> out.read_bytes()
        b'scores'
    """
    with atomic_files([path]) as (tmp,):
        yield tmp


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically: see :func:`atomic_files`."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable. Best effort: some systems cannot open or sync a folder
    (Windows, some network file systems), and the file itself is already on disk."""
    with contextlib.suppress(OSError):
        _fsync(folder)
