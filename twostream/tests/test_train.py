"""Training loop: run folder contents, checkpoints, resume determinism, bad input."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import make_rawframes  # noqa: E402

from twostream import train as train_mod  # noqa: E402
from twostream.errors import DatasetError, TwostreamError  # noqa: E402
from twostream.runs import checkpoint_path  # noqa: E402
from twostream.train import TrainConfig, main  # noqa: E402


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return make_rawframes(tmp_path_factory.mktemp("raw"), clips_per_class=3, frames=12, size=40)


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _config(raw, out, **kw) -> TrainConfig:
    base = dict(rawframes=str(raw), stream="temporal", out=str(out), arch="resnet18",
                weights="none", epochs=2, batch_size=4, lr=0.01, crop=32, new_length=4,
                workers=0, device="cpu", seed=0, val_segments=1, progress=False)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
def test_run_folder_and_checkpoint_keys(raw, tmp_path):
    out = tmp_path / "run"
    result = main(_config(raw, out, split="all", epochs=2, stream="spatial"))
    assert sorted(result) == [1, 2, 3]
    for k in (1, 2, 3):
        ckpt = torch.load(checkpoint_path(out, k), weights_only=True)
        assert set(ckpt) == {"model", "optimizer", "lr_scheduler", "scaler", "epoch", "rng",
                             "config"}
        assert ckpt["epoch"] == 1 and ckpt["config"]["stream"] == "spatial"
        assert isinstance(ckpt["config"], dict)
    with (out / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["split"], r["epoch"]) for r in rows] == [
        (str(k), str(e)) for k in (1, 2, 3) for e in (1, 2)
    ]
    assert all(0.0 <= float(r["train_acc"]) <= 1.0 and float(r["train_loss"]) > 0 for r in rows)
    assert (out / "curves.png").stat().st_size > 1000
    run = json.loads((out / "run.json").read_text())
    assert run["classes"][0] == "appearance_blue" and run["in_chans"] == 3


@pytest.mark.slow
def test_killed_and_resumed_run_ends_with_identical_weights(raw, tmp_path, monkeypatch):
    full = _config(raw, tmp_path / "full", epochs=3)
    main(full)

    original = train_mod.train_one_epoch

    def killed_mid_epoch(model, criterion, optimizer, lr_scheduler, loader, device, epoch,
                         scaler=None, **kw):
        if epoch == 1:  # one optimizer step into epoch 1, then the process "dies"
            first = next(iter(loader))
            original(model, criterion, optimizer, lr_scheduler, [first], device, epoch, scaler,
                     progress=False)
            raise KeyboardInterrupt
        return original(model, criterion, optimizer, lr_scheduler, loader, device, epoch,
                        scaler, **kw)

    part = replace(full, out=str(tmp_path / "part"))
    monkeypatch.setattr(train_mod, "train_one_epoch", killed_mid_epoch)
    with pytest.raises(KeyboardInterrupt):
        main(part)
    monkeypatch.setattr(train_mod, "train_one_epoch", original)
    assert torch.load(checkpoint_path(part.out, 1), weights_only=True)["epoch"] == 0

    with pytest.raises(ValueError, match="--resume"):
        main(part)
    main(replace(part, resume=True))

    a = torch.load(checkpoint_path(full.out, 1), weights_only=True)
    b = torch.load(checkpoint_path(part.out, 1), weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    with (Path(part.out) / "metrics.csv").open(newline="") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2", "3"]


@pytest.mark.slow
def test_a_kill_while_saving_keeps_the_last_checkpoint_and_metrics(raw, tmp_path, monkeypatch):
    config = _config(raw, tmp_path / "run", epochs=1, val_segments=0)
    main(config)
    out = Path(config.out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    save = torch.save

    def killed_mid_save(obj, f, *args, **kwargs):
        save(obj, f, *args, **kwargs)
        with open(f, "r+b") as file:  # only the first half reached the disk
            file.truncate(Path(f).stat().st_size // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod.torch, "save", killed_mid_save)
    with pytest.raises(KeyboardInterrupt):
        main(replace(config, epochs=2, resume=True))
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(after) == sorted(before)  # no temporary file left behind
    # run.json now records --epochs 2, and metrics.csv (with its plot) epoch 2's row, written
    # before the checkpoint; the checkpoint is the first epoch's, whole.
    assert json.loads(after.pop("run.json"))["train_configs"]["1"]["epochs"] == 2
    ckpt = checkpoint_path(out, 1).name
    assert after[ckpt] == before[ckpt]
    assert [r["epoch"] for r in _metrics(out)] == ["1", "2"]
    monkeypatch.setattr(train_mod.torch, "save", save)
    main(replace(config, epochs=2, resume=True))
    assert torch.load(checkpoint_path(out, 1), weights_only=True)["epoch"] == 1
    assert [r["epoch"] for r in _metrics(out)] == ["1", "2"]  # the repeated epoch, once


def _metrics(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_unreadable_training_clips_are_skipped_not_fatal(raw, tmp_path):
    root = tmp_path / "raw"
    shutil.copytree(raw, root)
    first = (root / "hmdb51_train_split_1_rawframes.txt").read_text().split()[0]
    for f in (root / "rawframes" / first).glob("*.jpg"):
        f.write_bytes(b"\xff\xd8 truncated")
    shutil.rmtree(root / "rawframes" / "motion_up")  # whole class folder gone
    result = main(_config(root, tmp_path / "run", epochs=1))
    assert result[1]["skipped"] >= 1  # the corrupt clip; missing folders are dropped up front
    assert checkpoint_path(tmp_path / "run", 1).exists()


def test_bad_input_fails_before_training(raw, tmp_path):
    with pytest.raises(DatasetError, match="nowhere"):
        main(_config(tmp_path / "nowhere", tmp_path / "run"))
    root = tmp_path / "raw"
    shutil.copytree(raw, root)
    (root / "hmdb51_val_split_2_rawframes.txt").unlink()
    with pytest.raises(DatasetError, match="hmdb51_val_split_2_rawframes.txt"):
        main(_config(root, tmp_path / "run", split="all"))
    (root / "hmdb51_train_split_1_rawframes.txt").write_text("")
    with pytest.raises(DatasetError, match="training list is empty"):
        main(_config(root, tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="split"):
        main(_config(raw, tmp_path / "run", split="4"))


def test_resume_with_more_epochs_stretches_the_schedule(raw, tmp_path, caplog):
    out = tmp_path / "run"
    main(_config(raw, out, epochs=1, split="1"))
    with caplog.at_level("WARNING", logger="twostream"):
        main(train_mod.resume_config(out, {"epochs": 2}))
    assert "--epochs 2 instead of the run's 1" in caplog.text
    with (out / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    # The finished 1-epoch schedule had reached lr 0; stretched to 2 epochs, the second
    # starts half-way down the cosine: 0.01 * (1 + cos(pi / 2)) / 2.
    assert float(rows[1]["lr"]) == pytest.approx(0.005)
    ckpt = torch.load(checkpoint_path(out, 1), weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["config"]["epochs"] == 2
    assert main(train_mod.resume_config(out, {}))[1] == {}  # nothing left to train


def test_resume_reuses_the_runs_settings_and_refuses_changes(raw, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TwostreamError, match="nothing to resume"):
        train_mod.resume_config(out, {})
    main(_config(raw, out, epochs=1))
    config = train_mod.resume_config(out, {"workers": 0, "epochs": 3})
    assert (config.stream, config.crop, config.new_length, config.epochs) == (
        "temporal", 32, 4, 3)
    assert config.rawframes == str(raw) and config.resume
    with pytest.raises(TwostreamError, match=r"split 1 was trained with crop=32, not 40; "
                       r"split 1 was trained with new_length=4, not 2"):
        train_mod.resume_config(out, {"crop": 40, "new_length": 2})
    other = tmp_path / "other"
    shutil.copytree(raw, other)
    with pytest.raises(TwostreamError, match=f"rawframes='{raw}', not '{other}'"):
        train_mod.resume_config(out, {"rawframes": str(other)})
    # The run's folder moved: the new place is taken when its class list matches.
    moved = tmp_path / "moved"
    shutil.copytree(raw, moved)
    run = json.loads((out / "run.json").read_text())
    run["rawframes"] = run["train_configs"]["1"]["rawframes"] = str(tmp_path / "gone")
    (out / "run.json").write_text(json.dumps(run))
    with pytest.raises(TwostreamError, match="is gone: .*gone; if it moved, pass its new place"):
        train_mod.resume_config(out, {})
    assert train_mod.resume_config(out, {"rawframes": str(moved)}).rawframes == str(moved)
    (moved / "classes.txt").write_text("a\nb\n")
    with pytest.raises(TwostreamError, match="lists 2 classes, the run was trained on 6"):
        train_mod.resume_config(out, {"rawframes": str(moved)})


def test_each_split_is_its_own_run_and_resumes_with_its_own_settings(raw, tmp_path):
    # Issue 23 item 2: split 2 trained into split 1's folder with other settings once
    # overwrote the run's one train_config, and `--resume --split 1` went on with split 2's.
    out = tmp_path / "run"
    main(_config(raw, out, split="1", epochs=1, batch_size=4))
    first = json.loads((out / "run.json").read_text())["train_configs"]["1"]
    main(_config(raw, out, split="2", epochs=1, batch_size=8, flip=False, lr=0.05))
    records = json.loads((out / "run.json").read_text())["train_configs"]
    assert records["1"] == first and "train_config" not in records
    assert (records["2"]["batch_size"], records["2"]["flip"], records["2"]["lr"]) == (8, False,
                                                                                      0.05)
    configs = train_mod.resume_configs(out, {"split": "1", "epochs": 2})
    assert list(configs) == [1]
    assert (configs[1].batch_size, configs[1].flip, configs[1].lr) == (4, True, 0.01)
    main(configs)
    ckpt = torch.load(checkpoint_path(out, 1), weights_only=True)
    assert ckpt["epoch"] == 1
    assert {k: ckpt["config"][k] for k in ("batch_size", "flip", "lr", "epochs")} == {
        "batch_size": 4, "flip": True, "lr": 0.01, "epochs": 2}
    after = json.loads((out / "run.json").read_text())["train_configs"]
    assert after["2"] == records["2"] and after["1"] == {**first, "epochs": 2}
    with pytest.raises(TwostreamError, match=r"split 1 was trained with batch_size=4, not 8"):
        train_mod.resume_configs(out, {"split": "1", "batch_size": 8})
    # Without --split: every split the run holds, each with its own settings.
    configs = train_mod.resume_configs(out, {})
    assert {k: (c.batch_size, c.lr) for k, c in configs.items()} == {1: (4, 0.01),
                                                                     2: (8, 0.05)}
    with pytest.raises(TwostreamError, match="split 2 was trained with lr=0.05, not 0.01"):
        train_mod.resume_configs(out, {"lr": 0.01})


@pytest.mark.slow
def test_a_run_folder_from_before_per_split_records_resumes_each_split_as_trained(raw,
                                                                                tmp_path):
    out = tmp_path / "run"
    main(_config(raw, out, split="1", epochs=1, batch_size=4))
    main(_config(raw, out, split="2", epochs=1, batch_size=8, lr=0.05))
    # run.json as older versions left it: one train_config, the last split's.
    run = json.loads((out / "run.json").read_text())
    legacy = {**{k: v for k, v in run.items() if k != "train_configs"},
              "train_config": run["train_configs"]["2"]}
    (out / "run.json").write_text(json.dumps(legacy, indent=2))
    config = train_mod.resume_config(out, {"split": "1"})  # from its checkpoint
    assert (config.batch_size, config.lr) == (4, 0.01)
    main(_config(raw, out, split="3", epochs=1, batch_size=2))
    records = json.loads((out / "run.json").read_text())
    assert "train_config" not in records
    assert {k: r["batch_size"] for k, r in records["train_configs"].items()} == {
        "1": 4, "2": 8, "3": 2}


def test_curves_use_whole_epochs_from_1_and_a_log_loss_axis():
    from twostream.train import curves_figure

    rows = [{"split": "1", "epoch": str(e), "train_loss": loss, "train_acc": "0.5",
             "val_loss": "nan", "val_video_acc": "nan"}
            for e, loss in ((1, "250.0"), (2, "1.2"), (3, "0.9"))]  # one early spike
    fig = curves_figure(rows, "temporal stream, crop 32")
    ax_loss, ax_acc = fig.axes
    assert ax_loss.get_yscale() == "log"
    ticks = [t for t in ax_loss.get_xticks() if 1 <= t <= 3]
    assert ticks == [1, 2, 3]
    assert list(ax_loss.lines[0].get_xdata()) == [1, 2, 3]
    assert fig._suptitle.get_text() == "temporal stream, crop 32"
