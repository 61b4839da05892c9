"""Training as the references train: values derived by hand from their arithmetic.

- IRN misc/torchutils.py PolyOptimizer: `SGD.__init__(params, lr, weight_decay)` puts the
  weight decay in SGD's momentum slot, so the references step with momentum 1e-4.
- CLIMS step/train_clims.py:142, QA-CLIMS step/train_qa_clims.py:176, SemPLeS engine1.py:89:
  maps upsampled with align_corners=True; SemPLeS min-max normalises AFTER upsampling with
  eps 0.1 ((a)/(c), engine1.py:98) and 1e-4 ((b), engine2.py:98).
- QA-CLIMS train_qa_clims.py:219-220: a pair without BG answers is skipped; DDP averages the
  replicas' gradients of per-replica sums (`loss_replicas`).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from harness.loop import Stage, make_optimizer


def _sgd_two_steps(momentum: float) -> list[float]:
    """Two SGD steps on f(w) = ½·a·w², by hand: buf = m·buf + g + wd·w; w -= lr·buf."""
    a, lr, wd, w, buf = 3.0, 0.1, 1e-4, 1.0, 0.0
    out = []
    for step in range(2):
        d = a * w + wd * w
        buf = d if step == 0 else momentum * buf + d
        w = w - lr * buf
        out.append(w)
    return out


@pytest.mark.parametrize("momentum", [1e-4, 0.9])
def test_sgd_step_with_the_references_momentum(momentum):
    w = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    stage = Stage("x", "k", {}, [{"params": [w], "lr": 0.1}], lambda b: None, 1,
                  weight_decay=1e-4, momentum=momentum)
    opt = make_optimizer(stage)
    got = []
    for _ in range(2):
        opt.zero_grad()
        (0.5 * 3.0 * w ** 2).sum().backward()
        opt.step()
        got.append(float(w.detach()))
    assert got == pytest.approx(_sgd_two_steps(momentum), rel=1e-12)
    assert opt.param_groups[0]["momentum"] == momentum


def test_the_default_stage_and_every_sgd_family_run_momentum_1e4():
    from harness.runner import optimisation_record, resolve_config

    assert Stage("x", "k", {}, [], lambda b: None, 1).momentum == 1e-4
    for variant in ("cam", "clims", "qa-clims"):
        for dataset in ("synth", "voc", "coco"):
            rec = optimisation_record(resolve_config(variant, dataset, 0, []))
            assert rec["optimizer"] == "sgd" and rec["momentum"] == 1e-4, (variant, dataset)
            assert rec["cam_stage"]["momentum"] == 1e-4 and rec["align_corners"] is True
    # --set momentum=0.9 stays possible for anyone who wants what the authors meant
    rec = optimisation_record(resolve_config("clims", "synth", 0, ["momentum=0.9"]))
    assert rec["momentum"] == 0.9


def test_align_corners_upsample_of_a_known_grid():
    from methods.clip_losses import to_image

    grid = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).view(1, 1, 2, 2)  # value = 2·y + x
    # align_corners=True: output pixel i samples source i·(2−1)/(4−1) = i/3
    thirds = torch.arange(4.0) / 3
    want = 2 * thirds[:, None] + thirds[None, :]
    assert torch.allclose(to_image(grid, (4, 4), align_corners=True)[0, 0], want, atol=1e-6)
    # align_corners=False: source (i + ½)·½ − ½ = −¼ (clamped to 0), ¼, ¾, 1¼ (clamped to 1)
    quarters = torch.tensor([0.0, 0.25, 0.75, 1.0])
    half_pixel = 2 * quarters[:, None] + quarters[None, :]
    assert torch.allclose(to_image(grid, (4, 4), align_corners=False)[0, 0], half_pixel, atol=1e-6)


class _Maps:
    def __init__(self, logits):
        self.logits = logits

    def maps(self, images):
        return self.logits


def test_semples_masks_are_min_max_after_the_upsample():
    from methods.semples.method import cam_masks

    logits = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).view(1, 1, 2, 2)
    images = torch.zeros(1, 3, 3, 3)
    up = torch.tensor([[0.0, 0.5, 1.0], [1.0, 1.5, 2.0], [2.0, 2.5, 3.0]])
    # (x − min) / (max − min + eps) over the 3×3 upsampled map: min 0, max 3
    assert torch.allclose(cam_masks(_Maps(logits), images, eps=0.1)[0, 0], up / 3.1)
    assert torch.allclose(cam_masks(_Maps(logits), images, eps=1e-4)[0, 0], up / 3.0001)
    # the order matters where the upsample misses the extreme: a 3×3 map peaking at its
    # centre, sampled at i·2/3 by a 4×4 align_corners=True grid, never reaches the peak 4
    peak = torch.tensor([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    up = F.interpolate(peak, (4, 4), mode="bilinear", align_corners=True)[0, 0]
    assert up.max() < 4
    after = cam_masks(_Maps(peak), torch.zeros(1, 3, 4, 4), eps=0.1)[0, 0]
    assert torch.allclose(after, (up - up.min()) / (up.max() - up.min() + 0.1))
    before = F.interpolate(peak / 4.1, (4, 4), mode="bilinear", align_corners=True)[0, 0]
    assert after.max() > before.max() + 0.1


class _LinearTeacher:
    """Image features = the mean colour of the crop (3-D), unnormalised (ritc normalises)."""

    def encode_image(self, x):
        return x.mean(dim=(-2, -1))


class _Texts:
    def __init__(self, tf, tb, mask):
        self.tf, self.tb, self.mask = tf, tb, mask

    def __call__(self, images, classes):
        return self.tf, self.tb, self.mask


def _frc_by_hand(v, tf, tbs, tau):
    v = [x / math.sqrt(sum(y * y for y in v)) for x in v]
    s_ff = sum(a * b for a, b in zip(v, tf, strict=True)) / tau
    s_fb = [sum(a * b for a, b in zip(v, t, strict=True)) / tau for t in tbs]
    return -math.log(math.exp(s_ff) / (math.exp(s_ff) + sum(math.exp(s) for s in s_fb)))


def _brc_by_hand(v, tf, tbs, tau):  # the reference form: every exponent /τ, mean of exp
    v = [x / math.sqrt(sum(y * y for y in v)) for x in v]
    s_bf = sum(a * b for a, b in zip(v, tf, strict=True)) / tau
    m = sum(math.exp(sum(a * b for a, b in zip(v, t, strict=True)) / tau) for t in tbs) / len(tbs)
    return -math.log(m / (math.exp(s_bf) + m))


def test_ritc_skips_a_pair_without_bg_text_and_divides_by_the_replicas():
    from harness.clip_ops import masked
    from methods.qa_clims.method import QAClimsConfig, fat_regions, ritc_loss

    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 4, 4, generator=g)
    logits = torch.randn(2, 2, 2, 2, generator=g)
    labels = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # pairs (0,0), (1,0), (1,1)
    tf = torch.randn(3, 3, generator=g)
    tb = torch.randn(3, 2, 3, generator=g)
    mask = torch.tensor([[True, True], [False, False], [True, False]])  # pair 1: no BG text
    batch = {"image": images, "labels": labels, "index": torch.arange(2)}
    p = QAClimsConfig(loss_replicas=2)
    with torch.no_grad():
        _, parts = ritc_loss(_Maps(logits), _LinearTeacher(), _Texts(tf, tb, mask), p, batch)
        up = F.interpolate(torch.sigmoid(logits), (4, 4), mode="bilinear", align_corners=True)
        n, k = labels.nonzero(as_tuple=True)
        rf, rb = fat_regions(up[n, k], p.omega)
        vf = _LinearTeacher().encode_image(masked(images[n], rf))
        vb = _LinearTeacher().encode_image(masked(images[n], rb))
    kept = [0, 2]
    frc = sum(_frc_by_hand(vf[i].tolist(), tf[i].tolist(),
                           [tb[i, j].tolist() for j in range(2) if mask[i, j]], p.tau) for i in kept)
    brc = sum(_brc_by_hand(vb[i].tolist(), tf[i].tolist(),
                           [tb[i, j].tolist() for j in range(2) if mask[i, j]], p.tau) for i in kept)
    assert parts["frc"].item() == pytest.approx(frc / 2, rel=1e-5)
    assert parts["brc"].item() == pytest.approx(brc / 2, rel=1e-5)
    assert parts["reg"].item() == pytest.approx(torch.sigmoid(logits).mean().item(), rel=1e-6)


def test_corpus_rows_without_bg_answers_have_no_bg_text_unless_asked():
    from methods.qape import entry_texts

    answers = ["boat"] * 10 + ["sailboat"] * 6  # every BG answer is the class itself
    fg, bg = entry_texts("boat", answers, ("fine", "alias", "object", "scene"))
    assert bg == [] and fg
    _, bg = entry_texts("boat", answers, ("fine", "alias", "object", "scene"), empty_bg="no-class")
    assert bg == ["a photo of no boat."]
    _, bg = entry_texts("boat", answers, ("fine",))  # no BG set: the RITC-only baseline's text
    assert bg == ["a photo of no boat."]


def test_clims_cbs_is_divided_by_the_replicas_and_reg_is_at_feature_resolution():
    from methods.clims.method import ClimsConfig, clims_step

    g = torch.Generator().manual_seed(1)
    images = torch.rand(2, 3, 4, 4, generator=g)
    logits = torch.randn(2, 2, 2, 2, generator=g)
    batch = {"image": images, "labels": torch.tensor([[1.0, 0.0], [1.0, 1.0]])}

    class Teacher:
        def encode_image(self, x):
            return F.normalize(x.mean(dim=(-2, -1)), dim=-1)

    text = F.normalize(torch.randn(2, 3, generator=g), dim=-1)
    bg = F.normalize(torch.randn(4, 3, generator=g), dim=-1)
    with torch.no_grad():
        one, p1 = clims_step(_Maps(logits), Teacher(), batch, text, bg, ClimsConfig(), -1.0)
        two, p2 = clims_step(_Maps(logits), Teacher(), batch, text, bg,
                             ClimsConfig(loss_replicas=2), -1.0)
    assert p1["cbs"] > 0 and p1["cbs"] == p2["cbs"]
    assert (one - two).item() == pytest.approx(0.5 * p1["cbs"].item(), rel=1e-5)
    assert p1["reg"].item() == pytest.approx(torch.sigmoid(logits).mean().item(), rel=1e-6)


def test_the_scheme_table_compares_equal_epochs_of_the_final_generator():
    from harness.runner import resolve_config, stage_epochs

    sets = ["epochs=5", "refine_epochs=4", "prompt_epochs=2"]
    final = {v: {k: e for k, e in stage_epochs(resolve_config(v, "synth", 0, sets)).items()
                 if k in ("semples-c", "semples-joint")}
             for v in ("semples", "semples/joint")}
    assert final == {"semples": {"semples-c": 4}, "semples/joint": {"semples-joint": 4}}
