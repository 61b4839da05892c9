"""The real path end to end at real image sizes, with the papers' architectures at random init.

Any image size through every backbone (timm resnet50, deit_small_patch16_224): CAMs at the
image's own size, unchanged where sizes already worked. Every method family through the CLI
on VOC / COCO layouts of odd-sized images (not multiples of 16 or 32). A failure after
training is one line, and the rerun starts at the failed step.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from harness.generator import CamNet, build_generator
from harness.infer import REAL_SCALES, image_cams
from tests.conftest import assert_pinned
from tests.fixtures_real import ODD_SIZES, VOC_IDS, VOC_TRAIN, fixed_tree, make_coco, make_voc
from tests.test_real_data import _no_env_roots, bench, tiny_blip  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow  # every test here runs a family end to end on real-size images

BACKBONES = ("resnet50", "deit_small_patch16_224")


@pytest.fixture(scope="module")
def generators() -> dict[str, CamNet]:
    torch.manual_seed(0)
    return {name: build_generator(name, 20, allow_random=True).eval() for name in BACKBONES}


@pytest.fixture(params=BACKBONES)
def generator(request, generators) -> CamNet:
    return generators[request.param]


def cams_before(model: CamNet, images: torch.Tensor, scales) -> torch.Tensor:
    """The inference of the previous release (sizes that fill the grid only), kept as the
    reference: flips merged on the grid, one resize per scale."""
    h, w = images.shape[-2:]
    total = torch.zeros(images.shape[0], model.classifier.out_channels, h, w)
    for s in scales:
        x = images if s == 1.0 else F.interpolate(images, scale_factor=s, mode="bilinear",
                                                   align_corners=False)
        cams = model.cam(torch.cat([x, x.flip(-1)]))
        cams = cams[: len(x)] + cams[len(x):].flip(-1)
        total += F.interpolate(cams.float(), size=(h, w), mode="bilinear", align_corners=False)
    return total


# sizes whose every scale (0.5, 1, 1.5, 2) fills the backbone's grid: multiples of 2·stride
@pytest.mark.parametrize("backbone, size", [("resnet50", (64, 64)), ("resnet50", (128, 192)),
                                            ("deit_small_patch16_224", (64, 64)),
                                            ("deit_small_patch16_224", (224, 224))])
@torch.no_grad()
def test_sizes_that_fill_the_grid_give_the_same_cams_as_before(generators, backbone, size):
    model = generators[backbone]
    images = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
    assert torch.equal(image_cams(model, images, REAL_SCALES),
                       cams_before(model, images, REAL_SCALES))


@pytest.mark.parametrize("size", [(137, 101), (150, 113), (375, 500)])
@torch.no_grad()
def test_any_size_gives_cams_at_the_image_size(generator, size):
    images = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(2))
    cams = image_cams(generator, images, REAL_SCALES)
    assert cams.shape == (1, 20, *size)
    assert torch.isfinite(cams).all() and cams.min() >= 0 and cams.max() > 0


@torch.no_grad()
def test_odd_image_is_padded_with_the_mean_colour_and_cropped_back():
    """A DeiT pads to the next multiple of 16 with zeros after normalisation (the ImageNet
    mean colour): padding the image by hand with that colour gives the same grid, and the
    map of the odd image is the padded image's map cropped to the image's pixels."""
    torch.manual_seed(0)
    model = build_generator("deit_small_patch16_224", 5, allow_random=True).eval()
    h, w = 137, 101
    images = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(3))
    padded = model.mean.expand(1, 3, 144, 112).clone()
    padded[..., :h, :w] = images
    odd_maps, padded_maps = model.maps(images), model.maps(padded)
    assert odd_maps.shape[-2:] == (9, 7)
    torch.testing.assert_close(odd_maps, padded_maps, rtol=1e-5, atol=1e-5)
    cropped = F.interpolate(padded_maps, size=(144, 112), mode="bilinear",
                            align_corners=False)[..., :h, :w]
    torch.testing.assert_close(model.pixel_maps(odd_maps, (h, w)), cropped, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_resnet_grid_is_ceil_of_size_over_stride():
    torch.manual_seed(0)
    model = build_generator("resnet50", 3, allow_random=True).eval()
    assert model.stride == 32
    assert model.maps(torch.rand(1, 3, 137, 101)).shape[-2:] == (5, 4)  # ceil(137/32), ceil(101/32)


def test_odd_sizes_train_through_both_backbones(generator):
    """A training step on an odd crop: the loss is finite and every backbone weight gets a
    gradient (the padding does not cut the graph)."""
    generator.train()
    try:
        images = torch.rand(2, 3, 100, 84, generator=torch.Generator().manual_seed(4))
        labels = torch.zeros(2, 20)
        labels[0, 3] = labels[1, 7] = 1
        loss = F.multilabel_soft_margin_loss(generator(images), labels)
        loss.backward()
        grads = [p.grad for p in generator.backbone.parameters() if p.requires_grad]
        assert torch.isfinite(loss) and all(g is not None for g in grads)
    finally:
        generator.zero_grad(set_to_none=True)
        generator.eval()


# ---- every family end to end through the CLI, on odd-sized VOC / COCO trees ----------------

# The papers' architectures at random init (resnet50, deit_small_patch16_224, open_clip
# ViT-B-32); for CI time: 2 training images, 1 epoch of every stage, batch 2 and 100-px
# crops (itself not a multiple of 16 or 32, so training pads too). Evaluation runs at the
# images' own odd sizes over scales 1, 0.5, 1.5, 2 and flips. The family's default pseudo
# masks follow (IRN or dense CRF, docs/masks.md), IRN on 96-px crops.
SMALL = ["--set", "limit=2", "--epochs", "1", "--set", "batch_size=2", "--set", "crop_size=100",
         "--allow-random-weights", "--device", "cpu", "--mask-set", "irn_crop_size=96"]
IRN = ["irn_labels", "irn", "masks_irn"]
CAM_STAGE = ["--set", "cam_batch_size=2", "--set", "cam_crop_size=100"]  # the shared baseline's
# The smaller configs, for CI time only: qa-clims's CLIP is ViT-B-32, not the paper's
# ViT-L-14, and its BLIP VQA the tiny random one of `make_tiny_blip` (--vqa-path): the
# random capfilt-large BLIP of --allow-random-weights alone takes over 15 CPU minutes to
# answer the corpus of two images on two cores.
PER_FAMILY = {"clims": CAM_STAGE, "semples": CAM_STAGE,
              "qa-clims": [*CAM_STAGE, "--set", "clip_arch=ViT-B-32"]}


@pytest.fixture(scope="module")
def odd_voc() -> Path:
    return fixed_tree("odd-voc", lambda root: make_voc(root, sizes=ODD_SIZES))  # pinned runs


@pytest.fixture(scope="module")
def odd_coco() -> Path:
    return fixed_tree("odd-coco", lambda root: make_coco(root, sizes=ODD_SIZES))  # pinned runs


def run_json(monkeypatch, capsys, method: str, dataset: str, root: Path, tmp_path: Path,
             *extra: str) -> dict:
    code, out, err = bench(monkeypatch, capsys, "run", method, "--dataset", dataset,
                           "--data-root", root, "--runs-dir", tmp_path / "runs",
                           "--cache-dir", tmp_path / "cache", "--json", *SMALL,
                           *PER_FAMILY.get(method, ()), *extra)
    assert code == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def assert_cams_at_image_sizes(record: dict, image_files: dict[str, Path]) -> None:
    cams = sorted((Path(record["path"]) / "cams").glob("*.npy"))
    assert {c.stem for c in cams} == set(image_files)
    for cam in cams:
        data = np.load(cam, allow_pickle=True).item()
        with Image.open(image_files[cam.stem]) as im:
            w, h = im.size
        assert data["high_res"].shape == (len(data["keys"]), h, w)
        assert np.isfinite(data["high_res"]).all()


def assert_masks_at_image_sizes(record: dict, image_files: dict[str, Path]) -> None:
    """The default pseudo masks: palette PNGs at the images' sizes, scored, with provenance."""
    masks = sorted((Path(record["path"]) / "masks").glob("*.png"))
    assert {m.stem for m in masks} == set(image_files)
    for m in masks:
        with Image.open(m) as im, Image.open(image_files[m.stem]) as img:
            assert im.mode == "P" and im.size == img.size
    assert 0.0 <= record["mask_miou"] <= 100.0
    assert record["mask_provenance"]["pipeline"] in ("irn", "crf")


