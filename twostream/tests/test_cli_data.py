from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from twostream.cli import app

runner = CliRunner()


def _copy(info, dst, classes):
    for cls in classes:
        shutil.copytree(info.videos_dir / cls, dst / "videos" / cls)
        for k in (1, 2, 3):
            (dst / "splits").mkdir(parents=True, exist_ok=True)
            name = f"{cls}_test_split{k}.txt"
            shutil.copy(info.splits_dir / name, dst / "splits" / name)
    return dst / "videos", dst / "splits"


def test_synth_writes_a_dataset(tmp_path):
    result = runner.invoke(app, ["synth", str(tmp_path / "d"), "--classes", "2",
                                 "--clips-per-class", "3", "--width", "32", "--height", "32",
                                 "--frames", "3", "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert "wrote 2 classes x 3 clips" in result.stdout
    assert len(list((tmp_path / "d" / "videos").rglob("*.avi"))) == 6
    assert len(list((tmp_path / "d" / "splits").glob("*_test_split*.txt"))) == 6


def test_synth_refuses_a_folder_that_is_not_empty(tmp_path):
    args = ["synth", str(tmp_path / "d"), "--classes", "2", "--clips-per-class", "2",
            "--width", "32", "--height", "32", "--frames", "2"]
    assert runner.invoke(app, args).exit_code == 0
    before = sorted(str(p) for p in (tmp_path / "d").rglob("*"))
    split = next((tmp_path / "d" / "splits").iterdir()).read_bytes()
    again = runner.invoke(app, [*args, "--seed", "5"])
    assert again.exit_code == 1
    assert again.stderr.strip() == f"Error: {tmp_path / 'd'} is not empty: synth writes a " \
        "whole new dataset; choose a new folder or empty this one"
    assert sorted(str(p) for p in (tmp_path / "d").rglob("*")) == before
    assert next((tmp_path / "d" / "splits").iterdir()).read_bytes() == split


def test_synth_bad_option_is_one_red_line(tmp_path):
    result = runner.invoke(app, ["synth", str(tmp_path / "d"), "--classes", "1"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: need at least 2 classes, got 1"
    assert "Traceback" not in result.output


def test_extract_runs_and_reruns(tmp_path, synth_dataset):
    videos, splits = _copy(synth_dataset, tmp_path, ["motion_left"])
    args = ["extract", str(videos), str(splits), str(tmp_path / "out"), "--flow", "dis",
            "--short-side", "0", "--workers", "1", "--no-progress"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "5/5 clips extracted (5 now, 0 already done), 0 failed" in first.stdout
    again = runner.invoke(app, args)
    assert again.exit_code == 0
    assert "5/5 clips extracted (0 now, 5 already done)" in again.stdout
    report = json.loads((tmp_path / "out" / "extract_report.json").read_text())
    assert report["settings"]["flow"] == "dis" and report["settings"]["short_side"] is None
    other = runner.invoke(app, [*args[:4], "--flow", "farneback", *args[6:]])
    assert other.exit_code == 1
    assert len(other.stderr.strip().splitlines()) == 1
    assert "flow: 'dis' -> 'farneback'" in other.stderr and "--force" in other.stderr
    forced = runner.invoke(app, [*args[:4], "--flow", "farneback", *args[6:], "--force"])
    assert forced.exit_code == 0, forced.output
    assert "5/5 clips extracted (5 now, 0 already done)" in forced.stdout


def test_extract_passes_tvl1_options(tmp_path, synth_dataset):
    videos, splits = _copy(synth_dataset, tmp_path, ["motion_right"])
    result = runner.invoke(app, ["extract", str(videos), str(splits), str(tmp_path / "out"),
                                 "--short-side", "0", "--workers", "1", "--no-progress",
                                 "--tvl1-preset", "fast", "--tvl1-warps", "1",
                                 "--tvl1-tau", "0.2"])
    assert result.exit_code == 0, result.output
    tvl1 = json.loads((tmp_path / "out" / "extract_report.json").read_text())["settings"]["tvl1"]
    assert (tvl1["warps"], tvl1["tau"], tvl1["nscales"]) == (1, 0.2, 4)


def test_extract_scaled_preset_and_flow_scale_reach_the_settings(tmp_path, synth_dataset):
    videos, splits = _copy(synth_dataset, tmp_path, ["motion_right"])
    common = [str(videos), str(splits), "--short-side", "0", "--workers", "1", "--no-progress"]
    r = runner.invoke(app, ["extract", *common[:2], str(tmp_path / "a"), *common[2:],
                            "--tvl1-preset", "fast-third", "--tvl1-warps", "1"])
    assert r.exit_code == 0, r.output
    settings = json.loads((tmp_path / "a" / "extract_report.json").read_text())["settings"]
    assert (settings["flow_scale"], settings["tvl1"]["nscales"]) == (0.33, 4)
    r = runner.invoke(app, ["extract", *common[:2], str(tmp_path / "b"), *common[2:],
                            "--flow", "dis", "--flow-scale", "0.25"])
    assert r.exit_code == 0, r.output
    settings = json.loads((tmp_path / "b" / "extract_report.json").read_text())["settings"]
    assert (settings["flow"], settings["flow_scale"]) == ("dis", 0.25)


def test_extract_missing_or_empty_folders_exit_1_naming_the_path(tmp_path, synth_dataset):
    out = str(tmp_path / "out")
    missing = tmp_path / "no_such_videos"
    result = runner.invoke(app, ["extract", str(missing), str(synth_dataset.splits_dir), out])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith(f"Error: videos folder not found: {missing}")
    assert len(result.stderr.strip().splitlines()) == 1
    result = runner.invoke(app, ["extract", str(synth_dataset.videos_dir),
                                 str(tmp_path / "no_splits"), out])
    assert result.exit_code == 1
    assert "splits folder not found" in result.stderr and "no_splits" in result.stderr
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["extract", str(synth_dataset.videos_dir),
                                 str(tmp_path / "empty"), out])
    assert result.exit_code == 1
    assert f"no split files in {tmp_path / 'empty'}" in result.stderr
    assert "Traceback" not in result.output


def test_extract_unwritable_out_dir_is_one_red_line(tmp_path, synth_dataset):
    (tmp_path / "a_file").write_text("")
    out = tmp_path / "a_file" / "out"
    result = runner.invoke(app, ["extract", str(synth_dataset.videos_dir),
                                 str(synth_dataset.splits_dir), str(out), "--no-progress"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot write {out}: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_extract_exits_1_when_every_clip_is_bad(tmp_path):
    (tmp_path / "videos" / "wave").mkdir(parents=True)
    (tmp_path / "videos" / "wave" / "bad_(1).avi").write_bytes(b"not a video")
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "wave_test_split1.txt").write_text("bad_(1).avi 1 \n")
    result = runner.invoke(app, ["extract", str(tmp_path / "videos"), str(tmp_path / "splits"),
                                 str(tmp_path / "out"), "--workers", "1", "--no-progress"])
    assert result.exit_code == 1
    assert "skipped wave/bad_(1).avi: corrupt" in result.stderr
    assert sum("bad_(1).avi" in line for line in result.stderr.splitlines()) == 1  # once
    assert "no clip could be extracted" in result.stderr


@pytest.mark.parametrize("option, value, needle", [
    ("--short-side", "3", "--short-side must be 0 (native size) or 16-2160"),
    ("--short-side", "-1", "--short-side"),
    # Once tried to allocate 40 GB per frame in every worker (issue 23 item 5).
    ("--short-side", "100000", "--short-side must be 0 (native size) or 16-2160"),
    # nan once wrote all-zero flow and NaN into the report (issue 23 item 4).
    ("--bound", "nan", "--bound must be a positive number of px, got nan"),
    ("--bound", "inf", "--bound must be a positive number of px, got inf"),
    ("--tvl1-lambda", "inf", "--tvl1-lambda must be positive, got inf"),
    ("--tvl1-epsilon", "nan", "--tvl1-epsilon must be positive, got nan"),
    ("--flow-scale", "nan", "--flow-scale must be in (0, 1]"),
    ("--tvl1-nscales", "0", "--tvl1-nscales must be at least 1"),
    ("--tvl1-tau", "0", "--tvl1-tau must be in (0, 0.25]"),
    ("--tvl1-theta", "0", "--tvl1-theta must be positive"),
    ("--tvl1-scale-step", "1.5", "--tvl1-scale-step must be in (0, 1)"),
    ("--tvl1-warps", "0", "--tvl1-warps"),
    ("--tvl1-inner-iterations", "0", "--tvl1-inner-iterations"),
    ("--jpeg-quality", "0", "--jpeg-quality must be 1-100"),
    ("--workers", "0", "--workers must be at least 1"),
    ("--bound", "0", "--bound must be a positive number of px, got 0.0"),
])
def test_extract_option_out_of_range_is_one_line_before_any_work(tmp_path, synth_dataset,
                                                                  option, value, needle):
    out = tmp_path / "out"
    result = runner.invoke(app, ["extract", str(synth_dataset.videos_dir),
                                 str(synth_dataset.splits_dir), str(out), option, value,
                                 "--no-progress"])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {needle}" or (
        needle in result.stderr and len(result.stderr.strip().splitlines()) == 1), result.stderr
    assert not out.exists()


def test_extract_help_says_how_to_measure_flow_accuracy():
    result = runner.invoke(app, ["extract", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for phrase in ("dis", "farneback", "endpoint error", "moving pixels", "--tvl1-preset",
                   "--tvl1-nscales"):
        assert phrase in text.lower() or phrase in text


@pytest.mark.parametrize("error", [ValueError("boom"), OSError(5, "boom")])
def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch, error):
    # Only TwostreamError is the user's: a plain ValueError/OSError from inside is a bug and
    # must reach the user as a traceback, not as "Error: ...".
    import twostream.synth

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(twostream.synth, "make_synthetic_dataset", broken)
    result = runner.invoke(app, ["synth", str(tmp_path / "d")])
    assert result.exception is error
    assert "Error:" not in result.output


# Options the chosen method would ignore, once accepted without a word (issue 23 item 4).
IGNORED = [
    (["--flow", "farneback", "--device", "cuda"], "--device cuda runs --flow tvl1-torch only"),
    (["--flow", "dis", "--tvl1-warps", "3"], "--tvl1-warps set TV-L1's parameters, which --flow "
     "dis does not use"),
    (["--flow", "farneback", "--tvl1-preset", "fast"], "--tvl1-preset set TV-L1's parameters"),
    (["--flow", "dis", "--flow-batch", "8"], "--flow-batch batches --flow tvl1-torch only"),
    (["--flow", "tvl1-torch", "--tvl1-preset", "fast-third"],
     "fast-third computes flow on frames shrunk to a third, which tvl1-torch does not do"),
]


@pytest.mark.parametrize("options, needle", IGNORED, ids=[" ".join(o) for o, _ in IGNORED])
def test_extract_refuses_options_the_method_ignores(tmp_path, synth_dataset, options, needle):
    out = tmp_path / "out"
    result = runner.invoke(app, ["extract", str(synth_dataset.videos_dir),
                                 str(synth_dataset.splits_dir), str(out), *options,
                                 "--no-progress"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], lines
    assert not out.exists()


SYNTH_BAD = [
    (["--seed", "-1"], "seed must be 0 or more, got -1"),
    (["--fps", "-5"], "fps must be 1-120, got -5"),
    (["--fps", "1000000000"], "fps must be 1-120"),
    (["--width", "100000"], "width and height must be at most 1920, got 100000x120"),
    (["--frames", "100000"], "rendered whole in memory"),
]


@pytest.mark.parametrize("options, needle", SYNTH_BAD, ids=[" ".join(o) for o, _ in SYNTH_BAD])
def test_synth_option_out_of_range_is_one_red_line(tmp_path, options, needle):
    result = runner.invoke(app, ["synth", str(tmp_path / "d"), *options])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == f"Error: {needle}" or (
        needle in result.stderr and len(result.stderr.strip().splitlines()) == 1), result.stderr
    assert not (tmp_path / "d").exists()


def test_a_failed_synth_leaves_nothing_behind_and_reruns(tmp_path, monkeypatch):
    # A failure half-way once left a half-written folder that blocked the rerun.
    import twostream.synth

    real, calls = twostream.synth.write_avi, []

    def fails_on_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("killed half-way")
        real(*args, **kwargs)

    args = ["synth", str(tmp_path / "d"), "--classes", "2", "--clips-per-class", "2",
            "--width", "32", "--height", "32", "--frames", "2"]
    monkeypatch.setattr(twostream.synth, "write_avi", fails_on_the_third)
    result = runner.invoke(app, args)
    assert isinstance(result.exception, RuntimeError)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(twostream.synth, "write_avi", real)
    assert runner.invoke(app, args).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    assert len(list((tmp_path / "d" / "videos").rglob("*.avi"))) == 4
