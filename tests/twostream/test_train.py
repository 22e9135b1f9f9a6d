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
from twostream.datasets import DatasetError  # noqa: E402
from twostream.train import TrainConfig, checkpoint_path, main  # noqa: E402


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
        (str(k), str(e)) for k in (1, 2, 3) for e in (0, 1)
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
        assert [r["epoch"] for r in csv.DictReader(f)] == ["0", "1", "2"]


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
