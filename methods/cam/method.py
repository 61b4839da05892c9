"""`cam`: the multi-label classifier CAM baseline.

A classifier trained with the multi-label soft-margin loss on image labels; its CAM is
the ReLU of the classifier weights applied to the last feature map. Its checkpoint is a
cached stage: CLIMS and QA-CLIMS start from it, as their reference code does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch.nn.functional as F

from harness.config import GeneratorConfig, hp
from harness.data.augment import flipped
from harness.generator import CamNet, build_generator
from harness.generator_stage import (
    Fixed,
    StageOptim,
    Trainable,
    load_module,
    stage_spec,
    train_generator_stage,
)
from harness.method import Method, RunContext
from harness.reads import ON_REAL_DATA
from harness.registry import register_method
from harness.stages import StageSpec
from methods.cam.paper import PAPER


@dataclass(frozen=True)
class CamConfig(GeneratorConfig):
    """The cached CAM classifier stage's own settings (every family that starts from it
    inherits them: one baseline per dataset and seed, whichever method asks)."""

    shared_settings: ClassVar[bool] = True

    # `unread_with`: with --cam-weights the stage loads that file and trains nothing, so a
    # --set of these is refused there (harness.reads.refuse_unread_with)
    cam_epochs: int = hp(16, "epochs of the cached CAM classifier stage", ge=1,
                         unread_with="cam_weights")
    cam_lr: float = hp(0.05, "learning rate of the cached CAM classifier stage", gt=0,
                       unread_with="cam_weights")
    cam_batch_size: int = hp(0, "images per step of the cached CAM stage (0 = batch_size)", ge=0,
                             unread_with="cam_weights")
    cam_momentum: float = hp(1e-4, "SGD momentum of the cached CAM stage (IRN train_cam's "
                             "PolyOptimizer really runs 1e-4, see `momentum`)", ge=0, lt=1,
                             unread_with="cam_weights")
    cam_crop_size: int = hp(0, "training crop of the cached CAM stage on real data "
                            "(0 = crop_size)", ge=0, read_when=ON_REAL_DATA,
                            unread_with="cam_weights")

    def cam_stage(self) -> dict[str, Any]:
        """The CAM stage's own batch and crop (0 = the method's), resolved."""
        return {"batch_size": self.cam_batch_size or self.batch_size,
                "crop_size": self.cam_crop_size or self.crop_size}

    def optimisation(self) -> dict[str, Any]:
        return {**super().optimisation(),
                "cam_stage": {"optimizer": CAM_OPTIM.optimizer.value, "lr": self.cam_lr,
                              "momentum": self.cam_momentum,
                              "batch_size": self.cam_stage()["batch_size"]}}


# The CAM stage is one checkpoint shared by every method that starts from it, so it trains
# with its own settings (cam_lr, cam_epochs, cam_momentum) and IRN train_cam's fixed recipe
# (SGD poly, weight decay 1e-4, head 10×), never with the downstream method's optimizer.
# momentum: IRN train_cam's PolyOptimizer really runs 1e-4 (harness.config GeneratorConfig).
CAM_OPTIM = StageOptim(epochs="cam_epochs", lr="cam_lr", momentum="cam_momentum",
                       optimizer=Fixed("sgd"), schedule=Fixed("poly"), weight_decay=Fixed(1e-4),
                       head_lr_mult=Fixed(10.0))
CAM_HEAD_LR_MULT = CAM_OPTIM.head_lr_mult.value


def cam_stage_spec(ctx: RunContext) -> StageSpec:
    """The CAM stage's full declaration (its key: tests/test_settings.py)."""
    return stage_spec(_cam_spec(ctx), CAM_OPTIM)


def _cam_spec(ctx: RunContext) -> StageSpec:
    """The CAM stage reads its own settings (and CAM_OPTIM's); its batch and crop resolved
    (0 = the method's), so every method asking for one (dataset, seed) shares one baseline."""
    own = ctx.cfg.params.cam_stage()
    return StageSpec("cam", settings=("backbone",),
                     inputs={"data": ctx.data_key(own["crop_size"]), "seed": ctx.cfg.seed,
                             "batch_size": own["batch_size"], "head_lr_mult": CAM_HEAD_LR_MULT,
                             "backbone_weights": ctx.cfg.backbone_weights})


def new_generator(ctx: RunContext) -> CamNet:
    return build_generator(ctx.params.backbone, len(ctx.dataset("train").class_names),
                           ctx.cfg.backbone_weights, ctx.cfg.allow_random_weights).to(ctx.device)


def classification_loss(model: CamNet, batch: dict):
    loss = F.multilabel_soft_margin_loss(model(flipped(batch)), batch["labels"])
    return loss, {}


def trained_cam(ctx: RunContext) -> tuple[CamNet, str]:
    """The CAM classifier of this run's data and seed, trained once and cached."""
    if ctx.cfg.cam_weights:  # a given baseline (e.g. the authors' res50_cam.pth): no training
        return given_cam(ctx)
    own = ctx.cfg.params.cam_stage()

    def setup(_) -> Trainable:
        model = new_generator(ctx)  # initialised from the stage's own seed
        return Trainable({"generator": model}, lambda b: classification_loss(model, b),
                         batches=lambda epoch: ctx.loader("train", own["batch_size"],
                                                          seed_offset=epoch,
                                                          crop_size=own["crop_size"]))

    folder, key = train_generator_stage(ctx, _cam_spec(ctx), CAM_OPTIM, setup)
    return load_module(ctx, folder, new_generator(ctx)).eval(), key


def given_cam(ctx: RunContext) -> tuple[CamNet, str]:
    """The CAM classifier from `--cam-weights FILE`; its key is the file's sha256, so every
    stage trained from it is keyed by that exact checkpoint."""
    from harness.cam_checkpoint import load_cam_checkpoint

    model = build_generator(ctx.params.backbone, len(ctx.dataset("train").class_names),
                            allow_random=True)  # every tensor comes from the checkpoint
    sha = load_cam_checkpoint(model, ctx.cfg.cam_weights)  # result.json: provenance's hash
    ctx.log(f"cam: baseline from {ctx.cfg.cam_weights} (sha256 {sha[:16]}), not trained")
    return model.to(ctx.device).eval(), f"file:{sha}"


@register_method
class Cam(Method):
    """Multi-label classifier CAM (the baseline every CLIP-guided method starts from)."""

    name = "cam"
    paper = PAPER
    config_cls = CamConfig
    needs_teacher = False
    epoch_fields = {"cam": "cam_epochs"}

    def train(self, ctx: RunContext) -> CamNet:
        return trained_cam(ctx)[0]
