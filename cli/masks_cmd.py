"""`bench masks --cams DIR`: pseudo masks from any reference-format CAM folder (the authors'
included), by a family's pipeline, written as VOC-layout PNGs and scored."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import typer

from cli import app
from cli import options as opt
from harness.run_options import RunOptions


@app.command("masks")
@opt.run_option_params("data_root", "backbone_weights", "allow_random_weights", "cache_dir",
                       "irn_weights", "mask_sets")
def masks_command(
    cams: Path = typer.Option(..., help="folder of <image>.npy CAM files (keys, high_res) of the "
                              "evaluation split"),
    out: Path = typer.Option(..., help="folder to write <image>.png pseudo masks into (must not exist)"),
    method: str = typer.Option("cam", help="whose pipeline and settings: cam (IRN's own), clims, "
                               "qa-clims (IRN as they run it) or semples (dense CRF)"),
    pipeline: str = typer.Option(None, "--pipeline", help="irn or crf (default: the method's)"),
    dataset: str = typer.Option("synth", help="dataset whose evaluation split the CAMs cover"),
    set_: opt.Sets = None,
    seed: int = typer.Option(0, help="IRN's training seed"),
    device: opt.Device = opt.DEFAULT_DEVICE,
    json_out: bool = typer.Option(False, "--json"),
    options: RunOptions = RunOptions(),
) -> None:
    """Make pseudo masks from CAM files (IR labels → IRN → random walk, or dense CRF), write
    them to OUT and score them against the split's masks."""
    from harness.camio import score_folder
    from harness.data import default_cache_dir
    from harness.errors import BenchError
    from harness.evaluate import SeedEvaluator
    from harness.masks.score import score_mask_folder
    from harness.masks.settings import from_dict
    from harness.masks.stage import check_pipeline, check_weights, make_masks
    from harness.method import RunContext
    from harness.runner import resolve_config

    if out.exists():
        raise BenchError(f"--out {out} exists; give a new folder")
    if pipeline == "none":
        raise BenchError("--pipeline must be irn or crf")
    cfg = resolve_config(method, dataset, seed, opt.sets(set_), device=device,
                         **{**options.inputs(), "masks": pipeline})
    if not cfg.masks:
        raise BenchError(f"{method} has no pseudo-mask pipeline on {dataset} by default: pass "
                         "--pipeline irn or crf")
    import torch

    from harness.progress import log

    ctx = RunContext(cfg, Path(options.cache_dir or default_cache_dir()), torch.device(cfg.device),
                     log=log)
    settings = from_dict(cfg.masks)
    check_pipeline(settings)
    check_weights(ctx, settings)
    ds = ctx.dataset("eval")
    seed_ev = SeedEvaluator(ds.class_names)  # the CAMs' best t (the crf pipeline's default)
    score_folder(seed_ev, ds, cams, workers=min(8, os.cpu_count() or 1))
    folder, prov = make_masks(ctx, ds, cams, settings, seed_ev.best_threshold())
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.copytree(folder, tmp)
    os.replace(tmp, out)
    record = {"dataset": dataset, "cams": str(cams), "masks": str(out), **score_mask_folder(ds, out),
              "mask_provenance": {**prov, "settings": cfg.masks}}
    if json_out:
        typer.echo(json.dumps(record, default=str))
        return
    from cli.summary import print_mask_eval

    print_mask_eval(record, f"{len(ds)} pseudo masks ({prov['pipeline']}) of {cams} → {out}")
