"""Datasets: one name → a loader of a split. Every split yields the same record shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.errors import BenchError


class SegDataset(torch.utils.data.Dataset):
    """A split: images in [0, 1], multi-hot labels over `class_names`, masks if evaluated.

    `masks[i]` (uint8, 0 = background, k+1 = class k, 255 = ignore) exists for splits with
    pixel labels; `context_maps[i]` only where a dataset knows its co-occurring contexts.
    """

    name: str
    split: str
    class_names: tuple[str, ...]
    image_names: list[str]
    has_masks: bool = False
    context_names: tuple[str, ...] = ()
    cooccur: dict[str, str] = {}

    def image(self, i: int) -> np.ndarray:  # HxWx3 uint8
        raise NotImplementedError

    def labels(self, i: int) -> np.ndarray:  # K float32 multi-hot
        raise NotImplementedError

    def mask(self, i: int) -> np.ndarray:
        raise BenchError(f"{self.name}/{self.split} has no pixel labels")

    def context_map(self, i: int) -> np.ndarray | None:
        return None

    def __len__(self) -> int:
        return len(self.image_names)

    def __getitem__(self, i: int) -> dict[str, Any]:
        img = torch.from_numpy(self.image(i)).permute(2, 0, 1).float().div_(255)
        return {"image": img, "labels": torch.from_numpy(self.labels(i)), "index": i}


_LOADERS: dict[str, str] = {
    "synth": "harness.synth.dataset:load",
    "voc": "harness.data.voc:load",
    "coco": "harness.data.coco:load",
}


def dataset_names() -> list[str]:
    return sorted(_LOADERS)


def load_dataset(name: str, split: str, **options: Any) -> SegDataset:
    """Load `split` ("train" = image labels, "eval" = masks) of dataset `name`."""
    if name not in _LOADERS:
        raise BenchError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")
    module, fn = _LOADERS[name].split(":")
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise BenchError(f"dataset {name!r} is not available in this version ({exc})") from exc
    return getattr(mod, fn)(split=split, **options)


def default_cache_dir() -> Path:
    import os

    return Path(os.environ.get("BENCH_CACHE_DIR", Path.home() / ".cache" / "wsss-bench"))
