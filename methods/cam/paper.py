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


# Pseudo masks (harness.masks.settings.MaskSettings). IRN refines the CAMs of cam, clims and
# qa-clims. Its own values are the engine's defaults (jiwoon-ahn/irn run_sample.py:
# conf_fg_thres 0.30, conf_bg_thres 0.05, irn_crop_size 512, irn_batch_size 32,
# irn_num_epoches 3, irn_learning_rate 0.1, irn_weight_decay 1e-4, beta 10, exp_times 8,
# sem_seg_bg_thres 0.25). CLIMS and QA-CLIMS change two of them:
IRN_AS_CLIMS_RUNS_IT: dict[str, Any] = {
    "conf_bg_thres": 0.1,  # CVI-SZU/CLIMS run_sample.py; CVI-SZU/QA-CLIMS parser.py: 0.1
    "sem_seg_bg_thres": 0.2,  # CLIMS run_sample.py --sem_seg_bg_thres 0.2; QA-CLIMS parser.py 0.2
}
# On synth (64 px images) masks are opt-in (`--masks irn|crf`; none by default, so the fast
# synth loop — sweeps, the protocol — stays as it is). IRN there is sized to 64-px images:
# one whole image per crop, a 16×16 stride-4 grid, so IRN's radius-10 training pairs (which
# need a grid wider than 18) become radius 5, the random walk's own radius.
SYNTH_IRN: dict[str, Any] = {"irn_crop_size": 64, "irn_radius": 5}


def mask_settings(pipeline: str, real: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """A family's pseudo masks per dataset: `pipeline` with `real` values on voc/coco; none by
    default on synth, with IRN sized to its images."""
    real = {"pipeline": pipeline, **(real or {})}
    return {"voc": real, "coco": real, "synth": {**(real or {}), "pipeline": "none", **SYNTH_IRN}}


# the `cam` row trains only the CAM stage; its own fields mirror that stage, and its CAM
# stage's batch and crop are its own (0), so `--set batch_size` applies
_VOC = {**RESNET_SGD, "epochs": 5, "lr": 0.1, "batch_size": 16, "clip_arch": "ViT-B-32"}
_SETTINGS = {"synth": {**synth_settings({"batch_size": 16}), "cam_batch_size": 0},
             **real_settings(_VOC, {})}
PAPER = FamilyPaper("cam", {ds: {**s, "cam_batch_size": 0, "cam_crop_size": 0}
                            for ds, s in _SETTINGS.items()},
                    grids={"cam_lr": (0.01, 0.02, 0.05, 0.1)},  # ours: the sweep machinery's demo
                    masks=mask_settings("irn"),  # IRN's own pipeline and values
                    method="methods.cam.method:Cam", order=10)

# QA-CLIMS Table 1 "CAM" column (PASCAL VOC 2012 train). The plain CAM baseline is the
# IRN (Ahn et al., 2019) R50 row, the conventional CAM that CLIMS and QA-CLIMS start from.
@PAPER.variant("cam", rows=[
    row(("ablation", "seeds"), "CAM", 48.3, "QA-CLIMS Table 1", "row IRN CVPR'19 (R50 CAM)",
        mask=66.5)])  # the same row's Mask column: IRN's pseudo masks
def cam() -> dict:
    """Multi-label classifier CAM (the baseline every CLIP-guided method starts from)."""
    return {}


@PAPER.variant("cam/deit-s", reproduces="SemPLeS's baseline: the CAM stage on its DeiT-S generator")
def deit_s() -> dict:
    """The CAM classifier on DeiT-S: the baseline `semples` starts from (same stage key)."""
    return {"backbone": "deit_small_patch16_224"}
