"""The synth segmentation measurement of docs/protocol-segmentation.md, read from a results
store: the plateau budget, the cells (method × (seed, teacher_seed)), paired Δ with Student-t
CIs, whether each mask ordering carries into the segmentation model, Kendall τ, the positive
control and the held-out check. Pure functions over result.json dicts; the driver that runs
the cells and writes the page is benchmarks/seg_synth.py.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports.stats import PairedDelta, paired_delta

MODEL = "deeplab-synth"
FS = "FS"  # the row of `bench segment --masks gt`
FS_VARIANT = "segment/gt"
# the addendum's methods, in its order of measurement; clip-es trains nothing and is added
# after the registered ones (not in the addendum: reported, never part of its claims)
METHODS = ("cam", "semples", "clims", "qa-clims")
EXTRA_METHODS = ("clip-es",)
PAIRS = tuple((s, t) for t in (0, 1) for s in range(5))  # seeds 0–4 × teacher_seed 0, 1
HELD_OUT = ((21, 7), (22, 7))
# the plateau rule (addendum): 50-iteration blocks, < 3 % better than 2 blocks back, cap 2,000
BLOCK, PLATEAU_X, PLATEAU_K, CURVE_ITERATIONS = 50, 0.03, 2, 2000
# written by the driver into the runs folder: the budget curve, and methods that cannot run
BUDGET_FILE, FAILED_FILE = "segsynth-budget.json", "segsynth-failed.json"

Pair = tuple[int, int]


def block_means(losses: Sequence[float], block: int = BLOCK) -> list[float]:
    """The training loss averaged over consecutive blocks of `block` iterations (whole blocks)."""
    return [statistics.fmean(losses[i:i + block]) for i in range(0, len(losses) - block + 1, block)]


def plateau_budget(losses: Sequence[float], block: int = BLOCK, x: float = PLATEAU_X,
                   k: int = PLATEAU_K, cap: int = CURVE_ITERATIONS) -> int:
    """The first block end B with (L_{B−k} − L_B) / |L_{B−k}| < x, in iterations; `cap` when
    the curve never plateaus (the addendum's rule)."""
    means = block_means(losses, block)
    for b in range(k, len(means)):
        if (means[b - k] - means[b]) / abs(means[b - k]) < x:
            return min((b + 1) * block, cap)
    return cap


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's τ-b of two paired sequences (ties in either count as neither)."""
    conc = disc = ties_a = ties_b = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        da, db = a[i] - a[j], b[i] - b[j]
        if da == 0 and db == 0:
            continue
        if da == 0:
            ties_a += 1
        elif db == 0:
            ties_b += 1
        elif (da > 0) == (db > 0):
            conc += 1
        else:
            disc += 1
    denom = math.sqrt((conc + disc + ties_a) * (conc + disc + ties_b))
    return (conc - disc) / denom if denom else math.nan


def verdict(seed: PairedDelta | None, seg: PairedDelta | None) -> str:
    """The addendum's claim for one pair of methods: carries / does not carry / not shown."""
    if seed is None or seg is None or seed.n < 2:
        return "too few pairs"
    if not seed.excludes_zero():
        return "no mask ordering (seed Δ's CI includes 0)"
    if seg.excludes_zero():
        return "carries" if (seg.mean > 0) == (seed.mean > 0) else "does not carry (reversed)"
    return "not shown to carry (seg Δ's CI includes 0)"


def load_records(runs_dir: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(Path(runs_dir).glob("*/result.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("status") == "ok" and rec.get("dataset") == "synth":
            out.append(rec)
    return out


def _segment(rec: Mapping[str, Any]) -> Mapping[str, Any]:
    return (rec.get("provenance") or {}).get("segment") or {}


def row_of(rec: Mapping[str, Any]) -> str:
    return FS if rec.get("variant") == FS_VARIANT else str(rec.get("variant"))


def cells(records: Iterable[Mapping[str, Any]], iterations: int) -> dict[str, dict[Pair, dict]]:
    """row → {(seed, teacher_seed): the latest record} of the runs at this budget. FS records
    carry no teacher (its labels are the ground truth: its init, data order and augmentation
    depend on the run seed only), so one FS run of seed S stands in every pair (S, T)."""
    out: dict[str, dict[Pair, dict]] = {}
    for rec in sorted(records, key=lambda r: str(r.get("finished_at", ""))):
        seg = _segment(rec)
        if seg.get("model") != MODEL or seg.get("iterations") != iterations or rec.get("seg_miou") is None:
            continue
        row, seed = row_of(rec), int(rec["seed"])
        if row == FS:
            for s, t in (*PAIRS, *HELD_OUT):
                if s == seed:
                    out.setdefault(FS, {})[(s, t)] = dict(rec)
            continue
        teacher = int(((rec.get("config") or {}).get("params") or {}).get("teacher_seed", 0))
        out.setdefault(row, {})[(seed, teacher)] = dict(rec)
    return out


@dataclass(frozen=True)
class Measurement:
    """The cells of one pair set, as the page reads them."""

    cells: dict[str, dict[Pair, dict]]
    pairs: tuple[Pair, ...]

    def values(self, row: str, field: str) -> dict[Pair, float]:
        got = self.cells.get(row, {})
        return {p: float(got[p][field]) for p in self.pairs if p in got and got[p].get(field) is not None}

    def runs(self, row: str) -> list[dict]:
        """The distinct runs of a row over these pairs (one FS run stands in two pairs)."""
        got = self.cells.get(row, {})
        return list({(p[0] if row == FS else p): got[p] for p in self.pairs if p in got}.values())

    def stat(self, row: str, field: str) -> list[float]:
        return [float(r[field]) for r in self.runs(row) if r.get(field) is not None]

    def rows(self) -> list[str]:
        order = (FS, *METHODS, *EXTRA_METHODS)
        return [r for r in order if self.values(r, "seg_miou")]

    def teacher_free(self, row: str) -> bool:
        """A row whose runs read no teacher (FS; cam, whose record has no `teacher`): its cell
        at (s, 1) is the run at (s, 0) again, or one with the same numbers."""
        got = self.cells.get(row, {})
        return bool(got) and not any(rec.get("teacher") for rec in got.values())

    def delta(self, row: str, ref: str, field: str) -> PairedDelta | None:
        """Paired Δ over the pairs both rows reached. Between two teacher-free rows the pairs
        (s, 0) and (s, 1) hold one Δ twice: it counts once per seed (n the distinct seeds), so
        the CI is not narrowed by a repeated value."""
        values, ref_values = self.values(row, field), self.values(ref, field)
        if self.teacher_free(row) and self.teacher_free(ref):
            both = [p for p in self.pairs if p in values and p in ref_values]
            once = {p[0]: p for p in reversed(both)}.values()  # the first teacher of each seed
            values = {p: values[p] for p in once}
        return paired_delta(values, ref_values)

    def repeats(self, row: str) -> tuple[int, int]:
        """A teacher-free row: (seeds whose two teacher cells hold equal seg_miou and seed mIoU,
        seeds with both cells) — the page checks the repetition, it does not assume it."""
        got, same, both = self.cells.get(row, {}), 0, 0
        for s in sorted({p[0] for p in self.pairs}):
            recs = [got[p] for p in self.pairs if p[0] == s and p in got]
            if len(recs) == 2:
                both += 1
                same += all(recs[0].get(k) == recs[1].get(k) for k in ("seg_miou", "seed_miou"))
        return same, both


def _ms(values: Iterable[float]) -> str:
    v = list(values)
    if not v:
        return "-"
    if len(v) == 1:
        return f"{v[0]:.2f} (one pair, no std)"
    return f"{statistics.fmean(v):.2f} ± {statistics.stdev(v):.2f}"


def _delta(d: PairedDelta | None) -> str:
    if d is None:
        return "-"
    if d.n < 2:
        return f"{d.mean:+.2f} (n 1, no CI)"
    return f"{d.mean:+.2f} [{d.low:+.2f}, {d.high:+.2f}] (n {d.n})"


def table_lines(m: Measurement) -> list[str]:
    """Per row: seed mIoU and seg mIoU mean ± std, n; paired Δ of seg mIoU vs cam and vs FS."""
    out = ["| row | n | seed mIoU (best t) | seg_miou | Δ seg vs cam [95 % CI] | Δ seg vs FS [95 % CI] |",
           "|---|---|---|---|---|---|"]
    for row in m.rows():
        seed, seg = m.stat(row, "seed_miou"), m.stat(row, "seg_miou")
        vs_cam = m.delta(row, "cam", "seg_miou") if row != "cam" else None
        vs_fs = m.delta(row, FS, "seg_miou") if row != FS else None
        out.append(f"| {row} | {len(seg)} | {_ms(seed)} | {_ms(seg)} | "
                   f"{_delta(vs_cam)} | {_delta(vs_fs)} |")
    return out


def per_pair_lines(m: Measurement) -> list[str]:
    """Every cell's numbers: seed mIoU / seg_miou per (seed, teacher_seed)."""
    pairs = [p for p in m.pairs if any(p in m.values(r, "seg_miou") for r in m.rows())]
    out = ["| row | " + " | ".join(f"{s}/{t}" for s, t in pairs) + " |",
           "|---|" + "---|" * len(pairs)]
    for row in m.rows():
        seed, seg = m.values(row, "seed_miou"), m.values(row, "seg_miou")
        out.append(f"| {row} | " + " | ".join(
            (f"{seed[p]:.2f} / " if p in seed else "") + f"{seg[p]:.2f}" if p in seg else "-"
            for p in pairs) + " |")
    return out


def ordering_lines(m: Measurement) -> list[str]:
    """Every pair of methods (A, B): seed Δ and seg Δ (B − A) and the addendum's verdict."""
    methods = [r for r in m.rows() if r in METHODS]
    out = ["| A → B | seed Δ (B − A) [95 % CI] | seg Δ (B − A) [95 % CI] | ordering |",
           "|---|---|---|---|"]
    for a, b in itertools.combinations(methods, 2):
        seed, seg = m.delta(b, a, "seed_miou"), m.delta(b, a, "seg_miou")
        out.append(f"| {a} → {b} | {_delta(seed)} | {_delta(seg)} | {verdict(seed, seg)} |")
    means = [(statistics.fmean(m.values(r, "seed_miou").values()),
              statistics.fmean(m.values(r, "seg_miou").values())) for r in methods]
    tau = kendall_tau([s for s, _ in means], [g for _, g in means]) if len(means) > 1 else math.nan
    out += ["", f"Kendall τ-b of the method means, seed mIoU vs seg_miou ({len(methods)} methods: "
            f"{', '.join(methods)}): **{tau:.2f}**."]
    return out


def teacher_free_lines(m: Measurement) -> list[str]:
    """Which rows read no teacher, and whether their teacher_seed 1 cells repeat seed 0's."""
    rows = [r for r in m.rows() if m.teacher_free(r)]
    if not rows:
        return []
    out = [f"Rows that read no teacher: {', '.join(rows)}."]  # FS's one run per seed: said below
    for row in (r for r in rows if r != FS):
        same, both = m.repeats(row)
        out.append(f"{row}: its teacher_seed 1 runs equal its teacher_seed 0 runs in seg_miou and "
                   f"seed mIoU at {same} of {both} seeds.")
    return [" ".join(out) + " A Δ between two such rows counts each seed once (n = the distinct "
            "seeds).", ""]


def control_lines(m: Measurement) -> list[str]:
    """The positive control: FS − method paired Δ of seg_miou, mean ≥ 0 for every method."""
    out, ok = [], True
    for row in m.rows():
        if row == FS:
            continue
        d = m.delta(FS, row, "seg_miou")
        if d is None:
            continue
        holds = d.mean >= 0
        ok &= holds
        fail = " — CI wholly below 0: a FAILURE of the stage" if d.n >= 2 and d.high < 0 else ""
        out.append(f"- FS − {row}: {_delta(d)}: {'yes' if holds else 'NO'}{fail}")
    return [f"**FS ≥ every method: {'yes' if ok and out else 'no' if out else 'not measured'}.**",
            "", *out]


def held_out_lines(main: Measurement, held: Measurement) -> list[str]:
    """The held-out check: does each main-pair direction hold at the held-out pairs? FS ≥
    every method there, and each carrying ordering's seg Δ sign beside the main pairs' sign.
    A row or ordering with no held-out cell yet is listed as not reached, not left out."""
    if not held.rows():
        return ["Not reached: no run at the held-out pairs (seeds 21, 22 × teacher_seed 7)."]
    out = [f"Pairs {', '.join(f'{s}/{t}' for s, t in held.pairs)}; per pair Δ in brackets.", ""]
    for row in (r for r in main.rows() if r != FS):
        d = held.delta(FS, row, "seg_miou")
        verdict_ = "not reached" if d is None else f"FS ≥ {row} {'holds' if d.mean >= 0 else 'does NOT hold'}"
        out.append(f"- FS − {row}: {_per_pair(held, FS, row)}: {verdict_}")
    tally = {"holds": 0, "does NOT hold": 0, "not reached": 0}
    methods = [r for r in main.rows() if r in METHODS]
    for a, b in itertools.combinations(methods, 2):
        seed_main, seg_main = main.delta(b, a, "seed_miou"), main.delta(b, a, "seg_miou")
        if verdict(seed_main, seg_main) != "carries":
            continue
        d, seed = held.delta(b, a, "seg_miou"), held.delta(b, a, "seed_miou")
        state = "not reached" if d is None else "holds" if _same_sign(d, seg_main) else "does NOT hold"
        tally[state] += 1
        follows = _follows(seed_main, seed, d)
        out.append(f"- {a} → {b} (carries on the main pairs, seg Δ {seg_main.mean:+.2f}): held-out "
                   f"seg Δ {_per_pair(held, b, a)}: direction {state}{follows}")
    out += ["", "Carrying orderings at the held-out pairs: "
            + ", ".join(f"{n} {k}" for k, n in tally.items()) + "."]
    return out


def _follows(seed_main: PairedDelta, seed: PairedDelta | None, seg: PairedDelta | None) -> str:
    """Beside the registered verdict: at the held-out pairs, did the masks keep their main-pair
    order, and did the segmentation Δ take the masks' sign there?"""
    if seed is None or seg is None:
        return ""
    kept = "holds" if _same_sign(seed, seed_main) else "reversed"
    follows = "follows" if _same_sign(seed, seg) else "does not follow"
    return f" (held-out seed Δ {seed.mean:+.2f}: the masks' order {kept}; seg Δ {follows} it)"


def _same_sign(a: PairedDelta, b: PairedDelta) -> bool:
    return (a.mean > 0) == (b.mean > 0)


def _per_pair(m: Measurement, row: str, ref: str) -> str:
    a, b = m.values(row, "seg_miou"), m.values(ref, "seg_miou")
    per = [f"{a[p] - b[p]:+.2f}" for p in m.pairs if p in a and p in b]
    d = m.delta(row, ref, "seg_miou")
    return f"{d.mean:+.2f} ({', '.join(per)})" if d else "-"


def cost_lines(m: Measurement, curve: Mapping[str, Any]) -> list[str]:
    """What the CPU spent: wall seconds per cell by row (the records' wall_s)."""
    out = [f"- budget curve (FS, 2,000 iterations, seed 0): {curve.get('wall_s', '-')} s"]
    total = 0.0
    for row in m.rows():
        walls = m.stat(row, "wall_s")
        if walls:
            total += statistics.fmean(walls)
            out.append(f"- {row}: {statistics.fmean(walls):.0f} s per cell (mean of {len(walls)})")
    out += [f"- one pair of the rows measured here ({', '.join(m.rows())}): about {total / 60:.1f} "
            f"min; the 10 registered pairs and the held-out 2 of them: about {12 * total / 3600:.1f} h "
            "(rows not measured here add to it)",
            "", "Wall seconds of runs made one at a time on a 2-core CPU that other sessions used "
            "at the same time: a contended cost, not a clean one. The schedule was the addendum's "
            "order, pair by pair, until the session's deadline; the pairs reached are below."]
    return out


def figure(main: Measurement, held: Measurement, path: Path) -> None:
    """seed mIoU (x) against seg_miou (y), one point per cell, a colour per method; held-out
    cells hollow; FS as a band (its mean ± std over its runs): whether a better mask gives a
    better model reads off the slope, and the positive control off the band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    fs = main.stat(FS, "seg_miou") + held.stat(FS, "seg_miou")
    if fs:
        mu, sd = statistics.fmean(fs), statistics.stdev(fs) if len(fs) > 1 else 0.0
        ax.axhspan(mu - sd, mu + sd, color="0.85", label=f"FS {mu:.1f} ± {sd:.1f} (n {len(fs)})")
    for k, row in enumerate(r for r in (*METHODS, *EXTRA_METHODS) if r in main.rows() + held.rows()):
        for m, hollow in ((main, False), (held, True)):
            seed, seg = m.values(row, "seed_miou"), m.values(row, "seg_miou")
            both = [p for p in seg if p in seed]
            if both:
                ax.scatter([seed[p] for p in both], [seg[p] for p in both], s=28, color=f"C{k}",
                           facecolors="none" if hollow else f"C{k}",
                           label=f"{row}{' (held-out)' if hollow else ''}")
    lo, hi = ax.get_xlim()
    ax.plot([lo, hi], [lo, hi], ls=":", color="0.5", lw=1, label="seg = seed")
    ax.set(xlabel="seed mIoU (best t, eval split)", ylabel="seg_miou (segval)",
           title="Does a better pseudo mask give a better segmentation model?")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)  # a crash leaves no half-written figure


def measurements(runs_dir: Path) -> tuple[dict[str, Any], list[dict], Measurement, Measurement]:
    """The budget curve, the records, and the registered and held-out pair sets."""
    runs_dir = Path(runs_dir)
    curve = json.loads((runs_dir / BUDGET_FILE).read_text())
    recs = load_records(runs_dir)
    got = cells(recs, curve["budget"])
    return curve, recs, Measurement(got, PAIRS), Measurement(got, HELD_OUT)


def page(runs_dir: Path, figure_name: str | None = None) -> str:
    """The results page, from the runs folder's records and the budget curve (the driver's);
    `figure_name`: a PNG beside the page (`figure`) that the page shows."""
    runs_dir = Path(runs_dir)
    curve, recs, main, held = measurements(runs_dir)
    got = main.cells
    means = ", ".join(f"{v:.3f}" for v in curve["block_means"])
    reached = {row: len(main.values(row, "seg_miou")) for row in main.rows()}
    failed = json.loads((runs_dir / FAILED_FILE).read_text()) if (runs_dir / FAILED_FILE).exists() else {}
    unreached = [r for r in (FS, *METHODS, *EXTRA_METHODS) if r not in reached and r not in failed]
    if FS in reached:
        reached[FS] = f"{reached[FS]} (from {len(main.runs(FS))} runs)"
    revs = sorted({str(r.get("git_rev", "?"))[:10] for rows in got.values() for r in rows.values()})
    lines = [
        "# Segmentation on synth: does the mask ordering carry into the segmentation model?", "",
        "Generated by `python -m benchmarks.seg_synth report --runs-dir RUNS --out "
        "docs/results/segmentation-synth.md` from the runs the driver made "
        "(`python -m benchmarks.seg_synth step --runs-dir RUNS`, one cell per call, looped). "
        "Rules: [the protocol addendum](../protocol-segmentation.md), registered before "
        "these results.", "",
        f"{len(recs)} records in the store; the cells' git revisions: {', '.join(revs) or '-'}.", "",
        "## Budget (plateau rule)", "",
        f"FS run seed 0, teacher_seed 0, {CURVE_ITERATIONS:,} iterations; training loss per block of "
        f"{curve['block']} iterations: {means}.", "",
        f"**Budget B = {curve['budget']} iterations** (first block end with < 3 % improvement over "
        "the last 2 blocks; cap 2,000). Every cell below trains B iterations.", "",
        "## Cost", "", *cost_lines(main, curve), "",
        "## Pairs reached", "",
        "Cells per row over the 10 registered pairs (seeds 0–4 × teacher_seed 0, 1): "
        + (", ".join(f"{r} {n}" for r, n in reached.items()) or "none") + "."
        + (f" Not run: {', '.join(f'{k} ({v})' for k, v in failed.items())}." if failed else "")
        + (f" No cell reached: {', '.join(unreached)}." if unreached else "")
        + (" Fewer than 10 pairs: every CI below is over the pairs reached (n says how many); "
           "with n = 1 there is no CI and no claim." if any(
               len(main.values(r, "seg_miou")) < len(PAIRS) for r in main.rows()) else ""),
        "", "## Per row (registered pairs)", "", *table_lines(main), "",
        *teacher_free_lines(main),
        "Per pair (seed/teacher_seed): seed mIoU / seg_miou (FS: seg_miou; one FS run per seed "
        "stands in both teacher seeds, its labels being the ground truth).", "",
        *per_pair_lines(main), "",
        "seed mIoU: the method's seed at its best threshold on synth's eval split (protocol v2); "
        "seg_miou: the segmentation model on `segval`. FS has no seed.", "",
        "## Orderings: seed Δ vs seg Δ", "", *ordering_lines(main), "",
        *([f"![seed mIoU against seg_miou, one point per cell]({figure_name})", ""]
          if figure_name else []),
        "## Positive control", "", *control_lines(main), "",
        "## Held-out check (seeds 21, 22 × teacher_seed 7)", "", *held_out_lines(main, held), ""]
    return "\n".join(lines)
