"""The embedded teacher: its gates, the neutral fill, the prompt path through the text tower."""

import json
import math
import shutil

import pytest
import torch

from harness.errors import BenchError
from harness.synth import gates
from harness.synth.data import SynthSpec
from harness.synth.teacher import TinyClipSpec, check_gate, gate_rows, load_or_train

PASSING = {"zero_shot_objects": 97.0, "zero_shot_contexts": 100.0, "zero_shot_objects_dim": 95.0,
           "zero_shot_objects_partial": 93.0, "blank_min_margin": 0.2, "gt_wins_match": 96.0,
           "gt_wins_refine": 99.0, "gt_wins_clims": 95.0, "cbs_gate": 0.5}
# what a run with the built-in families hands the teacher: three losses, L_refine enforced
# (the losses themselves are not called by the record checks)
PAIRS = gates.PairGates(dict.fromkeys(("clims", "match", "refine")), ("refine",))


@pytest.mark.slow
def test_synth_teacher_passes_its_gates(synth_teacher):
    from harness.registry import context_gates

    teacher, info = synth_teacher
    pairs = context_gates()
    check_gate(info, pairs)
    enforced = [row for row in gate_rows(info, pairs) if "not enforced" not in row[2]]
    assert all(row[3] for row in enforced) and len(enforced) == 6
    assert [g["passed"] for g in info["gates"]] == [row[3] for row in gate_rows(info, pairs)]
    # QA-CLIMS's FG answers name sub-types: the teacher tells them apart far above chance (1/12)
    assert info["zero_shot_subtypes"] >= 60.0
    assert teacher.cbs_gate == info["cbs_gate"] and -1 < teacher.cbs_gate < 1


@pytest.mark.slow
def test_a_blank_image_is_nothing_to_the_teacher(synth_teacher):
    """The issue's figure: black had sim 0.69 with "bird"; now every blank is "nothing"."""
    from harness.synth.data import CLASSES
    from harness.synth.teacher import NOTHING, object_prompt

    teacher, info = synth_teacher
    m = gates.blank_margins(teacher, NOTHING, [object_prompt(c) for c in CLASSES])
    assert len(m) == len(gates.blank_images(64)) and float(m.min()) == pytest.approx(
        info["blank_min_margin"], abs=1e-5)
    assert (m > 0).all()


@pytest.mark.parametrize("key, value, fragment", [
    ("zero_shot_contexts", 42.0, "zero-shot contexts 42.0% < 90%"),
    ("zero_shot_objects_dim", 89.9, "zero-shot objects_dim 89.9% < 90%"),
    ("zero_shot_objects_partial", 60.0, "zero-shot objects_partial 60.0% < 90%"),
    ("blank_min_margin", -0.01, "closer to a class than to 'nothing'"),
    ("blank_min_margin", 0.0, "closer to a class than to 'nothing'"),
    ("gt_wins_refine", 85.0, "L_refine on 85.0% of pairs < 90%"),
])
def test_each_gate_refuses_a_weak_teacher(key, value, fragment):
    check_gate(PASSING, PAIRS)  # the passing record passes
    info = {**PASSING, key: value}
    with pytest.raises(BenchError, match="fails its gates") as exc:
        check_gate(info, PAIRS)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)
    assert [row[0] for row in gate_rows(info, PAIRS) if not row[3]] != []


def test_a_teacher_without_a_gate_record_is_refused():
    info = {k: v for k, v in PASSING.items() if k != "gt_wins_match"}
    with pytest.raises(BenchError, match="has no gate record"):
        check_gate(info, PAIRS)
    assert not all(row[3] for row in gate_rows(info, PAIRS))


def test_margins_on_known_features():
    e = torch.eye(3)
    nothing, classes = e[0], e[1:]
    feats = torch.stack([e[0], e[1], (e[0] + e[2]) / math.sqrt(2)])
    torch.testing.assert_close(gates.margins(feats, nothing, classes),
                               torch.tensor([1.0, -1.0, 0.0]))


def test_cbs_gate_is_the_95th_percentile():
    sims = torch.arange(101, dtype=torch.float32).view(-1, 1) / 100  # 0.00 … 1.00
    assert gates.percentile_gate(sims) == pytest.approx(0.95)
    assert float((sims > gates.percentile_gate(sims)).float().mean()) <= 0.05  # fires on ≤ 5 %


def test_win_rate_counts_strict_wins():
    assert gates.win_rate(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([2.0, 2.0, 1.0, 5.0])) == 50.0


