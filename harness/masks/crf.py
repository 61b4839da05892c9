"""Dense CRF (Krähenbühl & Koltun) from the maintained `pydensecrf2` binding (`[masks]` extra).

`crf_inference_label` follows the one function both reference pipelines call,
jiwoon-ahn/irn misc/imutils.py `crf_inference_label` (also CVI-SZU/CLIMS misc/imutils.py)
and kuongan/SemPLeS tool/imutils.py `crf_inference_label` (hustvl/WeakTr's): a unary from
hard labels (`unary_from_labels`, gt_prob 0.7, zero_unsure False), one Gaussian and one
bilateral kernel, 10 mean-field iterations, argmax. Only the kernels differ:
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import BenchError


@dataclass(frozen=True)
class CrfParams:
    gauss_sxy: float
    gauss_compat: float
    bi_sxy: float
    bi_srgb: float
    bi_compat: float
    iterations: int = 10  # t=10 in both
    gt_prob: float = 0.7  # gt_prob=0.7 in both


# jiwoon-ahn/irn misc/imutils.py: addPairwiseGaussian(sxy=3, compat=3),
# addPairwiseBilateral(sxy=50, srgb=5, compat=10); CLIMS and QA-CLIMS call the same for IR labels
IRN_CRF = CrfParams(gauss_sxy=3, gauss_compat=3, bi_sxy=50, bi_srgb=5, bi_compat=10)
# kuongan/SemPLeS tool/imutils.py (VOC, scale_factor 1): addPairwiseGaussian(sxy=4, compat=3),
# addPairwiseBilateral(sxy=83, srgb=5, compat=3)
SEMPLES_CRF = CrfParams(gauss_sxy=4, gauss_compat=3, bi_sxy=83, bi_srgb=5, bi_compat=3)
# its COCO variant, crf_inference_label_coco: IRN's kernels
SEMPLES_CRF_COCO = IRN_CRF

MISSING = ("dense CRF needs the pydensecrf2 binding: pip install 'wsss-bench[masks]' "
           "(or pip install pydensecrf2), or pass --masks none")


def densecrf():
    """The binding's modules, or one line saying how to install it."""
    try:
        import pydensecrf.densecrf as dcrf
        import pydensecrf.utils as utils
    except ImportError:
        raise BenchError(MISSING) from None
    return dcrf, utils


def available() -> bool:
    try:
        densecrf()
    except BenchError:
        return False
    return True


def require_densecrf() -> None:
    """Fail before any training when a pipeline needs the CRF and the binding is missing."""
    densecrf()


def crf_inference_label(img: np.ndarray, labels: np.ndarray, n_labels: int,
                        params: CrfParams = IRN_CRF) -> np.ndarray:
    """Refine hard labels (H×W ints in [0, n_labels)) over an H×W×3 uint8 image → H×W labels."""
    _, utils = densecrf()
    h, w = img.shape[:2]
    if n_labels < 2:  # nothing to choose between (the binding needs two labels)
        return np.zeros((h, w), np.int64)
    unary = utils.unary_from_labels(np.asarray(labels, np.int64), n_labels, gt_prob=params.gt_prob,
                                    zero_unsure=False)
    return np.argmax(_mean_field(img, unary, n_labels, params), axis=0)


def crf_inference_prob(img: np.ndarray, probs: np.ndarray, params: CrfParams) -> np.ndarray:
    """Refine K×H×W class probabilities over an H×W×3 uint8 image → K×H×W probabilities, with
    the unary from the probabilities themselves (kazuto1011/deeplab-pytorch libs/utils/crf.py:
    23-41 `unary_from_softmax`, as CLIMS's DeepLabV2 stage calls it)."""
    _, utils = densecrf()
    probs = np.asarray(probs, np.float32)
    if len(probs) < 2:
        return probs
    return _mean_field(img, utils.unary_from_softmax(probs), len(probs), params)


def _mean_field(img: np.ndarray, unary: np.ndarray, n_labels: int, params: CrfParams) -> np.ndarray:
    """One Gaussian and one bilateral kernel, `params.iterations` steps → n×H×W marginals."""
    dcrf, _ = densecrf()
    h, w = img.shape[:2]
    d = dcrf.DenseCRF2D(w, h, n_labels)
    d.setUnaryEnergy(np.ascontiguousarray(unary))
    d.addPairwiseGaussian(sxy=params.gauss_sxy, compat=params.gauss_compat)
    d.addPairwiseBilateral(sxy=params.bi_sxy, srgb=params.bi_srgb,
                           rgbim=np.ascontiguousarray(img, dtype=np.uint8), compat=params.bi_compat)
    return np.array(d.inference(params.iterations)).reshape((n_labels, h, w))


def threshold_labels(high_res: np.ndarray, bg: float) -> np.ndarray:
    """argmax over [bg plane, maps]: 0 background, j+1 the j-th map (the references' np.pad
    with constant_values=thres, then argmax; ties go to background, the first plane)."""
    if len(high_res) == 0:
        return np.zeros(high_res.shape[1:], np.int64)
    return np.where(high_res.max(0) > bg, high_res.argmax(0) + 1, 0)


def crf_mask(img: np.ndarray, keys: np.ndarray, high_res: np.ndarray, bg: float,
             params: CrfParams = SEMPLES_CRF) -> np.ndarray:
    """SemPLeS's pseudo mask of one image: kuongan/SemPLeS evaluation.py do_python_eval with
    --out-crf: pad the maps with a `bg` plane, (softmax, which keeps the argmax) argmax, CRF over
    those labels, back to class indices (0 bg, k+1 class k)."""
    keys = np.asarray(keys, np.int64)
    lut = np.concatenate([[0], keys + 1]).astype(np.uint8)
    pred = crf_inference_label(img, threshold_labels(high_res, bg), len(lut), params)
    return lut[pred]
