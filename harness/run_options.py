"""The options a run takes from outside its config: where the data and the weights are,
which pseudo masks it makes (docs/masks.md), where results and caches go, how W&B mirrors it.

One definition for every way a run starts: `bench run`, a sweep trial (in a local worker
process or a Slurm job), a `bench reproduce` cell. `cli/options.py` declares the matching
command-line options once; `to_argv`/`add_arguments` carry them to a worker process.
Torch-free: launchers build it before any worker imports torch.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the fields a run resolves into its RunConfig (`harness.runner.resolve_config(**inputs)`)
INPUT_PATHS = ("data_root", "clip_weights", "backbone_weights", "vqa_path", "cam_weights",
               "irn_weights")


@dataclass(frozen=True)
class RunOptions:
    data_root: Path | None = None
    clip_weights: Path | None = None
    backbone_weights: Path | None = None
    vqa_path: Path | None = None
    cam_weights: Path | None = None
    allow_random_weights: bool = False
    runs_dir: Path | None = None  # None: harness.store.default_runs_dir(), the one default
    cache_dir: Path | None = None  # None: harness.data.default_cache_dir()
    wandb_mode: str | None = None  # None: $WANDB_MODE, else offline (harness.tracking)
    irn_weights: Path | None = None  # --masks irn: a trained IRN instead of training one
    masks: str | None = None  # irn, crf or none; None: the family's pipeline on this dataset
    mask_sets: tuple[str, ...] = ()  # --mask-set key=value, in order

    def __post_init__(self) -> None:
        # Typer hands a list (or None): a tuple keeps the options hashable and picklable as is
        object.__setattr__(self, "mask_sets", tuple(self.mask_sets or ()))

    def inputs(self) -> dict[str, Any]:
        """The data, weights and pseudo masks, as `harness.runner.resolve_config(**inputs)`
        takes them."""
        return {**{k: getattr(self, k) for k in INPUT_PATHS},
                "allow_random_weights": self.allow_random_weights,
                "masks": self.masks, "mask_sets": list(self.mask_sets)}

    def run_kwargs(self) -> dict[str, Any]:
        """Everything `harness.runner.run_variant` takes from these options, as keywords."""
        return {"runs_dir": self.runs_dir, "cache_dir": self.cache_dir,
                "wandb_mode": self.wandb_mode, **self.inputs()}

    def absolute(self) -> RunOptions:
        """Paths resolved against this process's cwd: a worker or a Slurm job may start
        elsewhere. The runs dir is made explicit (its default read once, here)."""
        from harness.store import default_runs_dir

        paths = {k: (Path(v).expanduser().resolve() if v is not None else None)
                 for k, v in ((f, getattr(self, f)) for f in (*INPUT_PATHS, "cache_dir"))}
        return dataclasses.replace(self, **paths,
                                   runs_dir=Path(self.runs_dir or default_runs_dir()).resolve())

    @property
    def runs_root(self) -> Path:
        from harness.store import default_runs_dir

        return Path(self.runs_dir or default_runs_dir())

    def to_argv(self) -> list[str]:
        """These options as `add_arguments` parses them (a worker's command line)."""
        argv: list[str] = []
        for f in (*INPUT_PATHS, "runs_dir", "cache_dir", "wandb_mode"):
            value = getattr(self, f)
            if value is not None:
                argv += [_flag(f), str(value)]
        if self.allow_random_weights:
            argv.append("--allow-random-weights")
        if self.masks is not None:
            argv += ["--masks", self.masks]
        for value in self.mask_sets:
            argv += ["--mask-set", value]
        return argv

    @staticmethod
    def add_arguments(ap: argparse.ArgumentParser) -> None:
        for f in (*INPUT_PATHS, "runs_dir", "cache_dir"):
            ap.add_argument(_flag(f), dest=f, type=Path, default=None)
        ap.add_argument(_flag("wandb_mode"), dest="wandb_mode", default=None)
        ap.add_argument("--allow-random-weights", dest="allow_random_weights", action="store_true")
        ap.add_argument("--masks", dest="masks", default=None)
        ap.add_argument("--mask-set", dest="mask_sets", action="append", default=[])

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace) -> RunOptions:
        return cls(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(cls)})


def _flag(field: str) -> str:
    return "--wandb" if field == "wandb_mode" else "--" + field.replace("_", "-")
