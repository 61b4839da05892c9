"""Training augmentation: the per-step flip of every method, and random rescale, flip and
crop of real images.

Pairing (the protocol): the training loop draws each step's flip from a stream seeded by
the RUN seed and the epoch (`augment_seed`), not by the stage, so every method and variant
of one seed sees the same flips and the same data order, and their differences are paired.

The CLIMS / QA-CLIMS reference pipeline (from IRN): resize the long side to a random
length in [crop·0.625, crop·1.25] (320–640 for the 512 crop), flip with p = 0.5, then a
random crop padded with zeros to crop×crop. Evaluation images are never augmented: CAM
inference runs at full size over scales and flips (`harness.infer`).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

SCALE_RANGE = (0.625, 1.25)  # long side relative to the crop: 320–640 px for a 512 crop


def augment_seed(run_seed: int, epoch: int) -> int:
    """The seed of an epoch's augmentation stream: the run seed and the epoch, nothing else."""
    return (run_seed * 1_000_003 + 7919 * (epoch + 1)) % 2**63


def draw_flip(stream: torch.Generator) -> bool:
    return bool(torch.rand((), generator=stream) < 0.5)


def flipped(batch: dict) -> torch.Tensor:
    """The batch's images, mirrored when the loop drew a flip for this step (`batch["flip"]`)."""
    images = batch["image"]
    return images.flip(-1) if batch.get("flip", False) else images


def random_rescale(img: np.ndarray, crop_size: int, rng: np.random.Generator,
                   scale_range: tuple[float, float] = SCALE_RANGE) -> np.ndarray:
    """Resize so the long side is a random length in crop_size·scale_range (bilinear)."""
    h, w = img.shape[:2]
    target = rng.uniform(*scale_range) * crop_size
    s = target / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    if (nh, nw) == (h, w):
        return img
    return np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))


def random_flip(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return img[:, ::-1] if rng.random() < 0.5 else img


def random_crop(img: np.ndarray, crop_size: int, rng: np.random.Generator) -> np.ndarray:
    """A crop_size×crop_size window; smaller images are placed at a random offset on zeros."""
    h, w = img.shape[:2]
    out = np.zeros((crop_size, crop_size, img.shape[2]), img.dtype)
    ch, cw = min(h, crop_size), min(w, crop_size)
    y0 = int(rng.integers(0, h - ch + 1))  # where the window starts in the image
    x0 = int(rng.integers(0, w - cw + 1))
    oy = int(rng.integers(0, crop_size - ch + 1))  # where the image lands in the window
    ox = int(rng.integers(0, crop_size - cw + 1))
    out[oy:oy + ch, ox:ox + cw] = img[y0:y0 + ch, x0:x0 + cw]
    return out


def train_augment(img: np.ndarray, crop_size: int, rng: np.random.Generator) -> np.ndarray:
    """HxWx3 uint8 → crop_size×crop_size×3 uint8: rescale, flip, crop."""
    img = random_rescale(img, crop_size, rng)
    img = random_flip(img, rng)
    return np.ascontiguousarray(random_crop(img, crop_size, rng))
