"""The one owner of device choice: every command's ``--device`` is resolved here.

``auto`` is CUDA when a GPU is present, else the CPU; ``cuda`` is the first GPU (or, under
``torchrun``, the process's own); ``cuda:N`` is GPU ``N``. Every command defaults to
:data:`DEFAULT_DEVICE`. Tests that are about a missing GPU patch :func:`cuda_device_count`, so
they hold on a machine that has one. torch is imported on first use, so the CLI can read
the default and the help without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twostream.errors import OptionError

if TYPE_CHECKING:
    import torch

__all__ = ["DEFAULT_DEVICE", "DEVICE_HELP", "amp_dtype", "cuda_device_count", "resolve_device"]

DEFAULT_DEVICE = "auto"
DEVICE_HELP = "auto (CUDA when there is a GPU, else CPU), cpu, cuda or cuda:N."


def cuda_device_count() -> int:
    """How many CUDA devices torch can use here (0 without a GPU or a CUDA build)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(name: str = DEFAULT_DEVICE, local_rank: int = 0) -> torch.device:
    """The :class:`torch.device` that ``--device name`` means on this machine.

    ``local_rank`` picks the GPU for ``auto`` and ``cuda`` under ``torchrun`` (one process per
    GPU); an explicit ``cuda:N`` is taken as given.

    Raises:
        OptionError: ``name`` is not ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; CUDA is asked
            for and there is none; or GPU ``N`` does not exist.

    Examples:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    import torch

    kind, colon, index = name.partition(":")
    if kind not in ("auto", "cpu", "cuda") or (colon and (kind != "cuda" or not index.isdigit())):
        raise OptionError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")
    count = cuda_device_count()
    if kind == "auto":
        kind = "cuda" if count else "cpu"
    if kind == "cpu":
        return torch.device("cpu")
    if count == 0:
        raise OptionError(f"--device {name} asked for, but no CUDA device is available")
    n = int(index) if index else local_rank
    if n >= count:
        raise OptionError(f"--device {name}: no CUDA device {n} (this machine has {count}: "
                          f"cuda:0 to cuda:{count - 1})")
    return torch.device("cuda", n)


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype training uses on ``device``: bfloat16 on a GPU that supports it
    (no gradient scaler needed), else float16 (with one); ``None`` on the CPU, which trains
    in full precision."""
    import torch

    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
