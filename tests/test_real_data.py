"""Real data and real models from local paths, on tiny fixtures in the real on-disk layouts.

VOC 2012 (+ SegmentationClassAug, train_aug) and COCO 2014 (instances JSON) trees of a few
64-px images, a random-init ViT-B-32 saved to a file and loaded through --clip-weights (in
open_clip's layout, and in OVSeg's with mask prompts for qa-clims's mask-adapted encoder),
the timm backbones random through --allow-random-weights. Every registered method family
trains one epoch on each fixture, evaluates and records; the error paths are one line and
a non-zero exit through the CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.errors import BenchError
from tests.fixtures_real import (
    COCO_CATS,
    VOC_IDS,
    VOC_TRAIN,
    VOC_TRAIN_AUG,
    fixed_tree,
    make_clip_weights,
    make_coco,
    make_ovseg_clip_weights,
    make_tiny_blip,
    make_voc,
    voc_mask,
)

FAMILIES = ("cam", "clims", "semples", "qa-clims")
TINY = ["--set", "crop_size=64", "--set", "batch_size=2", "--set", "limit=2", "--epochs", "1",
        "--set", "cam_crop_size=64", "--set", "cam_batch_size=2",
        "--mask-set", "irn_crop_size=96"]  # IRN's crops (the default pseudo masks on real data)


@pytest.fixture(autouse=True)
def _no_env_roots(monkeypatch):
    monkeypatch.delenv("BENCH_VOC_ROOT", raising=False)
    monkeypatch.delenv("BENCH_COCO_ROOT", raising=False)


@pytest.fixture(scope="session")
def voc_root(tmp_path_factory) -> Path:
    return make_voc(tmp_path_factory.mktemp("voc"))


@pytest.fixture(scope="session")
def coco_root(tmp_path_factory) -> Path:
    return make_coco(tmp_path_factory.mktemp("coco"))


@pytest.fixture(scope="session")
def tiny_blip() -> Path:
    from harness.data.voc import CLASSES as VOC_CLASSES

    names = (*VOC_CLASSES, *(name for _, name in COCO_CATS))
    words = tuple(w for n in names for w in n.split())
    # at a fixed path: a corpus's stage key names the BLIP folder (pinned qa-clims numbers)
    return fixed_tree("tiny-blip", lambda folder: make_tiny_blip(folder, words))


@pytest.fixture(scope="session")
def clip_file(tmp_path_factory) -> Path:
    """A random ViT-B-32 state dict on disk (kept under BENCH_TEST_CACHE when set)."""
    cache = os.environ.get("BENCH_TEST_CACHE")
    path = (Path(cache) if cache else tmp_path_factory.mktemp("clip")) / "vit-b-32-random.pt"
    return path if path.is_file() else make_clip_weights(path)


@pytest.fixture(scope="session")
def ovseg_file(tmp_path_factory) -> Path:
    """A random ViT-B-32 with mask prompts in OVSeg's detectron2 layout."""
    cache = os.environ.get("BENCH_TEST_CACHE")
    path = (Path(cache) if cache else tmp_path_factory.mktemp("clip")) / "vit-b-32-ovseg-random.pth"
    return path if path.is_file() else make_ovseg_clip_weights(path)


