"""The options a run takes from outside its config: where the data and the weights are,
which pseudo masks it makes (docs/masks.md), where results and caches go, how W&B mirrors it.

One definition for every way a run starts: `bench run`, a sweep trial (in a local worker
process or a Slurm job), a `bench reproduce` cell. Each option is one field of `RunOptions`
(its help, flag and environment variable in its metadata): `cli/options.py` makes the
command-line options from them, `to_argv`/`add_arguments` carry them to a worker process and
`harness.config.RunConfig` holds the ones marked `config`.
Torch-free: launchers build it before any worker imports torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import reads


def option(default: Any = None, help: str = "", *, flag: str | None = None,
           envvar: str | None = None, config: bool = False,
           read_when: reads.ReadWhen | None = None) -> Any:
    """A run option: its default, help line, command-line flag (default --field-name),
    environment variable, and whether the run's `RunConfig` holds it (`config`: an input
    of the run, recorded in config.json, rather than where its results go). `read_when`:
    the runs that read it; any other run given it refuses it in one line (harness/reads.py)."""
    return dataclasses.field(default=default, metadata={
        "help": help, "flag": flag, "envvar": envvar, "config": config, "read_when": read_when})


@dataclass(frozen=True)
class RunOptions:
    """Every run option, declared once: the Typer options (cli/options.py), a worker's argv
    (`to_argv` / `add_arguments`) and RunConfig's inputs (`config_fields`) are made from
    these fields, so a new option is one field here."""

    data_root: Path | None = option(
        help="dataset root: voc, the folder holding VOCdevkit/ (else $BENCH_VOC_ROOT); coco, the "
        "one holding train2014/ val2014/ annotations/ (else $BENCH_COCO_ROOT); folder, the one "
        "holding classes.txt images/ labels.csv (docs/own-data.md; else $BENCH_FOLDER_ROOT)",
        config=True, read_when=reads.DATA_ROOT)
    clip_weights: Path | None = option(
        help="local open_clip weights file of the teacher (clip_arch)", config=True,
        read_when=reads.CLIP_WEIGHTS)
    backbone_weights: Path | None = option(
        help="local timm/torchvision ImageNet weights of the backbone", config=True,
        read_when=reads.BACKBONE_WEIGHTS)
    vqa_path: Path | None = option(
        help="local BLIP VQA folder (save_pretrained of BlipForQuestionAnswering + "
        "BlipProcessor), or QA-CLIMS's released answers (voc_vqa_fg_blip.npy, or the folder "
        "holding the fg and bg files), for the qa-clims corpus", config=True,
        read_when=reads.VQA_PATH)
    cam_weights: Path | None = option(
        help="start from this CAM baseline checkpoint instead of training one (this harness's, "
        "IRN/CLIMS res50_cam.pth, or WeakTr's DeiT-S checkpoint with --set "
        "backbone=deit_small_weaktr)", config=True,
        read_when=reads.CAM_WEIGHTS)
    allow_random_weights: bool = option(
        False, "smoke tests only: random CLIP/backbone/BLIP where no file is given", config=True,
        read_when=reads.RANDOM_WEIGHTS)
    runs_dir: Path | None = option(  # None: harness.store.default_runs_dir(), the one default
        help="results store (default ./runs)", envvar="BENCH_RUNS_DIR")
    cache_dir: Path | None = option(  # None: harness.data.default_cache_dir()
        help="teacher, data and stage cache (default ~/.cache/wsss-bench)", envvar="BENCH_CACHE_DIR")
    wandb_mode: str | None = option(  # None: $WANDB_MODE, else offline (harness.tracking)
        help="offline (default), online or disabled; WANDB_MODE respected", flag="--wandb")
    irn_weights: Path | None = option(
        help="--masks irn: a trained IRN checkpoint (this harness's irn.pt or IRN's "
        "res50_irn.pth) instead of training one", config=True,
        read_when=reads.IRN_WEIGHTS)
    masks: str | None = option(  # resolved into RunConfig.masks by harness.runner.resolve_config
        help="pseudo masks from the CAMs: irn, crf or none (default: the family's reference "
        "pipeline on voc/coco, none on synth; docs/masks.md)")
    mask_sets: tuple[str, ...] = option(
        (), "a pseudo-mask setting: key=value (repeatable; see `bench list --settings`)",
        flag="--mask-set")
    segment: str | None = option(  # resolved into RunConfig.segment by harness.runner.resolve_config
        help="train this segmentation model on the run's pseudo masks of the training split and "
        "score it on val (deeplabv2, …; none: no segmentation stage, the default; "
        "docs/segmentation.md)")
    seg_weights: Path | None = option(help="--segment: the segmentation model's init (a local "
                                      "weights file)")

    def __post_init__(self) -> None:
        # Typer hands a list (or None): a tuple keeps the options hashable and picklable as is
        object.__setattr__(self, "mask_sets", tuple(self.mask_sets or ()))

    def inputs(self) -> dict[str, Any]:
        """The data, weights and pseudo masks, as `harness.runner.resolve_config(**inputs)`
        takes them."""
        return {**{f.name: getattr(self, f.name) for f in config_fields()},
                "masks": self.masks, "mask_sets": list(self.mask_sets), "segment": self.segment,
                "seg_weights": self.seg_weights}

    def run_kwargs(self) -> dict[str, Any]:
        """Everything `harness.runner.run_variant` takes from these options, as keywords."""
        return {"runs_dir": self.runs_dir, "cache_dir": self.cache_dir,
                "wandb_mode": self.wandb_mode, **self.inputs()}

    def absolute(self) -> RunOptions:
        """Paths resolved against this process's cwd: a worker or a Slurm job may start
        elsewhere. The runs dir is made explicit (its default read once, here)."""
        from harness.store import default_runs_dir

        paths = {f.name: Path(v).expanduser().resolve() for f in dataclasses.fields(self)
                 if f.name != "runs_dir" and kind_of(f) is Path
                 and (v := getattr(self, f.name)) is not None}
        return dataclasses.replace(self, **paths,
                                   runs_dir=Path(self.runs_dir or default_runs_dir()).resolve())

    @property
    def runs_root(self) -> Path:
        from harness.store import default_runs_dir

        return Path(self.runs_dir or default_runs_dir())

    def to_argv(self) -> list[str]:
        """These options as `add_arguments` parses them (a worker's command line)."""
        argv: list[str] = []
        for f in dataclasses.fields(self):
            value, flag = getattr(self, f.name), flag_of(f)
            if isinstance(value, bool):
                argv += [flag] if value else []
            elif isinstance(value, tuple):
                argv += [a for item in value for a in (flag, item)]
            elif value is not None:
                argv += [flag, str(value)]
        return argv

    @staticmethod
    def add_arguments(ap: argparse.ArgumentParser) -> None:
        for f in dataclasses.fields(RunOptions):
            kind = kind_of(f)
            if kind is bool:
                ap.add_argument(flag_of(f), dest=f.name, action="store_true")
            elif kind is tuple:
                ap.add_argument(flag_of(f), dest=f.name, action="append", default=[])
            else:
                ap.add_argument(flag_of(f), dest=f.name, type=kind, default=None)

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace) -> RunOptions:
        return cls(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(cls)})


def flag_of(f: dataclasses.Field) -> str:
    """A field's command-line flag: its own, or --field-name."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def kind_of(f: dataclasses.Field) -> type:
    """bool, tuple (a repeatable option), Path or str: how the field is read from argv."""
    hint = typing.get_type_hints(RunOptions)[f.name]
    if hint is bool or typing.get_origin(hint) is tuple:
        return bool if hint is bool else tuple
    return Path if Path in typing.get_args(hint) else str


def config_fields() -> list[dataclasses.Field]:
    """The options that are inputs of the run: `RunConfig` holds each (paths as str)."""
    return [f for f in dataclasses.fields(RunOptions) if f.metadata["config"]]


# the inputs that are files or folders (resolved against the cwd, checked, hashed)
INPUT_PATHS = tuple(f.name for f in config_fields() if kind_of(f) is Path)
