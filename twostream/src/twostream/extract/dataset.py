"""Extract RGB frames and quantised optical flow from HMDB51-format videos, MMAction2 layout.

Output under ``OUT``::

    rawframes/<class>/<clip stem>/img_00001.jpg ...        n frames (1-based)
    rawframes/<class>/<clip stem>/flow_x_00001.jpg ...     n flow images: n - 1 real flow
    rawframes/<class>/<clip stem>/flow_y_00001.jpg ...     fields and a copy of the last one
    classes.txt                                            label order
    hmdb51_{train,val}_split_{k}_rawframes.txt             "<class>/<stem> <total_frames> <label>"
    extract_report.json                                    failures, missing/unlisted clips, speed
    .twostream-extract.json                                the files above extract wrote (hashes)

Extract touches only what it made: a clip folder without twostream's completion marker (made by
MMAction2's denseflow, say), or a list or ``classes.txt`` whose content extract did not write,
stops the run before anything is touched (:class:`ForeignDataError`); ``force`` replaces them.

Each clip is written into a hidden sibling folder and renamed into place when complete (with a
``.complete.json`` marker holding its frame count and the settings used), so killing the run at
any moment loses no finished clip, and a rerun skips complete clips and redoes the rest. Bad
clips are skipped and reported; the run goes on.

Why n flow images for n frames: a clip has n - 1 flow fields, but the lists carry the RGB count
n (as MMAction2's ``tools/data/build_file_list.py`` writes them, and MMAction2 users point RGB
and Flow configs at the same list), and MMAction2 1.2.0's ``SampleFrames`` can ask for index n
(``mmaction/datasets/transforms/loading.py``: test-mode offsets run up to ``n - clip_len``,
indices are taken modulo ``total_frames`` and shifted by ``start_index=1``). So
``flow_{x,y}_{n}`` is written as a byte copy of ``flow_{x,y}_{n-1}`` (:func:`pad_flow`), and the
same list loads both modalities for every clip. It is padding, not motion: twostream's own
sampling (:mod:`twostream.datasets`) reads flow 1..n-1 only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from twostream.atomic import write_text_atomic
from twostream.decode import VideoDecodeError, iter_frames
from twostream.device import DEFAULT_DEVICE, resolve_device
from twostream.errors import DatasetError, TwostreamError, writing
from twostream.extract.clip_folder import (
    ClipResult,
    commit_clip,
    failed_result,
    keeps_partial,
    pad_flow,
    read_marker,
    start_clip,
    write_flow,
    write_frame,
)
from twostream.extract.settings import ExtractSettings, SettingsMismatchError, settings_difference
from twostream.extract.workers import init_worker, stop_workers, worker_count
from twostream.flow.methods import iter_flow, quantize_flow
from twostream.splits import load_splits

__all__ = [
    "DiskFullError",
    "ForeignDataError",
    "ExtractSummary",
    "extract_clip",
    "extract_dataset",
]

logger = logging.getLogger(__name__)

REPORT = "extract_report.json"
CLASSES = "classes.txt"
# The lists and classes.txt extract wrote in OUT, as {"files": {name: [sha256, ...]}}: a file
# is extract's to replace only while its content is one it wrote.
OWNED = ".twostream-extract.json"
FOREIGN_SHOWN = 3  # foreign clip folders named in the error; the rest are counted


class DiskFullError(TwostreamError):
    """The disk filled up: the run stopped, keeping the clips finished so far."""


class ForeignDataError(TwostreamError):
    """OUT holds clip folders or lists that twostream did not make; replacing them needs
    ``force``."""


def extract_clip(
    video_path: str | os.PathLike[str],
    clip_dir: str | os.PathLike[str],
    settings: ExtractSettings | None = None,
) -> int:
    """Write one clip's frames and flow into ``clip_dir`` atomically; return its frame count.

    Frames and flow stream through (one frame pair in memory at a time). Everything goes into
    a hidden sibling folder first, which is renamed to ``clip_dir`` only once complete, so
    ``clip_dir`` either holds a whole clip or does not exist. Leftover half-written folders of
    this clip are removed first. Raises :class:`~twostream.decode.VideoDecodeError` for a bad
    video (nothing is left behind); a video cut short after at least ``MIN_PARTIAL_FRAMES``
    good frames is kept with those, and its marker says why (``"partial"``).
    """
    video_path, clip_dir = Path(video_path), Path(clip_dir)
    options = settings or ExtractSettings()
    tmp = start_clip(clip_dir)
    n = 0
    try:

        def frames():
            nonlocal n
            for frame in iter_frames(video_path, short_side=options.short_side):
                n += 1
                write_frame(tmp, n, frame, options.jpeg_quality)
                yield frame

        partial = None
        try:
            pairs = iter_flow(frames(), method=options.flow, tvl1=options.tvl1,
                              scale=options.flow_scale)
            for i, pair in enumerate(pairs, start=1):
                write_flow(tmp, i, quantize_flow(pair, options.bound), options.jpeg_quality)
        except VideoDecodeError as exc:
            if not keeps_partial(exc, n):
                raise
            partial = exc.reason
        commit_clip(tmp, clip_dir, n, options.record(), partial)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return n


def _extract_job(video: str, clip_dir: str, settings: ExtractSettings, key: str) -> ClipResult:
    start = time.perf_counter()
    try:
        n = extract_clip(video, clip_dir, settings)
    except Exception as exc:  # one bad clip must not stop the batch; the report names it
        return failed_result(key, video, exc)
    partial = (read_marker(Path(clip_dir)) or {}).get("partial")
    return ClipResult(key, frames=n, seconds=time.perf_counter() - start, partial=partial)


@dataclass
class ExtractSummary:
    """What :func:`extract_dataset` did; also written to ``OUT/extract_report.json``."""

    out_dir: Path
    settings: dict[str, Any]
    clips_in_splits: int = 0
    complete: int = 0  # clips extracted whole (now or earlier): the ones listed
    extracted_now: int = 0
    already_done: int = 0
    frames_extracted: int = 0
    seconds: float = 0.0
    failed: list[dict[str, str]] = field(default_factory=list)
    partial: list[dict[str, str]] = field(default_factory=list)  # kept with fewer frames
    classes_without_splits: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)
    annotation_files: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames_extracted / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["out_dir"] = str(self.out_dir)
        d["frames_per_second"] = round(self.frames_per_second, 2)
        d["seconds"] = round(self.seconds, 3)
        return d


def _stem(clip: str) -> str:
    return Path(clip).stem


def _clip_whole(clip_dir: Path, total_frames: int) -> bool:
    """Whether a finished clip folder still holds every frame and flow image its marker
    counts (a file deleted since is redone, not trained on with a hole)."""
    try:
        names = set(os.listdir(clip_dir))
    except OSError:
        return False
    wanted = [f"img_{i:05d}.jpg" for i in range(1, total_frames + 1)]
    if total_frames >= 2:
        wanted += [f"flow_{a}_{i:05d}.jpg" for a in "xy" for i in range(1, total_frames + 1)]
    return names.issuperset(wanted)


@dataclass
class _Plan:
    """What each clip needs before any is touched."""

    total_frames: dict[str, int] = field(default_factory=dict)  # done with these settings
    todo: list[tuple[str, str, str]] = field(default_factory=list)  # (video, clip dir, key)
    other_settings: list[tuple[str, list[str]]] = field(default_factory=list)  # key, diff
    foreign: list[str] = field(default_factory=list)  # clip folders without twostream's marker
    incomplete: list[str] = field(default_factory=list)  # finished clips missing a file


def _plan(used: list[tuple[str, str]], videos_dir: Path, rawframes: Path,
          settings: dict[str, Any]) -> _Plan:
    """What each clip needs: the frame counts of clips already done with ``settings``, the
    jobs still to do, the clips made with other settings (with how they differ), the clip
    folders twostream did not make, and finished clips that lost a file since."""
    plan = _Plan()
    for cls, clip in used:
        key, clip_dir = f"{cls}/{clip}", rawframes / cls / _stem(clip)
        marker = read_marker(clip_dir)
        if marker is None and clip_dir.exists():
            plan.foreign.append(f"{cls}/{_stem(clip)}")
        elif marker is not None and marker.get("settings") == settings:
            n = int(marker["total_frames"])
            pad_flow(clip_dir, n)  # clips extracted before the padding existed
            if _clip_whole(clip_dir, n):
                plan.total_frames[key] = n
                continue
            plan.incomplete.append(key)
        elif marker is not None:
            plan.other_settings.append(
                (key, settings_difference(marker.get("settings"), settings)))
        plan.todo.append((str(videos_dir / cls / clip), str(clip_dir), key))
    return plan


def _digest(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def _owned(out: Path) -> dict[str, list[str]]:
    """The hashes of each file extract wrote in ``out``. Folders extracted before the record
    existed have an ``extract_report.json``: the files it names, and ``classes.txt``, are
    extract's as they are."""
    try:
        files = json.loads((out / OWNED).read_text(encoding="utf-8"))["files"]
        return {str(k): list(v) for k, v in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    try:
        report = json.loads((out / REPORT).read_text(encoding="utf-8"))
        names = [*report.get("annotation_files", []), CLASSES]
    except (OSError, ValueError, AttributeError):
        return {}
    return {n: [_digest((out / n).read_bytes())] for n in names if (out / n).is_file()}


def _foreign_files(out: Path, names: list[str]) -> list[str]:
    """The files of ``names`` in ``out`` whose content extract did not write."""
    owned = _owned(out)
    return [n for n in names if (out / n).is_file()
            and _digest((out / n).read_bytes()) not in owned.get(n, [])]


def _write_owned(out: Path, texts: dict[str, str]) -> None:
    """Write ``texts`` (file name -> content) into ``out``, recording their hashes first, so a
    kill between the record and a file leaves either content recognised as extract's."""
    owned = _owned(out)
    for name, text in texts.items():
        owned[name] = sorted({*owned.get(name, []), _digest(text)})
    write_text_atomic(out / OWNED, json.dumps({"files": owned}, indent=2, sort_keys=True) + "\n")
    for name, text in texts.items():
        write_text_atomic(out / name, text)
    for name, text in texts.items():
        owned[name] = [_digest(text)]
    write_text_atomic(out / OWNED, json.dumps({"files": owned}, indent=2, sort_keys=True) + "\n")


def _list_names(splits) -> list[str]:
    return [f"hmdb51_{name}_split_{k}_rawframes.txt"
            for k in sorted(splits.entries) for name in ("train", "val")]


def _refuse_foreign(out: Path, foreign_clips: list[str], foreign_files: list[str],
                    force: bool) -> None:
    """Stop before touching anything when ``out`` holds clip folders or lists that twostream
    did not make (MMAction2's rawframes, say), unless ``force`` (then they are replaced)."""
    if not foreign_clips and not foreign_files:
        return
    what = []
    if foreign_clips:
        shown = ", ".join(foreign_clips[:FOREIGN_SHOWN])
        more = ", ..." if len(foreign_clips) > FOREIGN_SHOWN else ""
        what.append(f"{len(foreign_clips)} clip folder(s) twostream did not make under "
                    f"{out / 'rawframes'} ({shown}{more})")
    if foreign_files:
        what.append(f"{len(foreign_files)} file(s) it did not write ({', '.join(foreign_files)})")
    if not force:
        raise ForeignDataError(
            f"{out} holds {' and '.join(what)}: extract would replace them; write into another "
            f"OUT, or pass --force to replace them (rawframes made by MMAction2's tools train "
            f"as they are: `twostream train {out} --stream ...`)"
        )
    logger.warning("--force: replacing %s", " and ".join(what))


def extract_dataset(
    videos_dir: str | os.PathLike[str],
    splits_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    settings: ExtractSettings | None = None,
    *,
    workers: int | None = None,
    progress: bool = True,
    device: str = DEFAULT_DEVICE,
    flow_batch: int | None = None,
    force: bool = False,
) -> ExtractSummary:
    """Extract frames and flow for every clip the splits use, resumably and in parallel.

    Parameters
    ----------
    videos_dir, splits_dir:
        HMDB51 as distributed: ``<videos>/<class>/<clip>.avi`` and ``<class>_test_split<k>.txt``.
    out_dir:
        Receives the MMAction2 layout (see the module docstring).
    settings:
        The flow method and everything else each clip's files depend on
        (:class:`ExtractSettings`; default: OpenCV's TV-L1, short side 256, bound 20). The
        method ``"tvl1-torch"`` runs the same TV-L1 in PyTorch, batched on ``device``.
    workers:
        Processes (default ``os.cpu_count()``); 1 runs in this process.
    progress:
        Show a progress bar (clips done, frames/s, ETA) on stderr.
    device, flow_batch:
        ``tvl1-torch`` only: ``auto`` (CUDA when present), ``cpu`` or ``cuda``, and the frame
        pairs per flow batch (default 64 on CUDA; on CPU 1 at 340x256, more for small frames
        only); the workers decode and write
        JPEGs meanwhile (:mod:`twostream.extract.batched`).
    force:
        Redo clips that ``out_dir`` holds from a run with other settings, and replace clip
        folders, lists and ``classes.txt`` that twostream did not make. Without it either
        stops the run before anything is touched (:class:`SettingsMismatchError`,
        :class:`ForeignDataError`).

    Clips whose complete output with the same settings exists are skipped; bad clips are
    skipped and reported. Only clips extracted whole are listed in the annotation files.

    Raises
    ------
    DatasetError
        ``videos_dir`` or ``splits_dir`` is missing or holds nothing usable.
    SettingsMismatchError
        ``out_dir`` holds clips made with other settings and ``force`` is off.
    ForeignDataError
        ``out_dir`` holds clip folders or lists twostream did not make and ``force`` is off.
    OptionError
        Bad options.
    """
    options = settings or ExtractSettings()
    options.check()
    if options.flow == "tvl1-torch":  # only it runs on a device: refuse a bad one up front
        resolve_device(device)
    workers = worker_count(workers)
    videos_dir, out = Path(videos_dir), Path(out_dir)
    splits = load_splits(splits_dir, videos_dir)
    used = splits.used_clips()
    if not used:
        raise DatasetError(
            f"no train/test clip named in {splits_dir} exists under {videos_dir} "
            f"({len(splits.missing)} named clips missing)"
        )
    rawframes = out / "rawframes"
    wanted = options.record()
    summary = ExtractSummary(out_dir=out, settings=wanted, clips_in_splits=len(used),
                             missing=splits.missing, unlisted=splits.unlisted,
                             bad_lines=splits.bad_lines,
                             classes_without_splits=splits.without_splits)
    plan = _plan(used, videos_dir, rawframes, wanted)
    total_frames, todo = plan.total_frames, plan.todo
    _refuse_foreign(out, plan.foreign, _foreign_files(out, [CLASSES, *_list_names(splits)]),
                    force)
    _refuse_other_settings(out, plan.other_settings, force)
    if plan.incomplete:
        logger.warning("%d finished clip(s) lost a frame or flow file since, e.g. %s: "
                       "redoing them", len(plan.incomplete), plan.incomplete[0])
    with writing(out):
        rawframes.mkdir(parents=True, exist_ok=True)
        _write_owned(out, {CLASSES: "".join(f"{c}\n" for c in splits.classes)})
    summary.already_done = len(total_frames)
    if summary.already_done:
        logger.info("%d clips already extracted, %d to do", summary.already_done, len(todo))

    start = time.perf_counter()
    bar = tqdm(total=len(used), initial=summary.already_done, unit="clip", desc="extract",
               disable=not progress, dynamic_ncols=True)

    def record(result: ClipResult) -> None:
        if result.disk_full:
            raise _disk_full(out, result, total_frames, len(used))
        _count(summary, total_frames, result, videos_dir)
        elapsed = time.perf_counter() - start
        bar.set_postfix_str(f"{summary.frames_extracted / max(elapsed, 1e-9):.1f} frames/s, "
                            f"{len(summary.failed)} failed", refresh=False)
        bar.update(1)

    try:
        _run_jobs(todo, options, record, workers=workers, device=device, flow_batch=flow_batch)
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - start
        summary.complete = len(total_frames)
        summary.failed.sort(key=lambda f: f["clip"])
        summary.partial.sort(key=lambda f: f["clip"])
        try:
            summary.annotation_files = _write_annotations(out, splits, total_frames)
            write_text_atomic(out / REPORT, json.dumps(summary.to_json(), indent=2) + "\n")
        except OSError as exc:  # e.g. the disk is still full: the lists of the last run stay
            logger.warning("could not update the annotation lists in %s: %s", out, exc)

    logger.info(
        "%d/%d clips complete (%d now, %d earlier), %d failed, %.1f frames/s",
        summary.complete, summary.clips_in_splits, summary.extracted_now, summary.already_done,
        len(summary.failed), summary.frames_per_second,
    )
    return summary


def _refuse_other_settings(out: Path, other_settings: list[tuple[str, list[str]]],
                           force: bool) -> None:
    """Stop before touching anything when ``out`` holds clips made with other settings,
    unless ``force`` (then they are redone)."""
    if other_settings and not force:
        key, diff = other_settings[0]
        raise SettingsMismatchError(
            f"{out} holds {len(other_settings)} clip(s) extracted with other settings "
            f"({'; '.join(diff)}; e.g. {key}): rerun with the old settings to resume, pass "
            "--force to redo them with the new ones, or choose a new OUT"
        )
    if other_settings:
        logger.warning("--force: redoing %d clip(s) extracted with other settings",
                       len(other_settings))


def _count(summary: ExtractSummary, total_frames: dict[str, int], result: ClipResult,
           videos_dir: Path) -> None:
    """Add one finished or skipped clip to the summary (and a finished one to the lists)."""
    if result.error is None:
        total_frames[result.key] = result.frames
        summary.extracted_now += 1
        summary.frames_extracted += result.frames
        if result.partial:
            summary.partial.append({"clip": result.key, "frames": str(result.frames),
                                    "reason": result.partial})
    else:
        cls, clip = result.key.split("/", 1)
        summary.failed.append({"clip": result.key, "path": str(videos_dir / cls / clip),
                               "reason": result.error})
        # Reported once, by the caller (the CLI lists skipped clips); debug for others.
        logger.debug("skipped %s: %s", result.key, result.error)


def _run_jobs(todo: list[tuple[str, str, str]], options: ExtractSettings,
              record: Callable[[ClipResult], None], *, workers: int, device: str,
              flow_batch: int | None) -> None:
    """Extract the ``todo`` clips the way ``options.flow`` and ``workers`` call for."""
    if options.flow == "tvl1-torch":
        from twostream.extract.batched import extract_batched

        extract_batched(todo, options, record=record, device=device, flow_batch=flow_batch,
                        workers=min(workers, max(len(todo), 1)), worker_init=init_worker)
    elif workers == 1 or len(todo) <= 1:
        for video, clip_dir, key in todo:
            record(_extract_job(video, clip_dir, options, key))
    else:
        _extract_in_processes(todo, options, workers, record)


def _extract_in_processes(todo: list[tuple[str, str, str]], options: ExtractSettings,
                          workers: int, record: Callable[[ClipResult], None]) -> None:
    """Extract the ``todo`` clips in up to ``workers`` processes, handing each result to
    ``record`` as it finishes."""
    ctx = multiprocessing.get_context("spawn")  # fork + OpenCV threads can deadlock
    others = set(multiprocessing.active_children())
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx,
                             initializer=init_worker) as pool:
        futures = [pool.submit(_extract_job, v, d, options, k) for v, d, k in todo]
        try:
            for fut in as_completed(futures):
                record(fut.result())
        except BaseException:
            stop_workers(pool, others)
            raise


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def _disk_full(out: Path, result: ClipResult, total_frames: dict[str, int],
               clips: int) -> DiskFullError:
    """The error to stop on, with the space the clips still to do need (measured on up to 20
    finished clips)."""
    left = clips - len(total_frames)
    sample = [out / "rawframes" / Path(key).parent / _stem(key) for key in list(total_frames)[:20]]
    sizes = [_folder_bytes(d) for d in sample if d.is_dir()]
    if sizes:
        need = f"about {sum(sizes) / len(sizes) * left / 1e9:.2f} GB more"
    else:
        need = "more space than is free (not one clip fit)"
    return DiskFullError(
        f"disk full while writing {result.key} into {out}: {len(total_frames)}/{clips} clips "
        f"are extracted and kept; the {left} left need {need}; free space, then rerun the "
        "same command to resume"
    )


def _write_annotations(out: Path, splits, total_frames: dict[str, int]) -> list[str]:
    """MMAction2 rawframe lists per split; only clips extracted whole are listed."""
    texts = {}
    for k in sorted(splits.entries):
        for name, flag in (("train", 1), ("val", 2)):
            texts[f"hmdb51_{name}_split_{k}_rawframes.txt"] = "".join(
                f"{e.class_name}/{_stem(e.clip)} {total_frames[e.key]} "
                f"{splits.label(e.class_name)}\n"
                for e in splits.subset(k, flag)
                if e.key in total_frames
            )
    _write_owned(out, texts)
    return list(texts)
