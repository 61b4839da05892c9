"""`bench report --run ID --worst N`: the images a run breaks on, from its images.jsonl."""

from __future__ import annotations

from pathlib import Path

from harness.per_image import read, worst
from harness.record import RunRecord


def run_folder(records: list[RunRecord], run_id: str, root: Path) -> tuple[RunRecord, Path]:
    """The record and folder of the run `run_id` names (an id or a unique prefix)."""
    from reports.per_class import select_runs

    rec = select_runs(records, [run_id])[0]
    return rec, Path(root) / rec.run_id


def worst_lines(rec: RunRecord, folder: Path, n: int) -> list[str]:
    """A heading, then one line per image: rank, name, mIoU at the run's t, its own best t,
    and its per-class IoU (background first)."""
    rows = worst(read(folder), n)
    t = rec.best_threshold
    lines = [f"the {len(rows)} worst images of {rec.run_id} (mIoU at the run's t = {t}; "
             "best t: the threshold that suits the image best)"]
    width = max((len(r["image"]) for r in rows), default=5)
    for rank, r in enumerate(rows, 1):
        classes = ", ".join(f"{c} {v:.1f}" for c, v in r["per_class_iou"].items())
        lines.append(f"{rank:>3}. {r['image']:<{width}}  mIoU {r['miou']:5.1f}  best t "
                     f"{r['best_t']:.2f} ({r['miou_at_best_t']:5.1f})  IoU: {classes}")
    return lines
