"""CAM inference, written as reference-format CAM files and scored.

Maps are averaged over scales and horizontal flips (real data: 1.0, 0.5, 1.5, 2.0 as the
reference code; synth: 1.0 + flip), upsampled to the image, kept for the present classes
and normalised per class, exactly what the reference `make_cam` step stores. How, is one
`InferenceSpec` a family declares (`Method.inference`) and every consumer of CAMs reads
through `spec.on(dataset)`: the run's evaluation split, its held-out threshold split, the
pseudo masks (made from those files) and the segmentation stage.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from harness.cam_model import CamModel, pixel_maps
from harness.camio import write_cam
from harness.data import SegDataset
from harness.device_check import step_scope
from harness.errors import in_stage
from harness.progress import progress_bar

REAL_SCALES = (1.0, 0.5, 1.5, 2.0)
SYNTH_SCALES = (1.0,)  # 64-px images: a second scale would only blur the 8×8 grid


@dataclass(frozen=True)
class InferenceSpec:
    """How a family's CAMs are made at inference: scales (real data; synth runs at
    SYNTH_SCALES), horizontal flips, ReLU before summing, and the per-class normalisation:
    "max" (ReLU, then / max: the CLIMS reference's make_cam) or "minmax" (raw maps,
    (x − min) / (max − min): the SemPLeS release's inference)."""

    scales: tuple[float, ...] = REAL_SCALES
    flips: bool = True
    relu: bool = True
    normalisation: str = "max"

    def __post_init__(self) -> None:
        if self.normalisation not in ("max", "minmax"):
            raise ValueError(f"normalisation is max or minmax (got {self.normalisation!r})")
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"scales must be positive (got {self.scales!r})")

    def on(self, dataset: str) -> InferenceSpec:
        """This spec on `dataset`: synth's small images at SYNTH_SCALES."""
        return replace(self, scales=SYNTH_SCALES) if dataset == "synth" else self

    def as_record(self) -> dict[str, Any]:
        return {"scales": list(self.scales), "flips": self.flips, "relu": self.relu,
                "normalisation": self.normalisation}


def normalise(high: np.ndarray, how: str) -> np.ndarray:
    """Per-class (K, H, W) maps to [0, 1]: / max, or min-max."""
    flat = high.reshape(len(high), -1)
    lo = flat.min(1)[:, None, None] if how == "minmax" else 0.0
    return (high - lo) / (flat.max(1)[:, None, None] - lo + 1e-5)


@torch.no_grad()
def image_cams(model: CamModel, images: torch.Tensor, scales: Sequence[float],
               relu: bool = True, flips: bool = True,
               labels: torch.Tensor | None = None) -> torch.Tensor:
    """(B, K, H, W) maps summed over scales (and flips), for any H, W (non-negative unless
    relu=False); `labels` (B, K) for a model whose maps read them (CamModel)."""
    h, w = images.shape[-2:]
    total = torch.zeros(images.shape[0], model.n_classes, h, w, device=images.device)
    for s in scales:
        x = images if s == 1.0 else F.interpolate(images, scale_factor=s, mode="bilinear",
                                                   align_corners=False)
        both = torch.cat([x, x.flip(-1)]) if flips else x
        both_labels = torch.cat([labels, labels]) if flips and labels is not None else labels
        cams = model.maps(both, both_labels)
        cams = (F.relu(cams) if relu else cams).float()
        if flips:
            total += _unflip_and_sum(model, cams, tuple(x.shape[-2:]), (h, w))
        else:
            total += pixel_maps(cams, model.stride, tuple(x.shape[-2:]), (h, w))
    return total


def _unflip_and_sum(model: CamModel, cams: torch.Tensor, size: tuple[int, int],
                    out: tuple[int, int]) -> torch.Tensor:
    """Maps of [images; flipped images] → their sum at `out` pixels, the flipped ones un-flipped.

    A grid that the image fills exactly is mirror-symmetric, so the two halves are summed on
    the grid and resized once (bit-identical to before). A padded grid is not (the flipped
    image is padded on its own right), so each half is cropped back to its pixels first.
    """
    n = len(cams) // 2
    if tuple(c * model.stride for c in cams.shape[-2:]) == size:
        return pixel_maps(cams[:n] + cams[n:].flip(-1), model.stride, size, out)
    both = pixel_maps(cams, model.stride, size, out)
    return both[:n] + both[n:].flip(-1)


def infer_cams(model: CamModel, ds: SegDataset, out_dir: Path, device: torch.device,
               spec: InferenceSpec, batch_size: int = 32,
               show_progress: bool = True) -> Iterator[tuple]:
    """Write one CAM file per image, made as `spec` says (already `on` the dataset); yield
    (keys, high_res, gt, context_map) for scoring."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    # real images differ in size: one per batch (a one-scale spec on voc used to stack them)
    batched = ds.same_size and len(spec.scales) == 1
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size if batched else 1)
    with in_stage("CAM inference"), \
            progress_bar("CAM inference", len(loader), enabled=show_progress) as advance:
        for batch in loader:
            with step_scope():  # CUDA discipline, checked in tests (harness/device_check.py)
                cams = image_cams(model, batch["image"].to(device), spec.scales, relu=spec.relu,
                                  flips=spec.flips, labels=batch["labels"].to(device))
            cams = cams.cpu().numpy()
            for j, i in enumerate(batch["index"].tolist()):
                keys = np.nonzero(ds.labels(i))[0]
                high = normalise(cams[j, keys], spec.normalisation)
                write_cam(out_dir, ds.image_names[i], keys, high)
                # a split without pixel labels (the training split's, for its masks): no gt
                yield keys, high, ds.mask(i) if ds.has_masks else None, ds.context_map(i)
            advance()