def _known_pair(cbs_gate: float) -> gates.ContextPair:
    """cos(vf, uf) = 0.8, cos(vb, uf) = 0.6, cos(vf, ub) = 0.6, cos(vf, bg) = (0.6, 0.0)."""
    return gates.ContextPair(vf=torch.tensor([[0.8, 0.6, 0.0]]), vb=torch.tensor([[0.6, 0.8, 0.0]]),
                             uf=torch.tensor([[1.0, 0.0, 0.0]]), ub=torch.tensor([[0.0, 1.0, 0.0]]),
                             bg_texts=torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
                             masks=torch.full((1, 1, 2, 2), 0.25), cbs_gate=cbs_gate)


def test_the_pair_gates_losses_equal_the_papers_formulas_at_their_voc_weights():
    from harness.registry import context_gates

    pairs = context_gates()
    losses = pairs.losses
    assert sorted(losses) == ["clims", "match", "refine"] and pairs.enforced == ("refine",)
    got = {name: float(loss(_known_pair(0.3))) for name, loss in losses.items()}
    assert got["match"] == pytest.approx(-math.log(0.8) - 2.4 * math.log(0.4), rel=1e-5)  # λ_b 2.4
    assert got["refine"] == pytest.approx(-math.log(0.4), rel=1e-5)
    clims = 10 * -math.log(0.8) + 24 * -math.log(0.4) + 1 * -math.log(0.4) + 0.2 * 0.25
    assert got["clims"] == pytest.approx(clims, rel=1e-5)
    # above every similarity the gate switches L_CBS off
    off = float(losses["clims"](_known_pair(0.7)))
    assert got["clims"] - off == pytest.approx(-math.log(0.4), rel=1e-5)


def test_the_pair_gates_measure_the_methods_own_loss_functions(monkeypatch):
    """One formula: change a method's loss and the gate measures the change."""
    import methods.clims.method as clims
    import methods.semples.method as semples
    from harness.registry import context_gates

    monkeypatch.setattr(semples, "refine_loss", lambda vf, ub: torch.tensor(7.0))
    monkeypatch.setattr(clims, "clims_objective", lambda parts, p: parts["reg"] * 0 + 3.0)
    losses = context_gates().losses
    assert float(losses["refine"](_known_pair(0.3))) == 7.0
    assert float(losses["clims"](_known_pair(0.3))) == 3.0


def test_the_neutral_fill_is_one_object_in_teacher_training_and_method_crops():
    import harness.synth.teacher as synth_teacher
    import methods.clip_losses as clip_losses
    import methods.qa_clims.method as qa_clims
    from harness import clip_ops
    from harness.teacher import OPENAI_MEAN, OPENAI_STD

    assert clip_losses.NEUTRAL_FILL is clip_ops.NEUTRAL_FILL
    assert synth_teacher.masked is clip_ops.masked and qa_clims.masked is clip_ops.masked
    assert gates.fg_bg is clip_losses.fg_bg is clip_ops.fg_bg
    # the reference masks the normalised image: a masked-out pixel is 0 after normalisation
    fill = clip_ops.fill_like(torch.zeros(1))
    assert torch.allclose((fill - torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1))
                          / torch.tensor(OPENAI_STD).view(1, 3, 1, 1), torch.zeros(1, 3, 1, 1))
    images = torch.rand(2, 3, 8, 8)
    masks = torch.rand(2, 1, 8, 8)
    n, k = torch.tensor([1]), torch.tensor([0])
    fg, bg = clip_losses.crops(images, masks, n, k)
    torch.testing.assert_close(fg, masks[1] * images[1] + (1 - masks[1]) * fill[0])
    torch.testing.assert_close(bg, (1 - masks[1]) * images[1] + masks[1] * fill[0])
    torch.testing.assert_close(clip_ops.masked(images, torch.zeros(2, 8, 8)), fill.expand(2, 3, 8, 8))


def test_partial_masks_cut_the_stated_share_of_the_box():
    from harness.synth.teacher import cut_mask

    m = torch.zeros(1, 1, 16, 16)
    m[..., 2:12, 4:14] = 1  # a 10 × 10 box
    for side, kept in [(0, (slice(5, 12), slice(4, 14))), (1, (slice(2, 9), slice(4, 14))),
                       (2, (slice(2, 12), slice(7, 14))), (3, (slice(2, 12), slice(4, 11)))]:
        cut = cut_mask(m, 0.3, side)
        assert float(cut.sum()) == 70 and float(cut[0, 0][kept].sum()) == 70


