"""CLIP-ES (methods/clip_es): Grad-CAM and CAA against hand computations on tiny tensors, the
ablation switches on a real (random) open_clip ViT, and the family end to end through the
CLI on synth and on odd-sized VOC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from methods.clip_es import cams
from tests.conftest import assert_pinned


def test_grad_cam_weights_channels_by_their_mean_gradient():
    # act channel 0 = (1, 2), channel 1 = (3, −1); mean gradients 0.5 and −0.5:
    # Σ = 0.5·(1, 2) − 0.5·(3, −1) = (−1, 1.5) → ReLU (0, 1.5) → min-max (0, 1)
    act = torch.tensor([[[1.0, 2.0]], [[3.0, -1.0]]])
    grad = torch.tensor([[[0.5, 0.5]], [[-1.0, 0.0]]])
    torch.testing.assert_close(cams.grad_cam(act, grad), torch.tensor([[0.0, 1.5 / (1.5 + 1e-7)]]))


def test_caa_on_a_2x2_token_map_by_hand():
    """Attention 0.6·I + 0.1·J over the 2×2 grid's 4 tokens is symmetric and doubly stochastic,
    so the normalisations keep it; squared it is 0.36·I + 0.16·J. The CAM (1, .5 / 0, 0) is
    above 0.4·max at tokens 0 and 1: one box rows [0, 1), columns [0, 2), clipped to
    columns [0, 1) by the reference's `min(x + w, width − 1)`, so only token 0's column stays;
    refined = that column × cam[0] = (0.52, 0.16, 0.16, 0.16)."""
    attn = 0.6 * torch.eye(4) + 0.1 * torch.ones(4, 4)
    torch.testing.assert_close(cams.affinity(attn), 0.36 * torch.eye(4) + 0.16 * torch.ones(4, 4))
    cam = torch.tensor([[1.0, 0.5], [0.0, 0.0]])
    assert cams.box_mask(cam, 0.4).tolist() == [[1.0, 0.0], [0.0, 0.0]]
    torch.testing.assert_close(cams.caa_refine(attn, cam, 0.4),
                               torch.tensor([[0.52, 0.16], [0.16, 0.16]]))


def test_box_mask_takes_each_8_connected_region_and_the_quantised_threshold():
    cam = torch.zeros(5, 5)
    cam[0, 0] = cam[1, 1] = 1.0  # diagonal neighbours: one region, box rows/cols [0, 2)
    cam[3, 3] = 0.41  # uint8 104 > int(0.4·255) = 102: a second region, box [3, 4)
    cam[3, 0] = 0.40  # uint8 102, not above 102: no region
    want = torch.zeros(5, 5)
    want[0:2, 0:2] = 1
    want[3, 3] = 1
    assert torch.equal(cams.box_mask(cam, 0.4), want)
    assert cams.box_mask(torch.zeros(3, 3), 0.4).sum() == 0  # nothing above: no box


def test_affinity_is_symmetric_and_near_doubly_stochastic():
    torch.manual_seed(0)
    attn = torch.rand(9, 9).softmax(-1)
    a = cams.affinity(attn)
    torch.testing.assert_close(a, a.T)
    torch.testing.assert_close(a.sum(0), torch.ones(9), atol=1e-2, rtol=0)


@pytest.fixture(scope="module")
def tiny_model():
    """A random open_clip ViT (the synth teacher's architecture) wrapped as CLIP-ES's model."""
    from harness.synth.teacher import TinyClipSpec, build_tiny_clip
    from harness.teacher import Teacher

    torch.manual_seed(0)
    clip, tok = build_tiny_clip(TinyClipSpec(), 64)
    teacher = Teacher(clip, tok, name="tiny")
    texts = teacher.encode_text(["a photo of boat.", "a photo of car."])
    bg = teacher.encode_text(["a photo of water.", "a photo of road."])
    return teacher, texts, bg


def _maps(tiny_model, **settings) -> torch.Tensor:
    from methods.clip_es.method import ClipEsModel

    teacher, texts, bg = tiny_model
    model = ClipEsModel(teacher, texts, bg if settings.pop("background", True) else bg[:0],
                        **settings)
    torch.manual_seed(1)
    return model.maps(torch.rand(1, 3, 60, 52), torch.tensor([[1.0, 0.0]]))


def test_a_lone_class_softmax_without_background_has_no_gradient(tiny_model):
    """Softmax over one text is 1 whatever the image: its Grad-CAM is 0 everywhere (why the
    background set matters); the raw logit, or the background set, give a map."""
    lone = _maps(tiny_model, background=False, caa=False)
    assert lone.shape == (1, 2, 8, 7) and float(lone.abs().max()) == 0.0  # 60×52 px → 8×7 grid
    for settings in ({"background": False, "softmax": False}, {}):
        m = _maps(tiny_model, caa=False, **settings)
        assert float(m[0, 0].max()) == pytest.approx(1.0, abs=1e-3) and float(m[0, 0].min()) == 0.0
        assert float(m[0, 1].abs().max()) == 0.0  # an absent class gets no map


def test_caa_refines_within_the_boxes_of_the_grad_cam(tiny_model):
    plain, refined = _maps(tiny_model, caa=False)[0, 0], _maps(tiny_model)[0, 0]
    assert not torch.equal(plain, refined)
    assert float(refined.max()) == pytest.approx(1.0, abs=1e-3)
    # a 2-block tower: CAA averages both blocks' attention whatever caa_layers ≥ 2 says
    torch.testing.assert_close(_maps(tiny_model, caa_layers=8), _maps(tiny_model, caa_layers=2))


def test_clip_es_is_listed_with_its_rows_and_paper():
    from harness.registry import list_variants
    from methods.papers import paper, rows

    names = {v.name for v in list_variants() if v.family == "clip-es"}
    assert names == {"clip-es", "clip-es/no-softmax", "clip-es/no-background", "clip-es/no-caa",
                     "clip-es/multi-scale"}
    seeds = [(r.label, r.published.value, r.mask.value) for r in rows("seeds")
             if r.variant == "clip-es"]
    assert seeds == [("CLIP-ES", 70.8, 75.0), ("CLIP-ES (SemPLeS)", 58.6, 75.0)]
    assert paper("clip-es").settings("coco")["box_threshold"] == 0.7
    assert paper("clip-es").settings("voc")["clip_arch"] == "ViT-B-16"


@pytest.mark.slow
def test_clip_es_end_to_end_on_synth(tmp_path, cache_dir):
    from harness.runner import run_variant

    record = run_variant("clip-es", "synth", 0, ["n_eval=16", "n_train=16"], runs_dir=tmp_path,
                         cache_dir=cache_dir, wandb_mode="disabled", show_progress=False,
                         log=lambda m: None)
    assert record.status == "ok" and record.method == "clip-es"
    assert record.metric("stage_epochs") == {}
    assert record.stage_cache == {"hits": [], "misses": []}  # nothing trains, nothing cached
    assert_pinned("clip-es tiny run", record)  # the shipped teacher's CAMs, exactly


@pytest.mark.slow
def test_clip_es_end_to_end_on_odd_sized_voc(monkeypatch, capsys, tmp_path):
    from tests.fixtures_real import ODD_SIZES, fixed_tree, make_voc
    from tests.test_real_data import bench

    root = fixed_tree("odd-voc", lambda r: make_voc(r, sizes=ODD_SIZES))
    code, out, err = bench(monkeypatch, capsys, "run", "clip-es", "--dataset", "voc",
                           "--data-root", root, "--set", "limit=8", "--allow-random-weights",
                           "--runs-dir", tmp_path / "runs", "--cache-dir", tmp_path / "cache",
                           "--device", "cpu", "--wandb", "disabled", "--json")
    assert code == 0, err[-3000:]
    record = json.loads(out.strip().splitlines()[-1])
    assert record["status"] == "ok" and record["teacher"]["teacher"] == "open_clip/ViT-B-16"
    cams_dir = Path(record["path"]) / "cams"
    import numpy as np

    for f in cams_dir.glob("*.npy"):
        high = np.load(f, allow_pickle=True).item()["high_res"]
        assert np.isfinite(high).all() and high.shape[1:] in [tuple(s) for s in ODD_SIZES]
