"""The summary every run prints: seed mIoU best/fixed, per-class IoU, context_fp, time."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_summary(record: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    head = Table(title=f"{record['variant']} on {record['dataset']} (seed {record['seed']})",
                 show_header=False)
    head.add_row("seed mIoU (best t)", f"{record['seed_miou']:.2f}  (t = {record['best_threshold']:.2f})")
    head.add_row("seed mIoU (fixed t)",
                 f"{record['seed_miou_fixed']:.2f}  (t = {record['fixed_threshold']:.2f})")
    if record.get("context_fp") is not None:
        head.add_row("context_fp",
                     f"{record['context_fp']:.2f} %  (co-occurring context labelled as the class)")
    head.add_row("wall time", f"{record['wall_s']:.1f} s on {record['device']}")
    head.add_row("run", record["path"])
    console.print(head)
    ious = Table(title="per-class IoU (best t)")
    for name in record["per_class_iou"]:
        ious.add_column(name, justify="right")
    ious.add_row(*(f"{v:.1f}" for v in record["per_class_iou"].values()))
    console.print(ious)
