"""Segmentation models: one registry, one small protocol every model implements.

A model is registered like a method variant, timm style:

    @register_seg_model("deeplabv2", recipes=("coco", "imagenet"))
    def deeplabv2(n_classes, settings, weights): ...

The factory takes the class count (background included), the resolved `SegSettings` and an
optional local weights file, and returns a `SegModel`. Model modules are imported on first
lookup (`MODEL_MODULES`), so asking for `deeplabv2` never imports `transformers`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from harness.errors import BenchError
from harness.segment.settings import SegSettings, resolve_seg_settings

IGNORE = 255  # the pseudo masks' and VOC's "not labelled" value

__all__ = ["IGNORE", "SegModel", "SegSettings", "get_seg_model", "register_seg_model",
           "resolve_seg_settings", "seg_model_names", "seg_model_spec"]


class SegModel(nn.Module):
    """What the segmentation stage needs from a model.

    - `forward(images)`: images (B, 3, H, W) normalised by `settings.normalize` → logits
      (B, K, h, w) at the model's own stride (the caller upsamples);
    - `loss(images, labels)`: labels LongTensor (B, H, W) with 255 = ignore, never counted →
      a scalar, the model's reference training loss for one forward (before ITER_SIZE);
    - `param_groups(settings)`: the optimiser's groups, each a dict with `params`, `lr_mult`
      and `weight_decay` (and a `name`), as the reference splits them;
    - `train(mode)`: keeps BatchNorm in eval mode where the recipe freezes it.
    """

    frozen_bn: bool = False

    def loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def param_groups(self, settings: SegSettings) -> list[dict]:
        raise NotImplementedError

    def freeze_bn(self, frozen: bool = True) -> None:
        """BatchNorm in eval mode and out of the optimiser (KZ deeplabv2.py freeze_bn, CL main.py
        get_params returns conv parameters only)."""
        self.frozen_bn = frozen
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.requires_grad_(not frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> SegModel:
        super().train(mode)
        if self.frozen_bn:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self


Factory = Callable[[int, SegSettings, "Path | None"], SegModel]


@dataclass(frozen=True)
class SegModelSpec:
    name: str
    factory: Factory
    recipes: tuple[str, ...]  # the first is the default
    summary: str
    # whether its init is a pretrained file (--seg-weights); False: random init by design
    # (deeplab-synth), so --allow-random-weights is neither needed nor read by it
    pretrained: bool = True

    @property
    def default_recipe(self) -> str:
        return self.recipes[0]

    def settings(self, sets: list[str] = ()) -> SegSettings:
        """This model's settings: its default recipe, `seg_recipe`, then each `--set`."""
        return resolve_seg_settings(self.default_recipe, sets, self.recipes)


_MODELS: dict[str, SegModelSpec] = {}
# where each built-in model is declared; imported on first lookup of its name
MODEL_MODULES = {"deeplabv2": "harness.segment.deeplabv2",
                 "mask2former": "harness.segment.mask2former",
                 "segmenter": "harness.segment.segmenter",
                 "deeplab-synth": "harness.segment.synth_model"}


def register_seg_model(name: str, recipes: tuple[str, ...], summary: str = "",
                       pretrained: bool = True) -> Callable[[Factory], Factory]:
    """Declare a model: `name` → `factory(n_classes, settings, weights)`; `recipes[0]` is its
    default recipe (harness.segment.settings.RECIPES); `pretrained=False` for a model that
    starts from random init by design."""
    def deco(fn: Factory) -> Factory:
        if name in _MODELS and _MODELS[name].factory is not fn:
            raise ValueError(f"segmentation model {name!r} registered twice")
        _MODELS[name] = SegModelSpec(name, fn, tuple(recipes), summary or (fn.__doc__ or "").strip(),
                                     pretrained)
        return fn
    return deco


def seg_model_names() -> list[str]:
    for module in MODEL_MODULES.values():
        _import(module)
    return sorted(_MODELS)


def seg_model_spec(name: str) -> SegModelSpec:
    if name not in _MODELS and name in MODEL_MODULES:
        _import(MODEL_MODULES[name])
    if name not in _MODELS:
        raise BenchError(f"unknown segmentation model {name!r}; known: {', '.join(seg_model_names())}")
    return _MODELS[name]


def get_seg_model(name: str) -> Factory:
    """The factory of model `name`: `factory(n_classes, settings, weights) -> SegModel`."""
    return seg_model_spec(name).factory


def _import(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:  # an optional dependency of that one model
        raise BenchError(f"segmentation model module {module} needs {exc.name}: {exc}") from None


def own_loss_only(name: str, settings: SegSettings) -> None:
    """A model with its own loss refuses a seg_loss it would not read."""
    if settings.seg_loss != "ce":
        raise BenchError(f"{name} trains with its own loss; seg_loss={settings.seg_loss} applies "
                         "to deeplabv2 only")


def missing_weights(name: str, allow_random: bool, weights: Path | None) -> None:
    """No init file: random init only where the run allows random weights, else one line."""
    if weights is None and not allow_random:
        raise BenchError(f"{name} needs --seg-weights FILE (its init); or pass "
                         "--allow-random-weights to train from random init")
    if weights is not None and not Path(weights).is_file():
        raise BenchError(f"--seg-weights {weights}: no such file")
