"""Datasets: one name → a loader of a split (entry points, below). Every split yields the same
record shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    same_size: bool = False  # every image of the split has one size (inference may batch them)
    context_names: tuple[str, ...] = ()
    cooccur: dict[str, str] = {}
    # the words a background prompt set is made of, where the dataset declares them
    # (background_texts below); () = none declared
    background_words: tuple[str, ...] = ()
    # what identifies the files beyond the root, for stage keys, where they may change under
    # the same root (a user's folder: labels fixed, images added); "" = the root does
    fingerprint: str = ""
    # how the splits were made, where the dataset derives them (a folder without splits/):
    # said once in the run's output and recorded as provenance.split_rule; "" = fixed splits
    split_rule: str = ""

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


# Where the datasets come from: the entry-point group `wsss_bench.datasets`, one entry per
# dataset, `name = "module:load"` with `load(split, **options) -> SegDataset`; synth, voc,
# coco and folder are declared in this project's pyproject.toml exactly as a third-party
# package declares its own, so this module names none of them. Loaded on first use, by name.
ENTRY_POINT_GROUP = "wsss_bench.datasets"


def _entries() -> dict[str, Any]:
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if not found:
        raise BenchError(f"no dataset is installed (entry-point group {ENTRY_POINT_GROUP}): "
                         "install the project with `pip install -e .` in its folder")
    return found


def dataset_names() -> list[str]:
    return sorted(_entries())


def _loader(name: str) -> Any:
    entries = _entries()
    if name not in entries:
        raise BenchError(f"unknown dataset {name!r}; known: {', '.join(sorted(entries))}")
    try:
        return entries[name].load()
    except ModuleNotFoundError as exc:
        raise BenchError(f"dataset {name!r} is not available in this version ({exc})") from exc


def load_dataset(name: str, split: str, **options: Any) -> SegDataset:
    """Load `split` ("train" = image labels, "eval" = masks) of dataset `name`."""
    return _loader(name)(split=split, **options)


def has_fingerprint(name: str) -> bool:
    """Whether dataset `name`'s splits carry a `fingerprint` for stage keys: its loader says so
    with a `fingerprints = True` attribute (a folder does). Only those are loaded to build a key:
    the others' keys are made without reading their data, as before."""
    return bool(getattr(_loader(name), "fingerprints", False))


# A domain-neutral background set for a dataset that declares none (docs/own-data.md): what
# lies around an object in most photographs and scans, each a word CLIP knows. CLIMS's own
# VOC list (methods/clims) is about VOC's co-occurring contexts; a folder of the user's
# data declares its own in DIR/background.txt instead.
GENERIC_BACKGROUND = ("background", "ground", "floor", "wall", "sky", "water", "grass", "tree",
                      "road", "building", "texture", "surface")


def background_texts(dataset: SegDataset,
                     published: Mapping[str, Sequence[str]] | None = None) -> tuple[str, ...]:
    """The background words a method (CLIMS, CLIP-ES) puts in its background prompts on
    `dataset`: the dataset's own declaration (`SegDataset.background_words`: a folder's
    background.txt, synth's contexts), else the method's `published` list for this dataset
    by name (CLIMS's VOC list), else GENERIC_BACKGROUND."""
    if dataset.background_words:
        return tuple(dataset.background_words)
    if published and dataset.name in published:
        return tuple(published[dataset.name])
    return GENERIC_BACKGROUND


def default_cache_dir() -> Path:
    import os

    return Path(os.environ.get("BENCH_CACHE_DIR", Path.home() / ".cache" / "wsss-bench"))
