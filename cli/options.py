"""Every run option of `bench`, declared once (Typer `Annotated` types) and used by `run`,
`sweep`, `reproduce`, `qape` and `eval`, so each option has one name, one help line and one
default everywhere.

The options that become a `harness.run_options.RunOptions` (data root, weights,
--allow-random-weights, runs and cache dirs, W&B mode, the pseudo masks' --masks,
--mask-set and --irn-weights) are added to a command by
`@run_option_params(...)`, which hands the command one `options: RunOptions`; the others
are written `set_: opt.Sets = None`. New run options belong here (tests/test_options.py
checks every command that starts runs accepts them, with the same help).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.run_options import RunOptions

DEFAULT_DEVICE = "auto"  # cuda when this machine has one, else cpu (harness.runner.resolve_device)

DataRoot = Annotated[Path | None, typer.Option(
    "--data-root", help="dataset root: voc, the folder holding VOCdevkit/ (else $BENCH_VOC_ROOT); "
    "coco, the one holding train2014/ val2014/ annotations/ (else $BENCH_COCO_ROOT)")]
ClipWeights = Annotated[Path | None, typer.Option(
    "--clip-weights", help="local open_clip weights file of the teacher (clip_arch)")]
BackboneWeights = Annotated[Path | None, typer.Option(
    "--backbone-weights", help="local timm/torchvision ImageNet weights of the backbone")]
VqaPath = Annotated[Path | None, typer.Option(
    "--vqa-path", help="local BLIP VQA folder (save_pretrained of BlipForQuestionAnswering + "
    "BlipProcessor), or QA-CLIMS's released answers (voc_vqa_fg_blip.npy, or the folder holding "
    "the fg and bg files), for the qa-clims corpus")]
CamWeights = Annotated[Path | None, typer.Option(
    "--cam-weights", help="start from this CAM baseline checkpoint instead of training one "
    "(this harness's, IRN/CLIMS res50_cam.pth, or WeakTr's DeiT-S checkpoint with "
    "--set backbone=deit_small_weaktr)")]
AllowRandomWeights = Annotated[bool, typer.Option(
    "--allow-random-weights", help="smoke tests only: random CLIP/backbone/BLIP where no file "
    "is given")]
Device = Annotated[str, typer.Option(
    "--device", help="cpu, cuda or cuda:N (auto: cuda when there is one)")]
Devices = Annotated[str | None, typer.Option(
    "--devices", help="with --workers: cpu or cuda:0,cuda:1,… (one per worker, cycled; "
    "default: --device)")]
RunsDir = Annotated[Path | None, typer.Option(
    "--runs-dir", envvar="BENCH_RUNS_DIR", help="results store (default ./runs)")]
CacheDir = Annotated[Path | None, typer.Option(
    "--cache-dir", envvar="BENCH_CACHE_DIR",
    help="teacher, data and stage cache (default ~/.cache/wsss-bench)")]
WandbMode = Annotated[str | None, typer.Option(
    "--wandb", help="offline (default), online or disabled; WANDB_MODE respected")]
Sets = Annotated[list[str] | None, typer.Option(
    "--set", help="a setting for every run: key=value (repeatable; see `bench list --settings`)")]
Epochs = Annotated[int | None, typer.Option(
    "--epochs", help="override the epochs of every training stage")]
# the pseudo masks (harness/masks, docs/masks.md)
Masks = Annotated[str | None, typer.Option(
    "--masks", help="pseudo masks from the CAMs: irn, crf or none (default: the family's reference "
    "pipeline on voc/coco, none on synth; docs/masks.md)")]
MaskSets = Annotated[list[str] | None, typer.Option(
    "--mask-set", help="a pseudo-mask setting: key=value (repeatable; see `bench list --settings`)")]
IrnWeights = Annotated[Path | None, typer.Option(
    "--irn-weights", help="--masks irn: a trained IRN checkpoint (this harness's irn.pt or IRN's "
    "res50_irn.pth) instead of training one")]


# RunOptions field -> (command-line parameter name, its Annotated type, its default)
_FIELDS: dict[str, tuple[str, Any, Any]] = {
    "data_root": ("data_root", DataRoot, None),
    "clip_weights": ("clip_weights", ClipWeights, None),
    "backbone_weights": ("backbone_weights", BackboneWeights, None),
    "vqa_path": ("vqa_path", VqaPath, None),
    "cam_weights": ("cam_weights", CamWeights, None),
    "allow_random_weights": ("allow_random_weights", AllowRandomWeights, False),
    "runs_dir": ("runs_dir", RunsDir, None),
    "cache_dir": ("cache_dir", CacheDir, None),
    "wandb_mode": ("wandb", WandbMode, None),
    "irn_weights": ("irn_weights", IrnWeights, None),
    "masks": ("masks", Masks, None),
    "mask_sets": ("mask_set", MaskSets, None),
}
ALL = tuple(_FIELDS)


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


assert set(ALL) == {f.name for f in dataclasses.fields(RunOptions)}  # every field has its option


def sets(values: list[str] | None) -> list[str]:
    return list(values or [])


# ---- where runs execute: local processes (default) or Slurm jobs through submitit

Launcher = Annotated[str, typer.Option(
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
