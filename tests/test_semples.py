"""SemPLeS: Eq. 1-3 on hand-computed numbers, gradient routing per stage, the stage cache,
the variants, and a tiny end-to-end run."""

from __future__ import annotations

import math

import pytest
import torch

from harness.errors import BenchError
from methods.semples.method import (
    Prompts,
    SemplesConfig,
    generator_step,
    match_loss,
    prompt_losses,
    prompt_step,
    refine_loss,
)

from .conftest import TINY, assert_pinned

VARIANTS = ["semples", "semples/match-only", "semples/random-prompts", "semples/text-prompt-only",
            "semples/image-prompt-only", "semples/joint", "semples/alternate-r2",
            "semples/alternate-r3"]


def test_match_loss_eq1():
    vf = torch.tensor([[0.6, 0.8], [1., 0]])
    vb = torch.tensor([[1., 0], [0, 1]])
    uf = torch.tensor([[1., 0], [0, 1]])
    # pair 1: sim(vf,uf)=0.6, sim(vb,uf)=1 -> 0.9999; pair 2: 0 -> 1e-4, 1 -> 0.9999
    want = ((-math.log(0.6) - 2.4 * math.log(1e-4)) + (-math.log(1e-4) - 2.4 * math.log(1e-4))) / 2
    assert match_loss(vf, vb, uf, 2.4).item() == pytest.approx(want, rel=1e-4)


def test_prompt_losses_eq2():
    ub = torch.tensor([[0.6, 0.8], [0., 1]])
    vb = torch.tensor([[1., 0], [0, 1]])
    uf = torch.tensor([[0., 1], [1, 0]])
    li, lt = prompt_losses(ub, vb, uf)
    assert li.item() == pytest.approx((-math.log(0.6) - math.log(0.9999)) / 2, rel=1e-5)
    assert lt.item() == pytest.approx((math.log(0.8) + math.log(1e-4)) / 2, rel=1e-5)


def test_refine_loss_eq3():
    vf = torch.tensor([[0.6, 0.8], [1., 0]])
    ub = torch.tensor([[0., 1], [0, 1]])
    want = (-math.log(1 - 0.8) - math.log(1 - 1e-4)) / 2
    assert refine_loss(vf, ub).item() == pytest.approx(want, rel=1e-5)


@pytest.fixture(scope="module")
def tiny_parts():
    """A random-weight tiny CLIP (no training needed for gradient routing) and a generator."""
    from harness.generator import build_generator
    from harness.synth.teacher import TinyClipSpec, build_tiny_clip
    from harness.teacher import Teacher

    torch.manual_seed(0)
    clip, tok = build_tiny_clip(TinyClipSpec(), 64)
    teacher = Teacher(clip, tok, "random-tiny")
    gen = build_generator("synth-cnn", 3)
    batch = {"image": torch.rand(4, 3, 64, 64),
             "labels": torch.tensor([[1., 0, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1]])}
    text = teacher.encode_text(["a photo of boat.", "a photo of car.", "a photo of cow."])
    return teacher, gen, batch, text


def _grads(module):
    return [p.grad for p in module.parameters()]


def test_stage_b_gradients_reach_only_prompts(tiny_parts):
    teacher, gen, batch, text = tiny_parts
    gen.zero_grad(set_to_none=True)
    gen.eval().requires_grad_(False)
    prompts = Prompts(3, 5, teacher.token_width, "normal", seed=0)
    loss, _ = prompt_step(gen, teacher, prompts, batch, text, SemplesConfig())
    loss.backward()
    gen.requires_grad_(True)
    assert prompts.embeddings.grad is not None and prompts.embeddings.grad.abs().sum() > 0
    assert all(g is None for g in _grads(gen))
    assert all(p.grad is None for p in teacher.parameters())


def test_stage_c_gradients_reach_only_generator(tiny_parts):
    teacher, gen, batch, text = tiny_parts
    gen.zero_grad(set_to_none=True)
    gen.train()
    # normal init: on this random teacher uniform prompts sit at sim < 0, clamped, no gradient
    prompts = Prompts(3, 5, teacher.token_width, "normal", seed=0)
    with torch.no_grad():
        ub = teacher.encode_prompts(prompts.embeddings).float()
    loss, parts = generator_step(gen, teacher, batch, text, ub, SemplesConfig())
    loss.backward()
    assert set(parts) == {"match", "refine"}
    assert any(g is not None and g.abs().sum() > 0 for g in _grads(gen))
    assert prompts.embeddings.grad is None
    assert all(p.grad is None for p in teacher.parameters())


