"""`--dataset folder --data-root DIR`: any folder of images with image-level labels
(docs/own-data.md).

    DIR/classes.txt                  one class name a line, in label order; background is 0
    DIR/images/NAME.jpg|jpeg|png     any size, RGB or grayscale
    DIR/labels.csv                   header `image,labels`: NAME (with or without its
                                     extension), class names separated by `;`
    DIR/masks/NAME.png               optional: single-channel index PNGs, 0 = background,
                                     k = the k-th class of classes.txt, 255 = ignore
    DIR/splits/{train,eval,val}.txt  optional: image names, one a line
    DIR/background.txt               optional: background words for CLIMS's and CLIP-ES's
                                     background prompts (else harness.data.GENERIC_BACKGROUND)

Splits a file does not give are derived: `val` = a fifth of the images with masks (the
lowest SHA-256 of their names, so adding images moves few), held out from everything else;
`train` = every labelled image but val; `eval` = every image with a mask but val. The rule
in use is printed once per folder and process.

Everything is checked when a split is loaded, before anything trains: the first bad thing
is one `BenchError` line naming its file (and line). Images and masks are decoded once per
process for that (a truncated JPEG has a good header).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from harness.data.real import RealDataset, find_data_root, image_size, read_image, read_png
from harness.errors import BenchError

LAYOUT = ("DIR/{classes.txt, images/NAME.jpg|jpeg|png, labels.csv (image,labels)}, optional "
          "DIR/masks/NAME.png, DIR/splits/{train,eval,val}.txt, DIR/background.txt")
ENV = "BENCH_FOLDER_ROOT"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "eval", "val")
VAL_FRACTION = 0.2  # of the images with masks, when no splits/val.txt says which
DEFAULT_CROP = 512  # VOC's: a dataset without settings of its own runs VOC's
IGNORE = 255
MASK_HELP = "masks are single-channel index PNGs: 0 background, k the k-th class, 255 ignore"


@dataclass(frozen=True)
class Folder:
    """A checked folder: classes, labelled images (labels.csv order), masks, split names."""

    root: Path
    classes: tuple[str, ...]
    images: dict[str, Path]
    labels: dict[str, np.ndarray]
    masks: dict[str, Path]
    splits: dict[str, list[str]]
    rule: str  # how the splits were made, for the run's output
    background: tuple[str, ...]


def lines(path: Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-blank lines of a text file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"cannot read {path}: {exc.__class__.__name__}") from None
    return [(n, t.strip()) for n, t in enumerate(text.splitlines(), 1) if t.strip()]


def image_name(token: str) -> str:
    """NAME from `NAME`, `NAME.jpg` or `images/NAME.png`."""
    name = Path(token.strip()).name
    return Path(name).stem if Path(name).suffix.lower() in IMAGE_SUFFIXES else name


def read_classes(root: Path) -> tuple[str, ...]:
    path = root / "classes.txt"
    if not path.is_file():
        raise BenchError(f"folder {root} has no classes.txt; expected {LAYOUT}")
    rows = lines(path)
    if not rows:
        raise BenchError(f"{path} is empty: one class name a line, in label order "
                         "(background is label 0 and implicit)")
    first: dict[str, int] = {}
    for n, name in rows:
        if name in first:
            raise BenchError(f"{path} line {n}: class {name!r} is already on line {first[name]}")
        if ";" in name:
            raise BenchError(f"{path} line {n}: a class name cannot hold ';' (labels.csv separates "
                             "classes with it)")
        first[name] = n
    if len(first) >= IGNORE:
        raise BenchError(f"{path} names {len(first)} classes; masks hold at most 254")
    return tuple(first)


def image_files(root: Path) -> dict[str, Path]:
    folder = root / "images"
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        if p.stem in found:
            raise BenchError(f"{folder} holds both {found[p.stem].name} and {p.name}: one file "
                             "per image name")
        found[p.stem] = p
    return found


def read_labels(root: Path, classes: tuple[str, ...],
                files: dict[str, Path]) -> dict[str, np.ndarray]:
    """labels.csv → {image name: multi-hot over classes}, every row checked."""
    path = root / "labels.csv"
    if not path.is_file():
        raise BenchError(f"folder {root} has no labels.csv; expected {LAYOUT}")
    index = {c: k for k, c in enumerate(classes)}
    out: dict[str, np.ndarray] = {}
    where: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if [h.strip().lower() for h in header or []] != ["image", "labels"]:
            raise BenchError(f"{path} line 1: the header must be `image,labels` (got "
                             f"{','.join(header or [])!r})")
        for row in reader:
            n = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) != 2:
                raise BenchError(f"{path} line {n}: expected 2 fields, image,labels (got "
                                 f"{len(row)}); separate class names with ';'")
            name = image_name(row[0])
            if name in where:
                raise BenchError(f"{path} line {n}: image {name!r} is already on line {where[name]}")
            if name not in files:
                raise BenchError(f"{path} line {n}: image {name!r} is listed but missing from "
                                 f"{root / 'images'} (NAME.jpg, .jpeg or .png)")
            out[name] = _multi_hot(path, n, name, row[1], index)
            where[name] = n
    if not out:
        raise BenchError(f"{path} lists no image")
    unlisted = [p for name, p in files.items() if name not in out]
    if unlisted:
        raise BenchError(f"image {unlisted[0]} has no label: no row in {path} "
                         f"({len(unlisted)} such image(s))")
    return out


def _multi_hot(path: Path, n: int, name: str, field: str, index: dict[str, int]) -> np.ndarray:
    y = np.zeros(len(index), np.float32)
    names = [t.strip() for t in field.split(";") if t.strip()]
    if not names:
        raise BenchError(f"{path} line {n}: image {name!r} has no label (one or more classes "
                         "of classes.txt, separated by ';')")
    for label in names:
        if label not in index:
            known = ", ".join(list(index)[:12]) + (", …" if len(index) > 12 else "")
            raise BenchError(f"{path} line {n}: label {label!r} of image {name!r} is not in "
                             f"classes.txt ({known})")
        y[index[label]] = 1
    return y


def find_masks(root: Path, images: dict[str, Path]) -> dict[str, Path]:
    folder = root / "masks"
    if not folder.is_dir():
        return {}
    masks: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in (".jpg", ".jpeg"):  # silently unevaluated otherwise
            raise BenchError(f"mask {p} is a JPEG, whose compression changes label values at "
                             f"every edge; {MASK_HELP}")
        if p.suffix.lower() != ".png" or not p.is_file():
            continue
        if p.stem in masks:
            raise BenchError(f"{folder} holds both {masks[p.stem].name} and {p.name}: one mask "
                             "per image name")
        masks[p.stem] = p  # NAME.png or NAME.PNG, as images/ accepts either
    orphan = [p for name, p in masks.items() if name not in images]
    if orphan:
        raise BenchError(f"mask {orphan[0]} has no image of that name in {root / 'images'} "
                         "and labels.csv")
    return {name: masks[name] for name in images if name in masks}


@cache
def _checked_image(path: Path, stamp: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of an image decoded once, or one line naming it (`stamp`: the file's
    size and mtime, so an edited file is checked again)."""
    img = read_image(path)
    return img.shape[1], img.shape[0]


