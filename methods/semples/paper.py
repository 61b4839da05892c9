"""SemPLeS's paper facts: settings per dataset, variants with their table rows and published
values, sweep grids.

Lin et al., "SemPLeS: Semantic Prompt Learning for Weakly-Supervised Semantic Segmentation"
(shared/papers/000_9987135e1467e097.txt). Published numbers are seed mIoU in % on PASCAL VOC
2012 train, transcribed exactly (`tests/test_reports.py` re-reads each from the paper text).

Settings (paper §4.1): AdamW cosine, batch 64, lr 5e-4 (VOC) / 5e-6 (COCO), 60 epochs, CLIP
ViT-B/32, λ_b/λ_T/λ 2.4/0.02/0.05 (COCO 0.75/0.01/0.2), mask generator WeakTr's DeiT-S. Not
in the paper, from its code (SemPLeS main2.py, as released with the NVIDIA header): input
size 224, weight decay 0.03. The prompts use the generator's lr.

Torch-free: settings, variants and published values only (the family: method.py).
"""

from __future__ import annotations

from methods.cam.paper import mask_settings, real_settings, synth_settings
from methods.papers import FamilyPaper, row

T1, T4, T5, T6 = "SemPLeS Table 1", "SemPLeS Table 4", "SemPLeS Table 5", "SemPLeS Table 6"
# Table 5: the refinement loss weight λ of Eq. 3 → seed mIoU (also the λ sweep's grid)
TABLE5 = {0.0: 67.6, 0.01: 68.3, 0.02: 68.4, 0.05: 68.7, 0.1: 67.8}

# The release's training step (main1/2/3.py, engine1/2/3.py): AdamW, cosine, batch 64, lr 5e-4
# for S and the prompts, weight decay 0.03, VOC loss weights. Its losses are means over pairs,
# so there is no per-step scale to carry over (AdamW is invariant to one anyway):
# it has no `loss_replicas`. Masks: upsample (align_corners=True), then min-max with eps 0.1
# ((a)/(c)) and 1e-4 ((b)), the SemplesConfig defaults.
STEP = {"optimizer": "adamw", "schedule": "cosine", "weight_decay": 0.03, "head_lr_mult": 1.0,
        "lr": 5e-4, "prompt_lr": 5e-4, "batch_size": 64,
        "lambda_b": 2.4, "lambda_T": 0.02, "lambda_refine": 0.05}

PAPER = FamilyPaper("semples", {
    # the synth protocol: the release's step; the stages' epochs by the plateau rule
    "synth": synth_settings({**STEP, "epochs": 6, "prompt_epochs": 4, "refine_epochs": 5}),
    **real_settings(
        {**STEP, "backbone": "deit_small_patch16_224", "crop_size": 224, "epochs": 60,
         "prompt_epochs": 60, "refine_epochs": 60, "clip_arch": "ViT-B-32"},
        {"lr": 5e-6, "prompt_lr": 5e-6, "lambda_b": 0.75, "lambda_T": 0.01, "lambda_refine": 0.2}),
}, masks=mask_settings("crf"),  # kuongan/SemPLeS docs/Training.md: evaluation.py --out-crf
    grids={
    "lambda_refine": tuple(TABLE5),
    "lambda_b": (0.6, 1.2, 2.4, 4.8),  # ours: around the VOC default 2.4
    "lambda_T": (0.005, 0.01, 0.02, 0.05, 0.1),  # ours: around the VOC default 0.02
},
                    method="methods.semples.method:Semples", order=30)

# Table 4 (loss ablation): the extracted text lost the check marks; the row -> loss mapping
# follows the paper's own prose under "Loss Component Analysis". Paired Δ against L_match.
MATCH_ONLY = "SemPLeS: L_match only"

# Rows come in a table in the order they are declared here (Table 4's, then Table 6's).


@PAPER.variant("semples/match-only", reproduces="Table 4: L_match only",
               rows=[row("ablation", MATCH_ONLY, 67.6, T4, "L_match only")])
def match_only() -> dict:
    """L_match only (λ = 0): (c) without L_refine; no prompts."""
    return {"lambda_refine": 0.0}


@PAPER.variant("semples/random-prompts", reproduces="Table 4: L_match + L_refine, random prompts",
               rows=[row("ablation", "SemPLeS: + L_refine, random prompts", 67.6, T4,
                         "L_match + L_refine, prompts random (not learned)", reference=MATCH_ONLY)])
