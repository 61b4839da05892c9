"""Mask mIoU through the seed evaluator (harness.evaluate): one confusion-matrix code.

A hard mask is a set of one-hot maps (one per class it labels), so `predict` at any threshold
in (0, 1) gives the mask back and `SeedEvaluator` accumulates its confusion matrix as it does
for CAMs. A pixel the mask ignores (255) counts as background, as jiwoon-ahn/irn
step/eval_sem_seg.py scores pseudo masks (`cls_labels[cls_labels == 255] = 0`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.evaluate import SeedEvaluator
from harness.masks.pngio import mask_folder, read_mask

MASK_T = 0.5  # any threshold in (0, 1) reads a one-hot map back as the mask


def mask_to_maps(mask: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(keys, one-hot maps) of the classes a mask labels; 255 and 0 are background."""
    labels = np.unique(mask)
    keys = (labels[(labels >= 1) & (labels <= n_classes)] - 1).astype(np.int64)
    maps = np.stack([(mask == k + 1) for k in keys]).astype(np.float32) if len(keys) else \
        np.zeros((0, *mask.shape), np.float32)
    return keys, maps


def mask_evaluator(ds) -> SeedEvaluator:
    return SeedEvaluator(ds.class_names, thresholds=(MASK_T,), fixed_threshold=MASK_T,
                         cooccur=ds.cooccur, context_names=ds.context_names)


def score_mask_folder(ds, folder: Path, workers: int = 4) -> dict[str, Any]:
    """Score every image of `ds` from its PNG in `folder` → the `mask_*` record fields."""
    paths = mask_folder(folder, ds.image_names)
    n_labels = len(ds.class_names) + 1
    ev = mask_evaluator(ds)

    def load(i: int) -> tuple:
        gt = ds.mask(i)
        keys, maps = mask_to_maps(read_mask(paths[i], gt.shape, n_labels), len(ds.class_names))
        return keys, maps, gt, ds.context_map(i)

    ev.add_parallel(len(paths), load, workers)
    return mask_record(ev, len(paths))


def mask_record(ev: SeedEvaluator, n: int) -> dict[str, Any]:
    s = ev.scores()
    rec: dict[str, Any] = {"mask_miou": s.seed_miou, "mask_per_class": s.per_class,
                           "mask_per_class_iou": s.per_class_iou,
                           "mask_background_leak": s.background_leak, "mask_n_images": n}
    if ev.has_context:
        # the masks' own labels: no threshold to match recall at (context_fp_best_t is the
        # share of co-occurring context labelled as the class at this one "threshold")
        rec.update(mask_context_fp=s.context_fp_best_t, mask_context_fp_matched=s.context_fp,
                   mask_context_fp_negative=s.context_fp_negative,
                   mask_dead_classes=s.dead_classes)
    return rec
