"""What a segmentation model's training and inference read: one frozen, validated object.

Every field is an ordinary setting (`--set seg_lr=…`); its name starts with `seg_` so it
never collides with a method's own. A named recipe (`seg_recipe`) is a set of values read in
one reference's code; `resolve_seg_settings` applies, in order: the field defaults (the
DeepLabV2 values CLIMS's two recipes share), the recipe, then each `--set`.

Citations: KZ = kazuto1011/deeplab-pytorch@4219467, CL = CVI-SZU/CLIMS@f9546d3
`segmentation/deeplabv2/`, WT = hustvl/WeakTr@3457ad3 `OnlineRetraining/segm/` (METHODS.md,
"Segmentation stage").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.config import _check, hp, parse_sets, split_sets
from harness.errors import BenchError

# --- named recipes: only what differs from the field defaults --------------------------------
RECIPES: dict[str, dict[str, Any]] = {
    # CL configs/voc12_coco_pretrained.yaml + main.py: BATCH_SIZE.TRAIN 5, ITER_SIZE 2,
    # ITER_MAX 20000, SCALES [0.5, 0.75, 1.0, 1.25, 1.5]; main.py's criterion is
    # nn.CrossEntropyLoss(ignore_index=255)
    "coco": dict(seg_batch_size=5, seg_iter_size=2, seg_iterations=20000,
                 seg_scales="0.5,0.75,1.0,1.25,1.5", seg_loss="ce"),
    # CL configs/voc12_imagenet_pretrained.yaml + main_v2.py: BATCH_SIZE.TRAIN 10, ITER_SIZE 2,
    # ITER_MAX 30000, SCALES 0.5 … 2.0 step 0.25; main_v2.py:87-99 criterion_balance
    "imagenet": dict(seg_batch_size=10, seg_iter_size=2, seg_iterations=30000,
                     seg_scales="0.5,0.75,1.0,1.25,1.5,1.75,2.0", seg_loss="balanced_ce"),
    # FMA-WSSS stage II, mmsegmentation `m2f-sl22-bt4-80k-512x-VOC.py` (batch 4, 80k iterations,
    # 512 crop by its name; the file sits in an unreadable submodule, METHODS.md). The rest
    # (AdamW lr 1e-4, weight decay 0.05, poly 0.9 every step, backbone 0.1×, ImageNet mean/std
    # in RGB, single-scale test) are mmsegmentation's usual mask2former values, NOT read in
    # FMA-WSSS's file: override them with --set where that file says otherwise.
    "m2f": dict(seg_optimizer="adamw", seg_lr=1e-4, seg_weight_decay=0.05, seg_batch_size=4,
                seg_iter_size=1, seg_iterations=80000, seg_crop=512, seg_lr_step=1,
                seg_scales="0.5,0.75,1.0,1.25,1.5,1.75,2.0", seg_mean="123.675,116.28,103.53",
                seg_std="58.395,57.12,57.375", seg_bgr=False, seg_backbone_lr_mult=0.1,
                seg_head_lr_mult=1.0, seg_head_bias_lr_mult=1.0, seg_head_bias_decay=True,
                seg_freeze_bn=False, seg_test_scales="1.0", seg_msc_loss=False),
    # WT config.yml:35-42,153-156 and train.py:52-64,184-197,251-255: timm SGD (Nesterov),
    # momentum 0.9, lr 1e-4, encoder 0.1×, poly 0.9 down to 1e-5, no weight decay, batch 4,
    # crop 480, ratio 0.5–2.0, ImageNet mean/std; test {0.5 … 1.75} + flip, then CRF.
    # 100 epochs of VOC train_aug (10,582 images) at batch 4 = 264,550 iterations
    "segmenter": dict(seg_lr=1e-4, seg_nesterov=True, seg_weight_decay=0.0, seg_min_lr=1e-5,
                      seg_batch_size=4, seg_iter_size=1, seg_iterations=264550, seg_crop=480,
                      seg_lr_step=1, seg_scales="0.5,0.75,1.0,1.25,1.5,1.75,2.0",
                      seg_mean="123.675,116.28,103.53", seg_std="58.395,57.12,57.375",
                      seg_bgr=False, seg_backbone_lr_mult=0.1, seg_head_lr_mult=1.0,
                      seg_head_bias_lr_mult=1.0, seg_head_bias_decay=True, seg_freeze_bn=False,
                      seg_msc_loss=False, seg_clip_start=1.2, seg_clip_patch=120,
                      seg_test_scales="0.5,0.75,1.0,1.25,1.5,1.75",
                      seg_test_flip=True, seg_merge="mean", seg_crf_pos_xy=3, seg_crf_pos_w=3,
                      seg_crf_bi_xy=83, seg_crf_bi_rgb=5, seg_crf_bi_w=3),
    # synth (docs/protocol-segmentation.md): `deeplab-synth` from random init on 64-px images —
    # CLIMS's SGD poly (momentum 0.9, wd 5e-4, poly 0.9 every 10 steps) at lr 0.01 with no head
    # multiplier (nothing is pretrained, so no part needs a faster lr), BatchNorm trained,
    # plain CE; test at scale 1.0. Iterations: the plateau rule's budget, 1,200, measured once
    # on a 2,000-iteration FS curve (docs/results/segmentation-synth.md, "Budget B"; a test
    # holds the two equal), so `bench run M --segment deeplab-synth` trains the page's cells
    "synth": dict(seg_lr=0.01, seg_batch_size=16, seg_iter_size=1, seg_iterations=1200, seg_crop=64,
                  seg_scales="0.75,1.0,1.25", seg_mean="123.675,116.28,103.53",
                  seg_std="58.395,57.12,57.375", seg_bgr=False, seg_head_lr_mult=1.0,
                  seg_head_bias_lr_mult=1.0, seg_freeze_bn=False, seg_msc_loss=False,
                  seg_test_scales="1.0", seg_loss="ce"),
}


@dataclass(frozen=True)
class SegSettings:
    """One field per recipe setting. Defaults: KZ/CL DeepLabV2 values both CLIMS recipes share."""

    seg_recipe: str = hp("", "named recipe (coco, imagenet: CLIMS's DeepLabV2 pair; m2f; segmenter; "
                         "synth); empty = the model's default", choices=("", *RECIPES))
    seg_arch: str = hp("full", "model size: full (the paper's) or small (same code, a few "
                       "layers: CPU tests and synth)", choices=("full", "small"))
    # CL configs/voc12_*.yaml SOLVER: OPTIMIZER sgd, LR 2.5e-4, MOMENTUM 0.9, WEIGHT_DECAY 5e-4,
    # POLY_POWER 0.9, LR_DECAY 10 (KZ libs/utils/lr_scheduler.py:19-29 recomputes every 10 its)
    seg_optimizer: str = hp("sgd", "optimizer", choices=("sgd", "adamw"))
    seg_lr: float = hp(2.5e-4, "base learning rate", gt=0)
    seg_momentum: float = hp(0.9, "SGD momentum", ge=0, lt=1)
    seg_nesterov: bool = hp(False, "SGD with Nesterov momentum (WeakTr's timm 'sgd')")
    seg_weight_decay: float = hp(5e-4, "weight decay", ge=0)
    seg_poly_power: float = hp(0.9, "poly schedule power", gt=0)
    seg_lr_step: int = hp(10, "recompute the poly lr every N iterations (KZ: 10)", ge=1)
    seg_min_lr: float = hp(0.0, "poly floor (WeakTr: 1e-5)", ge=0)
    # CL main.py:178-198: backbone conv weights 1×, ASPP weights 10×, ASPP biases 20× no decay
    seg_backbone_lr_mult: float = hp(1.0, "lr multiplier of the backbone", gt=0)
    seg_head_lr_mult: float = hp(10.0, "lr multiplier of the head's weights", gt=0)
    seg_head_bias_lr_mult: float = hp(20.0, "lr multiplier of the head's biases", gt=0)
    seg_head_bias_decay: bool = hp(False, "weight decay on the head's biases (CL: none)")
    # CL main.py:223-225 freeze_bn(): BatchNorm in eval mode, and get_params never returns it
    seg_freeze_bn: bool = hp(True, "BatchNorm frozen (eval statistics, not optimised)")
    seg_iterations: int = hp(20000, "optimizer steps (ITER_MAX)", ge=1)
    seg_batch_size: int = hp(5, "images per forward (BATCH_SIZE.TRAIN)", ge=1)
    seg_iter_size: int = hp(2, "forwards accumulated per step (ITER_SIZE)", ge=1)
    # CL configs IMAGE.SIZE.TRAIN 321; libs/datasets/base.py:61-104 scale, pad, crop, flip
    seg_crop: int = hp(321, "training crop side", ge=8)
    seg_scales: str = hp("0.5,0.75,1.0,1.25,1.5", "training random-scale choices, comma-separated")
    seg_flip: bool = hp(True, "training horizontal flip, p 0.5")
    # CL configs IMAGE.MEAN (R 122.675, G 116.669, B 104.008), BGR order, no std
    seg_mean: str = hp("104.008,116.669,122.675", "per-channel mean subtracted, in seg_bgr order")
    seg_std: str = hp("", "per-channel std divided by (empty = none)")
    seg_bgr: bool = hp(True, "feed channels as BGR (the Caffe-converted weights)")
    seg_loss: str = hp("ce", "per-pixel loss: ce or balanced_ce (CLIMS main_v2.py)",
                       choices=("ce", "balanced_ce"))
    # WT model/decoder.py:119-151 GradientClipping (segmenter recipe: 1.2, 120)
    seg_clip_start: float = hp(0.0, "Segmenter: cap pixel losses once the batch mean is ≤ this "
                               "(WeakTr's gradient clipping; 0 = off)", ge=0)
    seg_clip_patch: int = hp(120, "Segmenter: side of the clipping's local-mean patch", ge=1)
    # KZ libs/models/msc.py:26-47 with __init__.py's scales=[0.5, 0.75]
    seg_msc_loss: bool = hp(True, "DeepLabV2: loss over logits at 1, 0.5, 0.75 and their max")
    # KZ/CL main.py test: MSC eval = max over {1.0, 0.5, 0.75}, no flip, bilinear, argmax
    seg_test_scales: str = hp("1.0,0.5,0.75", "inference scales, comma-separated")
    seg_test_flip: bool = hp(False, "add horizontally flipped inputs at inference")
    seg_merge: str = hp("max", "merge of the scales' logits", choices=("max", "mean"))
    # CL configs CRF: ITER_MAX 10, POS_W 3, POS_XY_STD 1, BI_W 4, BI_XY_STD 67, BI_RGB_STD 3
    seg_crf: bool = hp(False, "dense CRF after inference (records seg_miou_crf)")
    seg_crf_iters: int = hp(10, "CRF mean-field iterations", ge=1)
    seg_crf_pos_w: float = hp(3.0, "CRF Gaussian compat", ge=0)
    seg_crf_pos_xy: float = hp(1.0, "CRF Gaussian sxy", gt=0)
    seg_crf_bi_w: float = hp(4.0, "CRF bilateral compat", ge=0)
    seg_crf_bi_xy: float = hp(67.0, "CRF bilateral sxy", gt=0)
    seg_crf_bi_rgb: float = hp(3.0, "CRF bilateral srgb", gt=0)

    def validate(self) -> SegSettings:
        for f in dataclasses.fields(self):
            _check(f.name, getattr(self, f.name), f.metadata)
        for name in ("seg_scales", "seg_test_scales"):
            if not _floats(getattr(self, name), name) or min(_floats(getattr(self, name), name)) <= 0:
                raise BenchError(f"{name} must be positive numbers, comma-separated")
        n = len(_floats(self.seg_mean, "seg_mean"))
        if n != 3 or len(self.std) != 3:
            raise BenchError("seg_mean (and seg_std if given) must be three numbers")
        return self

    @property
    def train_scales(self) -> tuple[float, ...]:
        return _floats(self.seg_scales, "seg_scales")

    @property
    def test_scales(self) -> tuple[float, ...]:
        return _floats(self.seg_test_scales, "seg_test_scales")

    @property
    def mean(self) -> tuple[float, ...]:
        return _floats(self.seg_mean, "seg_mean")

    @property
    def std(self) -> tuple[float, ...]:
        return _floats(self.seg_std, "seg_std") if self.seg_std else (1.0, 1.0, 1.0)

    def normalize(self, rgb: np.ndarray) -> np.ndarray:
        """H×W×3 uint8 RGB → 3×H×W float32 as the model is fed (channel order, mean, std)."""
        img = np.asarray(rgb, np.float32)
        if self.seg_bgr:
            img = img[..., ::-1]
        img = (img - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(img.transpose(2, 0, 1))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def field_help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def _floats(text: str, name: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise BenchError(f"{name} expects comma-separated numbers (got {text!r})") from None


def is_seg_setting(key: str) -> bool:
    """Whether a `--set` key belongs to the segmentation stage."""
    return key in {f.name for f in dataclasses.fields(SegSettings)}


def seg_settings_help() -> list[tuple[str, str, str]]:
    """(key, default, meaning) of every segmentation setting, for `bench list --settings`."""
    d = SegSettings()
    return [(k, str(getattr(d, k)), text) for k, text in SegSettings.field_help().items()]


def resolve_seg_settings(default_recipe: str, sets: list[str] = (),
                         allowed: tuple[str, ...] | None = None) -> SegSettings:
    """Field defaults → the recipe (`seg_recipe` from `sets`, else `default_recipe`) → each
    `--set` (`["seg_lr=1e-3", …]`; keys that are not segmentation settings are ignored, so the
    run's whole --set list may be passed). `allowed` = the model's recipes."""
    own = [f"{k}={v}" for k, v in split_sets(list(sets)).items() if is_seg_setting(k)]
    overrides = parse_sets(SegSettings, own)
    recipe = overrides.get("seg_recipe") or default_recipe
    if recipe not in RECIPES:
        raise BenchError(f"unknown seg_recipe {recipe!r}; known: {', '.join(RECIPES)}")
    if allowed is not None and recipe not in allowed:
        raise BenchError(f"seg_recipe {recipe!r} is not a recipe of this model "
                         f"(its recipes: {', '.join(allowed)})")
    values = {**RECIPES[recipe], **overrides, "seg_recipe": recipe}
    return SegSettings(**values).validate()
