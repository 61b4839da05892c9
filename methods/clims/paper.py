"""CLIMS's paper facts: its settings per dataset, its variant and its published rows.

Real data (METHODS.md; CVI-SZU/CLIMS run_sample.py): SGD poly lr 2.5e-4, head 10×, batch 16,
512 crops, 15 epochs, CLIP ViT-B/32; loss weights 10, 24, 1, 0.2, threshold 0.26 on VOC,
2, 14, 1.25, 0.2, threshold 0.285 on COCO. On `synth`: a small CNN from the CAM checkpoint,
a few CPU minutes.

Torch-free: settings, variants and published values only (the family: method.py).
"""

from __future__ import annotations

from methods.cam.paper import RESNET_SGD, real_settings
from methods.papers import FamilyPaper, row

PAPER = FamilyPaper("clims", {
    "synth": {"epochs": 6, "lr": 1e-3, "batch_size": 32, "optimizer": "sgd",
              "schedule": "poly", "head_lr_mult": 10.0},
    **real_settings(
        {**RESNET_SGD, "epochs": 15, "lr": 2.5e-4, "batch_size": 16, "clip_arch": "ViT-B-32",
         "w_otm": 10.0, "w_btm": 24.0, "w_cbs": 1.0, "w_reg": 0.2, "cbs_threshold": 0.26},
        {"w_otm": 2.0, "w_btm": 14.0, "w_cbs": 1.25, "w_reg": 0.2, "cbs_threshold": 0.285}),
})


# both papers' Table 1 report CLIMS (seed mIoU, PASCAL VOC 2012 train): one row each
@PAPER.variant("clims", rows=[row("seeds", "CLIMS", 57.5, "SemPLeS Table 1"),
                              row("seeds", "CLIMS", 56.6, "QA-CLIMS Table 1")])
def clims() -> dict:
    """CLIMS: CLIP matching of sigmoid-masked crops with manual background prompts."""
    return {}
