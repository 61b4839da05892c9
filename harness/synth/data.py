"""`synth`: a procedurally generated benchmark with co-occurring backgrounds.

Each class has a context it co-occurs with (boat→water, train→railway, ...) with
probability `p_cooccur`, so a classifier's CAM learns to light up the context, exactly
the false activation CLIMS, SemPLeS and QA-CLIMS set out to remove. Objects carry their
class in the masks; contexts and clutter are background.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from harness.synth.draw import clutter, draw_object, texture

CLASSES = ("aeroplane", "bird", "boat", "car", "cow", "train")
CONTEXTS = ("water", "sky", "grass", "railway", "road")
COOCCUR = {"aeroplane": "sky", "bird": "sky", "boat": "water", "car": "road",
           "cow": "grass", "train": "railway"}
SUBTYPES = {"aeroplane": ("jet", "propeller plane"), "bird": ("eagle", "parrot"),
            "boat": ("sailboat", "motorboat"), "car": ("sedan", "truck"),
            "cow": ("dairy cow", "bull"), "train": ("passenger train", "freight train")}
ALIASES = {"aeroplane": ("airplane", "plane"), "bird": ("fowl",), "boat": ("ship", "vessel"),
           "car": ("automobile",), "cow": ("cattle",), "train": ("locomotive",)}
# Bump when drawing or scene code changes what an image looks like: it re-keys every cache.
GENERATOR_VERSION = 1
# Split ids keep the splits' random streams disjoint for the same dataset seed.
# `heldout`: labelled, disjoint from eval, the split `--threshold-split heldout` picks t on.
# `segval`: labelled, where the segmentation stage alone is scored (docs/protocol-segmentation.md)
SPLIT_IDS = {"train": 1, "eval": 2, "teacher": 3, "teacher_holdout": 4, "heldout": 5, "segval": 6}


@dataclass(frozen=True)
class SynthSpec:
    image_size: int = 64
    p_cooccur: float = 0.8
    n_train: int = 1200
    n_eval: int = 300
    seed: int = 0  # the benchmark's own seed, independent of a run's training seed

    def fingerprint(self) -> str:
        blob = {**asdict(self), **({"generator": GENERATOR_VERSION} if GENERATOR_VERSION > 1 else {})}
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class Scene:
    """What is where in one image: the source of captions, VQA answers and context_fp."""

    objects: list[dict]  # {class, subtype, context, box=(y0, x0, y1, x1)}
    contexts: list[str]

    def to_json(self) -> dict:
        return {"objects": self.objects, "contexts": self.contexts}


def make_image(spec: SynthSpec, split: str, index: int):
    """Return (image uint8 HxWx3, mask uint8 HxW, context map int8 HxW, Scene)."""
    rng = np.random.default_rng([spec.seed, SPLIT_IDS[split], index])
    size = spec.image_size
    img = clutter(size, rng)
    mask = np.zeros((size, size), np.uint8)
    ctx_map = np.full((size, size), -1, np.int8)
    n_obj = 1 if rng.random() < 0.7 else 2
    classes = rng.choice(len(CLASSES), n_obj, replace=False)
    objects, contexts = [], []
    for slot, ci in enumerate(sorted(classes)):
        cls = CLASSES[ci]
        ctx = COOCCUR[cls] if rng.random() < spec.p_cooccur else CONTEXTS[rng.integers(len(CONTEXTS))]
        # Each object owns a band of its context: full width alone, a half side by side.
        x0, x1 = (0, size) if n_obj == 1 else ((0, size // 2) if slot == 0 else (size // 2, size))
        band_h = int(size * rng.uniform(0.5, 0.7))
        y0 = int(rng.integers(0, size - band_h + 1))
        img[y0 : y0 + band_h, x0:x1] = texture(ctx, band_h, x1 - x0, rng)
        ctx_map[y0 : y0 + band_h, x0:x1] = CONTEXTS.index(ctx)
        s = (x1 - x0) * rng.uniform(0.45, 0.6) if n_obj == 2 else size * rng.uniform(0.35, 0.5)
        s = min(s, band_h * 1.1)
        cy = y0 + band_h / 2 + rng.uniform(-0.1, 0.1) * band_h
        cx = (x0 + x1) / 2 + rng.uniform(-0.12, 0.12) * (x1 - x0)
        subtype = SUBTYPES[cls][rng.integers(2)]
        obj = draw_object(img, cls, subtype, cy, cx, s, bool(rng.integers(2)), rng)
        mask[obj] = ci + 1
        ys, xs = np.nonzero(obj)
        box = ((int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1) if len(ys)
               else (0, 0, 0, 0))
        objects.append({"class": cls, "subtype": subtype, "context": ctx, "box": box})
        contexts.append(ctx)
    ctx_map[mask > 0] = -1
    image = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    return image, mask, ctx_map, Scene(objects, sorted(set(contexts)))
