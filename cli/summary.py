"""What `bench run` and `bench eval` print: seed mIoU best / fixed / held-out t, context_fp
at matched recall with its controls, and per-class IoU, precision, recall, FP and FN."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.oserrors import save_figure
from harness.text import shown


def print_summary(record: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    head = _scores_table(record, f"{record['variant']} on {record['dataset']} (seed {record['seed']})")
    head.add_row("wall time", f"{record['wall_s']:.1f} s on {record['device']}")
    head.add_row("run", record["path"])
    console.print(head)
    console.print(per_class_table(record))
    if record.get("mask_miou") is not None:
        prov = record.get("mask_provenance") or {}
        console.print(_mask_table(record, f"pseudo masks ({prov.get('pipeline', '?')}), "
                                          f"{record['path']}/masks"))


def print_mask_eval(record: dict[str, Any], title: str, console: Console | None = None) -> None:
    console = console or Console()
    console.print(_mask_table(record, title))
    console.print(per_class_table({"per_class": record["mask_per_class"]},
                                  "pseudo masks per class (FP, FN / union)"))


def _mask_table(record: dict[str, Any], title: str) -> Table:
    head = Table(title=title, show_header=False)
    head.add_row("mask mIoU", shown(record.get("mask_miou")))
    head.add_row("background leak", shown(record.get("mask_background_leak"), unit=" %") +
                 "  (foreground labels on background)")
    if record.get("mask_context_fp") is not None:
        head.add_row("context_fp of the masks", shown(record.get("mask_context_fp"), unit=" %") +
                     "  (co-occurring context labelled as the class)")
        head.add_row("  negative control", shown(record.get("mask_context_fp_negative"), unit=" %"))
    return head


def print_eval(record: dict[str, Any], title: str, console: Console | None = None) -> None:
    console = console or Console()
    console.print(_scores_table(record, title))
    console.print(per_class_table(record))


def _scores_table(record: dict[str, Any], title: str) -> Table:
    head = Table(title=title, show_header=False)
    head.add_row("seed mIoU (best t on eval GT)",
                 f"{record['seed_miou']:.2f}  (t = {record['best_threshold']:.2f})")
    head.add_row("seed mIoU (fixed t)",
                 f"{record['seed_miou_fixed']:.2f}  (t = {record['fixed_threshold']:.2f})")
    if record.get("seed_miou_heldout") is not None:
        split = (record.get("provenance") or {}).get("threshold_rule", {}).get("seed_miou_heldout", "")
        head.add_row("seed mIoU (t from held-out split)",
                     f"{record['seed_miou_heldout']:.2f}  (t = {record['threshold_heldout']:.2f}; {split})")
    head.add_row("background leak", shown(record.get("background_leak"), unit=" %") +
                 "  (foreground predictions on background, at best t)")
    if record.get("context_fp") is not None or record.get("dead_classes"):
        head.add_row("context_fp (60 % recall)", shown(record.get("context_fp"), unit=" %") +
                     "  (co-occurring context labelled as the class)")
        head.add_row("  negative control", shown(record.get("context_fp_negative"), unit=" %") +
                     "  (other context, same thresholds)")
        head.add_row("  at best t (old figure)", shown(record.get("context_fp_best_t"), unit=" %"))
        head.add_row("  dead classes (< 60 % recall)", ", ".join(record.get("dead_classes") or [])
                     or "none")
        head.add_row("oracle (co-occurring ctx zeroed)",
                     f"mIoU {shown(record.get('oracle_seed_miou'))}, context_fp "
                     f"{shown(record.get('oracle_context_fp'), unit=' %')}")
    return head


def per_class_table(record: dict[str, Any], title: str | None = None) -> Table:
    table = Table(title=title or f"per class at t = {record['best_threshold']:.2f} (FP, FN / union)")
    for col in ("class", "IoU", "precision", "recall", "FP", "FN"):
        table.add_column(col, justify="left" if col == "class" else "right")
    per_class = record.get("per_class") or {
        k: {"iou": v} for k, v in record["per_class_iou"].items()}
    for name, row in per_class.items():
        table.add_row(name, *(shown(row.get(k)) for k in ("iou", "precision", "recall", "fp", "fn")))
    return table


def write_pr_plot(record: dict[str, Any], path: Path, title: str) -> None:
    """A grouped bar chart of per-class precision and recall, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(record["per_class"])
    prec = [record["per_class"][n]["precision"] or 0.0 for n in names]
    rec = [record["per_class"][n]["recall"] or 0.0 for n in names]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(names) + 2), 4))
    ax.bar(x - 0.2, prec, 0.4, label="precision")
    ax.bar(x + 0.2, rec, 0.4, label="recall")
    ax.set_xticks(x, names, rotation=60, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    t = record.get("best_threshold")  # None: a mean over runs with their own t
    ax.set_title(title if t is None else f"{title}, t = {t:.2f}")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, "plot", dpi=100)
    plt.close(fig)
