"""Typed, frozen run configuration.

A run's settings apply in this order, each later one winning (harness.runner.resolve_config,
tests/test_settings.py): the field defaults here, the family's dataset defaults (its paper's
settings on that dataset, methods/*/paper.py), the variant's overrides, --epochs (every
stage), then each --set.

Each method family subclasses `MethodConfig` (what every run reads) with its own settings
only: a family that trains a mask generator inherits the generator's optimisation
(GeneratorConfig; its stages train through harness.generator_stage) and, where it starts
from the cached CAM classifier, the CAM stage's settings (methods/cam). A field's
metadata carries its valid range (`ge`, `gt`, `le`, `lt`, `choices`) and a help line, so
one validator gives every out-of-range value the same one-line message.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.errors import BenchError
from harness.reads import LIMIT, ON_REAL_DATA, ON_SYNTH
from harness.run_options import config_fields, kind_of
from harness.synth.data import SynthSpec
from harness.wording import WORDINGS

_SYNTH = SynthSpec()


def hp(default: Any, help: str = "", **bounds: Any) -> Any:
    """A hyperparameter field with bounds (ge/gt/le/lt/choices) and a help line."""
    return field(default=default, metadata={"help": help, **bounds})


@dataclass(frozen=True)
class MethodConfig:
    """What every family's run reads: its data (the synth sizes, `limit`, the crop), the loader's
    batch and the teacher's architecture and wording. A family subclasses it with its own
    settings only (a family that trains a mask generator: GeneratorConfig; the CAM stage's
    settings are methods/cam's)."""

    # settings a family inherits from a shared declaration, not hyperparameters of its own
    # (RunConfig.hparams): a class with this True in its own body declares such settings
    shared_settings: ClassVar[bool] = True

    batch_size: int = hp(32, "images per step", ge=1)
    clip_arch: str = hp("ViT-B-32", "open_clip architecture of the teacher on real data",
                   read_when=ON_REAL_DATA)
    crop_size: int = hp(0, "training crop size on real data (0 = dataset default)", ge=0,
                    read_when=ON_REAL_DATA)
    # the embedded benchmark, its defaults those of harness.synth.data.SynthSpec
    p_cooccur: float = hp(_SYNTH.p_cooccur, "synth: probability an object sits on its context",
                          ge=0, le=1, read_when=ON_SYNTH)
    n_train: int = hp(_SYNTH.n_train, "synth: training images", ge=8, read_when=ON_SYNTH)
    n_eval: int = hp(_SYNTH.n_eval, "synth: evaluation images", ge=4, read_when=ON_SYNTH)
    image_size: int = hp(_SYNTH.image_size, "synth: image side in pixels", ge=32, le=256,
                     read_when=ON_SYNTH)
    teacher_seed: int = hp(0, "synth: training seed of the embedded teacher (another seed, "
                           "another teacher: how much a result owes to one teacher)", ge=0,
                           le=2**32 - 1, read_when=ON_SYNTH)
    limit: int = hp(0, "use only the first N images of each split (0 = all)", ge=0,
                read_when=LIMIT)
    class_names: str = hp("voc", "class wording in prompts and questions on voc/coco: voc "
                          "('person', 'dining table') or clims (the CLIMS code's: 'player')",
                          choices=WORDINGS, read_when=ON_REAL_DATA)

    def replace(self, **changes: Any) -> MethodConfig:
        return dataclasses.replace(self, **changes)

    def validate(self) -> MethodConfig:
        for f in dataclasses.fields(self):
            _check(f.name, getattr(self, f.name), f.metadata)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def optimisation(self) -> dict[str, Any]:
        """How the run's stages step, for its record (a family that trains nothing: its batch)."""
        return {"batch_size": self.batch_size}

    @classmethod
    def field_help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}

    @classmethod
    def shared_fields(cls) -> frozenset[str]:
        """The settings `cls` inherits from shared declarations (`shared_settings`), so not
        its family's own hyperparameters."""
        return frozenset(f.name for c in cls.__mro__ if c.__dict__.get("shared_settings")
                         for f in dataclasses.fields(c))


@dataclass(frozen=True)
class GeneratorConfig(MethodConfig):
    """A family that trains a mask generator: its backbone, the optimisation of its main
    stage (`StageOptim()`) and the resampling of the generator's maps."""

    shared_settings: ClassVar[bool] = True

    epochs: int = hp(6, "training epochs of the method's main stage", ge=1)
    lr: float = hp(0.01, "base learning rate", gt=0)
    weight_decay: float = hp(1e-4, "weight decay", ge=0)
    # IRN's misc/torchutils.py PolyOptimizer (used by IRN train_cam, CLIMS and QA-CLIMS) calls
    # `SGD.__init__(params, lr, weight_decay)`: the third positional argument of torch's SGD
    # is momentum, so the references train with momentum = weight_decay = 1e-4 (weight decay
    # comes from the param-group dicts) and their own `momentum=0.9` is only the poly power.
    momentum: float = hp(1e-4, "SGD momentum of the method's stages (1e-4: what the references' "
                         "PolyOptimizer really runs; 0.9 is what they evidently meant)", ge=0, lt=1)
    align_corners: bool = hp(True, "upsample the generator's maps to the image with "
                             "align_corners=True, as every reference does (False: ours before)")
    optimizer: str = hp("sgd", "optimizer", choices=("sgd", "adamw"))
    schedule: str = hp("poly", "learning-rate schedule", choices=("poly", "cosine", "constant"))
    head_lr_mult: float = hp(10.0, "learning-rate multiplier of the classifier head (the cached "
                             "CAM stage always uses its own 10×)", gt=0)
    backbone: str = hp("synth-cnn", "mask generator backbone (deit_small_weaktr: WeakTr's DeiT-S, "
                       "one CLS token per class and a 3×3 head, for its checkpoints)",
                       choices=("synth-cnn", "resnet50", "deit_small_patch16_224",
                                "deit_small_weaktr"))

    def optimisation(self) -> dict[str, Any]:
        """How the main stage steps and the maps resample (harness.runner.optimisation_record)."""
        return {"optimizer": self.optimizer, "schedule": self.schedule, "lr": self.lr,
                "batch_size": self.batch_size, "weight_decay": self.weight_decay,
                "momentum": self.momentum if self.optimizer == "sgd" else None,
                "align_corners": self.align_corners}


