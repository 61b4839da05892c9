"""A table definition + the results store → one pandas DataFrame: measured mean ± std over
all (seed, teacher_seed) pairs, n, published value, Δ to published, the paired Δ to the
table's reference row with its 95 % CI (seed mIoU and context_fp), the controls (oracle
row, negative-control FP), dead classes, threshold rule and split, and for a missing cell
the exact `bench run …` command that fills it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness.config import split_sets
from harness.environment import mixed_line
from harness.errors import BenchError
from harness.record import RunRecord, to_record
from reports import get_table, protocol
from reports.protocol import HELDOUT_SPLIT, THRESHOLD_FIELDS, THRESHOLD_RULES
from reports.provenance import column_mismatch, recorded_rules, split_text
from reports.selection import (  # noqa: F401
    CellSelection,
    PairKey,
    Seeds,
    check_threshold,
    parse_seeds,
    seed_values,
    wanted_pairs,
)
from reports.stats import PairedDelta, paired_delta
from reports.tables import Row, Table

COLUMNS = ["row", "variant", "settings", "n", "mean", "std", "published", "delta", "source",
           "context_fp", "command", "note",
           # paired Δ to the reference row: seed mIoU, then context_fp
           "reference", "ref_n", "ref_delta", "ref_low", "ref_high", "ref_mark", "ref_pairs",
           "fp_ref_n", "fp_ref_delta", "fp_ref_low", "fp_ref_high", "fp_ref_mark",
           "context_fp_negative", "dead_classes", "threshold", "split"]
# tables with a Mask column (the pseudo masks): the same records' mask_miou
MASK_COLUMNS = ["mask_n", "mask_mean", "mask_std", "mask_published", "mask_delta", "mask_ref_n",
           "mask_ref_delta", "mask_ref_low", "mask_ref_high", "mask_ref_mark", "mask_context_fp"]
MASK_METRIC = "mask_miou"
METRIC = "seed_miou"
Cell = dict[PairKey, RunRecord]  # one cell's records, by pair





def reference_label(dataset: str) -> str:
    """Every published number is a PASCAL VOC 2012 number; elsewhere it is a reference."""
    return "" if dataset == "voc" else "VOC, for reference"


def expected_params(variant: str, dataset: str, sets: list[str],
                    epochs: int | None = None) -> dict[str, Any] | None:
    """The full resolved settings a run of this cell has, or None where the variant is not
    registered (yet) or does not resolve: then cells match on variant + their own settings."""
    try:
        from harness.runner import resolve_config

        return resolve_config(variant, dataset, 0, list(sets), epochs, device="cpu").params.to_dict()
    except Exception:
        return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, str) and isinstance(b, int | float):
        try:
            return math.isclose(float(a), b, rel_tol=1e-9, abs_tol=1e-12)
        except ValueError:
            return False
    return a == b or str(a) == str(b)


def matches(rec: RunRecord, row: Row, dataset: str, sets: list[str] = (),
            expected: dict[str, Any] | None = None) -> bool:
    """Does this result record measure this cell? With `expected` (the resolved settings),
    every setting must agree, so a smoke run or another sweep's run never pollutes a cell."""
    if rec.variant != row.variant or rec.dataset != dataset:
        return False
    params = rec.params()
    wanted = expected if expected is not None else {**row.hparams, **split_sets(list(sets))}
    for key, value in wanted.items():
        if key not in params:
            if expected is not None:
                continue  # a setting added after this run was recorded
            return False
        if not _same(params[key], value):
            return False
    return True


def pair_key(rec: RunRecord) -> PairKey:
    """A record's place on the two seed axes; records from before `teacher_seed` existed
    used teacher seed 0 (the default)."""
    return int(rec.seed), int(rec.params().get("teacher_seed", 0))


def metric_field(row: Row, threshold: str = "best") -> str:
    """The record field that is this row's seed mIoU under the --threshold rule."""
    check_threshold(threshold)
    return "oracle_seed_miou" if row.control == "oracle" else THRESHOLD_RULES[threshold][0]


def fp_field(row: Row) -> str:
    return "oracle_context_fp" if row.control == "oracle" else "context_fp"


