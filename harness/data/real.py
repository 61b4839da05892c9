"""Real datasets on disk (VOC, COCO): images read lazily, labels in memory, masks on demand.

The training split is augmented (random rescale, flip, crop to `crop_size`, see
`augment.py`) so that batches have one shape; every other split is served at full size.
A file that cannot be read raises one `BenchError` line naming it, also from inside a
DataLoader worker.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from harness.data import SegDataset
from harness.data.augment import train_augment
from harness.errors import BenchError


class UnreadableFile(BenchError):
    """An image or mask that cannot be decoded. Keeps its one line through DataLoader workers."""

    def __init__(self, message: str = ""):
        # A worker's exception comes back as "Caught … in DataLoader worker …\nOriginal
        # Traceback …\nharness.data.real.UnreadableFile: <the line>": keep only the line.
        lines = [ln for ln in str(message).splitlines() if ln.strip()]
        if len(lines) > 1:
            last = lines[-1]
            prefixed = last.startswith(("harness.", "UnreadableFile"))
            message = last.split(": ", 1)[1] if prefixed else last
        super().__init__(message)


def read_image(path: Path) -> np.ndarray:
    """HxWx3 uint8 RGB, or one line naming the file that cannot be read."""
    try:
        with Image.open(path) as im:
            if im.mode.startswith("I;16") or im.mode == "I":
                return gray16_rgb(np.asarray(im))
            return np.array(im.convert("RGB"))  # writable: torch.from_numpy needs it
    except FileNotFoundError:
        raise UnreadableFile(f"image file {path} is missing") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnreadableFile(f"cannot read image {path}: {reason}") from None


def gray16_rgb(values: np.ndarray) -> np.ndarray:
    """A 16-bit grayscale image (scans, micrographs) as 8-bit RGB, its range scaled (/257):
    PIL's convert("RGB") would clip every value above 255 to white."""
    gray = np.clip(np.rint(values.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def image_size(path: Path, what: str = "image") -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise UnreadableFile(f"{what} file {path} is missing") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnreadableFile(f"cannot read {what} {path}: {reason}") from None


def check_mask_sizes(image_paths: Sequence[Path], mask_paths: Sequence[Path]) -> None:
    """Every mask the size of its image (headers only), or one line naming the first pair."""
    for img, mask in zip(image_paths, mask_paths, strict=True):
        iw, ih = image_size(img)
        mw, mh = image_size(mask, "mask")
        if (mw, mh) != (iw, ih):
            raise UnreadableFile(f"mask {mask} is {mw}×{mh} but its image {img} is {iw}×{ih}")


def read_png(path: Path) -> Image.Image:
    try:
        im = Image.open(path)
        im.load()
        return im
    except FileNotFoundError:
        raise UnreadableFile(f"mask file {path} is missing") from None
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnreadableFile(f"cannot read mask {path}: {reason}") from None


class RealDataset(SegDataset):
    """Images from files; `labels` (N, K) in memory; `mask_fn(i)` for splits with masks."""

    def __init__(self, name: str, split: str, class_names: Sequence[str], image_names: list[str],
                 image_paths: list[Path], labels: np.ndarray,
                 mask_fn: Callable[[int], np.ndarray] | None = None, augment: bool = False,
                 crop_size: int = 512):
        self.name, self.split = name, split
        self.class_names = tuple(class_names)
        self.image_names = list(image_names)
        self.image_paths = list(image_paths)
        self._labels = labels.astype(np.float32)
        self._mask_fn = mask_fn
        self.has_masks = mask_fn is not None
        self.augment, self.crop_size = augment, crop_size

    def image(self, i: int) -> np.ndarray:
        return read_image(self.image_paths[i])

    def labels(self, i: int) -> np.ndarray:
        return self._labels[i]

    def mask(self, i: int) -> np.ndarray:
        if self._mask_fn is None:
            return super().mask(i)
        m = self._mask_fn(i)
        iw, ih = image_size(self.image_paths[i])
        if m.shape != (ih, iw):  # scoring would compare pixels that do not correspond
            raise UnreadableFile(f"the {self.name} mask of {self.image_names[i]} is "
                                 f"{m.shape[1]}×{m.shape[0]} but its image "
                                 f"{self.image_paths[i]} is {iw}×{ih}")
        return m

    def __getitem__(self, i: int) -> dict[str, Any]:
        img = self.image(i)
        if self.augment:
            # drawn from torch's generator: seeded by the run, distinct per DataLoader worker
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
            img = train_augment(img, self.crop_size, rng)
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255)
        return {"image": x, "labels": torch.from_numpy(self._labels[i]), "index": i}


def first_missing(paths: Sequence[Path]) -> tuple[int, Path | None]:
    """How many of `paths` are missing, and the first one."""
    missing = [p for p in paths if not p.is_file()]
    return len(missing), (missing[0] if missing else None)


def labels_cache_path(cache_dir: Path | None, dataset: str, *parts: Any) -> Path | None:
    if cache_dir is None:
        return None
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:16]
    return Path(cache_dir) / dataset / f"labels_{digest}.npz"


def save_npz(path: Path, **arrays: Any) -> None:
    """Atomic: a concurrent reader sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    from harness.leftovers import owner_tag

    tmp = path.with_suffix(f".{owner_tag()}.tmp.npz")  # a killed writer's: harness/leftovers.py
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def file_stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_size, int(st.st_mtime)


def find_data_root(dataset: str, root: str | Path | None, env: str, layout: str,
                   subfolders: Sequence[str], marker: str, missing: str) -> Path:
    """The folder under --data-root / `env` (itself or one of `subfolders`) that holds the
    folder `marker`, or one line saying what is missing (`missing`: what an incomplete root
    lacks, in words)."""
    given = root or os.environ.get(env)
    if not given:
        raise BenchError(f"{dataset} needs its data: pass --data-root ROOT or set {env}; "
                         f"expected {layout}")
    base = Path(given).expanduser()
    if base.exists() and not base.is_dir():
        raise BenchError(f"--data-root {base} is a file, not a folder; expected {layout}")
    if not base.is_dir():
        raise BenchError(f"{dataset} root {base} does not exist; expected {layout}")
    for cand in (base, *(base / sub for sub in subfolders)):
        if (cand / marker).is_dir():
            return cand
    raise BenchError(f"{dataset} root {base} is incomplete: {missing}; expected {layout}")