SEED_MAX = 2**32 - 1  # what numpy's and torch's seeding accept


def check_seed(value: int, name: str = "--seed") -> int:
    """A seed in 0 … 2³²−1, refused in one line before anything is made."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise BenchError(f"{name} must be an integer in 0 … {SEED_MAX} (got {value!r})")
    return value


def _check(name: str, value: Any, meta: typing.Mapping[str, Any]) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise BenchError(f"{name} must be a finite number (got {value})")
    if "choices" in meta and value not in meta["choices"]:
        raise BenchError(f"{name} must be one of {', '.join(map(str, meta['choices']))} (got {value!r})")
    tests = {"ge": (lambda v, b: v >= b, "≥"), "gt": (lambda v, b: v > b, ">"),
             "le": (lambda v, b: v <= b, "≤"), "lt": (lambda v, b: v < b, "<")}
    for key, (ok, sym) in tests.items():
        if key in meta and not ok(value, meta[key]):
            raise BenchError(f"{name} must be {sym} {meta[key]} (got {value})")


def split_sets(sets: list[str]) -> dict[str, str]:
    """`["lambda_refine=0.1", ...]` → {key: raw value}, the one reading of --set (a later
    item wins); an item without "=" is an error."""
    out: dict[str, str] = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep:
            raise BenchError(f"--set expects key=value (got {item!r})")
        out[key.strip()] = raw.strip()
    return out


def set_text(value: Any) -> str:
    """A value as `--set` writes it, which `parse_sets` reads back to the same value: a float
    exactly (the repr of a Python float: numpy's would name its type)."""
    return repr(float(value)) if isinstance(value, float) else str(value)


def set_item(key: str, value: Any) -> str:
    """`key=value` as `--set` takes it (`set_text`)."""
    return f"{key}={set_text(value)}"


def parse_sets(cls: type[MethodConfig], sets: list[str]) -> dict[str, Any]:
    """`["lambda_refine=0.1", ...]` → typed overrides; unknown keys and bad values are errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for key, raw in split_sets(sets).items():
        if key not in names:
            close = [n for n in sorted(names) if key.lower() in n.lower() or n.lower() in key.lower()]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise BenchError(f"unknown setting {key!r} for this method{hint} (see `bench list --settings`)")
        out[key] = _coerce(key, raw, hints[key])
    return out


def _coerce(key: str, raw: str, typ: Any) -> Any:
    try:
        if typ is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        value = typ(raw)
    except (TypeError, ValueError):
        raise BenchError(f"{key} expects a {getattr(typ, '__name__', typ)} (got {raw!r})") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise BenchError(f"{key} must be a finite number (got {raw!r})")
    return value


def _inputs_type(f: dataclasses.Field) -> Any:
    return bool if kind_of(f) is bool else str | None  # paths kept as str: JSON as is


# The run's inputs (data root, weights files, --allow-random-weights, ...) are the RunOptions
# fields marked `config`, made here from their one declaration (paths held as str)
RunInputs = dataclasses.make_dataclass(
    "RunInputs", [(f.name, _inputs_type(f), field(default=f.default)) for f in config_fields()],
    frozen=True, kw_only=True, namespace={"__module__": __name__})


@dataclass(frozen=True)
class RunConfig(RunInputs):
    """Everything that defines one run; `params` holds the method family's settings, the
    inherited RunInputs fields the run's inputs (`harness.run_options.RunOptions`)."""

    method: str
    variant: str
    dataset: str
    seed: int
    device: str
    params: MethodConfig
    threshold_split: str | None = None  # held-out labelled split that picks t (--threshold-split)
    # the pseudo-mask pipeline and its settings (harness.masks.settings.MaskSettings as a dict;
    # None: no masks); apart from `params`, so no upstream stage's key sees them
    masks: dict[str, Any] | None = None
    # --segment MODEL: the segmentation stage's request (harness.segment.stage.SegmentRequest
    # as a dict; None: --segment none), its seg_* settings apart from `params` as the masks'
    segment: dict[str, Any] | None = None
    # why the family's default pseudo masks were not made (harness.runner.default_masks)
    masks_fallback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["params"] = self.params.to_dict()
        return d

    def inputs(self) -> dict[str, Any]:
        """The run's inputs, as RunOptions names them."""
        return {f.name: getattr(self, f.name) for f in config_fields()}

    def hparams(self) -> dict[str, Any]:
        """The method's own hyperparameters (fields beyond the shared declarations)."""
        shared = self.params.shared_fields()
        return {k: v for k, v in self.params.to_dict().items() if k not in shared}
