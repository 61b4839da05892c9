"""`bench eval --cams DIR`: score a folder of reference-format CAM files; `bench eval --masks
DIR`: score a folder of pseudo-mask PNGs (any code's, the authors' included)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import typer

from cli import app
from cli import options as opt
from harness.run_options import RunOptions


@app.command("eval")
@opt.run_option_params("data_root", "cache_dir")
def eval_command(
    cams: Path = typer.Option(None, help="folder of <image>.npy CAM files (reference format)"),
    masks: Path = typer.Option(None, help="folder of <image>.png pseudo masks (class indices: 0 "
                               "background, k+1 class k, 255 ignore, scored as background)"),
    dataset: str = typer.Option("synth", help="dataset whose evaluation split they cover"),
    set_: opt.Sets = None,
    threshold_split: str = typer.Option(None, help="pick t on this held-out labelled split "
                                        "(synth: heldout; voc: heldout = a fixed third of val; folder: val) "
                                        "and score the eval split at it"),
    threshold_cams: Path = typer.Option(None, help="CAM files of the threshold split "
                                        "(default: the --cams folder)"),
    plot: Path = typer.Option(None, help="write a PNG of per-class precision and recall"),
    workers: int = typer.Option(min(8, os.cpu_count() or 1), min=1,
                                help="threads reading and scoring files"),
    json_out: bool = typer.Option(False, "--json"),
    options: RunOptions = RunOptions(),
) -> None:
    """Seed mIoU (threshold sweep, fixed 0.15, held-out t), per-class IoU, precision, recall,
    FP, FN, background leak and context_fp of CAM files. --set: the dataset settings the CAMs
    were made with, e.g. n_eval=16 on synth."""
    from harness.camio import score_folder
    from harness.config import MethodConfig, parse_sets
    from harness.data import default_cache_dir, load_dataset
    from harness.errors import BenchError
    from harness.evaluate import split_scores
    from harness.method import data_options
    from harness.provenance import provenance, with_data_facts
    from harness.reads import refuse_unread_settings

    if (cams is None) == (masks is None):
        raise BenchError("bench eval scores either --cams DIR (CAM files) or --masks DIR (pseudo-mask "
                         "PNGs): give exactly one")
    params = MethodConfig(**parse_sets(MethodConfig, opt.sets(set_))).validate()
    refuse_unread_settings(SimpleNamespace(dataset=dataset, params=params), f"{dataset} data")
    if plot is not None:
        check_plot_path(plot)
    opts = data_options(dataset, params, options.cache_dir or default_cache_dir(),
                        str(options.data_root) if options.data_root else None)
    ds = load_dataset(dataset, "eval", **opts)
    if masks is not None:
        return _eval_masks(ds, dataset, masks, params, workers, json_out)
    held = load_dataset(dataset, threshold_split, **opts) if threshold_split else None
    scores = split_scores(ds, lambda ev, split: score_folder(ev, split, cams, workers), held,
                          lambda ev, split: score_folder(ev, split, threshold_cams or cams, workers))
    n = len(ds)
    record = {"dataset": dataset, "cams": str(cams), "n_images": n,
              **scores.as_record(),
              "provenance": with_data_facts(provenance(
                  dataset, "eval", n, class_names=getattr(params, "class_names", "voc"),
                  heldout_split=threshold_split, crf=None), ds)}
    if plot is not None:
        from cli.summary import write_pr_plot

        write_pr_plot(record, plot, f"{n} CAMs on {dataset}")
    if json_out:
        typer.echo(json.dumps(record))
        return
    from cli.summary import print_eval

    print_eval(record, f"{n} CAMs on {dataset} ({cams})")


def check_plot_path(plot: Path) -> None:
    from harness.errors import BenchError

    if plot.suffix.lower() != ".png":
        raise BenchError(f"--plot writes a PNG; give a path ending in .png (got {plot})")
    if not plot.parent.is_dir():
        raise BenchError(f"--plot folder {plot.parent} does not exist")


def _eval_masks(ds, dataset: str, masks: Path, params, workers: int, json_out: bool) -> None:
    from harness.masks.score import score_mask_folder
    from harness.provenance import provenance, with_data_facts

    scores = score_mask_folder(ds, masks, workers)
    n = scores["mask_n_images"]
    record = {"dataset": dataset, "masks": str(masks), "n_images": n, **scores,
              "provenance": {**with_data_facts(provenance(
                                 dataset, "eval", n, class_names=getattr(params, "class_names", "voc"),
                                 crf=None), ds),
                             "threshold_rule": {"mask_miou": "the masks' own labels (255 scored as "
                                                "background, as irn step/eval_sem_seg.py)"}}}
    if json_out:
        typer.echo(json.dumps(record))
        return
    from cli.summary import print_mask_eval

    print_mask_eval(record, f"{n} pseudo masks on {dataset} ({masks})")
