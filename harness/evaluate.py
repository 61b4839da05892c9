"""Seed mIoU exactly as the reference code computes it, plus synth's context_fp, in one pass.

Per image: stack a constant background plane at threshold t in front of the present
classes' maps, argmax (ties go to background, the first plane), accumulate one confusion
matrix over the split ignoring label 255; IoU = diag / (row + col - diag); mIoU = nanmean
over all classes including background.

One pass: the label a pixel gets at threshold t is its argmax class if its max > t, else
background. So each pixel's max and argmax are computed once, its max is binned by how many
thresholds lie below it, and one histogram of (threshold bin, gt, class) per split holds the
confusion matrix of every threshold (a suffix sum over bins). Context counts are binned the
same way, so context_fp at matched recall needs no second pass either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

DEFAULT_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 … 0.95
FIXED_THRESHOLD = 0.15  # the CLIMS reference code's fixed background threshold
# context_fp reads each class at the strictest threshold of this grid where its recall ≥ 60 %
MATCHED_RECALL = 0.60
RECALL_GRID = tuple(round(0.01 * i, 2) for i in range(1, 100))  # 0.01 … 0.99
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


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def class_stats(conf: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class IoU, precision, recall, FP and FN (fractions) from a confusion matrix.

    FP and FN are divided by the class's union (prediction ∪ ground truth), so that
    IoU + FP + FN = 1, as hustvl/WeakTr evaluation.py (the SemPLeS evaluation) prints them.
    """
    tp = np.diag(conf).astype(np.float64)
    pred, true = conf.sum(0).astype(np.float64), conf.sum(1).astype(np.float64)
    union = pred + true - tp
    return {"iou": _ratio(tp, union), "precision": _ratio(tp, pred), "recall": _ratio(tp, true),
            "fp": _ratio(pred - tp, union), "fn": _ratio(true - tp, union)}


def background_leak(conf: np.ndarray) -> float:
    """Share of foreground-predicted pixels whose ground truth is background.

    CVI-SZU/CLIMS step/eval_cam.py prints it as `among_predfg_bg`:
    (resj[1:].sum() - confusion[1:, 1:].sum()) / resj[1:].sum().
    """
    fg_pred = conf[:, 1:].sum()
    return float(conf[0, 1:].sum() / fg_pred) if fg_pred else float("nan")


@dataclass
class Counts:
    """Integer counts of one image or a whole split, binned by threshold.

    `hist[b, g, c]`: pixels with ground truth g (row n = ignore) and argmax label c whose max
    exceeds exactly the b lowest thresholds. `ctx_*[k, b]`: pixels of class k's co-occurring
    (`cooc`) or other (`other`) context, in images where k is present, labelled k, binned
    alike; `ctx_*_total[k]`: all such pixels.
    """

    hist: np.ndarray
    ctx_cooc: np.ndarray
    ctx_other: np.ndarray
    ctx_cooc_total: np.ndarray
    ctx_other_total: np.ndarray
    oracle: Counts | None = None  # the same maps with co-occurring context zeroed

    @classmethod
    def zeros(cls, n_bins: int, n_labels: int, with_oracle: bool = False) -> Counts:
        k = n_labels - 1
        return cls(np.zeros((n_bins, n_labels + 1, n_labels), np.int64),
                   np.zeros((k, n_bins), np.int64), np.zeros((k, n_bins), np.int64),
                   np.zeros(k, np.int64), np.zeros(k, np.int64),
                   cls.zeros(n_bins, n_labels) if with_oracle else None)

    def __iadd__(self, other: Counts) -> Counts:
        for name in ("hist", "ctx_cooc", "ctx_other", "ctx_cooc_total", "ctx_other_total"):
            getattr(self, name).__iadd__(getattr(other, name))
        if self.oracle is not None and other.oracle is not None:
            self.oracle += other.oracle
        return self

    def confusions(self) -> np.ndarray:
        """(n_thresholds, n, n) confusion matrices, rows = gt without the ignore row."""
        fg = np.cumsum(self.hist[::-1], 0)[::-1][1:, :-1, :].copy()  # bins above threshold i
        rows = self.hist[:, :-1, :].sum((0, 2))
        fg[:, :, 0] = 0  # label 0 (no class present) is background at every threshold
        fg[:, :, 0] = rows[None, :] - fg.sum(2)
        return fg

    def context_false(self, cooc: bool = True) -> np.ndarray:
        """(K, n_thresholds) context pixels labelled as the class at each threshold."""
        arr = self.ctx_cooc if cooc else self.ctx_other
        return np.cumsum(arr[:, ::-1], 1)[:, ::-1][:, 1:]


