"""`extract --flow tvl1-torch`: batched flow in this process, decoding and JPEG writing in
workers; the same layout, lists, quantisation, resume and bad-clip report as the other methods."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_extract import (  # noqa: E402
    _annotations,
    _copy_dataset,
    finished_clips,
    interrupt_extract,
)

from twostream import device  # noqa: E402
from twostream.cli import app  # noqa: E402
from twostream.extract.dataset import extract_clip, extract_dataset  # noqa: E402
from twostream.extract.settings import ExtractSettings  # noqa: E402
from twostream.flow.presets import TVL1_PRESETS  # noqa: E402
from twostream.synth import render_motion_clip, write_avi  # noqa: E402

TORCH = ExtractSettings(flow="tvl1-torch", tvl1=TVL1_PRESETS["fast"], short_side=None)
ON_CPU = dict(progress=False, device="cpu")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in ("extract_report.json", ".complete.json")}


def _sha(files: dict[str, bytes]) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}


@pytest.fixture(scope="module")
def torch_extracted(tmp_path_factory, synth_dataset):
    # 5 pairs per batch: batches cross clip boundaries (7 pairs per clip); 2 I/O workers.
    out = tmp_path_factory.mktemp("torch_extracted")
    return extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, out, TORCH, **ON_CPU,
                           flow_batch=5, workers=2)


def test_same_layout_lists_and_frames_as_the_other_methods(torch_extracted, extracted_dataset):
    assert torch_extracted.complete == 20 and torch_extracted.failed == []
    ours, theirs = _files(torch_extracted.out_dir), _files(extracted_dataset.out_dir)
    assert set(ours) == set(theirs)
    same = [k for k in ours if "flow_" not in k]  # frames, classes.txt, annotation lists
    assert all(ours[k] == theirs[k] for k in same)
    marker = json.loads(next(torch_extracted.out_dir.rglob(".complete.json")).read_text())
    assert marker["settings"]["flow"] == "tvl1-torch"
    assert marker["settings"]["tvl1"]["warps"] == TVL1_PRESETS["fast"].warps


def test_batched_flow_is_the_flow_of_each_clip_alone(tmp_path, torch_extracted, synth_dataset):
    for cls in ("motion_left", "appearance_red_stripes"):
        clip = synth_dataset.clips[cls][1]
        alone = tmp_path / cls
        extract_clip(synth_dataset.videos_dir / cls / clip, alone,
                     ExtractSettings(flow="tvl1-torch", tvl1=TVL1_PRESETS["fast"],
                                     short_side=None))
        batched = torch_extracted.out_dir / "rawframes" / cls / Path(clip).stem
        for name in sorted(p.name for p in alone.glob("flow_*.jpg")):
            a = cv2.imread(str(alone / name), cv2.IMREAD_GRAYSCALE).astype(int)
            b = cv2.imread(str(batched / name), cv2.IMREAD_GRAYSCALE).astype(int)
            assert np.abs(a - b).max() <= 2, name  # a rounding step apart at most


def test_motion_classes_flow_their_way(torch_extracted, synth_dataset):
    rawframes = torch_extracted.out_dir / "rawframes"
    for cls, sign in (("motion_right", 1), ("motion_left", -1)):
        clip_dir = rawframes / cls / Path(synth_dataset.clips[cls][0]).stem
        fx = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).astype(int) - 128
                       for p in sorted(clip_dir.glob("flow_x_*.jpg"))])
        moving = np.abs(fx) >= 4
        assert moving.mean() > 0.03 and np.sign(fx[moving].mean()) == sign


@pytest.mark.slow
def test_bad_clips_are_reported_and_a_rerun_resumes(tmp_path, synth_dataset, torch_extracted):
    videos, splits = tmp_path / "videos", tmp_path / "splits"
    for cls in synth_dataset.classes:
        shutil.copytree(synth_dataset.videos_dir / cls, videos / cls)
    shutil.copytree(synth_dataset.splits_dir, splits)
    (videos / "motion_left" / "Garbage_0.avi").write_bytes(bytes(range(256)) * 40)
    with open(splits / "motion_left_test_split1.txt", "a", newline="") as f:
        f.write("Garbage_0.avi 1 \n")
    out = tmp_path / "out"
    summary = extract_dataset(videos, splits, out, TORCH, **ON_CPU, flow_batch=4, workers=1)
    assert summary.complete == 20 and summary.extracted_now == 20
    assert [f["clip"] for f in summary.failed] == ["motion_left/Garbage_0.avi"]
    assert summary.failed[0]["reason"].startswith("corrupt")
    assert not list(out.rglob("*.partial-*")) and not (out / "rawframes" / "motion_left" /
                                                        "Garbage_0").exists()
    # Half-written leftovers and a finished clip that lost a file are redone, the rest
    # skipped (a clip folder without a marker is foreign: test_extract.py).
    victim = out / "rawframes" / "motion_right" / Path(synth_dataset.clips["motion_right"][0]).stem
    (victim / "flow_y_00003.jpg").unlink()
    (victim.parent / f".{victim.name}.partial-999").mkdir()
    before = _sha(_files(torch_extracted.out_dir))
    again = extract_dataset(videos, splits, out, TORCH, **ON_CPU, workers=1)  # default flow batch
    assert (again.extracted_now, again.already_done) == (1, 19)
    assert not list(out.rglob("*.partial-*"))
    after = _sha(_files(out))
    assert {k for k in after if "flow_" in k} == {k for k in before if "flow_" in k}
    assert (victim / "flow_y_00003.jpg").is_file()


def test_a_clip_cut_short_is_kept_when_enough_frames_decode(tmp_path, synth_dataset):
    videos, splits = _copy_dataset(synth_dataset, tmp_path, ["motion_left"])
    long = tmp_path / "long.avi"
    write_avi(long, render_motion_clip("left", np.random.default_rng(0), width=64, height=48,
                                       frames=30))
    data = long.read_bytes()
    (videos / "motion_left" / "Cut_late_5.avi").write_bytes(data[: len(data) * 7 // 10])  # 17
    (videos / "motion_left" / "Cut_off_2.avi").write_bytes(data[: len(data) * 5 // 10])  # 8
    with open(splits / "motion_left_test_split1.txt", "a", newline="") as f:
        f.write("Cut_late_5.avi 1 \nCut_off_2.avi 1 \n")
    out = tmp_path / "out"
    summary = extract_dataset(videos, splits, out, TORCH, **ON_CPU, flow_batch=6, workers=1)
    assert summary.partial == [{"clip": "motion_left/Cut_late_5.avi", "frames": "17",
                                "reason": "truncated: decoded 17 frames but the container "
                                          "declares 30"}]
    assert [(f["clip"], f["reason"][:9]) for f in summary.failed] == [
        ("motion_left/Cut_off_2.avi", "truncated")]  # 8 frames: too few for a flow stack
    kept = out / "rawframes" / "motion_left" / "Cut_late_5"
    assert json.loads((kept / ".complete.json").read_text())["partial"].startswith("truncated")
    assert len(list(kept.glob("img_*"))) == len(list(kept.glob("flow_y_*"))) == 17
    assert ["motion_left/Cut_late_5", "17", "0"] in _annotations(out, "train", 1)
    assert not (out / "rawframes" / "motion_left" / "Cut_off_2").exists()
    assert not list(out.rglob("*.partial-*"))


@pytest.mark.slow
def test_disk_full_stops_at_the_first_failure_and_keeps_finished_clips(
        tmp_path, synth_dataset, torch_extracted, monkeypatch):
    import errno

    from twostream.extract import clip_folder
    from twostream.extract.dataset import DiskFullError

    out = tmp_path / "out"
    real_write, writes = clip_folder.write_jpeg, []

    def fills_up(path, image, quality):
        writes.append(path)
        if len(writes) > 4 * 8 + 3 * 14:  # 4 clips' 8 frames, 3 clips' 7 flow pairs, then full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, image, quality)

    # One worker runs each job in this process, one clip per flow batch, decoding one clip
    # ahead: the first 3 clips are written whole and the 4th decoded when the disk fills up.
    monkeypatch.setattr(clip_folder, "write_jpeg", fills_up)
    with pytest.raises(DiskFullError) as err:
        extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, out, TORCH, **ON_CPU,
                        flow_batch=7, workers=1)
    msg = str(err.value)
    assert "disk full while writing" in msg and "3/20 clips are extracted and kept" in msg
    assert "the 17 left need about" in msg and "GB more" in msg and "rerun" in msg
    # Nothing was tried after the first failure but the jobs already under way (decoding the
    # 5th clip, the 4th clip's flow): not one write per clip left.
    assert len(writes) == 4 * 8 + 3 * 14 + 2
    assert len(finished_clips(out)) == 3
    assert len(_annotations(out, "train", 1)) + len(_annotations(out, "val", 1)) == 3
    assert not list(out.rglob("*.partial-*"))
    monkeypatch.setattr(clip_folder, "write_jpeg", real_write)
    summary = extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, out, TORCH,
                              **ON_CPU, flow_batch=7, workers=1)
    assert (summary.already_done, summary.extracted_now) == (3, 17)
    ours, theirs = _files(out), _files(torch_extracted.out_dir)
    assert set(ours) == set(theirs)
    assert all(ours[k] == theirs[k] for k in ours if "flow_" not in k)


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_at_once_and_a_rerun_resumes(tmp_path, synth_dataset):
    out = tmp_path / "out"
    _, done = interrupt_extract(out, str(synth_dataset.videos_dir),
                                str(synth_dataset.splits_dir), "--flow", "tvl1-torch",
                                "--tvl1-preset", "fast", "--device", "cpu")
    summary = extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, out,
                              TORCH, **ON_CPU, workers=1)
    assert (summary.already_done, summary.complete) == (done, 20)
    assert not list(out.glob("rawframes/*/.*partial*"))


def test_cli_tvl1_torch_on_a_missing_gpu_is_one_line(tmp_path, synth_dataset, monkeypatch):
    monkeypatch.setattr(device, "cuda_device_count", lambda: 0)  # holds on a GPU machine too
    result = CliRunner().invoke(app, [
        "extract", str(synth_dataset.videos_dir), str(synth_dataset.splits_dir),
        str(tmp_path / "o"), "--flow", "tvl1-torch", "--device", "cuda", "--workers", "1",
        "--no-progress",
    ])
    assert result.exit_code == 1
    assert "no CUDA device" in result.stderr and "Traceback" not in result.output