def check_image(path: Path) -> tuple[int, int]:
    st = path.stat()
    return _checked_image(path, (st.st_size, st.st_mtime_ns))


def decode_mask(path: Path, n_classes: int) -> np.ndarray:
    """A mask PNG → uint8 labels, or one line: not single-channel, or a value not a label."""
    im = read_png(path)
    if im.mode not in ("1", "L", "P", "I", "I;16"):  # "1": a bilevel mask, values 0 and 1
        raise BenchError(f"mask {path} is a {im.mode} image; {MASK_HELP}")
    m = np.asarray(im).astype(np.int64)
    values = np.unique(m)
    bad = values[((values < 0) | (values > n_classes)) & (values != IGNORE)]
    if bad.size:
        raise BenchError(f"mask {path} has value {int(bad[0])} outside 0…{n_classes} and 255 "
                         f"({n_classes} classes in classes.txt; {MASK_HELP})")
    return m.astype(np.uint8)


@cache
def _checked_mask(path: Path, image: Path, n_classes: int, stamps: tuple) -> None:
    iw, ih = check_image(image)
    mw, mh = image_size(path, "mask")
    if (mw, mh) != (iw, ih):
        raise BenchError(f"mask {path} is {mw}×{mh} but its image {image} is {iw}×{ih}")
    decode_mask(path, n_classes)


def check_mask(path: Path, image: Path, n_classes: int) -> None:
    stamps = tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in (path, image))
    _checked_mask(path, image, n_classes, stamps)


def read_split(path: Path, labelled: dict[str, np.ndarray], masks: dict[str, Path],
               scored: bool) -> list[str]:
    """The image names of splits/<split>.txt, each known (and with a mask if `scored`)."""
    names: dict[str, None] = {}
    for n, token in lines(path):
        name = image_name(token)
        if name not in labelled:
            raise BenchError(f"{path} line {n}: image {name!r} is not in labels.csv")
        if scored and name not in masks:
            raise BenchError(f"{path} line {n}: image {name!r} has no mask in masks/ (the "
                             f"{path.stem} split is scored against its mask)")
        names[name] = None
    if not names:
        raise BenchError(f"{path} names no image (one image name a line)")
    return list(names)


def held_out(masked: list[str]) -> list[str]:
    """A fifth of the images with masks (at least one of two or more): those whose names hash
    lowest, in their listed order."""
    if len(masked) < 2:
        return []
    k = max(1, round(len(masked) * VAL_FRACTION))
    digest = {n: hashlib.sha256(n.encode()).hexdigest() for n in masked}
    chosen = set(sorted(masked, key=digest.__getitem__)[:k])
    return [n for n in masked if n in chosen]


