"""The one device owner: what each ``--device`` value means with and without GPUs.

Device detection is patched (``twostream.device.cuda_device_count``), so every case holds on a
machine with CUDA and on one without. The commands' use of it: tests/test_cli_model.py.
"""

from __future__ import annotations

import pytest
import torch

from twostream import device
from twostream.errors import OptionError

# (GPUs present, --device, local rank, the device it means)
RESOLVED = [
    (0, "auto", 0, "cpu"),
    (0, "cpu", 0, "cpu"),
    (2, "cpu", 0, "cpu"),
    (2, "auto", 0, "cuda:0"),
    (2, "auto", 1, "cuda:1"),  # torchrun: each rank on its own GPU
    (2, "cuda", 0, "cuda:0"),
    (2, "cuda", 1, "cuda:1"),
    (2, "cuda:1", 0, "cuda:1"),
    (2, "cuda:0", 1, "cuda:0"),  # an explicit index is taken as given
]

# (GPUs present, --device, words of the error)
REFUSED = [
    (0, "cuda", "no CUDA device is available"),
    (0, "cuda:0", "no CUDA device is available"),
    (2, "cuda:2", "no CUDA device 2 (this machine has 2: cuda:0 to cuda:1)"),
    (1, "cuda", None),  # local rank 1 on a one-GPU machine, below
    (2, "gpu", "must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    (2, "cuda:", "must be auto, cpu, cuda or cuda:N"),
    (2, "cuda:x", "must be auto, cpu, cuda or cuda:N"),
    (2, "cpu:0", "must be auto, cpu, cuda or cuda:N"),
    (2, "CUDA", "must be auto, cpu, cuda or cuda:N"),
]


@pytest.mark.parametrize("gpus, name, rank, expected", RESOLVED)
def test_resolve_device(monkeypatch, gpus, name, rank, expected):
    monkeypatch.setattr(device, "cuda_device_count", lambda: gpus)
    assert device.resolve_device(name, local_rank=rank) == torch.device(expected)


@pytest.mark.parametrize("gpus, name, words", REFUSED)
def test_resolve_device_refuses(monkeypatch, gpus, name, words):
    monkeypatch.setattr(device, "cuda_device_count", lambda: gpus)
    with pytest.raises(OptionError) as err:
        device.resolve_device(name, local_rank=1 if words is None else 0)
    assert (words or "no CUDA device 1") in str(err.value)


def test_amp_dtype_is_none_on_cpu_and_half_precision_on_cuda(monkeypatch):
    assert device.amp_dtype(torch.device("cpu")) is None
    for bf16, expected in ((True, torch.bfloat16), (False, torch.float16)):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda bf16=bf16: bf16)
        assert device.amp_dtype(torch.device("cuda", 0)) == expected
