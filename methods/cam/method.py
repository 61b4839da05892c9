"""`cam`: the multi-label classifier CAM baseline.

A classifier trained with the multi-label soft-margin loss on image labels; its CAM is
the ReLU of the classifier weights applied to the last feature map. Its checkpoint is a
cached stage: CLIMS and QA-CLIMS start from it, as their reference code does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.data.augment import flipped
from harness.generator import CamNet, build_generator
from harness.loop import Stage, train_stage
from harness.method import Method, RunContext
from harness.registry import register_method
from harness.stages import StageSpec
from methods.cam.paper import PAPER

# The CAM stage is one checkpoint shared by every method that starts from it, so it trains
# with its own settings (cam_lr, cam_epochs and this head multiplier, the IRN reference's
# 10×), never with the downstream method's optimizer settings.
CAM_HEAD_LR_MULT = 10.0


def cam_stage_spec(ctx: RunContext) -> StageSpec:
    """The CAM stage reads its own settings; its batch and crop resolved (0 = the method's),
    so every method asking for one (dataset, seed) shares one baseline."""
    own = ctx.cam_stage_settings()
    return StageSpec("cam", settings=("backbone", "cam_epochs", "cam_lr", "cam_momentum"),
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
    own = ctx.cam_stage_settings()
    spec = cam_stage_spec(ctx)
    key = spec.key(ctx.cfg.params)

    def build(folder):
        p = ctx.params  # the settings `spec` declares
        model = new_generator(ctx)  # initialised from the stage's own seed
        stage = Stage("cam", key, {"generator": model},
                      model.param_groups(p.cam_lr, CAM_HEAD_LR_MULT),
                      lambda b: classification_loss(model, b), p.cam_epochs,
                      optimizer="sgd", schedule="poly", weight_decay=1e-4,
                      momentum=p.cam_momentum,  # IRN train_cam's PolyOptimizer: 1e-4
                      batches=lambda epoch: ctx.loader("train", own["batch_size"],
                                                       seed_offset=epoch,
                                                       crop_size=own["crop_size"]))
        train_stage(ctx, stage)
        torch.save(model.state_dict(), folder / "generator.pt")

    folder, key = ctx.stage(spec, build)
    model = new_generator(ctx)
    model.load_state_dict(ctx.stages.load(folder, "generator.pt", ctx.device))
    return model.eval(), key


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
    needs_teacher = False
    epoch_fields = {"cam": "cam_epochs"}

    def train(self, ctx: RunContext) -> CamNet:
        return trained_cam(ctx)[0]
