"""The papers' / reference code's training settings on real data, per method and dataset.

`shared_defaults(method, dataset)` gives the values of the shared `MethodConfig` fields
(epochs, batch_size, lr, weight_decay, optimizer, schedule, head_lr_mult, backbone,
crop_size, clip_arch, cam_epochs, cam_lr) from METHODS.md; a family's
`dataset_defaults(dataset)` starts from it and adds its own loss weights. On `synth` it is
empty: the MethodConfig defaults are the synth settings.

Sources: CAM stage = IRN's train_cam (ResNet-50, SGD poly, lr 0.1, head 10×, batch 16,
512 crops, 5 epochs), which the CLIMS / QA-CLIMS code starts from. CLIMS: SGD poly
lr 2.5e-4, head 10×, batch 16, 512 crops, 15 epochs, CLIP ViT-B/32. QA-CLIMS: SGD poly
lr 3.5e-4, batch 8, 15 epochs, CLIP ViT-L/14. SemPLeS (WeakTr, DeiT-S): AdamW cosine,
batch 64, lr 5e-4 (VOC) / 5e-6 (COCO), 60 epochs, CLIP ViT-B/32; its input size (224) and
weight decay (0.05) are the DeiT/MCTformer training defaults WeakTr inherits, not stated
in the paper.
"""

from __future__ import annotations

from typing import Any

from harness.errors import BenchError

REAL_DATASETS = ("voc", "coco")

_CAM_STAGE = {"cam_epochs": 5, "cam_lr": 0.1}
_RESNET_SGD = {"backbone": "resnet50", "optimizer": "sgd", "schedule": "poly",
               "weight_decay": 1e-4, "head_lr_mult": 10.0, "crop_size": 512, **_CAM_STAGE}

_SETTINGS: dict[str, dict[str, Any]] = {
    "cam": {**_RESNET_SGD, "epochs": 5, "lr": 0.1, "batch_size": 16, "clip_arch": "ViT-B-32"},
    "clims": {**_RESNET_SGD, "epochs": 15, "lr": 2.5e-4, "batch_size": 16,
              "clip_arch": "ViT-B-32"},
    "qa-clims": {**_RESNET_SGD, "epochs": 15, "lr": 3.5e-4, "batch_size": 8,
                 "clip_arch": "ViT-L-14"},
    "semples": {"backbone": "deit_small_patch16_224", "optimizer": "adamw", "schedule": "cosine",
                "weight_decay": 0.05, "head_lr_mult": 1.0, "crop_size": 224, "epochs": 60,
                "lr": 5e-4, "batch_size": 64, "clip_arch": "ViT-B-32", **_CAM_STAGE},
}
_PER_DATASET: dict[tuple[str, str], dict[str, Any]] = {
    ("semples", "coco"): {"lr": 5e-6},
}


def shared_defaults(method: str, dataset: str) -> dict[str, Any]:
    """Shared MethodConfig settings of `method` ("cam", "clims", "semples", "qa-clims") on
    `dataset`; {} on synth and other non-real datasets."""
    if dataset not in REAL_DATASETS:
        return {}
    family = method.split("/", 1)[0]
    if family not in _SETTINGS:
        raise BenchError(f"no paper settings for method {family!r}; known: "
                         f"{', '.join(sorted(_SETTINGS))}")
    return {**_SETTINGS[family], **_PER_DATASET.get((family, dataset), {})}
