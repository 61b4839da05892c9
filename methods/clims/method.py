"""`clims`: CLIMS (CVPR'22), cross-language image matching with manual background prompts.

The mask generator starts from the cached CAM classifier (`trained_cam`), as the reference
code does; masks are the sigmoid of its maps upsampled to the image. Losses over positive
pairs (CLIMS, CVPR'22, Eq. 1-5; CVI-SZU/CLIMS step/train_clims.py):

    L = w_otm·L_OTM + w_btm·L_BTM + w_cbs·L_CBS + w_reg·L_REG
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from harness.config import hp
from harness.data import background_texts
from harness.data.augment import flipped
from harness.generator import CamNet
from harness.generator_stage import StageOptim, Trainable, load_module, train_generator_stage
from harness.method import Method, RunContext
from harness.registry import register_method
from harness.stages import StageSpec
from harness.wording import photo_prompt
from methods.cam.method import CamConfig, trained_cam
from methods.clims.paper import PAPER
from methods.clip_losses import (
    SIM_MAX,
    SIM_MIN,
    encode_fg_bg,
    mean_or_zero,
    neg_log,
    neg_log1m,
    pair_sim,
    positive_pairs,
    to_image,
)

# Background prompts, written by hand per dataset as the CLIMS authors wrote theirs: VOC's
# is the reference code's list. A dataset may declare its own (harness.data.background_texts:
# a folder's background.txt; synth its context words) and one that declares none and has no
# list here gets the harness's generic set. On synth, synonyms of the context words (sea,
# river, clouds, field, track, street) were tried first and dropped: the tiny synth teacher
# never saw them in a caption, their text features are arbitrary and sit at cosine 0.5-0.8 to
# class prompts ("a photo of bird." vs "a photo of field." 0.79), so L_CBS suppressed the
# objects themselves (bird, boat, cow, train IoU 0 on synth). Real CLIP knows every word of
# the VOC list, so this is a limit of the tiny teacher's vocabulary.
BACKGROUND_WORDS = {
    "voc": ("tree", "river", "sea", "lake", "water", "railway", "railroad", "track",
            "stone", "rocks"),
}
# COCO: the reference code reuses the VOC list for COCO.
BACKGROUND_WORDS["coco"] = BACKGROUND_WORDS["voc"]


# "a photo of {name}." A class's name comes from RunContext.prompt_names(): `class_names=clims`
# reproduces the reference's "player" for person (CVI-SZU/CLIMS clip_utils.py), `voc` says
# "person". Background words go into the same template.
class_prompt = background_prompt = photo_prompt


@dataclass(frozen=True)
class ClimsConfig(CamConfig):
    """CLIMS settings; the loss weights are the reference code's."""

    w_otm: float = hp(10.0, "weight of L_OTM (object-text matching)", ge=0)
    w_btm: float = hp(24.0, "weight of L_BTM (background-text matching)", ge=0)
    w_cbs: float = hp(1.0, "weight of L_CBS (co-occurring background suppression)", ge=0)
    w_reg: float = hp(0.2, "weight of L_REG (area regulariser)", ge=0)
    loss_replicas: int = hp(1, "data-parallel replicas the reference averages gradients over: "
                            "the summed L_CBS is divided by it (CLIMS: DataParallel, one loss "
                            "over the whole batch = 1)", ge=1)
    cbs_threshold: float = hp(0.26, "L_CBS acts only where sim(fg, bg prompt) exceeds this "
                              "(real CLIP's scale; a teacher with its own `cbs_gate` overrides it)",
                              ge=-1, le=1)

    def optimisation(self) -> dict[str, Any]:
        return {**super().optimisation(), "loss_replicas": self.loss_replicas}


def clims_losses(vf: torch.Tensor, vb: torch.Tensor, text: torch.Tensor, bg_text: torch.Tensor,
                 maps: torch.Tensor, threshold: float) -> dict[str, torch.Tensor]:
    """The four CLIMS losses, vectorised over the P positive pairs.

    vf, vb: (P, D) foreground / background image features; text: (P, D) the pair's class
    text feature t_k; bg_text: (B_bg, D) background prompt features; maps: the generator's
    sigmoid maps at feature resolution (L_REG = torch.mean(x) of net/resnet50_clims.py's
    output, train_clims.py:162, before any upsampling).
    L_OTM, L_BTM: means over pairs. L_CBS: the SUM over every pair of the batch and every
    prompt (Σ_k Σ_b), not divided by images, as the reference does
    (CVI-SZU/CLIMS clip_loss.py BackgroundSuppressionLoss returns `.sum()` over all the
    batch's foreground crops, step/train_clims.py); so, as there, its weight grows with the
    batch. The gate 1[sim > threshold] reads the unclamped similarity.
    """
    otm = mean_or_zero(neg_log(pair_sim(vf, text)))
    btm = mean_or_zero(neg_log1m(pair_sim(vb, text)))
    raw = vf.float() @ bg_text.float().T
    gate = (raw > threshold).float()
    cbs = (neg_log1m(raw.clamp(SIM_MIN, SIM_MAX)) * gate).sum()
    reg = maps.mean()
    return {"otm": otm, "btm": btm, "cbs": cbs, "reg": reg}


