"""twitchgraph.atomic: finished files appear whole or not at all."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from twitchgraph.atomic import atomic_open, atomic_path, write_text


def test_write_text_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.json"
    write_text(target, "old")
    write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "a.csv"
    write_text(target, "old")
    with pytest.raises(KeyboardInterrupt), atomic_open(target, "w", encoding="utf-8") as fh:
        fh.write("half of the new")
        raise KeyboardInterrupt
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]


def test_the_target_is_untouched_until_the_body_ends(tmp_path: Path) -> None:
    target = tmp_path / "a.parquet"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"data")
        assert tmp.parent == tmp_path and tmp.name.startswith(".a.parquet.")
        assert not target.exists()
    assert target.read_bytes() == b"data" and not tmp.exists()


def test_atomic_open_only_writes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must start with 'w'"), \
            atomic_open(tmp_path / "a.txt", "a"):
        pass
