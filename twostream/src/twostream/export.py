"""Export a trained stream to ONNX.

Uses PyTorch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``): it is
still shipped with torch 2.14 and needs no extra dependency, whereas the default dynamo
exporter requires ``onnxscript``. The graph takes ``input`` of shape ``(batch, C, crop, crop)``
(C = 3 for the spatial stream, 2L for the temporal one; batch is dynamic) and returns class
``logits``; preprocessing (ImageNet normalisation, flow dequantisation and mean subtraction)
stays outside, as in :mod:`twostream.datasets`.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from twostream.atomic import atomic_file
from twostream.errors import TwostreamError
from twostream.options import parse_splits
from twostream.runs import RunRecord, load_stream_model, trained_splits

__all__ = ["export_onnx"]

logger = logging.getLogger(__name__)


def export_onnx(
    run_dir: str | Path, out: str | Path, *, split: int | None = None, opset: int = 17,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Write ``out`` (ONNX) from ``run_dir``'s checkpoint of ``split`` (default: the first),
    traced with the model loaded on ``device`` (the graph is the same on any device).

    Returns ``{"path", "split", "input_shape", "classes"}``; the class list is also stored
    in the model's metadata (``classes``, one per line).
    """
    run_dir, out = Path(run_dir), Path(out)
    parse_splits(split, allow_all=False)
    if split is None:
        found = trained_splits(run_dir)
        split = found[0] if found else 1
    model, run = load_stream_model(run_dir, split, device)
    shape = (1, run.in_chans, run.crop, run.crop)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: a full disk or a kill never leaves a partial .onnx at OUT.
    try:
        with atomic_file(out) as tmp:
            _write_onnx(model, run, shape, tmp, opset)
    except OSError as exc:
        raise TwostreamError(f"cannot write {out}: {exc.strerror or exc}; nothing was "
                             "written there") from None
    return {"path": str(out), "split": split, "input_shape": list(shape),
            "classes": run.classes}


def _write_onnx(model: torch.nn.Module, run: RunRecord, shape: tuple[int, ...],
                path: Path, opset: int) -> None:
    """The ONNX graph of ``model`` with the run's classes, stream and arch as metadata."""
    example = torch.zeros(shape, device=next(model.parameters()).device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter's notice
        torch.onnx.export(
            model, (example,), str(path), dynamo=False, opset_version=opset,
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    import onnx

    proto = onnx.load(str(path))
    for key, value in (("classes", "\n".join(run.classes)), ("stream", run.stream),
                       ("arch", run.arch)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