def sigmoid_maps(model: CamNet, images: torch.Tensor) -> torch.Tensor:
    """x = σ(CAM) at feature resolution, what the reference's CLIMS network returns."""
    return torch.sigmoid(model.maps(images).float())


def cbs_gate(teacher, p: ClimsConfig) -> float:
    """The L_CBS gate on the teacher's similarity scale.

    0.26 (COCO 0.285) lives on real CLIP ViT-B/32's scale; a teacher whose scale differs
    (the embedded synth CLIP) carries its own gate, mapped by the rule stated where it is
    built (`teacher.cbs_gate`); real CLIP has none and the configured value holds.
    """
    gate = getattr(teacher, "cbs_gate", None)
    return p.cbs_threshold if gate is None else float(gate)


def clims_step(model: CamNet, teacher, batch: dict, text: torch.Tensor, bg_text: torch.Tensor,
               p: ClimsConfig, gate: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    images, labels = flipped(batch), batch["labels"]
    maps = sigmoid_maps(model, images)
    masks = to_image(maps, images.shape[-2:], p.align_corners)
    n, k = positive_pairs(labels)
    vf, vb = encode_fg_bg(teacher, images, masks, n, k)  # one image-encoder call
    parts = clims_losses(vf, vb, text[k], bg_text, maps, gate)
    return clims_objective(parts, p), parts


def clims_objective(parts: dict[str, torch.Tensor], p: ClimsConfig) -> torch.Tensor:
    """L = w_otm·L_OTM + w_btm·L_BTM + w_cbs·L_CBS / loss_replicas + w_reg·L_REG: the
    per-step scale of the reference, where L_CBS is a sum over one replica's batch and
    data-parallel training averages the replicas' gradients (paper.py: per dataset)."""
    return (p.w_otm * parts["otm"] + p.w_btm * parts["btm"]
            + p.w_cbs * parts["cbs"] / p.loss_replicas + p.w_reg * parts["reg"])


# what the CLIMS stage reads: its optimisation (the generator's: epochs, lr, optimizer,
# schedule, weight decay, momentum, head multiplier), and the loss weights and scale, the
# resampling, the batch (the loader's) and the L_CBS threshold (`cbs_gate`)
CLIMS_OPTIM = StageOptim()
CLIMS_STAGE_SETTINGS = ("batch_size", "w_otm", "w_btm", "w_cbs", "w_reg", "cbs_threshold",
                        "loss_replicas", "align_corners")


@register_method
class Clims(Method):
    """CLIMS: CLIP matching of sigmoid-masked crops with manual background prompts."""

    name = "clims"
    paper = PAPER
    config_cls = ClimsConfig
    epoch_fields = {"cam": "cam_epochs", "clims": "epochs"}

    @classmethod
    def context_losses(cls) -> dict:
        """The CLIMS loss of one mask at the paper's VOC weights, its L_CBS at the teacher's
        gate, the context prompts as background prompts (the synth teacher's pair gate)."""
        p = cls.config_cls(**cls.dataset_defaults("voc"))

        def clims(x) -> torch.Tensor:
            return clims_objective(clims_losses(x.vf, x.vb, x.uf, x.bg_texts, x.masks, x.cbs_gate), p)

        return {"clims": clims}

    def train(self, ctx: RunContext) -> CamNet:
        p: ClimsConfig = ctx.params
        model, cam_key = trained_cam(ctx)
        teacher = ctx.teacher
        names = ctx.prompt_names()
        text = teacher.encode_text([class_prompt(c) for c in names])  # once per run
        words = background_texts(ctx.dataset("train"), BACKGROUND_WORDS)
        bg_text = teacher.encode_text([background_prompt(w) for w in words])
        gate = cbs_gate(teacher, p)
        ctx.log(f"clims: L_CBS gate {gate:.4g} on this teacher's similarity scale")
        # the gate follows from the teacher (its key) and cbs_threshold, both in the key
        spec = StageSpec("clims", settings=CLIMS_STAGE_SETTINGS,
                         inputs={"data": ctx.data_key(), "seed": ctx.cfg.seed, "cam": cam_key,
                                 "teacher": ctx.teacher_key(), "bg_words": words})

        def setup(_) -> Trainable:
            p = ctx.params  # the settings the stage declares
            return Trainable({"generator": model},
                             lambda b: clims_step(model, teacher, b, text, bg_text, p, gate))

        folder, _ = train_generator_stage(ctx, spec, CLIMS_OPTIM, setup)
        return load_module(ctx, folder, model).eval()
