"""Extraction with ``--flow tvl1-torch``: flow in batches on one device, I/O in worker processes.

Worker processes decode each clip and write its RGB JPEGs into the clip's hidden partial folder,
and hand the grey frames back. This process gathers frame pairs (from one clip or several of the
same frame size) into batches of ``flow_batch`` pairs and runs :func:`~twostream.flow.tvl1_torch.
tvl1_flow` on the device, quantises the flow, and hands each finished clip's flow back to
the workers, which write the flow JPEGs and the completion marker and rename the folder into place.
So decoding and JPEG writing overlap with the flow batches, and the output, the markers, the
resume, the bad and partial clip reports are those of
:func:`~twostream.extract.dataset.extract_clip`; a full disk or Ctrl-C stops the workers at
once, as in :func:`~twostream.extract.dataset.extract_dataset`.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from twostream.decode import VideoDecodeError, iter_frames
from twostream.device import DEFAULT_DEVICE, resolve_device
from twostream.errors import OptionError
from twostream.extract.clip_folder import (
    ClipResult,
    commit_clip,
    failed_result,
    keeps_partial,
    start_clip,
    write_flow,
    write_frame,
)
from twostream.extract.workers import stop_workers
from twostream.flow.methods import quantize_flow

if TYPE_CHECKING:
    from twostream.extract.settings import ExtractSettings

__all__ = ["extract_batched"]


@dataclass
class _Decoded:
    key: str
    clip_dir: str
    tmp: str
    grey: np.ndarray | None = None  # (T, H, W) uint8
    failed: ClipResult | None = None
    partial: str | None = None  # kept, cut short: why


def _decode_job(video: str, clip_dir: str, key: str, short_side: int | None,
                jpeg_quality: int) -> _Decoded:
    """Worker: write the clip's frames into a fresh partial folder; return them in grey."""
    tmp = start_clip(Path(clip_dir))
    grey, partial = [], None
    try:
        try:
            for n, frame in enumerate(iter_frames(video, short_side=short_side), start=1):
                write_frame(tmp, n, frame, jpeg_quality)
                grey.append(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
        except VideoDecodeError as exc:
            if not keeps_partial(exc, len(grey)):
                raise
            partial = exc.reason
    except Exception as exc:  # one bad clip must not stop the batch; the report names it
        shutil.rmtree(tmp, ignore_errors=True)
        return _Decoded(key, clip_dir, str(tmp), failed=failed_result(key, video, exc))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _Decoded(key, clip_dir, str(tmp), grey=np.stack(grey), partial=partial)


def _finish_job(tmp: str, clip_dir: str, flow_u8: np.ndarray, total_frames: int,
                settings: dict[str, Any], jpeg_quality: int, partial: str | None) -> int:
    """Worker: write a clip's quantised flow JPEGs and marker, then move the folder in place."""
    tmp_dir = Path(tmp)
    try:
        for i, q in enumerate(flow_u8, start=1):
            write_flow(tmp_dir, i, q, jpeg_quality)
        commit_clip(tmp_dir, Path(clip_dir), total_frames, settings, partial)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return total_frames


class _InlineExecutor(Executor):
    """Runs each job at submit time: ``workers=1`` without a process pool."""

    def submit(self, fn, /, *args, **kwargs):  # noqa: ANN001, ANN201
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed over like a pool would
            fut.set_exception(exc)
        return fut


@dataclass
class _Clip:
    decoded: _Decoded
    flows: list[np.ndarray | None] = field(default_factory=list)
    missing: int = 0
    start: float = field(default_factory=time.perf_counter)


def extract_batched(
    todo: list[tuple[str, str, str]],
    options: ExtractSettings,
    *,
    record: Callable[[ClipResult], None],
    device: str = DEFAULT_DEVICE,
    flow_batch: int | None = None,
    workers: int = 1,
    worker_init: Callable[[], None] | None = None,
) -> None:
    """Extract the ``(video, clip_dir, key)`` clips of ``todo``; report each through ``record``.

    Each clip's :class:`~twostream.extract.clip_folder.ClipResult` goes to ``record`` once it is
    written whole or skipped as bad. ``options`` are the clip settings (``options.tvl1``: the
    :class:`~twostream.flow.presets.TVL1Params`); ``device`` is ``auto``, ``cpu`` or ``cuda`` (where
    each primal-dual step is fused with ``torch.compile``); ``worker_init`` runs in each worker
    process.
    """
    import torch

    from twostream.flow.tvl1_torch import default_batch, tvl1_flow

    dev = resolve_device(device)
    settings, quality = options.record(), options.jpeg_quality
    if flow_batch is not None and flow_batch < 1:
        raise OptionError(f"--flow-batch must be >= 1, got {flow_batch}")
    threads = torch.get_num_threads()
    if dev.type == "cpu":
        # The workers take their cores: torch's threads spinning on the same cores made a
        # step ~15x slower on a busy 2-core machine.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - workers))
    others = set(multiprocessing.active_children())
    if workers > 1:
        pool: Executor = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=worker_init
        )
    else:
        pool = _InlineExecutor()
    # Decoded clips waiting for flow: bounded, so memory stays a few clips per worker.
    window = max(2, 2 * workers)
    decoding: deque[Future] = deque()
    finishing: dict[Future, _Clip] = {}
    clips: dict[str, _Clip] = {}
    pending: dict[tuple[int, int], list[tuple[str, int]]] = {}  # frame size -> (key, pair)

    def batch_for(size: tuple[int, int]) -> int:
        return flow_batch or default_batch(*size, dev)

    def reap(block: bool) -> None:
        for fut in [f for f in finishing if block or f.done()]:
            clip = finishing.pop(fut)
            d = clip.decoded
            try:
                frames = fut.result()
            except Exception as exc:  # record stops the run on a full disk, else skips the clip
                record(failed_result(d.key, d.clip_dir, exc))
            else:
                record(ClipResult(d.key, frames=frames, seconds=time.perf_counter() - clip.start,
                                  partial=d.partial))

    def run_batch(size: tuple[int, int], n: int) -> None:
        items, pending[size] = pending[size][:n], pending[size][n:]
        a = np.stack([clips[k].decoded.grey[i] for k, i in items])
        b = np.stack([clips[k].decoded.grey[i + 1] for k, i in items])
        flow = tvl1_flow(torch.from_numpy(a).to(dev), torch.from_numpy(b).to(dev),
                         options.tvl1, compile=dev.type == "cuda")
        q = quantize_flow(flow.cpu().numpy(), options.bound)
        for (key, i), qi in zip(items, q, strict=True):
            clip = clips[key]
            clip.flows[i] = qi
            clip.missing -= 1
            if clip.missing == 0:
                finish(key)

    def finish(key: str) -> None:
        clip = clips.pop(key)
        d = clip.decoded
        flows = np.stack(clip.flows) if clip.flows else np.zeros((0, 1, 1, 2), np.uint8)
        fut = pool.submit(_finish_job, d.tmp, d.clip_dir, flows, len(d.grey), settings,
                          quality, d.partial)
        finishing[fut] = clip

    def take(decoded: _Decoded) -> None:
        if decoded.failed is not None:
            record(decoded.failed)  # raises DiskFullError on a full disk
            return
        pairs = len(decoded.grey) - 1
        clips[decoded.key] = _Clip(decoded, [None] * pairs, pairs)
        size = decoded.grey.shape[1:]
        pending.setdefault(size, []).extend((decoded.key, i) for i in range(pairs))
        if pairs == 0:
            finish(decoded.key)
        while len(pending[size]) >= batch_for(size):
            run_batch(size, batch_for(size))
        reap(block=False)

    try:
        for video, clip_dir, key in todo:
            decoding.append(pool.submit(_decode_job, video, clip_dir, key,
                                        options.short_side, quality))
            while len(decoding) >= window:
                take(decoding.popleft().result())
        while decoding:
            take(decoding.popleft().result())
        for size in list(pending):
            while pending[size]:
                run_batch(size, batch_for(size))
        reap(block=True)
    except BaseException:
        # Ctrl-C, a full disk: stop the workers at once rather than let them finish their jobs.
        if isinstance(pool, ProcessPoolExecutor):
            stop_workers(pool, others)
        for clip in clips.values():  # half-done clips: no partial folder left behind
            shutil.rmtree(clip.decoded.tmp, ignore_errors=True)
        raise
    else:
        if isinstance(pool, ProcessPoolExecutor):
            pool.shutdown(wait=True)
    finally:
        torch.set_num_threads(threads)