def cell_records(records: Sequence[RunRecord | dict[str, Any]], row: Row, dataset: str,
                 sets: list[str] = (), epochs: int | None = None, strict: bool = True,
                 metric: str = METRIC) -> Cell:
    """(seed, teacher_seed) → the latest ok record of this cell that has `metric`."""
    expected = expected_params(row.variant, dataset, row.sets() + list(sets), epochs) \
        if strict else None
    if expected is not None and "teacher_seed" not in split_sets(list(sets)):
        expected.pop("teacher_seed", None)  # a seed axis, not a setting of the cell
    if expected is None and epochs is not None:
        sets = [*sets, f"epochs={epochs}"]
    by_pair: Cell = {}
    for rec in map(to_record, records):
        if not rec.ok or rec.metric(metric) is None:
            continue
        if not matches(rec, row, dataset, sets, expected):
            continue
        key = pair_key(rec)
        old = by_pair.get(key)
        if old is None or rec.finished_at >= old.finished_at:
            by_pair[key] = rec
    return by_pair


def only_listed(cell: Cell, seeds: Seeds, teacher_seeds: Seeds
                ) -> Cell:
    """A count keeps every pair the store has; a list keeps only the listed seeds."""
    keep_s = None if isinstance(seeds, int) else set(seed_values(seeds))
    keep_t = None if isinstance(teacher_seeds, int) else set(seed_values(teacher_seeds))
    return {k: r for k, r in cell.items()
            if (keep_s is None or k[0] in keep_s) and (keep_t is None or k[1] in keep_t)}


def teacher_axis(teacher_seeds: Seeds) -> bool:
    """Does the table run other teachers than the default (then commands name it)?"""
    return seed_values(teacher_seeds) != [0]


def run_command(row: Row, dataset: str, missing: list[PairKey], sets: list[str] = (),
                epochs: int | None = None, runs_dir: Path | str | None = None,
                teacher_axis: bool = False, threshold: str = "best") -> str:
    """The exact `bench run …` command(s) that fill the missing (seed, teacher_seed) pairs
    of a cell; `--set teacher_seed=` appears where the table runs more than one teacher,
    `--threshold-split` where the table shows the held-out seed mIoU."""
    by_teacher: dict[int, list[int]] = {}
    for seed, teacher in missing:
        by_teacher.setdefault(teacher, []).append(seed)
    base = ["bench run", row.variant, f"--dataset {dataset}", "SEED"]
    base += [f"--set {s}" for s in [*row.sets(), *sets]]
    base += [x for x in ("TEACHER",) if teacher_axis or set(by_teacher) != {0}]
    base += ([f"--epochs {epochs}"] if epochs is not None else [])
    base += ([f"--threshold-split {HELDOUT_SPLIT}"] if threshold == "heldout" else [])
    base += ([f"--runs-dir {runs_dir}"] if runs_dir is not None else [])
    seed_lists = {tuple(v) for v in by_teacher.values()}
    if len(by_teacher) > 1 and len(seed_lists) == 1:
        inner = _seed_loop(base, list(seed_lists.pop()), "$t")
        return f"for t in {' '.join(map(str, by_teacher))}; do {inner}; done"
    return "; ".join(_seed_loop(base, seeds, str(t)) for t, seeds in by_teacher.items())


def _seed_loop(base: list[str], seeds: list[int], teacher: str) -> str:
    one = len(seeds) == 1
    words = [{"SEED": f"--seed {seeds[0] if one else '$s'}",
              "TEACHER": f"--set teacher_seed={teacher}"}.get(w, w) for w in base]
    cmd = " ".join(words)
    return cmd if one else f"for s in {' '.join(map(str, seeds))}; do {cmd}; done"


