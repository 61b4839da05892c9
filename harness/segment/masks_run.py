"""`bench segment --masks DIR|gt`: the segment stage on any folder of pseudo-mask PNGs of the
training split (the authors' released masks, another repository's, ours), or on the ground
truth (`gt`: the fully supervised upper bound, the papers' FS rows), recorded in the results
store as a run of method `segment` (variant `segment/gt` or `segment/masks`)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from harness import package_version
from harness.cache import StageCache
from harness.config import MethodConfig, parse_sets
from harness.data import default_cache_dir, load_dataset
from harness.environment import fingerprint
from harness.errors import BenchError
from harness.method import data_options
from harness.record import SCHEMA_VERSION
from harness.segment.data import folder_labels, gt_labels, val_split
from harness.segment.settings import is_seg_setting
from harness.segment.stage import SegmentJob, images_key, labels_key, request, segment, test_split
from harness.store import ResultsStore, git_revision

GT = "gt"


def segment_masks(masks: str | Path, model: str, dataset: str = "synth", seed: int = 0,
                  sets: list[str] = (), epochs: int | None = None, device: str = "cpu",
                  data_root: str | Path | None = None, seg_weights: str | Path | None = None,
                  allow_random_weights: bool = False, runs_dir: Path | None = None,
                  cache_dir: Path | None = None, log=print, show_progress: bool = True) -> dict[str, Any]:
    """Train `model` on the masks, score it on the dataset's val split, store the record."""
    req = request(model, seg_weights, list(sets), epochs, allow_random_weights, dataset)
    if req is None:
        raise BenchError("bench segment needs --segment MODEL (e.g. deeplabv2)")
    # read only by a model with a pretrained init (reads.RANDOM_WEIGHTS): dropped, not recorded
    allow_random_weights = allow_random_weights and req.pretrained
    # the data's own settings (limit, synth's size and counts) are the method settings' fields
    data_sets = [s for s in sets if not is_seg_setting(s.partition("=")[0].strip())]
    params = MethodConfig(**parse_sets(MethodConfig, data_sets)).validate()
    cache = Path(cache_dir or default_cache_dir())
    root = str(data_root) if data_root else None
    opts = data_options(dataset, params, cache, root, seed)
    train, val = (load_dataset(dataset, split, **opts) for split in ("train", val_split(dataset)))
    if str(masks) == GT:
        labels, labels_id = gt_labels(train, dataset, root), GT
    else:
        labels, labels_id = folder_labels(train, Path(masks)), labels_key(train, Path(masks))
    t0, store = time.time(), ResultsStore(runs_dir)
    run_dir = store.begin("segment", f"segment/{'gt' if labels_id == GT else 'masks'}", seed)
    job = SegmentJob(StageCache(cache, log=log), torch.device(device), seed, log, show_progress,
                     allow_random_weights)
    try:
        test = test_split(lambda split: load_dataset(dataset, split, **opts), dataset)
        scores, prov = segment(job, req, train, labels, labels_id, images_key(dataset, train, root), val,
                               run_dir.path / "seg", test)
    except BaseException:
        run_dir.discard()
        raise
    record = {"schema_version": SCHEMA_VERSION, "run_id": run_dir.run_id, "method": "segment",
              "variant": f"segment/{'gt' if labels_id == GT else 'masks'}", "dataset": dataset,
              "seed": seed, "masks": str(masks), "hparams": {}, "device": device, "status": "ok",
              "error": None, "git_rev": git_revision(), "package_version": package_version(),
              "environment": fingerprint(), "host": platform.node(), "pid": os.getpid(),
              "allow_random_weights": allow_random_weights, "stage_epochs": (
                  {"segment": epochs} if epochs is not None else {}),
              **scores, "provenance": {"segment": prov},
              "stage_cache": {"hits": job.stages.hits, "misses": job.stages.misses},
              "wall_s": round(time.time() - t0, 2),
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    record["path"] = str(run_dir.finish(record))
    return record  # as stored (harness.record.RunRecord keeps the seg_* fields in `extra`)
