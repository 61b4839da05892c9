"""Every run option of `bench`, declared once (Typer `Annotated` types) and used by `run`,
`sweep`, `reproduce`, `qape` and `eval`, so each option has one name, one help line and one
default everywhere.

The options that become a `harness.run_options.RunOptions` (data root, weights,
--allow-random-weights, runs and cache dirs, W&B mode, the pseudo masks' --masks,
--mask-set and --irn-weights) are made from its fields (help, flag and environment variable
are declared there) and added to a command by `@run_option_params(...)`, which hands the
command one `options: RunOptions`; the others are written `set_: opt.Sets = None`. A new run
option is a RunOptions field (tests/test_options.py checks every command that starts runs
accepts them, with the same help).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from harness.run_options import RunOptions, flag_of, kind_of

# every --dataset that names the dataset a run is on (harness.data: entry points)
DATASET_HELP = ("synth (embedded), voc, coco, folder (your own images: docs/own-data.md) or a "
                "plugin's (bench list)")
DEFAULT_DEVICE = "auto"  # cuda when this machine has one, else cpu (harness.runner.resolve_device)

Device = Annotated[str, typer.Option(
    "--device", help="cpu, cuda or cuda:N (auto: cuda when there is one)")]
Devices = Annotated[str | None, typer.Option(
    "--devices", help="with --workers: cpu or cuda:0,cuda:1,… (one per worker, cycled; "
    "default: --device)")]
Sets = Annotated[list[str] | None, typer.Option(
    "--set", help="a setting for every run: key=value (repeatable; see `bench list --settings`; "
    "bench report: only the runs made with it)")]
Epochs = Annotated[int | None, typer.Option(
    "--epochs", help="override the epochs of every training stage (bench report: only the runs "
    "made with it)")]


def _typer_option(f: dataclasses.Field) -> tuple[str, Any, Any]:
    """A RunOptions field as a Typer option: (parameter name, Annotated type, default)."""
    flag, kind = flag_of(f), kind_of(f)
    hint = {bool: bool, tuple: list[str] | None, Path: Path | None}.get(kind, str | None)
    option = typer.Option(flag, help=f.metadata["help"], envvar=f.metadata["envvar"])
    return flag.lstrip("-").replace("-", "_"), Annotated[hint, option], (False if kind is bool else None)


# RunOptions field -> (command-line parameter name, its Annotated type, its default)
_FIELDS: dict[str, tuple[str, Any, Any]] = {f.name: _typer_option(f)
                                            for f in dataclasses.fields(RunOptions)}
ALL = tuple(_FIELDS)
RunsDir = _FIELDS["runs_dir"][1]  # `bench report` reads the store without starting runs


def run_option_params(*fields: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the options of these RunOptions `fields` (default: all) to a Typer command, which
    then receives them as one keyword `options: RunOptions`."""
    chosen = {f: _FIELDS[f] for f in (fields or ALL)}
    return _option_group(chosen, lambda values: RunOptions(**values), "options")


