"""QA-CLIMS: each loss against its formula on known tensors, config, variants, a tiny run."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from harness.errors import BenchError
from methods.qa_clims.method import brc_loss, fat_regions, fg_text_feature, frc_loss
from tests.conftest import TINY, assert_pinned


def _known():
    # one pair; 2-d features; two BG texts, the second padded away in the masked case
    vf = torch.tensor([[1.0, 0.0]])
    vb = torch.tensor([[0.0, 1.0]])
    tf = torch.tensor([[1.0, 0.0]])
    s = math.sqrt(0.5)
    tb = torch.tensor([[[s, s], [0.0, 1.0]]])
    return vf, vb, tf, tb


def test_frc_matches_eq6():
    vf, _, tf, tb = _known()
    tau = 0.5
    full = torch.tensor([[True, True]])
    # s_ff = 1, s_fb = (√½, 0):  −log e^{2} / (e^{2} + e^{2√½} + e^{0})
    want = -math.log(math.exp(2) / (math.exp(2) + math.exp(2 * math.sqrt(0.5)) + 1))
    assert frc_loss(vf, tf, tb, full, tau).item() == pytest.approx(want, rel=1e-6)
    masked = torch.tensor([[True, False]])
    want = -math.log(math.exp(2) / (math.exp(2) + math.exp(2 * math.sqrt(0.5))))
    assert frc_loss(vf, tf, tb, masked, tau).item() == pytest.approx(want, rel=1e-6)


def test_frc_uses_unrenormalised_fg_text_as_the_reference():
    # t̄^f of norm 0.5 (a mean of unit vectors): s_ff = ⟨v, t̄^f⟩ = 0.5, not the cosine 1
    vf, _, _, tb = _known()
    tf = torch.tensor([[0.5, 0.0]])
    tau = 0.5
    full = torch.tensor([[True, True]])
    want = -math.log(math.exp(1) / (math.exp(1) + math.exp(2 * math.sqrt(0.5)) + 1))
    assert frc_loss(2 * vf, tf, tb, full, tau).item() == pytest.approx(want, rel=1e-6)


def test_fg_text_feature_half_class_half_mean_answers():
    feats = torch.eye(4)  # texts 0..3, unit features
    fg_idx = torch.tensor([[0, 1, 2], [3, 0, 0]])  # row 0: answers 0, 1 then class 2; row 1: class 3
    fg_mask = torch.tensor([[True, True, True], [True, False, False]])
    got = fg_text_feature(feats, fg_idx, fg_mask)
    want = torch.tensor([[0.25, 0.25, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0]])
    assert torch.allclose(got, want)
    assert got[0].norm().item() == pytest.approx(math.sqrt(0.375))  # not renormalised


def test_brc_matches_both_forms():
    _, vb, tf, tb = _known()
    tau = 0.5
    full = torch.tensor([[True, True]])
    # s_bf = 0, s_bb = (√½, 1)
    m = (math.exp(math.sqrt(0.5) / tau) + math.exp(1 / tau)) / 2
    want_ref = -math.log(m / (math.exp(0 / tau) + m))
    assert brc_loss(vb, tf, tb, full, tau, "reference").item() == pytest.approx(want_ref, rel=1e-6)
    sbar = (math.sqrt(0.5) + 1) / 2
    want_paper = -math.log(math.exp(sbar / tau) / (math.exp(0.0) + math.exp(sbar / tau)))
    assert brc_loss(vb, tf, tb, full, tau, "paper").item() == pytest.approx(want_paper, rel=1e-6)
    masked = torch.tensor([[True, False]])
    m1 = math.exp(math.sqrt(0.5) / tau)
    assert brc_loss(vb, tf, tb, masked, tau).item() == pytest.approx(
        -math.log(m1 / (1 + m1)), rel=1e-6)
    # s_bf is taken without /τ in the paper form: it differs once s_bf ≠ 0
    vb2 = F.normalize(torch.tensor([[1.0, 1.0]]), dim=-1)
    s_bf, s_bb = math.sqrt(0.5), (0.5 + 0.5 + math.sqrt(0.5)) / 2
    want = -math.log(math.exp(s_bb / tau) / (math.exp(s_bf) + math.exp(s_bb / tau)))
    assert brc_loss(vb2, tf, tb, full, tau, "paper").item() == pytest.approx(want, rel=1e-6)


def test_fat_regions():
    p = torch.tensor([[[0.05, 0.5], [1.0, 0.09]]], requires_grad=True)
    rf, rb = fat_regions(p, omega=0.1)  # θ = 0.1 · 1.0
    assert torch.allclose(rf, torch.tensor([[[0.0, 0.5], [1.0, 0.0]]]))
    assert torch.allclose(rb, torch.tensor([[[0.95, 0.0], [0.0, 0.91]]]))
    (rf.sum() + rb.sum()).backward()
    assert torch.allclose(p.grad, torch.tensor([[[-1.0, 1.0], [1.0, -1.0]]]))  # via P only
    rf, rb = fat_regions(p, omega=0.1, fat=False)
    assert torch.equal(rf, p) and torch.allclose(rb, 1 - p)
    rf, _ = fat_regions(torch.full((1, 2, 2), 0.3), omega=1.0)  # θ = max: ≥ keeps the max
    assert torch.allclose(rf, torch.full((1, 2, 2), 0.3))


@pytest.mark.parametrize("setting, message", [
    ("omega=1.5", "omega must be ≤ 1"), ("omega=-0.1", "omega must be ≥ 0"),
    ("tau=0", "tau must be > 0"), ("alpha=-1", "alpha must be ≥ 0"),
    ("beta=-2", "beta must be ≥ 0"), ("gamma=-0.1", "gamma must be ≥ 0"),
    ("questions=fine,colour", "unknown question set"), ("brc_form=other", "brc_form must be"),
])
def test_config_validation(setting, message):
    from harness.runner import resolve_config

    with pytest.raises(BenchError, match=message):
        resolve_config("qa-clims", "synth", 0, [setting], device="cpu")


def test_defaults_and_variants():
    from harness.registry import list_variants
    from harness.runner import resolve_config

    voc = resolve_config("qa-clims", "voc", 0, [], device="cpu").params
    assert (voc.alpha, voc.beta, voc.gamma, voc.omega, voc.tau) == (10, 8, 0.2, 0.1, 0.7)
    coco = resolve_config("qa-clims", "coco", 0, [], device="cpu").params
    assert (coco.alpha, coco.beta) == (30, 24)
    names = {v.name: v for v in list_variants() if v.family == "qa-clims"}
    want = {"qa-clims", "qa-clims/frc", "qa-clims/brc", "qa-clims/frc-brc", "qa-clims/q-category",
            "qa-clims/q-fine", "qa-clims/q-alias", "qa-clims/q-object", "qa-clims/q-scene",
            "qa-clims/q-fine-alias", "qa-clims/q-object-scene", "qa-clims/no-fat"}
    assert want <= set(names)
    for n in want - {"qa-clims"}:
        assert names[n].table and names[n].description
        resolve_config(n, "synth", 0, [], device="cpu")  # every variant validates
    frc = resolve_config("qa-clims/frc", "synth", 0, [], device="cpu").params
    assert (frc.beta, frc.gamma) == (0, 0) and frc.alpha > 0


def test_mask_adapted_encoder_on_real_data_plain_on_synth(cache_dir):
    from harness.method import RunContext
    from harness.runner import resolve_config

    def params(variant, dataset, *sets):
        return resolve_config(variant, dataset, 0, list(sets), device="cpu").params

    for ds in ("voc", "coco"):  # the paper's and the reference's default
        assert params("qa-clims", ds).clip_encoder == "mask-adapted"
        assert params("qa-clims", ds).teacher_mask_prompts()
        assert params("qa-clims/plain-clip", ds).clip_encoder == "plain"
        assert params("qa-clims/no-fat", ds).clip_encoder == "mask-adapted"
    assert params("qa-clims", "synth") == params("qa-clims/plain-clip", "synth")
    assert not params("qa-clims", "synth").teacher_mask_prompts()
    # the synth teacher has no mask prompts: asking for them is one line, before anything trains
    cfg = resolve_config("qa-clims", "synth", 0, ["clip_encoder=mask-adapted"], device="cpu")
    with pytest.raises(BenchError, match="the synth teacher has no mask prompts"):
        RunContext(cfg, cache_dir, torch.device("cpu")).teacher  # noqa: B018


def test_region_features_mask_adapted_as_the_reference_encodes():
    """train_qa_clims.py:188-191, 207-208: encode_image(P·X, m=b), encode_image((1−P)·X, m=1−b)."""
    from harness.teacher import OPENAI_MEAN
    from methods.qa_clims.method import QAClimsConfig, region_features
    from tests.test_mask_clip import small_teacher

    teacher = small_teacher()
    x = torch.rand(2, 3, 56, 56)
    pk = torch.full((2, 56, 56), 0.05)
    pk[0, :28, :28], pk[1, 28:, 14:] = 0.9, 0.6  # ω = 0.1: θ = 0.09, 0.06, so b is each block
    pk.requires_grad_(True)
    b = torch.zeros(2, 1, 56, 56)
    b[0, :, :28, :28], b[1, :, 28:, 14:] = 1, 1
    fill = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)  # 0 after normalisation, as the reference
    p = pk[:, None]
    xf, xb = p * x + (1 - p) * fill, (1 - p) * x + p * fill
    got = region_features(teacher, x, pk, QAClimsConfig(clip_encoder="mask-adapted"))
    want = torch.cat([teacher.encode_image_masked(xf, b), teacher.encode_image_masked(xb, 1 - b)])
    torch.testing.assert_close(got, want)
    got.sum().backward()
    assert pk.grad is not None and pk.grad.abs().sum() > 0  # through the image X·P
    with torch.no_grad():
        plain = region_features(teacher, x, pk, QAClimsConfig(clip_encoder="plain"))
        assert (plain - got).abs().max() > 1e-3
        # without FAT no patch is prompted: the plain encoder of X·P and X·(1−P)
        no_fat = region_features(teacher, x, pk, QAClimsConfig(clip_encoder="mask-adapted", fat=False))
        torch.testing.assert_close(no_fat, torch.cat([teacher.encode_image(xf), teacher.encode_image(xb)]))


class _FakeTeacher:
    name = "fake"

    def __init__(self):
        self.calls = 0

    def encode_text(self, texts):
        self.calls += 1
        g = torch.Generator().manual_seed(0)
        table = F.normalize(torch.randn(len(texts), 4, generator=g), dim=-1)
        return table


def test_corpus_texts_padded_and_masked():
    from methods.qa_clims.method import CorpusTexts

    answers = ["water", "sky", "water", "water", "boat", "water", "water",
               "water", "sea", "lake", "sailboat", "sailboat", "ship", "ship", "ship", "vessel"]
    corpus = [{"image": 0, "class": 0, "answers": answers},
              {"image": 1, "class": 1, "answers": ["road"] * 10 + ["sedan"] * 6}]
    t = _FakeTeacher()
    texts = CorpusTexts(corpus, "fine,alias,object,scene", t, 2, 2, torch.device("cpu"),
                        ("boat", "car"))
    assert t.calls == 1  # every distinct text encoded once, in one call
    fg, bg, mask = texts(torch.tensor([0, 1]), torch.tensor([0, 1]))
    assert fg.shape == (2, 4) and bg.shape == (2, 4, 4)
    assert mask.tolist() == [[True] * 4, [True, False, False, False]]  # water, sky, sea, lake
    assert (fg.norm(dim=-1) < 1).all()  # t̄^f is not renormalised (reference net/vqa_fg.py)
    with pytest.raises(BenchError):
        texts(torch.tensor([0]), torch.tensor([1]))


def test_ritc_sums_the_contrastive_losses_over_pairs():
    """The same pair twice in a batch doubles L_FRC and L_BRC (reference: a sum over pairs)."""
    from harness.generator import build_generator
    from harness.synth.teacher import TinyClipSpec, build_tiny_clip
    from harness.teacher import Teacher
    from methods.qa_clims.method import CorpusTexts, QAClimsConfig, ritc_loss

    torch.manual_seed(0)
    clip, tok = build_tiny_clip(TinyClipSpec(), 64)
    teacher = Teacher(clip, tok, "random-tiny")
    gen = build_generator("synth-cnn", 2).eval()
    answers = ["water", "sky", "water", "water", "boat", "water", "water",
               "water", "sea", "lake", "sailboat", "sailboat", "ship", "ship", "ship", "vessel"]
    texts = CorpusTexts([{"image": 0, "class": 0, "answers": answers}], "fine,alias,object,scene",
                        teacher, 1, 2, torch.device("cpu"), ("boat", "car"))
    image = torch.rand(1, 3, 64, 64)
    one = {"image": image, "labels": torch.tensor([[1., 0]]), "index": torch.tensor([0])}
    two = {"image": image.repeat(2, 1, 1, 1), "labels": torch.tensor([[1., 0], [1, 0]]),
           "index": torch.tensor([0, 0])}
    with torch.no_grad():
        _, p1 = ritc_loss(gen, teacher, texts, QAClimsConfig(), one)
        _, p2 = ritc_loss(gen, teacher, texts, QAClimsConfig(), two)
    assert p2["frc"].item() == pytest.approx(2 * p1["frc"].item(), rel=1e-5)
    assert p2["brc"].item() == pytest.approx(2 * p1["brc"].item(), rel=1e-5)
    assert p2["reg"].item() == pytest.approx(p1["reg"].item(), rel=1e-5)  # L_REG stays a mean


def test_tiny_run_end_to_end(synth_teacher, cache_dir, runs_dir):
    from harness.runner import resolve_config, run

    cfg = resolve_config("qa-clims", "synth", 0, [*TINY, "epochs=1"], device="cpu")
    record = run(cfg, runs_dir=runs_dir, cache_dir=cache_dir, wandb_mode="disabled",
                 log=lambda m: None, show_progress=False)
    assert record.status == "ok" and record.context_fp is not None
    assert_pinned("qa-clims tiny run", record)
    assert "qape" in record.stage_cache["misses"] or "qape" in record.stage_cache["hits"]
    # an ablation shares the CAM checkpoint and the corpus
    cfg = resolve_config("qa-clims/q-category", "synth", 0, [*TINY, "epochs=1"], device="cpu")
    record = run(cfg, runs_dir=runs_dir, cache_dir=cache_dir, wandb_mode="disabled",
                 log=lambda m: None, show_progress=False)
    assert {"cam", "qape"} <= set(record.stage_cache["hits"])
