"""CLIMS: each loss equals its formula on hand-computed numbers; a tiny end-to-end run."""

from __future__ import annotations

import math

import pytest
import torch

from methods.clims import clims_losses
from methods.clip_losses import SIM_MAX, SIM_MIN, pair_sim, positive_pairs

from .conftest import TINY


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
    out = clims_losses(vf, vb, text, bg, masks, n_images=2, threshold=0.26)
    # OTM: sims 0.6 and 0 -> clamped 1e-4
    assert out["otm"].item() == pytest.approx((-math.log(0.6) - math.log(1e-4)) / 2, rel=1e-5)
    # BTM: sims 0.8 and 1.0 -> clamped 0.9999
    assert out["btm"].item() == pytest.approx((-math.log(0.2) - math.log(1e-4)) / 2, rel=1e-4)
    # CBS: raw sims [[1, .28], [0, .96]] gated > 0.26 -> three terms, clamped at 0.9999,
    # summed over pairs and prompts, averaged over the 2 images
    cbs = (-math.log(1e-4) - math.log(1 - 0.28) - math.log(1 - 0.96)) / 2
    assert out["cbs"].item() == pytest.approx(cbs, rel=1e-4)
    assert out["reg"].item() == pytest.approx(0.25)


def test_clims_cbs_gate_below_threshold_is_zero():
    vf = torch.tensor([[1., 0]])
    out = clims_losses(vf, vf, vf, torch.tensor([[0.2, 0.9798]]), torch.zeros(1, 1, 2, 2), 1, 0.26)
    assert out["cbs"].item() == 0.0


def test_clims_tiny_run(synth_teacher, cache_dir, runs_dir):
    from harness.runner import resolve_config, run

    cfg = resolve_config("clims", sets=[*TINY, "epochs=1"])
    assert cfg.params.w_otm == 10 and cfg.params.w_btm == 24 and cfg.params.cbs_threshold == 0.26
    rec = run(cfg, runs_dir=runs_dir, cache_dir=cache_dir, wandb_mode="disabled",
              log=lambda m: None, show_progress=False)
    assert rec["status"] == "ok" and 0 <= rec["seed_miou"] <= 100
    assert "clims" in rec["stage_cache"]["misses"]


def test_clims_coco_defaults():
    from harness.runner import resolve_config

    p = resolve_config("clims", dataset="coco").params
    assert (p.w_otm, p.w_btm, p.w_cbs, p.w_reg, p.cbs_threshold) == (2, 14, 1.25, 0.2, 0.285)