class ImageScorer:
    """Turns one image's maps into binned `Counts`; pure, so threads may share it."""

    def __init__(self, n_labels: int, thresholds: Sequence[float], cooc_ctx: Sequence[int]):
        self.n = n_labels
        self.thresholds = np.asarray(thresholds, np.float64)
        self.cooc_ctx = np.asarray(cooc_ctx, np.int64)

    def __call__(self, keys: np.ndarray, high_res: np.ndarray, gt: np.ndarray,
                 context_map: np.ndarray | None = None) -> Counts:
        keys = np.asarray(keys, np.int64).reshape(-1)
        oracle_maps = None
        if context_map is not None and len(keys):
            oracle_maps = self._oracle(keys, high_res, gt, context_map)
        counts = self._count(keys, high_res, gt, context_map)
        if oracle_maps is not None:
            counts.oracle = self._count(keys, oracle_maps, gt, context_map)
        return counts

    def _rows(self, gt: np.ndarray) -> np.ndarray:
        """Ground truth → histogram row: classes as they are, 255 (and any stray value) → n."""
        if gt.dtype == np.uint8:
            return np.minimum(gt, np.uint8(self.n))  # stays uint8: no widening pass
        return np.minimum(np.where(gt < 0, self.n, gt).astype(np.int64), self.n)

    def _bins(self, values: np.ndarray) -> np.ndarray:
        """How many thresholds lie strictly below each value, compared in the values' own
        precision as `max > t` compares them. (A binary search: on smooth CAMs it beats a
        bit-pattern lookup table, measured, since neighbouring pixels take the same branches.)"""
        if values.dtype not in (np.float32, np.float64):
            values = values.astype(np.float64)
        return np.searchsorted(self.thresholds.astype(values.dtype), values, side="left")

    def _count(self, keys, high_res, gt, context_map) -> Counts:
        n, n_bins = self.n, len(self.thresholds) + 1
        counts = Counts.zeros(n_bins, n)
        high = np.asarray(high_res)
        if len(keys) == 1:  # most images: the one map is its own max, its class the argmax
            label, bins = keys[0] + 1, self._bins(high[0])
        elif len(keys):
            label, bins = (keys + 1)[high.argmax(0)], self._bins(high.max(0))
        else:
            label, bins = 0, np.zeros(gt.shape, np.int64)
        cell = bins * (n + 1) + self._rows(gt)  # (bin, row), then the label column
        if np.ndim(label) == 0:
            hist = np.bincount(cell.ravel(), minlength=n_bins * (n + 1))
            counts.hist[:, :, label] += hist.reshape(n_bins, n + 1)
        else:
            flat = np.bincount((cell * n + label).ravel(), minlength=counts.hist.size)
            counts.hist += flat.reshape(counts.hist.shape)
        if context_map is not None:
            self._count_context(counts, np.broadcast_to(label, gt.shape), bins, gt, context_map)
        return counts

    def _count_context(self, counts: Counts, label, bins, gt, ctx) -> None:
        n_bins = len(self.thresholds) + 1
        background_ctx = (gt == 0) & (ctx >= 0)
        present = np.unique(gt[(gt > 0) & (gt <= self.n - 1)]).astype(np.int64) - 1
        for k in present:  # classes present in the ground truth, as the context bands are
            c = self.cooc_ctx[k]
            if c < 0:
                continue
            lit = label == k + 1
            for region, hits, total in ((background_ctx & (ctx == c), counts.ctx_cooc,
                                         counts.ctx_cooc_total),
                                        (background_ctx & (ctx != c), counts.ctx_other,
                                         counts.ctx_other_total)):
                total[k] += int(region.sum())
                hits[k] += np.bincount(bins[region & lit], minlength=n_bins)

    def _oracle(self, keys, high_res, gt, ctx) -> np.ndarray | None:
        """The maps with each present class's co-occurring background context zeroed."""
        maps = None
        for j, k in enumerate(keys):
            c = self.cooc_ctx[k]
            if c < 0:
                continue
            region = (ctx == c) & (gt == 0)
            if region.any():
                maps = np.array(high_res, np.float32, copy=True) if maps is None else maps
                maps[j][region] = 0
        return maps if maps is not None else high_res


