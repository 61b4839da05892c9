"""Segmentation inference as the references run it, and its scores by the project's evaluation.

Two merges of the views (each scale, and its flip where the reference flips):
- `max` (KZ main.py test + libs/models/msc.py:26-47, CLIMS's DeepLabV2): logits of every view
  resized bilinearly to the unscaled view's logit size, pixel-wise max, then upsampled
  bilinearly (align_corners False) to the image and softmaxed; no flip.
- `mean` (WT model/utils.py inference + merge_windows: Segmenter): every view's logits
  upsampled to the image, un-flipped, softmaxed, and the probabilities averaged.
Both give class probabilities (B, K, H, W); the label is their argmax. The optional dense CRF
takes them as its unary (KZ libs/utils/crf.py) with the recipe's kernels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from harness.evaluate import class_stats, confusion
from harness.masks.crf import CrfParams, crf_inference_prob
from harness.segment.settings import SegSettings


def _view(model, images: torch.Tensor, scale: float, flip: bool) -> torch.Tensor:
    x = images if scale == 1.0 else F.interpolate(images, scale_factor=scale, mode="bilinear",
                                                  align_corners=False)
    logits = model(x.flip(-1) if flip else x)
    return logits.flip(-1) if flip else logits


@torch.no_grad()
def predict_probs(model, images: torch.Tensor, settings: SegSettings) -> torch.Tensor:
    """(B, 3, H, W) normalised images → (B, K, H, W) class probabilities at the recipe's test
    scales (`seg_test_scales`, `seg_test_flip`) merged by `seg_merge`. The model must be in
    eval mode (the caller's: it may be sharing the model with training)."""
    size = images.shape[-2:]
    flips = (False, True) if settings.seg_test_flip else (False,)
    views = [_view(model, images, s, f) for s in settings.test_scales for f in flips]
    up = dict(mode="bilinear", align_corners=False)
    if settings.seg_merge == "max":
        base = views[0].shape[-2:]  # KZ: the first (unscaled) view's logit grid
        merged = torch.stack([v if v.shape[-2:] == base else F.interpolate(v, size=base, **up)
                              for v in views]).max(0).values
        return F.interpolate(merged, size=size, **up).softmax(1)
    probs = [F.interpolate(v, size=size, **up).softmax(1) for v in views]
    return torch.stack(probs).mean(0)


def crf_params(settings: SegSettings) -> CrfParams:
    """The recipe's dense-CRF kernels (CL configs CRF: ITER_MAX 10, POS_W 3, POS_XY_STD 1,
    BI_W 4, BI_XY_STD 67, BI_RGB_STD 3 by default)."""
    return CrfParams(gauss_sxy=settings.seg_crf_pos_xy, gauss_compat=settings.seg_crf_pos_w,
                     bi_sxy=settings.seg_crf_bi_xy, bi_srgb=settings.seg_crf_bi_rgb,
                     bi_compat=settings.seg_crf_bi_w, iterations=settings.seg_crf_iters)


def crf_labels(rgb: np.ndarray, probs: np.ndarray, settings: SegSettings) -> np.ndarray:
    """Dense CRF over one image's (K, H, W) probabilities → H×W labels. The CRF sees the image
    itself (H×W×3 uint8 RGB): KZ main.py's crf command feeds it the mean-subtracted BGR array
    cast to uint8, whose negative values wrap, which we take for a bug, not a setting."""
    return crf_inference_prob(rgb, probs, crf_params(settings)).argmax(0)


@dataclass
class Prediction:
    """One image's result: its id, the label map, the CRF's (where it ran) and its ground truth
    (None on a split without labels, e.g. VOC test)."""

    image_id: str
    label: np.ndarray
    label_crf: np.ndarray | None
    gt: np.ndarray | None


def iter_predictions(model, items: Iterable[tuple[str, np.ndarray, np.ndarray | None]],
                     settings: SegSettings, device: str | torch.device = "cpu",
                     crf: bool | None = None) -> Iterator[Prediction]:
    """Predict each (image_id, H×W×3 uint8 RGB, H×W gt or None) one image at a time (images
    differ in size, as the references' test batch of 1), with the CRF if `crf` (default
    `settings.seg_crf`). Puts the model in eval mode."""
    model.eval()
    crf = settings.seg_crf if crf is None else crf
    for image_id, rgb, gt in items:
        x = torch.from_numpy(settings.normalize(rgb))[None].to(device)
        probs = predict_probs(model, x, settings)[0].float().cpu().numpy()
        yield Prediction(image_id, probs.argmax(0), crf_labels(rgb, probs, settings) if crf else None,
                         gt)


class SegScorer:
    """One confusion matrix per split, by `harness.evaluate.confusion` (255 ignored), and the
    same per-class statistics as the seed (IoU, precision, recall, FP, FN)."""

    def __init__(self, class_names: Sequence[str]):
        self.names = ("background", *class_names)
        self.conf = np.zeros((len(self.names),) * 2, np.int64)

    def add(self, label: np.ndarray, gt: np.ndarray) -> None:
        self.conf += confusion(np.asarray(label), np.asarray(gt), len(self.names))

    def miou(self) -> float:
        """mIoU in percent: nanmean over all classes including background."""
        return float(np.nanmean(class_stats(self.conf)["iou"]) * 100)

    def per_class(self) -> dict[str, dict[str, float | None]]:
        stats = class_stats(self.conf)
        return {n: {k: (None if np.isnan(v[i]) else float(v[i] * 100)) for k, v in stats.items()}
                for i, n in enumerate(self.names)}


def score_predictions(preds: Iterable[Prediction], class_names: Sequence[str]) -> dict:
    """`seg_miou` and its per-class table, and `seg_miou_crf` where the CRF ran."""
    plain, refined, any_crf = SegScorer(class_names), SegScorer(class_names), False
    for p in preds:
        if p.gt is None:
            continue
        plain.add(p.label, p.gt)
        if p.label_crf is not None:
            refined.add(p.label_crf, p.gt)
            any_crf = True
    out = {"seg_miou": plain.miou(), "seg_per_class": plain.per_class()}
    if any_crf:
        out.update(seg_miou_crf=refined.miou(), seg_per_class_crf=refined.per_class())
    return out
