"""Real data and real models from local paths, on tiny fixtures in the real on-disk layouts.

VOC 2012 (+ SegmentationClassAug, train_aug) and COCO 2014 (instances JSON) trees of a few
64-px images, a random-init ViT-B-32 saved to a file and loaded through --clip-weights,
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
    make_clip_weights,
    make_coco,
    make_tiny_blip,
    make_voc,
    voc_mask,
)

FAMILIES = ("cam", "clims", "semples", "qa-clims")
TINY = ["--set", "crop_size=64", "--set", "batch_size=2", "--set", "limit=2", "--epochs", "1",
        "--set", "cam_crop_size=64", "--set", "cam_batch_size=2"]


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
def tiny_blip(tmp_path_factory) -> Path:
    from harness.data.voc import CLASSES as VOC_CLASSES

    names = (*VOC_CLASSES, *(name for _, name in COCO_CATS))
    return make_tiny_blip(tmp_path_factory.mktemp("tiny-blip"),
                          tuple(w for n in names for w in n.split()))


@pytest.fixture(scope="session")
def clip_file(tmp_path_factory) -> Path:
    """A random ViT-B-32 state dict on disk (kept under BENCH_TEST_CACHE when set)."""
    cache = os.environ.get("BENCH_TEST_CACHE")
    path = (Path(cache) if cache else tmp_path_factory.mktemp("clip")) / "vit-b-32-random.pt"
    return path if path.is_file() else make_clip_weights(path)


def bench(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`bench ARGS` in-process through the console entry point: (exit code, stdout, stderr)."""
    from harness.cli import main

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

def _registered() -> set[str]:
    from harness.registry import list_variants

    return {v.family for v in list_variants()}


@pytest.mark.parametrize("dataset", ["voc", "coco"])
@pytest.mark.parametrize("family", [f if f == "cam" else pytest.param(f, marks=pytest.mark.slow)
                                    for f in FAMILIES])  # CLIP families: ViT-B-32 on CPU
def test_family_runs_on_real_layout(family, dataset, monkeypatch, capsys, voc_root, coco_root,
                                    clip_file, tiny_blip, tmp_path):
    if family not in _registered():
        pytest.skip(f"method family {family!r} is not registered in this checkout")
    extra: list[str] = []
    if family == "qa-clims":  # the corpus from a tiny random BLIP; ViT-B-32 as the teacher
        extra = ["--vqa-path", tiny_blip, "--set", "clip_arch=ViT-B-32"]
    if family == "semples":
        extra = ["--set", "prompt_epochs=1", "--set", "refine_epochs=1"]
    root = voc_root if dataset == "voc" else coco_root
    code, out, err = bench(
        monkeypatch, capsys, "run", family, "--dataset", dataset, "--data-root", root,
        "--clip-weights", clip_file, "--allow-random-weights", "--device", "cpu",
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
        assert record["teacher"]["weights"] == str(clip_file)
