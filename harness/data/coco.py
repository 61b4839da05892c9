"""MS COCO 2014 for WSSS: image labels from the instances JSON, class masks rendered from it.

    ROOT/train2014/COCO_train2014_<id>.jpg
    ROOT/val2014/COCO_val2014_<id>.jpg
    ROOT/annotations/instances_train2014.json, instances_val2014.json
    ROOT/SegmentationClass/{train2014,val2014}/<name>.png   optional pre-rendered masks

80 classes in category-id order (ids 1–90 with gaps → indices 0–79); mask value k+1 =
class k, 0 = background, 255 = ignore (crowd regions not covered by a non-crowd object).
Splits: `train` = train2014, `eval` = val2014, each the images with at least one label
(82,081 / 40,137 as in the reference lists). Labels are cached per annotation file; the
val annotations stay loaded (pycocotools) to render masks on demand when not pre-rendered.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np

from harness.data.real import (
    RealDataset,
    file_stamp,
    find_data_root,
    first_missing,
    labels_cache_path,
    read_png,
    save_npz,
)
from harness.errors import BenchError

DEFAULT_CROP = 512
LAYOUT = ("ROOT/{train2014,val2014}/*.jpg and ROOT/annotations/instances_{train,val}2014.json "
          "(optional ROOT/SegmentationClass/{train2014,val2014}/*.png)")
ENV = "BENCH_COCO_ROOT"
SPLITS = {"train": "train2014", "eval": "val2014", "val": "val2014"}


def find_root(root: str | Path | None) -> Path:
    return find_data_root("COCO", root, ENV, LAYOUT, ("coco", "COCO"), "annotations",
                          "missing annotations/")


def _coco(path: Path):
    from pycocotools.coco import COCO

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            return COCO(str(path))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BenchError(f"COCO annotation file {path} cannot be read: "
                         f"{str(exc).splitlines()[0]}") from None


def _index(coco) -> tuple[list[str], list[int], list[str], np.ndarray]:
    """Class names, category ids, file names and labels of images with ≥ 1 label."""
    cat_ids = sorted(coco.getCatIds())
    names = [coco.loadCats(c)[0]["name"] for c in cat_ids]
    col = {c: i for i, c in enumerate(cat_ids)}
    files, ids, rows = [], [], []
    for img in sorted(coco.dataset.get("images", []), key=lambda r: r["file_name"]):
        y = np.zeros(len(cat_ids), np.float32)
        for ann in coco.imgToAnns.get(img["id"], []):
            y[col[ann["category_id"]]] = 1
        if y.any():
            files.append(img["file_name"])
            ids.append(img["id"])
            rows.append(y)
    labels = np.stack(rows) if rows else np.zeros((0, len(cat_ids)), np.float32)
    return names, ids, files, labels


def render_mask(coco, image_id: int, cat_col: dict[int, int]) -> np.ndarray:
    """Class-index mask: crowd regions 255, then objects largest first (small ones on top)."""
    info = coco.imgs[image_id]
    mask = np.zeros((info["height"], info["width"]), np.uint8)
    anns = coco.imgToAnns.get(image_id, [])
    for ann in [a for a in anns if a.get("iscrowd", 0)]:
        mask[coco.annToMask(ann) > 0] = 255
    for ann in sorted([a for a in anns if not a.get("iscrowd", 0)], key=lambda a: -a["area"]):
        mask[coco.annToMask(ann) > 0] = cat_col[ann["category_id"]] + 1
    return mask


def load(split: str, root: str | Path | None = None, limit: int = 0, crop_size: int = 0,
         cache_dir: Path | None = None, **_: object) -> RealDataset:
    if split not in SPLITS:
        raise BenchError(f"COCO has no split {split!r} (train = train2014, eval = val2014)")
    base = find_root(root)
    folder = SPLITS[split]
    ann_path = base / "annotations" / f"instances_{folder}.json"
    if not ann_path.is_file():
        raise BenchError(f"COCO root {base} is incomplete: missing annotations/{ann_path.name}; "
                         f"expected {LAYOUT}")
    if not (base / folder).is_dir():
        raise BenchError(f"COCO root {base} is incomplete: missing {folder}/; expected {LAYOUT}")
    train = split == "train"
    cache = labels_cache_path(cache_dir, "coco", file_stamp(ann_path))
    coco = None
    if train and cache is not None and cache.is_file():  # skip parsing the 450 MB JSON
        with np.load(cache, allow_pickle=False) as z:
            names, ids, files, labels = (list(z["names"]), z["ids"].tolist(), list(z["files"]),
                                         z["labels"])
    else:
        coco = _coco(ann_path)
        names, ids, files, labels = _index(coco)
        if cache is not None:
            save_npz(cache, names=np.array(names), ids=np.array(ids, np.int64),
                     files=np.array(files), labels=labels)
    if limit:
        ids, files, labels = ids[:limit], files[:limit], labels[:limit]
    if not files:
        raise BenchError(f"COCO {ann_path.name} lists no labelled images")
    paths = [base / folder / f for f in files]
    n_missing, first = first_missing(paths)
    if n_missing:
        raise BenchError(f"COCO root {base} is incomplete: {n_missing} of {len(files)} images "
                         f"missing from {folder}/ (first: {first.name}); expected {LAYOUT}")
    image_names = [Path(f).stem for f in files]
    if train:
        return RealDataset("coco", split, names, image_names, paths, labels, augment=True,
                           crop_size=crop_size or DEFAULT_CROP)
    rendered = base / "SegmentationClass" / folder
    if rendered.is_dir():
        def mask_fn(i: int) -> np.ndarray:
            return np.asarray(read_png(rendered / f"{image_names[i]}.png")).astype(np.uint8)
    else:
        cat_col = {c: i for i, c in enumerate(sorted(coco.getCatIds()))}

        def mask_fn(i: int) -> np.ndarray:
            return render_mask(coco, ids[i], cat_col)

    return RealDataset("coco", split, names, image_names, paths, labels, mask_fn=mask_fn)
