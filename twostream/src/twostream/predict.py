"""Classify a new video with both trained streams.

The video goes through exactly what ``twostream extract`` did to the training data - the
same code (:func:`~twostream.extract.dataset.extract_clip`) with the settings recorded in the
folder's ``extract_report.json``: decoding, resizing, JPEG frames, optical flow with the same
method and parameters, clipping to ``±bound`` and quantisation to JPEG. Both streams then apply
the test protocol (25 evenly spaced frames / flow stacks, centre crop or 10 crops), and the
two softmax scores are fused as chosen: average, or the weighted average or SVM that
``twostream fuse`` learned from the training clips (by default the best of the three there).
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from typing import Any

import torch

from twostream.datasets import Clip, RawframeDataset
from twostream.device import DEFAULT_DEVICE, resolve_device
from twostream.errors import DatasetError, TwostreamError
from twostream.extract.settings import ExtractSettings
from twostream.fusion import FUSIONS, FusionError, apply_fusion, load_fusion, load_run_pair
from twostream.options import check_test_options
from twostream.runs import RunRecord, load_stream_model, trained_splits

# extract_clip (PyAV, OpenCV) is imported where a video is extracted: video_scores runs on
# machines with torch, NumPy and Pillow only (benchmarks/gpu_check.py).

__all__ = ["predict_video", "settings_as_trained", "video_scores"]

logger = logging.getLogger(__name__)


def _extract_settings(
    runs: list[RunRecord], *, flow: str | None = None, short_side: int | None = None,
    bound: float | None = None,
) -> ExtractSettings:
    """How to extract the new video: as the training rawframes were, with the given options
    overriding. ``short_side`` 0 means native size.

    Raises:
        DatasetError: the runs do not record their extraction settings (rawframes made by
            another tool) and ``flow``, ``short_side`` or ``bound`` is not given.
    """
    given = {"flow": flow, "short_side": short_side, "bound": bound}
    recorded = next((r.extract_settings for r in runs  # the temporal run's first
                     if isinstance(r.extract_settings, dict) and r.extract_settings),
                    None)
    if recorded is None:
        absent = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is None]
        if absent:
            raise DatasetError(
                "the runs do not record how their frames and flow were extracted (rawframes "
                f"made by another tool, e.g. MMAction2's): pass {', '.join(absent)} as they were "
                "used for them (MMAction2's build_rawframes.py runs denseflow with TV-L1 and "
                "bound 20: --flow tvl1 --bound 20)"
            )
    settings = {**ExtractSettings().record(), **(recorded or {})}
    overrides = []
    for key, value in given.items():
        if value is None:
            continue
        if key == "short_side" and value == 0:
            value = None
        if recorded is not None and value != settings[key]:
            overrides.append((key.replace("_", "-"), value, settings[key]))
        settings[key] = value
    # Every TV-L1 method keeps the parameters (preset, --tvl1-*) the run was extracted with;
    # --flow-scale is in the record whenever it was not 1.
    if not str(settings["flow"]).startswith("tvl1"):
        settings["tvl1"] = None
    elif not settings.get("tvl1"):
        settings["tvl1"] = ExtractSettings().record()["tvl1"]
    if settings["flow"] == "tvl1-torch" and flow is not None and recorded is not None:
        settings.pop("flow_scale", None)  # another method given: it runs at full size
    try:
        result = ExtractSettings.from_record(settings)
    except TypeError as exc:  # a damaged record, e.g. an unknown TV-L1 parameter
        raise DatasetError(f"the runs' extraction settings are damaged ({exc}); retrain, or "
                           "pass --flow, --short-side and --bound") from None
    result.check()  # a bad --flow or --bound: one line, before any warning
    for option, value, was in overrides:
        logger.warning("--%s %s overrides the %s the training frames were extracted with",
                       option, value, was)
    return result


def settings_as_trained(
    runs: list[RunRecord], *, flow: str | None = None, short_side: int | None = None,
    bound: float | None = None,
) -> ExtractSettings:
    """How :func:`predict_video` extracts a new video: exactly as the training rawframes of
    ``runs`` were (the first run recording its settings wins; ``flow``, ``short_side`` and
    ``bound`` override them), with the same method, TV-L1 parameters, preset, flow scale,
    bound and JPEG quality, through the code ``twostream extract`` runs
    (:func:`~twostream.extract.dataset.extract_clip`).

    ``tvl1-torch`` runs there on the CPU, one clip at a time; it gives the bytes extraction on
    the CPU gave (a GPU's float rounding may differ in the last bit).

    Raises:
        DatasetError: the runs record no settings and one of the three is not given.
        OptionError: a given value is out of range (``--flow bogus``, ``--bound 0``).
    """
    return _extract_settings(runs, flow=flow, short_side=short_side, bound=bound)


@torch.inference_mode()
def video_scores(
    model: torch.nn.Module, root: Path, n_frames: int, run: RunRecord, *,
    segments: int = 25, crops: int = 1, device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Mean softmax of ``model`` over the test views of the one clip extracted under ``root``."""
    ds = RawframeDataset(root, [Clip("video/clip", n_frames, -1)], stream=run.stream,
                         train=False, crop=run.crop, new_length=run.new_length,
                         bound=run.bound, segments=segments, crops=crops)
    if len(ds) == 0:
        raise TwostreamError(f"the video gave too few frames for the {run.stream} stream "
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
    fusion: str | None = None,
    segments: int = 25,
    crops: int = 1,
    device: str = DEFAULT_DEVICE,
    flow: str | None = None,
    short_side: int | None = None,
    bound: float | None = None,
) -> dict[str, Any]:
    """Top-k classes of ``video``: ``{"fusion", "split", "top": [{"label", "score"}, ...]}``.

    ``split`` picks the checkpoints (default: the first split trained in both runs).
    ``fusion`` is average, weighted or svm, with the weight and SVM ``twostream fuse`` learned
    from the training clips of that split (``SPATIAL_RUN/fusion_model.json``); by default the
    one ``fuse`` found best on the training clips, or average when ``fuse`` was never run.
    Scores are fused probabilities, except for svm: SVM decision values.

    The video is extracted with the settings the runs record; ``flow``, ``short_side``
    (0: native size) and ``bound`` override them, and are required when the runs record none.

    Raises:
        twostream.decode.VideoDecodeError: the file cannot be decoded.
        FusionError: the runs have different class lists or are not spatial + temporal, or
            weighted/svm fusion was asked for and ``fuse`` was never run on these runs.
    """
    video = Path(video)
    check_test_options(crops=crops, segments=segments, top_k=top_k)
    dev = resolve_device(device)
    if fusion is not None and fusion not in FUSIONS:
        raise FusionError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
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
    learned = load_fusion(spatial_run, temporal_run, split)
    if fusion is None:
        fusion = learned["best"] if learned else "average"
    elif learned is None and fusion != "average":
        raise FusionError(f"--fusion {fusion} uses what `twostream fuse` learns on the training "
                          f"clips, and it was never run on these runs for split {split}: run "
                          f"`twostream fuse {spatial_run} {temporal_run} --split {split}` first")
    settings = settings_as_trained([t_run, s_run], flow=flow, short_side=short_side,
                                   bound=bound)
    with tempfile.TemporaryDirectory(prefix="twostream-predict-") as tmp:
        from twostream.extract.dataset import extract_clip

        n = extract_clip(video, Path(tmp) / "rawframes" / "video" / "clip", settings)
        probs = []
        for run_dir in (spatial_run, temporal_run):
            model, run = load_stream_model(run_dir, split, dev)
            probs.append(video_scores(model, Path(tmp), n, run, segments=segments, crops=crops,
                                      device=dev).double().numpy())
    fused = torch.from_numpy(apply_fusion(fusion, probs[0][None], probs[1][None], learned)[0])
    scores, idx = fused.topk(min(top_k, len(fused)))
    top = [{"label": s_run.classes[i], "score": float(s)}
           for s, i in zip(scores.tolist(), idx.tolist(), strict=True)
           if math.isfinite(s)]  # the SVM gives -inf to classes it never saw in training
    return {"fusion": fusion, "split": split, "top": top}
