"""A table definition + the results store → one pandas DataFrame: measured mean ± std over
seeds, n, published value, Δ, context false positives, and for a missing cell the exact
`bench run …` command that fills it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from reports import get_table
from reports.tables import Row, Table

COLUMNS = ["row", "variant", "settings", "n", "mean", "std", "published", "delta", "source",
           "context_fp", "command", "note"]
METRIC = "seed_miou"


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


def _record_params(rec: dict[str, Any]) -> dict[str, Any]:
    params = dict((rec.get("config") or {}).get("params") or {})
    params.update(rec.get("hparams") or {})
    return params


def _parse_sets(sets: list[str]) -> dict[str, str]:
    out = {}
    for item in sets:
        key, _, value = item.partition("=")
        out[key.strip()] = value.strip()
    return out


def matches(rec: dict[str, Any], row: Row, dataset: str, sets: list[str] = (),
            expected: dict[str, Any] | None = None) -> bool:
    """Does this result record measure this cell? With `expected` (the resolved settings),
    every setting must agree, so a smoke run or another sweep's run never pollutes a cell."""
    if rec.get("variant") != row.variant or rec.get("dataset") != dataset:
        return False
    params = _record_params(rec)
    wanted = expected if expected is not None else {**row.hparams, **_parse_sets(list(sets))}
    for key, value in wanted.items():
        if key not in params:
            if expected is not None:
                continue  # a setting added after this run was recorded
            return False
        if not _same(params[key], value):
            return False
    return True


def cell_records(records: list[dict[str, Any]], row: Row, dataset: str, sets: list[str] = (),
                 epochs: int | None = None, strict: bool = True) -> dict[int, dict[str, Any]]:
    """seed → the latest ok record of this cell."""
    expected = expected_params(row.variant, dataset, row.sets() + list(sets), epochs) \
        if strict else None
    if expected is None and epochs is not None:
        sets = [*sets, f"epochs={epochs}"]
    by_seed: dict[int, dict[str, Any]] = {}
    for rec in records:
        if rec.get("status", "ok") != "ok" or rec.get(METRIC) is None:
            continue
        if not matches(rec, row, dataset, sets, expected):
            continue
        seed = int(rec.get("seed", 0))
        old = by_seed.get(seed)
        if old is None or str(rec.get("finished_at", "")) >= str(old.get("finished_at", "")):
            by_seed[seed] = rec
    return by_seed


def run_command(row: Row, dataset: str, seeds: list[int], sets: list[str] = (),
                epochs: int | None = None, runs_dir: Path | str | None = None) -> str:
    """The exact `bench run …` command(s) that fill the missing seeds of a cell."""
    parts = ["bench run", row.variant, f"--dataset {dataset}"]
    parts += [f"--set {s}" for s in [*row.sets(), *sets]]
    if epochs is not None:
        parts.append(f"--epochs {epochs}")
    if runs_dir is not None:
        parts.append(f"--runs-dir {runs_dir}")
    if len(seeds) == 1:
        parts.insert(3, f"--seed {seeds[0]}")
        return " ".join(parts)
    parts.insert(3, "--seed $s")
    return f"for s in {' '.join(map(str, seeds))}; do {' '.join(parts)}; done"


def compile_table(table: Table | str, records: list[dict[str, Any]] | None = None,
                  dataset: str = "synth", runs_dir: Path | str | None = None, seeds: int = 1,
                  sets: list[str] = (), epochs: int | None = None,
                  strict: bool = True) -> pd.DataFrame:
    """The table as a DataFrame (one row per paper row, columns `COLUMNS`).

    `seeds`: how many seeds (0 … seeds-1) a complete cell has; cells with fewer carry the
    command for the rest. `sets`/`epochs`: extra settings every cell was run with (and the
    records must have). `strict=False` matches on variant + the row's own settings only.
    """
    if isinstance(table, str):
        table = get_table(table)
    if records is None:
        from harness.store import ResultsStore

        records = ResultsStore(runs_dir).records()
    ref = reference_label(dataset)
    out, per_class = [], {}
    for row in table.rows:
        cell = cell_records(records, row, dataset, list(sets), epochs, strict)
        values = [float(r[METRIC]) for r in cell.values()]
        n = len(values)
        mean = sum(values) / n if n else math.nan
        std = (math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan)
        fps = [float(r["context_fp"]) for r in cell.values() if r.get("context_fp") is not None]
        pub = row.published.value
        missing = [s for s in range(seeds) if s not in cell]
        out.append({
            "row": row.label, "variant": row.variant, "settings": row.settings, "n": n,
            "mean": mean, "std": std,
            "published": math.nan if pub is None else pub,
            "delta": mean - pub if (n and pub is not None) else math.nan,
            "source": row.published.source + (f" ({ref})" if ref else ""),
            "context_fp": sum(fps) / len(fps) if fps else math.nan,
            "command": run_command(row, dataset, missing, list(sets), epochs, runs_dir)
            if missing else "",
            "note": row.published.note,
        })
        if n:
            classes: dict[str, list[float]] = {}
            for r in cell.values():
                for k, v in (r.get("per_class_iou") or {}).items():
                    if v is not None:
                        classes.setdefault(k, []).append(float(v))
            key = row.variant + (f" {row.settings}" if row.settings else "")
            per_class[key] = {k: sum(v) / len(v) for k, v in classes.items()}
    df = pd.DataFrame(out, columns=COLUMNS)
    df.attrs.update(table=table.name, title=table.title, dataset=dataset, reference=ref,
                    per_class=per_class, x=table.x, x_label=table.x_label,
                    x_values=[row.hparams.get(table.x) for row in table.rows] if table.x else [])
    return df
