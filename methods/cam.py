"""`cam`: the multi-label classifier CAM baseline.

A classifier trained with the multi-label soft-margin loss on image labels; its CAM is
the ReLU of the classifier weights applied to the last feature map. Its checkpoint is a
cached stage: CLIMS and QA-CLIMS start from it, as their reference code does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.generator import CamNet, build_generator
from harness.loop import Stage, train_stage
from harness.method import Method, RunContext
from harness.registry import register_method

# The CAM stage is one checkpoint shared by every method that starts from it, so it trains
# with its own settings (cam_lr, cam_epochs and this head multiplier, the IRN reference's
# 10×), never with the downstream method's optimizer settings.
CAM_HEAD_LR_MULT = 10.0


def cam_stage_deps(ctx: RunContext) -> dict:
    p = ctx.params
    return {"data": ctx.data_key(), "backbone": p.backbone, "epochs": p.cam_epochs,
            "lr": p.cam_lr, "head_lr_mult": CAM_HEAD_LR_MULT, "batch_size": p.batch_size,
            "seed": ctx.cfg.seed, "backbone_weights": ctx.cfg.backbone_weights}


def new_generator(ctx: RunContext) -> CamNet:
    return build_generator(ctx.params.backbone, len(ctx.dataset("train").class_names),
                           ctx.cfg.backbone_weights, ctx.cfg.allow_random_weights).to(ctx.device)


def classification_loss(model: CamNet, batch: dict):
    images = batch["image"]
    if torch.rand(()) < 0.5:
        images = images.flip(-1)
    loss = F.multilabel_soft_margin_loss(model(images), batch["labels"])
    return loss, {}


def trained_cam(ctx: RunContext) -> tuple[CamNet, str]:
    """The CAM classifier of this run's data and seed, trained once and cached."""
    p = ctx.params

    def build(folder):
        model = new_generator(ctx)  # initialised from the stage's own seed
        stage = Stage("cam", key, {"generator": model},
                      model.param_groups(p.cam_lr, CAM_HEAD_LR_MULT),
                      lambda b: classification_loss(model, b), p.cam_epochs,
                      optimizer="sgd", schedule="poly", weight_decay=1e-4)
        train_stage(ctx, stage)
        torch.save(model.state_dict(), folder / "generator.pt")

    from harness.cache import stage_key

    deps = cam_stage_deps(ctx)
    key = stage_key("cam", deps)
    folder, key = ctx.stages.get_or_build("cam", deps, build)
    model = new_generator(ctx)
    model.load_state_dict(torch.load(folder / "generator.pt", map_location=ctx.device))
    return model.eval(), key


@register_method
class Cam(Method):
    """Multi-label classifier CAM (the baseline every CLIP-guided method starts from)."""

    name = "cam"
    needs_teacher = False
    epochs_field = "cam_epochs"

    @classmethod
    def dataset_defaults(cls, dataset: str) -> dict:
        from harness.data.paper_settings import shared_defaults

        return shared_defaults("cam", dataset)

    def train(self, ctx: RunContext) -> CamNet:
        return trained_cam(ctx)[0]
