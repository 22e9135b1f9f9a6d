"""Commands of the `model` group (train, evaluate, fuse, predict, export, demo); registered on
the shared app by import. Each command parses options, calls one library function and turns
domain errors into one red line and exit code 1."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from twostream.cli._app import app, fail
from twostream.device import DEFAULT_DEVICE, DEVICE_HELP
from twostream.errors import TwostreamError
from twostream.options import check_test_options, parse_splits


def _logging(verbose: bool = True) -> None:
    logger = logging.getLogger("twostream")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


def _splits(split: str | int | None, *, allow_all: bool = True) -> list[int] | None:
    try:
        return parse_splits(split, allow_all=allow_all)
    except TwostreamError as exc:
        raise fail(str(exc)) from None


def _check_test_options(**options: int) -> None:
    try:
        check_test_options(**options)
    except TwostreamError as exc:
        raise fail(str(exc)) from None


@app.command()
def train(
    ctx: typer.Context,
    rawframes: Path | None = typer.Argument(None, help="Folder written by `twostream extract` "
                                            "(with --resume: the run's, unless given)."),
    stream: str | None = typer.Option(None, "--stream", help="spatial (RGB frames) or temporal "
                                      "(flow); required unless --resume."),
    out: Path = typer.Option(..., "--out", help="Run folder (checkpoints, metrics, curves)."),
    split: str = typer.Option("1", "--split", help="1, 2, 3 or all (trains the 3 in turn)."),
    arch: str = typer.Option("resnet50", "--arch", help="resnet18 or resnet50."),
    weights: str | None = typer.Option(
        None, "--weights", help="ImageNet weights file; default: torchvision's cache "
        "($TORCH_HOME/hub/checkpoints/<arch>-*.pth) if present, else random init; 'none' "
        "forces random init."),
    epochs: int = typer.Option(10, "--epochs"),
    batch_size: int = typer.Option(32, "--batch-size"),
    lr: float = typer.Option(0.01, "--lr", help="SGD learning rate (cosine decay per step)."),
    crop: int = typer.Option(224, "--crop", help="Side of the square training/test crop."),
    new_length: int = typer.Option(10, "--new-length", help="L: flow pairs per temporal stack."),
    drop_rate: float = typer.Option(0.5, "--dropout", help="Dropout before the classifier."),
    flip: bool = typer.Option(True, "--flip/--no-flip", help="Random horizontal flips (turn "
                              "off when classes are mirror images, e.g. left vs right)."),
    workers: int = typer.Option(2, "--workers", help="Data loader worker processes."),
    device: str = typer.Option(DEFAULT_DEVICE, "--device", help="auto (CUDA + mixed precision "
                               "when present), cpu, cuda or cuda:N."),
    seed: int = typer.Option(0, "--seed"),
    val_segments: int = typer.Option(3, "--val-segments", help="Views per test clip for the "
                                     "quick test accuracy after each epoch (0: none)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out, each split "
                                "with its own settings; options given again must match them, "
                                "except --epochs (the schedule is stretched), --split, --device, "
                                "--workers and --val-segments."),
) -> None:
    """Train the spatial or the temporal stream on HMDB51 split(s).

    Writes RUN_DIR/checkpoint_split{k}.pt every epoch, RUN_DIR/metrics.csv, RUN_DIR/curves.png
    and RUN_DIR/run.json. Under `torchrun --nproc-per-node N` it trains with
    DistributedDataParallel.

    Example: twostream train data/rawframes --stream temporal --split 1 --out runs/temporal
    --arch resnet18 --crop 112 --epochs 5

    Continue it (after Ctrl-C or a kill), or train it on to 8 epochs: twostream train --resume
    --out runs/temporal --epochs 8
    """
    from twostream.train import TrainConfig, main, resume_configs

    _logging()
    options = dict(
        rawframes=None if rawframes is None else str(rawframes), stream=stream, split=split,
        arch=arch, weights=weights, epochs=epochs, batch_size=batch_size, lr=lr, crop=crop,
        new_length=new_length, drop_rate=drop_rate, flip=flip, workers=workers, device=device,
        seed=seed, val_segments=val_segments,
    )
    # The options typed on this command line (not defaults): what --resume may not change.
    given = {k: v for k, v in options.items()
             if v is not None and getattr(ctx.get_parameter_source(k), "name", "") != "DEFAULT"}
    try:
        if resume:
            config = resume_configs(out, given)  # each split with its own settings
        elif rawframes is None or stream is None:
            raise fail("RAWFRAMES and --stream are required (unless --resume continues a run)")
        else:
            config = TrainConfig(out=str(out), **options)
        results = main(config)
    except TwostreamError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail(f"interrupted: every finished epoch is saved in {out}; continue with "
                   f"`twostream train --resume --out {out}`", code=130) from None
    for k, row in results.items():
        if row:
            typer.echo(f"split {k}: train acc {row['train_acc']:.1%}, test clip acc "
                       f"{row['val_video_acc']:.1%} after epoch {row['epoch']}")
        else:
            epochs = (config[k] if isinstance(config, dict) else config).epochs
            typer.echo(f"split {k}: already trained {epochs} epoch(s); nothing to do")
    typer.echo(f"run folder: {out}")


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="A folder written by `twostream train`."),
    crops: int = typer.Option(1, "--crops", help="1 (centre) or 10 (corners + centre, flips)."),
    split: str | None = typer.Option(None, "--split", help="1, 2, 3 or all (default: every "
                                     "trained split)."),
    segments: int = typer.Option(25, "--segments", help="Evenly spaced views per test clip."),
    train_segments: int = typer.Option(5, "--train-segments", help="Views per training clip "
                                       "(training-clip scores feed `twostream fuse`)."),
    rawframes: Path | None = typer.Option(None, "--rawframes", help="Rawframes folder "
                                          "(default: the one the run was trained on)."),
    device: str = typer.Option(DEFAULT_DEVICE, "--device", help=DEVICE_HELP),
    batch_size: int = typer.Option(4, "--batch-size", help="Clips per forward batch (each "
                                   "clip is segments x crops images)."),
    workers: int = typer.Option(0, "--workers"),
) -> None:
    """Evaluate a run on the test clips with the 25-view protocol (and score training clips).

    Writes scores_split{k}.npz, train_scores_split{k}.npz, eval_split{k}.json and
    confusion_split{k}.png into RUN_DIR; eval_summary.json (mean and std) for several splits.

    Example: twostream evaluate runs/temporal --crops 10
    """
    splits = _splits(split)
    _check_test_options(crops=crops, segments=segments, train_segments=train_segments,
                        batch_size=batch_size, workers=workers)
    from twostream.evaluate import evaluate_run

    _logging(verbose=False)
    try:
        result = evaluate_run(run_dir, splits=splits, crops=crops, segments=segments,
                              train_segments=train_segments, rawframes=rawframes,
                              device=device, batch_size=batch_size, workers=workers)
    except TwostreamError as exc:
        raise fail(str(exc)) from None
    for k, r in result["splits"].items():
        skipped = f", {len(r['skipped'])} clip(s) skipped" if r["skipped"] else ""
        typer.echo(f"split {k}: top-1 {r['top1']:.1%}  top-5 {r['top5']:.1%}  "
                   f"mean class acc {r['mean_class_accuracy']:.1%} ({r['clips']} clips{skipped})")
    if len(result["splits"]) > 1:
        s = result["summary"]
        typer.echo(f"mean over splits: top-1 {s['top1']['mean']:.1%} ± {s['top1']['std']:.1%}  "
                   f"mean class acc {s['mean_class_accuracy']['mean']:.1%} ± "
                   f"{s['mean_class_accuracy']['std']:.1%}")


@app.command()
def fuse(
    spatial_run: Path = typer.Argument(..., help="Evaluated spatial run folder."),
    temporal_run: Path = typer.Argument(..., help="Evaluated temporal run folder."),
    split: str | None = typer.Option(None, "--split", help="1, 2, 3 or all (default: every "
                                     "split evaluated in both runs)."),
    out: Path | None = typer.Option(None, "--out", help="Where fusion.csv/.json go "
                                    "(default: SPATIAL_RUN). fusion_model.json always goes "
                                    "into SPATIAL_RUN, where predict reads it."),
) -> None:
    """Fuse the two streams' scores: average, weighted average, linear SVM.

    The weight and the SVM are fitted on the training clips' scores, never on test clips.
    Prints and writes (fusion.csv, fusion.json) one table: each stream and each fusion.

    What was learned (the weight, the SVM, the best fusion) goes to
    SPATIAL_RUN/fusion_model.json even with --out: predict reads it there.

    Example: twostream fuse runs/spatial runs/temporal --split 1
    """
    splits = _splits(split)
    from twostream.fusion import fuse_runs
    from twostream.runs import FUSION_TABLE, fusion_model_path

    try:
        result = fuse_runs(spatial_run, temporal_run, splits=splits, out=out)
    except TwostreamError as exc:
        raise fail(str(exc)) from None
    typer.echo(result["table"])
    for k in result["splits"]:
        typer.echo(f"split {k}: best on the training clips: "
                   f"{result['results'][str(k)]['best_on_training_clips']} (predict's default)")
    typer.echo(f"written to {(out or spatial_run) / FUSION_TABLE}; what was learned to "
               f"{fusion_model_path(spatial_run)}")


def _print_json(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2))


@app.command()
def predict(
    video: Path = typer.Argument(..., help="A video file."),
    spatial: Path = typer.Option(..., "--spatial", help="Trained spatial run folder."),
    temporal: Path = typer.Option(..., "--temporal", help="Trained temporal run folder."),
    top_k: int = typer.Option(5, "--top-k", help="How many classes to print."),
    as_json: bool = typer.Option(False, "--json", help='Print {"fusion", "split", "top": '
                                 '[{"label", "score"}, ...]}.'),
    split: int | None = typer.Option(None, "--split", help="Checkpoints of this split "
                                     "(default: the first trained in both runs)."),
    fusion: str | None = typer.Option(
        None, "--fusion", help="average, weighted or svm: the weight and SVM `twostream fuse` "
        "learned from the training clips (svm scores are SVM decision values). Default: the "
        "one `fuse` found best on the training clips, or average if `fuse` was never run."),
    crops: int = typer.Option(1, "--crops", help="1 or 10 crops per view."),
    device: str = typer.Option(DEFAULT_DEVICE, "--device", help=DEVICE_HELP),
    flow: str | None = typer.Option(None, "--flow", help="Flow method the training rawframes "
                                    "were made with (default: as the runs record; required "
                                    "when they record none, e.g. rawframes made by MMAction2)."),
    short_side: int | None = typer.Option(None, "--short-side", help="Short side the training "
                                          "frames were resized to (0: native); as --flow."),
    bound: float | None = typer.Option(None, "--bound", help="Flow bound of the training "
                                       "rawframes (MMAction2's denseflow: 20); as --flow."),
) -> None:
    """Classify a video: extract frames and flow as `extract` did, run both streams, fuse.

    Example: twostream predict clip.avi --spatial runs/spatial --temporal runs/temporal --top-k 3

    For runs trained on rawframes made by MMAction2's tools, say how they were made:
    twostream predict clip.avi --spatial S --temporal T --flow tvl1 --short-side 0 --bound 20
    """
    _splits(split, allow_all=False)
    _check_test_options(crops=crops, top_k=top_k)
    from twostream.decode import VideoDecodeError
    from twostream.predict import predict_video

    try:
        result = predict_video(video, spatial, temporal, top_k=top_k, split=split,
                               fusion=fusion, crops=crops, device=device, flow=flow,
                               short_side=short_side, bound=bound)
    except VideoDecodeError as exc:
        raise fail(f"cannot decode {video}: {exc.reason}") from None
    except TwostreamError as exc:
        raise fail(str(exc)) from None
    if as_json:
        _print_json(result)
        return
    top = result["top"]
    typer.echo(f"{result['fusion']} fusion, split {result['split']}")
    width = max(len(r["label"]) for r in top)
    for r in top:
        typer.echo(f"{r['label']:<{width}}  {r['score']:.3f}")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A trained run folder."),
    out: Path = typer.Argument(..., help="Output .onnx file."),
    split: int | None = typer.Option(None, "--split", help="Checkpoint of this split "
                                     "(default: the first one)."),
) -> None:
    """Export a trained stream to ONNX (input: normalised (batch, C, crop, crop); output: logits).

    Example: twostream export runs/temporal temporal.onnx
    """
    _splits(split, allow_all=False)
    from twostream.export import export_onnx

    try:
        info = export_onnx(run_dir, out, split=split)
    except TwostreamError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"wrote {info['path']} (split {info['split']}, input {info['input_shape']}, "
               f"{len(info['classes'])} classes)")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output/twostream"), "--out", help="Working folder."),
    epochs: int = typer.Option(15, "--epochs", help="Training epochs per stream."),
    clips_per_class: int = typer.Option(12, "--clips-per-class"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Run the whole pipeline on synthetic data and print accuracy per stream and class group.

    synth -> extract -> train both streams -> evaluate -> fuse -> predict one clip; ends with
    accuracy per stream (and fusion) on appearance classes, motion classes and overall.

    It took about 70 seconds on 2 idle CPU cores (load average 1.1), measured 2026-12-07;
    under heavy load, 18 minutes. Re-running with the same options reuses
    finished steps in --out; other options (seed, sizes, epochs) are refused there.

    Example: twostream demo --out /tmp/twostream-demo
    """
    from twostream.demo import DemoConfig, run_demo

    _logging(verbose=False)
    try:
        run_demo(out, DemoConfig(epochs=epochs, clips_per_class=clips_per_class, seed=seed),
                 echo=typer.echo)
    except TwostreamError as exc:
        raise fail(str(exc)) from None
