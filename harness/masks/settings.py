"""What a pseudo-mask pipeline reads: one frozen, validated settings object per run.

The defaults are the reference implementations' own (cited per value); a family's paper.py
gives its pipeline and the values its authors ran (`Method.mask_defaults`), `--mask-set`
goes on top. They live apart from the method's settings so that a stage upstream of the
masks (the CAM, the generator) never sees them in its cache key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from harness.config import _check, hp, parse_sets

PIPELINES = ("irn", "crf", "none")


@dataclass(frozen=True)
class MaskSettings:
    pipeline: str = hp("none", "pseudo-mask pipeline: irn (IR labels, IRN, random walk), crf "
                       "(dense CRF over the CAMs) or none", choices=PIPELINES)
    # IR labels: jiwoon-ahn/irn run_sample.py --conf_fg_thres 0.30, --conf_bg_thres 0.05
    conf_fg_thres: float = hp(0.30, "IR labels: background plane of the confident-foreground "
                              "CRF (irn run_sample.py conf_fg_thres)", gt=0, lt=1)
    conf_bg_thres: float = hp(0.05, "IR labels: background plane of the confident-background "
                              "CRF (irn run_sample.py conf_bg_thres)", gt=0, lt=1)
    # IRN training: irn run_sample.py --irn_crop_size 512, --irn_batch_size 32,
    # --irn_num_epoches 3, --irn_learning_rate 0.1, --irn_weight_decay 1e-4;
    # step/train_irn.py PathIndex(radius=10)
    irn_backbone: str = hp("resnet50", "IRN's frozen timm backbone (net/resnet50_irn.py: ResNet-50)",
                           choices=("resnet50",))
    irn_crop_size: int = hp(512, "IRN training crop (irn_crop_size)", ge=32)
    irn_batch_size: int = hp(32, "IRN images per step (irn_batch_size)", ge=1)
    irn_epochs: int = hp(3, "IRN training epochs (irn_num_epoches)", ge=1)
    irn_lr: float = hp(0.1, "IRN learning rate of the boundary branch; the displacement "
                       "branch takes 10× (step/train_irn.py)", gt=0)
    irn_weight_decay: float = hp(1e-4, "IRN weight decay (irn_weight_decay)", ge=0)
    # misc/torchutils.py PolyOptimizer calls SGD(params, lr, weight_decay): its weight decay
    # lands in SGD's momentum slot, so IRN trains with momentum 1e-4 (= irn_weight_decay)
    irn_momentum: float = hp(1e-4, "IRN SGD momentum (PolyOptimizer's real value)", ge=0, lt=1)
    irn_radius: int = hp(10, "radius of the affinity pairs IRN trains on (train_irn.py "
                         "PathIndex(radius=10))", ge=2)
    irn_limit: int = hp(0, "train IRN on the first N images only (0 = all)", ge=0)
    # the random walk: irn run_sample.py --beta 10, --exp_times 8, --sem_seg_bg_thres 0.25;
    # misc/indexing.py propagate_to_edge(radius=5)
    beta: float = hp(10.0, "random walk: affinity exponent (beta)", gt=0)
    exp_times: int = hp(8, "random walk: 2^exp_times steps (exp_times)", ge=0, le=12)
    sem_seg_bg_thres: float = hp(0.25, "random walk: background plane of the semantic labels "
                                 "(sem_seg_bg_thres)", gt=0, lt=1)
    rw_radius: int = hp(5, "random walk: radius of the affinity graph (propagate_to_edge)", ge=2)
    # dense CRF over the CAMs: the SemPLeS release evaluation.py --out-crf, background score
    # picked by its --curve on the labelled split (0 here: the seed's best threshold)
    crf_bg_threshold: float = hp(0.0, "crf: background plane before the CRF (0 = the seed's "
                                 "best threshold, as the release's --curve picks it)", ge=0, lt=1)

    def validate(self) -> MaskSettings:
        for f in dataclasses.fields(self):
            _check(f.name, getattr(self, f.name), f.metadata)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def stage_params(self, *names: str) -> dict[str, Any]:
        return {n: getattr(self, n) for n in names}

    @classmethod
    def field_help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def resolve_masks(defaults: dict[str, Any], pipeline: str | None = None,
                  sets: list[str] = ()) -> MaskSettings:
    """The family's paper values on this dataset → --masks → --mask-set, validated."""
    values = dict(defaults)
    if pipeline is not None:
        values["pipeline"] = pipeline
    values.update(parse_sets(MaskSettings, list(sets)))
    return MaskSettings(**values).validate()


def from_dict(d: dict[str, Any] | None) -> MaskSettings:
    return MaskSettings(**(d or {}))
