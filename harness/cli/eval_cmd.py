"""`bench eval --cams DIR`: score a folder of reference-format CAM files."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from harness.cli import app


@app.command("eval")
def eval_command(
    cams: Path = typer.Option(..., help="folder of <image>.npy CAM files (reference format)"),
    dataset: str = typer.Option("synth", help="dataset whose evaluation split they cover"),
    data_root: Path = typer.Option(None, help="dataset root (voc, coco)"),
    cache_dir: Path = typer.Option(None, envvar="BENCH_CACHE_DIR"),
    set_: list[str] = typer.Option([], "--set", help="dataset settings the CAMs were made with, "
                                   "e.g. n_eval=16 on synth"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Seed mIoU (threshold sweep and fixed 0.15), per-class IoU, context_fp of CAM files."""
    from harness.camio import cam_folder, read_cam
    from harness.config import MethodConfig, parse_sets
    from harness.data import default_cache_dir, load_dataset
    from harness.evaluate import SeedEvaluator
    from harness.method import data_options

    params = MethodConfig(**parse_sets(MethodConfig, set_)).validate()
    ds = load_dataset(dataset, "eval", **data_options(dataset, params, cache_dir or default_cache_dir(),
                                                      str(data_root) if data_root else None))
    paths = cam_folder(cams, ds.image_names)
    ev = SeedEvaluator(ds.class_names, cooccur=ds.cooccur, context_names=ds.context_names)
    for i, path in enumerate(paths):
        gt = ds.mask(i)
        keys, high = read_cam(path, gt.shape)
        ev.add(keys, high, gt, ds.context_map(i))
    record = {"dataset": dataset, "cams": str(cams), "n_images": len(paths), **ev.scores().as_record()}
    if json_out:
        typer.echo(json.dumps(record))
        return
    from rich.console import Console

    console = Console()
    console.print(f"[bold]{len(paths)} CAMs on {dataset}[/]: seed mIoU {record['seed_miou']:.2f} "
                  f"(t = {record['best_threshold']:.2f}), fixed {record['seed_miou_fixed']:.2f} "
                  f"(t = {record['fixed_threshold']:.2f})"
                  + (f", context_fp {record['context_fp']:.2f}%" if record["context_fp"] is not None else ""))
    console.print("  ".join(f"{k} {v:.1f}" for k, v in record["per_class_iou"].items()))