@pytest.mark.slow
def test_a_run_refuses_a_teacher_that_fails_a_gate(synth_teacher, cache_dir, tmp_path):
    """A cached teacher whose record fails a gate: the run stops at once, in one line."""
    from harness.artefacts import write_manifest
    from harness.synth.teacher import teacher_path
    from tests.conftest import TINY
    from tests.test_cli import assert_one_line_error, bench

    teacher, info = synth_teacher
    cache = tmp_path / "cache"
    # teacher seed 1: no teacher ships for it, so the cached one is what the run loads
    path = teacher_path(SynthSpec(), TinyClipSpec(seed=1), cache)
    path.parent.mkdir(parents=True)
    torch.save(teacher.clip.state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps({**info, "blank_min_margin": -0.3}))
    # as its build would have: the manifest covers the record that fails the gate
    write_manifest(path.with_suffix(".manifest.json"), [path, path.with_suffix(".json")])
    proc = bench("run", "semples", *[a for s in [*TINY, "teacher_seed=1"] for a in ("--set", s)],
                 "--runs-dir", str(tmp_path / "runs"), cache_dir=cache)
    assert_one_line_error(proc, "synth teacher fails its gates: a blank image is closer")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_teacher_captions_hold_the_fg_answer_names():
    from harness.synth.teacher import captions, fine_names
    from methods.qape import fg_texts

    caps = set(captions())
    assert fine_names("boat", "sailboat") == ["sailboat boat", "ship boat", "vessel boat"]
    assert fine_names("cow", "dairy cow")[0] == "dairy cow"  # already holds the class name
    # every FG text the post-processing makes from a truthful synth answer is a caption
    assert set(fg_texts("train", ["freight train", "passenger", "locomotive"])) <= caps


def test_learned_prompts_equal_text_when_they_are_word_embeddings(synth_teacher):
    teacher, _ = synth_teacher
    word = teacher.tokenizer(["boat"])[0][1:2]  # the token between SOT and EOT
    prompts = teacher.clip.token_embedding(word)[None].clone().requires_grad_(True)
    via_prompts = teacher.encode_prompts(prompts)
    via_text = teacher.encode_text(["a photo of boat ."])
    torch.testing.assert_close(via_prompts, via_text, atol=1e-5, rtol=1e-4)
    via_prompts.sum().backward()
    assert prompts.grad is not None and prompts.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.clip.parameters())  # the tower stays frozen


def test_encode_image_is_differentiable_wrt_input_only(synth_teacher):
    teacher, _ = synth_teacher
    images = torch.rand(2, 3, 64, 64, requires_grad=True)
    feats = teacher.encode_image(images)
    assert torch.allclose(feats.norm(dim=-1), torch.ones(2), atol=1e-5)
    feats.sum().backward()
    assert images.grad is not None and all(p.grad is None for p in teacher.clip.parameters())


