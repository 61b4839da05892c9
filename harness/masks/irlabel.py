"""IRN's inter-pixel-relation labels: confident foreground, confident background, the rest
ignored. jiwoon-ahn/irn step/cam_to_ir_label.py (CVI-SZU/CLIMS's is the same file)."""

from __future__ import annotations

import numpy as np

from harness.masks.crf import IRN_CRF, CrfParams, crf_inference_label, threshold_labels

IGNORE = 255


def combine(fg_conf: np.ndarray, bg_conf: np.ndarray) -> np.ndarray:
    """cam_to_ir_label.py step 2: the high-threshold labels where they say foreground, 0 where
    both say background, 255 (ignore) where they disagree."""
    conf = fg_conf.astype(np.uint8).copy()
    conf[fg_conf == 0] = IGNORE
    conf[(bg_conf.astype(np.int64) + fg_conf) == 0] = 0
    return conf


def ir_label(img: np.ndarray, keys: np.ndarray, high_res: np.ndarray, conf_fg_thres: float,
             conf_bg_thres: float, params: CrfParams = IRN_CRF) -> np.ndarray:
    """One image's IR label (uint8: 0 bg, k+1 class k, 255 unsure) from its CAM file's maps."""
    lut = np.concatenate([[0], np.asarray(keys, np.int64) + 1])
    n = len(lut)
    fg_conf = lut[crf_inference_label(img, threshold_labels(high_res, conf_fg_thres), n, params)]
    bg_conf = lut[crf_inference_label(img, threshold_labels(high_res, conf_bg_thres), n, params)]
    return combine(fg_conf, bg_conf)
