"""CLIP-ES's paper facts: "CLIP is Also an Efficient Segmenter: A Text-Driven Approach for Weakly
Supervised Semantic Segmentation", Lin et al., CVPR 2023; reference code linyq2117/CLIP-ES
@3893f81 (each setting below names its file:line). Torch-free: settings, texts, variants,
table rows and published values (the family: method.py, named by `method=`).

This package registers through the entry-point group exactly as another distribution would
(pyproject.toml: `clip-es = "methods.clip_es.paper:PAPER"`) and imports only public APIs of
`harness` and `methods.papers`: no other family.
"""

from __future__ import annotations

from methods.papers import FamilyPaper, row

# generate_cams_voc12.py:236-237 (and _coco14.py): one template for classes and background
TEMPLATE = "a clean origami {}."
# clip_text.py:12-16 and :38-52 (`new_class_names`, `new_class_names_coco`): the words that
# replace a class name in its prompt. METHODS.md writes tvmonitor → "screen"; the code's
# string is "tvmonitor screen", which is what is used.
SYNONYMS = {
    "bird": "bird avian", "chair": "chair seat", "person": "person with clothes,people,human",
    "tvmonitor": "tvmonitor screen", "backpack": "backpack,bag", "umbrella": "umbrella,parasol",
    "handbag": "handbag,purse", "tie": "necktie", "snowboard": "sknowboard",
    "baseball glove": "glove", "spoon": "dessertspoon", "remote": "remote control",
    "hair drier": "hairdrier,blowdrier",
}
# clip_text.py:2-4: the background set; COCO drops keyboard and sign (clip_text.py:56-58)
BACKGROUND_VOC = ("ground", "land", "grass", "tree", "building", "wall", "sky", "lake", "water",
                  "river", "sea", "railway", "railroad", "keyboard", "helmet", "cloud", "house",
                  "mountain", "ocean", "road", "rock", "street", "valley", "bridge", "sign")
BACKGROUND_COCO = tuple(t for t in BACKGROUND_VOC if t not in ("keyboard", "sign"))

# generate_cams_voc12.py: ViT-B/16 (`--model .../ViT-B-16.pt`), scale 1.0 only
# (`img_ms_and_flip(..., scales=[1.0])`, the flipped copy dropped: `ms_imgs = [ms_imgs[0]]`);
# box threshold 0.4 (`scoremap2bbox(..., threshold=0.4)`; COCO 0.7, generate_cams_coco14.py:158);
# CAA on the last 8 blocks' attention (`torch.stack(attn_weight, dim=0)[-8:]`).
_REAL = {"clip_arch": "ViT-B-16", "box_threshold": 0.4, "caa_layers": 8, "scales": "1.0"}
# On synth the run's teacher is the embedded tiny CLIP (2 blocks, 8-px patches): CAA averages
# the blocks it has (min(8, depth)); the prompts are the teacher's own ("a photo of {}."), the
# only wording it was trained on, and the background set is synth's contexts (method.py).
PAPER = FamilyPaper("clip-es", {
    "synth": {"box_threshold": 0.4, "caa_layers": 8, "scales": "1.0"},
    "voc": _REAL,
    "coco": {**_REAL, "box_threshold": 0.7},
}, method="methods.clip_es.method:ClipEs", order=25)

T1 = "SemPLeS Table 1"


# Published: CLIP-ES README:98-111 (VOC train CAM 70.8, +CRF 75.0; COCO val segmentation 45.4);
# SemPLeS Table 1 lists CLIP-ES with Seed 58.6 and Mask 75.0. The seeds table has one row per
# published number, as for CLIMS.
@PAPER.variant("clip-es", reproduces="CLIP-ES: softmax Grad-CAM + background set + CAA", rows=[
    row("seeds", "CLIP-ES", 70.8, "CLIP-ES README", "VOC train CAMs; 75.0 with CRF", mask=75.0),
    row("seeds", "CLIP-ES (SemPLeS)", 58.6, T1, mask=75.0),
])
def clip_es() -> dict:
    """Training-free CAMs: Grad-CAM of CLIP's softmax over class and background texts, CAA."""
    return {}


@PAPER.variant("clip-es/no-softmax", reproduces="CLIP-ES ablation: Grad-CAM of the raw logit")
def no_softmax() -> dict:
    """Grad-CAM of the class's logit, no softmax over the texts."""
    return {"softmax": False}


@PAPER.variant("clip-es/no-background", reproduces="CLIP-ES ablation: no background text set")
def no_background() -> dict:
    """Softmax over the image's class texts only (no background set)."""
    return {"background": False}


@PAPER.variant("clip-es/no-caa", reproduces="CLIP-ES ablation: Grad-CAM without CAA")
def no_caa() -> dict:
    """The softmax Grad-CAM as it is, without the attention-affinity refinement."""
    return {"caa": False}


@PAPER.variant("clip-es/multi-scale", reproduces="CLIP-ES with CAMs averaged over scales")
def multi_scale() -> dict:
    """CAMs averaged over scales 1.0, 0.5, 1.5, 2.0 (the reference code runs 1.0 only)."""
    return {"scales": "1.0,0.5,1.5,2.0"}
