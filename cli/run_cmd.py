"""`bench run METHOD`: train, make CAMs, evaluate, record."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cli import app
from cli.summary import print_summary


@app.command("run")
def run_command(
    method: str = typer.Argument(..., help="method or variant, e.g. semples or semples/match-only"),
    dataset: str = typer.Option("synth", help="synth (embedded), voc or coco"),
    seed: int = typer.Option(0, help="training seed"),
    set_: list[str] = typer.Option([], "--set", help="override a setting: key=value (repeatable)"),
    epochs: int = typer.Option(None, help="override the method's training epochs"),
    device: str = typer.Option("auto", help="cpu, cuda or cuda:N"),
    runs_dir: Path = typer.Option(None, envvar="BENCH_RUNS_DIR", help="results store (default ./runs)"),
    cache_dir: Path = typer.Option(None, envvar="BENCH_CACHE_DIR",
                                   help="teacher, data and stage cache (default ~/.cache/wsss-bench)"),
    wandb: str = typer.Option(None, help="offline (default), online or disabled; WANDB_MODE respected"),
    resume: bool = typer.Option(False, help="continue interrupted stages from their last epoch"),
    json_out: bool = typer.Option(False, "--json", help="print the result record as JSON on stdout"),
    data_root: Path = typer.Option(None, help="dataset root (voc, coco)"),
    clip_weights: Path = typer.Option(None, help="local open_clip weights file"),
    backbone_weights: Path = typer.Option(None, help="local timm backbone weights file"),
    vqa_path: Path = typer.Option(None, help="local BLIP VQA folder (qa-clims corpus)"),
    cam_weights: Path = typer.Option(None, help="start from this CAM baseline checkpoint instead "
                                     "of training one (this harness's or IRN/CLIMS res50_cam.pth)"),
    allow_random_weights: bool = typer.Option(False, help="smoke tests only: random CLIP/backbone/BLIP "
                                              "where no file is given"),
    threshold_split: str = typer.Option(None, help="also pick t on this held-out labelled split "
                                        "(synth: heldout; voc: heldout) and score at it"),
) -> None:
    """Train METHOD, write CAMs of the evaluation split, evaluate and record the run."""
    from harness.runner import run_variant

    record = run_variant(method, dataset, seed, set_, epochs, device, runs_dir=runs_dir,
                         cache_dir=cache_dir, wandb_mode=wandb, resume=resume, data_root=data_root,
                         clip_weights=clip_weights, backbone_weights=backbone_weights,
                         vqa_path=vqa_path, cam_weights=cam_weights,
                         allow_random_weights=allow_random_weights, threshold_split=threshold_split)
    if json_out:
        typer.echo(json.dumps(record, default=str))
    else:
        print_summary(record)
