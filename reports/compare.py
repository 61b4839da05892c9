"""Paired Δ between any two rows of one table (`bench report --table T --compare A B`):
the report pairs every row with its table's reference only, but the questions a reader
asks are often within a family (L_FRC + L_BRC against L_FRC, alternate against joint).
The same arithmetic as the report's Δ columns: B − A over the (seed, teacher_seed) pairs
both rows measured, mean with a Student-t 95 % CI, marked against the no-op noise."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import BenchError
from harness.record import RunRecord
from reports import get_table, protocol
from reports.compile import CellSelection, PairKey, cell_values, delta_mark, fp_field, metric_field, row_cells
from reports.render import MARKS, noise_line
from reports.stats import PairedDelta, paired_delta
from reports.tables import Row, Table


@dataclass(frozen=True)
class Comparison:
    table: str
    dataset: str
    first: Row
    second: Row
    seed_miou: PairedDelta | None  # second − first
    context_fp: PairedDelta | None
    diffs: dict[PairKey, float]  # second − first seed mIoU, per pair
    threshold: str


def find_row(table: Table, name: str) -> Row:
    """A row by its label, its label without the family ("L_FRC" for "QA-CLIMS: L_FRC"), its
    variant (when one row has it) or a unique part of its label."""
    for key in (lambda r: r.label == name, lambda r: r.label.split(": ", 1)[-1] == name,
                lambda r: r.variant == name,
                lambda r: name.casefold() in r.label.casefold()):
        hits = [r for r in table.rows if not r.control and key(r)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise BenchError(f"--compare {name!r} names {len(hits)} rows of {table.name}: "
                             + "; ".join(repr(r.label) for r in hits) + " — give a label")
    raise BenchError(f"--compare {name!r}: no row of {table.name} has that label or variant "
                     "(bench report --table " + table.name + " lists them)")


def compare_rows(table: Table | str, first: str, second: str, records: list[RunRecord],
                 select: CellSelection) -> Comparison:
    """Δ = row `second` − row `first` of `table`, paired as the report pairs `select`'s cells."""
    table = get_table(table) if isinstance(table, str) else table
    a, b = find_row(table, first), find_row(table, second)
    if a is b:
        raise BenchError(f"--compare: {first!r} and {second!r} are the same row ({a.label!r})")
    cells, _ = row_cells((a, b), records, select)
    threshold = select.threshold
    miou = [cell_values(cell, metric_field(row, threshold)) for row, cell in zip((a, b), cells, strict=True)]
    fp = [cell_values(cell, fp_field(row)) for row, cell in zip((a, b), cells, strict=True)]
    return Comparison(table.name, select.dataset, a, b, paired_delta(miou[1], miou[0]),
                      paired_delta(fp[1], fp[0]),
                      {k: miou[1][k] - miou[0][k] for k in sorted(set(miou[0]) & set(miou[1]))},
                      threshold)


def _line(name: str, delta: PairedDelta | None, noise: float | None) -> str:
    if delta is None:
        return f"{name}: no pair measured by both rows"
    if delta.n < 2:
        return f"{name}: Δ {delta.mean:+.2f} n=1 (no interval from one pair)"
    return (f"{name}: Δ {delta.mean:+.2f} [{delta.low:+.2f}, {delta.high:+.2f}] "
            f"n={delta.n}{MARKS.get(delta_mark(delta, noise), '')}")


def render_lines(c: Comparison) -> list[str]:
    """The comparison in words: one heading, one line per metric, the pairs, the legend."""
    gains = sum(d > 0 for d in c.diffs.values())
    out = [f"{c.table} ({c.dataset}): {c.second.label!r} − {c.first.label!r}",
           _line(f"seed mIoU ({c.threshold} t)", c.seed_miou, protocol.NOOP_NOISE_MIOU),
           _line("context FP %", c.context_fp, protocol.NOOP_NOISE_CONTEXT_FP)]
    if c.diffs:
        out.append(f"gains in {gains} of {len(c.diffs)} pairs; per pair (seed/teacher_seed): "
                   + " ".join(f"{s}/{t} {d:+.1f}" for (s, t), d in c.diffs.items()))
    out.append("95 % CI, Student t over the paired differences. "
               + noise_line(protocol.NOOP_NOISE_MIOU, protocol.NOOP_NOISE_CONTEXT_FP))
    return out


def compare_from_store(table: str, first: str, second: str, runs_dir: Path | None,
                       select: CellSelection) -> Comparison:
    from harness.store import ResultsStore

    return compare_rows(table, first, second, ResultsStore(runs_dir).records(), select)