def compile_table(table: Table | str, records: Sequence[RunRecord | dict[str, Any]] | None = None,
                  runs_dir: Path | str | None = None, select: CellSelection | None = None,
                  **fields: Any) -> pd.DataFrame:
    """The table as a DataFrame (one row per table row, columns `COLUMNS`), its cells as
    `select` selects them (or a CellSelection of `fields`); cells short of their pairs carry
    the command for the rest. `records` None: the results store's at `runs_dir`."""
    select = select or CellSelection(**fields)
    dataset, threshold = select.dataset, select.threshold
    if isinstance(table, str):
        table = get_table(table)
    if records is None:
        from harness.store import ResultsStore

        store = ResultsStore(runs_dir)
        records = store.records()
        skipped = len(store.skipped)
    else:
        skipped = 0
    cells, mismatch = row_cells(table.rows, records, select)
    out = []
    for row, cell in zip(table.rows, cells, strict=True):
        ref = table.reference_of(row)
        ref_cell = cells[table.rows.index(ref)] if ref is not None else {}
        # a control row is read from its variant's runs, which exist only on synth
        missing = select.missing(cell) if dataset == "synth" or not row.control \
            else []
        out.append({
            **_measured(row, cell, threshold, dataset),
            **_paired_columns(row, ref, cell, ref_cell, threshold),
            **(_mask_columns(row, ref, cell, ref_cell) if table.masks else {}),
            "command": run_command(row, dataset, missing, list(select.sets), select.epochs,
                                   runs_dir, teacher_axis(select.teacher_seeds), threshold)
            if missing else "",
        })
    df = pd.DataFrame(out, columns=COLUMNS + (MASK_COLUMNS if table.masks else []))
    df.attrs.update(table=table.name, title=table.title, dataset=dataset,
                    reference=reference_label(dataset), reference_rows=table.reference_text(),
                    per_class=_per_class(table, cells), x=table.x, x_label=table.x_label,
                    x_values=[row.hparams.get(table.x) for row in table.rows] if table.x else [],
                    threshold=threshold, provenance_warning=mismatch,
                    threshold_recorded=recorded_rules(
                        [rec for row, cell in zip(table.rows, cells, strict=True)
                         if not row.control for rec in cell.values()],
                        THRESHOLD_RULES[threshold][0]),
                    skipped_records=skipped,
                    environment_warning=mixed_line([rec for cell in cells for rec in cell.values()]),
                    noise_miou=protocol.NOOP_NOISE_MIOU,
                    noise_context_fp=protocol.NOOP_NOISE_CONTEXT_FP)
    return df


def row_cells(rows: Sequence[Row], records: Sequence[RunRecord | dict[str, Any]],
              select: CellSelection) -> tuple[list[Cell], str]:
    """Each row's cell (pair → record, only the listed seeds) and the provenance mismatch
    line across them; a mismatch is refused unless `mixed_provenance` (then returned)."""
    s = select
    cells = [only_listed(cell_records(records, row, s.dataset, list(s.sets), s.epochs, s.strict,
                                      metric_field(row, s.threshold)), s.seeds, s.teacher_seeds)
             for row in rows]
    mismatch = column_mismatch([(row.label, key[1], rec) for row, cell in zip(rows, cells, strict=True)
                                for key, rec in cell.items()], THRESHOLD_RULES[s.threshold][0])
    if mismatch and not s.mixed_provenance:
        raise BenchError(f"{mismatch}; pass --mixed-provenance to show them anyway, flagged")
    return cells, mismatch


def _mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n if n else math.nan
    return mean, (math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan)


def _field_mean(cell: Cell, name: str) -> float:
    values = [float(v) for r in cell.values() if (v := r.metric(name)) is not None]
    return sum(values) / len(values) if values else math.nan


def _measured(row: Row, cell: Cell, threshold: str,
              dataset: str) -> dict[str, Any]:
    """Mean ± std over all the cell's pairs, Δ to published, controls and provenance."""
    mean, std = _mean_std([float(r.metric(metric_field(row, threshold))) for r in cell.values()])
    pub, ref = row.published.value, reference_label(dataset)
    return {
        "row": row.label, "variant": row.variant, "settings": row.settings, "n": len(cell),
        "mean": mean, "std": std, "published": math.nan if pub is None else pub,
        "delta": mean - pub if (cell and pub is not None) else math.nan,
        "source": row.published.source + (f" ({ref})" if ref else ""),
        "context_fp": _field_mean(cell, fp_field(row)), "note": row.published.note,
        "context_fp_negative": math.nan if row.control else
        _field_mean(cell, "context_fp_negative"),
        "dead_classes": _dead_classes(row, cell), "threshold": _threshold_text(row, cell, threshold),
        "split": split_text(list(cell.values())),
    }


def _paired_columns(row: Row, ref: Row | None, cell: Cell,
                    ref_cell: Cell, threshold: str) -> dict[str, Any]:
    """Paired Δ (this row − reference row) of seed mIoU and of context_fp over the pairs
    both measured; the reference row itself gets none."""
    blank = {"reference": ref.label if ref else "", "ref_pairs": "", "ref_mark": "",
             "fp_ref_mark": ""}
    for prefix in ("ref", "fp_ref"):
        blank.update({f"{prefix}_n": 0, f"{prefix}_delta": math.nan, f"{prefix}_low": math.nan,
                      f"{prefix}_high": math.nan})
    if ref is None or ref is row:
        return blank
    # the oracle is scored at its own best t, so it is compared with the reference's best t
    ref_rule = "best" if row.control == "oracle" else threshold
    mine = cell_values(cell, metric_field(row, threshold))
    delta = paired_delta(mine, cell_values(ref_cell, metric_field(ref, ref_rule)))
    fp = paired_delta(cell_values(cell, fp_field(row)), cell_values(ref_cell, fp_field(ref)))
    out = {**blank, **_delta_columns("ref", delta, protocol.NOOP_NOISE_MIOU),
           **_delta_columns("fp_ref", fp, protocol.NOOP_NOISE_CONTEXT_FP)}
    if delta is not None:
        out["ref_pairs"] = " ".join(f"{s}/{t}" for s, t in delta.pairs)
    return out


