"""A compiled table (`reports.compile.compile_table`) on the terminal (rich), as Markdown,
CSV and LaTeX (through pandas), and as a PNG plot (matplotlib): the λ / ω curves, or
per-class IoU bars across the table's rows in the manner of QA-CLIMS Fig. 4."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

FORMATS = ("markdown", "csv", "latex")
MARKS = {"claim": " *", "ci": " †"}  # compile.delta_mark's verdicts as printed
DASH = "—"


def num(v: float, fmt: str = "{:.1f}") -> str:
    return DASH if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def _paired(df: pd.DataFrame, prefix: str) -> list[str]:
    """`+2.0 [-0.5, +4.5] n=3 *` per row; `ref` on the reference row, `—` without pairs."""
    out = []
    for i in range(len(df)):
        r = df.iloc[i]
        if r["reference"] == r["row"] or not r["reference"]:
            out.append("ref" if r["reference"] else "")
        elif r[f"{prefix}_n"] == 0:
            out.append(DASH)
        else:
            ci = "" if r[f"{prefix}_n"] < 2 else \
                f" [{r[f'{prefix}_low']:+.1f}, {r[f'{prefix}_high']:+.1f}]"
            mark = MARKS.get(r[f"{prefix}_mark"], "")
            out.append(f"{r[f'{prefix}_delta']:+.1f}{ci} n={int(r[f'{prefix}_n'])}{mark}")
    return out


def display_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Strings for people: `mean ± std`, paired Δ to the reference row with its CI, `—`
    for nothing, a command where a cell is missing."""
    pub_head = "published" + (f" ({df.attrs['reference']})" if df.attrs.get("reference") else "")
    out = pd.DataFrame({
        "row": df["row"], "variant": df["variant"], "settings": df["settings"],
        "n": df["n"].astype(int).astype(str),
        "seed mIoU": [num(m) + ("" if math.isnan(s) else f" ± {s:.1f}")
                      for m, s in zip(df["mean"], df["std"], strict=True)],
        "Δ vs ref [95% CI]": _paired(df, "ref"),
        pub_head: [num(v) for v in df["published"]],
        "Δ": [num(v, "{:+.1f}") for v in df["delta"]],
        "source": [s.split(" (")[0] for s in df["source"]],
    })
    if df["context_fp"].notna().any():
        out["context FP %"] = [num(v) for v in df["context_fp"]]
        out["FP Δ vs ref [95% CI]"] = _paired(df, "fp_ref")
    if "mask_n" in df and df["mask_n"].notna().any():
        out["Mask n"] = df["mask_n"].fillna(0).astype(int).astype(str)
        out["Mask mIoU"] = [num(m) + ("" if math.isnan(s) else f" ± {s:.1f}")
                            for m, s in zip(df["mask_mean"], df["mask_std"], strict=True)]
        out["Mask Δ vs ref [95% CI]"] = _paired(df, "mask_ref")
        out["Mask published"] = [num(v) for v in df["mask_published"]]
        out["Mask Δ"] = [num(v, "{:+.1f}") for v in df["mask_delta"]]
        if df["mask_context_fp"].notna().any():
            out["Mask context FP %"] = [num(v) for v in df["mask_context_fp"]]
    if df["context_fp_negative"].notna().any():
        out["neg. control FP %"] = [num(v) for v in df["context_fp_negative"]]
    if (df["dead_classes"] != "").any():
        out["dead classes"] = df["dead_classes"]
    out["threshold"], out["split"] = df["threshold"], df["split"]
    if (df["command"] != "").any():
        out["missing: run"] = df["command"]
    return out


