"""Builders of tiny datasets in the real on-disk layouts, and random ViT-B-32 weights files
(open_clip's layout, and OVSeg's with mask prompts).

VOC: VOCdevkit/VOC2012 with JPEGImages, palette SegmentationClass PNGs, index
SegmentationClassAug PNGs and ImageSets/Segmentation/{train,val,train_aug}.txt. COCO:
{train2014,val2014}/*.jpg and annotations/instances_{train,val}2014.json with polygon
annotations, category ids with gaps, and one unlabelled image (which the splits skip).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

VOC_IDS = ["2007_000032", "2007_000039", "2007_000063", "2008_000002", "2008_000008"]
VOC_TRAIN_AUG = VOC_IDS[:4]  # the last id is the val image
VOC_TRAIN = VOC_IDS[1:3]  # the `train` images with SegmentationClass masks (the eval split)
# (class index 1-based, box y0, y1, x0, x1) per image
VOC_OBJECTS = {
    "2007_000032": [(1, 10, 40, 8, 50)],            # aeroplane
    "2007_000039": [(4, 30, 60, 5, 40), (15, 5, 30, 40, 60)],  # boat, person
    "2007_000063": [(8, 8, 56, 8, 56)],             # cat
    "2008_000002": [(19, 20, 50, 0, 64)],           # train
    "2008_000008": [(12, 10, 50, 10, 50)],          # dog
}


def _image(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    img = rng.integers(0, 60, (*mask.shape, 3), dtype=np.uint8)
    for k in np.unique(mask):
        if 0 < k < 255:
            img[mask == k] = (np.array([int(k) * 37, int(k) * 71, int(k) * 113]) % 200 + 55).astype(np.uint8)
    return img


Size = int | tuple[int, int]
ODD_SIZES = [(137, 101), (150, 113), (101, 137), (113, 150), (125, 94)]  # h, w: VOC-like shapes,
# none a multiple of 16 or 32, each scale (0.5, 1.5, 2) odd as well


def _hw(size: Size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _sizes(size: Size, sizes: list[tuple[int, int]] | None, n: int) -> list[tuple[int, int]]:
    """Per-image (h, w): `sizes` in turn, or `size` for every image."""
    return [sizes[i % len(sizes)] for i in range(n)] if sizes else [_hw(size)] * n


def voc_mask(name: str, size: Size = 64) -> np.ndarray:
    """The objects of VOC_OBJECTS (drawn on a 64-px grid) scaled to `size` = side or (h, w)."""
    h, w = _hw(size)
    m = np.zeros((h, w), np.uint8)
    for k, y0, y1, x0, x1 in VOC_OBJECTS[name]:
        y0, y1, x0, x1 = y0 * h // 64, y1 * h // 64, x0 * w // 64, x1 * w // 64
        m[y0:y1, x0:x1] = 255  # the VOC border around each object
        m[y0 + 1:y1 - 1, x0 + 1:x1 - 1] = k
    return m


def fixed_tree(name: str, make: Callable[[Path], object]) -> Path:
    """A fixture tree at a path named by what it holds, the same in every test session.

    A real-data run's stage keys include its data root (and a BLIP's folder), so its stages'
    seeds do too: the pinned numbers of an end-to-end run on a fixture hold only for a fixed
    path. The folder (in the system temp dir) is `<name>-<hash of the files make builds>`, so
    an edit to this file that builds the same files (a comment, a refactor) keeps the path and
    the pins, and one that changes a file makes a new folder. Each session builds the tree
    afresh beside it, hashes it, and renames it into place, atomically under a lock: a folder
    of that name is always whole, and a crash leaves no half tree behind that a later session
    would trust. (Measured: odd-voc 0.04 s, odd-coco 0.02 s, the tiny BLIP 0.03 s once
    transformers' BLIP classes are imported, which its tests do anyway to load it.)"""
    from harness.cache import file_lock

    base = Path(tempfile.gettempdir()) / "wsss-bench-test-fixtures"
    base.mkdir(parents=True, exist_ok=True)
    with file_lock(base / f"{name}.lock"):
        for stale in base.glob(f".{name}.*.tmp"):  # a build killed before its rename (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        fresh = base / f".{name}.{os.getpid()}.tmp"
        try:
            make(fresh)
            root = base / f"{name}-{tree_hash(fresh)}"
            if root.is_dir():
                shutil.rmtree(fresh)  # built before: the same bytes, keep that folder
            else:
                os.rename(fresh, root)
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
    return root


def tree_hash(root: Path) -> str:
    """SHA-256 (16 hex digits) over the files under `root`: each one's path relative to it and
    its bytes, in sorted path order, each length-prefixed (no two trees collide by
    concatenation)."""
    h = hashlib.sha256()
    for rel, path in sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file()):
        for part in (rel.encode(), path.read_bytes()):
            h.update(len(part).to_bytes(8, "big"))
            h.update(part)
    return h.hexdigest()[:16]