def assert_scored(record: dict, stages: list[str]) -> None:
    assert record["status"] == "ok"
    assert_pinned(f"real e2e: {record['variant']} on odd-sized {record['dataset']}", record)
    assert len(record["miou_by_threshold"]) > 1
    assert record["stage_cache"]["misses"] == stages


@pytest.mark.parametrize("method, stages", [
    ("cam", ["cam", *IRN]),
    ("clims", ["cam", "clims", *IRN]),
    ("semples", ["cam", "semples-a", "semples-b", "semples-c", "masks_crf"]),
    ("qa-clims", ["qape", "cam", "qa-clims", *IRN]),
])
def test_family_end_to_end_on_odd_sized_voc(monkeypatch, capsys, tmp_path, odd_voc, method,
                                            stages, request):
    vqa = ["--vqa-path", request.getfixturevalue("tiny_blip")] if method == "qa-clims" else []
    record = run_json(monkeypatch, capsys, method, "voc", odd_voc, tmp_path, *vqa)
    assert_scored(record, stages)
    jpegs = odd_voc / "VOCdevkit" / "VOC2012" / "JPEGImages"
    assert_cams_at_image_sizes(record, {n: jpegs / f"{n}.jpg" for n in VOC_TRAIN})
    assert_masks_at_image_sizes(record, {n: jpegs / f"{n}.jpg" for n in VOC_TRAIN})


