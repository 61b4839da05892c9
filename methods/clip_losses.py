"""Vectorised helpers shared by the CLIP-guided methods (CLIMS, SemPLeS).

Positive pairs (image n, class k with y_k = 1) are taken from the multi-hot labels in one
`nonzero`; the foreground and background crops of every pair go through the frozen image
encoder in ONE call; similarities are clamped to [1e-4, 0.9999] before any log, as the
reference code does. No Python loop over pairs or classes anywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SIM_MIN, SIM_MAX = 1e-4, 0.9999


def positive_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(image index, class index) of every present class, each a 1-D long tensor."""
    n, k = (labels > 0.5).nonzero(as_tuple=True)
    return n, k


def to_image(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of (B, K, h, w) maps to the image size."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def minmax(maps: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-(image, class) min-max normalisation of (B, K, H, W) maps to [0, 1]."""
    flat = maps.flatten(2)
    lo = flat.min(-1, keepdim=True)[0]
    hi = flat.max(-1, keepdim=True)[0]
    return ((flat - lo) / (hi - lo + eps)).view_as(maps)


def crops(images: torch.Tensor, masks: torch.Tensor, n: torch.Tensor, k: torch.Tensor,
          fg: bool = True, bg: bool = True) -> torch.Tensor:
    """Stacked [foreground crops; background crops] of the pairs (n, k).

    X^f = M_k·X, X^b = (1 − M_k)·X; `masks` (B, K, H, W) at image resolution.
    """
    m = masks[n, k].unsqueeze(1).to(images.dtype)
    x = images[n]
    parts = ([m * x] if fg else []) + ([(1 - m) * x] if bg else [])
    return torch.cat(parts)


def encode_fg_bg(teacher, images: torch.Tensor, masks: torch.Tensor, n: torch.Tensor,
                 k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(v^f, v^b) of every pair from one batched image-encoder call, as float32."""
    feats = teacher.encode_image(crops(images, masks, n, k)).float()
    return feats[: len(n)], feats[len(n):]


def pair_sim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine of L2-normalised features, clamped to [1e-4, 0.9999]."""
    return (a.float() * b.float()).sum(-1).clamp(SIM_MIN, SIM_MAX)


def neg_log(s: torch.Tensor) -> torch.Tensor:
    """−log s of clamped similarities (pull together)."""
    return -torch.log(s)


def neg_log1m(s: torch.Tensor) -> torch.Tensor:
    """−log(1 − s) of clamped similarities (push apart)."""
    return -torch.log1p(-s)


def mean_or_zero(x: torch.Tensor) -> torch.Tensor:
    """Mean, or a differentiable 0 for a batch without positive pairs."""
    return x.mean() if x.numel() else x.sum()
