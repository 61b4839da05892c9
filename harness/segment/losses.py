"""Per-pixel losses of the segmentation recipes; 255 pixels never count."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

IGNORE = 255


def pil_nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """The source index of each of `n_out` pixels when PIL resizes `n_in` with NEAREST: it
    starts half a step in and adds the step n_in/n_out in double precision, pixel by pixel,
    so exact ties fall wherever the running sum's rounding puts them (a plain
    floor((x + 0.5)·step), torch's `nearest-exact`, differs on ~15 % of a 500 → 375 row)."""
    step = n_in / n_out
    x = np.cumsum(np.concatenate([[step * 0.5], np.full(n_out - 1, step)]))
    return np.minimum(x.astype(np.int64), n_in - 1)


def resize_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, H, W) labels → (B, h, w) by nearest neighbour exactly as CL main.py:71-84
    resize_labels (PIL NEAREST) picks them."""
    h, w = size
    if tuple(labels.shape[-2:]) == (h, w):
        return labels
    rows = torch.from_numpy(pil_nearest_index(labels.shape[-2], h)).to(labels.device)
    cols = torch.from_numpy(pil_nearest_index(labels.shape[-1], w)).to(labels.device)
    return labels[:, rows][:, :, cols]


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean CE over the non-ignored pixels of the batch (CL main.py nn.CrossEntropyLoss(
    ignore_index=255)). A batch with no labelled pixel gives 0, not torch's 0/0 = NaN: an
    all-ignored crop carries no signal and must not end the run."""
    per_pixel = F.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="none")
    valid = labels != IGNORE
    return per_pixel.sum() / valid.sum().clamp(min=1)


def balanced_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CL main_v2.py:87-99 criterion_balance: (mean CE over background pixels + mean CE over
    foreground pixels) / 2, over the whole batch, 255 excluded. Where the batch has no pixel of
    one side, the reference divides 0 by 0 (NaN); here that side is left out and the other
    side's mean is the loss (0 if neither has a pixel)."""
    per_pixel = F.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="none")
    bg = labels == 0
    fg = (labels != 0) & (labels != IGNORE)
    terms = [per_pixel[m].mean() for m in (bg, fg) if m.any()]
    return torch.stack(terms).mean() if terms else per_pixel.sum() * 0


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ce": cross_entropy, "balanced_ce": balanced_cross_entropy}


def pixel_loss(kind: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """`kind` (ce | balanced_ce) between logits (B, K, h, w) and labels (B, H, W) resized to
    the logits' size."""
    return LOSSES[kind](logits, resize_labels(labels, tuple(logits.shape[-2:])))


def msc_logits(forward: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
               scales: Sequence[float] = (0.5, 0.75)) -> list[torch.Tensor]:
    """KZ libs/models/msc.py:26-47 in training: logits of the image, of the image resized
    bilinearly by each scale (align_corners False), and the pixel-wise max of all of them at
    the full-size logits' resolution; KZ libs/models/__init__.py builds it with [0.5, 0.75]."""
    full = forward(images)
    size = full.shape[-2:]
    pyramid = [forward(F.interpolate(images, scale_factor=s, mode="bilinear", align_corners=False))
               for s in scales]
    resized = [F.interpolate(p, size=size, mode="bilinear", align_corners=False) for p in pyramid]
    return [full, *pyramid, torch.stack([full, *resized]).max(0).values]


def msc_loss(forward: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
             labels: torch.Tensor, kind: str, scales: Sequence[float] = (0.5, 0.75)) -> torch.Tensor:
    """CL main.py:248-253: the loss summed over every MSC logit, labels resized to each."""
    return sum(pixel_loss(kind, lg, labels) for lg in msc_logits(forward, images, scales))
