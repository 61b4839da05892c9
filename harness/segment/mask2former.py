"""Mask2Former (SemPLeS Table 2's headline model, FMA-WSSS stage II) through `transformers`.

`Mask2FormerForUniversalSegmentation` built from a `Mask2FormerConfig` with the library's Swin
backbone config, trained by the library's own loss (Hungarian matching, class CE with the
no-object weight 0.1, mask BCE and dice on 12,544 sampled points, auxiliary layers). Semantic
labels become one binary mask per class present, background included (it is a class here,
never reduced away), with that class's index as its class label.

The library's loss has no ignore label, so 255 pixels are kept out of it here: the labels are
taken to the predicted masks' grid (nearest, pixel centres), and there every query's mask
logit is replaced by a constant −30 with target 0 for every mask. Such a cell adds ~1e-13 to
the BCE, nothing to dice or to the matching costs, is never picked by the uncertainty
sampling, and passes no gradient: the model's output on ignored pixels cannot move the loss.
(A point sampled between an ignored and a labelled cell still sees the constant, never the
ignored cell's prediction.)

Weights (`--seg-weights`): a local `from_pretrained` folder (config.json + weights) or a
state dict of the configuration `seg_arch` names. Nothing is fetched.
"""

from __future__ import annotations

from pathlib import Path

import torch

from harness.compat import ensure_torchvision
from harness.errors import BenchError
from harness.segment.losses import IGNORE, resize_labels
from harness.segment.models import SegModel, own_loss_only, register_seg_model
from harness.segment.settings import SegSettings

IGNORED_LOGIT = -30.0  # sigmoid(−30) ≈ 1e-13: an ignored cell predicts "not this mask" exactly

# Swin-L as SemPLeS / FMA-WSSS run it (m2f-sl22: Swin-L, ImageNet-22k, window 12); the
# decoder is the library's Mask2FormerConfig default (= the paper's: 6 encoder layers,
# 10 decoder layers incl. the first, 100 queries, hidden 256)
SWIN_L = dict(embed_dim=192, depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48], window_size=12)
# a CPU-sized one for tests and synth: same code, a few layers
SWIN_SMALL = dict(embed_dim=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8], window_size=4)
DECODER_SMALL = dict(feature_size=64, mask_feature_size=64, hidden_dim=64, encoder_layers=1,
                     decoder_layers=3, num_queries=16, dim_feedforward=128,
                     encoder_feedforward_dim=128, num_attention_heads=4, train_num_points=1024)


def build_config(n_classes: int, arch: str):
    ensure_torchvision()  # transformers' image utilities import torchvision (compat.py)
    from transformers import Mask2FormerConfig, SwinConfig

    small = arch == "small"
    swin = SwinConfig(**(SWIN_SMALL if small else SWIN_L),
                      out_features=["stage1", "stage2", "stage3", "stage4"])
    return Mask2FormerConfig(backbone_config=swin, num_labels=n_classes,
                             **(DECODER_SMALL if small else {}))


class Mask2Former(SegModel):
    def __init__(self, net, settings: SegSettings):
        super().__init__()
        self.net = net
        self.settings = settings
        self.n_classes = net.config.num_labels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Semantic scores at the masks' stride (4): Σ_q softmax(class_q)[k] · sigmoid(mask_q)
        over the classes without "no object" (the library's semantic post-processing), as their
        log, so that the caller's softmax renormalises them and argmax is unchanged."""
        out = self.net(pixel_values=images)
        classes = out.class_queries_logits.softmax(-1)[..., :-1]
        scores = torch.einsum("bqk,bqhw->bkhw", classes, out.masks_queries_logits.sigmoid())
        return scores.clamp_min(1e-8).log()

    def loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = self.net(pixel_values=images, output_auxiliary_logits=True)
        aux = [(a["masks_queries_logits"], a["class_queries_logits"]) for a in out.auxiliary_logits or []]
        return self.loss_from_outputs(out.masks_queries_logits, out.class_queries_logits, aux, labels)

    def loss_from_outputs(self, masks: torch.Tensor, classes: torch.Tensor,
                          aux: list[tuple[torch.Tensor, torch.Tensor]], labels: torch.Tensor) -> torch.Tensor:
        """The library's weighted loss of the final and auxiliary (mask logits (B, Q, h, w),
        class logits (B, Q, K+1)) against labels (B, H, W) with 255 hidden (module docstring)."""
        grid = resize_labels(labels, tuple(masks.shape[-2:]))
        ignored = (grid == IGNORE)[:, None]
        if bool(ignored.all()):
            return masks.sum() * 0  # nothing labelled: no signal, and no NaN
        mask_labels, class_labels = targets(grid, self.n_classes)

        def hide(m: torch.Tensor) -> torch.Tensor:
            return torch.where(ignored, torch.full_like(m, IGNORED_LOGIT), m)

        aux_out = [dict(masks_queries_logits=hide(m), class_queries_logits=c) for m, c in aux]
        losses = self.net.get_loss_dict(hide(masks), classes, mask_labels, class_labels, aux_out)
        return self.net.get_loss(losses)

    def param_groups(self, settings: SegSettings) -> list[dict]:
        """Backbone at seg_backbone_lr_mult (mmseg mask2former: 0.1×), the rest at the head's;
        norms, biases and embeddings without decay (mmseg's custom_keys decay_mult 0)."""
        groups = {k: [] for k in ("backbone", "backbone_no_decay", "head", "head_no_decay")}
        for name, p in self.net.named_parameters():
            part = "backbone" if ".encoder." in name and "pixel_level_module" in name else "head"
            no_decay = p.ndim <= 1 or "embed" in name
            groups[part + ("_no_decay" if no_decay else "")].append(p)
        wd = settings.seg_weight_decay
        mult = {"backbone": settings.seg_backbone_lr_mult, "head": settings.seg_head_lr_mult}
        return [dict(name=k, params=v, lr_mult=mult[k.split("_")[0]],
                     weight_decay=0.0 if k.endswith("no_decay") else wd) for k, v in groups.items()]


def targets(grid: torch.Tensor, n_classes: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(B, h, w) labels → per image the binary masks (N, h, w) of the N classes present
    (background 0 included) and their class indices (N,); 255 belongs to no mask."""
    masks, classes = [], []
    for g in grid:
        present = torch.unique(g[g != IGNORE])
        present = present[present < n_classes]
        classes.append(present.long())
        masks.append((g[None] == present[:, None, None]).float())
    return masks, classes


def _load(path: Path, n_classes: int, settings: SegSettings):
    ensure_torchvision()
    from transformers import Mask2FormerForUniversalSegmentation

    if path.is_dir():
        return Mask2FormerForUniversalSegmentation.from_pretrained(
            path, num_labels=n_classes, ignore_mismatched_sizes=True, local_files_only=True)
    net = Mask2FormerForUniversalSegmentation(build_config(n_classes, settings.seg_arch))
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BenchError(f"--seg-weights {path}: not a readable torch state dict ({exc})") from None
    own = net.state_dict()
    take = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
    if not any(k.startswith("model.pixel_level_module.encoder.") for k in take):
        raise BenchError(f"--seg-weights {path}: no backbone tensor fits Mask2Former "
                         f"(seg_arch={settings.seg_arch}); pass a from_pretrained folder instead")
    net.load_state_dict(take, strict=False)
    return net


@register_seg_model("mask2former", recipes=("m2f",))
def mask2former(n_classes: int, settings: SegSettings, weights: Path | None = None) -> Mask2Former:
    """Mask2Former with a Swin backbone (transformers), its own matching loss, 255 kept out."""
    own_loss_only("mask2former", settings)
    if weights is not None:
        return Mask2Former(_load(Path(weights), n_classes, settings), settings)
    ensure_torchvision()
    from transformers import Mask2FormerForUniversalSegmentation

    return Mask2Former(Mask2FormerForUniversalSegmentation(build_config(n_classes, settings.seg_arch)),
                       settings)

