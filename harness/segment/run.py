"""`bench run METHOD --segment MODEL`: after the run's own evaluation, its CAMs of the
TRAINING split, their pseudo masks, and the segment stage on them.

The training split's CAMs come from the same inference (`harness.infer.infer_cams`, the
run's one inference spec) and its masks from the same pipeline (`harness.masks.stage.
make_masks`) as the evaluation split's; a run without a mask pipeline (`--masks none`, synth's
default) trains on its seed: the CAMs' argmax at the run's best threshold (`masks_seed`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import in_stage
from harness.segment.data import PlainView, folder_labels, val_split
from harness.segment.stage import (
    SegmentJob,
    SegmentRequest,
    images_key,
    labels_key,
    segment,
    test_split,
)

MASKS = "masks"
PREDICTIONS = "seg"  # the run folder's val predictions, <image>.png


def job_of(ctx) -> SegmentJob:
    """A run's services (`ctx`: harness.method.RunContext) for the segment stage."""
    return SegmentJob(ctx.stages, ctx.device, ctx.cfg.seed, ctx.log, ctx.show_progress,
                      ctx.cfg.allow_random_weights)


def seed_masks(ctx, ds, cam_dir: Path, threshold: float) -> Path:
    """The CAMs' argmax at `threshold` as PNGs (the masks of a run with no mask pipeline)."""
    from harness.camio import read_cam
    from harness.evaluate import predict
    from harness.masks.pngio import write_mask
    from harness.masks.stage import cams_digest

    def build(out: Path) -> None:
        (out / MASKS).mkdir()
        for i, name in enumerate(ds.image_names):
            keys, high = read_cam(cam_dir / f"{name}.npy", ds.image(i).shape[:2])
            write_mask(out / MASKS, name, predict(keys, high, threshold).astype("uint8"))

    deps = {"cams_sha256": cams_digest(cam_dir, ds.image_names), "threshold": threshold,
            "images": images_key(ctx.cfg.dataset, ds, ctx.cfg.data_root)}
    folder, _ = ctx.stages.get_or_build("masks_seed", deps, build)
    return folder / MASKS


def segment_after_run(ctx, cam_model, run_path: Path,
                      threshold: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train-split CAMs → pseudo masks → segment → (seg_* record fields, provenance)."""
    from harness.infer import infer_cams

    req = SegmentRequest.from_dict(ctx.cfg.segment)
    train = PlainView(ctx.dataset("train"))
    cam_dir = run_path / "cams-train"
    with in_stage("CAM inference (train split)"):
        for _ in infer_cams(cam_model, train, cam_dir, ctx.device, ctx.inference,
                            show_progress=ctx.show_progress):
            pass
    if ctx.cfg.masks:
        from harness.masks.settings import from_dict
        from harness.masks.stage import make_masks

        folder, mask_prov = make_masks(ctx, train, cam_dir, from_dict(ctx.cfg.masks), threshold)
    else:
        folder = seed_masks(ctx, train, cam_dir, threshold)
        mask_prov = {"pipeline": "seed", "threshold": threshold}
    labels_id = labels_key(train, folder)
    val = ctx.dataset(val_split(ctx.cfg.dataset))
    scores, prov = segment(job_of(ctx), req, train, folder_labels(train, folder), labels_id,
                           images_key(ctx.cfg.dataset, train, ctx.cfg.data_root), val,
                           run_path / PREDICTIONS, test_split(ctx.dataset, ctx.cfg.dataset))
    prov["train_masks"] = {**mask_prov, "sha256": labels_id, "split": train.split}
    return scores, prov
