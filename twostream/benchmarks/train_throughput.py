"""Training throughput of each stream: the real data loader (JPEG rawframes) vs in-memory tensors.

For each stream, the same model and optimizer run ``--steps`` training steps twice:

* ``loader``: batches from :class:`twostream.datasets.RawframeDataset` through a DataLoader with
  ``--workers`` processes, reading JPEG frames (spatial: 1 RGB JPEG per clip) or flow stacks
  (temporal: 2L = 20 grey JPEGs per clip) written at HMDB51's extracted size (340x256);
* ``memory``: one batch of the same shape kept in memory (no I/O, no decoding).

The loader's share of the step time is ``1 - memory_time / loader_time``; the time the loop
spent waiting for the next batch is reported too. Reference (issue 4, measured on this kind
of 2-core machine at 224x224): ResNet-50 ~2.5-3 img/s, ResNet-18 ~6 img/s.

Usage:
    python benchmarks/train_throughput.py [--arch resnet18] [--crop 112] [--batch-size 16]
        [--steps 8] [--workers 0 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from twostream.datasets import Clip, RawframeDataset, collate_skip
from twostream.models import build_model


def write_rawframes(root: Path, *, clips: int, frames: int, width: int, height: int) -> list[Clip]:
    """Smooth random images (JPEG sizes like real footage, not like white noise)."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(clips):
        folder = root / "rawframes" / "bench" / f"clip{i:03d}"
        folder.mkdir(parents=True)
        for t in range(1, frames + 1):
            small = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
            img = Image.fromarray(small).resize((width, height), Image.BICUBIC)
            img.save(folder / f"img_{t:05d}.jpg", quality=95)
            if t < frames:
                grey = np.asarray(img.convert("L"))
                flow = (128 + (grey.astype(np.int16) - 128) // 16).astype(np.uint8)
                Image.fromarray(flow).save(folder / f"flow_x_{t:05d}.jpg", quality=95)
                Image.fromarray(flow[::-1].copy()).save(folder / f"flow_y_{t:05d}.jpg", quality=95)
        out.append(Clip(f"bench/clip{i:03d}", frames, i % 10))
    return out


def _train_steps(model, optimizer, batches, steps: int) -> tuple[float, float, int]:
    """Run ``steps`` steps; returns (total seconds, seconds waiting for data, samples)."""
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    it = iter(batches)
    wait = 0.0
    samples = 0
    t0 = time.perf_counter()
    for _ in range(steps):
        tw = time.perf_counter()
        x, y = next(it)
        wait += time.perf_counter() - tw
        loss = criterion(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        samples += len(y)
    return time.perf_counter() - t0, wait, samples


def _cycle(loader):
    while True:
        yield from (b for b in loader if b is not None)


def bench_stream(stream: str, root: Path, clips: list[Clip], args, workers: int) -> dict:
    ds = RawframeDataset(root, clips, stream=stream, train=True, crop=args.crop)
    torch.manual_seed(0)
    model = build_model(args.arch, in_chans=ds.in_chans, num_classes=10, weights="none")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True,
                                         num_workers=workers, collate_fn=collate_skip,
                                         drop_last=True, persistent_workers=workers > 0)
    batches = _cycle(loader)
    _train_steps(model, optimizer, batches, 1)  # warm-up: worker start, allocator
    real_t, real_wait, n = _train_steps(model, optimizer, batches, args.steps)
    x, y = next(batches)
    mem_t, _, _ = _train_steps(model, optimizer, iter([(x, y)] * (args.steps + 1)), args.steps)
    # Decoding cost alone, in this process: what a worker spends per clip.
    t0 = time.perf_counter()
    for i in range(args.batch_size):
        ds[i % len(ds)]
    per_clip = (time.perf_counter() - t0) / args.batch_size
    return {"stream": stream, "workers": workers, "loader_cps": n / real_t,
            "memory_cps": n / mem_t, "loader_share": max(0.0, 1 - mem_t / real_t),
            "wait_share": real_wait / real_t, "decode_ms": per_clip * 1000}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--crop", type=int, default=112)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--clips", type=int, default=48)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        clips = write_rawframes(root, clips=args.clips, frames=12, width=340, height=256)
        print(f"wrote {args.clips} clips x 12 frames at 340x256 in "
              f"{time.perf_counter() - t0:.1f}s; {os.cpu_count()} cores, torch threads "
              f"{args.threads}, {args.arch}, crop {args.crop}, batch {args.batch_size}, "
              f"{args.steps} steps")
        rows = [bench_stream(s, root, clips, args, w)
                for s in ("spatial", "temporal") for w in args.workers]
    print()
    print(f"{'stream':<9}{'workers':>8}{'loader clips/s':>16}{'in-memory clips/s':>19}"
          f"{'loader share':>14}{'waiting':>9}{'decode ms/clip':>16}")
    for r in rows:
        print(f"{r['stream']:<9}{r['workers']:>8}{r['loader_cps']:>16.1f}{r['memory_cps']:>19.1f}"
              f"{r['loader_share']:>14.0%}{r['wait_share']:>9.0%}{r['decode_ms']:>16.1f}")
    print("\nreference (issue 4, 2 cores, 224x224): ResNet-50 ~2.5-3 img/s, ResNet-18 ~6 img/s")


if __name__ == "__main__":
    main()