def bench(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`bench ARGS` in-process through the console entry point: (exit code, stdout, stderr)."""
    from cli import main

    monkeypatch.setattr(sys, "argv", ["bench", *map(str, args)])
    with pytest.raises(SystemExit) as exit_:
        main()
    out = capsys.readouterr()
    return int(exit_.value.code or 0), out.out, out.err


def one_error_line(code: int, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---- datasets -------------------------------------------------------------------------------

def test_voc_splits_labels_masks(voc_root, tmp_path):
    from harness.data import load_dataset

    train = load_dataset("voc", "train", root=voc_root, crop_size=48, cache_dir=tmp_path)
    assert train.image_names == VOC_TRAIN_AUG and not train.has_masks
    assert len(train.class_names) == 20
    np.testing.assert_array_equal(np.nonzero(train.labels(1))[0], [3, 14])  # boat, person
    item = train[0]
    assert item["image"].shape == (3, 48, 48) and 0 <= item["image"].min() <= item["image"].max() <= 1

    ev = load_dataset("voc", "eval", root=voc_root / "VOCdevkit", cache_dir=tmp_path)
    assert ev.image_names == VOC_TRAIN and ev.has_masks
    np.testing.assert_array_equal(ev.mask(0), voc_mask(VOC_TRAIN[0]))  # palette → indices, 255 kept
    assert ev[0]["image"].shape == (3, 64, 64)  # evaluation at full size
    assert ev.image(0).dtype == np.uint8 and ev.image(0).shape == (64, 64, 3)
    assert len(load_dataset("voc", "train", root=voc_root, limit=2).image_names) == 2


def test_voc_train_aug_derived_without_its_list(voc_root, tmp_path):
    from harness.data import load_dataset

    root = tmp_path / "voc"
    shutil.copytree(voc_root, root)
    (root / "VOCdevkit/VOC2012/ImageSets/Segmentation/train_aug.txt").unlink()
    train = load_dataset("voc", "train", root=root)  # SegmentationClassAug minus val
    assert train.image_names == VOC_TRAIN_AUG


def test_voc_cls_labels_npy_is_preferred(voc_root, tmp_path):
    from harness.data import load_dataset

    root = tmp_path / "voc"
    shutil.copytree(voc_root, root)
    y = np.zeros(20, np.float32)
    y[6] = 1
    table = {int(n.replace("_", "")): y for n in VOC_IDS}  # IRN's int keys
    np.save(root / "VOCdevkit/VOC2012/cls_labels.npy", table)
    train = load_dataset("voc", "train", root=root)
    assert all(np.nonzero(train.labels(i))[0].tolist() == [6] for i in range(len(train)))


def test_voc_rgb_mask_decodes_through_the_palette(tmp_path):
    from PIL import Image

    from harness.data.voc import decode_mask, palette

    m = voc_mask("2007_000039")
    Image.fromarray(palette()[m]).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(decode_mask(tmp_path / "rgb.png"), m)


def test_coco_splits_map_category_ids(coco_root, tmp_path):
    from harness.data import load_dataset

    train = load_dataset("coco", "train", root=coco_root, crop_size=32, cache_dir=tmp_path)
    assert train.class_names == tuple(n for _, n in COCO_CATS)
    assert len(train) == 3  # the unlabelled image is skipped
    assert [np.nonzero(train.labels(i))[0].tolist() for i in range(3)] == [[0], [0, 1], [2]]
    assert train[1]["image"].shape == (3, 32, 32)
    again = load_dataset("coco", "train", root=coco_root, cache_dir=tmp_path)  # from the cache
    np.testing.assert_array_equal(again._labels, train._labels)

    ev = load_dataset("coco", "eval", root=coco_root, limit=2)
    assert len(ev) == 2 and ev.has_masks
    m = ev.mask(1)
    assert set(np.unique(m).tolist()) == {0, 1, 2}  # background, person (1), dog (2)
    assert m[10, 25] == 2 and m[40, 5] == 1


def test_augment_shapes_and_determinism():
    from harness.data.augment import train_augment

    img = np.random.default_rng(0).integers(0, 255, (40, 90, 3), dtype=np.uint8)
    a = train_augment(img, 64, np.random.default_rng(3))
    b = train_augment(img, 64, np.random.default_rng(3))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


# ---- settings and models ----------------------------------------------------------------------

def test_clip_loads_from_a_local_file(clip_file):
    import torch

    from harness.teacher import load_clip_teacher

    teacher = load_clip_teacher("ViT-B-32", clip_file)
    saved = torch.load(clip_file, map_location="cpu", weights_only=True)
    torch.testing.assert_close(teacher.clip.visual.conv1.weight, saved["visual.conv1.weight"].float())
    assert teacher.weights == str(clip_file) and teacher.image_size == 224


def test_ovseg_layout_loads_with_its_mask_prompts(ovseg_file, clip_file):
    """OVSeg's key layout → open_clip's names, tensor for tensor; a plain file is refused."""
    import torch

    from harness.teacher import load_clip_teacher

    saved = torch.load(ovseg_file, map_location="cpu", weights_only=True)["model"]
    teacher = load_clip_teacher("ViT-B-32", ovseg_file, mask_prompts=True)
    clip = teacher.clip
    for ours, theirs in [
        (clip.visual.conv1.weight, "visual.conv1.weight"),
        (clip.visual.transformer.resblocks[11].attn.in_proj_weight,
         "visual.transformer.resblocks.11.attn.in_proj_weight"),
        (clip.visual.proj, "visual.proj"),
        (clip.transformer.resblocks[0].mlp.c_fc.weight, "transformer.resblocks.0.mlp.c_fc.weight"),
        (clip.text_projection, "text_projection"),
        (clip.logit_scale, "logit_scale"),
        (teacher.mask_prompts, "visual.mask_embedding"),
    ]:
        torch.testing.assert_close(ours, saved[f"clip_adapter.clip_model.{theirs}"].float(),
                                   rtol=0, atol=0)
    assert tuple(teacher.mask_prompts.shape) == (3, 49, 768)  # ViT-B-32's 7 × 7 grid
    # without mask prompts the same file is a plain (fine-tuned) CLIP
    plain = load_clip_teacher("ViT-B-32", ovseg_file)
    assert plain.mask_prompts is None
    torch.testing.assert_close(plain.clip.visual.conv1.weight, clip.visual.conv1.weight)
    with pytest.raises(BenchError, match=f"{clip_file} is a plain CLIP checkpoint without mask "
                                         r"prompts \(visual.mask_embedding\)"):
        load_clip_teacher("ViT-B-32", clip_file, mask_prompts=True)
    with pytest.raises(BenchError, match=f"cannot load CLIP ViT-B-16 from {ovseg_file}"):
        load_clip_teacher("ViT-B-16", ovseg_file, mask_prompts=True)


def test_backbone_weights_from_a_local_file(tmp_path):
    import torch

    from harness.generator import build_generator

    net = build_generator("resnet50", 3, allow_random=True)
    torch.save({"model": {f"module.{k}": v for k, v in net.backbone.net.state_dict().items()}},
               tmp_path / "r50.pth")  # wrapped and DataParallel-prefixed, as checkpoints come
    again = build_generator("resnet50", 3, tmp_path / "r50.pth")
    torch.testing.assert_close(again.backbone.net.conv1.weight, net.backbone.net.conv1.weight)
    (tmp_path / "bad.pth").write_bytes(b"garbage")
    with pytest.raises(BenchError, match="cannot read backbone resnet50 weights .*bad.pth"):
        build_generator("resnet50", 3, tmp_path / "bad.pth")


# ---- errors through the CLI ------------------------------------------------------------------

def test_missing_root_is_one_line(monkeypatch, capsys, tmp_path):
    code, _, err = bench(monkeypatch, capsys, "run", "cam", "--dataset", "voc",
                         "--allow-random-weights", "--runs-dir", tmp_path / "runs")
    assert "BENCH_VOC_ROOT" in one_error_line(code, err)
    code, _, err = bench(monkeypatch, capsys, "run", "cam", "--dataset", "coco", "--data-root",
                         tmp_path / "nowhere", "--allow-random-weights", "--runs-dir", tmp_path)
    line = one_error_line(code, err)
    assert "nowhere does not exist" in line and "instances_" in line
    # without any weights either, the data root is still what the user hears about first
    code, _, err = bench(monkeypatch, capsys, "run", "semples", "--dataset", "voc", "--data-root",
                         tmp_path / "nowhere", "--runs-dir", tmp_path / "runs")
    assert "VOC root" in one_error_line(code, err)


def test_incomplete_layout_names_what_is_missing(monkeypatch, capsys, voc_root, coco_root, tmp_path):
    voc = tmp_path / "voc"
    shutil.copytree(voc_root, voc)
    shutil.rmtree(voc / "VOCdevkit/VOC2012/SegmentationClass")
    (voc / "VOCdevkit/VOC2012/JPEGImages/2007_000063.jpg").unlink()
    monkeypatch.setenv("BENCH_VOC_ROOT", str(voc))
    code, _, err = bench(monkeypatch, capsys, "run", "cam", "--dataset", "voc",
                         "--allow-random-weights", "--runs-dir", tmp_path / "runs", *TINY)
    assert "missing from JPEGImages/ (first: 2007_000063.jpg)" in one_error_line(code, err)
    coco = tmp_path / "coco"
    shutil.copytree(coco_root, coco)
    (coco / "annotations/instances_val2014.json").unlink()
    code, _, err = bench(monkeypatch, capsys, "run", "cam", "--dataset", "coco", "--data-root", coco,
                         "--allow-random-weights", "--runs-dir", tmp_path / "runs", *TINY)
    assert "missing annotations/instances_val2014.json" in one_error_line(code, err)


def test_corrupt_image_names_the_file(monkeypatch, capsys, voc_root, tmp_path):
    voc = tmp_path / "voc"
    shutil.copytree(voc_root, voc)
    bad = voc / "VOCdevkit/VOC2012/JPEGImages/2007_000039.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    code, out, err = bench(monkeypatch, capsys, "run", "cam", "--dataset", "voc", "--data-root", voc,
                           "--allow-random-weights", "--runs-dir", tmp_path / "runs",
                           "--cache-dir", tmp_path / "cache", "--wandb", "disabled", *TINY)
    line = one_error_line(code, err)
    assert "cannot read image" in line and str(bad) in line
    assert not list((tmp_path / "runs").glob("*/*/result.json"))  # nothing half-recorded


def test_missing_weights_say_which_file(monkeypatch, capsys, voc_root, tmp_path):
    code, _, err = bench(monkeypatch, capsys, "run", "cam", "--dataset", "voc", "--data-root",
                         voc_root, "--runs-dir", tmp_path / "runs", "--cache-dir", tmp_path, *TINY)
    line = one_error_line(code, err)
    assert "--backbone-weights" in line and "resnet50" in line
    with pytest.raises(BenchError, match="--clip-weights PATH with the OpenAI ViT-L-14 weights"):
        from harness.teacher import load_clip_teacher

        load_clip_teacher("ViT-L-14", None)
    code, _, err = bench(monkeypatch, capsys, "run", "cam", "--dataset", "voc", "--data-root",
                         voc_root, "--backbone-weights", tmp_path / "none.pth", "--runs-dir",
                         tmp_path / "runs", "--cache-dir", tmp_path, *TINY)
    assert "none.pth does not exist" in one_error_line(code, err)


# ---- every registered family, one epoch on each fixture ------------------------------------

def plain_mask_miou(record: dict, root: Path, cache: Path) -> float:
    """The run's mask PNGs against the dataset's masks by one plain confusion matrix (PNG 255
    as background, ground-truth 255 ignored): a second computation of `mask_miou`."""
    from PIL import Image

    from harness.config import MethodConfig
    from harness.data import load_dataset
    from harness.evaluate import confusion, iou_from_confusion
    from harness.method import data_options

    params = MethodConfig(**{k: record["config"]["params"][k] for k in ("limit", "crop_size")})
    ds = load_dataset(record["dataset"], "eval", **data_options(record["dataset"], params, cache,
                                                                str(root)))
    n = len(ds.class_names) + 1
    total = np.zeros((n, n), np.int64)
    for i, name in enumerate(ds.image_names):
        pred = np.array(Image.open(Path(record["path"]) / "masks" / f"{name}.png"))
        total += confusion(np.where(pred == 255, 0, pred), ds.mask(i), n)
    return float(np.nanmean(iou_from_confusion(total)) * 100)


def _registered() -> set[str]:
    from harness.registry import list_variants

    return {v.family for v in list_variants()}


@pytest.mark.parametrize("dataset", ["voc", "coco"])
@pytest.mark.slow  # a run per family on the real layouts
@pytest.mark.parametrize("family", [f if f == "cam" else pytest.param(f, marks=pytest.mark.slow)
                                    for f in FAMILIES])  # CLIP families: ViT-B-32 on CPU
def test_family_runs_on_real_layout(family, dataset, monkeypatch, capsys, voc_root, coco_root,
                                    clip_file, tiny_blip, tmp_path, request):
    if family not in _registered():
        pytest.skip(f"method family {family!r} is not registered in this checkout")
    extra: list[str] = []
    weights = clip_file
    if family == "qa-clims":  # the corpus from a tiny random BLIP; ViT-B-32 as the teacher,
        # mask-adapted (its default on real data): from a file in OVSeg's layout
        extra = ["--vqa-path", tiny_blip, "--set", "clip_arch=ViT-B-32"]
        weights = request.getfixturevalue("ovseg_file")
    if family == "semples":
        extra = ["--set", "prompt_epochs=1", "--set", "refine_epochs=1"]
    root = voc_root if dataset == "voc" else coco_root
    code, out, err = bench(
        monkeypatch, capsys, "run", family, "--dataset", dataset, "--data-root", root,
        "--clip-weights", weights, "--allow-random-weights", "--device", "cpu",
        "--runs-dir", tmp_path / "runs", "--cache-dir", tmp_path / "cache", "--wandb", "disabled",
        "--json", *TINY, *extra)
    assert code == 0, err[-2000:]
    record = json.loads(out.strip().splitlines()[-1])
    assert record["status"] == "ok" and record["dataset"] == dataset
    assert record["allow_random_weights"] is True
    assert record["config"]["params"]["crop_size"] == 64
    n_eval = 2  # limit=2 (both fixtures have at least 2 labelled evaluation images)
    assert len(list(Path(record["path"]).glob("cams/*.npy"))) == n_eval
    if family != "cam":
        assert record["teacher"]["weights"] == str(weights)
    stages = {"cam": ["cam"], "clims": ["cam", "clims"], "qa-clims": ["cam", "qa-clims"],
              "semples": ["cam", "semples-a", "semples-b", "semples-c"]}[family]
    irn = [] if family == "semples" else ["irn"]  # the default pseudo masks: IRN, or SemPLeS's CRF
    assert record["stage_epochs"] == dict.fromkeys(stages + irn, 1)  # --epochs 1: every stage
    assert record["mask_miou"] == pytest.approx(plain_mask_miou(record, root, tmp_path), abs=1e-9)
    if family == "qa-clims":
        assert record["config"]["params"]["clip_encoder"] == "mask-adapted"
        assert record["teacher"]["mask_prompts"] == {"depth": 3, "per_position": True}
        assert record["teacher"]["vqa"] == {"kind": "blip", "path": str(tiny_blip), "random": False}


# ---- bad input on the real path: one line, exit 2, nothing half-written -----------------------

def _copy_voc(voc_root: Path, tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "voc"
    shutil.copytree(voc_root, root)
    return root, root / "VOCdevkit/VOC2012"


def _run_fails(monkeypatch, capsys, tmp_path, root, *args: str, method: str = "cam") -> str:
    code, _, err = bench(monkeypatch, capsys, "run", method, "--dataset", "voc", "--data-root", root,
                         "--allow-random-weights", "--runs-dir", tmp_path / "runs", "--cache-dir",
                         tmp_path / "cache", "--wandb", "disabled", *TINY, *args)
    line = one_error_line(code, err)
    assert not [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]  # no run folder
    assert not list((tmp_path / "cache").glob("stages/*/*/manifest.json"))  # no stage trained
    return line


def test_mask_of_another_size_than_its_image(monkeypatch, capsys, voc_root, tmp_path):
    from PIL import Image

    root, voc = _copy_voc(voc_root, tmp_path)
    mask = voc / f"SegmentationClass/{VOC_TRAIN[1]}.png"
    Image.fromarray(voc_mask(VOC_TRAIN[1])[:50, :40], mode="P").save(mask)
    line = _run_fails(monkeypatch, capsys, tmp_path, root)
    assert f"mask {mask} is 40×50 but its image" in line and f"{VOC_TRAIN[1]}.jpg is 64×64" in line


def test_split_file_name_without_an_image(monkeypatch, capsys, voc_root, tmp_path):
    root, voc = _copy_voc(voc_root, tmp_path)
    with open(voc / "ImageSets/Segmentation/train.txt", "a") as fh:
        fh.write("2012_999999\n")
    line = _run_fails(monkeypatch, capsys, tmp_path, root, "--set", "limit=0")
    assert "1 of 3 images missing from JPEGImages/ (first: 2012_999999.jpg)" in line


@pytest.mark.parametrize("table, says", [
    ({name: np.zeros(10, np.float32) for name in VOC_IDS}, "have shape (10,), expected (20,)"),
    (np.zeros((4, 20), np.float32), "not an array of shape (4, 20)"),
])
def test_cls_labels_of_the_wrong_shape(table, says, monkeypatch, capsys, voc_root, tmp_path):
    root, voc = _copy_voc(voc_root, tmp_path)
    np.save(voc / "cls_labels.npy", table)
    line = _run_fails(monkeypatch, capsys, tmp_path, root)
    assert f"VOC {voc / 'cls_labels.npy'}" in line and says in line


def test_plain_clip_for_the_mask_adapted_encoder(monkeypatch, capsys, voc_root, clip_file,
                                                 tmp_path):
    # qa-clims on voc defaults to the mask-adapted CLIP: a plain file is one line, up front
    line = _run_fails(monkeypatch, capsys, tmp_path, voc_root, "--clip-weights", clip_file,
                      "--set", "clip_arch=ViT-B-32", method="qa-clims")
    assert line == (f"error: {clip_file} is a plain CLIP checkpoint without mask prompts "
                    "(visual.mask_embedding): the mask-adapted encoder needs OVSeg's "
                    "ovseg_swinbase_vitL14_ft_mpt.pth (or --set clip_encoder=plain)")


def test_clip_weights_of_another_architecture(monkeypatch, capsys, voc_root, clip_file, tmp_path):
    # a ViT-B-32 file for an RN50 teacher: refused before the CAM stage trains
    line = _run_fails(monkeypatch, capsys, tmp_path, voc_root, "--clip-weights", clip_file,
                      "--set", "clip_arch=RN50", method="clims")
    assert f"cannot load CLIP RN50 from {clip_file}" in line


# ---- --cam-weights: a given baseline, the reference format included ----------------------------

def _reference_format(net) -> dict:
    """`net`'s tensors under the IRN/CLIMS resnet50_cam.Net names, aliases included."""
    state = {}
    for k, v in net.state_dict().items():
        if k.startswith("backbone.net."):
            state["resnet50." + k.removeprefix("backbone.net.")] = v.clone()
            if k.startswith("backbone.net.layer2."):  # the stage2 / backbone.1 aliases
                rest = k.removeprefix("backbone.net.layer2.")
                state["stage2.0." + rest] = state["backbone.1.0." + rest] = v.clone()
    state["classifier.weight"] = net.classifier.weight.detach().clone()
    state["newly_added.0.weight"] = state["classifier.weight"]
    return state


def test_cam_checkpoint_in_the_reference_format_loads(tmp_path):
    import torch

    from harness.cam_checkpoint import file_sha256, load_cam_checkpoint
    from harness.generator import build_generator

    torch.manual_seed(0)
    source = build_generator("resnet50", 20, allow_random=True).eval()
    torch.save(_reference_format(source), tmp_path / "res50_cam.pth")
    target = build_generator("resnet50", 20, allow_random=True).eval()
    sha = load_cam_checkpoint(target, tmp_path / "res50_cam.pth")
    assert sha == file_sha256(tmp_path / "res50_cam.pth") and len(sha) == 64
    x = torch.rand(1, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(target.cam(x), source.cam(x))
    with pytest.raises(BenchError, match=r"classifier.weight has shape \(20, 2048, 1, 1\), "
                                         r"this network needs \(80, 2048, 1, 1\)"):
        load_cam_checkpoint(build_generator("resnet50", 80, allow_random=True),
                            tmp_path / "res50_cam.pth")
    with pytest.raises(BenchError, match="is the IRN/CLIMS ResNet-50 CAM format: it needs --set "
                                         "backbone=resnet50; expected this harness's DeiT-S CamNet"):
        load_cam_checkpoint(build_generator("deit_small_patch16_224", 20, allow_random=True),
                            tmp_path / "res50_cam.pth")


def no_cam_stage(args: list[str]) -> list[str]:
    """`args` without its `--set cam_*` pairs: beside --cam-weights the CAM stage trains
    nothing and refuses its settings (harness.reads.refuse_unread_with)."""
    out: list[str] = []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if not (flag == "--set" and str(value).startswith("cam_")):
            out += [flag, value]
    return out


def test_cam_weights_start_the_run_and_are_recorded(monkeypatch, capsys, voc_root, tmp_path):
    import torch

    from harness.cam_checkpoint import file_sha256
    from harness.generator import build_generator

    torch.save(_reference_format(build_generator("resnet50", 20, allow_random=True)),
               tmp_path / "res50_cam.pth")
    code, out, err = bench(monkeypatch, capsys, "run", "cam", "--dataset", "voc", "--data-root",
                           voc_root, "--cam-weights", tmp_path / "res50_cam.pth",
                           "--allow-random-weights", "--device", "cpu", "--runs-dir",
                           tmp_path / "runs", "--cache-dir", tmp_path / "cache", "--wandb",
                           "disabled", "--json", *no_cam_stage(TINY))
    assert code == 0, err[-2000:]
    record = json.loads(out.strip().splitlines()[-1])
    assert record["provenance"]["cam_checkpoint_sha256"] == file_sha256(tmp_path / "res50_cam.pth")
    # the CAM is not trained; the default pseudo masks (IRN) are
    assert record["stage_epochs"] == {"irn": 1}
    assert record["stage_cache"]["misses"] == ["irn_labels", "irn", "masks_irn"]
    code, _, err = bench(monkeypatch, capsys, "run", "cam", "--dataset", "voc", "--data-root",
                         voc_root, "--cam-weights", tmp_path / "none.pth", "--runs-dir",
                         tmp_path / "runs")
    assert f"--cam-weights file {tmp_path / 'none.pth'} does not exist" in one_error_line(code, err)


# ---- --allow-random-weights: a random BLIP of the real architecture ----------------------------

def test_random_blip_vocabulary_sits_at_berts_special_ids():
    from transformers import BlipConfig

    from methods.vqa import blip_vocab

    config = BlipConfig()
    vocab = blip_vocab(("what", "is", "dining", "?"), config.text_config.vocab_size)
    assert len(vocab) == len(set(vocab.values())) == config.text_config.vocab_size == 30524
    assert (vocab["[PAD]"], vocab["[UNK]"], vocab["[CLS]"], vocab["[SEP]"], vocab["[MASK]"]) == (
        0, 100, 101, 102, 103)
    assert vocab["[SEP]"] == config.text_config.sep_token_id
    assert vocab["[DEC]"] == config.text_config.bos_token_id == 30522 and vocab["[ENC]"] == 30523
    assert {vocab[w] for w in ("what", "is", "dining", "?")} == {104, 105, 106, 107}


@pytest.mark.slow  # BLIP at capfilt-large's shape (361 M parameters) on CPU: a few minutes
def test_qape_with_a_random_blip_needs_no_files(monkeypatch, capsys, voc_root, tmp_path):
    args = ("qape", "--dataset", "voc", "--data-root", voc_root, "--device", "cpu", "--set",
            "limit=2", "--cache-dir", tmp_path / "cache")
    code, _, err = bench(monkeypatch, capsys, *args)
    assert "--allow-random-weights" in one_error_line(code, err)
    code, out, err = bench(monkeypatch, capsys, *args, "--allow-random-weights")
    assert code == 0, err[-2000:]
    from harness.data import load_dataset

    train = load_dataset("voc", "train", root=voc_root, limit=2)
    n_items = int(sum(train.labels(i).sum() for i in range(len(train))))  # (image, class) pairs
    assert "qape corpus" in out and f": {n_items} (image, class) items" in out, out
    assert "(answerer: random-init BLIP)" in out, out
