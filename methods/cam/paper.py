"""CAM's paper facts: the IRN CAM stage every family shares, and its table rows.

The CAM stage (`cam_*`) is one table for every family, so `cam`, `clims`, `qa-clims` train
the identical baseline (one stage-cache key per dataset and seed): IRN's train_cam, which
the CLIMS and QA-CLIMS code start from (CVI-SZU/QA-CLIMS parser.py: cam_crop_size 512,
cam_batch_size 16, cam_num_epoches 5, cam_learning_rate 0.1, cam_weight_decay 1e-4; SGD
poly, head 10×). SemPLeS's CAM stage has the same settings on its DeiT-S backbone.

Torch-free: settings, variants and published values only (the family: method.py).
"""

from __future__ import annotations

from typing import Any

from methods.papers import FamilyPaper, row

# IRN train_cam, shared by every family (see the module docstring)
CAM_STAGE: dict[str, Any] = {"cam_epochs": 5, "cam_lr": 0.1, "cam_batch_size": 16,
                             "cam_crop_size": 512, "cam_momentum": 1e-4}
# the ResNet-50 SGD recipe of IRN, CLIMS and QA-CLIMS on real data
# (momentum 1e-4: PolyOptimizer's SGD.__init__(params, lr, weight_decay) puts weight_decay in
# SGD's momentum slot, jiwoon-ahn/irn misc/torchutils.py, copied by CLIMS and QA-CLIMS)
RESNET_SGD: dict[str, Any] = {"backbone": "resnet50", "optimizer": "sgd", "schedule": "poly",
                              "weight_decay": 1e-4, "momentum": 1e-4, "head_lr_mult": 10.0,
                              "crop_size": 512}


# The synth protocol (docs/protocol.md, registered before it was measured): each family trains
# on synth with its reference's optimiser, learning rate, batch, per-step loss scale and loss
# weights; only image size, architecture, data and epochs differ. The shared CAM stage is
# IRN train_cam's recipe (lr 0.1, batch 16, SGD momentum 1e-4, head 10x); its epochs come
# from the protocol's plateau rule.
SYNTH_CAM: dict[str, Any] = {"cam_lr": 0.1, "cam_batch_size": 16, "cam_momentum": 1e-4,
                             "cam_epochs": 16}
# the reference SGD recipe without the real-data architecture (backbone, crop)
SYNTH_SGD: dict[str, Any] = {k: v for k, v in RESNET_SGD.items() if k not in ("backbone", "crop_size")}


def synth_settings(family: dict[str, Any]) -> dict[str, Any]:
    """A family's synth settings: its reference recipe plus the shared synth CAM stage."""
    return {**family, **SYNTH_CAM}


def real_settings(voc: dict[str, Any], coco_changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A family's voc and coco settings: its own, the shared CAM stage, COCO's changes."""
    voc = {**voc, **CAM_STAGE}
    return {"voc": voc, "coco": {**voc, **coco_changes}}


# the `cam` row trains only the CAM stage; its own fields mirror that stage, and its CAM
# stage's batch and crop are its own (0), so `--set batch_size` applies
_VOC = {**RESNET_SGD, "epochs": 5, "lr": 0.1, "batch_size": 16, "clip_arch": "ViT-B-32"}
_SETTINGS = {"synth": {**synth_settings({"batch_size": 16}), "cam_batch_size": 0},
             **real_settings(_VOC, {})}
PAPER = FamilyPaper("cam", {ds: {**s, "cam_batch_size": 0, "cam_crop_size": 0}
                            for ds, s in _SETTINGS.items()},
                    grids={"cam_lr": (0.01, 0.02, 0.05, 0.1)})  # ours: the sweep machinery's demo

# QA-CLIMS Table 1 "CAM" column (PASCAL VOC 2012 train). The plain CAM baseline is the
# IRN (Ahn et al., 2019) R50 row, the conventional CAM that CLIMS and QA-CLIMS start from.
@PAPER.variant("cam", rows=[
    row(("ablation", "seeds"), "CAM", 48.3, "QA-CLIMS Table 1", "row IRN CVPR'19 (R50 CAM)")])
def cam() -> dict:
    """Multi-label classifier CAM (the baseline every CLIP-guided method starts from)."""
    return {}


@PAPER.variant("cam/deit-s", reproduces="SemPLeS's baseline: the CAM stage on its DeiT-S generator")
def deit_s() -> dict:
    """The CAM classifier on DeiT-S: the baseline `semples` starts from (same stage key)."""
    return {"backbone": "deit_small_patch16_224"}
