"""The authors' released files as inputs: WeakTr's DeiT-S checkpoint (the one SemPLeS starts
its generator from) as --cam-weights.

The checkpoint is built here in WeakTr's exact layout from timm's DeiT-S at random init plus
WeakTr's own tensors at their real shapes (hustvl/WeakTr models.py `WeakTr` with AAF,
reduction 8 and feat_reduction 8 as docs/Training.md trains it on VOC), saved the way its
main.py saves checkpoint_best_mIoU.pth.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.artefacts import file_sha256
from harness.cam_checkpoint import load_cam_checkpoint
from harness.errors import BenchError
from harness.generator import IMAGENET_MEAN, IMAGENET_STD, build_generator
from tests.test_real_data import _no_env_roots, bench, coco_root, one_error_line  # noqa: F401 - fixtures
from tests.test_real_e2e import SMALL as E2E
from tests.test_real_e2e import odd_voc  # noqa: F401 - the fixed odd-size VOC tree

K = 20  # VOC's classes


def deit_small(seed: int) -> dict[str, torch.Tensor]:
    """timm's DeiT-S at random init (its ImageNet layout: one CLS token, 197 positions)."""
    from harness.compat import ensure_torchvision

    ensure_torchvision()
    import timm

    torch.manual_seed(seed)
    return timm.create_model("deit_small_patch16_224", pretrained=False).state_dict()


