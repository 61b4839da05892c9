"""CLIMS's paper facts: its settings per dataset, its variant and its published rows.

Real data (CVI-SZU/CLIMS run_sample.py): SGD poly lr 2.5e-4, head 10×, batch 16,
512 crops, 15 epochs, CLIP ViT-B/32; loss weights 10, 24, 1, 0.2, threshold 0.26 on VOC,
2, 14, 1.25, 0.2, threshold 0.285 on COCO. On `synth`: a small CNN from the CAM checkpoint,
a few CPU minutes.

Torch-free: settings, variants and published values only (the family: method.py).
"""

from __future__ import annotations

from methods.cam.paper import (
    IRN_AS_CLIMS_RUNS_IT,
    RESNET_SGD,
    SYNTH_SGD,
    mask_settings,
    real_settings,
    synth_settings,
)
from methods.papers import FamilyPaper, row

# The reference's training step (CVI-SZU/CLIMS run_sample.py, step/train_clims.py): lr 2.5e-4,
# batch 16 in ONE loss (torch.nn.DataParallel gathers the batch before the loss, so the summed
# L_CBS sees all 16 images and there is no replica averaging: loss_replicas 1), PolyOptimizer
# (SGD momentum 1e-4, see methods/cam/paper.py), loss weights 10, 24, 1, 0.2.
STEP = {"lr": 2.5e-4, "batch_size": 16, "loss_replicas": 1,
        "w_otm": 10.0, "w_btm": 24.0, "w_cbs": 1.0, "w_reg": 0.2}

PAPER = FamilyPaper("clims", {
    # the synth protocol: the reference's step; epochs by the plateau rule
    "synth": synth_settings({**SYNTH_SGD, **STEP, "epochs": 7}),
    **real_settings(
        {**RESNET_SGD, **STEP, "epochs": 15, "clip_arch": "ViT-B-32", "cbs_threshold": 0.26},
        {"w_otm": 2.0, "w_btm": 14.0, "w_cbs": 1.25, "w_reg": 0.2, "cbs_threshold": 0.285}),
}, masks=mask_settings("irn", IRN_AS_CLIMS_RUNS_IT),  # CVI-SZU/CLIMS run_sample.py: IRN
    method="methods.clims.method:Clims", order=20)


# both papers' Table 1 report CLIMS (seed mIoU, PASCAL VOC 2012 train): one row each
# with the Mask column of the same rows (pseudo masks by IRN, as CLIMS makes them)
@PAPER.variant("clims", rows=[row("seeds", "CLIMS", 57.5, "SemPLeS Table 1", mask=72.8),
                              row("seeds", "CLIMS", 56.6, "QA-CLIMS Table 1", mask=70.5)])
def clims() -> dict:
    """CLIMS: CLIP matching of sigmoid-masked crops with manual background prompts."""
    return {}


# the final segmentation tables (bench report --table final): DeepLabV2-R101 trained on CLIMS's
# masks, as the two papers publish it (SemPLeS's † = its own reproduction of CLIMS)
PAPER.final_row("CLIMS (DL2-R101)", "deeplabv2", 70.4, 70.0, None, "SemPLeS Tables 2, 3",
                variant="clims", note="† reproduced by the SemPLeS authors")
PAPER.final_row("CLIMS (DL2-R101)", "deeplabv2", 69.3, 68.7, None, "QA-CLIMS Table 2",
                variant="clims")
