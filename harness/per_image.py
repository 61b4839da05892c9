"""Per-image results (`images.jsonl` beside `result.json`, as lm-eval's --log_samples): one
line per evaluated image with its per-class IoU at the run's best threshold, its own mIoU
there and the threshold that would have suited it best, so a user can find the images a
method breaks on (`bench report --run ID --worst 10`).

An image's IoUs come from the same binned counts the split's confusion matrix sums
(harness/evaluate.py), kept at the report thresholds only: a few kB per image, not the
counts themselves (VOC's would be ~0.4 MB an image).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from harness.evaluate import Counts, SeedEvaluator, iou_from_confusion

FILE = "images.jsonl"


class ImageLog:
    """Collects each image's per-class IoU at every report threshold of `ev`."""

    def __init__(self, ev: SeedEvaluator):
        self.class_names = ev.names  # background first
        self.thresholds = ev.report_thresholds
        self._columns = [ev.thresholds.index(t) for t in self.thresholds]
        self.names: list[str] = []
        self.ious: list[np.ndarray] = []  # (n report thresholds, n classes) each, NaN = absent

    def add(self, name: str, counts: Counts) -> None:
        confs = counts.confusions()[self._columns]
        self.names.append(name)
        self.ious.append(np.stack([iou_from_confusion(c) for c in confs]).astype(np.float32))

    def rows(self, best_threshold: float) -> list[dict[str, Any]]:
        """One dict per image: its per-class IoU (%) and mIoU at the run's `best_threshold`,
        and its own best t (the first of the sweep on ties, as the split's)."""
        col = self.thresholds.index(best_threshold)
        out = []
        for name, ious in zip(self.names, self.ious, strict=True):
            with warnings.catch_warnings():  # an image with no pixel scored: all NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                by_t = np.nanmean(ious, 1)
            own = int(np.nanargmax(by_t)) if not np.isnan(by_t).all() else col
            out.append({
                "image": name, "miou": _pct(by_t[col]),
                "per_class_iou": {c: _pct(v) for c, v in zip(self.class_names, ious[col],
                                                              strict=True) if not np.isnan(v)},
                "best_t": self.thresholds[own], "miou_at_best_t": _pct(by_t[own])})
        return out

    def write(self, path: Path, best_threshold: float) -> Path:
        with open(path, "w") as fh:
            for row in self.rows(best_threshold):
                fh.write(json.dumps(row) + "\n")
        return path


def _pct(x: float) -> float | None:
    return None if np.isnan(x) else round(float(x) * 100, 4)


def read(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of a run folder's images.jsonl (BenchError when the run has none)."""
    from harness.errors import BenchError

    path = Path(run_dir) / FILE
    if not path.is_file():
        raise BenchError(f"{run_dir.name} has no {FILE} (a run recorded before per-image "
                         "results existed): run it again, e.g. bench run --from "
                         f"{run_dir.name}")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def worst(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The n images with the lowest mIoU at the run's threshold (ties: by name)."""
    scored = [r for r in rows if r["miou"] is not None]
    return sorted(scored, key=lambda r: (r["miou"], r["image"]))[:n]