def make_splits(root: Path, labels: dict[str, np.ndarray],
                masks: dict[str, Path]) -> tuple[dict[str, list[str]], str]:
    """Every split's names, and a line saying where each came from."""
    given = {s: root / "splits" / f"{s}.txt" for s in SPLITS}
    given = {s: p for s, p in given.items() if p.is_file()}
    masked = [n for n in labels if n in masks]
    splits = {s: read_split(p, labels, masks, s != "train") for s, p in given.items()}
    # a derived val is held out of the given splits too: a threshold picked on it must not
    # peek at eval's masks, nor a segmentation model be scored on images it trained on
    files = [f"splits/{s}.txt" for s in ("train", "eval") if s in given]
    if "val" not in splits:
        taken = {n for s in ("train", "eval") for n in splits.get(s, ())}
        splits["val"] = held_out([n for n in masked if n not in taken])
    val = set(splits["val"])
    splits.setdefault("train", [n for n in labels if n not in val])
    splits.setdefault("eval", [n for n in masked if n not in val])
    made = {
        "train": "every labelled image but val",
        "eval": "the images with masks but val",
        "val": f"{VAL_FRACTION:.0%} of the images with masks"
               + (f" not in {' or '.join(files)}" if files else "") + " (lowest name hash), held out",
    }
    parts = [f"{s} {len(splits[s])} ({'splits/' + s + '.txt' if s in given else made[s]})"
             for s in SPLITS]
    return splits, f"folder {root}: " + ", ".join(parts)


def read_background(root: Path) -> tuple[str, ...]:
    path = root / "background.txt"
    if not path.is_file():
        return ()
    words = tuple(dict.fromkeys(t for _, t in lines(path)))
    if not words:
        raise BenchError(f"{path} is empty: one background word or phrase a line (or remove it "
                         "for the generic set, docs/own-data.md)")
    return words


def read_folder(root: Path) -> Folder:
    """The folder under `root`, every file checked (images and masks decoded once)."""
    classes = read_classes(root)
    files = image_files(root)
    labels = read_labels(root, classes, files)
    images = {name: files[name] for name in labels}
    masks = find_masks(root, images)
    for name, path in images.items():
        check_image(path)
        if name in masks:
            check_mask(masks[name], path, len(classes))
    splits, rule = make_splits(root, labels, masks)
    return Folder(root, classes, images, labels, masks, splits, rule, read_background(root))


_SAID: set[str] = set()


def say_once(line: str) -> None:
    """The split rule, once per folder and process (a sweep loads it per trial)."""
    if line not in _SAID:
        _SAID.add(line)
        from harness.progress import log

        log(line)


def find_root(root: str | Path | None) -> Path:
    return find_data_root("folder", root, ENV, LAYOUT, (), "images", "no images/ in it")


def load(split: str, root: str | Path | None = None, limit: int = 0, crop_size: int = 0,
         **_: object) -> RealDataset:
    if split not in SPLITS:
        raise BenchError(f"folder has no split {split!r} (train, eval, val)")
    folder = read_folder(find_root(root))
    say_once(folder.rule)
    names = folder.splits[split][:limit] if limit else folder.splits[split]
    if not names:
        why = {"eval": "no image has a mask in masks/",
               "val": "it takes a fifth of the images with masks (one of two or more) that no "
                      "splits/train.txt or eval.txt names"}
        raise BenchError(f"folder {folder.root} has no {split} split: {why.get(split, 'no image')} "
                         f"(or list its images in splits/{split}.txt)")
    labels = np.stack([folder.labels[n] for n in names])
    paths = [folder.images[n] for n in names]
    if split == "train":
        ds = RealDataset("folder", split, folder.classes, names, paths, labels, augment=True,
                         crop_size=crop_size or DEFAULT_CROP)
    else:
        k = len(folder.classes)
        mask_paths = [folder.masks[n] for n in names]
        ds = RealDataset("folder", split, folder.classes, names, paths, labels,
                         mask_fn=lambda i: decode_mask(mask_paths[i], k))
    ds.background_words = folder.background
    ds.fingerprint = fingerprint(folder)
    ds.split_rule = folder.rule
    return ds


load.fingerprints = True  # harness.data.has_fingerprint: stage keys read fingerprint()


def fingerprint(folder: Folder) -> str:
    """SHA-256 of the text files and of each image's name and size, so that a relabelled,
    added or replaced image under the same root makes new stage keys (RunContext.data_key)."""
    digest = hashlib.sha256()
    texts = ["classes.txt", "labels.csv", "background.txt", *(f"splits/{s}.txt" for s in SPLITS)]
    for rel in texts:
        path = folder.root / rel
        digest.update(f"{rel}\0".encode() + (path.read_bytes() if path.is_file() else b"-"))
    for name, path in folder.images.items():
        digest.update(f"{name}\0{path.suffix}\0{path.stat().st_size}\0".encode())
    return digest.hexdigest()[:16]