def make_voc(root: Path, size: Size = 64, sizes: list[tuple[int, int]] | None = None) -> Path:
    """ROOT/VOCdevkit/VOC2012 with the five images above (each `size`, or `sizes` in turn,
    e.g. ODD_SIZES); returns ROOT."""
    from harness.data.voc import palette

    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationClassAug", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, hw in zip(VOC_IDS, _sizes(size, sizes, len(VOC_IDS)), strict=True):
        m = voc_mask(name, hw)
        Image.fromarray(_image(rng, m)).save(voc / "JPEGImages" / f"{name}.jpg", quality=95)
        aug = m.copy()
        aug[aug == 255] = 0  # SBD masks carry no border
        Image.fromarray(aug, mode="L").save(voc / "SegmentationClassAug" / f"{name}.png")
        if name in VOC_TRAIN or name not in VOC_TRAIN_AUG:
            pal = Image.fromarray(m, mode="P")
            pal.putpalette(palette().reshape(-1).tolist())
            pal.save(voc / "SegmentationClass" / f"{name}.png")
    sets = voc / "ImageSets" / "Segmentation"
    (sets / "train.txt").write_text("\n".join(VOC_TRAIN) + "\n")
    (sets / "val.txt").write_text("\n".join(VOC_IDS[4:]) + "\n")
    # the DeepLab list format, as train_aug.txt often comes
    (sets / "train_aug.txt").write_text("".join(
        f"/JPEGImages/{n}.jpg /SegmentationClassAug/{n}.png\n" for n in VOC_TRAIN_AUG))
    return root


