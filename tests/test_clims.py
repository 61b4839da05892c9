"""CLIMS: each loss equals its formula on hand-computed numbers; a tiny end-to-end run."""

from __future__ import annotations

import math

import pytest
import torch

from methods.clims.method import ClimsConfig, cbs_gate, clims_losses
from methods.clip_losses import SIM_MAX, SIM_MIN, pair_sim, positive_pairs

from .conftest import TINY, assert_pinned


def test_positive_pairs_are_vectorised_nonzero():
    labels = torch.tensor([[1., 0, 1], [0, 1, 0]])
    n, k = positive_pairs(labels)
    assert n.tolist() == [0, 0, 1] and k.tolist() == [0, 2, 1]


def test_pair_sim_clamps():
    a = torch.tensor([[1., 0], [1, 0], [1, 0]])
    b = torch.tensor([[1., 0], [-1, 0], [0.5, 0]])
    assert pair_sim(a, b).tolist() == pytest.approx([SIM_MAX, SIM_MIN, 0.5])


def test_clims_losses_hand_computed():
    vf = torch.tensor([[1., 0], [0, 1]])        # two positive pairs
    vb = torch.tensor([[0., 1], [1, 0]])
    text = torch.tensor([[0.6, 0.8], [1., 0]])  # t_k of each pair
    bg = torch.tensor([[1., 0], [0.28, 0.96]])  # two background prompts
    masks = torch.full((2, 3, 4, 4), 0.25)
    out = clims_losses(vf, vb, text, bg, masks, threshold=0.26)
    # OTM: sims 0.6 and 0 -> clamped 1e-4
    assert out["otm"].item() == pytest.approx((-math.log(0.6) - math.log(1e-4)) / 2, rel=1e-5)
    # BTM: sims 0.8 and 1.0 -> clamped 0.9999
    assert out["btm"].item() == pytest.approx((-math.log(0.2) - math.log(1e-4)) / 2, rel=1e-4)
    # CBS: raw sims [[1, .28], [0, .96]] gated > 0.26 -> three terms, clamped at 0.9999,
    # summed over pairs and prompts and NOT divided by images (reference clip_loss.py)
    cbs = -math.log(1e-4) - math.log(1 - 0.28) - math.log(1 - 0.96)
    assert out["cbs"].item() == pytest.approx(cbs, rel=1e-4)
    assert out["reg"].item() == pytest.approx(0.25)


def test_clims_cbs_gate_below_threshold_is_zero():
    vf = torch.tensor([[1., 0]])
    out = clims_losses(vf, vf, vf, torch.tensor([[0.2, 0.9798]]), torch.zeros(1, 1, 2, 2), 0.26)
    assert out["cbs"].item() == 0.0


def test_cbs_sum_grows_with_pairs_like_the_reference():
    """Doubling the batch (same pairs twice) doubles L_CBS, leaves the means unchanged."""
    vf = torch.tensor([[0.6, 0.8]])
    bg = torch.tensor([[0.6, 0.8], [1., 0]])  # sims 0.9999 (clamped) and 0.6, both gated
    masks = torch.zeros(1, 1, 2, 2)
    one = clims_losses(vf, vf, vf, bg, masks, 0.26)
    two = clims_losses(vf.repeat(2, 1), vf.repeat(2, 1), vf.repeat(2, 1), bg, masks, 0.26)
    assert one["cbs"].item() == pytest.approx(-math.log(1e-4) - math.log(0.4), rel=1e-4)
    assert two["cbs"].item() == pytest.approx(2 * one["cbs"].item(), rel=1e-6)
    assert two["otm"].item() == pytest.approx(one["otm"].item())


def test_cbs_gate_comes_from_the_teacher_when_it_has_one():
    class Scaled:
        cbs_gate = 0.71

    p = ClimsConfig()
    assert cbs_gate(Scaled(), p) == 0.71
    assert cbs_gate(object(), p) == p.cbs_threshold == 0.26  # real CLIP: the paper's value


def test_clims_tiny_run(synth_teacher, cache_dir, runs_dir):
    from harness.runner import resolve_config, run

    cfg = resolve_config("clims", sets=[*TINY, "epochs=1"])
    assert cfg.params.w_otm == 10 and cfg.params.w_btm == 24 and cfg.params.cbs_threshold == 0.26
    rec = run(cfg, runs_dir=runs_dir, cache_dir=cache_dir, wandb_mode="disabled",
              log=lambda m: None, show_progress=False)
    assert rec.status == "ok" and "clims" in rec.stage_cache["misses"]
    assert_pinned("clims tiny run", rec)


def test_clims_coco_defaults():
    from harness.runner import resolve_config

    p = resolve_config("clims", dataset="coco").params
    assert (p.w_otm, p.w_btm, p.w_cbs, p.w_reg, p.cbs_threshold) == (2, 14, 1.25, 0.2, 0.285)
