"""Classify a new video with both trained streams.

The video goes through exactly what ``twostream extract`` did to the training data - the
same code (:func:`twostream.extract.extract_clip`) with the settings recorded in the rawframes
folder's ``extract_report.json``: decoding, resizing, JPEG frames, optical flow with the same
method and parameters, clipping to ``±bound`` and quantisation to JPEG. Both streams then apply
the test protocol (25 evenly spaced frames / flow stacks, centre crop or 10 crops), and the
two softmax scores are averaged.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import torch

from twostream.datasets import Clip, RawframeDataset
from twostream.extract import clip_settings, extract_clip
from twostream.flow import TVL1Params
from twostream.fusion import FusionError, load_run_pair
from twostream.options import check_test_options
from twostream.train import load_stream_model, resolve_device, trained_splits

__all__ = ["predict_video", "video_scores"]

logger = logging.getLogger(__name__)


def _extract_settings(runs: list[dict[str, Any]]) -> dict[str, Any]:
    defaults = clip_settings()  # what `twostream extract` uses when given no options
    for run in runs:  # the temporal run's settings matter most: it is listed first
        if run.get("extract_settings"):
            return {**defaults, **run["extract_settings"]}
    logger.warning("the runs record no extraction settings; using %s", defaults)
    return defaults


def _extract(video: Path, work: Path, settings: dict[str, Any]) -> int:
    tvl1 = TVL1Params(**settings["tvl1"]) if settings.get("tvl1") else None
    return extract_clip(
        video, work / "rawframes" / "video" / "clip", flow=settings["flow"],
        short_side=settings["short_side"], bound=settings["bound"], tvl1=tvl1,
        jpeg_quality=settings["jpeg_quality"],
    )


@torch.inference_mode()
def video_scores(
    model: torch.nn.Module, root: Path, n_frames: int, run: dict[str, Any], *,
    segments: int = 25, crops: int = 1, device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Mean softmax of ``model`` over the test views of the one clip extracted under ``root``."""
    ds = RawframeDataset(root, [Clip("video/clip", n_frames, -1)], stream=run["stream"],
                         train=False, crop=run["crop"], new_length=run["new_length"],
                         bound=run["bound"], segments=segments, crops=crops)
    if len(ds) == 0:
        raise ValueError(f"the video gave too few frames for the {run['stream']} stream "
                         f"({ds.skipped[0][1]})")
    item = ds[0]
    if item is None:
        raise ValueError("the extracted frames could not be read back")
    views = item[0].to(device)
    logits = torch.cat([model(views[i : i + 64]) for i in range(0, len(views), 64)])
    return logits.float().softmax(1).mean(0).cpu()


def predict_video(
    video: str | Path,
    spatial_run: str | Path,
    temporal_run: str | Path,
    *,
    top_k: int = 5,
    split: int | None = None,
    segments: int = 25,
    crops: int = 1,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Top-k classes of ``video`` as ``[{"label": name, "score": probability}, ...]``.

    ``split`` picks the checkpoints (default: the first split trained in both runs).

    Raises:
        twostream.decode.VideoDecodeError: the file cannot be decoded.
        FusionError: the runs have different class lists or are not spatial + temporal.
    """
    video = Path(video)
    check_test_options(crops=crops, segments=segments, top_k=top_k)
    resolve_device(device)
    s_run, t_run = load_run_pair(spatial_run, temporal_run)
    in_temporal = trained_splits(temporal_run)
    both = [k for k in trained_splits(spatial_run) if k in in_temporal]
    if split is None:
        if not both:
            raise FusionError("no split has a checkpoint in both runs")
        split = both[0]
    elif split not in both:
        raise FusionError(f"split {split} has no checkpoint in both runs (both have: "
                          f"{', '.join(map(str, both)) or 'none'})")
    settings = _extract_settings([t_run, s_run])
    with tempfile.TemporaryDirectory(prefix="twostream-predict-") as tmp:
        n = _extract(video, Path(tmp), settings)
        probs = []
        for run_dir in (spatial_run, temporal_run):
            model, run = load_stream_model(run_dir, split, device)
            probs.append(video_scores(model, Path(tmp), n, run, segments=segments, crops=crops,
                                      device=device))
    fused = (probs[0] + probs[1]) / 2
    scores, idx = fused.topk(min(top_k, len(fused)))
    return [{"label": s_run["classes"][i], "score": float(s)}
            for s, i in zip(scores.tolist(), idx.tolist(), strict=True)]
