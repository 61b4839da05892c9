"""The embedded teacher: accuracy gate, the prompt path through the frozen text tower."""

import pytest
import torch

from harness.data.synth import SynthSpec
from harness.errors import BenchError
from harness.synth_teacher import ACCURACY_GATE, TinyClipSpec, check_gate, load_or_train


@pytest.mark.slow
def test_synth_teacher_passes_its_accuracy_gate(synth_teacher):
    _, info = synth_teacher
    assert info["zero_shot_objects"] >= ACCURACY_GATE
    assert info["zero_shot_contexts"] >= ACCURACY_GATE
    check_gate(info)
    # QA-CLIMS's FG answers name sub-types: the teacher tells them apart far above chance (1/12)
    assert info["zero_shot_subtypes"] >= 60.0


def test_teacher_captions_hold_the_fg_answer_names():
    from harness.synth_teacher import captions, fine_names
    from methods.qape import fg_texts

    caps = set(captions())
    assert fine_names("boat", "sailboat") == ["sailboat boat", "ship boat", "vessel boat"]
    assert fine_names("cow", "dairy cow")[0] == "dairy cow"  # already holds the class name
    # every FG text the post-processing makes from a truthful synth answer is a caption
    assert set(fg_texts("train", ["freight train", "passenger", "locomotive"])) <= caps


def test_gate_refuses_a_weak_teacher():
    with pytest.raises(BenchError, match="below the 90% gate"):
        check_gate({"zero_shot_objects": 95.0, "zero_shot_contexts": 42.0})


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


def test_corrupt_cached_teacher_is_one_clear_error(tmp_path):
    from harness.synth_teacher import teacher_path

    spec = TinyClipSpec()
    path = teacher_path(SynthSpec(), spec, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    path.with_suffix(".json").write_text("{}")
    with pytest.raises(BenchError, match="is corrupt"):
        load_or_train(SynthSpec(), tmp_path, spec)


def test_stage_keys_name_the_teacher_file(tmp_path):
    """A retrained (re-keyed) synth teacher re-keys every stage trained against it."""
    from harness.method import RunContext
    from harness.runner import resolve_config
    from harness.synth_teacher import teacher_path

    def key(*sets):
        cfg = resolve_config("semples", "synth", 0, list(sets), device="cpu")
        return RunContext(cfg, tmp_path, torch.device("cpu")).teacher_key()

    assert key() == {"teacher": teacher_path(SynthSpec(), TinyClipSpec(), tmp_path).stem}
    assert key("p_cooccur=0.5") != key() and key("n_eval=16") == key()
    assert key("teacher_seed=1") == {
        "teacher": teacher_path(SynthSpec(), TinyClipSpec(seed=1), tmp_path).stem}
    assert key("teacher_seed=1") != key()


def test_the_fill_is_one_object_in_teacher_training_and_method_crops():
    import harness.synth_teacher as synth_teacher
    import methods.clip_losses as clip_losses
    import methods.qa_clims as qa_clims
    from harness import clip_ops

    assert clip_losses.NEUTRAL_FILL is clip_ops.NEUTRAL_FILL
    assert synth_teacher.masked is clip_ops.masked and qa_clims.masked is clip_ops.masked
    assert clip_losses.fg_bg is clip_ops.fg_bg
    fill = clip_ops.fill_like(torch.zeros(1))
    images, masks = torch.rand(2, 3, 8, 8), torch.rand(2, 1, 8, 8)
    fg, bg = clip_losses.crops(images, masks, torch.tensor([1]), torch.tensor([0]))
    torch.testing.assert_close(fg, masks[1] * images[1] + (1 - masks[1]) * fill[0])
    torch.testing.assert_close(bg, (1 - masks[1]) * images[1] + masks[1] * fill[0])
    torch.testing.assert_close(clip_ops.masked(images, torch.zeros(2, 8, 8)), fill.expand(2, 3, 8, 8))
