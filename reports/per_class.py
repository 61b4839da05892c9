"""`bench report --table per-class`: per-class IoU, precision, recall, FP and FN (FP and FN
divided by the class's union, as the SemPLeS/WeakTr evaluation prints them) and the
background-leak ratio of one run, or the mean over a variant's runs (`as_record` gives it
the shape `bench eval --plot` draws from). Reads the `per_class` / `background_leak` fields of result.json
(percent, as `harness.evaluate` records them)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harness.errors import BenchError
from harness.record import RunRecord, to_record

NAME = "per-class"
TITLE = "Per-class IoU, precision, recall, FP, FN"
FIELDS = ("iou", "precision", "recall", "fp", "fn")


def select_runs(records: list[RunRecord], run_ids: list[str] = (), variant: str | None = None,
                dataset: str = "synth", sets: list[str] = (), epochs: int | None = None
                ) -> list[RunRecord]:
    """The records of the given runs (a run id or an unambiguous prefix of one), or of every
    (seed, teacher_seed) of a variant's cell; one clear error when nothing matches."""
    if bool(run_ids) == bool(variant):
        raise BenchError("--table per-class needs --run RUN_ID (repeatable) or --variant NAME")
    if variant:
        from methods.papers import Published
        from reports.compile import cell_records
        from reports.tables import Row

        cell = cell_records(records, Row(variant, variant, Published(None, "")), dataset,
                            list(sets), epochs)
        if not cell:
            raise BenchError(f"no ok run of {variant} on {dataset} with these settings (pass "
                             "the --set/--epochs it was run with)")
        return [cell[k] for k in sorted(cell)]
    return [_one_run(records, run_id) for run_id in run_ids]


def _one_run(records: list[RunRecord], run_id: str) -> RunRecord:
    hits = [r for r in records if r.run_id.startswith(run_id)]
    exact = [r for r in hits if r.run_id == run_id]
    if len(exact) == 1 or len(hits) == 1:
        return (exact or hits)[0]
    raise BenchError(f"--run {run_id}: " + ("no ok run with this id in the results store"
                                            if not hits else f"{len(hits)} runs start with it"))


def per_class_frame(runs: list[RunRecord | dict[str, Any]]) -> pd.DataFrame:
    """One row per class: the mean of each field over the runs (classes as recorded)."""
    runs = [to_record(r) for r in runs]
    missing = [r.run_id or "?" for r in runs if not isinstance(r.metric("per_class"), dict)]
    if missing:
        raise BenchError(f"run(s) {', '.join(missing)} have no per-class precision/recall "
                         "(recorded before `per_class` existed); re-run or `bench eval` them")
    classes = sorted(dict.fromkeys(c for r in runs for c in r.metric("per_class")),
                     key=lambda c: c != "background")  # background first, the rest as recorded
    rows = [{"class": c, **{f: _mean([r.metric("per_class").get(c, {}).get(f) for r in runs])
                            for f in FIELDS}} for c in classes]
    df = pd.DataFrame(rows, columns=["class", *FIELDS])
    df.attrs.update(runs=[r.run_id or "?" for r in runs],
                    best_threshold=runs[0].best_threshold if len(runs) == 1 else None,
                    variants=sorted({r.variant for r in runs}),
                    background_leak=_mean([r.metric("background_leak") for r in runs]),
                    environments=_environment_lines(runs))
    return df


def _environment_lines(runs: list[RunRecord]) -> list[str]:
    """Each run's environment fingerprint, then the warning when they differ."""
    from harness.environment import mixed_line, summary_line

    lines = [f"environment of {r.run_id or '?'}: {summary_line(r.environment)}"
             for r in runs]
    mixed = mixed_line(runs) if len(runs) > 1 else ""
    return lines + ([f"WARNING: {mixed}"] if mixed else [])


def as_record(df: pd.DataFrame) -> dict[str, Any]:
    """The frame as a result record's `per_class` (+ the run's best t for one run), the
    shape `cli.summary.write_pr_plot` draws precision/recall bars from."""
    per_class = {r["class"]: {f: None if math.isnan(r[f]) else float(r[f]) for f in FIELDS}
                 for _, r in df.iterrows()}
    return {"per_class": per_class, "best_threshold": df.attrs.get("best_threshold")}


def _mean(values: list[Any]) -> float:
    got = [float(v) for v in values if v is not None]
    return sum(got) / len(got) if got else math.nan


def heading(df: pd.DataFrame, title: str = TITLE) -> str:
    runs = df.attrs["runs"]
    what = runs[0] if len(runs) == 1 else f"mean of {len(runs)} runs"
    return f"{title} — {', '.join(df.attrs['variants'])} ({what})"


def _leak_line(df: pd.DataFrame) -> str:
    leak = df.attrs["background_leak"]
    return ("in %, at each run's best t (as `harness.evaluate` records them); background leak: "
            + ("—" if math.isnan(leak) else f"{leak:.1f} %")
            + " (share of predicted-foreground pixels that are background in the GT: "
              "`among_predfg_bg` of CVI-SZU/CLIMS step/eval_cam.py)")


def _cells(df: pd.DataFrame) -> list[list[str]]:
    return [[str(r["class"]), *["—" if math.isnan(r[f]) else f"{r[f]:.1f}" for f in FIELDS]]
            for _, r in df.iterrows()]


def to_markdown(df: pd.DataFrame) -> str:
    lines = [f"### {heading(df)}", "", "| class | " + " | ".join(FIELDS) + " |",
             "|" + "---|" * (len(FIELDS) + 1)]
    lines += ["| " + " | ".join(cells) + " |" for cells in _cells(df)]
    lines += ["", f"- {_leak_line(df)}", f"- runs: {', '.join(df.attrs['runs'])}"]
    lines += [f"- {line}" for line in df.attrs.get("environments", [])]
    return "\n".join(lines) + "\n"


def render(df: pd.DataFrame, fmt: str) -> str:
    if fmt == "markdown":
        return to_markdown(df)
    if fmt == "csv":
        return df.to_csv(index=False, float_format="%.2f", lineterminator="\n")
    raise BenchError(f"--table per-class --format must be markdown or csv (got {fmt!r})")


def print_table(df: pd.DataFrame, console=None) -> None:
    from rich.table import Table

    from reports.render import table_console

    t = Table(title=heading(df))
    for col in ("class", *FIELDS):
        t.add_column(col, justify="left" if col == "class" else "right")
    for cells in _cells(df):
        t.add_row(*cells)
    console = table_console(t, console)
    console.print(t)
    console.print(_leak_line(df), highlight=False, soft_wrap=True)
    console.print(f"runs: {', '.join(df.attrs['runs'])}", highlight=False, soft_wrap=True)
    for line in df.attrs.get("environments", []):
        console.print(line, highlight=False, soft_wrap=True)
