from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from twostream.decode import decode_video
from twostream.errors import DatasetError
from twostream.extract.dataset import ForeignDataError, extract_clip, extract_dataset
from twostream.extract.settings import ExtractSettings, SettingsMismatchError
from twostream.flow.presets import TVL1_PRESETS
from twostream.synth import make_synthetic_dataset, render_motion_clip, write_avi

FAST = ExtractSettings(flow="tvl1", tvl1=TVL1_PRESETS["fast"], short_side=None)
DIS = ExtractSettings(flow="dis", short_side=None)


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` except the run report."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "extract_report.json"
    }


def _annotations(out: Path, name: str, k: int) -> list[list[str]]:
    return [line.split(" ") for line in
            (out / f"hmdb51_{name}_split_{k}_rawframes.txt").read_text().splitlines()]


def test_layout_counts_and_annotation_lists_follow_mmaction2(synth_dataset, extracted_dataset):
    info, summary = synth_dataset, extracted_dataset
    out = summary.out_dir
    assert summary.complete == summary.clips_in_splits == 20 and summary.failed == []
    assert (out / "classes.txt").read_text().splitlines() == info.classes
    for k in (1, 2, 3):
        train, val = _annotations(out, "train", k), _annotations(out, "val", k)
        assert len(train) == 16 and len(val) == 4  # 4 + 1 of 5 clips per class
        assert not {x[0] for x in train} & {x[0] for x in val}
        for frame_dir, _total, label in train + val:
            cls, stem = frame_dir.split("/")
            assert info.classes[int(label)] == cls
            assert f"{stem}.avi" in info.clips[cls]
    for cls in info.classes:
        for clip in info.clips[cls]:
            clip_dir = out / "rawframes" / cls / Path(clip).stem
            frames = decode_video(info.videos_dir / cls / clip, short_side=None)
            imgs = sorted(clip_dir.glob("img_*.jpg"))
            assert [p.name for p in imgs] == [f"img_{i:05d}.jpg" for i in range(1, len(frames) + 1)]
            for axis in "xy":
                flows = sorted(clip_dir.glob(f"flow_{axis}_*.jpg"))
                # n - 1 flow fields, then flow n: a copy of n - 1 so lists carrying the RGB
                # count load Flow in MMAction2 too.
                assert [p.name for p in flows] == [
                    f"flow_{axis}_{i:05d}.jpg" for i in range(1, len(frames) + 1)
                ]
                assert flows[-1].read_bytes() == flows[-2].read_bytes()
            first = cv2.imread(str(imgs[0]))[..., ::-1]
            assert first.shape == frames[0].shape
            # The same frame through JPEG (chroma subsampling blurs the tiny textures a bit).
            assert np.abs(first.astype(int) - frames[0]).mean() < 10
    totals = {row[0]: int(row[1]) for row in _annotations(out, "train", 1)}
    assert set(totals.values()) == {8}


def test_extracted_flow_of_motion_classes_points_their_way(synth_dataset, extracted_dataset):
    rawframes = extracted_dataset.out_dir / "rawframes"
    for cls, sign in (("motion_right", 1), ("motion_left", -1)):
        for clip in synth_dataset.clips[cls]:
            clip_dir = rawframes / cls / Path(clip).stem
            fx = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).astype(int) - 128
                           for p in sorted(clip_dir.glob("flow_x_*.jpg"))])
            fy = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).astype(int) - 128
                           for p in sorted(clip_dir.glob("flow_y_*.jpg"))])
            moving = np.abs(fx) >= 4  # >= ~0.6 px
            assert moving.mean() > 0.03
            assert np.sign(fx[moving].mean()) == sign
            assert abs(fy[moving].mean()) < abs(fx[moving].mean()) / 3


def test_extract_clip_resizes_short_side(tmp_path, synth_dataset):
    clip = synth_dataset.clips["motion_right"][0]
    n = extract_clip(synth_dataset.videos_dir / "motion_right" / clip, tmp_path / "c",
                     ExtractSettings(flow="dis", short_side=96))
    assert n == 8
    assert cv2.imread(str(tmp_path / "c" / "img_00001.jpg")).shape == (96, 128, 3)
    assert cv2.imread(str(tmp_path / "c" / "flow_x_00007.jpg"), cv2.IMREAD_GRAYSCALE).shape == (
        96, 128)
    # Flow 8 is the padding copy of flow 7; there is no flow 9.
    pad = (tmp_path / "c" / "flow_x_00008.jpg").read_bytes()
    assert pad == (tmp_path / "c" / "flow_x_00007.jpg").read_bytes()
    assert not (tmp_path / "c" / "flow_x_00009.jpg").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["c"]  # no temporary folder left


def _copy_dataset(info, dst: Path, classes: list[str]) -> tuple[Path, Path]:
    videos, splits = dst / "videos", dst / "splits"
    for cls in classes:
        shutil.copytree(info.videos_dir / cls, videos / cls)
        for k in (1, 2, 3):
            name = f"{cls}_test_split{k}.txt"
            splits.mkdir(parents=True, exist_ok=True)
            shutil.copy(info.splits_dir / name, splits / name)
    return videos, splits


def test_flow_scale_is_recorded_and_flow_stays_full_size(tmp_path, synth_dataset):
    clip = synth_dataset.videos_dir / "motion_right" / synth_dataset.clips["motion_right"][0]
    extract_clip(clip, tmp_path / "half", ExtractSettings(flow="dis", short_side=96,
                                                          flow_scale=0.5))
    marker = json.loads((tmp_path / "half" / ".complete.json").read_text())
    assert marker["settings"]["flow_scale"] == 0.5
    flow = cv2.imread(str(tmp_path / "half" / "flow_x_00001.jpg"), cv2.IMREAD_GRAYSCALE)
    assert flow.shape == (96, 128)
    # Full-resolution settings carry no flow_scale, so markers written before it existed match.
    assert "flow_scale" not in ExtractSettings(flow="dis").record()
    with pytest.raises(ValueError, match="--flow-scale"):
        extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, tmp_path / "x",
                        ExtractSettings(flow_scale=0.0), progress=False)


def test_bad_clips_are_reported_and_the_rest_extracted(tmp_path, synth_dataset):
    videos, splits = _copy_dataset(synth_dataset, tmp_path, ["motion_left", "motion_right"])
    cls = videos / "motion_left"
    good = (cls / synth_dataset.clips["motion_left"][0]).read_bytes()
    long = tmp_path / "long.avi"
    write_avi(long, render_motion_clip("left", np.random.default_rng(0), width=64, height=48,
                                       frames=30))
    bad = {
        "Garbage_(bytes)_0.avi": bytes(range(256)) * 40,
        "Empty_file_1.avi": b"",
        "Cut_off!_2.avi": long.read_bytes()[: long.stat().st_size * 5 // 10],  # 8 frames
    }
    # Cut later: 17 of 30 frames decode, enough for a flow stack of 10, so it is kept.
    (cls / "Cut_late_5.avi").write_bytes(long.read_bytes()[: long.stat().st_size * 7 // 10])
    for name, data in bad.items():
        (cls / name).write_bytes(data)
    write_avi(cls / "One_frame_3.avi", np.full((1, 48, 64, 3), 100, np.uint8))
    assert good  # the original clips stay intact
    with open(splits / "motion_left_test_split1.txt", "a", newline="") as f:
        f.writelines(f"{n} 1 \n" for n in [*bad, "One_frame_3.avi", "Not_there_4.avi",
                                            "Cut_late_5.avi"])
    out = tmp_path / "out"
    summary = extract_dataset(videos, splits, out, DIS, workers=2, progress=False)
    report = json.loads((out / "extract_report.json").read_text())
    reasons = {f["clip"].split("/", 1)[1]: f["reason"] for f in report["failed"]}
    assert set(reasons) == {*bad, "One_frame_3.avi"}
    assert reasons["Garbage_(bytes)_0.avi"].startswith("corrupt")
    assert reasons["Empty_file_1.avi"].startswith("empty")
    assert reasons["Cut_off!_2.avi"].startswith("truncated")
    assert reasons["One_frame_3.avi"].startswith("too short")
    assert all(f["path"].startswith(str(videos)) for f in report["failed"])
    assert report["missing"] == ["motion_left/Not_there_4.avi"]
    assert report["partial"] == [{"clip": "motion_left/Cut_late_5.avi", "frames": "17",
                                  "reason": "truncated: decoded 17 frames but the container "
                                            "declares 30"}]
    # 16 flow fields between the 17 frames that decode, plus flow 17, the copy for MMAction2.
    assert len(list((out / "rawframes" / "motion_left" / "Cut_late_5").glob("flow_x_*"))) == 17
    assert summary.complete == report["complete"] == 11
    listed = [row[0] for row in _annotations(out, "train", 1) + _annotations(out, "val", 1)]
    assert len(listed) == 11 and not any("Garbage" in x or "One_frame" in x for x in listed)
    assert ["motion_left/Cut_late_5", "17", "0"] in _annotations(out, "train", 1)
    # Nothing half-written is left for the bad clips.
    assert sorted(p.name for p in (out / "rawframes" / "motion_left").iterdir()) == sorted(
        [Path(c).stem for c in synth_dataset.clips["motion_left"]] + ["Cut_late_5"])


def test_rerun_skips_complete_clips_and_redoes_half_written_ones(tmp_path, synth_dataset,
                                                                 extracted_dataset):
    out = tmp_path / "out"
    shutil.copytree(extracted_dataset.out_dir, out)
    rawframes = out / "rawframes" / "motion_right"
    victim = rawframes / Path(synth_dataset.clips["motion_right"][0]).stem
    # A finished clip that lost a flow file and a frame since (issue 23 item 4), and a
    # leftover temporary folder.
    (victim / "flow_x_00007.jpg").unlink()
    (victim / "img_00003.jpg").unlink()
    leftover = rawframes / f".{victim.name}.partial-12345"
    leftover.mkdir()
    (leftover / "img_00001.jpg").write_bytes(b"half")
    summary = extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, out, FAST,
                              workers=1, progress=False)
    assert (summary.extracted_now, summary.already_done) == (1, 19)
    assert not leftover.exists()
    assert _tree(out) == _tree(extracted_dataset.out_dir)


def test_a_clip_folder_without_a_marker_is_foreign_and_left_alone(tmp_path, synth_dataset,
                                                                  extracted_dataset):
    # Atomic commits never leave a clip folder without its marker: one that has none was
    # made by something else, and is replaced only with force (issue 23 item 1).
    out = tmp_path / "out"
    shutil.copytree(extracted_dataset.out_dir, out)
    victim = out / "rawframes" / "motion_right" / Path(synth_dataset.clips["motion_right"][0]).stem
    (victim / ".complete.json").unlink()
    (victim / "notes.txt").write_text("mine")
    before = _tree(out)
    with pytest.raises(ForeignDataError, match=rf"1 clip folder\(s\) twostream did not make .*"
                       rf"motion_right/{re.escape(victim.name)}.*--force"):
        extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, out, FAST,
                        workers=1, progress=False)
    assert _tree(out) == before
    summary = extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, out, FAST,
                              workers=1, progress=False, force=True)
    assert (summary.extracted_now, summary.already_done) == (1, 19)
    assert _tree(out) == _tree(extracted_dataset.out_dir)


def test_lists_and_classes_it_did_not_write_are_never_overwritten(tmp_path, synth_dataset,
                                                                  extracted_dataset):
    out = tmp_path / "out"
    shutil.copytree(extracted_dataset.out_dir, out)
    # Its own files, rewritten on a rerun: also in a folder extracted before the ownership
    # record existed (the report names them).
    (out / ".twostream-extract.json").unlink()
    extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, out, FAST, workers=1,
                    progress=False)
    assert _tree(out) == _tree(extracted_dataset.out_dir)
    for name in ("classes.txt", "hmdb51_val_split_2_rawframes.txt"):
        edited = out / name
        edited.write_text("written by someone else\n")
        before = _tree(out)
        with pytest.raises(ForeignDataError, match=rf"1 file\(s\) it did not write \({name}\)"):
            extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, out, FAST,
                            workers=1, progress=False)
        assert _tree(out) == before
        extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, out, FAST,
                        workers=1, progress=False, force=True)
        assert _tree(out) == _tree(extracted_dataset.out_dir)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_killed_run_resumes_to_the_same_output(tmp_path, synth_dataset, extracted_dataset,
                                               workers):
    out = tmp_path / "out"
    code = (
        "import sys; from twostream.extract.dataset import extract_dataset;"
        "from twostream.extract.settings import ExtractSettings;"
        "from twostream.flow.presets import TVL1_PRESETS;"
        "extract_dataset(sys.argv[1], sys.argv[2], sys.argv[3], ExtractSettings(flow='tvl1',"
        " tvl1=TVL1_PRESETS['fast'], short_side=None), workers=int(sys.argv[4]),"
        " progress=False)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(synth_dataset.videos_dir),
         str(synth_dataset.splits_dir), str(out), str(workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(finished_clips(out)) < 3:
            assert proc.poll() is None, "extraction ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        workers = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # The workers die with the run (PR_SET_PDEATHSIG), but a busy machine may let one finish
    # its last rename first: count the finished clips once they are all gone.
    _wait_gone(workers)
    done_before = len(finished_clips(out))
    assert 3 <= done_before < 20
    assert not (out / "hmdb51_train_split_1_rawframes.txt").exists()
    summary = extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, out, FAST,
                              workers=1, progress=False)
    assert summary.already_done == done_before
    assert summary.extracted_now == 20 - done_before
    assert not list(out.glob("rawframes/*/.*partial*"))
    # Same files, same bytes, same annotation lists as the uninterrupted run.
    assert _tree(out) == _tree(extracted_dataset.out_dir)



def finished_clips(out: Path) -> list[Path]:
    """The markers of clips committed under ``out``. Not those in the hidden folders clips are
    made in: a run stopped between the marker and the rename leaves one there, not finished
    (pathlib's ``*`` matches hidden names)."""
    return [m for m in out.glob("rawframes/*/*/.complete.json")
            if not m.parent.name.startswith(".")]


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux: /proc)."""
    tasks = Path(f"/proc/{pid}/task")
    found: list[int] = []
    for task in tasks.iterdir() if tasks.is_dir() else []:
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _wait_gone(pids: list[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and _state(pid) not in ("Z", "X"):
            assert time.monotonic() < deadline, f"worker {pid} outlived the killed run"
            time.sleep(0.01)


def _state(pid: int) -> str:
    try:  # "pid (name) S ...": the state follows the last parenthesis
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def test_changed_settings_stop_before_touching_anything_unless_forced(tmp_path, synth_dataset):
    videos, splits = _copy_dataset(synth_dataset, tmp_path, ["motion_right"])
    out = tmp_path / "out"
    first = extract_dataset(videos, splits, out, DIS, workers=1, progress=False)
    again = extract_dataset(videos, splits, out, DIS, workers=1, progress=False)
    assert (first.extracted_now, again.extracted_now, again.already_done) == (5, 0, 5)
    before = {**_tree(out), "report": (out / "extract_report.json").read_text()}
    for changes, difference in [
        (dict(flow="farneback"), "flow: 'dis' -> 'farneback'"),
        (dict(short_side=32), "short_side: None -> 32"),
        (dict(bound=10.0), "bound: 20.0 -> 10.0"),
        (dict(flow="tvl1", tvl1=TVL1_PRESETS["fast"]), "flow: 'dis' -> 'tvl1'"),
        (dict(jpeg_quality=80), "jpeg_quality: 95 -> 80"),
    ]:
        with pytest.raises(SettingsMismatchError) as err:
            extract_dataset(videos, splits, out, dataclasses.replace(DIS, **changes), workers=1,
                            progress=False)
        msg = str(err.value)
        assert "5 clip(s) extracted with other settings" in msg and difference in msg
        assert "--force" in msg and "new OUT" in msg
        assert {**_tree(out), "report": (out / "extract_report.json").read_text()} == before
    other = extract_dataset(videos, splits, out, dataclasses.replace(DIS, flow="farneback"),
                            workers=1, progress=False, force=True)
    assert (other.extracted_now, other.already_done) == (5, 0)
    report = json.loads((out / "extract_report.json").read_text())
    assert report["settings"]["flow"] == "farneback"


def test_unusable_inputs_raise_naming_the_folder(tmp_path):
    info = make_synthetic_dataset(tmp_path / "d", classes=2, clips_per_class=2, width=32,
                                  height=32, frames=2)
    with pytest.raises(DatasetError, match="videos folder not found: .*nope"):
        extract_dataset(tmp_path / "nope", info.splits_dir, tmp_path / "o", progress=False)
    with pytest.raises(DatasetError, match="splits folder not found: .*nope"):
        extract_dataset(info.videos_dir, tmp_path / "nope", tmp_path / "o", progress=False)
    other = tmp_path / "other_splits"
    other.mkdir()
    (other / "unknown_test_split1.txt").write_text("ghost.avi 1 \n")
    with pytest.raises(DatasetError, match="no train/test clip named in"):
        extract_dataset(info.videos_dir, other, tmp_path / "o", progress=False)
    with pytest.raises(ValueError, match="allowed: tvl1, tvl1-torch, dis, farneback"):
        extract_dataset(info.videos_dir, info.splits_dir, tmp_path / "o",
                        ExtractSettings(flow="x"))


def test_rerun_pads_clips_extracted_before_the_flow_copy_existed(tmp_path, synth_dataset,
                                                                 extracted_dataset):
    out = tmp_path / "out"
    shutil.copytree(extracted_dataset.out_dir, out)
    for pad in out.glob("rawframes/motion_left/*/flow_?_00008.jpg"):
        pad.unlink()
    summary = extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, out, FAST,
                              workers=1, progress=False)
    assert (summary.extracted_now, summary.already_done) == (0, 20)
    assert _tree(out) == _tree(extracted_dataset.out_dir)


@pytest.mark.slow
def test_disk_full_stops_at_the_first_failure_and_keeps_finished_clips(
        tmp_path, synth_dataset, extracted_dataset, monkeypatch):
    import errno

    from twostream.extract import clip_folder
    from twostream.extract import dataset as extract_mod

    out = tmp_path / "out"
    real_write, writes = clip_folder.write_jpeg, []

    def fills_up(path, image, quality):
        writes.append(path)
        if len(writes) > 3 * 22 + 5:  # 3 clips of 8 frames + 7 flow pairs, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, image, quality)

    monkeypatch.setattr(clip_folder, "write_jpeg", fills_up)
    with pytest.raises(extract_mod.DiskFullError) as err:
        extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, out, FAST,
                        workers=1, progress=False)
    msg = str(err.value)
    assert "disk full while writing" in msg and "3/20 clips are extracted and kept" in msg
    assert "the 17 left need about" in msg and "GB more" in msg and "rerun" in msg
    assert len(writes) == 3 * 22 + 6  # nothing was tried after the first failure
    assert len(finished_clips(out)) == 3
    assert len(_annotations(out, "train", 1)) + len(_annotations(out, "val", 1)) == 3
    monkeypatch.setattr(clip_folder, "write_jpeg", real_write)
    summary = extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, out, FAST,
                              workers=1, progress=False)
    assert (summary.already_done, summary.extracted_now) == (3, 17)
    assert _tree(out) == _tree(extracted_dataset.out_dir)


# Loaded first by every interpreter of the run (the CLI and its spawned workers). Each clip
# folder, once committed, holds its process for a second: without it the 20 tiny clips could
# all finish between the first one and the Ctrl-C on a loaded machine, leaving nothing to
# interrupt. clip_folder is patched before extraction's modules import its commit_clip, and
# it is light to import, so the workers start no slower. A worker ignores Ctrl-C from its
# first instruction, as init_worker makes it do a moment later: a Ctrl-C while a worker is
# still starting is not what these tests are about.
SLOW_COMMITS = """
import signal
import sys
import time

if "--multiprocessing-fork" in sys.argv:
    signal.signal(signal.SIGINT, signal.SIG_IGN)

from twostream.extract import clip_folder

_commit = clip_folder.commit_clip


def commit_then_wait(*args, **kwargs):
    _commit(*args, **kwargs)
    time.sleep(1.0)


clip_folder.commit_clip = commit_then_wait
"""


def interrupt_extract(out, *args: str) -> tuple[int, int]:
    """Run `twostream extract ... OUT ARGS` with 2 workers, press Ctrl-C once a clip is done,
    check it ends as a Ctrl-C should, and return the clips done then and at the end."""
    # Python's own Ctrl-C handler, as a shell's foreground job has: a test run started in the
    # background (`make test &`) passes on SIGINT ignored, and Python keeps it ignored.
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from twostream.cli import main; sys.argv[0] = 'twostream'; main()")
    site = out.parent / "slow-commits"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_COMMITS, encoding="utf-8")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "extract", *args[:2], str(out), *args[2:],
         "--short-side", "0", "--workers", "2", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": path},
    )
    try:
        deadline = time.monotonic() + 120
        while not finished_clips(out):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        done_at_interrupt = len(finished_clips(out))
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("Error: interrupted:"), stderr
    assert "rerun the same command to resume" in stderr and "Traceback" not in stderr, stderr
    done = len(finished_clips(out))
    # The workers stopped with the run: at most the jobs they held when Ctrl-C came finished
    # after it (one running per worker, and the pool's queue of workers + 1 already handed
    # out), none of the clips still waiting.
    assert done_at_interrupt <= done <= done_at_interrupt + 5 < 20, (done_at_interrupt, done)
    return done_at_interrupt, done


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_at_once_and_a_rerun_resumes(tmp_path, synth_dataset):
    out = tmp_path / "out"
    _, done = interrupt_extract(out, str(synth_dataset.videos_dir),
                                str(synth_dataset.splits_dir))
    summary = extract_dataset(synth_dataset.videos_dir, synth_dataset.splits_dir, out,
                              ExtractSettings(short_side=None), workers=1, progress=False)
    assert (summary.already_done, summary.complete) == (done, 20)
    assert not list(out.glob("rawframes/*/.*partial*"))