@pytest.mark.slow  # trains the synth teacher again
def test_a_damaged_cached_teacher_is_named_and_trained_again(cache_dir, tmp_path):
    """Flipped bytes in the cached teacher: one warning naming the file, then the same
    teacher trained again (a few steps: the check, not the teacher, is under test)."""
    from harness.registry import context_gates
    from harness.synth.teacher import teacher_path

    spec = TinyClipSpec(steps=3, batch_size=16)
    pairs = context_gates()  # this spec is not shipped: it trains, and its gates are measured
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "synth").symlink_to((cache_dir / "synth").resolve(), target_is_directory=True)
    said: list[str] = []
    first, _ = load_or_train(SynthSpec(), cache, spec, log=said.append, pairs=pairs)
    path = teacher_path(SynthSpec(), spec, cache)
    assert path.with_suffix(".manifest.json").is_file() and not list(path.parent.glob("*.tmp"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2:len(data) // 2 + 4096] = bytes(4096)
    path.write_bytes(bytes(data))
    said.clear()
    second, _ = load_or_train(SynthSpec(), cache, spec, log=said.append, pairs=pairs)
    assert said[0] == (f"warning: synth teacher {path} does not match its sha256 (its bytes "
                       "changed after its build wrote them); training the teacher again")
    for (name, a), b in zip(first.clip.state_dict().items(), second.clip.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    said.clear()
    load_or_train(SynthSpec(), cache, spec, log=said.append, pairs=pairs)
    assert said == []  # intact again: loaded, not trained


def test_stage_keys_name_the_teacher_file(tmp_path):
    """A retrained (re-keyed) synth teacher re-keys every stage trained against it."""
    from harness.artefacts import file_sha256
    from harness.method import RunContext
    from harness.runner import resolve_config
    from harness.synth.teacher import teacher_path

    def key(*sets):
        cfg = resolve_config("semples", "synth", 0, list(sets), device="cpu")
        return RunContext(cfg, tmp_path, torch.device("cpu")).teacher_key()

    from harness.synth.shipped import shipped_paths

    stem = teacher_path(SynthSpec(), TinyClipSpec(), tmp_path).stem
    sha = file_sha256(shipped_paths(tmp_path / f"{stem}.pt")[0])
    assert key() == {"teacher": f"{stem}-shipped-{sha[:12]}"}  # the shipped teacher, by its bytes
    assert key("p_cooccur=0.5") != key() and key("n_eval=16") == key()
    assert key("teacher_seed=1") == {
        "teacher": teacher_path(SynthSpec(), TinyClipSpec(seed=1), tmp_path).stem}
    assert key("teacher_seed=1") != key()



def test_pair_gates_not_yet_enforced_are_printed_not_enforced():
    info = {**PASSING, "gt_wins_match": 60.0, "gt_wins_clims": 70.0}
    check_gate(info, PAIRS)  # L_match and the CLIMS loss: measured and shown, not enforced
    rows = {row[0]: row for row in gate_rows(info, PAIRS)}
    for name in ("match", "clims"):
        gate, measured, required, passed = rows[f"GT beats GT + co-occurring context, L_{name}"]
        assert not passed and "not enforced" in required
    assert "not enforced" not in rows["GT beats GT + co-occurring context, L_refine"][2]


def test_the_run_decides_which_pair_gates_a_teacher_must_pass():
    """harness/synth names no loss: the same record passes or fails by what the run asks."""
    info = {**PASSING, "gt_wins_clims": 70.0}
    check_gate(info, PAIRS)
    with pytest.raises(BenchError, match="L_clims on 70.0% of pairs < 90%"):
        check_gate(info, gates.PairGates(PAIRS.losses, ("refine", "clims")))
    with pytest.raises(BenchError, match="has no gate record .gt_wins_new"):
        check_gate(info, gates.PairGates({**PAIRS.losses, "new": None}))


def test_shipped_teacher_is_the_packed_one_and_verified(tmp_path, monkeypatch):
    """The default teacher ships (no training on a fresh machine): it loads from the package,
    verified by its manifest, its gates pass; flipped bytes are one line naming the file."""
    from harness.synth import shipped
    from harness.synth.teacher import teacher_path

    said: list[str] = []
    teacher, info = load_or_train(SynthSpec(), tmp_path, log=said.append, pairs=PAIRS)
    weights = shipped.shipped_paths(teacher_path(SynthSpec(), TinyClipSpec(), tmp_path))[0]
    assert info["shipped"] and info["path"] == str(weights) and said == []
    assert not list((tmp_path / "teachers").glob("*.pt"))  # nothing trained, nothing written
    check_gate(info, PAIRS)
    packed = torch.load(weights, weights_only=True)
    assert packed[shipped.TOKENS].dtype == torch.float16 and len(packed[shipped.ROWS]) < 200
    state = teacher.clip.state_dict()
    rows = packed[shipped.ROWS].long()
    assert torch.equal(state[shipped.TOKENS][rows], packed[shipped.TOKENS].float())
    assert torch.equal(state["text_projection"], packed["text_projection"].float())
    copy = tmp_path / "shipped"
    shutil.copytree(shipped.SHIPPED_DIR, copy)
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF
    (copy / weights.name).write_bytes(bytes(data))
    monkeypatch.setattr(shipped, "SHIPPED_DIR", copy)
    with pytest.raises(BenchError, match=f"shipped synth teacher {copy / weights.name} "
                       "does not match its sha256"):
        load_or_train(SynthSpec(), tmp_path, log=said.append, pairs=PAIRS)


def test_pack_ships_only_trained_token_rows_and_unpack_rebuilds_the_rest():
    """Rows that training never touched are the initial rows × AdamW's decay product, rebuilt
    from the seed; the rows that moved ship (in fp16)."""
    from harness.synth import shipped
    from harness.synth.teacher import rebuilt_tokens

    spec = TinyClipSpec(steps=5)
    # what AdamW really does to a row whose gradient stays 0 (an unused token) over the schedule
    row = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    opt = torch.optim.AdamW([row], lr=spec.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, spec.lr, total_steps=5, pct_start=0.1)
    for _ in range(5):
        row.grad = torch.zeros_like(row)
        opt.step()
        sched.step()
    decay = shipped.weight_decay_factor(spec.lr, spec.steps, 0.05)
    assert decay == pytest.approx(float(row.detach()[0]), rel=1e-12) and decay < 1
    rebuilt = rebuilt_tokens(spec, 64)
    assert torch.equal(rebuilt, rebuilt_tokens(spec, 64))  # seeded: the same table every time
    tokens = rebuilt.clone()
    tokens[[7, 300]] += 0.01  # two rows "trained"
    state = {shipped.TOKENS: tokens, "w": torch.ones(2), "step": torch.tensor(3)}
    packed = shipped.pack(state, rebuilt)
    assert packed[shipped.ROWS].tolist() == [7, 300] and packed["w"].dtype == torch.float16
    full = shipped.unpack(packed, rebuilt)
    torch.testing.assert_close(full[shipped.TOKENS], tokens, atol=1e-3, rtol=1e-3)
    assert torch.equal(full[shipped.TOKENS][300], tokens[300].half().float())
    assert torch.equal(full["step"], torch.tensor(3))
