"""The final-segmentation table (`bench report --table final`): SemPLeS Tables 2–3 and QA-CLIMS
Tables 2–3, a segmentation model trained on each method's pseudo masks (and on the ground
truth: the FS rows), the published VOC val / VOC test / COCO val mIoU beside the measured
`seg_miou` of the results store. Rows are declared in the families' paper.py
(`FamilyPaper.final_row`); `bench reproduce final` runs the missing cells.

A cell is the records of the row's variant (FS: `bench segment --masks gt`, variant
`segment/gt`) on the dataset whose segment stage used the row's model. VOC test has no ground
truth: its column is published only (the evaluation server scores it).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from methods.papers import FinalRow, final_rows
from reports.render import num

NAME = "final"
TITLE = "Final segmentation (SemPLeS Tables 2–3, QA-CLIMS Tables 2–3)"
FS_VARIANT = "segment/gt"
COLUMNS = ["row", "model", "source", "val", "test", "coco", "n", "mean", "std", "published",
           "delta", "command"]


def published(row: FinalRow, dataset: str) -> float | None:
    """The published number the measured seg mIoU compares with (VOC val, COCO val)."""
    return {"voc": row.val, "coco": row.coco}.get(dataset)


def cell(records: list[dict[str, Any]], row: FinalRow, dataset: str) -> dict[int, dict[str, Any]]:
    """seed → the latest ok record of this row (variant, dataset, segmentation model)."""
    variant = row.variant or FS_VARIANT
    out: dict[int, dict[str, Any]] = {}
    for rec in records:
        seg = (rec.get("provenance") or {}).get("segment") or {}
        if (rec.get("status", "ok") != "ok" or rec.get("variant") != variant
                or rec.get("dataset") != dataset or seg.get("model") != row.model
                or rec.get("seg_miou") is None):
            continue
        seed = int(rec.get("seed", 0))
        if seed not in out or str(rec.get("finished_at", "")) >= str(out[seed].get("finished_at", "")):
            out[seed] = rec
    return out


def command(row: FinalRow, dataset: str) -> str:
    """The command that fills this row's cell."""
    if row.supervised:
        return f"bench segment --masks gt --dataset {dataset} --segment {row.model}"
    return f"bench run {row.variant} --dataset {dataset} --segment {row.model}"


def compile_final(records: list[dict[str, Any]], dataset: str = "voc") -> pd.DataFrame:
    rows = []
    for row in final_rows():
        values = [float(r["seg_miou"]) for r in cell(records, row, dataset).values()]
        mean = statistics.fmean(values) if values else None
        std = statistics.stdev(values) if len(values) > 1 else (0.0 if values else None)
        pub = published(row, dataset)
        rows.append({"row": row.label, "model": row.model, "source": row.source, "val": row.val,
                     "test": row.test, "coco": row.coco, "n": len(values), "mean": mean, "std": std,
                     "published": pub,
                     "delta": mean - pub if mean is not None and pub is not None else None,
                     "command": "" if values else command(row, dataset)})
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs.update(name=NAME, title=TITLE, dataset=dataset)
    return df


TWO = "{:.2f}"  # the measured seg mIoU and its Δ, as the papers print them


def lines(df: pd.DataFrame) -> list[str]:
    """The table as Markdown lines (the terminal prints them as they are)."""
    ds = df.attrs.get("dataset", "voc")
    out = [f"{TITLE} — measured: seg mIoU on {ds} val", "",
           "| row | seg. model | source | VOC val | VOC test | COCO val | measured (n) | Δ |",
           "|---|---|---|---|---|---|---|---|"]
    for r in df.to_dict("records"):
        measured = (f"{num(r['mean'], TWO)} ± {num(r['std'], TWO)} ({r['n']})" if r["n"]
                    else f"no runs: `{r['command']}`")
        out.append(f"| {r['row']} | {r['model']} | {r['source']} | {num(r['val'])} | "
                   f"{num(r['test'])} | {num(r['coco'])} | {measured} | {num(r['delta'], TWO)} |")
    out += ["", "VOC test is published only: it has no public ground truth (bench segment writes "
            "the evaluation server's submission). FS rows: the same model trained on the ground "
            "truth (bench segment --masks gt), the positive control."]
    return out


def render(df: pd.DataFrame, fmt: str) -> str:
    if fmt == "csv":
        return df.to_csv(index=False)
    return "\n".join(lines(df)) + "\n"


def missing(records: list[dict[str, Any]], dataset: str, seeds: list[int]) -> list[tuple[FinalRow, int]]:
    """(row, seed) of every cell without a record whose model is registered."""
    from harness.segment.models import seg_model_names

    known = set(seg_model_names())
    return [(row, s) for row in final_rows() if row.model in known
            and (dataset != "coco" or row.coco is not None)
            for s in seeds if s not in cell(records, row, dataset)]


def reproduce_final(dataset: str, seeds: list[int], sets: list[str], epochs: int | None, options,
                    device: str, log: Callable[[str], None], dry_run: bool = False) -> dict[str, list]:
    """Run the missing cells one after another: `bench run VARIANT --segment MODEL`, or
    `bench segment --masks gt` for the FS rows."""
    from harness.errors import BenchError
    from harness.runner import resolve_device, run_variant
    from harness.segment.masks_run import segment_masks

    out: dict[str, list] = {"ran": [], "failed": [], "skipped": []}
    device = resolve_device(device)
    todo = missing(store_records(options.runs_dir), dataset, seeds)
    for row, seed in todo:
        name = f"{row.label} seed {seed}"
        log(f"{'would run' if dry_run else 'running'}: {command(row, dataset)} --seed {seed}")
        if dry_run:
            out["skipped"].append(name)
            continue
        kw = options.run_kwargs()
        try:
            if row.supervised:
                segment_masks("gt", row.model, dataset, seed, sets, epochs, device,
                              kw["data_root"], kw["seg_weights"], kw["allow_random_weights"],
                              kw["runs_dir"], kw["cache_dir"], log=log)
            else:
                run_variant(row.variant, dataset, seed, sets, epochs, device,
                            **{**kw, "segment": row.model}, log=log)
            out["ran"].append(name)
        except BenchError as exc:
            log(f"failed: {name}: {exc}")
            out["failed"].append(name)
    return out


def store_records(runs_dir: Path | None) -> list[dict[str, Any]]:
    """The results store's ok records, as plain dicts (the seg_* fields sit in `extra`)."""
    from harness.store import ResultsStore

    return [r.to_dict() for r in ResultsStore(runs_dir).records()]


def seed_list(seeds: int | tuple[int, ...]) -> list[int]:
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)