@dataclass
class SeedScores:
    thresholds: tuple[float, ...]
    mious: list[float]  # per threshold, in percent
    best_threshold: float
    seed_miou: float
    fixed_threshold: float
    seed_miou_fixed: float
    per_class_iou: dict[str, float]  # at the best threshold, percent
    per_class: dict[str, dict[str, float | None]] = field(default_factory=dict)
    background_leak: float | None = None  # percent, at the best threshold
    context_fp: float | None = None  # percent at matched recall, synth only
    context_fp_best_t: float | None = None
    context_fp_negative: float | None = None
    dead_classes: list[str] = field(default_factory=list)
    context_fp_by_class: dict[str, dict[str, float]] = field(default_factory=dict)
    oracle_seed_miou: float | None = None
    oracle_context_fp: float | None = None
    threshold_heldout: float | None = None
    seed_miou_heldout: float | None = None
    provenance: dict | None = None  # filled by the caller, who knows how the maps were made

    def as_record(self) -> dict:
        rec = {k: v for k, v in self.__dict__.items() if k not in ("thresholds", "mious")}
        rec["miou_by_threshold"] = dict(zip(map(str, self.thresholds), self.mious, strict=True))
        return rec


def _pct(x: float) -> float | None:
    return None if x is None or np.isnan(x) else float(x * 100)


class SeedEvaluator:
    """Accumulates the binned counts of a split, image by image (or from threads)."""

    def __init__(self, class_names: Sequence[str], thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                 fixed_threshold: float = FIXED_THRESHOLD, cooccur: dict[str, str] | None = None,
                 context_names: Sequence[str] = ()):
        self.class_names = tuple(class_names)
        self.names = ("background", *class_names)
        self.report_thresholds = tuple(thresholds)
        self.fixed = fixed_threshold
        cooc_ctx = [list(context_names).index(cooccur[c]) if cooccur and c in cooccur else -1
                    for c in class_names]
        self.has_context = any(c >= 0 for c in cooc_ctx)
        # the fine grid only where context_fp needs it: each threshold costs in the binning
        grid = set(RECALL_GRID) if self.has_context else set()
        self.thresholds = tuple(sorted(set(thresholds) | {fixed_threshold} | grid))
        self.scorer = ImageScorer(len(self.names), self.thresholds, cooc_ctx)
        self.counts = Counts.zeros(len(self.thresholds) + 1, len(self.names), self.has_context)

    def add(self, keys: np.ndarray, high_res: np.ndarray, gt: np.ndarray,
            context_map: np.ndarray | None = None) -> None:
        self.add_counts(self.scorer(keys, high_res, gt, context_map))

    def add_counts(self, counts: Counts) -> None:
        self.counts += counts

    def add_parallel(self, n_items: int, load: Callable[[int], tuple], workers: int = 4) -> None:
        """Score items 0…n-1, each loaded by `load(i)` → (keys, high_res, gt[, context_map]),
        in a thread pool: file reads, PNG decoding and numpy reductions release the GIL."""
        def one(i: int) -> Counts:
            return self.scorer(*load(i))

        if workers <= 1:
            for i in range(n_items):
                self.add_counts(one(i))
            return
        with ThreadPoolExecutor(workers) as pool:
            for counts in pool.map(one, range(n_items)):
                self.add_counts(counts)

    def mious(self, counts: Counts | None = None) -> dict[float, float]:
        confs = (counts or self.counts).confusions()
        return {t: float(np.nanmean(iou_from_confusion(c)) * 100)
                for t, c in zip(self.thresholds, confs, strict=True)}

    def best_threshold(self, counts: Counts | None = None) -> float:
        """The report threshold with the highest mIoU (the first on ties, no early stop)."""
        by_t = self.mious(counts)
        return self.report_thresholds[int(np.argmax([by_t[t] for t in self.report_thresholds]))]

    def scores(self, heldout_threshold: float | None = None) -> SeedScores:
        by_t = self.mious()
        report = [by_t[t] for t in self.report_thresholds]
        best_t = self.best_threshold()
        conf = self.counts.confusions()[self.thresholds.index(best_t)]
        stats = class_stats(conf)
        out = SeedScores(
            self.report_thresholds, report, best_t, by_t[best_t], self.fixed, by_t[self.fixed],
            {n: float(v * 100) for n, v in zip(self.names, stats["iou"], strict=True)},
            per_class={n: {key: _pct(stats[key][i]) for key in stats} for i, n in enumerate(self.names)},
            background_leak=_pct(background_leak(conf)))
        if heldout_threshold is not None:
            out.threshold_heldout = heldout_threshold
            out.seed_miou_heldout = by_t[heldout_threshold]
        if self.has_context:
            self._context_scores(out, best_t)
        return out

    def _context_scores(self, out: SeedScores, best_t: float) -> None:
        c = self.counts
        seen = c.ctx_cooc_total > 0
        if seen.any():
            at_best = c.context_false()[:, self.thresholds.index(best_t)]
            out.context_fp_best_t = float((at_best[seen] / c.ctx_cooc_total[seen]).mean() * 100)
        matched = self.matched_recall(c)
        out.context_fp, out.context_fp_negative = _mean_of(matched, "fp"), _mean_of(matched, "fp_negative")
        out.dead_classes = [k for k, v in matched.items() if v is None]
        out.context_fp_by_class = {k: v for k, v in matched.items() if v is not None}
        if c.oracle is not None:
            oracle_by_t = self.mious(c.oracle)
            out.oracle_seed_miou = max(oracle_by_t[t] for t in self.report_thresholds)
            out.oracle_context_fp = _mean_of(self.matched_recall(c.oracle), "fp")

    def matched_recall(self, counts: Counts) -> dict[str, dict[str, float] | None]:
        """Per class with ground truth and co-occurring context: the strictest threshold of the
        grid where its object recall is ≥ 60 %, and its false activation on co-occurring
        (`fp`) and other (`fp_negative`) context there; None for a dead class."""
        confs = counts.confusions()
        cooc, other = counts.context_false(True), counts.context_false(False)
        out: dict[str, dict[str, float] | None] = {}
        for k, name in enumerate(self.class_names):
            true = confs[0, k + 1].sum()
            if true == 0 or counts.ctx_cooc_total[k] == 0:
                continue  # never seen: neither scored nor dead
            recall = confs[:, k + 1, k + 1] / true
            ok = np.nonzero(recall >= MATCHED_RECALL)[0]
            if len(ok) == 0:
                out[name] = None
                continue
            i = int(ok.max())
            neg_total = counts.ctx_other_total[k]
            out[name] = {"threshold": self.thresholds[i], "recall": float(recall[i] * 100),
                         "fp": float(cooc[k, i] / counts.ctx_cooc_total[k] * 100),
                         "fp_negative": (float(other[k, i] / neg_total * 100) if neg_total
                                         else float("nan"))}
        return out


