"""Pseudo masks on disk as the VOC layout has them: one `<image>.png` per image, palette
mode, index 0 background, k+1 class k, 255 ignore (VOC's border colour)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from harness.camio import per_image_files
from harness.data.voc import palette
from harness.errors import BenchError

_PALETTE = palette().reshape(-1).tolist()


def write_mask(folder: Path, name: str, mask: np.ndarray) -> None:
    """Atomic: a reader sees the whole PNG or none."""
    im = Image.fromarray(np.asarray(mask, np.uint8), mode="P")
    im.putpalette(_PALETTE)
    tmp = folder / f".{name}.{os.getpid()}.tmp.png"
    im.save(tmp)
    os.replace(tmp, folder / f"{name}.png")


def read_mask(path: Path, shape: tuple[int, int], n_labels: int) -> np.ndarray:
    """A pseudo-mask PNG as uint8 indices, checked against its image's (H, W) and the labels
    (0…n_labels-1, or 255); one line naming the file otherwise."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L"):
                raise BenchError(f"pseudo mask {path} is a {im.mode} PNG; expected class indices "
                                 "(a palette or grey-level PNG, 0 background, k+1 class k, 255 ignore)")
            m = np.array(im)
    except FileNotFoundError:
        raise BenchError(f"pseudo mask {path} is missing") from None
    except (OSError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise BenchError(f"cannot read pseudo mask {path}: {reason}") from None
    if m.shape != tuple(shape):
        raise BenchError(f"pseudo mask {path} is {m.shape[1]}×{m.shape[0]} but its image is "
                         f"{shape[1]}×{shape[0]}")
    bad = (m >= n_labels) & (m != 255)
    if bad.any():
        raise BenchError(f"pseudo mask {path} holds label {int(m[bad].max())}, outside 0…"
                         f"{n_labels - 1} and 255 (this dataset has {n_labels - 1} classes)")
    return m


def mask_folder(folder: Path, image_names: list[str]) -> list[Path]:
    """The PNG of every image, or one line naming what is missing."""
    return per_image_files(folder, image_names, ".png", "mask")
