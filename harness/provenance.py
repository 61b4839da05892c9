"""How a number was obtained, recorded in every result: split, ground truth, threshold rule,
inference, class wording, teacher and checkpoint hashes.

The authors' issue trackers are full of results that differ by one of these alone (the
1,464 `train` vs 10,582 `train_aug` split, SegmentationClass vs SegmentationClassAug, a
fixed 0.15 vs a threshold picked on the masks being scored), so a record carries all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.artefacts import file_sha256
from harness.evaluate import DEFAULT_THRESHOLDS, FIXED_THRESHOLD

if TYPE_CHECKING:  # harness.infer imports torch; a record needs only the spec's fields
    from harness.infer import InferenceSpec

# Which masks of which listed split, per dataset and evaluated split; `gt_source` adds the
# number of images this run scored, never a count the split has in the full dataset
# (issue 32: "1,464 ids" beside n_images 30 on a smaller tree).
GT_SOURCES = {
    ("synth", "eval"): "synth generator masks (eval split",
    ("synth", "heldout"): "synth generator masks (held-out split",
    ("voc", "eval"): "VOC2012 SegmentationClass (train ids",
    ("voc", "val"): "VOC2012 SegmentationClass (val ids",
    ("voc", "heldout"): "VOC2012 SegmentationClass (every third val id",
    ("coco", "eval"): "COCO val2014 instances rendered as class masks (val2014",
}


def gt_source(dataset: str, split: str, n_images: int) -> str:
    """"VOC2012 SegmentationClass (train ids, 30 images)": the masks and the run's own count."""
    return f"{GT_SOURCES.get((dataset, split), f'{dataset} masks ({split} split')}, " \
           f"{n_images:,} images)"


_HASHES: dict[tuple[str, int, int], str] = {}


def recorded_sha256(path: str | Path | None) -> str | None:
    """The SHA-256 a record carries for a file (harness.artefacts.file_sha256), cached per
    (path, size, mtime) for this process; None if no file."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        return None
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = file_sha256(p)
    return _HASHES[key]


def threshold_rule(thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                   fixed: float = FIXED_THRESHOLD, heldout_split: str | None = None) -> dict[str, str]:
    """Which threshold each reported mIoU is read at."""
    sweep = f"{min(thresholds):g}…{max(thresholds):g} ({len(thresholds)} values)"
    rule = {"seed_miou": f"best of {sweep} on the evaluated split's own masks (peeks)",
            "seed_miou_fixed": f"fixed t = {fixed:g}"}
    if heldout_split:
        rule["seed_miou_heldout"] = f"best of {sweep} on the held-out split {heldout_split!r}"
    return rule


def provenance(dataset: str, split: str, n_images: int, *, class_names: str = "voc",
               heldout_split: str | None = None, inference: InferenceSpec | None = None,
               crf: bool | None = False, clip_arch: str | None = None,
               clip_weights: str | Path | None = None, cam_checkpoint: str | Path | None = None,
               random_weights: bool | None = None,
               thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
               fixed: float = FIXED_THRESHOLD) -> dict[str, Any]:
    """The `provenance` record; None marks what the caller cannot know (e.g. `bench eval` of
    CAM files made elsewhere does not know their inference spec or checkpoint)."""
    how = inference.as_record() if inference is not None else {
        "scales": None, "flips": None, "relu": None, "normalisation": None}
    return {
        "split": f"{dataset}/{split}", "n_images": n_images,
        "gt_source": gt_source(dataset, split, n_images),
        "threshold_rule": threshold_rule(thresholds, fixed, heldout_split),
        **how, "crf": crf,
        "class_names": class_names, "clip_arch": clip_arch,
        "clip_weights_sha256": recorded_sha256(clip_weights),
        "cam_checkpoint_sha256": recorded_sha256(cam_checkpoint), "random_weights": random_weights,
    }


def run_provenance(ctx: Any, n_images: int, inference: InferenceSpec,
                   heldout_split: str | None = None) -> dict[str, Any]:
    """Provenance of a `bench run` (ctx: its `harness.method.RunContext`)."""
    cfg, info = ctx.cfg, ctx.teacher_info
    synth = cfg.dataset == "synth"
    clip_weights = info.get("path") if synth else cfg.clip_weights
    # `--cam-weights` (a given baseline checkpoint) wins over the cached CAM stage's file
    cam_ckpt = getattr(cfg, "cam_weights", None)
    if cam_ckpt is None and "cam" in getattr(ctx.stages, "folders", {}):
        cam_ckpt = ctx.stages.folders["cam"] / "generator.pt"
    random_weights = not synth and cfg.allow_random_weights and (
        info.get("weights") == "random" or not cfg.backbone_weights)
    record = provenance(cfg.dataset, "eval", n_images,
                        class_names=getattr(ctx.params, "class_names", "voc"),
                        heldout_split=heldout_split, inference=inference, crf=False,
                        clip_arch=info.get("teacher") if synth else (ctx.params.clip_arch if info else None),
                        clip_weights=clip_weights if info else None, cam_checkpoint=cam_ckpt,
                        random_weights=bool(random_weights))
    return with_data_facts(record, ctx.dataset("eval"))


def with_data_facts(record: dict[str, Any], dataset: Any) -> dict[str, Any]:
    """`record` plus what a folder dataset (harness/data/folder.py) says of its files: the rule
    that derived its splits (which images a score is over) and its fingerprint (the files the
    run read, which `bench run --from` checks); unchanged for a dataset without them."""
    facts = {"split_rule": getattr(dataset, "split_rule", ""),
             "data_fingerprint": getattr(dataset, "fingerprint", "")}
    return {**record, **{k: v for k, v in facts.items() if v}}


def input_hashes(cfg: Any) -> dict[str, str | None]:
    """sha256 of each input file the config names (a folder: None, checked for existence)."""
    from harness.run_options import INPUT_PATHS

    return {k: recorded_sha256(getattr(cfg, k)) for k in INPUT_PATHS if getattr(cfg, k) is not None}
