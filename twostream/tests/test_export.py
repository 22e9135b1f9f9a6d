"""ONNX export: onnxruntime gives the same logits as PyTorch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from twostream.export import export_onnx
from twostream.models import build_model
from twostream.runs import load_stream_model


@pytest.fixture()
def run(tmp_path):
    """A run folder holding one (untrained, seeded) temporal checkpoint, as train writes it."""
    classes = [f"c{i}" for i in range(5)]
    torch.manual_seed(0)
    model = build_model("resnet18", in_chans=20, num_classes=5, weights="none", drop_rate=0.5)
    # Non-trivial BatchNorm statistics, so eval-mode export is really exercised.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    (tmp_path / "run.json").write_text(json.dumps({
        "stream": "temporal", "arch": "resnet18", "crop": 48, "new_length": 10, "bound": 20.0,
        "in_chans": 20, "drop_rate": 0.5, "classes": classes}))
    torch.save({"model": model.state_dict(), "epoch": 0}, tmp_path / "checkpoint_split2.pt")
    return tmp_path


def test_onnxruntime_matches_pytorch(run, tmp_path):
    import onnxruntime as ort

    info = export_onnx(run, tmp_path / "out" / "temporal.onnx")
    assert info["split"] == 2 and info["input_shape"] == [1, 20, 48, 48]
    session = ort.InferenceSession(info["path"], providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["classes"].splitlines() == ["c0", "c1", "c2", "c3", "c4"]
    x = torch.randn(3, 20, 48, 48, generator=torch.Generator().manual_seed(1))  # batch != 1
    (onnx_logits,) = session.run(["logits"], {"input": x.numpy()})
    model, _ = load_stream_model(run, 2)
    with torch.inference_mode():
        expected = model(x).numpy()
    assert onnx_logits.shape == (3, 5)
    np.testing.assert_allclose(onnx_logits, expected, rtol=1e-3, atol=1e-4)
    assert np.abs(expected).max() > 0.1  # not a degenerate all-zero comparison


def test_a_full_disk_leaves_no_partial_onnx_and_keeps_the_old_one(run, tmp_path, monkeypatch):
    import errno

    import onnx

    from twostream.errors import TwostreamError

    out = tmp_path / "out" / "temporal.onnx"
    out.parent.mkdir()
    out.write_bytes(b"an earlier export")
    real_save = onnx.save

    def disk_fills_up(proto, path):  # half the model is written, then no space is left
        real_save(proto, path)
        with open(path, "r+b") as f:
            f.truncate(f.seek(0, 2) // 2)
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(onnx, "save", disk_fills_up)
    with pytest.raises(TwostreamError, match="cannot write .*temporal.onnx: No space left"):
        export_onnx(run, out)
    assert out.read_bytes() == b"an earlier export"
    assert sorted(p.name for p in out.parent.iterdir()) == ["temporal.onnx"]
