"""Stream networks: ResNets for RGB frames (spatial) and stacked optical flow (temporal)."""

from __future__ import annotations

from twostream.models.resnet import (
    ARCHS,
    StreamResNet,
    WeightsMismatchError,
    build_model,
    find_cached_weights,
    load_weights,
    read_torch_file,
)

__all__ = [
    "ARCHS",
    "StreamResNet",
    "WeightsMismatchError",
    "build_model",
    "find_cached_weights",
    "load_weights",
    "read_torch_file",
]
