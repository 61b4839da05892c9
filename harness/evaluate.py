"""Seed mIoU exactly as the reference code computes it, plus synth's context_fp.

Per image: stack a constant background plane at threshold t in front of the present
classes' maps, argmax (ties go to background, the first plane), accumulate one confusion
matrix over the split ignoring label 255; IoU = diag / (row + col - diag); mIoU = nanmean
over all classes including background. Every threshold of the sweep is scored in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 … 0.95
FIXED_THRESHOLD = 0.15  # the CLIMS reference code's fixed background threshold
IGNORE = 255


def predict(keys: np.ndarray, high_res: np.ndarray, threshold: float) -> np.ndarray:
    """Label map (0 = background, k+1 = class k) from present-class maps at one threshold."""
    if len(keys) == 0:
        return np.zeros(high_res.shape[1:], np.int64)
    best = high_res.argmax(0)
    return np.where(high_res.max(0) > threshold, np.asarray(keys)[best] + 1, 0)


def confusion(pred: np.ndarray, gt: np.ndarray, n_classes: int) -> np.ndarray:
    """n×n confusion matrix, rows = ground truth, columns = prediction; 255 is ignored."""
    valid = gt != IGNORE
    idx = gt[valid].astype(np.int64) * n_classes + pred[valid].astype(np.int64)
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def iou_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Per-class IoU; NaN where a class is absent from both ground truth and prediction."""
    diag = np.diag(conf).astype(np.float64)
    denom = conf.sum(0) + conf.sum(1) - diag
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, diag / np.maximum(denom, 1), np.nan)


@dataclass
class SeedScores:
    thresholds: tuple[float, ...]
    mious: list[float]  # per threshold, in percent
    best_threshold: float
    seed_miou: float
    fixed_threshold: float
    seed_miou_fixed: float
    per_class_iou: dict[str, float]  # at the best threshold, percent
    context_fp: float | None = None  # percent, synth only

    def as_record(self) -> dict:
        return {
            "seed_miou": self.seed_miou, "seed_miou_fixed": self.seed_miou_fixed,
            "best_threshold": self.best_threshold, "fixed_threshold": self.fixed_threshold,
            "per_class_iou": self.per_class_iou, "context_fp": self.context_fp,
            "miou_by_threshold": dict(zip(map(str, self.thresholds), self.mious, strict=True)),
        }


class SeedEvaluator:
    """Accumulates confusion matrices for every threshold at once, image by image."""

    def __init__(self, class_names: Sequence[str], thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                 fixed_threshold: float = FIXED_THRESHOLD, cooccur: dict[str, str] | None = None,
                 context_names: Sequence[str] = ()):
        self.names = ("background", *class_names)
        self.thresholds = tuple(sorted(set(thresholds) | {fixed_threshold}))
        self.report_thresholds = tuple(thresholds)
        self.fixed = fixed_threshold
        n = len(self.names)
        self.conf = np.zeros((len(self.thresholds), n, n), np.int64)
        # context_fp: per class, co-occurring context pixels seen and those labelled the class
        self.cooccur_ctx = [context_names.index(cooccur[c]) if cooccur and c in cooccur else -1
                            for c in class_names]
        self.ctx_total = np.zeros(len(class_names), np.int64)
        self.ctx_false = np.zeros((len(self.thresholds), len(class_names)), np.int64)

    def add(self, keys: np.ndarray, high_res: np.ndarray, gt: np.ndarray,
            context_map: np.ndarray | None = None) -> None:
        n = len(self.names)
        for ti, t in enumerate(self.thresholds):
            pred = predict(keys, high_res, t)
            self.conf[ti] += confusion(pred, gt, n)
            if context_map is not None:
                self._add_context(ti, pred, gt, context_map, keys, count_total=ti == 0)

    def _add_context(self, ti, pred, gt, ctx, keys, count_total: bool) -> None:
        present = np.unique(gt[(gt > 0) & (gt != IGNORE)]) - 1
        for k in present:
            c = self.cooccur_ctx[k]
            region = (ctx == c) & (gt == 0)
            if count_total:
                self.ctx_total[k] += region.sum()
            self.ctx_false[ti, k] += (region & (pred == k + 1)).sum()

    def scores(self) -> SeedScores:
        mious = [float(np.nanmean(iou_from_confusion(c)) * 100) for c in self.conf]
        by_t = dict(zip(self.thresholds, mious, strict=True))
        report = [by_t[t] for t in self.report_thresholds]
        best_i = int(np.argmax(report))
        best_t = self.report_thresholds[best_i]
        ti = self.thresholds.index(best_t)
        ious = iou_from_confusion(self.conf[ti]) * 100
        ctx_fp = None
        seen = self.ctx_total > 0
        if seen.any():
            ctx_fp = float((self.ctx_false[ti, seen] / self.ctx_total[seen]).mean() * 100)
        return SeedScores(self.report_thresholds, report, best_t, report[best_i], self.fixed,
                          by_t[self.fixed], {n: float(v) for n, v in zip(self.names, ious, strict=True)},
                          ctx_fp)


def evaluate(items: Iterable[tuple], class_names: Sequence[str], **kwargs) -> SeedScores:
    """Score (keys, high_res, gt[, context_map]) tuples."""
    ev = SeedEvaluator(class_names, **kwargs)
    for item in items:
        ev.add(*item)
    return ev.scores()
