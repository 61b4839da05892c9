"""The few CLIP operations that the teacher's training, its gates and every method share.

One neutral fill for masked crops, and the clamped-similarity primitives. They live in
`harness` so that the embedded teacher is trained on exactly the crops the methods make,
and so that its gates (computed in `harness`) use the methods' own arithmetic without
importing `methods`.

The fill. The reference code masks the *normalised* image: CVI-SZU/CLIMS
step/train_clims.py builds `cam_224[...] * img_224[...]` where `img_224` went through
voc12/dataloader.py `TorchvisionNormalize` (ImageNet mean/std, ≈ CLIP's), and
CVI-SZU/QA-CLIMS step/train_qa_clims.py does the same. A masked pixel is therefore 0 after
normalisation: CLIP sees its own mean colour there, not black. Our images are in [0, 1] and
the teacher normalises them itself, so the same crop is M·X + (1 − M)·fill with fill = the
CLIP mean colour. A black fill (what `image * mask` on [0, 1] images gives) made dark,
low-contrast crops a separate "concept" the tiny teacher could be gamed with.
"""

from __future__ import annotations

import torch

from harness.teacher import OPENAI_MEAN

NEUTRAL_FILL: tuple[float, float, float] = OPENAI_MEAN  # RGB in [0, 1]; 0 after normalisation
SIM_MIN, SIM_MAX = 1e-4, 0.9999  # the reference code's clamp before any log


def fill_like(images: torch.Tensor) -> torch.Tensor:
    """The neutral fill as a (1, 3, 1, 1) tensor on `images`' device and dtype."""
    return torch.tensor(NEUTRAL_FILL, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)


def masked(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """M·X + (1 − M)·fill. images (B, 3, H, W) in [0, 1]; masks (B, 1, H, W) or (B, H, W)."""
    if masks.dim() == images.dim() - 1:
        masks = masks.unsqueeze(-3)
    masks = masks.to(images.dtype)
    return masks * images + (1 - masks) * fill_like(images)


def fg_bg(images: torch.Tensor, masks: torch.Tensor, fg: bool = True,
          bg: bool = True) -> torch.Tensor:
    """Stacked [foreground crops; background crops]: X^f = masked(X, M), X^b = masked(X, 1 − M)."""
    parts = ([masked(images, masks)] if fg else []) + ([masked(images, 1 - masks)] if bg else [])
    return torch.cat(parts)


def empty_image(n: int = 1, size: int = 64) -> torch.Tensor:
    """What a mask of zeros leaves: the fill alone."""
    return fill_like(torch.zeros(())).expand(n, 3, size, size).clone()


def pair_sim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine of L2-normalised features, clamped to [1e-4, 0.9999]."""
    return (a.float() * b.float()).sum(-1).clamp(SIM_MIN, SIM_MAX)


def neg_log(s: torch.Tensor) -> torch.Tensor:
    """−log s of clamped similarities (pull together)."""
    return -torch.log(s)


def neg_log1m(s: torch.Tensor) -> torch.Tensor:
    """−log(1 − s) of clamped similarities (push apart)."""
    return -torch.log1p(-s)
