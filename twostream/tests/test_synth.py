from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from twostream.decode import decode_video
from twostream.synth import class_names, make_synthetic_dataset

SMALL = dict(classes=4, clips_per_class=3, width=64, height=48, frames=4)


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_same_bytes_and_other_seed_other_videos(tmp_path):
    make_synthetic_dataset(tmp_path / "a", seed=7, **SMALL)
    make_synthetic_dataset(tmp_path / "b", seed=7, **SMALL)
    make_synthetic_dataset(tmp_path / "c", seed=8, **SMALL)
    a, b, c = (_hashes(tmp_path / x) for x in "abc")
    assert len(a) == 4 * 3 + 4 * 3 + 1  # videos + split files + synth.json
    assert a == b
    assert set(a.values()) != set(c.values())


def test_class_names_split_between_appearance_and_motion():
    names = class_names(7)
    assert names == sorted(names)
    assert sum(n.startswith("appearance_") for n in names) == 4
    assert sum(n.startswith("motion_") for n in names) == 3
    assert len(set(class_names(30))) == 30
    with pytest.raises(ValueError, match="at least 2 classes"):
        class_names(1)


def test_layout_and_splits_are_hmdb51_style(synth_dataset):
    info = synth_dataset
    assert info.classes == ["appearance_green_checker", "appearance_red_stripes",
                            "motion_left", "motion_right"]
    assert info["classes"] == info.classes
    assert sorted(p.name for p in info.videos_dir.iterdir()) == info.classes
    partitions = []
    for cls in info.classes:
        assert sorted(p.name for p in (info.videos_dir / cls).iterdir()) == sorted(info.clips[cls])
        for k in (1, 2, 3):
            raw = (info.splits_dir / f"{cls}_test_split{k}.txt").read_bytes().decode()
            lines = raw.splitlines()
            assert all(line.endswith(" ") for line in lines)  # trailing space, as in HMDB51
            pairs = [line.split() for line in lines]
            assert sorted(name for name, _ in pairs) == sorted(info.clips[cls])
            flags = [flag for _, flag in pairs]
            assert flags.count("1") == 4 and flags.count("2") == 1  # round(70 % of 5)
            partitions.append(tuple(flags))
    assert len(set(partitions)) > 1  # the three splits are different partitions
    names = "".join(n for clips in info.clips.values() for n in clips)
    assert set("()#!&'+,;[]") & set(names)


def test_videos_decode_to_requested_geometry(synth_dataset):
    for cls in synth_dataset.classes:
        frames = decode_video(synth_dataset.videos_dir / cls / synth_dataset.clips[cls][0],
                              short_side=None)
        assert frames.shape == (8, 48, 64, 3)


def _motion_energy(path: Path) -> float:
    frames = decode_video(path, short_side=None).astype(np.float32)
    return float(np.abs(np.diff(frames, axis=0)).mean())


def test_appearance_clips_are_static_and_motion_clips_move(synth_dataset):
    info = synth_dataset
    static = [_motion_energy(info.videos_dir / c / n) for c in info.classes[:2]
              for n in info.clips[c]]
    moving = [_motion_energy(info.videos_dir / c / n) for c in info.classes[2:]
              for n in info.clips[c]]
    assert max(static) < min(moving)


def test_appearance_classes_differ_in_colour(synth_dataset):
    info = synth_dataset
    means = {c: decode_video(info.videos_dir / c / info.clips[c][0], short_side=None)
             .reshape(-1, 3).mean(0) for c in info.classes[:2]}
    green, red = means["appearance_green_checker"], means["appearance_red_stripes"]
    assert green[1] > green[0] and red[0] > red[1]


def test_bad_arguments_fail_early(tmp_path):
    with pytest.raises(ValueError, match="clips_per_class"):
        make_synthetic_dataset(tmp_path, classes=2, clips_per_class=1)
    with pytest.raises(ValueError, match="even"):
        make_synthetic_dataset(tmp_path, classes=2, clips_per_class=2, width=65)