def legend(df: pd.DataFrame) -> list[str]:
    """What the paired Δ means, the smallest effect worth claiming, the pairs used, the
    threshold rule, and any provenance flag: printed under every table."""
    from reports.protocol import THRESHOLD_RULES

    lines = []
    if df.attrs.get("skipped_records"):
        n = df.attrs["skipped_records"]
        lines.append(f"SKIPPED: {n} result file{'s' if n > 1 else ''} of the store could not be "
                     "read as a record (each named in a warning line) and count nowhere here.")
    if df.attrs.get("environment_warning"):
        lines.append(f"WARNING: {df.attrs['environment_warning']}")
    if df.attrs.get("provenance_warning"):
        lines.append(f"FLAGGED: {df.attrs['provenance_warning']}")
    refs = df.attrs.get("reference_rows")
    if refs:
        lines.append(f"Δ vs ref = this row − reference row ({refs}), paired by (seed, "
                     "teacher_seed) over the pairs both rows measured: mean [95 % CI, "
                     "Student t over the paired differences] n=pairs.")
        lines.append(noise_line(df.attrs.get("noise_miou"), df.attrs.get("noise_context_fp")))
        lines += _pairs_lines(df)
    rule = df.attrs.get("threshold", "best")
    recorded = "; ".join(df.attrs.get("threshold_recorded") or [])
    lines.append(f"seed mIoU: at {THRESHOLD_RULES[rule][1]} (--threshold {rule}"
                 + (f"; the runs record: {recorded}" if recorded else "")
                 + "); mean ± std over all (seed, teacher_seed) pairs of a cell.")
    if "mask_n" in df and df["mask_n"].notna().any():
        lines.append("Mask: pseudo-mask mIoU of the cell's runs that made masks (bench run … "
                     "--masks irn|crf; on voc/coco the family's pipeline by default), Mask n = those "
                     "runs; Mask context FP %: co-occurring context the masks label as the class.")
    if df["context_fp"].notna().any():
        lines.append("context FP %: false activation on the co-occurring context at 60 % object "
                     "recall, averaged over the classes that reach it (the others: dead classes)"
                     + ("; neg. control: the same on non-co-occurring context."
                        if df["context_fp_negative"].notna().any() else "."))
    return lines


def noise_line(noise_miou: float | None, noise_fp: float | None) -> str:
    if noise_miou is None or noise_fp is None:
        return ("Smallest effect worth claiming: no-op noise not measured yet "
                "(reports/protocol.py), so no Δ is marked a claim; † = CI excludes 0.")
    return (f"Smallest effect worth claiming (measured no-op noise): {noise_miou:g} mIoU "
            f"points, {noise_fp:g} context-FP points. * = CI excludes 0 and |Δ| exceeds it; "
            "† = CI excludes 0, |Δ| within the noise.")


def _pairs_lines(df: pd.DataFrame) -> list[str]:
    pairs = {r: p for r, p in zip(df["row"], df["ref_pairs"], strict=True) if p}
    if not pairs:
        return []
    if len(set(pairs.values())) == 1:
        return [f"pairs (seed/teacher_seed) of every Δ: {next(iter(pairs.values()))}."]
    return [f"pairs (seed/teacher_seed) of {row}: {p}." for row, p in pairs.items()]


def notes(df: pd.DataFrame) -> list[str]:
    seen, out = set(), []
    for row, note in zip(df["row"], df["note"], strict=True):
        if note and note not in seen:
            seen.add(note)
            out.append(f"{row}: {note}")
    return out


def _md_cell(v: object) -> str:
    return str(v).replace("|", "\\|")


def to_markdown(df: pd.DataFrame) -> str:
    d = display_frame(df)
    lines = [f"### {df.attrs.get('title', '')} — {df.attrs.get('dataset', '')}", ""]
    lines.append("| " + " | ".join(_md_cell(c) for c in d.columns) + " |")
    lines.append("|" + "|".join("---" for _ in d.columns) + "|")
    for rec in d.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v) for v in rec) + " |")
    lines += ["", *[f"- {line}" for line in legend(df)]]
    extra = notes(df)
    if extra:
        lines += ["", "Notes:", *[f"- {n}" for n in extra]]
    return "\n".join(lines) + "\n"


def to_csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format="%.2f", lineterminator="\n")


def to_latex(df: pd.DataFrame) -> str:
    """The table with its legend (what Δ vs ref, *, † and the threshold mean) as caption."""
    d = display_frame(df).drop(columns=["missing: run"], errors="ignore")
    caption = " ".join([f"{df.attrs.get('title', '')} ({df.attrs.get('dataset', '')}).",
                        *legend(df)])
    for raw, tex in (("\\", "\\textbackslash{}"), ("%", "\\%"), ("_", "\\_"), ("&", "\\&"),
                     ("#", "\\#"), ("`", "")):
        caption = caption.replace(raw, tex)
    return d.to_latex(index=False, escape=True, caption=caption,
                      label=f"tab:{df.attrs.get('table', '')}")


def render(df: pd.DataFrame, fmt: str) -> str:
    if fmt not in FORMATS:
        from harness.errors import BenchError

        raise BenchError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    return {"markdown": to_markdown, "csv": to_csv, "latex": to_latex}[fmt](df)


