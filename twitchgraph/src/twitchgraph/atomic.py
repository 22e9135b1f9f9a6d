"""The one way twitchgraph writes a finished file: aside, flushed to disk, renamed over the
target. A reader sees the old file or the new one, never half of one, and an interrupted
write (an exception, Ctrl-C, a crash) leaves the target as it was and no temporary file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "atomic_path", "write_text"]


@contextlib.contextmanager
def atomic_path(target: str | Path, *, mode: int = 0o644) -> Iterator[Path]:
    """A temporary path beside `target` for the body to write; when the body ends normally it
    is fsynced, given `mode` and renamed over `target`; otherwise it is removed.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "a.txt") as tmp:
    ...     _ = tmp.write_text("whole")
    >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
    ('whole', ['a.txt'])
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with tmp.open("rb") as handle:  # the data on disk before the rename makes it visible
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # mkstemp creates 0600; the file is as public as its folder
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_open(target: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """`open` for writing `target` whole: the body writes a file beside it (see `atomic_path`)."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_open writes a whole file: mode {mode!r} must start with 'w'")
    with atomic_path(target) as tmp, tmp.open(mode, **kwargs) as handle:
        yield handle


def write_text(target: str | Path, text: str, *, encoding: str = "utf-8") -> None:
    """`Path.write_text`, whole or not at all."""
    with atomic_open(target, "w", encoding=encoding) as handle:
        handle.write(text)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (where the OS lets a folder be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