def _option_group(fields: dict[str, tuple[str, Any, Any]], build: Callable[[dict[str, Any]], Any],
                  keyword: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding `fields` (target field -> (parameter, Annotated type, default)) to a
    Typer command, which receives `build({field: value})` as the keyword `keyword`. (Typer
    reads a command's parameters from its signature: the wrapper shows the command's own
    parameters followed by these.)"""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values()
               if p.name != keyword]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                   default=default) for name, annotation, default in fields.values()]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {f: kwargs.pop(name) for f, (name, _, _) in fields.items()}
            return command(*args, **{keyword: build(values)}, **kwargs)

        del wrapper.__wrapped__  # Typer must read the wrapper's signature, not the command's
        params = sorted([*own, *added], key=lambda p: p.kind)  # keyword-only after the rest
        wrapper.__signature__ = inspect.Signature(params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


def sets(values: list[str] | None) -> list[str]:
    return list(values or [])


# ---- which runs make a table's cells (reports.compile.CellSelection): bench report, reproduce

_SELECTION: dict[str, tuple[str, Any, Any]] = {
    "dataset": ("dataset", Annotated[str | None, typer.Option(
        "--dataset", help="the dataset the cells' runs are on (default: synth; the final "
        "table: voc): " + DATASET_HELP)], None),
    "seeds": ("seeds", Annotated[str, typer.Option(
        "--seeds", help="seeds a complete cell has: N (0 … N-1), or only these: 10-14, 3,7, "
        "2-2 (one seed)")], "1"),
    "teacher_seeds": ("teacher_seeds", Annotated[str, typer.Option(
        "--teacher-seeds", help="teacher seeds a complete cell has, as --seeds: a second seed "
        "axis, cells are paired by both")], "1"),
    "sets": ("set_", Sets, None),
    "epochs": ("epochs", Epochs, None),
    "threshold": ("threshold", Annotated[str, typer.Option(
        "--threshold", help="which seed mIoU: best (best t on the eval GT), fixed (t = 0.15) "
        "or heldout (t chosen on a held-out split; reproduce's runs pick it there)")], "best"),
    "mixed_provenance": ("mixed_provenance", Annotated[bool, typer.Option(
        "--mixed-provenance", help="show rows whose provenance differs (flagged) instead of "
        "refusing")], False),
}


def selection_params() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the cell selection's options to a command, which receives `select: CellSelection`."""
    def build(values: dict[str, Any]):
        from reports.compile import CellSelection, parse_seeds

        given = values["dataset"] is not None
        return CellSelection(**{**values, "dataset": values["dataset"] or CellSelection.dataset,
                                "dataset_given": given, "sets": tuple(values["sets"] or ()),
                                "seeds": parse_seeds(values["seeds"]),
                                "teacher_seeds": parse_seeds(values["teacher_seeds"],
                                                             "--teacher-seeds")})

    return _option_group(_SELECTION, build, "select")


# ---- where runs execute: local processes (default) or Slurm jobs through submitit

# Typer refuses any other value in one usage line, for every command that takes it
Launcher = Annotated[Literal["local", "slurm"], typer.Option(
    "--launcher", help="local (worker processes here) or slurm (one Slurm job per worker, or "
    "a job array over the missing cells, through submitit)")]
_SLURM: dict[str, tuple[str, Any, Any]] = {
    "partition": ("slurm_partition", Annotated[str | None, typer.Option(
        "--slurm-partition", help="slurm: partition (default: the cluster's default)")], None),
    "gpus_per_job": ("slurm_gpus", Annotated[int, typer.Option(
        "--slurm-gpus", help="slurm: GPUs per job (0: CPU jobs)")], 0),
    "cpus_per_job": ("slurm_cpus", Annotated[int | None, typer.Option(
        "--slurm-cpus", help="slurm: CPUs per job (default: Slurm's)")], None),
    "mem": ("slurm_mem", Annotated[str | None, typer.Option(
        "--slurm-mem", help="slurm: memory per job, e.g. 32G (default: Slurm's)")], None),
    "time_min": ("slurm_time", Annotated[int, typer.Option(
        "--slurm-time", help="slurm: time limit per job in minutes")], 240),
    "array_parallelism": ("slurm_array_parallelism", Annotated[int | None, typer.Option(
        "--slurm-array-parallelism", help="slurm: jobs of one array running at once")], None),
    "sbatch": ("slurm_sbatch", Annotated[list[str] | None, typer.Option(
        "--slurm-sbatch", help="slurm: an extra sbatch directive, e.g. --qos=high or "
        "account=proj (repeatable)")], None),
    "setup": ("slurm_setup", Annotated[list[str] | None, typer.Option(
        "--slurm-setup", help="slurm: a shell line each job runs first, e.g. 'module load "
        "cuda' or 'source venv/bin/activate' (repeatable)")], None),
}


def slurm_option_params() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add --slurm-* to a command, which receives them as `slurm: SlurmOptions`."""
    def build(values: dict[str, Any]):
        from sweeps.slurm import SlurmOptions

        return SlurmOptions(**{**values, "sbatch": tuple(values["sbatch"] or ()),
                               "setup": tuple(values["setup"] or ())})

    return _option_group(_SLURM, build, "slurm")