def weaktr_state(n_classes: int = K, seed: int = 0) -> dict[str, torch.Tensor]:
    """WeakTr's model.state_dict(): DeiT-S blocks, K CLS tokens, K + 196 position embeddings,
    the 3×3 Conv2d head with bias, the unused final norm and the AAF module's tensors."""
    g = torch.Generator().manual_seed(seed + 1)
    deit = deit_small(seed)
    state = {k: v for k, v in deit.items() if not k.startswith("head.")}
    state["cls_token"] = torch.randn(1, n_classes, 384, generator=g)
    state["pos_embed"] = torch.randn(1, n_classes + 196, 384, generator=g)
    state["head.weight"] = torch.randn(n_classes, 384, 3, 3, generator=g) * 0.02
    state["head.bias"] = torch.randn(n_classes, generator=g)
    channel, feats = 12 * 6, 384 // 6  # AAF(channel=depth·heads, feats_channel=dim/heads)
    aaf = {"attn_head_ffn.0.weight": (channel // 8, channel),
           "attn_head_ffn.2.weight": (channel, channel // 8),
           "attn_feat_ffn.0.weight": (feats // 8, feats), "attn_feat_ffn.0.bias": (feats // 8,),
           "attn_feat_ffn.1.weight": (1, feats // 8), "attn_feat_ffn.1.bias": (1,)}
    for k, shape in aaf.items():
        state[f"adaptive_attention_fusion.{k}"] = torch.randn(*shape, generator=g)
    return state


def save_weaktr(path: Path, state: dict[str, torch.Tensor]) -> Path:
    # hustvl/WeakTr main.py:433-437, checkpoint_best_mIoU.pth: its mIoU is evaluation.py
    # whole_eval's, a numpy float64
    torch.save({"model": state, "epoch": 37, "miou": np.float64(69.4)}, path)
    return path


def as_numpy1(path: Path, out: Path) -> Path:
    """The same checkpoint as numpy 1.x pickles it: the scalar under numpy.core.multiarray."""
    import zipfile

    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("/data.pkl"):
                assert b"cnumpy._core.multiarray\nscalar\n" in data
                data = data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
            dst.writestr(info, data)
    return out


@pytest.fixture(scope="module")
def weaktr_file(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    state = weaktr_state()
    return save_weaktr(tmp_path_factory.mktemp("weaktr") / "checkpoint_best_mIoU.pth", state), state


def test_weaktr_checkpoint_loads_tensor_for_tensor(weaktr_file):
    path, state = weaktr_file
    model = build_generator("deit_small_weaktr", K, allow_random=True)
    assert load_cam_checkpoint(model, path) == file_sha256(path)
    own = model.state_dict()
    assert torch.equal(own["backbone.net.reg_token"], state["cls_token"])
    assert torch.equal(own["backbone.net.pos_embed"], state["pos_embed"])
    assert torch.equal(own["classifier.weight"], state["head.weight"])
    assert torch.equal(own["classifier.bias"], state["head.bias"])
    blocks = [k for k in state if k.startswith(("blocks.", "patch_embed."))]
    assert len(blocks) == 12 * 12 + 2
    for k in blocks:
        assert torch.equal(own[f"backbone.net.{k}"], state[k]), k
    # every tensor of the network came from the file; the unused norm and AAF did not land
    assert len(own) == 4 + len(blocks)
    assert not any(k.startswith("backbone.net.norm") for k in own)
    legacy = build_generator("deit_small_weaktr", K, allow_random=True)
    load_cam_checkpoint(legacy, as_numpy1(path, path.with_name("numpy1.pth")))
    assert all(torch.equal(v, own[k]) for k, v in legacy.state_dict().items())


@torch.no_grad()
def test_weaktr_maps_are_its_coarse_cam(weaktr_file):
    """WeakTr's forward by hand from the file's tensors (models.py forward_features, forward):
    patches, then the K class tokens before them, + pos_embed, the 12 blocks, NO final norm,
    the patch tokens on their grid, the 3×3 head (padding 1)."""
    path, state = weaktr_file
    model = build_generator("deit_small_weaktr", K, allow_random=True)
    load_cam_checkpoint(model, path)
    model.eval()
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(5))
    x = (images - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = F.conv2d(x, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=16)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([state["cls_token"].expand(2, -1, -1), x], 1) + state["pos_embed"]
    for block in model.backbone.net.blocks:  # the blocks: the file's tensors (test above)
        x = block(x)
    grid = x[:, K:].transpose(1, 2).reshape(2, 384, 14, 14)
    cam = F.conv2d(grid, state["head.weight"], state["head.bias"], padding=1)
    torch.testing.assert_close(model.maps(images), cam, rtol=1e-5, atol=1e-5)


def test_imagenet_deit_weights_start_weaktrs_layout(tmp_path):
    """--backbone-weights for deit_small_weaktr: WeakTr's --finetune (main.py:319-347), the
    CLS token and its position embedding once per class, the patch positions as they are."""
    deit = deit_small(3)
    torch.save({"model": deit}, tmp_path / "deit_small_patch16_224-cd65a155.pth")
    model = build_generator("deit_small_weaktr", K, tmp_path / "deit_small_patch16_224-cd65a155.pth")
    own = model.state_dict()
    assert torch.equal(own["backbone.net.reg_token"], deit["cls_token"].expand(1, K, 384))
    assert torch.equal(own["backbone.net.pos_embed"][:, :K], deit["pos_embed"][:, :1].expand(1, K, 384))
    assert torch.equal(own["backbone.net.pos_embed"][:, K:], deit["pos_embed"][:, 1:])
    assert torch.equal(own["backbone.net.blocks.11.mlp.fc2.weight"], deit["blocks.11.mlp.fc2.weight"])


def test_wrong_layouts_are_one_line_naming_what_was_expected(weaktr_file, tmp_path):
    path, _ = weaktr_file
    deit = build_generator("deit_small_patch16_224", K, allow_random=True)
    with pytest.raises(BenchError, match=r"is WeakTr's DeiT-S CAM network .*: load it with "
                                         r"--set backbone=deit_small_weaktr$"):
        load_cam_checkpoint(deit, path)
    weaktr = build_generator("deit_small_weaktr", K, allow_random=True)
    resnet = build_generator("resnet50", K, allow_random=True)
    irn = {f"resnet50.{k.removeprefix('backbone.net.')}": v for k, v in resnet.state_dict().items()}
    torch.save({**irn, "classifier.weight": resnet.classifier.weight}, tmp_path / "res50_cam.pth")
    with pytest.raises(BenchError, match=r"is the IRN/CLIMS ResNet-50 CAM format: it needs --set "
                                         r"backbone=resnet50; expected this harness's "
                                         r"deit_small_weaktr CamNet or WeakTr's DeiT-S checkpoint"):
        load_cam_checkpoint(weaktr, tmp_path / "res50_cam.pth")
    torch.save({"model": {"foo": torch.zeros(3)}, "epoch": 1}, tmp_path / "random.pth")
    with pytest.raises(BenchError, match=r"does not fit this CAM network: 150 tensors missing "
                                         r"\(first: backbone.net.reg_token\); expected this harness's "
                                         r"deit_small_weaktr CamNet or WeakTr's"):
        load_cam_checkpoint(weaktr, tmp_path / "random.pth")
    # a VOC checkpoint for COCO: its 20 class tokens are the first tensor that does not fit
    with pytest.raises(BenchError, match=r"backbone.net.reg_token has shape \(1, 20, 384\), this "
                                         r"network needs \(1, 80, 384\)"):
        load_cam_checkpoint(build_generator("deit_small_weaktr", 80, allow_random=True), path)


# ---- through the CLI: SemPLeS's generator from it, its sha256 in provenance ---------------------

@pytest.mark.slow  # bench end to end in-process on the odd-size tree (tests/conftest.py)
def test_semples_starts_its_generator_from_the_weaktr_checkpoint(monkeypatch, capsys, tmp_path,
                                                                 weaktr_file, request):
    """The paper's SemPLeS: S is WeakTr's DeiT-S from its checkpoint (no CAM stage trains),
    its three stages on the odd-size VOC tree at the real architectures, random init."""
    path, root = weaktr_file[0], request.getfixturevalue("odd_voc")
    code, out, err = bench(monkeypatch, capsys, "run", "semples", "--dataset", "voc", "--data-root",
                           root, "--cam-weights", path, "--set", "backbone=deit_small_weaktr",
                           "--masks", "none", "--runs-dir", tmp_path / "runs", "--cache-dir",
                           tmp_path / "cache", "--wandb", "disabled", "--json", *E2E)
    assert code == 0, err[-3000:]
    record = json.loads(out.strip().splitlines()[-1])
    assert record["provenance"]["cam_checkpoint_sha256"] == file_sha256(path)
    assert record["stage_cache"]["misses"] == ["semples-a", "semples-b", "semples-c"]
    assert record["stage_epochs"] == {"semples-a": 1, "semples-b": 1, "semples-c": 1}
    code, _, err = bench(monkeypatch, capsys, "run", "semples", "--dataset", "voc", "--data-root",
                         root, "--cam-weights", path, "--runs-dir", tmp_path / "runs",
                         "--cache-dir", tmp_path / "cache", *E2E)  # the plain DeiT-S
    assert one_error_line(code, err).endswith(
        f"--cam-weights {path} is WeakTr's DeiT-S CAM network (one CLS token per class, a 3×3 "
        "head): load it with --set backbone=deit_small_weaktr")


# ---- QA-CLIMS's released VQA answers as the QAPE corpus --------------------------------------

# CVI-SZU/QA-CLIMS visual_questions.py QUESTIONS, as the release asked them (and spelt them)
RELEASE_FG = ["What kind of {} is in the photo?", "What type of {} is in the photo?",
              "What is this {} also called?", "What is this {} usually called?",
              "What is another word for this {}?", "What is another name for this {}?"]
RELEASE_BG = ["what is above the {}?", "what is under the {}?", "what is behind the {}?",
              "what is around the {}?", "what is next to the {}?", "what is the left side of {}?",
              "what is the right side of {}?", "what scene is the {} in?",
              "what environment is the {} in?", "what place is the {} in?"]


def release_answer(image: str, label: str, kind: str, q: int) -> str:
    return f"{kind}{q} {label} of {image[-3:]}"


def write_release(folder: Path, objects: dict[str, list[str]], dataset: str = "voc") -> Path:
    """`{dataset}_vqa_{fg,bg}_blip.npy` as third_party/BLIP/get_blip_vqa_results.py writes
    them: {image: {class: {'vqa': [(template, answer)], 'answers': [lemmatised]}}}."""
    folder.mkdir(parents=True, exist_ok=True)
    for kind, questions in (("fg", RELEASE_FG), ("bg", RELEASE_BG)):
        table = {}
        for image, labels in objects.items():
            table[image] = {}
            for label in labels:
                answers = [release_answer(image, label, kind, q) for q in range(len(questions))]
                table[image][label] = {"vqa": list(zip(questions, answers, strict=True)),
                                       "answers": answers}
        np.save(folder / f"{dataset}_vqa_{kind}_blip.npy", table)
    return folder


def voc_objects() -> dict[str, list[str]]:
    """Every fixture image (train_aug and val) with its classes in the release's wording."""
    from harness.data.voc import CLASSES
    from harness.wording import prompt_class_names
    from tests.fixtures_real import VOC_OBJECTS

    names = prompt_class_names("voc", CLASSES, "voc")
    return {image: [names[k - 1] for k, *_ in boxes] for image, boxes in VOC_OBJECTS.items()}


def qape(monkeypatch, capsys, root: Path, cache: Path, *args) -> tuple[int, str, str]:
    return bench(monkeypatch, capsys, "qape", "--dataset", "voc", "--data-root", root,
                 "--cache-dir", cache, *args)


@pytest.mark.slow  # bench in-process (tests/conftest.py)
def test_released_answers_become_the_corpus_a_run_reuses(monkeypatch, capsys, tmp_path, request):
    from harness.method import RunContext
    from harness.runner import resolve_config
    from methods.qape import load_corpus, qape_corpus

    root, cache = request.getfixturevalue("odd_voc"), tmp_path / "cache"
    vqa = write_release(tmp_path / "vqa", voc_objects())
    code, out, err = qape(monkeypatch, capsys, root, cache, "--import", vqa / "voc_vqa_fg_blip.npy")
    assert code == 0, err[-2000:]
    key, folder = re.search(r"qape corpus \[(\w+)\]: 5 \(image, class\) items in (\S+) ", out).groups()
    rows = load_corpus(Path(folder))
    # train_aug's four images: aeroplane, boat + person, cat, train; the 16 answers in the
    # order of TEMPLATES (methods/vqa.py): the 10 BG questions, then the 6 FG ones
    assert [(r["name"], r["class_name"]) for r in rows] == [
        ("2007_000032", "aeroplane"), ("2007_000039", "boat"), ("2007_000039", "person"),
        ("2007_000063", "cat"), ("2008_000002", "train")]
    for r in rows:
        assert r["answers"] == [*(release_answer(r["name"], r["class_name"], "bg", q) for q in range(10)),
                                *(release_answer(r["name"], r["class_name"], "fg", q) for q in range(6))]
    # `bench run qa-clims --vqa-path` the same files, copied elsewhere (content-addressed): the
    # corpus stage is a hit, and provenance names both files' sha256
    moved = shutil.copytree(vqa, tmp_path / "elsewhere")
    cfg = resolve_config("qa-clims", "voc", 0, [], None, "cpu", data_root=root, vqa_path=moved,
                         allow_random_weights=True)
    ctx = RunContext(cfg, cache, torch.device("cpu"), log=lambda m: None, show_progress=False)
    assert qape_corpus(ctx) == (Path(folder), key)
    assert ctx.stages.hits == ["qape"] and ctx.stages.misses == []
    assert ctx.teacher_info["vqa"]["files"] == {
        str((moved / f"voc_vqa_{k}_blip.npy").resolve()): file_sha256(vqa / f"voc_vqa_{k}_blip.npy")
        for k in ("fg", "bg")}


@pytest.mark.slow  # bench in-process (tests/conftest.py)
def test_cocos_released_answers_name_images_by_file_stem(monkeypatch, capsys, tmp_path, request):
    """coco_vqa_{fg,bg}_blip.npy: image names are the train2014 file stems, classes COCO's
    category names (get_blip_vqa_results.py get_coco_image_names)."""
    from methods.qape import load_corpus

    objects = {"COCO_train2014_000000000100": ["person"],
               "COCO_train2014_000000000101": ["dog", "person"],
               "COCO_train2014_000000000102": ["toothbrush"]}
    vqa = write_release(tmp_path / "vqa", objects, dataset="coco")
    code, out, err = bench(monkeypatch, capsys, "qape", "--dataset", "coco", "--data-root",
                           request.getfixturevalue("coco_root"), "--cache-dir", tmp_path / "cache",
                           "--import", vqa)
    assert code == 0, err[-2000:]
    folder = re.search(r"items in (\S+) ", out).group(1)
    rows = load_corpus(Path(folder))
    assert [(r["name"], r["class_name"]) for r in rows] == [
        ("COCO_train2014_000000000100", "person"), ("COCO_train2014_000000000101", "person"),
        ("COCO_train2014_000000000101", "dog"), ("COCO_train2014_000000000102", "toothbrush")]
    assert rows[2]["answers"][10] == release_answer("COCO_train2014_000000000101", "dog", "fg", 0)


def _drop(objects: dict[str, list[str]], image: str, label: str | None = None) -> dict:
    out = {k: list(v) for k, v in objects.items()}
    if label is None:
        del out[image]
    else:
        out[image].remove(label)
    return out


@pytest.mark.slow  # bench in-process (tests/conftest.py)
def test_released_answers_of_another_layout_or_data_are_one_line(monkeypatch, capsys, tmp_path,
                                                                 request):
    root, cache = request.getfixturevalue("odd_voc"), tmp_path / "cache"

    def line(path: Path) -> str:
        return one_error_line(*qape(monkeypatch, capsys, root, cache, "--import", path)[:3:2])

    np.save(tmp_path / "array.npy", np.zeros(3))
    assert line(tmp_path / "array.npy").endswith(
        "holds an array of shape (3,), dtype float64, not QA-CLIMS's VQA answers: expected "
        "np.save of {image name: {class name: {'vqa': [(question, answer), ...], 'answers': "
        "[...]}}} (QA-CLIMS's voc_vqa_fg_blip.npy / voc_vqa_bg_blip.npy)")
    np.save(tmp_path / "lists.npy", {"2007_000032": ["a jet"]})
    assert "'2007_000032' is not {class name: {'vqa': ...}}" in line(tmp_path / "lists.npy")
    gone = write_release(tmp_path / "no-039", _drop(voc_objects(), "2007_000039"))
    assert line(gone).endswith(f"{gone / 'voc_vqa_fg_blip.npy'} lacks 1 of the 4 train images "
                               "with a class (first: 2007_000039): the file is not of this data")
    no_person = write_release(tmp_path / "no-person", _drop(voc_objects(), "2007_000039", "person"))
    assert line(no_person).endswith("lacks 1 of the 5 (train image, present class) pairs "
                                    "(first: 2007_000039 / person)")
    lone = tmp_path / "lone"  # the fg file without its bg sibling
    lone.mkdir()
    shutil.copy(write_release(tmp_path / "full", voc_objects()) / "voc_vqa_fg_blip.npy", lone)
    assert line(lone / "voc_vqa_fg_blip.npy").endswith(
        "hold 6 of the 16 QAPE questions for 2007_000032 / aeroplane (first missing: 'What is "
        "above the {}?'); pass the folder holding both voc_vqa_fg_blip.npy and voc_vqa_bg_blip.npy")
    (tmp_path / "blip").mkdir()
    (tmp_path / "blip" / "config.json").write_text("{}")
    assert line(tmp_path / "blip").endswith("a BLIP folder goes to --vqa-path")
