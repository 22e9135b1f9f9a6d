"""DistributedDataParallel on CPU: 2 ranks under torchrun (gloo) end with identical weights."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import make_rawframes  # noqa: E402

from twostream.models import build_model  # noqa: E402
from twostream.runs import checkpoint_path  # noqa: E402


@pytest.mark.slow
def test_two_cpu_ranks_end_with_identical_weights(tmp_path):
    raw = make_rawframes(tmp_path / "raw", clips_per_class=3, frames=8, size=64)
    # One unreadable training clip: with batch size 1, the rank that draws it has no batch for
    # that step, and both ranks must skip it together (else DDP would hang).
    bad = (raw / "hmdb51_train_split_1_rawframes.txt").read_text().split()[0]
    for f in (raw / "rawframes" / bad).glob("flow_*.jpg"):
        f.write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", str(Path(__file__).parent / "_model_fixtures.py"), str(raw), str(out), "1", "64"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    r0 = torch.load(out / "params_rank0.pt", weights_only=True)
    r1 = torch.load(out / "params_rank1.pt", weights_only=True)
    assert r0["world_size"] == r1["world_size"] == 2
    # 12 training clips, batch 1: each rank gets its 6-clip shard, i.e. 6 batches per epoch.
    assert r0["batches"] == r1["batches"] == 2 * 6
    ckpt = torch.load(checkpoint_path(out, 1), weights_only=True)
    assert ckpt["epoch"] == 1
    for name, p0 in r0["params"].items():
        assert torch.equal(p0, r1["params"][name]), name
        assert torch.equal(p0, ckpt["model"][name]), name  # rank 0 wrote the checkpoint
    torch.manual_seed(0)  # what train does before building the model: its initial weights
    init = build_model("resnet18", in_chans=6, num_classes=6, weights="none").state_dict()
    assert not torch.equal(init["fc.weight"], r0["params"]["fc.weight"])  # it did train
    with (out / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]  # written once, by rank 0
    # The bad clip's step is skipped on both ranks: 2 samples per epoch not trained on.
    assert [int(r["skipped"]) for r in rows] == [2, 2]
