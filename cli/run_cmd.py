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
    ctx: typer.Context,
    method: str = typer.Argument(None, help="method or variant, e.g. semples or semples/match-only"),
    dataset: str = typer.Option("synth", help=opt.DATASET_HELP),
    seed: int = typer.Option(0, help="training seed"),
    set_: opt.Sets = None,
    epochs: opt.Epochs = None,
    device: opt.Device = opt.DEFAULT_DEVICE,
    resume: bool = typer.Option(False, help="continue interrupted stages from their last epoch"),
    json_out: bool = typer.Option(False, "--json", help="print the result record as JSON on stdout"),
    threshold_split: str = typer.Option(None, help="also pick t on this held-out labelled split "
                                        "(synth: heldout; voc: heldout; folder: val) and score at it"),
    from_: str = typer.Option(None, "--from", help="replay this run (id, unique prefix or folder): "
                              "its recorded config and inputs, in place of METHOD and settings"),
    options: RunOptions = RunOptions(),
) -> None:
    """Train METHOD, write CAMs of the evaluation split, evaluate and record the run."""
    from harness.runner import run_variant

    if from_ is not None or method is None:
        if from_ is not None:
            _refuse_beside_replay(ctx)
        record = _replay(from_, method, options)
    else:
        record = run_variant(method, dataset, seed, opt.sets(set_), epochs, device, resume=resume,
                             threshold_split=threshold_split, **options.run_kwargs())
    if json_out:
        typer.echo(json.dumps(record.to_dict(), default=str))
    else:
        print_summary(record.to_dict())


# what `--from` reads besides the run: where results, caches and W&B go, and how to print.
# Any other option would be replaced by the record's value without a word (issue 32: an input
# a run does not read is refused in one line), so given with --from it is refused.
_BESIDE_REPLAY = ("method", "from_", "json_out", "runs_dir", "cache_dir", "wandb")


def _refuse_beside_replay(ctx: typer.Context) -> None:
    from harness.errors import BenchError

    given = [p.opts[0] for p in ctx.command.params if p.name not in _BESIDE_REPLAY
             and getattr(ctx.get_parameter_source(p.name), "name", None) == "COMMANDLINE"]
    if given:
        raise BenchError(f"--from replays the run as it was recorded, so it does not read "
                         f"{', '.join(given)}: leave {'it' if len(given) == 1 else 'them'} "
                         "out (run METHOD to change a setting)")


def _replay(source: str | None, method: str | None, options: RunOptions):
    from harness.errors import BenchError
    from harness.progress import log
    from harness.replay import replay

    if source is None or method is not None:
        raise BenchError("give METHOD, or --from RUN to replay a recorded run (not both)")
    return replay(source, options.runs_root, log=log, cache_dir=options.cache_dir,
                  wandb_mode=options.wandb_mode)