def test_coco_layout_end_to_end_with_odd_sizes(monkeypatch, capsys, tmp_path, odd_coco):
    record = run_json(monkeypatch, capsys, "clims", "coco", odd_coco, tmp_path)
    assert_scored(record, ["cam", "clims", *IRN])
    val = odd_coco / "val2014"
    names = [f"COCO_val2014_{100 + i:012d}" for i in range(2)]  # limit=2 of the labelled three
    assert_cams_at_image_sizes(record, {n: val / f"{n}.jpg" for n in names})


# ---- a failure after training: one line, nothing lost, the rerun starts at the failed step --

def leftovers(cache: Path) -> list[Path]:
    return [p for p in (cache / "stages").rglob(".*") if p.suffix in (".tmp", ".partial")]


def test_failed_inference_keeps_the_trained_stage_and_the_rerun_skips_training(
        monkeypatch, capsys, tmp_path):
    """A corrupt evaluation image (training reads only the first image with limit=1):
    training finishes, inference fails in one line; fixed, the rerun trains nothing."""
    root = make_voc(tmp_path / "voc", sizes=ODD_SIZES)
    jpeg = root / "VOCdevkit" / "VOC2012" / "JPEGImages" / f"{VOC_TRAIN[0]}.jpg"
    assert VOC_TRAIN[0] == VOC_IDS[1]  # the second training image: not in a limit=1 train split
    good = jpeg.read_bytes()
    jpeg.write_bytes(good[: len(good) // 3])
    args = ["run", "cam", "--dataset", "voc", "--data-root", root, "--runs-dir", tmp_path / "runs",
            "--cache-dir", tmp_path / "cache", "--json", *SMALL, "--set", "limit=1"]
    code, _, err = bench(monkeypatch, capsys, *args)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: CAM inference: cannot read image") and jpeg.name in lines[0]
    assert list((tmp_path / "cache" / "stages" / "cam").glob("*/manifest.json"))
    assert not leftovers(tmp_path / "cache")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())

    jpeg.write_bytes(good)
    code, out, err = bench(monkeypatch, capsys, *args)
    assert code == 0, err
    record = json.loads(out.strip().splitlines()[-1])
    # the CAM stage is not trained again; the pseudo masks, after inference, are made now
    assert record["stage_cache"] == {"hits": ["cam"], "misses": IRN}


def test_unexpected_error_is_one_line_naming_its_stage_and_debug_shows_the_traceback(
        monkeypatch, capsys, tmp_path, odd_voc):
    """An exception that is no BenchError (a bug) at CAM inference: one line with the stage
    and the cause, exit 1; --debug (or BENCH_DEBUG=1) prints the traceback before it."""
    import harness.infer

    def broken(*_a, **_k):
        raise RuntimeError("shape mismatch in a scale\nsecond line")

    monkeypatch.setattr(harness.infer, "image_cams", broken)
    args = ["run", "cam", "--dataset", "voc", "--data-root", odd_voc, "--runs-dir",
            tmp_path / "runs", "--cache-dir", tmp_path / "cache", *SMALL]
    code, _, err = bench(monkeypatch, capsys, *args)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err and "second line" not in err
    assert lines[0].startswith("error: CAM inference: RuntimeError: shape mismatch in a scale (")
    assert "--debug" in lines[0]
    for debug in (["--debug"], []):
        if not debug:
            monkeypatch.setenv("BENCH_DEBUG", "1")
        code, _, err = bench(monkeypatch, capsys, *args, *debug)
        assert code == 1 and "Traceback" in err and "stage cache hit: cam" in err
        assert err.strip().splitlines()[-1].startswith("error: CAM inference: RuntimeError")


def test_a_failed_stage_build_leaves_no_folder_and_names_the_stage(tmp_path):
    from harness.cache import StageCache
    from harness.errors import failed_stage

    cache = StageCache(tmp_path, log=lambda m: None)
    first, key = cache.get_or_build("first", {"a": 1}, lambda f: (f / "w.pt").write_text("x"))
    cache.partial_dir("second", "k").mkdir(parents=True)  # a stale checkpoint is not touched

    def failing(folder: Path) -> None:
        (folder / "half.pt").write_text("half")
        (cache.partial_dir("second", key2) / "last.pt").parent.mkdir(parents=True)
        raise ValueError("bad batch")

    from harness.cache import stage_key

    key2 = stage_key("second", {"b": 2})
    with pytest.raises(ValueError) as info:
        cache.get_or_build("second", {"b": 2}, failing)
    assert failed_stage(info.value) == "second"
    assert (first / "manifest.json").exists() and (first / "w.pt").read_text() == "x"
    second_dir = tmp_path / "stages" / "second"
    assert sorted(p.name for p in second_dir.iterdir()) == sorted(
        [f".{key2}.partial", ".k.partial", f"{key2}.lock"])  # checkpoints kept for --resume

    folder, _ = cache.get_or_build("second", {"b": 2}, lambda f: (f / "w.pt").write_text("y"))
    assert (folder / "manifest.json").exists()
    assert not cache.partial_dir("second", key2).exists()  # finished: its checkpoints go
    assert cache.partial_dir("second", "k").exists()


def test_vit_recomputes_activations_on_cpu_with_the_same_gradients(monkeypatch):
    """The memory saving (grad checkpointing of the DeiT blocks on CPU) changes no number."""
    import harness.generator

    torch.manual_seed(0)
    model = build_generator("deit_small_patch16_224", 4, allow_random=True).train()
    images = torch.rand(2, 3, 70, 52, generator=torch.Generator().manual_seed(5))
    labels = torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0]])

    def step(checkpoint: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        monkeypatch.setattr(harness.generator, "CHECKPOINT_ON_CPU", checkpoint)
        model.zero_grad(set_to_none=True)
        loss = F.multilabel_soft_margin_loss(model(images), labels)
        loss.backward()
        assert model.backbone.net.grad_checkpointing == checkpoint
        return loss.detach(), [p.grad.clone() for p in model.parameters()]

    (kept_loss, kept), (recomputed_loss, recomputed) = step(False), step(True)
    assert torch.equal(kept_loss, recomputed_loss)
    for a, b in zip(kept, recomputed, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    with torch.no_grad():
        model(images)
    assert not model.backbone.net.grad_checkpointing  # inference keeps nothing to recompute
