"""The `synth` splits as SegDatasets, generated once and cached as .npz files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from harness.data import SegDataset, default_cache_dir
from harness.errors import BenchError
from harness.synth.data import CLASSES, CONTEXTS, COOCCUR, SPLIT_IDS, Scene, SynthSpec, make_image


class SynthDataset(SegDataset):
    name = "synth"
    same_size = True
    class_names = CLASSES
    context_names = CONTEXTS
    cooccur = COOCCUR
    # background prompts (CLIMS, CLIP-ES): the scenes' context words themselves, the words a
    # person would write for these scenes and the only ones the synth teacher was taught
    background_words = CONTEXTS

    def __init__(self, spec: SynthSpec, split: str, cache_dir: Path | None = None):
        self.spec, self.split = spec, split
        n = {"train": spec.n_train, "eval": spec.n_eval}.get(split, spec.n_eval)
        arrays = _cached_arrays(spec, split, n, cache_dir or default_cache_dir())
        self._images, self._masks, self._ctx = arrays["images"], arrays["masks"], arrays["ctx"]
        self.scenes = [Scene(**s) for s in arrays["scenes"].tolist()]
        self.image_names = [f"synth_{split}_{i:05d}" for i in range(n)]
        self.has_masks = split != "train"  # the train split exposes image labels only
        k = len(CLASSES)
        self._labels = np.zeros((n, k), np.float32)
        for i, m in enumerate(self._masks):
            present = np.unique(m)
            self._labels[i, present[(present > 0) & (present <= k)] - 1] = 1

    def image(self, i: int) -> np.ndarray:
        return self._images[i]

    def labels(self, i: int) -> np.ndarray:
        return self._labels[i]

    def mask(self, i: int) -> np.ndarray:
        if not self.has_masks:
            return super().mask(i)
        return self._masks[i]

    def full_mask(self, i: int) -> np.ndarray:
        """The scene's pixel labels on any split, the train split's included: only for the
        segmentation stage's fully supervised bound (`--masks gt`), never for a method."""
        return self._masks[i]

    def context_map(self, i: int) -> np.ndarray:
        return self._ctx[i]


def _cached_arrays(spec: SynthSpec, split: str, n: int, cache_dir: Path) -> dict:
    """The split's arrays from its cached .npz, checked against the checksum manifest written
    beside it (as a stage's, harness/artefacts.py): a damaged, truncated or unlisted file is
    named in one warning line and generated again. An intact file is read without a lock, so
    a read-only cache serves it."""
    from harness.artefacts import check_manifest

    path = cache_dir / "synth" / f"{spec.fingerprint()}_{split}_{n}.npz"
    manifest = path.with_suffix(".manifest.json")
    if path.exists() or manifest.exists():
        damage = check_manifest(manifest)
        if damage is None:
            with np.load(path, allow_pickle=True) as z:
                return {k: z[k] for k in z.files}
        print(f"warning: synth data {path.parent / damage.file} {damage.cause}; generating "
              "it again", file=sys.stderr)
    return _generate(spec, split, n, path, manifest)


def _generate(spec: SynthSpec, split: str, n: int, path: Path, manifest: Path) -> dict:
    from harness.artefacts import write_manifest
    from harness.cache import file_lock
    from harness.leftovers import owner_tag
    from harness.oserrors import unwritable
    from harness.progress import progress_bar

    made = []
    with progress_bar(f"synth {split} split (first use)", n) as advance:  # a one-off: shown
        for i in range(n):
            made.append(make_image(spec, split, i))
            advance()
    arrays = {
        "images": np.stack([m[0] for m in made]),
        "masks": np.stack([m[1] for m in made]),
        "ctx": np.stack([m[2] for m in made]),
        "scenes": np.array([m[3].to_json() for m in made], dtype=object),
    }
    tmp = path.with_suffix(f".{owner_tag()}.tmp.npz")  # a killed writer's: harness/leftovers.py
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(path.with_suffix(".lock")):  # the file and its manifest change together
            manifest.unlink(missing_ok=True)  # from here until the new one, it is unfinished
            np.savez(tmp, **arrays)
            os.replace(tmp, path)  # atomic: a concurrent reader sees the whole file or none
            write_manifest(manifest, [path], synth=spec.fingerprint(), split=split)
    except BaseException as exc:  # an interrupt too: no temporary file stays
        tmp.unlink(missing_ok=True)
        if not isinstance(exc, OSError):
            raise
        raise unwritable("synth data cache", path, exc) from None
    return arrays


def load(split: str, spec: SynthSpec | None = None, cache_dir: Path | None = None,
         **_: object) -> SynthDataset:
    if split not in SPLIT_IDS:
        raise BenchError(f"synth has no split {split!r} (known: {', '.join(SPLIT_IDS)})")
    return SynthDataset(spec or SynthSpec(), split, cache_dir)
