"""`twostream train/evaluate/fuse/predict/export`: one chain end to end, and bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from twostream import device
from twostream.cli import app
from twostream.demo import group_accuracy
from twostream.errors import OptionError

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _one_red_line(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert "Traceback" not in result.output
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture(scope="module")
def trained(extracted_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    raw = extracted_dataset.out_dir
    for stream in ("spatial", "temporal"):
        r = _run("train", raw, "--stream", stream, "--out", out / stream, "--arch", "resnet18",
                 "--weights", "none", "--epochs", "1", "--batch-size", "4", "--crop", "32",
                 "--workers", "0", "--device", "cpu", "--val-segments", "1",
                 "--new-length", "5")  # the clips have 8 frames, 7 flow fields
        assert r.exit_code == 0, r.output
        assert "split 1: train acc" in r.output
    return raw, out


@pytest.mark.slow
def test_train_evaluate_fuse_predict_export(trained, synth_dataset, tmp_path):
    raw, out = trained
    for stream in ("spatial", "temporal"):
        r = _run("evaluate", out / stream, "--segments", "3", "--train-segments", "2",
                 "--batch-size", "2")
        assert r.exit_code == 0, r.output
        report = json.loads((out / stream / "eval_split1.json").read_text())
        assert f"top-1 {report['top1']:.1%}" in r.output
    r = _run("fuse", out / "spatial", out / "temporal", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    assert all(m in r.output for m in ("spatial", "temporal", "average", "weighted", "svm"))
    assert (tmp_path / "fusion.csv").exists() and not (out / "spatial" / "fusion.csv").exists()
    assert (f"written to {tmp_path / 'fusion.csv'}; what was learned to "
            f"{out / 'spatial' / 'fusion_model.json'}") in r.output

    video = next((synth_dataset.videos_dir / synth_dataset.classes[0]).iterdir())
    r = _run("predict", video, "--spatial", out / "spatial", "--temporal", out / "temporal",
             "--top-k", "2", "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    learned = json.loads((out / "spatial" / "fusion_model.json").read_text())
    assert (result["fusion"], result["split"]) == (learned["splits"]["1"]["best"], 1)
    top = result["top"]
    assert [set(d) for d in top] == [{"label", "score"}] * 2
    assert {d["label"] for d in top} <= set(synth_dataset.classes)

    r = _run("export", out / "temporal", tmp_path / "t.onnx")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "t.onnx").stat().st_size > 100_000


def test_fuse_help_says_where_each_file_goes():
    r = _run("fuse", "--help")
    assert r.exit_code == 0
    assert "Where fusion.csv/.json go (default: SPATIAL_RUN)" in r.output
    assert "SPATIAL_RUN/fusion_model.json even with --out: predict reads it there" in r.output


def test_bad_input_is_one_red_line(trained, tmp_path):
    raw, out = trained
    _one_red_line(_run("train", tmp_path / "nowhere", "--stream", "spatial", "--out",
                       tmp_path / "r"), "nowhere")
    copy = tmp_path / "raw"
    shutil.copytree(raw, copy)
    (copy / "hmdb51_train_split_1_rawframes.txt").write_text("")
    _one_red_line(_run("train", copy, "--stream", "spatial", "--out", tmp_path / "r"),
                  "training list is empty", "hmdb51_train_split_1_rawframes.txt")
    assert not (tmp_path / "r").exists()
    shutil.copy(raw / "hmdb51_train_split_1_rawframes.txt", copy)
    (copy / "hmdb51_val_split_1_rawframes.txt").unlink()
    _one_red_line(_run("train", copy, "--stream", "spatial", "--out", tmp_path / "r"),
                  "hmdb51_val_split_1_rawframes.txt")
    _one_red_line(_run("train", raw, "--stream", "spatial", "--out", out / "spatial",
                       "--weights", "none", "--arch", "resnet18", "--crop", "32"), "--resume")
    _one_red_line(_run("train", raw, "--stream", "spatial", "--out", out / "spatial",
                       "--resume", "--arch", "resnet50"), "arch='resnet18', not 'resnet50'")
    _one_red_line(_run("train", raw, "--out", tmp_path / "r"), "RAWFRAMES and --stream")
    _one_red_line(_run("train", raw, "--stream", "depth", "--out", tmp_path / "r"), "stream")
    (tmp_path / "a_file").write_text("")
    _one_red_line(_run("train", raw, "--stream", "spatial", "--out", tmp_path / "a_file",
                       "--weights", "none", "--arch", "resnet18", "--crop", "32"), "a_file")
    _one_red_line(_run("train", raw, "--stream", "spatial", "--out", tmp_path / "r",
                       "--device", "tpu"), "device")
    _one_red_line(_run("evaluate", out / "spatial", "--crops", "3"), "--crops")
    _one_red_line(_run("evaluate", tmp_path), "no run.json")
    _one_red_line(_run("fuse", out / "temporal", out / "spatial"), "spatial run then")
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"\x00" * 64)
    _one_red_line(_run("predict", broken, "--spatial", out / "spatial", "--temporal",
                       out / "temporal"), "cannot decode", "broken.avi")
    _one_red_line(_run("export", tmp_path, tmp_path / "x.onnx"), "run.json")


def _damaged_run(src, dst, what: str):
    """A copy of run ``src`` (run.json and checkpoint only) with one thing damaged."""
    dst.mkdir()
    shutil.copy(src / "run.json", dst / "run.json")
    ckpt = (src / "checkpoint_split1.pt").read_bytes()
    if what == "truncated checkpoint":
        ckpt = ckpt[: len(ckpt) // 2]
    elif what == "empty checkpoint":
        ckpt = b""
    (dst / "checkpoint_split1.pt").write_bytes(ckpt)
    if what == "broken fusion model":
        (dst / "fusion_model.json").write_text('{"temporal_run": ')
    if what == "broken run.json":
        (dst / "run.json").write_text('{"stream": "spatial", ')
    elif what == "moved rawframes":
        run = json.loads((src / "run.json").read_text())
        run["rawframes"] = str(dst / "gone")
        (dst / "run.json").write_text(json.dumps(run))
    return dst


# (command and options, damage to a copy of the spatial run or None, words the line must hold)
BAD_OPTIONS = [
    (["train", "{raw}", "--stream", "spatial", "--epochs", "0"], None, ["--epochs", "at least 1"]),
    (["train", "{raw}", "--stream", "spatial", "--crop", "0"], None, ["--crop", "at least 32"]),
    (["train", "{raw}", "--stream", "spatial", "--crop", "10000"], None,
     ["--crop 10000 is larger than the frames", "64x48"]),
    (["train", "{raw}", "--stream", "temporal", "--new-length", "0"], None, ["--new-length"]),
    (["train", "{raw}", "--stream", "spatial", "--device", "cuda"], None, ["no CUDA"]),
    (["train", "{raw}", "--stream", "spatial", "--resume"], None, ["nothing to resume"]),
    (["evaluate", "{run}", "--segments", "0"], None, ["--segments", "at least 1"]),
    (["evaluate", "{run}", "--train-segments", "0"], None, ["--train-segments"]),
    (["evaluate", "{run}", "--split", "4"], None, ["--split", "'4'"]),
    (["evaluate", "{run}", "--split", "2"], None, ["no checkpoint for split 2"]),
    (["evaluate", "{run}", "--device", "cuda"], None, ["no CUDA"]),
    (["evaluate", "{run}"], "truncated checkpoint", ["checkpoint_split1.pt", "unreadable"]),
    (["evaluate", "{run}"], "empty checkpoint", ["checkpoint_split1.pt", "empty"]),
    (["evaluate", "{run}"], "broken run.json", ["run.json", "not valid JSON"]),
    (["evaluate", "{run}"], "moved rawframes", ["is gone", "--rawframes"]),
    (["evaluate", "{run}", "--rawframes", "{other}"], None,
     ["classes.txt", "does not match", "3 classes there, 4 in the run"]),
    (["predict", "{video}", "--spatial", "{run}", "--temporal", "{temporal}", "--top-k", "0"],
     None, ["--top-k", "at least 1"]),
    (["predict", "{video}", "--spatial", "{run}", "--temporal", "{temporal}", "--top-k", "-1"],
     None, ["--top-k"]),
    (["predict", "{video}", "--spatial", "{run}", "--temporal", "{temporal}", "--device",
      "cuda"], None, ["no CUDA"]),
    (["predict", "{video}", "--spatial", "{run}", "--temporal", "{temporal}", "--split", "4"],
     None, ["--split must be 1, 2 or 3"]),
    (["predict", "{video}", "--spatial", "{run}", "--temporal", "{temporal}"],
     "truncated checkpoint", ["checkpoint_split1.pt", "unreadable"]),
    (["export", "{run}", "{tmp}/x.onnx"], "empty checkpoint", ["checkpoint_split1.pt"]),
    # Issue 23 items 4 and 5: silent accepts and tracebacks, now one line each.
    (["train", "{raw}", "--stream", "spatial", "--lr", "inf"], None,
     ["--lr must be a finite number, got inf"]),
    (["train", "{raw}", "--stream", "spatial", "--lr", "nan"], None, ["--lr must be a finite"]),
    (["train", "{raw}", "--stream", "temporal", "--new-length", "8"], None,
     ["--new-length 8 is longer than the flow of", "(8 frames, 7 flow fields)",
      "the shortest clip of split 1", "--new-length 7 or less"]),
    (["train", "{raw}", "--stream", "temporal", "--new-length", "1000"], None,
     ["--new-length must be 1-64"]),
    (["predict", "{video}", "--spatial", "{run}", "--temporal", "{temporal}", "--bound", "0"],
     None, ["--bound must be a positive number of px"]),
    (["predict", "{video}", "--spatial", "{run}", "--temporal", "{temporal}", "--flow",
      "bogus"], None, ["unknown flow method 'bogus'"]),
    (["predict", "{video}", "--spatial", "{run}", "--temporal", "{temporal}"],
     "broken fusion model", ["fusion_model.json is unreadable", "twostream fuse"]),
    (["evaluate", "{run}", "--rawframes", "{empty}"], None,
     ["split 1: the test list", "hmdb51_val_split_1_rawframes.txt is empty"]),

    (["export", "{run}", "{tmp}/x.onnx", "--split", "4"], None, ["--split"]),
]


@pytest.mark.parametrize("args, damage, needles", BAD_OPTIONS,
                         ids=[" ".join(a[:1] + a[2:]) + (f" [{d}]" if d else "")
                              for a, d, _ in BAD_OPTIONS])
def test_bad_option_or_damaged_file_is_one_red_line(trained, synth_dataset, tmp_path, args,
                                                    damage, needles, monkeypatch):
    if "--device" in args:  # about a missing GPU: holds on a machine with one too
        monkeypatch.setattr(device, "cuda_device_count", lambda: 0)
    raw, out = trained
    run = out / "spatial" if damage is None else _damaged_run(out / "spatial",
                                                              tmp_path / "run", damage)
    other = tmp_path / "other"
    if "{other}" in args:  # the same rawframes with one class fewer
        shutil.copytree(raw, other)
        classes = (other / "classes.txt").read_text().splitlines()
        (other / "classes.txt").write_text("\n".join(classes[:-1]) + "\n")
    if "{empty}" in args:  # the same rawframes with an empty test list
        shutil.copytree(raw, tmp_path / "empty")
        (tmp_path / "empty" / "hmdb51_val_split_1_rawframes.txt").write_text("")
    values = dict(raw=raw, run=run, temporal=out / "temporal", other=other, tmp=tmp_path,
                  empty=tmp_path / "empty",
                  video=next((synth_dataset.videos_dir / synth_dataset.classes[0]).iterdir()))
    full = [a.format(**values) for a in args]
    if full[0] == "train":
        full += ["--out", str(tmp_path / "new"), "--arch", "resnet18", "--weights", "none"]
        full += [] if "--crop" in full else ["--crop", "32"]
    _one_red_line(_run(*full), *needles)
    assert not (tmp_path / "new").exists() and not (tmp_path / "x.onnx").exists()


# Every command that takes --device, with arguments that get it as far as resolving it.
DEVICE_COMMANDS = {
    "train": ["train", "{raw}", "--stream", "spatial", "--out", "{tmp}/new", "--arch", "resnet18",
              "--weights", "none", "--crop", "32"],
    "evaluate": ["evaluate", "{run}"],
    "predict": ["predict", "{video}", "--spatial", "{run}", "--temporal", "{temporal}"],
    "extract": ["extract", "{videos}", "{splits}", "{tmp}/x", "--flow", "tvl1-torch",
                "--workers", "1", "--no-progress"],
}
# (GPUs the machine seems to have, --device): refused by every command with the same line.
DEVICE_REFUSED = [(0, "cuda"), (0, "cuda:0"), (2, "cuda:2"), (2, "gpu"), (2, "cuda:x")]


def test_every_command_takes_device_with_the_same_default():
    commands = typer.main.get_command(app).commands
    defaults = {name: p.default for name, cmd in commands.items() for p in cmd.params
                if p.name == "device"}
    assert defaults == dict.fromkeys(DEVICE_COMMANDS, device.DEFAULT_DEVICE)


@pytest.mark.parametrize("gpus, value", DEVICE_REFUSED,
                         ids=[f"{g}gpu-{v}" for g, v in DEVICE_REFUSED])
@pytest.mark.parametrize("command", DEVICE_COMMANDS)
def test_every_command_resolves_device_through_the_one_resolver(
        trained, synth_dataset, tmp_path, monkeypatch, command, gpus, value):
    monkeypatch.setattr(device, "cuda_device_count", lambda: gpus)
    with pytest.raises(OptionError) as err:
        device.resolve_device(value)
    raw, out = trained
    values = dict(raw=raw, run=out / "spatial", temporal=out / "temporal", tmp=tmp_path,
                  videos=synth_dataset.videos_dir, splits=synth_dataset.splits_dir,
                  video=next((synth_dataset.videos_dir / synth_dataset.classes[0]).iterdir()))
    args = [a.format(**values) for a in DEVICE_COMMANDS[command]]
    _one_red_line(_run(*args, "--device", value), str(err.value))
    assert not (tmp_path / "new").exists() and not (tmp_path / "x").exists()


def test_predict_device_auto_runs(trained, synth_dataset):
    _, out = trained
    video = next((synth_dataset.videos_dir / synth_dataset.classes[0]).iterdir())
    r = _run("predict", video, "--spatial", out / "spatial", "--temporal", out / "temporal",
             "--device", "auto", "--top-k", "1", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["top"][0]["label"] in synth_dataset.classes


def test_resume_needs_only_the_run_folder_and_trains_on(trained, tmp_path):
    _, out = trained
    run = tmp_path / "run"
    shutil.copytree(out / "temporal", run)
    r = _run("train", "--resume", "--out", run, "--epochs", "2")
    assert r.exit_code == 0, r.output
    assert "split 1: train acc" in r.output and "after epoch 2" in r.output
    lrs = [float(line.split(",")[2]) for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert len(lrs) == 2 and lrs[1] > 0  # the stretched schedule, not a finished one at lr 0
    r = _run("train", "--resume", "--out", run)
    assert r.exit_code == 0, r.output
    assert "split 1: already trained 2 epoch(s); nothing to do" in r.output


def test_ctrl_c_in_train_says_how_to_resume(trained, tmp_path, monkeypatch):
    from twostream import train as train_mod

    raw, _ = trained

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "main", interrupted)
    r = _run("train", raw, "--stream", "spatial", "--out", tmp_path / "r")
    assert r.exit_code == 130
    assert r.output.strip() == (f"Error: interrupted: every finished epoch is saved in "
                                f"{tmp_path / 'r'}; continue with `twostream train --resume "
                                f"--out {tmp_path / 'r'}`")


def test_group_accuracy():
    classes = ["appearance_a", "appearance_b", "motion_a", "motion_b"]
    labels = np.array([0, 1, 2, 3, 3])
    scores = np.eye(4)[[0, 0, 2, 3, 2]]
    acc = group_accuracy(scores, labels, classes)
    assert acc == {"appearance": 0.5, "motion": 2 / 3, "overall": 0.6}


def test_demo_refuses_a_folder_made_with_other_settings_or_by_something_else(tmp_path):
    from dataclasses import asdict

    from twostream.demo import DEMO_RECORD, DemoConfig

    old = {k: v for k, v in asdict(DemoConfig(seed=1, epochs=3)).items() if k != "workers"}
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / DEMO_RECORD).write_text(json.dumps(old))
    _one_red_line(_run("demo", "--out", tmp_path / "demo", "--seed", "0", "--epochs", "3"),
                  "--seed 1 (now 0)", "another --out")
    _one_red_line(_run("demo", "--out", tmp_path / "demo", "--seed", "1", "--epochs", "2"),
                  "--epochs 3 (now 2)")
    assert [p.name for p in (tmp_path / "demo").iterdir()] == [DEMO_RECORD]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    _one_red_line(_run("demo", "--out", tmp_path / "other"), "not empty", DEMO_RECORD)
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["notes.txt"]


@pytest.mark.slow
def test_demo_pipeline_on_a_tiny_dataset(tmp_path):
    from twostream.demo import DemoConfig, run_demo
    from twostream.fusion import fuse_split

    lines: list[str] = []
    cfg = DemoConfig(classes=4, clips_per_class=4, width=48, height=32, frames=11, crop=32,
                     epochs=1, batch_size=4)
    result = run_demo(tmp_path, cfg, echo=lines.append)
    text = "\n".join(lines)
    assert "TV-L1" in text and "appearance" in text and "predict" in text
    # The printed/saved table is the group accuracy of the fused scores on split 1.
    fused = fuse_split(tmp_path / "spatial", tmp_path / "temporal", 1)
    classes = json.loads((tmp_path / "spatial" / "run.json").read_text())["classes"]
    for method in ("spatial", "temporal", "average", "svm"):
        expected = group_accuracy(fused["scores"][method], fused["labels"], classes)
        assert result["table"][method] == pytest.approx(expected)
    saved = json.loads((tmp_path / "demo.json").read_text())
    assert saved["prediction"]["true"] in classes
    assert saved["prediction"]["top"][0]["label"] in classes


def test_a_bug_in_a_model_command_keeps_its_traceback(tmp_path, monkeypatch):
    import twostream.export

    def broken(*args, **kwargs):
        raise ValueError("shape mismatch deep inside torch")

    monkeypatch.setattr(twostream.export, "export_onnx", broken)
    result = _run("export", tmp_path, tmp_path / "x.onnx")
    assert isinstance(result.exception, ValueError)
    assert "Error:" not in result.output
