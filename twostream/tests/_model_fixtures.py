"""Rawframe folders for model tests, written directly with numpy + Pillow (no video, no flow
estimation): a small square moves over a static noise background, and the flow JPEGs carry
the exact displacement of the square, quantised as ``twostream extract`` does.

* ``appearance_*`` classes: the square's colour is the class (red, green, blue); it moves in a
  direction drawn at random from the motion classes' directions.
* ``motion_*`` classes: the square is grey (a random level per clip); the direction is the class.
  No two motion classes are mirror images, so horizontal-flip augmentation stays valid.

Positions wrap around the frame, so a single frame says nothing about the direction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from twostream.flow.methods import quantize_flow

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (40, 60, 230)}
DIRECTIONS = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}
DEFAULT_CLASSES = (
    "appearance_blue", "appearance_green", "appearance_red",
    "motion_down", "motion_right", "motion_up",
)


def _write_clip(folder: Path, rng: np.random.Generator, colour, velocity, size, frames, obj):
    folder.mkdir(parents=True, exist_ok=True)
    bg = rng.integers(70, 180, size=(size, size, 1), dtype=np.int64).repeat(3, axis=2)
    y0, x0 = rng.integers(size, size=2)
    vx, vy = velocity
    for t in range(frames):
        img = bg.copy()
        ys = (y0 + vy * t + np.arange(obj)) % size
        xs = (x0 + vx * t + np.arange(obj)) % size
        img[np.ix_(ys, xs)] = colour
        Image.fromarray(img.astype(np.uint8)).save(folder / f"img_{t + 1:05d}.jpg", quality=95)
        if t < frames - 1:
            fx, fy = np.zeros((size, size)), np.zeros((size, size))
            fx[np.ix_(ys, xs)], fy[np.ix_(ys, xs)] = vx, vy
            Image.fromarray(quantize_flow(fx)).save(folder / f"flow_x_{t + 1:05d}.jpg", quality=95)
            Image.fromarray(quantize_flow(fy)).save(folder / f"flow_y_{t + 1:05d}.jpg", quality=95)


def make_rawframes(
    root: Path,
    *,
    classes: tuple[str, ...] = DEFAULT_CLASSES,
    clips_per_class: int = 6,
    frames: int = 12,
    size: int = 40,
    speed: int = 2,
    seed: int = 0,
) -> Path:
    """Write a rawframes folder with classes.txt and split lists (3 splits; in split k the
    clips with ``(i + k) % 3 == 0`` are the test clips). Returns ``root``."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    motion_dirs = [c.split("_", 1)[1] for c in classes if c.startswith("motion_")]
    lines: dict[tuple[int, str], list[str]] = {}
    for label, cls in enumerate(classes):
        kind, what = cls.split("_", 1)
        for i in range(clips_per_class):
            if kind == "appearance":
                colour = COLOURS[what]
                direction = motion_dirs[rng.integers(len(motion_dirs))]
            else:
                colour = (int(rng.integers(60, 200)),) * 3
                direction = what
            vx, vy = DIRECTIONS[direction]
            name = f"{cls}/{cls}_clip{i:02d}"
            _write_clip(root / "rawframes" / name, rng, colour, (vx * speed, vy * speed),
                        size, frames, max(4, size // 4))
            for k in (1, 2, 3):
                subset = "val" if (i + k) % 3 == 0 else "train"
                lines.setdefault((k, subset), []).append(f"{name} {frames} {label}")
    (root / "classes.txt").write_text("\n".join(classes) + "\n", encoding="utf-8")
    for (k, subset), ls in lines.items():
        (root / f"hmdb51_{subset}_split_{k}_rawframes.txt").write_text(
            "\n".join(ls) + "\n", encoding="utf-8"
        )
    return root


def ddp_worker(rawframes: str, out: str, batch_size: int = 2, crop: int = 32) -> None:
    """Body of one torchrun rank (see test_ddp.py): train a tiny temporal stream, then save
    this rank's final parameters to ``out/params_rank{RANK}.pt``."""
    import os

    import torch

    from twostream import train as train_mod

    torch.set_num_threads(1)
    seen = {}
    original = train_mod.train_one_epoch

    def spy(model, *args, **kwargs):
        seen["model"] = model  # the DistributedDataParallel wrapper of this rank
        seen.setdefault("batches", 0)
        seen["batches"] += len(args[3])  # loader: this rank's shard
        return original(model, *args, **kwargs)

    train_mod.train_one_epoch = spy
    train_mod.main(train_mod.TrainConfig(
        rawframes=rawframes, stream="temporal", out=out, arch="resnet18", weights="none",
        epochs=2, batch_size=batch_size, lr=0.05, crop=crop, new_length=3, workers=0, device="cpu",
        seed=0, val_segments=1, progress=False,
    ))
    model = seen["model"]
    assert isinstance(model, torch.nn.parallel.DistributedDataParallel)
    params = {k: v.detach().clone() for k, v in model.module.named_parameters()}
    torch.save({"params": params, "batches": seen["batches"],
                "world_size": torch.distributed.get_world_size()},
               Path(out) / f"params_rank{os.environ['RANK']}.pt")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    import sys

    ddp_worker(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:]))