def make_voc_sized(root: Path, sizes: list[tuple[int, int]], n_eval: int = 4, seed: int = 0) -> Path:
    """A VOC 2012 tree of len(sizes) images of those (h, w), one or two random boxes each;
    train_aug lists all of them, train.txt (the evaluation split) the first `n_eval`."""
    from harness.data.voc import palette

    rng = np.random.default_rng(seed)
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationClassAug", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    names = [f"2009_{i:06d}" for i in range(len(sizes))]
    for name, (h, w) in zip(names, sizes, strict=True):
        m = np.zeros((h, w), np.uint8)
        for _ in range(int(rng.integers(1, 3))):
            y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
            y1, x1 = y0 + int(rng.integers(h // 4, h // 2)), x0 + int(rng.integers(w // 4, w // 2))
            m[y0:y1, x0:x1] = 255
            m[y0 + 1:y1 - 1, x0 + 1:x1 - 1] = int(rng.integers(1, 21))
        Image.fromarray(_image(rng, m)).save(voc / "JPEGImages" / f"{name}.jpg", quality=90)
        aug = np.where(m == 255, 0, m).astype(np.uint8)
        Image.fromarray(aug, mode="L").save(voc / "SegmentationClassAug" / f"{name}.png")
        pal = Image.fromarray(m, mode="P")
        pal.putpalette(palette().reshape(-1).tolist())
        pal.save(voc / "SegmentationClass" / f"{name}.png")
    sets = voc / "ImageSets" / "Segmentation"
    (sets / "train.txt").write_text("\n".join(names[:n_eval]) + "\n")
    (sets / "val.txt").write_text("\n".join(names[n_eval:]) + "\n")
    (sets / "train_aug.txt").write_text("\n".join(names) + "\n")
    return root


COCO_CATS = [(1, "person"), (18, "dog"), (90, "toothbrush")]  # ids with gaps → indices 0, 1, 2


def make_coco(root: Path, size: Size = 64, sizes: list[tuple[int, int]] | None = None) -> Path:
    """ROOT/{train2014,val2014} with 3 labelled images each (+1 unlabelled), instances JSONs;
    each image `size`, or `sizes` in turn (boxes drawn on a 64-px grid, scaled)."""
    rng = np.random.default_rng(1)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    boxes = [[(1, 8, 8, 40, 40)], [(18, 20, 4, 30, 50), (1, 0, 30, 20, 30)], [(90, 16, 16, 24, 24)],
             []]  # (category id, x, y, w, h); the last image has no annotation
    for folder in ("train2014", "val2014"):
        (root / folder).mkdir(exist_ok=True)
        images, anns = [], []
        for i, (objs, (ih, iw)) in enumerate(zip(boxes, _sizes(size, sizes, len(boxes)),
                                                  strict=True)):
            image_id = 100 + i
            name = f"COCO_{folder}_{image_id:012d}.jpg"
            m = np.zeros((ih, iw), np.uint8)
            for cat, x, y, w, h in objs:
                x, w, y, h = x * iw // 64, w * iw // 64, y * ih // 64, h * ih // 64
                m[y:y + h, x:x + w] = [c for c, _ in COCO_CATS].index(cat) + 1
                anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat,
                             "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                             "area": float(w * h), "bbox": [x, y, w, h], "iscrowd": 0})
            Image.fromarray(_image(rng, m)).save(root / folder / name, quality=95)
            images.append({"id": image_id, "file_name": name, "height": ih, "width": iw})
        data = {"images": images, "annotations": anns,
                "categories": [{"id": c, "name": n, "supercategory": n} for c, n in COCO_CATS]}
        (root / "annotations" / f"instances_{folder}.json").write_text(json.dumps(data))
    return root


def make_clip_weights(path: Path, arch: str = "ViT-B-32") -> Path:
    """A random-init open_clip `arch` state dict saved to `path` (fp16: half the bytes)."""
    import torch

    from harness.compat import ensure_torchvision

    ensure_torchvision()
    import open_clip

    model = open_clip.create_model(arch, pretrained=None, quick_gelu=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({k: v.half() for k, v in model.state_dict().items()}, tmp)
    tmp.replace(path)
    return path


def make_ovseg_clip_weights(path: Path, arch: str = "ViT-B-32", depth: int = 3) -> Path:
    """A random open_clip `arch` with random mask prompts, saved as OVSeg saves its model
    (ovseg_swinbase_vitL14_ft_mpt.pth): a detectron2 {"model": state dict} holding the CLIP
    under `clip_adapter.clip_model.` (OpenAI CLIP's names) with `visual.mask_embedding`
    (depth, grid², width), beside tensors of the segmenter that are not the CLIP's."""
    import torch

    from harness.compat import ensure_torchvision

    ensure_torchvision()
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model(arch, pretrained=None, quick_gelu=True)
    visual = model.visual
    grid = visual.grid_size[0] * visual.grid_size[1]
    state = {f"clip_adapter.clip_model.{k}": v.half() for k, v in model.state_dict().items()}
    state["clip_adapter.clip_model.visual.mask_embedding"] = (
        torch.randn(depth, grid, visual.conv1.out_channels) * 0.02).half()
    # the rest of OVSeg's model: the Swin backbone, the head, the adapter's own embedding
    state["backbone.patch_embed.proj.weight"] = torch.randn(128, 3, 4, 4).half()
    state["sem_seg_head.predictor.class_embed.weight"] = torch.randn(16, 256).half()
    state["clip_adapter.non_object_embedding"] = torch.randn(1, model.text_projection.shape[1]).half()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": state, "iteration": 120000}, tmp)
    tmp.replace(path)
    return path


def make_tiny_blip(folder: Path, extra_words: tuple[str, ...] = ()) -> Path:
    """A random BlipForQuestionAnswering from a BlipConfig + a hand-written vocabulary
    (the templates' words, synth's names and `extra_words`, e.g. a fixture's class names)."""
    from harness.compat import ensure_torchvision

    ensure_torchvision()
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForQuestionAnswering,
        BlipImageProcessor,
        BlipProcessor,
    )

    from harness.synth.data import CLASSES, CONTEXTS
    from methods.vqa import TEMPLATES

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "?"]
    words = {w for _, t in TEMPLATES for w in re.findall(r"[a-z]+", t.lower())}
    words |= {w for c in (*CLASSES, *CONTEXTS, "clutter", "dining table", *extra_words) for w in c.split()}
    vocab = {w: i for i, w in enumerate(special + sorted(words - set(special)))}
    tok = BertTokenizer(vocab=vocab, do_lower_case=True, bos_token="[DEC]")
    text = dict(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=64, max_position_embeddings=64, bos_token_id=vocab["[DEC]"],
                pad_token_id=0, sep_token_id=vocab["[SEP]"], eos_token_id=vocab["[SEP]"])
    vision = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=64, image_size=32, patch_size=8)
    torch.manual_seed(0)
    model = BlipForQuestionAnswering(BlipConfig(text_config=text, vision_config=vision)).eval()
    proc = BlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}), tok)
    folder.mkdir(parents=True, exist_ok=True)
    proc.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder
