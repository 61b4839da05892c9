"""The `segment` stage: a segmentation model trained on pseudo masks of the training split,
then scored on the dataset's val split. Cached and resumable like every stage.

Its key (harness/stages.py `StageSpec`) holds what the trained weights depend on: the
training settings of `SegSettings` (not the test-time ones: scales, flip, merge, CRF), the
model's name, the labels' content hash (the SHA-256 of the PNGs, or `gt`), the init file's
SHA-256, the training images and the seed. `bench run … --segment MODEL` and `bench segment
--masks DIR` given the same PNGs share the stage.

    bench run:      CAMs of the train split → its pseudo masks (the run's pipeline, or the
                    seed at its best threshold: masks_seed) → segment → seg_miou
    bench segment:  a folder of PNGs (or gt) → segment → seg_miou
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.artefacts import files_sha256
from harness.cache import StageCache
from harness.data import SegDataset
from harness.errors import BenchError, in_stage
from harness.provenance import recorded_sha256 as file_sha256
from harness.segment.data import LabelFn, TrainPairs
from harness.segment.settings import SegSettings, is_seg_setting
from harness.stages import StageSpec

MODEL_FILE, CURVE_FILE = "model.pt", "losses.json"
CHECKPOINT_EVERY = 200  # iterations between resumable checkpoints (a kill loses fewer)
# inference-only settings: they do not change the trained weights, so not the stage's key
_TEST_ONLY = ("seg_test_scales", "seg_test_flip", "seg_merge", "seg_crf")


@dataclass(frozen=True)
class SegmentRequest:
    """What `--segment MODEL` asks for; a run keeps it as a dict (RunConfig.segment)."""

    model: str
    weights: str | None = None  # --seg-weights: the init
    sets: tuple[str, ...] = ()  # the seg_* --set items, in order
    epochs: int | None = None  # --epochs N: at most N passes over the training split
    checkpoint_every: int = CHECKPOINT_EVERY
    # the model's (SegModelSpec.pretrained), carried so that harness.reads can tell whether
    # --allow-random-weights is read without importing the models (no import cycle)
    pretrained: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SegmentRequest:
        return cls(**{**d, "sets": tuple(d.get("sets", ()))})

    def base_settings(self) -> SegSettings:
        from harness.segment.models import seg_model_spec

        return seg_model_spec(self.model).settings(list(self.sets))

    def settings(self, n_train: int) -> SegSettings:
        """The recipe with `--set`, its iterations bounded by --epochs over `n_train` images."""
        s = self.base_settings()
        if self.epochs is not None:
            per_step = s.seg_batch_size * s.seg_iter_size
            bound = max(1, math.ceil(self.epochs * n_train / per_step))
            s = dataclasses.replace(s, seg_iterations=min(s.seg_iterations, bound))
        return s


def request(model: str | None, weights: str | Path | None, sets: list[str], epochs: int | None,
            allow_random: bool, dataset: str) -> SegmentRequest | None:
    """Check `--segment` before anything trains: the model, its settings, its init file (random
    init only for a model that has no pretrained init, deeplab-synth, or with
    --allow-random-weights: deeplabv2 on synth is no different from deeplabv2 on VOC)."""
    own = tuple(s for s in sets if is_seg_setting(s.partition("=")[0].strip()))
    if model in (None, "", "none"):
        if own:
            raise BenchError(f"--set {own[0]}: segmentation settings need --segment MODEL")
        if weights is not None:
            raise BenchError("--seg-weights needs --segment MODEL")
        return None
    from harness.segment.models import missing_weights, seg_model_spec

    spec = seg_model_spec(model)  # an unknown model: one line now
    req = SegmentRequest(model, str(weights) if weights is not None else None, own, epochs,
                         pretrained=spec.pretrained)
    req.base_settings()  # an unknown recipe or bad value: one line now
    missing_weights(model, allow_random or not spec.pretrained,
                    Path(weights) if weights is not None else None)
    return req


def labels_key(ds: SegDataset, folder: Path) -> str:
    """The content hash of the PNGs of `ds`'s images in `folder` (other files not read)."""
    from harness.masks.pngio import mask_folder

    return files_sha256(mask_folder(Path(folder), ds.image_names))


def test_split(load: Callable[[str], SegDataset], dataset: str) -> SegDataset | None:
    """VOC test where the tree has it (ImageSets/Segmentation/test.txt), else None."""
    if dataset != "voc":
        return None
    try:
        return load("test")
    except BenchError:
        return None


def images_key(dataset: str, ds: SegDataset, root: str | None) -> dict[str, Any]:
    """Which training images, for the key: the dataset, its root, the ids (hashed)."""
    ids = hashlib.sha256("\n".join(ds.image_names).encode()).hexdigest()[:16]
    key = {"dataset": dataset, "split": ds.split, "n": len(ds), "ids": ids}
    if dataset == "synth":
        key["spec"] = ds.spec.fingerprint()
    else:
        key["root"] = str(Path(root).resolve()) if root else None
    return key


@dataclass
class SegmentJob:
    """The services a segment stage needs: a run's context provides them, as does
    `bench segment`."""

    stages: StageCache
    device: torch.device
    seed: int = 0
    log: Callable[[str], None] = print
    show_progress: bool = True
    allow_random_weights: bool = False


def train(job: SegmentJob, req: SegmentRequest, ds: SegDataset, labels: LabelFn, labels_id: str,
          images: dict[str, Any]):
    """(trained model, its settings, provenance): the cached stage, built on a miss."""
    from harness.segment.models import get_seg_model
    from harness.segment.train import train_model

    settings = req.settings(len(ds))
    fields = tuple(f.name for f in dataclasses.fields(SegSettings) if not f.name.startswith(_TEST_ONLY))
    init_sha = file_sha256(req.weights)
    spec = StageSpec("segment", fields, {"model": req.model, "labels": labels_id, "init_sha256": init_sha,
                                         "images": images, "seed": job.seed})
    key = spec.key(settings)
    made: list = []

    def make():  # inside the build, the init draws from the stage's own seed (harness/cache.py)
        made.append(get_seg_model(req.model)(len(ds.class_names) + 1, settings, req.weights))
        return made[-1]

    def build(out: Path) -> None:
        model = make()
        pairs = TrainPairs(ds, labels, settings, job.seed)
        partial = job.stages.partial_dir(spec.name, key)
        losses = train_model(model, pairs, settings, job.device, partial, req.checkpoint_every,
                             job.log, job.show_progress)
        torch.save(model.state_dict(), out / MODEL_FILE)
        (out / CURVE_FILE).write_text(json.dumps(losses))

    with in_stage("segment"):
        folder, key = job.stages.get_or_build(spec.name, spec.deps(settings), build)
    model = made[-1] if made else make()
    model.load_state_dict(StageCache.load(folder, MODEL_FILE))
    prov = {"model": req.model, "recipe": settings.seg_recipe, "loss": settings.seg_loss,
            "init": req.weights or "random", "init_sha256": init_sha,
            "weights_sha256": file_sha256(folder / MODEL_FILE), "labels": labels_id,
            "iterations": settings.seg_iterations, "stage_key": key,
            "settings": settings.to_dict()}
    return model.to(job.device), settings, prov


def evaluate(job: SegmentJob, model, settings: SegSettings, val: SegDataset,
             out: Path | None = None) -> dict[str, Any]:
    """seg_miou (per class with precision and recall) on `val`, seg_miou_crf where the CRF ran;
    each prediction written to `out` as a VOC-layout PNG (`<image>.png`)."""
    from harness.masks.pngio import write_mask
    from harness.segment.infer import iter_predictions, score_predictions

    items = ((val.image_names[i], val.image(i), val.mask(i)) for i in range(len(val)))
    preds = iter_predictions(model, items, settings, job.device)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    def written():
        for p in preds:
            if out is not None:
                write_mask(out, p.image_id, p.label)
            yield p

    with in_stage("segmentation inference"):
        return score_predictions(written(), val.class_names)


def submission(job: SegmentJob, model, settings: SegSettings, test: SegDataset, out: Path) -> Path:
    """VOC test's predictions in the evaluation server's layout, packed (harness/segment/
    submission.py); the CRF's labels where the recipe runs it, as CLIMS submits them."""
    from harness.segment.infer import iter_predictions
    from harness.segment.submission import write_submission

    items = ((test.image_names[i], test.image(i), None) for i in range(len(test)))
    with in_stage("segmentation inference (test)"):
        preds = iter_predictions(model, items, settings, job.device)
        return write_submission(out, ((p.image_id, p.label if p.label_crf is None else p.label_crf)
                                      for p in preds))


def segment(job: SegmentJob, req: SegmentRequest, train_ds: SegDataset, labels: LabelFn,
            labels_id: str, images: dict[str, Any], val: SegDataset,
            out: Path | None = None, test: SegDataset | None = None) -> tuple[dict[str, Any], dict]:
    """Train on (train_ds, labels), score on `val` → (the record's seg_* fields, the stage's
    provenance: model, recipe, loss, init and weights SHA-256); predictions into `out`, and a
    `test` split (no ground truth: VOC test) as the evaluation server's submission there."""
    model, settings, prov = train(job, req, train_ds, labels, labels_id, images)
    scores = evaluate(job, model, settings, val, out)
    prov.update(val_split=val.split, val_images=len(val), test_scales=list(settings.test_scales),
                test_flip=settings.seg_test_flip, merge=settings.seg_merge, crf=settings.seg_crf)
    line = f"segmentation ({req.model}, {prov['recipe']}): seg mIoU {scores['seg_miou']:.2f} on {val.split}"
    if "seg_miou_crf" in scores:
        line += f", +CRF {scores['seg_miou_crf']:.2f}"
    job.log(line)
    if test is not None and out is not None:
        # relative to the run folder, which is renamed from .inprogress-… once the run ends
        packed = submission(job, model, settings, test, out / "submission")
        prov["submission"] = str(packed.relative_to(out.parent))
        job.log(f"VOC test submission ({len(test)} images, comp5): {prov['submission']} in the "
                "run folder — upload it to the PASCAL VOC evaluation server")
    return scores, prov
