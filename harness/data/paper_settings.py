"""The papers' / reference code's training settings on real data: the one table.

`paper_defaults(family, dataset)` is every setting a family's `dataset_defaults` resolves
on voc / coco (the shared `MethodConfig` fields and the family's own loss weights); the
families read it and add nothing on real data. On `synth` it is empty: the families keep
their CPU-sized synth settings.

The CAM stage (`cam_*`) is one table for every family, so `cam`, `clims`, `qa-clims` train
the identical baseline (one stage-cache key per dataset and seed): IRN's train_cam, which
the CLIMS and QA-CLIMS code start from (CVI-SZU/QA-CLIMS parser.py: cam_crop_size 512,
cam_batch_size 16, cam_num_epoches 5, cam_learning_rate 0.1, cam_weight_decay 1e-4; SGD
poly, head 10×). SemPLeS's CAM stage has the same settings on its DeiT-S backbone.

Sources, and where they disagree, which one is followed:
- CLIMS (METHODS.md; CVI-SZU/CLIMS run_sample.py): SGD poly lr 2.5e-4, head 10×, batch 16,
  512 crops, 15 epochs, CLIP ViT-B/32; COCO loss weights 2, 14, 1.25, 0.2, threshold 0.285.
- QA-CLIMS (paper §4.1 "Implementation Details"; CVI-SZU/QA-CLIMS run_voc12_qa_clims.sh):
  SGD poly lr 3.5e-4, batch 8 (2 GPUs × 4), 15 epochs, ResNet-50, ω 0.1, τ 0.7, loss
  weights 10, 8, 0.2 (COCO 30, 24, 0.2); CLIP ViT-L/14 (the paper names the mask-adapted
  CLIP only; the reference scripts pass `--clip ViT-L/14`); 512 crops (the reference's
  train_qa_clims.py crop_size=512). COCO lr: the paper says "other settings remain the
  same" (3.5e-4), the reference's run_coco14_qa_clims.sh passes 1e-5: the paper is followed.
- SemPLeS (paper §4.1): AdamW cosine, batch 64, lr 5e-4 (VOC) / 5e-6 (COCO), 60 epochs,
  CLIP ViT-B/32, λ_b/λ_T/λ 2.4/0.02/0.05 (COCO 0.75/0.01/0.2), mask generator WeakTr's
  DeiT-S. Not in the paper, from its code (SemPLeS main2.py, as released with the NVIDIA
  header): input size 224, weight decay 0.03. The prompts use the generator's lr.
"""

from __future__ import annotations

from typing import Any

from harness.errors import BenchError

REAL_DATASETS = ("voc", "coco")

# IRN train_cam, shared by every family (see the module docstring)
CAM_STAGE: dict[str, Any] = {"cam_epochs": 5, "cam_lr": 0.1, "cam_batch_size": 16,
                             "cam_crop_size": 512}
_RESNET_SGD = {"backbone": "resnet50", "optimizer": "sgd", "schedule": "poly",
               "weight_decay": 1e-4, "head_lr_mult": 10.0, "crop_size": 512}

_VOC: dict[str, dict[str, Any]] = {
    # the `cam` row trains only the CAM stage; its own fields mirror that stage
    "cam": {**_RESNET_SGD, "epochs": 5, "lr": 0.1, "batch_size": 16, "clip_arch": "ViT-B-32"},
    "clims": {**_RESNET_SGD, "epochs": 15, "lr": 2.5e-4, "batch_size": 16,
              "clip_arch": "ViT-B-32", "w_otm": 10.0, "w_btm": 24.0, "w_cbs": 1.0,
              "w_reg": 0.2, "cbs_threshold": 0.26},
    "qa-clims": {**_RESNET_SGD, "epochs": 15, "lr": 3.5e-4, "batch_size": 8,
                 "clip_arch": "ViT-L-14", "alpha": 10.0, "beta": 8.0, "gamma": 0.2,
                 "omega": 0.1, "tau": 0.7},
    "semples": {"backbone": "deit_small_patch16_224", "optimizer": "adamw",
                "schedule": "cosine", "weight_decay": 0.03, "head_lr_mult": 1.0,
                "crop_size": 224, "epochs": 60, "prompt_epochs": 60, "refine_epochs": 60,
                "lr": 5e-4, "prompt_lr": 5e-4, "batch_size": 64, "clip_arch": "ViT-B-32",
                "lambda_b": 2.4, "lambda_T": 0.02, "lambda_refine": 0.05},
}
_COCO_CHANGES: dict[str, dict[str, Any]] = {
    "cam": {},
    "clims": {"w_otm": 2.0, "w_btm": 14.0, "w_cbs": 1.25, "w_reg": 0.2, "cbs_threshold": 0.285},
    "qa-clims": {"alpha": 30.0, "beta": 24.0},
    "semples": {"lr": 5e-6, "prompt_lr": 5e-6, "lambda_b": 0.75, "lambda_T": 0.01,
                "lambda_refine": 0.2},
}


def paper_defaults(family: str, dataset: str) -> dict[str, Any]:
    """Every paper setting of `family` ("cam", "clims", "semples", "qa-clims") on `dataset`,
    the CAM stage's included; {} on synth and other non-real datasets."""
    if dataset not in REAL_DATASETS:
        return {}
    family = family.split("/", 1)[0]
    if family not in _VOC:
        raise BenchError(f"no paper settings for method {family!r}; known: {', '.join(sorted(_VOC))}")
    coco = _COCO_CHANGES[family] if dataset == "coco" else {}
    cam_stage = dict(CAM_STAGE)
    if family == "cam":  # its own batch and crop are the stage's: `--set batch_size` applies
        cam_stage.update(cam_batch_size=0, cam_crop_size=0)
    return {**_VOC[family], **cam_stage, **coco}
