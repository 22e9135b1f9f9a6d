"""Commands of the `data` group (synth, extract); registered on the shared app by import."""

from __future__ import annotations

from pathlib import Path

import typer

from twostream.cli._app import app, fail
from twostream.device import DEFAULT_DEVICE, DEVICE_HELP
from twostream.errors import TwostreamError

FLOW_HELP = (
    "Optical flow: tvl1 (OpenCV Dual TV-L1, the reference), tvl1-torch (the same TV-L1 in "
    "PyTorch, batched on --device: the choice with a GPU; within 0.3 px of tvl1), dis or "
    "farneback (much faster, much less accurate on the pixels that move; see --tvl1-preset "
    "for the measured table)."
)


def _flow_table_epilog() -> str:
    from twostream.flow.table import PRESET_TABLE, PRESET_TABLE_SOURCE, format_flow_table

    # "\b" keeps the table's line breaks in the help output.
    return (f"Flow settings measured {PRESET_TABLE_SOURCE}. EPE: endpoint error on moving "
            "pixels against default TV-L1, not against ground truth; benchmarks/extract.py "
            "prints this table.\n\n\b\n" + format_flow_table(PRESET_TABLE))


@app.command()
def synth(
    out_dir: Path = typer.Argument(..., help="Folder to write videos/ and splits/ into."),
    classes: int = typer.Option(6, "--classes", help="Number of classes (half appearance_*, "
                                "half motion_*)."),
    clips_per_class: int = typer.Option(10, "--clips-per-class", help="Clips per class."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed writes the same bytes."),
    width: int = typer.Option(160, "--width", help="Frame width (even)."),
    height: int = typer.Option(120, "--height", help="Frame height (even)."),
    frames: int = typer.Option(24, "--frames", help="Frames per clip."),
    fps: int = typer.Option(25, "--fps", help="Frames per second."),
) -> None:
    """Write a small synthetic dataset in HMDB51's format (videos/ and splits/).

    appearance_* classes: static scenes differing only in colour and texture.

    motion_* classes: the same look, differing only in how things move.

    Each of the 3 splits is 70/30 train/test per class. Same seed, same bytes.

    Example: twostream synth demo-data --classes 6 --clips-per-class 10 --seed 0
    """
    from twostream.synth import make_synthetic_dataset

    try:
        info = make_synthetic_dataset(
            out_dir, classes=classes, clips_per_class=clips_per_class, seed=seed,
            width=width, height=height, frames=frames, fps=fps,
        )
    except TwostreamError as exc:
        raise fail(str(exc)) from None
    typer.echo(
        f"wrote {len(info.classes)} classes x {clips_per_class} clips to {info.videos_dir} "
        f"and split files to {info.splits_dir}"
    )


def _refuse_ignored_options(flow: str, *, tvl1_preset: str, device: str,
                            flow_batch: int | None, tvl1_options: dict[str, float | None]) -> None:
    """Refuse options that ``flow`` would ignore: the user meant something else."""
    from twostream.errors import OptionError

    if not flow.startswith("tvl1"):
        given = [name for name, value in tvl1_options.items() if value is not None]
        given += ["--tvl1-preset"] if tvl1_preset != "default" else []
        if given:
            raise OptionError(f"{', '.join(given)} set TV-L1's parameters, which --flow {flow} "
                              "does not use: drop them, or pick --flow tvl1 or tvl1-torch")
    if flow != "tvl1-torch":
        if device not in (DEFAULT_DEVICE, "cpu"):
            raise OptionError(f"--device {device} runs --flow tvl1-torch only; --flow {flow} "
                              "runs on the CPU, one process per core: drop --device, or pick "
                              "--flow tvl1-torch")
        if flow_batch is not None:
            raise OptionError(f"--flow-batch batches --flow tvl1-torch only, not --flow {flow}: "
                              "drop it, or pick --flow tvl1-torch")
    elif tvl1_preset == "fast-third":
        raise OptionError("--tvl1-preset fast-third computes flow on frames shrunk to a third, "
                          "which tvl1-torch does not do: use --tvl1-preset fast, or --flow tvl1")


@app.command(epilog=_flow_table_epilog())
def extract(
    videos_dir: Path = typer.Argument(..., help="HMDB51 videos: <videos>/<class>/<clip>.avi."),
    splits_dir: Path = typer.Argument(..., help="Folder of <class>_test_split<k>.txt files."),
    out_dir: Path = typer.Argument(..., help="Output folder (MMAction2 rawframes layout)."),
    flow: str = typer.Option("tvl1", "--flow", help=FLOW_HELP),
    short_side: int = typer.Option(256, "--short-side",
                                   help="Resize so the short side has this many px (0: native)."),
    bound: float = typer.Option(20.0, "--bound", help="Clip flow to +-bound px before mapping "
                                "to 0-255."),
    workers: int | None = typer.Option(None, "--workers",
                                       help="Worker processes (default: all cores)."),
    tvl1_preset: str = typer.Option("default", "--tvl1-preset", help="TV-L1 preset: default "
                                    "(OpenCV's), fast, or fast-third (fast on frames shrunk to "
                                    "a third); speed and error in the table below."),
    flow_scale: float | None = typer.Option(
        None, "--flow-scale", help="Compute flow on frames shrunk by this factor (0-1; e.g. "
        "0.5), stored at full size. Default: the preset's (0.33 for fast-third, else 1)."),
    tau: float | None = typer.Option(None, "--tvl1-tau", help="TV-L1 time step."),
    lambda_: float | None = typer.Option(None, "--tvl1-lambda", help="TV-L1 data term weight."),
    theta: float | None = typer.Option(None, "--tvl1-theta", help="TV-L1 coupling weight."),
    nscales: int | None = typer.Option(None, "--tvl1-nscales", help="TV-L1 pyramid levels."),
    warps: int | None = typer.Option(None, "--tvl1-warps", help="TV-L1 warps per level."),
    epsilon: float | None = typer.Option(None, "--tvl1-epsilon", help="TV-L1 stop threshold."),
    inner_iterations: int | None = typer.Option(None, "--tvl1-inner-iterations",
                                                help="TV-L1 inner iterations."),
    outer_iterations: int | None = typer.Option(None, "--tvl1-outer-iterations",
                                                help="TV-L1 outer iterations."),
    scale_step: float | None = typer.Option(None, "--tvl1-scale-step",
                                            help="TV-L1 pyramid scale step."),
    jpeg_quality: int = typer.Option(95, "--jpeg-quality", help="JPEG quality (1-100)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    device: str = typer.Option(DEFAULT_DEVICE, "--device", help="tvl1-torch: " + DEVICE_HELP),
    flow_batch: int | None = typer.Option(None, "--flow-batch", help="tvl1-torch: frame "
                                          "pairs per flow batch (default: 64 on CUDA; on CPU "
                                          "1 at 340x256, where batches do not pay)."),
    force: bool = typer.Option(False, "--force", help="Redo clips OUT_DIR holds from a run "
                               "with other settings, and replace clip folders, lists and "
                               "classes.txt twostream did not make, e.g. MMAction2's (without "
                               "it either stops the run before anything is touched)."),
) -> None:
    """Extract RGB frames and optical flow from HMDB51-format videos, MMAction2 layout.

    Writes OUT_DIR/rawframes/<class>/<clip>/img_00001.jpg, flow_x_00001.jpg, flow_y_00001.jpg...

    and OUT_DIR/classes.txt, OUT_DIR/hmdb51_{train,val}_split_{1,2,3}_rawframes.txt.

    Resumable: a rerun skips finished clips. Bad clips are skipped, listed in extract_report.json.
    Every clip records the settings it was made with; a rerun with other settings stops and
    names the difference (--force redoes those clips). Extract touches only what it made: clip
    folders, lists or classes.txt in OUT_DIR that something else made (MMAction2's rawframes)
    stop it before anything is touched; train on such a folder as it is, or write elsewhere.

    Example: twostream extract hmdb51/videos hmdb51/splits hmdb51/out --workers 2

    With a GPU: ... --flow tvl1-torch --device cuda --flow-batch 64
    """
    from twostream.extract.dataset import extract_dataset
    from twostream.extract.settings import ExtractSettings
    from twostream.flow.presets import PRESET_SCALES, TVL1_PRESETS

    if tvl1_preset not in TVL1_PRESETS:
        raise fail(f"unknown --tvl1-preset {tvl1_preset!r}; allowed: {', '.join(TVL1_PRESETS)}")
    if flow_scale is None:
        flow_scale = PRESET_SCALES[tvl1_preset] if flow == "tvl1" else 1.0
    params = TVL1_PRESETS[tvl1_preset].replace(
        tau=tau, lambda_=lambda_, theta=theta, nscales=nscales, warps=warps, epsilon=epsilon,
        inner_iterations=inner_iterations, outer_iterations=outer_iterations,
        scale_step=scale_step,
    )
    try:
        settings = ExtractSettings(flow=flow, short_side=short_side or None, bound=bound,
                                   tvl1=params, jpeg_quality=jpeg_quality, flow_scale=flow_scale)
        settings.check()
        _refuse_ignored_options(flow, tvl1_preset=tvl1_preset, device=device,
                                flow_batch=flow_batch, tvl1_options={
                                    "--tvl1-tau": tau, "--tvl1-lambda": lambda_,
                                    "--tvl1-theta": theta, "--tvl1-nscales": nscales,
                                    "--tvl1-warps": warps, "--tvl1-epsilon": epsilon,
                                    "--tvl1-inner-iterations": inner_iterations,
                                    "--tvl1-outer-iterations": outer_iterations,
                                    "--tvl1-scale-step": scale_step})
        summary = extract_dataset(videos_dir, splits_dir, out_dir, settings, workers=workers,
                                  progress=progress, device=device, flow_batch=flow_batch,
                                  force=force)
    except TwostreamError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail(f"interrupted: the clips finished so far are kept in {out_dir}; rerun the "
                   "same command to resume", code=130) from None
    for failure in summary.failed[:10]:
        typer.echo(f"  skipped {failure['clip']}: {failure['reason']}", err=True)
    if len(summary.failed) > 10:
        typer.echo(f"  ... and {len(summary.failed) - 10} more", err=True)
    if summary.partial:
        first = summary.partial[0]
        typer.echo(f"  kept {len(summary.partial)} clip(s) cut short with the frames that "
                   f"decode, e.g. {first['clip']} ({first['frames']} frames; {first['reason']})",
                   err=True)
    report = Path(out_dir) / "extract_report.json"
    if summary.complete == 0:
        raise fail(f"no clip could be extracted from {videos_dir} "
                    f"({len(summary.failed)} failed); see {report}")
    typer.echo(
        f"{summary.complete}/{summary.clips_in_splits} clips extracted "
        f"({summary.extracted_now} now, {summary.already_done} already done), "
        f"{len(summary.failed)} failed, {len(summary.missing)} missing, "
        f"{summary.frames_per_second:.1f} frames/s; report: {report}"
    )
