"""MMAction2 interop: the lists `extract` writes load RGB and Flow in MMAction2 for every clip.

``mmaction2`` 1.2.0 cannot be a test dependency here: its transforms import ``mmcv``, which
PyPI ships only as a source archive that does not build beside the pinned torch. So the test
reproduces the index rule of MMAction2 1.2.0's ``SampleFrames`` and the file names
``RawFrameDecode`` opens (both in ``mmaction/datasets/transforms/loading.py`` of the
``mmaction2==1.2.0`` wheel), and checks every index it can ask for against the files on disk.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_cli_model import _one_red_line, _run  # noqa: E402

from twostream import datasets  # noqa: E402
from twostream.datasets import RawframeDataset, read_annotations, read_class_list  # noqa: E402

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


# --------------------------------------------------------------------------- MMAction2-made folder


def make_mmaction2_folder(extracted: Path, videos_dir: Path, splits_dir: Path, dst: Path,
                          seed: int = 0) -> Path:
    """``data/hmdb51`` as MMAction2 1.2.0's tools leave it (``tools/data/hmdb51/*.sh``):

    * ``rawframes/<class>/<clip>/`` from ``build_rawframes.py`` (denseflow): ``img_00001.jpg``..
      n frames and ``flow_{x,y}_00001.jpg``.. n - 1 flow images, nothing else (the frames are
      taken from a twostream extraction, minus its padding copy and completion markers);
    * ``annotations/``: the official ``<class>_test_split<k>.txt`` files, and ``classInd.txt``
      (``parse_file_list.py``: ``"<i + 1> <name>"`` over ``sorted(os.listdir(videos))``, joined
      by newlines, no trailing newline) with ``trainlist0k.txt`` / ``testlist0k.txt``;
    * ``hmdb51_{train,val}_split_{k}_rawframes.txt`` (``build_file_list.py hmdb51 ... --level 2
      --format rawframes --shuffle``): ``"<class>/<clip> <RGB count> <classInd id - 1>\\n"``,
      shuffled, the RGB count counted as ``parse_directory`` does (files starting ``img_``).
    """
    shutil.copytree(extracted / "rawframes", dst / "rawframes",
                    ignore=shutil.ignore_patterns(".complete.json"))
    for clip_dir in (dst / "rawframes").glob("*/*"):
        n = len(list(clip_dir.glob("img_*")))
        for axis in "xy":
            (clip_dir / f"flow_{axis}_{n:05d}.jpg").unlink()
    ann = dst / "annotations"
    shutil.copytree(splits_dir, ann)
    classes = sorted(p.name for p in videos_dir.iterdir())
    (ann / "classInd.txt").write_text("\n".join(f"{i + 1} {c}" for i, c in enumerate(classes)))
    ids = {c: i + 1 for i, c in enumerate(classes)}
    rng = np.random.default_rng(seed)
    for k in (1, 2, 3):
        subsets: dict[str, list[str]] = {"1": [], "2": []}
        for cls in classes:
            for line in (ann / f"{cls}_test_split{k}.txt").read_text().splitlines():
                video, flag = line.split()
                if flag in subsets:
                    subsets[flag].append(f"{cls}/{video} {ids[cls]}")
        (ann / f"trainlist{k:02d}.txt").write_text("\n".join(subsets["1"]))
        (ann / f"testlist{k:02d}.txt").write_text("\n".join(subsets["2"]))
        for name, flag in (("train", "1"), ("val", "2")):
            lines = []
            for entry in subsets[flag]:
                video, cid = entry.split()
                clip = video.rsplit(".", 1)[0]
                rgb = len([f for f in (dst / "rawframes" / clip).iterdir()
                           if f.name.startswith("img_")])
                lines.append(f"{clip} {rgb} {int(cid) - 1}\n")
            rng.shuffle(lines)
            (dst / f"hmdb51_{name}_split_{k}_rawframes.txt").write_text("".join(lines))
    return dst


@pytest.fixture(scope="module")
def mm_folder(extracted_dataset, synth_dataset, tmp_path_factory) -> Path:
    return make_mmaction2_folder(extracted_dataset.out_dir, synth_dataset.videos_dir,
                                 synth_dataset.splits_dir, tmp_path_factory.mktemp("mm") / "hmdb51")


def test_class_names_come_from_classind_then_sorted_folders(mm_folder, synth_dataset, tmp_path):
    assert not (mm_folder / "classes.txt").exists()
    assert read_class_list(mm_folder) == synth_dataset.classes
    # classInd.txt's ids decide the order, not the file's line order.
    root = tmp_path / "reordered"
    (root / "annotations").mkdir(parents=True)
    lines = (mm_folder / "annotations" / "classInd.txt").read_text().splitlines()
    (root / "annotations" / "classInd.txt").write_text("\r\n".join(reversed(lines)) + "\r\n")
    assert read_class_list(root) == synth_dataset.classes
    # Without classInd.txt: the sorted class folders, MMAction2's numbering.
    (root / "annotations" / "classInd.txt").unlink()
    for cls in reversed(synth_dataset.classes):
        (root / "rawframes" / cls).mkdir(parents=True)
    assert read_class_list(root) == synth_dataset.classes
    # classes.txt, when present, wins.
    (root / "classes.txt").write_text("b\na\n")
    assert read_class_list(root) == ["b", "a"]


def test_mislabelled_list_is_one_clear_error_naming_the_line(mm_folder, tmp_path):
    root = tmp_path / "hmdb51"
    shutil.copytree(mm_folder, root)
    path = root / "hmdb51_train_split_1_rawframes.txt"
    lines = path.read_text().splitlines(keepends=True)
    clip, frames, label = lines[2].split()
    lines[2] = f"{clip} {frames} {(int(label) + 1) % 4}\n"
    path.write_text("".join(lines))
    _one_red_line(_run("train", root, "--stream", "spatial", "--out", tmp_path / "run"),
                  "hmdb51_train_split_1_rawframes.txt:3", clip.split("/")[0], "disagree")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_mmaction2_folder_trains_evaluates_and_predicts(mm_folder, synth_dataset, tmp_path,
                                                        caplog):
    for stream in ("spatial", "temporal"):
        r = _run("train", mm_folder, "--stream", stream, "--out", tmp_path / stream, "--arch",
                 "resnet18", "--weights", "none", "--epochs", "1", "--batch-size", "4",
                 "--crop", "32", "--workers", "0", "--device", "cpu", "--val-segments", "1",
                 "--new-length", "5")
        assert r.exit_code == 0, r.output
        assert "predict will ask for --flow, --short-side and --bound" in caplog.text
        run = json.loads((tmp_path / stream / "run.json").read_text())
        assert run["classes"] == synth_dataset.classes
        assert run["extract_settings"] == "unknown"
        r = _run("evaluate", tmp_path / stream, "--segments", "2", "--train-segments", "1")
        assert r.exit_code == 0, r.output
        report = json.loads((tmp_path / stream / "eval_split1.json").read_text())
        assert report["clips"] == 4 and report["skipped"] == []  # every test clip scored
    video = next((synth_dataset.videos_dir / synth_dataset.classes[2]).iterdir())
    runs = ("--spatial", tmp_path / "spatial", "--temporal", tmp_path / "temporal")
    _one_red_line(_run("predict", video, *runs), "--flow, --short-side, --bound")
    _one_red_line(_run("predict", video, *runs, "--flow", "tvl1"), "--short-side, --bound")
    r = _run("predict", video, *runs, "--flow", "dis", "--short-side", "0", "--bound", "20",
             "--top-k", "4", "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    assert result["fusion"] == "average"  # `fuse` was never run on these runs
    assert sorted(d["label"] for d in result["top"]) == synth_dataset.classes


def _files(root: Path) -> dict[str, bytes]:
    """Every file and folder under ``root``: its bytes (folders: b"<dir>")."""
    return {str(p.relative_to(root)): b"<dir>" if p.is_dir() else p.read_bytes()
            for p in sorted(root.rglob("*"))}


def test_extract_into_an_mmaction2_folder_refuses_and_leaves_it_byte_identical(
        mm_folder, synth_dataset, tmp_path):
    # data/hmdb51 as MMAction2's tools leave it, with the videos beside: the command a user
    # would try, `extract data/hmdb51/videos data/hmdb51/annotations data/hmdb51`, once
    # replaced every denseflow clip folder and the lists (issue 23 item 1).
    root = tmp_path / "data" / "hmdb51"
    shutil.copytree(mm_folder, root)
    shutil.copytree(synth_dataset.videos_dir, root / "videos")
    clip_dirs = sorted((root / "rawframes").glob("*/*"))
    assert len(clip_dirs) == 20
    for clip_dir in clip_dirs:  # denseflow's: one fewer flow image than frames, no marker
        n = len(list(clip_dir.glob("img_*.jpg")))
        assert len(list(clip_dir.glob("flow_x_*.jpg"))) == n - 1
        assert not (clip_dir / ".complete.json").exists()
    (clip_dirs[0] / "notes.txt").write_text("a file of the user's")
    before = _files(root)
    first = [f"{d.parent.name}/{d.name}" for d in clip_dirs[:3]]
    _one_red_line(_run("extract", root / "videos", root / "annotations", root, "--short-side",
                       "0", "--tvl1-preset", "fast", "--workers", "1", "--no-progress"),
                  "20 clip folder(s) twostream did not make", *first, "--force", "another OUT",
                  "hmdb51_train_split_1_rawframes.txt")
    assert _files(root) == before
    # Only MMAction2's lists in an OUT: refused the same way.
    lists_only = tmp_path / "lists-only"
    lists_only.mkdir()
    shutil.copy(root / "hmdb51_val_split_3_rawframes.txt", lists_only)
    _one_red_line(_run("extract", root / "videos", root / "annotations", lists_only,
                       "--workers", "1", "--no-progress"),
                  "1 file(s) it did not write (hmdb51_val_split_3_rawframes.txt)", "--force")
    assert [p.name for p in lists_only.iterdir()] == ["hmdb51_val_split_3_rawframes.txt"]