def random_prompts() -> dict:
    """L_match + L_refine with randomly initialised, never learned prompts (no stage (b))."""
    return {"prompt_losses": "none"}


@PAPER.variant("semples/text-prompt-only", reproduces="Table 4: + L^T_prompt only",
               rows=[row("ablation", "SemPLeS: + L_prompt^T + L_refine", 67.7, T4,
                         "L_match + L_prompt^T + L_refine", reference=MATCH_ONLY)])
def text_prompt_only() -> dict:
    """Prompts learned with L^T_prompt only (away from the class text), then refinement."""
    return {"prompt_losses": "text"}


@PAPER.variant("semples/image-prompt-only", reproduces="Table 4: + L^I_prompt only",
               rows=[row("ablation", "SemPLeS: + L_prompt^I + L_refine", 67.9, T4,
                         "L_match + L_prompt^I + L_refine", reference=MATCH_ONLY)])
def image_prompt_only() -> dict:
    """Prompts learned with L^I_prompt only (towards the background crops), then refinement."""
    return {"prompt_losses": "image"}


@PAPER.variant("semples/joint", reproduces="Table 6: joint training",
               rows=[row("scheme", "joint training", 65.9, T6, "joint training")])
def joint() -> dict:
    """Joint scheme: matching, prompt learning and refinement losses together from the start."""
    return {"scheme": "joint"}


@PAPER.variant("semples", reproduces="Table 4: full (L_match + L_prompt + L_refine); "
               "Table 6: sequential, 1 round", rows=[
                   row("ablation", "SemPLeS: all losses", 68.7, T4, "all losses",
                       reference=MATCH_ONLY),
                   *(row("loss-weight", f"λ = {lam:g}", value, T5, hparams={"lambda_refine": lam})
                     for lam, value in TABLE5.items()),
                   row("scheme", "sequential, 1 round", 68.7, T6,
                       "seq./alter., 1 round (= sequential)"),
                   row("seeds", "SemPLeS", 68.7, T1, mask=78.4)])  # Table 1 Seed, Mask
def full() -> dict:
    """SemPLeS, full: sequential (a) → (b) → (c), one round (the paper's default)."""
    return {}


@PAPER.variant("semples/alternate-r2", reproduces="Table 6: alternate, 2 rounds",
               rows=[row("scheme", "alternate, 2 rounds", 68.5, T6, "seq./alter., 2 rounds")])
def alternate_r2() -> dict:
    """Alternate scheme: stage (a), then (b) and (c) alternated for 2 rounds."""
    return {"scheme": "alternate", "rounds": 2}


@PAPER.variant("semples/alternate-r3", reproduces="Table 6: alternate, 3 rounds",
               rows=[row("scheme", "alternate, 3 rounds", 68.4, T6, "seq./alter., 3 rounds")])
def alternate_r3() -> dict:
    """Alternate scheme: stage (a), then (b) and (c) alternated for 3 rounds."""
    return {"scheme": "alternate", "rounds": 3}


# the final segmentation tables (bench report --table final). Table 3 adds SemPLeS to other
# methods' pipelines (CLIMS, WeakTr, FMA-WSSS); here a row's measured cell trains the model on
# semples' own masks, so its Δ to the published number is not a like-for-like comparison
T2, T3 = "SemPLeS Table 2", "SemPLeS Table 3"
PAPER.final_row("SemPLeS (M2F-Swin-L)", "mask2former", 83.4, 82.9, 56.1, f"{T2} (= {T3}, on FMA-WSSS)",
                variant="semples")
PAPER.final_row("+SemPLeS on CLIMS (DL2-R101)", "deeplabv2", 71.0, 71.5, None, T3, variant="semples",
                note="published on CLIMS's pipeline; measured on semples' own masks")
PAPER.final_row("+SemPLeS on WeakTr (Sgmt-DeiT-S)", "segmenter", 74.2, 74.8, None, T3,
                variant="semples", note="published on WeakTr's pipeline")
PAPER.final_row("FS (DL2-R101)", "deeplabv2", 77.7, 79.7, None, T3)
PAPER.final_row("FS (Sgmt-DeiT-S)", "segmenter", 79.7, 79.6, None, T3)
PAPER.final_row("FS (M2F-Swin-L)", "mask2former", 86.0, 86.1, None, T3)
