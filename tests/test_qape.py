"""QAPE: templates, post-processing, the synth answerer, and the resumable BLIP build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from methods.qape import bg_texts, entry_texts, fg_texts, lemmatise
from methods.vqa import TEMPLATES
from tests.fixtures_real import make_tiny_blip


def test_templates_are_the_papers():
    kinds = [k for k, _ in TEMPLATES]
    assert len(TEMPLATES) == 16
    assert [kinds.count(s) for s in ("object", "scene", "fine", "alias")] == [7, 3, 2, 4]
    assert ("scene", "What enviroment is the {} in?") in TEMPLATES  # the paper's typo, kept
    assert TEMPLATES[0] == ("object", "What is above the {}?")
    assert TEMPLATES[-1] == ("alias", "What is another name for this {}?")


def test_lemmatise():
    assert lemmatise("Trees!") == "tree"
    assert lemmatise("dining tables") == "dining table"
    assert lemmatise("potted plants") == "potted plant"


def test_fg_texts_append_class_and_add_bare_class():
    assert fg_texts("train", ["passenger", "freight trains", ""]) == [
        "a photo of passenger train.", "a photo of freight train.", "a photo of train.",
        "a photo of train."]
    assert fg_texts("dining table", ["wooden", "Dining Tables"]) == [
        "a photo of wooden dining table.", "a photo of dining table.", "a photo of dining table."]
    assert fg_texts("tv monitor", ["flat screen"]) == [
        "a photo of flat screen tv monitor.", "a photo of tv monitor."]
    assert fg_texts("boat", []) == ["a photo of boat."]  # L = 0 → just the class


def test_bg_texts_dedup_and_drop_class():
    assert bg_texts("boat", ["water", "Water", "boat", "trees", "tree", "boats"]) == [
        "a photo of water.", "a photo of tree."]
    assert bg_texts("potted plant", ["potted plants", "window", "windows", "potted plant pot"]) == [
        "a photo of window.", "a photo of pot."]
    assert bg_texts("tv monitor", ["tv monitors", "desk", "desk", "tv monitor desk"]) == [
        "a photo of desk."]
    assert bg_texts("dining table", ["dining tables"]) == []


def test_entry_texts_question_sets():
    answers = ["sky"] * 7 + ["clouds"] * 3 + ["jet"] * 2 + ["airplane"] * 4
    fg, bg = entry_texts("aeroplane", answers, ())
    assert (fg, bg) == (["a photo of aeroplane."], ["a photo of no aeroplane."])
    fg, bg = entry_texts("aeroplane", answers, ("fine",))
    assert fg == ["a photo of jet aeroplane."] * 2 + ["a photo of aeroplane."]
    assert bg == ["a photo of no aeroplane."]
    fg, bg = entry_texts("aeroplane", answers, ("scene",))
    assert (fg, bg) == (["a photo of aeroplane."], ["a photo of cloud."])
    fg, bg = entry_texts("aeroplane", answers, ("fine", "alias", "object", "scene"))
    assert len(fg) == 7 and bg == ["a photo of sky.", "a photo of cloud."]


@pytest.fixture(scope="module")
def small_train(cache_dir):
    from harness.synth.data import SynthSpec
    from harness.synth.dataset import SynthDataset

    return SynthDataset(SynthSpec(n_train=40, n_eval=8), "train", cache_dir)


def test_synth_answerer_truthful_and_deterministic(small_train):
    from harness.synth.data import ALIASES, CONTEXTS
    from methods.vqa import SynthAnswerer

    ds = small_train
    a = SynthAnswerer(ds, error_rate=0.0)
    for i in range(10):
        for obj in ds.scenes[i].objects:
            ans = a.answer(i, ds.image(i), [(obj["class"], t) for t in range(16)])
            assert ans[10] == ans[11] == obj["subtype"]
            assert all(x in ALIASES[obj["class"]] for x in ans[12:])
            assert ans[7:10] == [obj["context"]] * 3
            assert all(x in (*CONTEXTS, "clutter") or x in ds.class_names for x in ans[:7])
    wrong = SynthAnswerer(ds, error_rate=1.0)
    i, obj = 0, ds.scenes[0].objects[0]
    asks = [(obj["class"], t) for t in range(16)]
    truth = a.answer(i, ds.image(i), asks)
    bad = wrong.answer(i, ds.image(i), asks)
    assert all(x != y for x, y in zip(truth, bad, strict=True))
    assert bad == SynthAnswerer(ds, error_rate=1.0).answer(i, ds.image(i), asks)  # deterministic
    some = SynthAnswerer(ds, error_rate=0.3)
    n_wrong = sum(x != y for i in range(40) for o in ds.scenes[i].objects
                  for x, y in zip(some.answer(i, None, [(o["class"], t) for t in range(16)]),
                                  a.answer(i, None, [(o["class"], t) for t in range(16)]),
                                  strict=True))
    n_all = 16 * sum(len(ds.scenes[i].objects) for i in range(40))
    assert 0.2 < n_wrong / n_all < 0.4


# ----------------------------------------------------------------------------- tiny BLIP


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory) -> Path:
    return make_tiny_blip(tmp_path_factory.mktemp("tiny-blip"))


def test_blip_batched_matches_one_call_per_question(tiny_blip):
    from methods.vqa import BlipAnswerer

    a = BlipAnswerer(tiny_blip)
    img = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    asks = [("boat", t) for t in (0, 10)] + [("dining table", 3)]
    batched = a.answer(0, img, asks)
    assert a.generate_calls == 1 and len(batched) == len(asks)
    a.batched = False
    single = a.answer(0, img, asks)
    assert a.generate_calls == 1 + len(asks)
    assert batched == single  # padding is masked, so batching changes nothing
    assert all("[DEC]" not in s for s in batched)


def test_blip_across_images_matches_one_call_per_question(tiny_blip):
    """Several images with different numbers and lengths of questions in ONE generate call
    give exactly the answers of one call per question."""
    from methods.vqa import BlipAnswerer

    rng = np.random.default_rng(1)
    imgs = [(rng.random((48 + 8 * i, 64, 3)) * 255).astype(np.uint8) for i in range(4)]
    asks = [[("boat", t) for t in range(16)],
            [("dining table", 3), ("car", 12)],
            [("bird", 7)],
            [("train", t) for t in (0, 5, 9, 10, 15)] + [("cow", 2)]]
    items = [(i, img, a) for i, (img, a) in enumerate(zip(imgs, asks, strict=True))]
    a = BlipAnswerer(tiny_blip)
    many = a.answer_many(items)
    assert a.generate_calls == 1 and a.questions_asked == sum(len(x) for x in asks)
    assert [len(x) for x in many] == [len(x) for x in asks]
    single = BlipAnswerer(tiny_blip, batched=False)
    one_by_one = single.answer_many(items)
    assert single.generate_calls == sum(len(x) for x in asks)
    assert many == one_by_one
    # and the same as one call per image: which images share a call changes nothing
    assert many == [a.answer(i, img, x) for i, img, x in items]
    # the tiny random BLIP answers nearly alike whatever the image, so check the routing where
    # it happens: every question's decoder input comes from its own image's vision features
    import torch

    seen = {}
    forward = a.model.text_encoder.forward

    def spy(*args, **kwargs):
        seen["images"] = kwargs["encoder_hidden_states"]
        return forward(*args, **kwargs)

    a.model.text_encoder.forward = spy
    a.answer_many(items)
    own = [a.model.vision_model(pixel_values=a.pixel_values(img))[0][0]
           for _, img, x in items for _ in x]
    # (the random tower's features are ~1e-7: compare relatively)
    assert torch.allclose(seen["images"], torch.stack(own), rtol=1e-4, atol=1e-12)
    assert not torch.allclose(own[0], own[-1], rtol=1e-2, atol=0)  # the images do differ


def test_blip_build_is_killed_and_resumes_without_reasking(tiny_blip, tmp_path):
    """`bench qape --vqa blip` in a subprocess, SIGKILLed mid-build; the resume asks only the rest."""
    cache = tmp_path / "cache"
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache),
           "BENCH_QAPE_IMAGES_PER_CALL": "2", "HF_HUB_OFFLINE": "1"}
    sets = ["--set", "n_train=8", "--set", "n_eval=4"]
    # the real answerer, 0.3 s slower per call, so the kill lands mid-build (slowed here, in
    # the test's own process, not by anything in the library)
    slow = ("import time\nimport methods.vqa as vqa\nanswer = vqa.BlipAnswerer.answer_many\n"
            "vqa.BlipAnswerer.answer_many = lambda self, calls: (time.sleep(0.3), answer(self, calls))[1]\n"
            "from cli import main\nmain()")
    cmd = [sys.executable, "-c", slow, "qape",
           "--dataset", "synth", "--vqa", "blip", "--vqa-path", str(tiny_blip), "--device", "cpu", *sets]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    shard, lines = None, 0
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        found = list(cache.glob("stages/qape/.*.partial/answers.jsonl"))
        if found:
            shard = found[0]
            lines = shard.read_text().count("\n")
            if lines >= 2:
                break
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = [json.loads(x) for x in shard.read_text().splitlines() if x.strip().endswith("}")]
    assert len(before) >= 2
    assert not list(cache.glob("stages/qape/*/manifest.json"))  # nothing finalised

    import torch

    from harness.method import RunContext
    from harness.runner import resolve_config
    from methods.qape import load_corpus, qape_corpus
    from methods.vqa import BlipAnswerer

    cfg = resolve_config("qa-clims", "synth", 0, ["n_train=8", "n_eval=4", "vqa=blip"],
                         device="cpu", vqa_path=tiny_blip)
    ctx = RunContext(cfg, cache, torch.device("cpu"), log=lambda m: None, show_progress=False)
    answerer = BlipAnswerer(tiny_blip)
    folder, key = qape_corpus(ctx, answerer)
    corpus = load_corpus(folder)
    done_before = {(r["image"], r["class"]) for r in before}
    assert answerer.questions_asked == 16 * (len(corpus) - len(done_before))
    assert len({(e["image"], e["class"]) for e in corpus}) == len(corpus)
    assert len(corpus) == int(ctx.dataset("train")._labels.sum())
    first = {(r["image"], r["class"]): r["answers"] for r in before}
    assert all(e["answers"] == first[(e["image"], e["class"])] for e in corpus
               if (e["image"], e["class"]) in first)
    assert all(e["fg"][-1] == f"a photo of {e['class_name']}." for e in corpus)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["answered_this_build"] == len(corpus) - len(done_before)
    # a second build is a cache hit: nothing asked
    again = BlipAnswerer(tiny_blip)
    assert qape_corpus(ctx, again)[1] == key and again.questions_asked == 0
