"""Seed mIoU against hand-computed confusion matrices."""

import numpy as np
import pytest

from harness.evaluate import (
    DEFAULT_THRESHOLDS,
    SeedEvaluator,
    background_leak,
    class_stats,
    confusion,
    iou_from_confusion,
    predict,
)


def test_confusion_counts_by_hand_and_ignores_255():
    gt = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 0, 2]])
    conf = confusion(pred, gt, 3)
    # rows = gt, cols = pred; the 255 pixel (predicted 2) is not counted
    expected = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    np.testing.assert_array_equal(conf, expected)


def test_iou_and_nanmean_over_absent_classes():
    conf = np.array([[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    iou = iou_from_confusion(conf)
    # bg: 1/(2+2-1)=1/3; c1: 2/(2+3-2)=2/3; c2: 0/(1+0-0)=0; c3 absent everywhere: NaN
    np.testing.assert_allclose(iou[:3], [1 / 3, 2 / 3, 0.0])
    assert np.isnan(iou[3])
    assert np.nanmean(iou) == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)


def test_predict_background_plane_and_ties():
    keys = np.array([0, 2])  # classes 0 and 2 present → labels 1 and 3
    high = np.array([[[0.9, 0.3, 0.5]], [[0.2, 0.6, 0.5]]], dtype=np.float32)
    np.testing.assert_array_equal(predict(keys, high, 0.4), [[1, 3, 1]])
    # a tie with the background plane goes to background (argmax takes the first plane)
    np.testing.assert_array_equal(predict(keys, high, 0.5), [[1, 3, 0]])
    np.testing.assert_array_equal(predict(np.array([], int), np.zeros((0, 1, 3)), 0.1), [[0, 0, 0]])


def test_evaluator_threshold_sweep_and_fixed_by_hand():
    # one image, 1x4, class 0 present (label 1); gt = [0, 1, 1, 255]
    keys = np.array([0])
    high = np.array([[[0.1, 0.3, 0.8, 0.9]]], dtype=np.float32)
    gt = np.array([[0, 1, 1, 255]])
    ev = SeedEvaluator(["a", "b"], thresholds=(0.2, 0.5), fixed_threshold=0.15)
    ev.add(keys, high, gt)
    s = ev.scores()
    # t=0.2: pred [0,1,1,1] → bg IoU 1, a IoU 1, b NaN → 100
    # t=0.5: pred [0,0,1,1] → bg 1/2, a 1/2 → 50;  t=0.15 (fixed) same as 0.2
    assert s.mious == pytest.approx([100.0, 50.0])
    assert s.best_threshold == 0.2 and s.seed_miou == pytest.approx(100.0)
    assert s.seed_miou_fixed == pytest.approx(100.0)
    assert s.per_class_iou["background"] == pytest.approx(100.0)
    assert np.isnan(s.per_class_iou["b"])


def test_context_fp_counts_cooccurring_context_labelled_as_class():
    # class "boat" (label 1) co-occurs with "water" (context 0); 4 water pixels, 2 lit as boat
    keys = np.array([0])
    high = np.array([[[0.9, 0.9, 0.9, 0.1, 0.1]]], dtype=np.float32)
    gt = np.array([[1, 0, 0, 0, 0]])
    ctx = np.array([[-1, 0, 0, 0, 0]])
    ev = SeedEvaluator(["boat"], thresholds=(0.5,), fixed_threshold=0.5,
                       cooccur={"boat": "water"}, context_names=("water",))
    ev.add(keys, high, gt, ctx)
    assert ev.scores().context_fp == pytest.approx(50.0)


def _per_threshold_confusions(items, n_labels, thresholds):
    """The evaluator as it was before the one-pass rewrite: predict and count per threshold."""
    confs = {t: np.zeros((n_labels, n_labels), np.int64) for t in thresholds}
    for keys, high, gt in items:
        for t in thresholds:
            confs[t] += confusion(predict(keys, high, t), gt, n_labels)
    return confs


def _random_items(rng, n_images, n_classes, dtype=np.float32):
    items = []
    for _ in range(n_images):
        h, w = rng.integers(3, 12, 2)
        keys = np.sort(rng.choice(n_classes, rng.integers(0, 3), replace=False))
        # quantised to 0.05 so many maxima sit exactly on a threshold (the strict > matters)
        high = (rng.integers(0, 21, (len(keys), h, w)) * 0.05).astype(dtype)
        gt = rng.integers(0, n_classes + 1, (h, w)).astype(np.uint8)
        gt[rng.random((h, w)) < 0.1] = 255
        items.append((keys, high, gt))
    return items


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_pass_equals_per_threshold_evaluation(dtype):
    rng = np.random.default_rng(0)
    names = ["a", "b", "c", "d"]
    items = _random_items(rng, 40, len(names), dtype)
    ev = SeedEvaluator(names)
    for item in items:
        ev.add(*item)
    s = ev.scores()
    confs = _per_threshold_confusions(items, len(names) + 1, ev.thresholds)
    expected = [float(np.nanmean(iou_from_confusion(confs[t])) * 100) for t in DEFAULT_THRESHOLDS]
    assert s.mious == expected  # bit-identical, not approximately
    best = DEFAULT_THRESHOLDS[int(np.argmax(expected))]
    assert s.best_threshold == best and s.seed_miou == max(expected)
    assert s.seed_miou_fixed == float(np.nanmean(iou_from_confusion(confs[0.15])) * 100)
    ious = iou_from_confusion(confs[best]) * 100
    np.testing.assert_array_equal(list(s.per_class_iou.values()), ious)
    for t, c in zip(ev.thresholds, ev.counts.confusions(), strict=True):
        np.testing.assert_array_equal(c, confs[t])


def test_parallel_add_equals_serial():
    rng = np.random.default_rng(1)
    items = _random_items(rng, 30, 3)
    serial, threaded = SeedEvaluator(["a", "b", "c"]), SeedEvaluator(["a", "b", "c"])
    for item in items:
        serial.add(*item)
    threaded.add_parallel(len(items), lambda i: items[i], workers=4)
    np.testing.assert_array_equal(serial.counts.hist, threaded.counts.hist)


def test_precision_recall_fp_fn_by_hand():
    # rows = gt (bg, a, b), cols = prediction
    conf = np.array([[50, 10, 0],
                     [5, 30, 5],
                     [0, 0, 0]])
    st = class_stats(conf)
    # a: TP 30, predicted 40, true 40, union 50 → IoU .6, P .75, R .75, FP 10/50, FN 10/50
    assert st["iou"][1] == pytest.approx(0.6)
    assert st["precision"][1] == pytest.approx(0.75) and st["recall"][1] == pytest.approx(0.75)
    assert st["fp"][1] == pytest.approx(0.2) and st["fn"][1] == pytest.approx(0.2)
    # bg: TP 50, predicted 55, true 60, union 65
    assert st["precision"][0] == pytest.approx(50 / 55) and st["recall"][0] == pytest.approx(50 / 60)
    assert st["fp"][0] == pytest.approx(5 / 65) and st["fn"][0] == pytest.approx(10 / 65)
    # b: predicted 5 but never true → precision 0, recall undefined, FP = 5/5
    assert st["precision"][2] == 0 and np.isnan(st["recall"][2]) and st["fp"][2] == 1
    # CLIMS among_predfg_bg: of 45 foreground predictions, 10 lie on background
    assert background_leak(conf) == pytest.approx(10 / 45)
    for i in range(2):
        assert st["iou"][i] + st["fp"][i] + st["fn"][i] == pytest.approx(1)


def test_per_class_record_at_best_threshold():
    keys = np.array([0])
    high = np.array([[[0.9, 0.9, 0.9, 0.1]]], np.float32)
    gt = np.array([[1, 1, 0, 1]], np.uint8)
    ev = SeedEvaluator(["a"], thresholds=(0.5,), fixed_threshold=0.5)
    ev.add(keys, high, gt)
    rec = ev.scores().as_record()
    # pred [1, 1, 1, 0]: a TP 2, predicted 3, true 3, union 4
    assert rec["per_class"]["a"] == pytest.approx(
        {"iou": 50.0, "precision": 200 / 3, "recall": 200 / 3, "fp": 25.0, "fn": 25.0})
    assert rec["background_leak"] == pytest.approx(100 / 3)
    assert rec["per_class_iou"]["a"] == pytest.approx(50.0)


def _context_image(obj_scores, ctx_scores, other_scores, cls=0):
    """A 1-row image: 10 object pixels of class `cls`, 10 co-occurring context pixels
    (context 0) and 10 other context pixels (context 1), with the map values given."""
    high = np.array([[np.r_[obj_scores, ctx_scores, other_scores]]], np.float32)
    gt = np.r_[np.full(10, cls + 1), np.zeros(20)].astype(np.uint8)[None]
    ctx = np.r_[np.full(10, -1), np.zeros(10), np.ones(10)].astype(np.int8)[None]
    return np.array([cls]), high, gt, ctx


def test_context_fp_at_matched_recall_with_a_dead_class():
    names = ["boat", "bird"]
    ev = SeedEvaluator(names, cooccur={"boat": "water", "bird": "sky"}, context_names=("water", "sky"))
    # boat: object values 0.05 … 0.95 → recall ≥ 60 % up to t = 0.40 (values 0.45 … 0.95 lit
    # = 6 of 10 when t < 0.45, i.e. the strictest grid t is 0.44). Co-occurring context
    # values: 3 of 10 at 0.5, so 30 % lit at t = 0.44; other context: 1 of 10 at 0.6 → 10 %.
    obj = np.arange(1, 20, 2) * 0.05
    ev.add(*_context_image(obj, [0.5] * 3 + [0.0] * 7, [0.6] + [0.0] * 9))
    # bird: its object never lights above 0.0 on more than half → dead; its co-occurring
    # context (context 0 here is 'water', so give bird context index swapped via a 2nd image)
    keys, high, gt, ctx = _context_image([0.9] * 5 + [0.0] * 5, [0.9] * 10, [0.0] * 10, cls=1)
    ctx = np.where(ctx >= 0, 1 - ctx, ctx).astype(np.int8)  # its co-occurring context is sky (1)
    ev.add(keys, high, gt, ctx)
    s = ev.scores()
    assert s.dead_classes == ["bird"]
    assert s.context_fp_by_class["boat"]["threshold"] == 0.44
    assert s.context_fp_by_class["boat"]["recall"] == pytest.approx(60.0)
    assert s.context_fp == pytest.approx(30.0)  # boat only: a dead class is not scored as 0
    assert s.context_fp_negative == pytest.approx(10.0)
    # the oracle zeroes co-occurring context: nothing false there any more
    assert s.oracle_context_fp == pytest.approx(0.0)
    assert s.oracle_seed_miou >= s.seed_miou


def test_oracle_seed_miou_by_hand():
    ev = SeedEvaluator(["boat"], thresholds=(0.5,), fixed_threshold=0.5,
                       cooccur={"boat": "water"}, context_names=("water", "sky"))
    keys, high, gt, ctx = _context_image([0.9] * 10, [0.9] * 10, [0.0] * 10)
    ev.add(keys, high, gt, ctx)
    s = ev.scores()
    # as given: boat 10 TP + 10 FP → IoU 1/2; bg 10 of 20 → 1/2: 50. Oracle: perfect, 100.
    assert s.seed_miou == pytest.approx(50.0)
    assert s.oracle_seed_miou == pytest.approx(100.0)
    assert s.context_fp_best_t == pytest.approx(100.0)


def test_heldout_threshold_scores_eval_split_at_it():
    # held-out: object at 0.3, background at 0.2 → only t in [0.2, 0.3) separates them
    held = SeedEvaluator(["a"], thresholds=(0.1, 0.25, 0.4), fixed_threshold=0.1)
    held.add(np.array([0]), np.array([[[0.3, 0.2]]], np.float32), np.array([[1, 0]], np.uint8))
    t = held.best_threshold()
    assert t == 0.25
    ev = SeedEvaluator(["a"], thresholds=(0.1, 0.25, 0.4), fixed_threshold=0.1)
    # eval: object at 0.5, background at 0.3 → best t is 0.4 (100), at 0.25 both lit: 25
    ev.add(np.array([0]), np.array([[[0.5, 0.3]]], np.float32), np.array([[1, 0]], np.uint8))
    s = ev.scores(heldout_threshold=t)
    assert s.best_threshold == 0.4 and s.seed_miou == pytest.approx(100.0)
    assert s.threshold_heldout == 0.25
    # at 0.25 prediction [a, a]: a IoU 1/2, bg IoU 0 → 25
    assert s.seed_miou_heldout == pytest.approx(25.0)
