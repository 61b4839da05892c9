"""A trained stage declared once: its optimisation (`StageOptim`) and what it trains.

Each stage of a family that trains something (the CAM classifier, CLIMS, QA-CLIMS, SemPLeS's
three) says once how it optimises: for each of epochs, lr, optimizer, schedule, weight decay,
momentum and the head's lr multiplier, the setting that holds it (read from the run's
settings, so part of the stage's declared settings and its key) or a `Fixed` value of the
stage's own. `train_generator_stage` builds the loop's `Stage` from that declaration, trains
it through the stage cache (`RunContext.stage`: trained once per key, then reused), saves
the modules it keeps and returns the stage's folder; `load_module` loads one back.

`StageOptim()` names the settings of harness.config.GeneratorConfig, a family's that trains a
mask generator: its main stage's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.loop import LossFn, Stage, train_stage
from harness.method import RunContext
from harness.stages import StageSpec


@dataclass(frozen=True)
class Fixed:
    """A stage's own optimisation value, not a setting: in its key only where the stage
    lists it among its inputs."""

    value: Any


Source = str | Fixed | None  # a setting's name, a fixed value, or (epochs) given per call


@dataclass(frozen=True)
class StageOptim:
    """How one stage optimises, declared once. Each entry names the setting that holds it or
    is `Fixed`; `epochs=None`: the caller gives them (a value it resolved, such as one round's
    share), and they enter the key as the input `epochs`. The defaults: GeneratorConfig's."""

    epochs: Source = "epochs"
    lr: Source = "lr"
    optimizer: Source = "optimizer"
    schedule: Source = "schedule"
    weight_decay: Source = "weight_decay"
    momentum: Source = "momentum"
    head_lr_mult: Source = "head_lr_mult"

    def settings(self) -> tuple[str, ...]:
        """The settings this declaration reads (so the stage's key covers them)."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self)
                     if isinstance(getattr(self, f.name), str))

    def resolve(self, params: Any, epochs: int | None = None) -> Optim:
        """The values, read from `params` (the stage's declared settings)."""
        def value(name: str) -> Any:
            src = getattr(self, name)
            return src.value if isinstance(src, Fixed) else None if src is None else getattr(params, src)

        values = {f.name: value(f.name) for f in dataclasses.fields(self)}
        if epochs is not None:
            values["epochs"] = epochs
        return Optim(**values)


@dataclass(frozen=True)
class Optim:
    """A `StageOptim` resolved: the values the stage trains with."""

    epochs: int
    lr: float
    optimizer: str
    schedule: str
    weight_decay: float
    momentum: float
    head_lr_mult: float | None


@dataclass
class Trainable:
    """What a stage trains: its modules, its loss, and (None) the generator's parameter groups
    at the stage's lr and head multiplier, and the run's training loader."""

    modules: dict[str, nn.Module]
    loss_fn: LossFn
    groups: list[dict] | None = None
    batches: Callable[[int], Iterable[dict]] | None = None


def stage_spec(spec: StageSpec, optim: StageOptim, epochs: int | None = None) -> StageSpec:
    """`spec` with the settings `optim` reads (and the caller's `epochs` as an input)."""
    if (optim.epochs is None) == (epochs is None):
        raise ValueError(f"stage {spec.name}: epochs come from the declaration or the call, once")
    inputs = dict(spec.inputs) if epochs is None else {**spec.inputs, "epochs": epochs}
    return StageSpec(spec.name, (*spec.settings, *optim.settings()), inputs)


def train_generator_stage(ctx: RunContext, spec: StageSpec, optim: StageOptim,
                          setup: Callable[[Optim], Trainable], keep: tuple[str, ...] = ("generator",),
                          epochs: int | None = None) -> tuple[Path, str]:
    """(folder, key) of the stage `spec` trained with `optim`: from the cache, or on a miss
    `setup(optim values)` gives what trains, the loop trains it and `keep`'s modules are
    saved as `<name>.pt`. `setup` runs inside the build, reading only declared settings."""
    spec = stage_spec(spec, optim, epochs)
    key = spec.key(ctx.cfg.params)

    def build(folder: Path) -> None:
        o = optim.resolve(ctx.params, epochs)
        t = setup(o)
        groups = t.groups if t.groups is not None else t.modules["generator"].param_groups(
            o.lr, o.head_lr_mult)
        train_stage(ctx, Stage(spec.name, key, t.modules, groups, t.loss_fn, o.epochs,
                               optimizer=o.optimizer, schedule=o.schedule,
                               weight_decay=o.weight_decay, momentum=o.momentum,
                               batches=t.batches))
        for name in keep:
            torch.save(t.modules[name].state_dict(), folder / f"{name}.pt")

    return ctx.stage(spec, build)


def load_module(ctx: RunContext, folder: Path, module: nn.Module, name: str = "generator") -> nn.Module:
    """`module` with the state a stage saved as `<name>.pt` (checked against its manifest)."""
    module.load_state_dict(ctx.stages.load(folder, f"{name}.pt", ctx.device))
    return module
