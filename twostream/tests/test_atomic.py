"""Atomic writes: a write that fails part-way leaves the previous file whole and no litter."""

from __future__ import annotations

import errno
import os

import pytest

from twostream import atomic
from twostream.atomic import atomic_file, atomic_files, write_text_atomic


def _disk_full(tmp):
    """Write part of a file, then fail as a full disk does."""
    with open(tmp, "w") as f:
        f.write('{"top1": 0.')
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_write_replaces_the_old_copy_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "eval_summary.json"
    path.write_text("old")
    write_text_atomic(path, "new")
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["eval_summary.json"]


@pytest.mark.parametrize("error", [OSError, KeyboardInterrupt])
def test_a_write_cut_short_keeps_the_old_copy(tmp_path, error):
    path = tmp_path / "fusion.json"
    path.write_text("old")

    def write(tmp):
        if error is OSError:
            _disk_full(tmp)
        tmp.write_text("part")
        raise KeyboardInterrupt

    with pytest.raises(error), atomic_file(path) as tmp:
        write(tmp)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["fusion.json"]


def test_a_set_is_replaced_only_once_every_file_is_written(tmp_path):
    a, b = tmp_path / "fusion.json", tmp_path / "fusion.csv"
    a.write_text("old a")
    b.write_text("old b")
    with pytest.raises(OSError, match="No space"), atomic_files([a, b]) as (ta, tb):
        ta.write_text("new a")  # whole, yet not renamed: its partner failed
        _disk_full(tb)
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    assert sorted(os.listdir(tmp_path)) == ["fusion.csv", "fusion.json"]


def test_a_failed_rename_keeps_the_old_copy(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    path.write_text("old")

    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(PermissionError):
        write_text_atomic(path, "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["run.json"]


def test_the_temporary_file_keeps_the_extension_and_is_hidden(tmp_path):
    seen = []
    with atomic_files([tmp_path / "confusion_split1.png", tmp_path / "scores.npz"]) as tmps:
        for t in tmps:
            seen.append(t)
            t.write_bytes(b"x")
    assert [t.suffix for t in seen] == [".png", ".npz"]
    assert all(t.name.startswith(".") and t.parent == tmp_path for t in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion_split1.png", "scores.npz"]