def test_prompt_init_uniform_as_the_release():
    u = Prompts(3, 30, 64, "uniform", seed=0).embeddings  # release main2.py: torch.rand
    n = Prompts(3, 30, 64, "normal", seed=0).embeddings
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean().item() - 0.5) < 0.02
    assert abs(n.std().item() - 0.02) < 0.002
    assert SemplesConfig().prompt_init == "uniform"


def test_inference_min_max_normalises_raw_maps():
    import numpy as np

    from harness.infer import normalise
    from methods.semples.method import Semples

    high = np.array([[[-2.0, 0.0], [1.0, 2.0]]])
    assert Semples.inference.normalisation == "minmax" and not Semples.inference.relu
    assert np.allclose(normalise(high, "minmax"), [[[0, 0.5], [0.75, 1]]], atol=1e-5)
    assert np.allclose(normalise(np.maximum(high, 0), "max"), [[[0, 0], [0.5, 1]]], atol=1e-5)


def test_validation():
    from harness.runner import resolve_config

    for bad in (["lambda_refine=-0.1"], ["lambda_b=-1"], ["lambda_T=-1"], ["prompt_length=0"],
                ["scheme=alternate", "rounds=0"], ["rounds=2"]):
        with pytest.raises(BenchError):
            resolve_config("semples", sets=bad)


def test_variants_resolve():
    from harness.registry import get_variant
    from harness.runner import resolve_config

    for name in VARIANTS:
        assert get_variant(name).table, name
        resolve_config(name)
    p = resolve_config("semples", dataset="voc").params
    assert (p.lambda_b, p.lambda_T, p.lambda_refine, p.lr) == (2.4, 0.02, 0.05, 5e-4)
    p = resolve_config("semples", dataset="coco").params
    assert (p.lambda_b, p.lambda_T, p.lambda_refine, p.lr) == (0.75, 0.01, 0.2, 5e-6)
    assert (p.optimizer, p.schedule) == ("adamw", "cosine")


FAST = [*TINY, "epochs=1", "prompt_epochs=1", "refine_epochs=1", "prompt_length=4"]


def test_lambda_change_retrains_only_stage_c(synth_teacher, cache_dir, runs_dir):
    from harness.runner import resolve_config, run

    quiet = {"runs_dir": runs_dir, "cache_dir": cache_dir, "wandb_mode": "disabled",
             "log": lambda m: None, "show_progress": False}
    first = run(resolve_config("semples", seed=7, sets=[*FAST, "lambda_refine=0.05"]), **quiet)
    assert first.status == "ok"
    assert_pinned("semples tiny run, seed 7, lambda_refine 0.05", first)
    assert {"semples-a", "semples-b", "semples-c"} <= set(first.stage_cache["misses"])
    second = run(resolve_config("semples", seed=7, sets=[*FAST, "lambda_refine=0.1"]), **quiet)
    assert second.stage_cache["misses"] == ["semples-c"]
    assert {"cam", "semples-a", "semples-b"} <= set(second.stage_cache["hits"])
    third = run(resolve_config("semples/match-only", seed=7, sets=FAST), **quiet)
    assert third.stage_cache["misses"] == ["semples-c"]  # λ = 0: no prompts at all
    assert "semples-b" not in third.stage_cache["hits"]
    # (c) restarts from S's initial state (the CAM), so match-only needs no stage (a) either
    assert "semples-a" not in third.stage_cache["hits"]


def test_stage_output_does_not_depend_on_upstream_cache_hits(synth_teacher, cache_dir, tmp_path):
    """The same run gives the same numbers whether its CAM stage was trained in this process
    or came from the cache (each stage draws its randomness from its own key)."""
    from harness.runner import resolve_config, run

    def fresh_cache(name):
        path = tmp_path / name
        path.mkdir()
        for sub in ("synth", "teachers"):  # share the data and the trained teacher
            (path / sub).symlink_to((cache_dir / sub).resolve(), target_is_directory=True)
        return path

    quiet = {"wandb_mode": "disabled", "log": lambda m: None, "show_progress": False}
    cold, warm = fresh_cache("cold"), fresh_cache("warm")
    run(resolve_config("cam", seed=3, sets=TINY), runs_dir=tmp_path / "r0", cache_dir=warm, **quiet)
    a = run(resolve_config("semples/match-only", seed=3, sets=FAST), runs_dir=tmp_path / "r1",
            cache_dir=cold, **quiet)
    b = run(resolve_config("semples/match-only", seed=3, sets=FAST), runs_dir=tmp_path / "r2",
            cache_dir=warm, **quiet)
    assert "cam" in a.stage_cache["misses"] and "cam" in b.stage_cache["hits"]
    assert a.seed_miou == b.seed_miou and a.per_class_iou == b.per_class_iou
