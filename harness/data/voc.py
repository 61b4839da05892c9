"""PASCAL VOC 2012 with the SBD augmentation, in its usual on-disk layout.

    ROOT/VOCdevkit/VOC2012/            (ROOT may also be VOCdevkit/ or VOC2012/ itself)
        JPEGImages/<id>.jpg
        ImageSets/Segmentation/train.txt, val.txt, train_aug.txt
        SegmentationClass/<id>.png      palette PNGs (0 bg, 1–20 classes, 255 border)
        SegmentationClassAug/<id>.png   SBD masks as class indices (for train_aug labels)
        cls_labels.npy                  optional: {id: 20-vector}, as in the IRN/CLIMS code

Splits: `train` = train_aug (10,582 ids, image labels only) — the list from
train_aug.txt (plain ids or DeepLab "/JPEGImages/x.jpg /SegmentationClassAug/x.png"
lines), else every SegmentationClassAug mask not in val.txt; labels from cls_labels.npy,
else from the SegmentationClassAug masks (cached), else Annotations/<id>.xml.
`eval` = the 1,464 `train` ids with SegmentationClass masks (the papers' seed protocol);
`val` = the 1,449 val ids with masks.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from harness.data.real import (
    RealDataset,
    UnreadableFile,
    check_mask_sizes,
    file_stamp,
    find_data_root,
    first_missing,
    labels_cache_path,
    read_png,
    save_npz,
)
from harness.errors import BenchError

CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
           "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep",
           "sofa", "train", "tvmonitor")
DEFAULT_CROP = 512
LAYOUT = ("ROOT/VOCdevkit/VOC2012/{JPEGImages/*.jpg, ImageSets/Segmentation/{train,val,"
          "train_aug}.txt, SegmentationClass/*.png, SegmentationClassAug/*.png}")
ENV = "BENCH_VOC_ROOT"
HELDOUT_STRIDE = 3  # `heldout` = every third id of val.txt (483 of 1,449)


def palette() -> np.ndarray:
    """The VOC colour map (256×3), index → RGB, as in the devkit's labelcolormap."""
    cmap = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def decode_mask(path: Path) -> np.ndarray:
    """A VOC mask PNG → uint8 class indices (0 bg, k+1 class k, 255 ignore)."""
    im = read_png(path)
    if im.mode in ("P", "L"):  # already uint8 class indices: no widening copy (eval reads 1,464)
        m = np.array(im)  # writable, as callers may edit their mask
        bad = (m > len(CLASSES)) & (m != 255)
        m[bad] = 255
        return m
    if im.mode in ("I", "I;16"):
        m = np.asarray(im).astype(np.int64)
    elif im.mode in ("RGB", "RGBA"):
        rgb = np.asarray(im.convert("RGB")).astype(np.int64)
        code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        cmap = palette().astype(np.int64)
        lut = {int((c[0] << 16) | (c[1] << 8) | c[2]): i for i, c in enumerate(cmap[:21])}
        lut[(224 << 16) | (224 << 8) | 192] = 255  # the border colour
        m = np.full(code.shape, 255, np.int64)
        for value, idx in lut.items():
            m[code == value] = idx
    else:
        raise UnreadableFile(f"mask {path} has unsupported PNG mode {im.mode}")
    m[(m > len(CLASSES)) & (m != 255)] = 255
    return m.astype(np.uint8)


def labels_from_mask(m: np.ndarray) -> np.ndarray:
    y = np.zeros(len(CLASSES), np.float32)
    present = np.unique(m)
    present = present[(present > 0) & (present <= len(CLASSES))]
    y[present - 1] = 1
    return y


def find_root(root: str | Path | None) -> Path:
    """The VOC2012 folder under --data-root / BENCH_VOC_ROOT, or one line saying what is missing."""
    return find_data_root("VOC", root, ENV, LAYOUT, ("VOC2012", "VOCdevkit/VOC2012"),
                          "JPEGImages", "no JPEGImages/ in it, in VOC2012/ or in VOCdevkit/VOC2012/")


def read_ids(path: Path) -> list[str]:
    ids = []
    for line in path.read_text().splitlines():
        if line.strip():
            ids.append(Path(line.split()[0]).stem)
    return ids


def _need(voc: Path, rel: str) -> Path:
    p = voc / rel
    if not p.exists():
        raise BenchError(f"VOC root {voc} is incomplete: missing {rel}; expected {LAYOUT}")
    return p


def train_aug_ids(voc: Path) -> list[str]:
    for cand in (voc / "ImageSets" / "Segmentation" / "train_aug.txt", voc / "train_aug.txt",
                 voc.parent / "train_aug.txt"):
        if cand.is_file():
            return read_ids(cand)
    aug = voc / "SegmentationClassAug"
    val = voc / "ImageSets" / "Segmentation" / "val.txt"
    if aug.is_dir() and val.is_file():
        held_out = set(read_ids(val))
        return sorted(p.stem for p in aug.glob("*.png") if p.stem not in held_out)
    raise BenchError(f"VOC root {voc} is incomplete: missing ImageSets/Segmentation/train_aug.txt "
                     f"(or SegmentationClassAug/ and ImageSets/Segmentation/val.txt to derive it); "
                     f"expected {LAYOUT}")


def _npy_labels(voc: Path) -> dict | None:
    for cand in (voc / "cls_labels.npy", voc.parent / "cls_labels.npy",
                 voc.parent.parent / "cls_labels.npy"):
        if cand.is_file():
            return read_cls_labels(cand)
    return None


