"""Vectorised helpers shared by the CLIP-guided methods (CLIMS, SemPLeS).

Positive pairs (image n, class k with y_k = 1) are taken from the multi-hot labels in one
`nonzero`; the foreground and background crops of every pair go through the frozen image
encoder in ONE call; similarities are clamped to [1e-4, 0.9999] before any log, as the
reference code does. No Python loop over pairs or classes anywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.clip_ops import (  # noqa: F401 - re-exported: the methods' public names
    NEUTRAL_FILL,
    SIM_MAX,
    SIM_MIN,
    fg_bg,
    neg_log,
    neg_log1m,
    pair_sim,
)


def positive_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(image index, class index) of every present class, each a 1-D long tensor."""
    n, k = (labels > 0.5).nonzero(as_tuple=True)
    return n, k


def to_image(maps: torch.Tensor, size: tuple[int, int], align_corners: bool = False) -> torch.Tensor:
    """Bilinear upsampling of (B, K, h, w) maps to the image size.

    Training steps pass the run's `align_corners` setting, whose default True is what all
    three references do (CVI-SZU/CLIMS step/train_clims.py:142, CVI-SZU/QA-CLIMS
    step/train_qa_clims.py:176, SemPLeS engine1/2/3.py:89); this function's own default is
    the plain resize (inference and evaluation resample as IRN's make_cam, align_corners=False).
    """
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=align_corners)


def minmax(maps: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-(image, class) min-max normalisation of (B, K, H, W) maps: (x − min)/(max − min + eps).

    SemPLeS's release applies it to the UPSAMPLED maps with eps 0.1 in stages (a)/(c)
    (engine1.py:98, engine3.py:98) and 1e-4 in (b) (engine2.py:98); the caller passes them.
    """
    flat = maps.flatten(2)
    lo = flat.min(-1, keepdim=True)[0]
    hi = flat.max(-1, keepdim=True)[0]
    return ((flat - lo) / (hi - lo + eps)).view_as(maps)


def crops(images: torch.Tensor, masks: torch.Tensor, n: torch.Tensor, k: torch.Tensor,
          fg: bool = True, bg: bool = True) -> torch.Tensor:
    """Stacked [foreground crops; background crops] of the pairs (n, k).

    X^f = M_k·X + (1 − M_k)·fill, X^b likewise with 1 − M_k (harness.clip_ops: the
    reference's masking of the normalised image); `masks` (B, K, H, W) at image resolution.
    """
    return fg_bg(images[n], masks[n, k].unsqueeze(1), fg=fg, bg=bg)


def encode_fg_bg(teacher, images: torch.Tensor, masks: torch.Tensor, n: torch.Tensor,
                 k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(v^f, v^b) of every pair from one batched image-encoder call, as float32."""
    feats = teacher.encode_image(crops(images, masks, n, k)).float()
    return feats[: len(n)], feats[len(n):]


def mean_or_zero(x: torch.Tensor) -> torch.Tensor:
    """Mean, or a differentiable 0 for a batch without positive pairs."""
    return x.mean() if x.numel() else x.sum()
