"""MMAction2 interop: the lists `extract` writes load RGB and Flow in MMAction2 for every clip.

``mmaction2`` 1.2.0 cannot be a test dependency here: its transforms import ``mmcv``, which
PyPI ships only as a source archive that does not build beside the pinned torch. So the test
reproduces the index rule of MMAction2 1.2.0's ``SampleFrames`` and the file names
``RawFrameDecode`` opens (both in ``mmaction/datasets/transforms/loading.py`` of the
``mmaction2==1.2.0`` wheel), and checks every index it can ask for against the files on disk.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from twostream import datasets
from twostream.datasets import RawframeDataset, read_annotations

# What MMAction2 configs use: TSN RGB and Flow test pipelines, the issue's clip_len=10 test
# protocol, and training-mode sampling.
PROTOCOLS = [
    dict(clip_len=1, num_clips=25, test_mode=True),
    dict(clip_len=5, num_clips=25, test_mode=True),
    dict(clip_len=10, num_clips=25, test_mode=True),
    dict(clip_len=10, num_clips=3, test_mode=True),
    dict(clip_len=5, num_clips=3, test_mode=False),
    dict(clip_len=10, num_clips=1, test_mode=False),
]


def sample_frames(total_frames: int, *, clip_len: int, num_clips: int, test_mode: bool,
                  frame_interval: int = 1, start_index: int = 1,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """Frame indices MMAction2 1.2.0's ``SampleFrames`` returns (``out_of_bound_opt='loop'``,
    no ``target_fps``, ``twice_sample`` or ``keep_tail_frames``): ``_get_test_clips`` /
    ``_get_train_clips``, then ``transform``'s ``mod total_frames`` and ``+ start_index``."""
    rng = rng or np.random.default_rng(0)
    if test_mode:
        ori_clip_len = (clip_len - 1) * frame_interval + 1
        if clip_len == 1:
            avg = total_frames / float(num_clips)
            offsets = np.arange(num_clips) * avg + avg / 2.0
        else:
            max_offset = max(total_frames - ori_clip_len, 0)
            if num_clips > 1:
                offsets = np.round(np.arange(num_clips) * (max_offset / float(num_clips - 1)))
            else:
                offsets = np.array([max_offset // 2])
    else:
        ori_clip_len = clip_len * frame_interval
        avg = (total_frames - ori_clip_len + 1) // num_clips
        if avg > 0:
            offsets = np.arange(num_clips) * avg + rng.integers(avg, size=num_clips)
        elif total_frames > max(num_clips, ori_clip_len):
            offsets = np.sort(rng.integers(total_frames - ori_clip_len + 1, size=num_clips))
        elif avg == 0:
            offsets = np.around(np.arange(num_clips) * (total_frames - ori_clip_len + 1.0)
                                / num_clips)
        else:
            offsets = np.zeros(num_clips)
    inds = offsets[:, None] + np.arange(clip_len)[None, :] * frame_interval
    inds = np.mod(inds, total_frames)
    return (inds.reshape(-1) + start_index).astype(np.int32)


def raw_frame_decode_paths(frame_dir: Path, inds: np.ndarray, modality: str) -> list[Path]:
    """Files ``RawFrameDecode`` opens, with the templates MMAction2's HMDB51 configs use."""
    if modality == "RGB":
        tmpl = "img_{:05}.jpg"
        return [frame_dir / tmpl.format(i) for i in inds]
    tmpl = "flow_{}_{:05d}.jpg"
    return [frame_dir / tmpl.format(axis, i) for i in inds for axis in "xy"]


def _unreadable(root: Path, protocols=PROTOCOLS) -> list[str]:
    missing = []
    for lst in sorted(root.glob("hmdb51_*_split_*_rawframes.txt")):
        for clip in read_annotations(lst):
            for proto in protocols:
                inds = sample_frames(clip.num_frames, **proto)
                for modality in ("RGB", "Flow"):
                    paths = raw_frame_decode_paths(root / "rawframes" / clip.name, inds, modality)
                    missing += [f"{lst.name}: {p}" for p in paths if not p.is_file()]
    return missing


def test_sampling_rule_asks_for_index_total_frames():
    # The reason for the padding: an 8-frame clip under the 10-frame test protocol asks for
    # frame 8, which has no flow field of its own (the 7 fields sit between the 8 frames).
    inds = sample_frames(8, clip_len=10, num_clips=25, test_mode=True)
    assert inds.min() == 1 and inds.max() == 8
    assert sample_frames(50, clip_len=10, num_clips=25, test_mode=True).max() == 50


def test_every_list_loads_rgb_and_flow_for_every_clip(extracted_dataset):
    root = extracted_dataset.out_dir
    lists = sorted(root.glob("hmdb51_*_split_*_rawframes.txt"))
    assert len(lists) == 6
    clips = {c.num_frames for lst in lists for c in read_annotations(lst)}
    assert clips == {8}  # shorter than any HMDB51 clip, and shorter than clip_len=10
    assert _unreadable(root) == []


def test_without_the_padding_copy_flow_fails_as_the_issue_reports(extracted_dataset, tmp_path):
    root = tmp_path / "out"
    shutil.copytree(extracted_dataset.out_dir, root)
    for pad in root.glob("rawframes/*/*/flow_?_00008.jpg"):
        pad.unlink()
    missing = _unreadable(root, [dict(clip_len=10, num_clips=25, test_mode=True)])
    assert missing and all("flow_" in m and "_00008.jpg" in m for m in missing)


@pytest.mark.parametrize("train", [True, False])
def test_twostream_never_reads_the_padding_copy_as_motion(extracted_dataset, monkeypatch, train):
    root = extracted_dataset.out_dir
    read: list[Path] = []
    real = datasets._read_jpeg
    monkeypatch.setattr(datasets, "_read_jpeg", lambda p, m: read.append(Path(p)) or real(p, m))
    clips = read_annotations(root / "hmdb51_train_split_1_rawframes.txt")
    ds = RawframeDataset(root, clips, stream="temporal", train=train, crop=32, new_length=3,
                         segments=25)
    for epoch in range(8 if train else 1):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            assert ds[i] is not None
    indices = {int(p.stem.rsplit("_", 1)[1]) for p in read}
    assert indices <= set(range(1, 8)) and 7 in indices  # flow 1..n-1, never the copy n = 8