def _mask_columns(row: Row, ref: Row | None, cell: Cell,
                  ref_cell: Cell) -> dict[str, Any]:
    """The Mask column: the cell's runs that made pseudo masks (`--masks`), mean ± std of their
    mask mIoU, Δ to the published Mask value, paired Δ to the reference row's masks."""
    mine = cell_values(cell, MASK_METRIC)
    mean, std = _mean_std(list(mine.values()))
    pub = row.mask.value if row.mask is not None else None
    out: dict[str, Any] = {
        "mask_n": len(mine), "mask_mean": mean, "mask_std": std,
        "mask_published": math.nan if pub is None else pub,
        "mask_delta": mean - pub if (mine and pub is not None) else math.nan,
        "mask_context_fp": _field_mean(cell, "mask_context_fp"),
        "mask_ref_n": 0, "mask_ref_delta": math.nan, "mask_ref_low": math.nan,
        "mask_ref_high": math.nan, "mask_ref_mark": ""}
    if ref is not None and ref is not row and not row.control:
        delta = paired_delta(mine, cell_values(ref_cell, MASK_METRIC))
        out.update(_delta_columns("mask_ref", delta, protocol.NOOP_NOISE_MIOU))
    return out


def cell_values(cell: Cell, name: str) -> dict[PairKey, float]:
    return {k: float(v) for k, r in cell.items() if (v := r.metric(name)) is not None}


def delta_mark(delta: PairedDelta, noise: float | None) -> str:
    """"claim" (CI off 0 and |Δ| over the no-op noise), "ci" (CI off 0 only) or ""."""
    return "claim" if delta.is_claim(noise) else ("ci" if delta.excludes_zero() else "")


def _delta_columns(prefix: str, delta: PairedDelta | None, noise: float | None) -> dict[str, Any]:
    if delta is None:
        return {}
    mark = delta_mark(delta, noise)
    return {f"{prefix}_n": delta.n, f"{prefix}_delta": delta.mean, f"{prefix}_low": delta.low,
            f"{prefix}_high": delta.high, f"{prefix}_mark": mark}


def _dead_classes(row: Row, cell: Cell) -> str:
    """How many classes never reach the matched recall, and which (over the cell's pairs:
    `bird×2` = dead in 2 of them); `—` where the records predate the field."""
    if row.control:
        return ""
    lists = [v for r in cell.values() if (v := r.metric("dead_classes")) is not None]
    if not lists:
        return ""
    counts: dict[str, int] = {}
    for dead in lists:
        for name in dead:
            counts[name] = counts.get(name, 0) + 1
    names = ", ".join(f"{k}×{v}" if v > 1 else k for k, v in sorted(counts.items()))
    return f"{len(counts)}" + (f" ({names})" if names else "")


def _threshold_text(row: Row, cell: Cell, threshold: str) -> str:
    """The rule that picked this row's threshold, with the t it used (a range over pairs)."""
    if row.control == "oracle":
        return "best t (its own)"  # harness.evaluate scores the oracle at its best t
    ts = sorted({float(v) for r in cell.values()
                 if (v := r.metric(THRESHOLD_FIELDS[threshold])) is not None})
    rule = THRESHOLD_RULES[threshold][2]
    if not ts:
        return rule
    return f"{rule} ({ts[0]:g})" if len(ts) == 1 else f"{rule} ({ts[0]:g}–{ts[-1]:g})"


def _per_class(table: Table, cells: list[Cell]
               ) -> dict[str, dict[str, float]]:
    """variant (+ settings) → mean per-class IoU over its records (for the plot)."""
    per_class = {}
    for row, cell in zip(table.rows, cells, strict=True):
        if not cell or row.control:
            continue
        classes: dict[str, list[float]] = {}
        for r in cell.values():
            for k, v in r.per_class_iou.items():
                if v is not None:
                    classes.setdefault(k, []).append(float(v))
        key = row.variant + (f" {row.settings}" if row.settings else "")
        per_class[key] = {k: sum(v) / len(v) for k, v in classes.items()}
    return per_class
