"""`bench segment --masks DIR|gt --segment MODEL`: a segmentation model trained on any folder
of pseudo-mask PNGs of the training split (or the ground truth: the fully supervised bound),
scored on the dataset's val split and recorded (docs/segmentation.md)."""

from __future__ import annotations

import json

import typer

from cli import app
from cli import options as opt
from harness.run_options import RunOptions


@app.command("segment")
@opt.run_option_params("data_root", "allow_random_weights", "runs_dir", "cache_dir", "segment",
                       "seg_weights")
def segment_command(
    masks: str = typer.Option(..., help="folder of <image>.png pseudo masks of the training split "
                              "(0 background, k+1 class k, 255 ignore), or gt: the ground truth "
                              "(the fully supervised upper bound)"),
    dataset: str = typer.Option("synth", help="synth, voc or coco"),
    seed: int = typer.Option(0, help="training seed (data order, augmentation, head init)"),
    set_: opt.Sets = None,
    epochs: opt.Epochs = None,
    device: opt.Device = opt.DEFAULT_DEVICE,
    json_out: bool = typer.Option(False, "--json", help="print the result record as JSON on stdout"),
    options: RunOptions = RunOptions(),
) -> None:
    """Train --segment MODEL on MASKS and record its seg mIoU on val."""
    from harness.progress import log
    from harness.runner import resolve_device
    from harness.segment.masks_run import segment_masks

    record = segment_masks(masks, options.segment, dataset, seed, opt.sets(set_), epochs,
                           resolve_device(device), options.data_root, options.seg_weights,
                           options.allow_random_weights, options.runs_dir, options.cache_dir, log=log)
    if json_out:
        typer.echo(json.dumps(record, default=str))
        return
    line = f"seg mIoU {record['seg_miou']:.2f}"
    if "seg_miou_crf" in record:
        line += f" (+CRF {record['seg_miou_crf']:.2f})"
    typer.echo(f"{line} on {record['provenance']['segment']['val_split']} → {record['path']}")
