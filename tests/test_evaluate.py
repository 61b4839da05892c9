"""Seed mIoU against hand-computed confusion matrices."""

import numpy as np
import pytest

from harness.evaluate import SeedEvaluator, confusion, iou_from_confusion, predict


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