def table_console(table, console=None):
    """A console for `table`: the terminal's width on a terminal; in a pipe or a file (where
    rich assumes 80 columns and folds every cell into a narrow column) the table's own
    natural width, so `bench report … | less -S` or `> table.txt` keeps its rows on one line.
    COLUMNS set in the environment wins, as rich's own rule."""
    import os

    from rich.console import Console

    console = console or Console()
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        natural = Console(width=10_000, file=console.file).measure(table).maximum
        console.width = max(80, min(natural, 1_000))
    return console


def print_table(df: pd.DataFrame, console=None) -> None:
    """The table on the terminal; missing cells' commands and notes follow it."""
    from rich.table import Table

    d = display_frame(df).drop(columns=["missing: run", "source"], errors="ignore")
    if (d["settings"] == "").all():
        d = d.drop(columns=["settings"])
    d = d.rename(columns={c: "published" for c in d.columns if c.startswith("published")})
    ref = df.attrs.get("reference")
    t = Table(title=f"{df.attrs.get('title', '')} — {df.attrs.get('dataset', '')}",
              caption=f"published = {ref}" if ref else None)
    for col in d.columns:
        t.add_column(col, overflow="fold",
                     justify="right" if col in ("n", "Δ", "seed mIoU", "published",
                                                  "Δ vs ref [95% CI]") else "left")
    for rec in d.itertuples(index=False):
        t.add_row(*[str(v) for v in rec])
    console = table_console(t, console)
    console.print(t)
    commands = list(dict.fromkeys(c for c in df["command"] if c))
    if commands:
        console.print(f"{len(commands)} missing cell(s); fill them with `bench reproduce "
                      f"{df.attrs.get('table', 'TABLE')} --dataset {df.attrs.get('dataset')}` "
                      "or:", highlight=False)
        for c in commands:
            console.print(f"  {c}", highlight=False, soft_wrap=True)
    for line in legend(df):
        console.print(line, highlight=False, soft_wrap=True)
    for n in notes(df):
        console.print(f"  note: {n}", highlight=False, soft_wrap=True)


def plot(df: pd.DataFrame, path: Path | str) -> Path:
    """A curve where the table runs along a hyperparameter (λ, ω); else per-class IoU bars
    per measured row (QA-CLIMS Fig. 4 style); else measured vs published mIoU bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    title = f"{df.attrs.get('title', '')} — {df.attrs.get('dataset', '')}"
    ref = df.attrs.get("reference")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    per_class = df.attrs.get("per_class") or {}
    if df.attrs.get("x"):
        xs = df.attrs["x_values"]
        have = df["n"] > 0
        if have.any():
            ax.errorbar([x for x, h in zip(xs, have, strict=True) if h], df["mean"][have],
                        yerr=df["std"][have].fillna(0), marker="o", capsize=3, label="measured")
        pub = df["published"].notna()
        if pub.any():
            ax.plot([x for x, p in zip(xs, pub, strict=True) if p], df["published"][pub],
                    "s--", color="gray", label="published" + (f" ({ref})" if ref else ""))
        ax.set_xlabel(df.attrs.get("x_label") or df.attrs["x"])
        ax.set_ylabel("seed mIoU (%)")
        ax.legend()
    elif per_class:
        classes = sorted({c for v in per_class.values() for c in v},
                         key=lambda c: (c != "background", c))
        width = 0.8 / len(per_class)
        for i, (name, ious) in enumerate(per_class.items()):
            ax.bar([j + i * width for j in range(len(classes))],
                   [ious.get(c, 0.0) for c in classes], width, label=name)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(classes))], classes,
                      rotation=45, ha="right")
        ax.set_ylabel("IoU (%)")
        ax.legend(fontsize="small")
    else:
        labels = [f"{r} {s}".strip() for r, s in zip(df["row"], df["settings"], strict=True)]
        idx = range(len(df))
        ax.bar([i - 0.2 for i in idx], df["mean"].fillna(0), 0.4, label="measured")
        ax.bar([i + 0.2 for i in idx], df["published"].fillna(0), 0.4, color="gray",
               label="published" + (f" ({ref})" if ref else ""))
        ax.set_xticks(list(idx), labels, rotation=30, ha="right", fontsize="small")
        ax.set_ylabel("seed mIoU (%)")
        ax.legend()
    ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    from harness.oserrors import save_figure

    path = save_figure(fig, path, "plot", dpi=110)
    plt.close(fig)
    return path
