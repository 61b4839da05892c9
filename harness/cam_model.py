"""What inference, pseudo masks and segmentation need of a method's model: the protocol.

A family's `Method.train(ctx)` returns a `CamModel`: per-class maps on a grid of known
stride, and the class count. A trained classifier (`harness.generator.CamNet`) is one; a
training-free method (CLIP-ES: Grad-CAM on a frozen CLIP) is another, with no classifier to
pose as. Maps may depend on the image's labels (CLIP-ES's softmax runs over the classes
present); a model that does not need them ignores `labels`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F


@runtime_checkable
class CamModel(Protocol):
    """A model inference can make CAMs from (harness.infer.image_cams)."""

    @property
    def n_classes(self) -> int:
        """K, the number of foreground classes (the maps' channels)."""

    @property
    def stride(self) -> int:
        """Pixels per grid cell: cell (i, j) covers pixels [i·stride, (i+1)·stride)."""

    def maps(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Raw per-class maps (B, K, ceil(H/stride), ceil(W/stride)) of images (B, 3, H, W)
        in [0, 1]; `labels` (B, K) multi-hot, the image-level labels (None: not known)."""

    def eval(self) -> CamModel: ...

    def to(self, device: torch.device | str) -> CamModel: ...


def pixel_maps(maps: torch.Tensor, stride: int, size: tuple[int, int],
               out: tuple[int, int] | None = None) -> torch.Tensor:
    """Grid maps (B, K, h, w) of an image of `size` pixels, resampled to `out` (default:
    `size`) pixels.

    IRN / CLIMS `make_cam` (CVI-SZU/CLIMS step/make_cam.py, `get_strided_up_size`):
    upsample to the padded size (cells × stride) and crop the image's own pixels. When the
    image fills its grid exactly, this is one plain resize to `out`, as it always was.
    """
    size = (int(size[0]), int(size[1]))
    out = size if out is None else (int(out[0]), int(out[1]))
    padded = tuple(n * stride for n in maps.shape[-2:])
    if padded == size:
        return _resize(maps, out)
    cropped = _resize(maps, padded)[..., : size[0], : size[1]]
    return cropped if out == size else _resize(cropped, out)


def _resize(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