def _mean_of(matched: dict[str, dict[str, float] | None], key: str) -> float | None:
    vals = [v[key] for v in matched.values() if v is not None and not np.isnan(v[key])]
    return float(np.mean(vals)) if vals else None


def evaluate(items: Iterable[tuple], class_names: Sequence[str], **kwargs) -> SeedScores:
    """Score (keys, high_res, gt[, context_map]) tuples."""
    ev = SeedEvaluator(class_names, **kwargs)
    for item in items:
        ev.add(*item)
    return ev.scores()


Feed = Callable[[SeedEvaluator, object], object]  # adds a split's CAMs to an evaluator


def split_scores(ds, feed: Feed, held_ds=None, feed_held: Feed | None = None) -> SeedScores:
    """The evaluation steps of every set of CAMs scored (`bench run`'s, inferred from the
    model, and `bench eval`'s, read from files): with a held-out labelled split, t is picked
    on it first (`feed_held` adds its CAMs); then `ds` is scored over the threshold sweep, at
    the fixed 0.15 and at that t. `feed(evaluator, dataset)` adds a split's CAMs."""
    held_t = None
    if held_ds is not None:
        check_threshold_split(ds, held_ds)
        held = SeedEvaluator(held_ds.class_names)
        (feed_held or feed)(held, held_ds)
        held_t = held.best_threshold()
    ev = SeedEvaluator(ds.class_names, cooccur=ds.cooccur, context_names=ds.context_names)
    feed(ev, ds)
    return ev.scores(heldout_threshold=held_t)


def check_threshold_split(eval_ds, held_ds) -> None:
    """A threshold split must be labelled, non-empty and share no image with the eval split."""
    from harness.errors import BenchError

    name = f"{held_ds.name}/{held_ds.split}"
    if not getattr(held_ds, "has_masks", False):
        raise BenchError(f"threshold split {name} has no pixel labels; pick a labelled held-out "
                         "split (synth: heldout; voc: heldout)")
    if len(held_ds.image_names) == 0:
        raise BenchError(f"threshold split {name} is empty")
    shared = set(held_ds.image_names) & set(eval_ds.image_names)
    if shared:
        raise BenchError(f"threshold split {name} shares {len(shared)} of its "
                         f"{len(held_ds.image_names)} images with the eval split "
                         f"{eval_ds.name}/{eval_ds.split} (e.g. {min(shared)}): choosing t there "
                         "peeks at the masks being scored")
