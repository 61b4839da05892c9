"""`bench run METHOD`: train, make CAMs, evaluate, record."""

from __future__ import annotations

import json

import typer

from cli import app
from cli import options as opt
from cli.summary import print_summary
from harness.run_options import RunOptions


@app.command("run")
@opt.run_option_params()
def run_command(
    method: str = typer.Argument(..., help="method or variant, e.g. semples or semples/match-only"),
    dataset: str = typer.Option("synth", help=opt.DATASET_HELP),
    seed: int = typer.Option(0, help="training seed"),
    set_: opt.Sets = None,
    epochs: opt.Epochs = None,
    device: opt.Device = opt.DEFAULT_DEVICE,
    resume: bool = typer.Option(False, help="continue interrupted stages from their last epoch"),
    json_out: bool = typer.Option(False, "--json", help="print the result record as JSON on stdout"),
    threshold_split: str = typer.Option(None, help="also pick t on this held-out labelled split "
                                        "(synth: heldout; voc: heldout) and score at it"),
    options: RunOptions = RunOptions(),
) -> None:
    """Train METHOD, write CAMs of the evaluation split, evaluate and record the run."""
    from harness.runner import run_variant

    record = run_variant(method, dataset, seed, opt.sets(set_), epochs, device, resume=resume,
                         threshold_split=threshold_split, **options.run_kwargs())
    if json_out:
        typer.echo(json.dumps(record.to_dict(), default=str))
    else:
        print_summary(record.to_dict())
