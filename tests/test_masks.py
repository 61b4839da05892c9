"""Pseudo masks (issue 21): dense CRF, IR labels, IRN's affinity and random walk, mask
scoring, and the stage end to end through the CLI on the odd-size VOC fixture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.errors import BenchError
from harness.evaluate import confusion, iou_from_confusion
from harness.masks import crf
from harness.masks.irlabel import combine, ir_label
from harness.masks.path_index import PathIndex
from harness.masks.random_walk import (
    propagate_to_edge,
    semantic_labels,
    sparse_affinity,
    transition_matrix,
    walk,
)
from harness.masks.score import mask_to_maps

pytest.importorskip("pydensecrf.densecrf")  # the [masks] extra, which CI installs


# ---- dense CRF -------------------------------------------------------------------------------

def two_halves(h: int = 24, w: int = 32) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, w // 2:] = 255
    return img


@pytest.mark.parametrize("params", [crf.IRN_CRF, crf.SEMPLES_CRF])
def test_crf_snaps_noisy_labels_to_the_image_edge(params):
    """A black | white image whose labels follow the halves except for a sprinkle of flipped
    pixels and a 3-px band that overshoots the edge: the CRF gives back the exact halves."""
    img = two_halves()
    truth = np.zeros(img.shape[:2], np.int64)
    truth[:, 16:] = 1
    noisy = truth.copy()
    rng = np.random.default_rng(0)
    flip = rng.random(noisy.shape) < 0.08
    noisy[flip] = 1 - noisy[flip]
    noisy[:, 16:19] = 0  # the labels stop 3 px short of the edge
    out = crf.crf_inference_label(img, noisy, 2, params)
    assert (out == truth).all()


def test_crf_mask_maps_planes_back_to_class_indices():
    """crf_mask: [bg plane, maps] → CRF → 0 / k+1. Class 6 covers the white half."""
    img = two_halves()
    high = np.zeros((1, 24, 32), np.float32)
    high[0, :, 16:] = 0.9
    out = crf.crf_mask(img, np.array([6]), high, bg=0.4)
    assert out.dtype == np.uint8
    assert (out[:, :16] == 0).all() and (out[:, 16:] == 7).all()


def hide_densecrf(monkeypatch) -> None:
    """Make `import pydensecrf…` fail for the rest of the test, as on a machine without the extra."""
    import builtins

    real = builtins.__import__

    def no_crf(name, *a, **k):
        if name.startswith("pydensecrf"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_crf)


def test_crf_without_the_binding_is_one_line(monkeypatch):
    hide_densecrf(monkeypatch)
    with pytest.raises(BenchError, match=r"pydensecrf2.*\[masks\].*--masks none"):
        crf.require_densecrf()


# ---- IR labels ---------------------------------------------------------------------------------

def test_ir_label_combination_by_hand():
    """cam_to_ir_label.py step 2: foreground where the 0.3 plane says so, background where both
    say background, 255 where they disagree."""
    fg = np.array([[3, 0, 0], [0, 3, 0]])
    bg = np.array([[3, 3, 0], [3, 3, 0]])
    assert combine(fg, bg).tolist() == [[3, 255, 0], [255, 3, 0]]


def test_ir_label_thresholds():
    """One class, three 20-px bands of CAM 0.5 / 0.2 / 0.05, each its own colour (so the CRF
    keeps the bands' edges): above conf_fg 0.3 → the class, between the two → 255, below
    conf_bg 0.1 → background."""
    img = np.zeros((20, 60, 3), np.uint8)
    img[:, :20, 0], img[:, 20:40, 1], img[:, 40:, 2] = 200, 200, 200
    high = np.zeros((1, 20, 60), np.float32)
    high[0, :, :20], high[0, :, 20:40], high[0, :, 40:] = 0.5, 0.2, 0.05
    out = ir_label(img, np.array([4]), high, 0.3, 0.1)
    assert (out[:, :20] == 5).all()
    assert (out[:, 20:40] == 255).all()
    assert (out[:, 40:] == 0).all()
    # with conf_bg above 0.2 the middle band is confident background instead
    assert (ir_label(img, np.array([4]), high, 0.3, 0.25)[:, 20:40] == 0).all()


# ---- IRN's affinity and random walk ---------------------------------------------------------------

def test_transition_matrix_and_one_step_by_hand():
    """A = [[1, .5, 0], [.5, 1, 1], [0, 1, 1]], β = 2: A^β = [[1, .25, 0], [.25, 1, 1], [0, 1, 1]],
    column sums 1.25, 2.25, 2, so T = [[.8, 1/9, 0], [.2, 4/9, .5], [0, 4/9, .5]] and one step of
    x = (1, 0, 0) gives x·T = (.8, 1/9, 0); dense and sparse alike."""
    a = torch.tensor([[1, .5, 0], [.5, 1, 1], [0, 1, 1]])
    t = transition_matrix(a, 2.0)
    expected = torch.tensor([[.8, 1 / 9, 0], [.2, 4 / 9, .5], [0, 4 / 9, .5]])
    assert torch.allclose(t, expected, atol=1e-6)
    x = torch.tensor([[1.0, 0, 0]])
    assert torch.allclose(walk(x, t, 1), torch.tensor([[.8, 1 / 9, 0]]), atol=1e-6)
    t_sparse = transition_matrix(a.to_sparse(), 2.0)
    assert torch.allclose(t_sparse.to_dense(), expected, atol=1e-6)
    assert torch.allclose(walk(x, t_sparse, 1), torch.tensor([[.8, 1 / 9, 0]]), atol=1e-6)
    # two steps = x·T·T
    assert torch.allclose(walk(x, t_sparse, 2), x @ expected @ expected, atol=1e-6)


def test_affinity_from_a_boundary_map_by_hand():
    """A 1×3 grid, boundary (0, .5, 0), radius 2 (neighbours at distance 1): the affinity of
    each neighbour pair is 1 − max boundary on its path = .5, the diagonal 1, the far pair 0.
    One walk step (β 1) of x = 1·(1 − edge) = (1, .5, 1): column sums 1.5, 2, 1.5, so
    x·T = (1·2/3 + .5·1/3, (1 + .5 + 1)/4·... ) = (5/6, 3/4, 5/6)."""
    edge = torch.tensor([[0.0, 0.5, 0.0]])
    a = sparse_affinity(edge, 2).to_dense()
    assert torch.allclose(a, torch.tensor([[1, .5, 0], [.5, 1, .5], [0, .5, 1]]))
    out = propagate_to_edge(torch.ones(1, 1, 3), edge, radius=2, beta=1.0, exp_times=0)
    assert torch.allclose(out.reshape(-1), torch.tensor([5 / 6, 3 / 4, 5 / 6]), atol=1e-6)


def test_sparse_affinity_is_the_references_dense_crop():
    """IRN builds the padded dense matrix (pairs, transposes, identity) and crops it
    [:-r, r:-r, :-r, r:-r]; the sparse build here gives the same matrix."""
    import torch.nn.functional as F

    from harness.masks.random_walk import edge_to_affinity

    torch.manual_seed(0)
    h, w, r = 6, 7, 5
    edge = torch.rand(h, w)
    ph, pw = h + r, w + 2 * r
    pi = PathIndex(r, (ph, pw))
    padded = F.pad(edge[None, None], (r, r, 0, r), value=1.0)
    aff = edge_to_affinity(padded.reshape(1, -1), pi.path_indices).reshape(-1)
    src = np.tile(pi.src_indices, pi.dst_indices.shape[0])
    dst = pi.dst_indices.reshape(-1)
    dense = torch.zeros(ph * pw, ph * pw)
    dense[src, dst] += aff
    dense[dst, src] += aff
    dense[range(ph * pw), range(ph * pw)] += 1
    dense = dense.view(ph, pw, ph, pw)[:-r, r:-r, :-r, r:-r].reshape(h * w, h * w)
    assert torch.equal(sparse_affinity(edge, r).to_dense(), dense)
    # and 2^3 sparse steps equal the reference's three squarings of T
    t = transition_matrix(dense, 10.0)
    squared = t @ t
    squared = squared @ squared
    squared = squared @ squared
    x = torch.rand(2, h * w)
    got = walk(x, transition_matrix(sparse_affinity(edge, r), 10.0), 8)
    assert torch.allclose(got, x @ squared, atol=1e-5)


def test_random_walk_stops_at_a_boundary():
    """Two regions split by a boundary column: a seed on the left spreads over the left only;
    the right, with no class score left after the walk, falls under the background plane."""
    edge = torch.zeros(4, 8)
    edge[:, 4] = 1.0
    cams = torch.zeros(1, 4, 8)
    cams[0, 1:3, 1] = 1.0
    labels = semantic_labels(cams, np.array([2]), edge, (16, 32), bg_thres=0.2, radius=5, beta=10,
                             exp_times=6)
    assert (labels[:, :12] == 3).all()
    assert (labels[:, 20:] == 0).all()


def test_path_index_of_a_grid_too_small_is_one_line():
    with pytest.raises(BenchError, match="radius 10 needs a feature grid larger"):
        PathIndex(10, (16, 16))


# ---- mask scoring -----------------------------------------------------------------------------

def test_masks_score_as_their_confusion_matrix():
    """mask_to_maps + SeedEvaluator reproduce a plain confusion-matrix mIoU, 255 in the mask
    counting as background (irn eval_sem_seg.py)."""
    from harness.masks.score import mask_evaluator

    class Split:
        class_names = ("a", "b", "c")
        cooccur: dict = {}
        context_names = ()

    rng = np.random.default_rng(1)
    ev = mask_evaluator(Split())
    total = np.zeros((4, 4), np.int64)
    for _ in range(3):
        gt = rng.integers(0, 4, (9, 11)).astype(np.uint8)
        gt[0, :3] = 255
        pred = rng.integers(0, 4, (9, 11)).astype(np.uint8)
        pred[1, :4] = 255
        keys, maps = mask_to_maps(pred, 3)
        ev.add(keys, maps, gt)
        total += confusion(np.where(pred == 255, 0, pred), gt, 4)
    expected = float(np.nanmean(iou_from_confusion(total)) * 100)
    assert ev.scores().seed_miou == pytest.approx(expected, abs=1e-9)


# ---- the stage end to end through the CLI, odd-size VOC fixture, real architectures at random init

from tests.fixtures_real import ODD_SIZES, VOC_TRAIN, make_voc  # noqa: E402
from tests.test_real_data import _no_env_roots, bench  # noqa: E402, F401 - fixtures

SMALL = ["--set", "limit=2", "--epochs", "1", "--set", "batch_size=2", "--set", "crop_size=100",
         "--allow-random-weights", "--device", "cpu", "--mask-set", "irn_crop_size=96"]


@pytest.fixture(scope="module")
def odd_voc(tmp_path_factory) -> Path:
    return make_voc(tmp_path_factory.mktemp("odd-voc-masks"), sizes=ODD_SIZES)


def run(monkeypatch, capsys, root: Path, tmp_path: Path, *extra: str) -> dict:
    code, out, err = bench(monkeypatch, capsys, "run", "cam", "--dataset", "voc", "--data-root", root,
                           "--runs-dir", tmp_path / "runs", "--cache-dir", tmp_path / "cache", "--json",
                           *SMALL, *extra)
    assert code == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def own_miou(mask_dir: Path, root: Path) -> float:
    """The masks' mIoU by a plain confusion matrix over the 21 VOC labels, 255 → background."""
    seg = root / "VOCdevkit" / "VOC2012" / "SegmentationClass"
    total = np.zeros((21, 21), np.int64)
    for name in VOC_TRAIN:
        pred = np.array(Image.open(mask_dir / f"{name}.png"))
        gt = np.array(Image.open(seg / f"{name}.png"))
        total += confusion(np.where(pred == 255, 0, pred), gt, 21)
    return float(np.nanmean(iou_from_confusion(total)) * 100)


def test_irn_masks_end_to_end_reused_and_rescored(monkeypatch, capsys, tmp_path, odd_voc):
    """`bench run cam --masks irn` on odd-size images: IR labels, IRN (timm ResNet-50 at random
    init) and the random walk, PNGs at the image sizes, scored; `bench eval --masks` gives the
    same mIoU as a plain confusion matrix; a change of the walk's background plane alone
    reuses the CAM, the IR labels and the trained IRN."""
    first = run(monkeypatch, capsys, odd_voc, tmp_path, "--masks", "irn")
    assert first["stage_cache"]["misses"] == ["cam", "irn_labels", "irn", "masks_irn"]
    assert first["stage_epochs"] == {"cam": 1, "irn": 1}
    masks = Path(first["path"]) / "masks"
    assert first["mask_miou"] == pytest.approx(own_miou(masks, odd_voc), abs=1e-9)
    prov = first["mask_provenance"]
    assert prov["pipeline"] == "irn" and len(prov["cams_sha256"]) == 64
    assert prov["random_walk"]["beta"] == 10.0 and prov["ir_labels"]["conf_fg_thres"] == 0.3
    code, out, err = bench(monkeypatch, capsys, "eval", "--masks", masks, "--dataset", "voc",
                           "--data-root", odd_voc, "--set", "limit=2", "--json")
    assert code == 0, err
    scored = json.loads(out.strip().splitlines()[-1])
    assert scored["mask_miou"] == pytest.approx(first["mask_miou"], abs=1e-9)
    assert set(scored["mask_per_class"]["background"]) >= {"iou", "precision", "recall"}

    second = run(monkeypatch, capsys, odd_voc, tmp_path, "--masks", "irn",
                 "--mask-set", "sem_seg_bg_thres=0.5")
    assert second["stage_cache"] == {"hits": ["cam", "irn_labels", "irn"], "misses": ["masks_irn"]}

    # a trained IRN given as a file skips training; one of another layout is one line
    irn_pt = next((tmp_path / "cache" / "stages" / "irn").glob("*/irn.pt"))
    third = run(monkeypatch, capsys, odd_voc, tmp_path, "--masks", "irn", "--irn-weights", irn_pt,
                "--mask-set", "sem_seg_bg_thres=0.5")
    assert third["mask_miou"] == pytest.approx(second["mask_miou"], abs=1e-9)
    assert third["mask_provenance"]["irn"]["weights_sha256"] and "irn" not in third["stage_epochs"]
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pt")
    code, _, err = bench(monkeypatch, capsys, "run", "cam", "--dataset", "voc", "--data-root", odd_voc,
                         "--runs-dir", tmp_path / "runs", "--cache-dir", tmp_path / "cache", *SMALL,
                         "--masks", "irn", "--irn-weights", tmp_path / "other.pt")
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code != 0 and len(errors) == 1 and "Traceback" not in err
    assert "IRN checkpoint" in errors[0] and "another layout" in errors[0]
    assert "stage cache" not in err  # refused before any stage


def test_crf_masks_end_to_end(monkeypatch, capsys, tmp_path, odd_voc):
    rec = run(monkeypatch, capsys, odd_voc, tmp_path, "--masks", "crf")
    assert rec["stage_cache"]["misses"] == ["cam", "masks_crf"]
    assert rec["mask_provenance"]["bg_threshold"] == rec["best_threshold"]
    assert rec["mask_provenance"]["crf"]["bi_sxy"] == 83  # SemPLeS's kernels
    assert rec["mask_miou"] == pytest.approx(own_miou(Path(rec["path"]) / "masks", odd_voc), abs=1e-9)
    # `bench masks` on the run's CAM folder by SemPLeS's pipeline: the same stage, the same masks
    code, out, err = bench(monkeypatch, capsys, "masks", "--cams", Path(rec["path"]) / "cams", "--out",
                           tmp_path / "again", "--method", "semples", "--dataset", "voc", "--data-root",
                           odd_voc, "--set", "limit=2", "--cache-dir", tmp_path / "cache", "--json")
    assert code == 0, err
    again = json.loads(out.strip().splitlines()[-1])
    assert "stage cache hit: masks_crf" in err
    assert again["mask_miou"] == rec["mask_miou"]
    for png in (Path(rec["path"]) / "masks").glob("*.png"):
        assert np.array_equal(np.array(Image.open(png)), np.array(Image.open(tmp_path / "again" / png.name)))


def test_bad_mask_input_is_one_line(monkeypatch, capsys, tmp_path, odd_voc):
    # a CAM folder without high_res
    cams = tmp_path / "cams"
    cams.mkdir()
    for name in VOC_TRAIN:
        np.save(cams / f"{name}.npy", {"keys": np.array([0]), "cam": np.zeros((1, 4, 4))})
    code, _, err = bench(monkeypatch, capsys, "masks", "--cams", cams, "--out", tmp_path / "m",
                         "--dataset", "voc", "--data-root", odd_voc, "--set", "limit=2", "--pipeline", "crf",
                         "--cache-dir", tmp_path / "cache")
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code != 0 and len(errors) == 1 and "lacks 'high_res'" in errors[0]
    assert not (tmp_path / "m").exists()
    # masks of the wrong size
    folder = tmp_path / "masks"
    folder.mkdir()
    for name in VOC_TRAIN:
        Image.fromarray(np.zeros((10, 12), np.uint8), mode="L").save(folder / f"{name}.png")
    code, _, err = bench(monkeypatch, capsys, "eval", "--masks", folder, "--dataset", "voc",
                         "--data-root", odd_voc, "--set", "limit=2")
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code != 0 and len(errors) == 1 and "is 12×10 but its image is" in errors[0]
    # --masks crf without the binding: refused before any training
    hide_densecrf(monkeypatch)
    code, _, err = bench(monkeypatch, capsys, "run", "cam", "--dataset", "voc", "--data-root", odd_voc,
                         "--runs-dir", tmp_path / "runs", "--cache-dir", tmp_path / "cache", *SMALL,
                         "--masks", "crf")
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code != 0 and len(errors) == 1 and "pydensecrf2" in errors[0] and "Traceback" not in err
    assert not (tmp_path / "cache" / "stages" / "cam").exists()  # nothing trained


def test_default_voc_masks_fall_back_visibly_without_the_binding(monkeypatch):
    """A default install has no pydensecrf2 (source only: a C++ build, so an extra): the
    family's default masks are skipped with one line the record keeps; --masks crf asked
    for explicitly is still resolved (and refused at the run's start, test above)."""
    from harness.runner import _base_record, resolve_config

    with_crf = resolve_config("semples", "voc", 0, [], device="cpu")
    assert with_crf.masks["pipeline"] == "crf" and with_crf.masks_fallback is None
    hide_densecrf(monkeypatch)
    cfg = resolve_config("semples", "voc", 0, [], device="cpu")
    assert cfg.masks is None
    assert cfg.masks_fallback == (
        "no pseudo masks: semples's reference masks on voc (crf) need the dense CRF, not "
        "installed (pip install 'wsss-bench[masks]'); the seed mIoU does not depend on them")
    assert _base_record(cfg, "r")["masks_fallback"] == cfg.masks_fallback
    assert resolve_config("semples", "voc", 0, [], device="cpu", masks="crf").masks_fallback is None
    assert resolve_config("semples", "synth", 0, [], device="cpu").masks_fallback is None