def read_cls_labels(path: Path) -> dict:
    """IRN's cls_labels.npy: a pickled {image id: 20-vector}; one line if it is not that."""
    try:
        obj = np.load(path, allow_pickle=True)
    except Exception as exc:  # noqa: BLE001 - an unreadable file is the user's to fix
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise BenchError(f"VOC {path} cannot be read: {reason}") from None
    table = obj.item() if isinstance(obj, np.ndarray) and obj.shape == () else None
    if not isinstance(table, dict):
        shape = getattr(obj, "shape", None)
        raise BenchError(f"VOC {path} must hold a dict {{image id: {len(CLASSES)}-vector}} "
                         f"(IRN's cls_labels.npy), not an array of shape {shape}")
    for name, row in table.items():
        if np.shape(row) != (len(CLASSES),):
            raise BenchError(f"VOC {path}: the labels of {name} have shape {np.shape(row)}, "
                             f"expected ({len(CLASSES)},), one 0/1 per VOC class")
    return table


def _xml_labels(path: Path) -> np.ndarray:
    y = np.zeros(len(CLASSES), np.float32)
    for obj in ET.parse(path).getroot().iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name in CLASSES:
            y[CLASSES.index(name)] = 1
    return y


def train_labels(voc: Path, ids: list[str], cache_dir: Path | None) -> np.ndarray:
    """Image labels of `ids`: cls_labels.npy, else SegmentationClassAug masks, else XML."""
    table = _npy_labels(voc)
    if table is not None:
        out = np.zeros((len(ids), len(CLASSES)), np.float32)
        for i, name in enumerate(ids):
            row = table.get(name)
            if row is None and name.replace("_", "").isdigit():  # IRN keys: int("2007000032")
                row = table.get(int(name.replace("_", "")))
            if row is None:
                raise BenchError(f"VOC cls_labels.npy has no labels for image {name}")
            out[i] = np.asarray(row, np.float32)
        return out
    aug = voc / "SegmentationClassAug"
    if aug.is_dir():
        paths = [aug / f"{n}.png" for n in ids]
        n_missing, first = first_missing(paths)
        if n_missing:
            raise BenchError(f"VOC root {voc} is incomplete: {n_missing} of {len(ids)} train_aug "
                             f"masks missing from SegmentationClassAug/ (first: {first.name}); "
                             f"expected {LAYOUT}")
        cache = labels_cache_path(cache_dir, "voc", file_stamp(aug), ids)
        if cache is not None and cache.is_file():
            with np.load(cache) as z:
                return z["labels"]
        out = np.stack([labels_from_mask(decode_mask(p)) for p in paths]) if paths else \
            np.zeros((0, len(CLASSES)), np.float32)
        if cache is not None:
            save_npz(cache, labels=out)
        return out
    xml = voc / "Annotations"
    if xml.is_dir():
        return np.stack([_xml_labels(xml / f"{n}.xml") for n in ids])
    raise BenchError(f"VOC root {voc} is incomplete: no image labels for train_aug (need "
                     f"SegmentationClassAug/, cls_labels.npy or Annotations/); expected {LAYOUT}")


def load(split: str, root: str | Path | None = None, limit: int = 0, crop_size: int = 0,
         cache_dir: Path | None = None, **_: object) -> RealDataset:
    voc = find_root(root)
    if split == "train":
        ids = train_aug_ids(voc)
    elif split == "test":  # VOC2012 test (its own download): images only, scored by the server
        ids = read_ids(_need(voc, "ImageSets/Segmentation/test.txt"))
    elif split in ("eval", "val", "heldout"):
        listed = "train" if split == "eval" else "val"
        ids = read_ids(_need(voc, f"ImageSets/Segmentation/{listed}.txt"))
        if split == "heldout":  # a fixed third of val, for --threshold-split
            ids = ids[::HELDOUT_STRIDE]
    else:
        raise BenchError(f"VOC has no split {split!r} (train = train_aug, eval = train 1,464, val, "
                         "heldout = every third val id, test)")
    if limit:
        ids = ids[:limit]
    if not ids:
        raise BenchError(f"VOC split {split} under {voc} lists no images")
    paths = [voc / "JPEGImages" / f"{n}.jpg" for n in ids]
    n_missing, first = first_missing(paths)
    if n_missing:
        raise BenchError(f"VOC root {voc} is incomplete: {n_missing} of {len(ids)} images missing "
                         f"from JPEGImages/ (first: {first.name}); expected {LAYOUT}")
    if split == "train":
        return RealDataset("voc", split, CLASSES, ids, paths, train_labels(voc, ids, cache_dir),
                           augment=True, crop_size=crop_size or DEFAULT_CROP)
    if split == "test":
        return RealDataset("voc", split, CLASSES, ids, paths, np.zeros((len(ids), len(CLASSES))))
    seg = _need(voc, "SegmentationClass")
    mask_paths = [seg / f"{n}.png" for n in ids]
    n_missing, first = first_missing(mask_paths)
    if n_missing:
        raise BenchError(f"VOC root {voc} is incomplete: {n_missing} of {len(ids)} masks missing "
                         f"from SegmentationClass/ (first: {first.name}); expected {LAYOUT}")
    check_mask_sizes(paths, mask_paths)  # before any training, from the files' headers
    labels = mask_labels(mask_paths, seg, cache_dir)
    return RealDataset("voc", split, CLASSES, ids, paths, labels,
                       mask_fn=lambda i: decode_mask(mask_paths[i]))


def mask_labels(mask_paths: list[Path], folder: Path, cache_dir: Path | None) -> np.ndarray:
    """Image labels from masks (decoded once, then cached by folder stamp and ids)."""
    cache = labels_cache_path(cache_dir, "voc", file_stamp(folder), [p.stem for p in mask_paths])
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            return z["labels"]
    out = np.stack([labels_from_mask(decode_mask(p)) for p in mask_paths])
    if cache is not None:
        save_npz(cache, labels=out)
    return out
