"""Rawframe datasets: lists, sampling, flow decoding and stacking, skipping bad clips."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import make_rawframes  # noqa: E402

from twostream.datasets import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    RawframeDataset,
    annotation_path,
    collate_skip,
    flow_stack_views,
    read_annotations,
    read_class_list,
    view_positions,
)
from twostream.errors import DatasetError


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return make_rawframes(tmp_path_factory.mktemp("raw"), clips_per_class=3, frames=12, size=40)


def _clips(root, split=1, subset="train"):
    return read_annotations(annotation_path(root, split, subset))


def test_lists_and_classes(raw, tmp_path):
    classes = read_class_list(raw)
    assert classes[0] == "appearance_blue" and len(classes) == 6
    clips = _clips(raw)
    assert clips[0].num_frames == 12 and {c.label for c in clips} == set(range(6))
    odd = tmp_path / "list.txt"
    odd.write_text("walk/Ocean's Eleven (2001) [HD] 33 4\n\n", encoding="utf-8")
    (clip,) = read_annotations(odd)
    assert (clip.name, clip.num_frames, clip.label) == ("walk/Ocean's Eleven (2001) [HD]", 33, 4)
    odd.write_text("walk/a 33\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="list.txt:1"):
        read_annotations(odd)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8-sig"])
def test_lists_and_class_files_in_any_usual_encoding_read_alike(raw, tmp_path, encoding):
    # UTF-16 was a traceback and a UTF-8 BOM a puzzling '\ufeff...' (issue 23 item 5).
    root = tmp_path / "raw"
    (root / "annotations").mkdir(parents=True)
    lst = annotation_path(raw, 1, "train")
    (root / lst.name).write_bytes(lst.read_text().replace("\n", "\r\n").encode(encoding))
    assert read_annotations(root / lst.name) == read_annotations(lst)
    classes = read_class_list(raw)
    index = "".join(f"{i + 1} {c}\r\n" for i, c in enumerate(classes))
    (root / "annotations" / "classInd.txt").write_bytes(index.encode(encoding))
    assert read_class_list(root) == classes
    (root / "classes.txt").write_bytes("".join(f"{c}\n" for c in classes).encode(encoding))
    assert read_class_list(root) == classes


def test_missing_inputs_name_the_thing(tmp_path):
    with pytest.raises(DatasetError, match="nowhere"):
        read_class_list(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="hmdb51_train_split_2_rawframes.txt"):
        read_annotations(annotation_path(tmp_path, 2, "train"))
    with pytest.raises(DatasetError, match="rawframes"):
        RawframeDataset(tmp_path, [], stream="spatial", train=True)


def test_spatial_training_items(raw):
    ds = RawframeDataset(raw, _clips(raw), stream="spatial", train=True, crop=32, seed=3)
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == 0
    # ImageNet normalisation: values live in [(0 - mean)/std, (1 - mean)/std].
    lo, hi = (0 - IMAGENET_MEAN) / IMAGENET_STD, (1 - IMAGENET_MEAN) / IMAGENET_STD
    assert (x.amin((1, 2)).numpy() >= lo - 1e-5).all()
    assert (x.amax((1, 2)).numpy() <= hi + 1e-5).all()
    torch.testing.assert_close(ds[0][0], x)  # same (seed, epoch, clip) -> same view
    views = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        views.append(ds[0][0])
    assert any(not torch.equal(views[0], v) for v in views[1:])


def test_temporal_stack_is_mean_subtracted_displacement(raw):
    clips = [c for c in _clips(raw) if c.name.startswith("motion_right")]
    ds = RawframeDataset(raw, clips, stream="temporal", train=False, crop=40, segments=1)
    x, label, index = ds[0]
    assert x.shape == (1, 20, 40, 40) and index == 0
    stack = x[0]
    # Every field has zero mean; the square moves right at 2 px/frame: x > 0 on it, y ~ 0.
    assert stack.mean((1, 2)).abs().max() < 1e-4
    assert (stack[0::2] > 1.5).sum() > 100 and (stack[0::2] < -1.0).sum() == 0
    assert stack[1::2].abs().max() < 1.0  # JPEG ringing only


def test_ten_crops_flip_negates_horizontal_flow():
    rng = np.random.default_rng(0)
    pairs = [(rng.integers(0, 256, (24, 30), dtype=np.uint8),
              rng.integers(0, 256, (24, 30), dtype=np.uint8)) for _ in range(3)]
    views = flow_stack_views(pairs, bound=20.0, crop=16, crops=10)
    assert len(views) == 10 and views[0].shape == (6, 16, 16)
    centre, flipped = views[4], views[9]
    torch.testing.assert_close(flipped[0::2], -centre[0::2].flip(-1))
    torch.testing.assert_close(flipped[1::2], centre[1::2].flip(-1))
    assert not torch.equal(views[0], views[3])  # corners differ


def test_test_items_and_view_positions(raw):
    assert view_positions(100, 25).tolist()[:3] == [2, 6, 10]
    assert view_positions(3, 5).tolist() == [0, 0, 1, 2, 2]
    ds = RawframeDataset(raw, _clips(raw, subset="val"), stream="spatial", train=False, crop=32,
                         segments=25, crops=10)
    x, label, index = ds[1]
    assert x.shape == (250, 3, 32, 32)
    t = RawframeDataset(raw, _clips(raw, subset="val"), stream="temporal", train=False, crop=32,
                        segments=4, crops=1, new_length=5)
    assert t[0][0].shape == (4, 10, 32, 32)


def test_short_clip_repeats_last_flow_field(raw):
    clip = _clips(raw)[0]
    ds = RawframeDataset(raw, [clip], stream="temporal", train=True, crop=32, new_length=15)
    x, _ = ds[0]  # 11 flow pairs < L = 15: padded with the last one
    assert x.shape == (30, 32, 32)


def test_bad_clips_are_skipped_and_reported(raw, tmp_path):
    import shutil

    root = tmp_path / "raw"
    shutil.copytree(raw, root)
    clips = _clips(root)
    shutil.rmtree(root / "rawframes" / clips[0].name)
    (root / "rawframes" / clips[1].name / "flow_x_00011.jpg").unlink()
    for f in (root / "rawframes" / clips[2].name).glob("*.jpg"):
        f.write_bytes(b"\xff\xd8 corrupt")
    ds = RawframeDataset(root, clips, stream="temporal", train=True, crop=32)
    assert [name for name, _ in ds.skipped] == [clips[0].name, clips[1].name]
    assert "folder missing" in ds.skipped[0][1] and "flow_x_00011.jpg" in ds.skipped[1][1]
    assert len(ds) == len(clips) - 2
    assert ds[0] is None  # clips[2]: unreadable JPEGs -> None, never an exception
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=collate_skip)
    sizes = [len(b[1]) for b in loader if b is not None]
    assert sum(sizes) == len(ds) - 1


def test_training_stack_equals_the_test_stack_when_nothing_is_random(raw):
    # 12 frames -> 11 flow pairs; with L = 11 there is one start, and a full-size crop.
    clips = _clips(raw)[:4]
    common = dict(stream="temporal", crop=40, new_length=11)
    train = RawframeDataset(raw, clips, train=True, flip=False, **common)
    test = RawframeDataset(raw, clips, train=False, segments=1, **common)
    for i in range(len(clips)):
        torch.testing.assert_close(train[i][0], test[i][0][0], atol=1e-4, rtol=0)


def test_jpegs_read_with_pillow_where_opencv_is_absent_give_the_same_pixels(tmp_path, monkeypatch):
    import cv2

    from twostream import datasets

    rng = np.random.default_rng(0)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (5, 5), 0)
    cv2.imwrite(str(tmp_path / "img.jpg"), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(tmp_path / "flow.jpg"), rgb[..., 0], [cv2.IMWRITE_JPEG_QUALITY, 95])
    with_cv2 = [datasets._read_jpeg(tmp_path / n, m) for n, m in (("img.jpg", "RGB"),
                                                                   ("flow.jpg", "L"))]
    monkeypatch.setattr(datasets, "cv2", None)
    with_pillow = [datasets._read_jpeg(tmp_path / n, m) for n, m in (("img.jpg", "RGB"),
                                                                      ("flow.jpg", "L"))]
    for a, b in zip(with_cv2, with_pillow, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
    with pytest.raises(OSError):
        datasets._read_jpeg(tmp_path / "missing.jpg", "L")
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(OSError):
        datasets._read_jpeg(tmp_path / "bad.jpg", "RGB")
