"""The papers' tables: which variant and hyperparameters make each row and the published
value it is compared with (declared by each family's paper, methods/*/paper.py), and the
reference row every other row's paired Δ is taken against (`Table.reference`, or a row's
own `reference`)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import BenchError
from methods import papers
from methods.papers import PaperRow, Published

Row = PaperRow  # a table's row is the paper's row as declared (methods/papers.py)


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    rows: tuple[Row, ...]
    description: str = ""
    x: str | None = None  # the hyperparameter a curve plot runs along (λ, ω)
    x_label: str = ""
    reference: str | None = None  # label of the row paired Δs are taken against
    masks: bool = False  # has a Mask column (pseudo-mask mIoU, the records' mask_miou)

    def reference_of(self, row: Row) -> Row | None:
        """The row this row's paired Δ is against (None: the table has no reference)."""
        label = row.reference or self.reference
        return next((r for r in self.rows if r.label == label), None) if label else None

    def reference_text(self) -> str:
        """The table's reference rows in words, for every printout."""
        own = {r.reference: [] for r in self.rows if r.reference}
        for r in self.rows:
            if r.reference and r.label != r.reference:
                own[r.reference].append(r.label)
        parts = [f"`{ref}` for " + ", ".join(f"`{label}`" for label in labels)
                 for ref, labels in own.items()]
        if self.reference:
            parts.append(f"`{self.reference}`" + (" for the other rows" if parts else ""))
        return "; ".join(parts)


ORACLE = Row("oracle (cam, co-occurring context zeroed)", "cam", Published(
    None, "positive control", "cam's maps with the co-occurring context zeroed: the headroom "
    "a method that removes co-occurring context can reach; no paper number; scored "
    "at its own best t, its Δ against the reference's best-t mIoU whatever --threshold"),
    control="oracle")


def paper_rows(table: str) -> tuple[Row, ...]:
    """The rows the families' papers declare for `table` (methods/*/paper.py)."""
    return tuple(papers.rows(table))


def _with_oracle(rows: tuple[Row, ...], after: str | None = None) -> tuple[Row, ...]:
    """The positive control after the row labelled `after` (None: last)."""
    at = next(i + 1 for i, r in enumerate(rows) if r.label == after) if after else len(rows)
    return (*rows[:at], ORACLE, *rows[at:])


# Each table: its title, description, reference row and curve axis; its rows come from the
# families' papers. Paired Δs of the SemPLeS ablation rows are against L_match only (the rows
# say so themselves), the others against the table's reference.
_TABLES = (
    lambda: Table("ablation", "Loss ablations (SemPLeS Table 4, QA-CLIMS Table 4)",
                  _with_oracle(paper_rows("ablation"), after="CAM"),
                  "Seed mIoU with loss terms removed. Paired Δ: SemPLeS rows against L_match only "
                  "(what each added loss buys), the others against plain CAM.", reference="CAM"),
    lambda: Table("loss-weight", "SemPLeS refinement loss weight λ (SemPLeS Table 5)",
                  paper_rows("loss-weight"), "λ = 0 means only L_match; paired Δ against it.",
                  x="lambda_refine", x_label="λ (lambda_refine)", reference="λ = 0"),
    lambda: Table("scheme", "SemPLeS learning schemes (SemPLeS Table 6)", paper_rows("scheme"),
                  "Paired Δ against the sequential scheme (the paper's default).",
                  reference="sequential, 1 round"),
    lambda: Table("questions", "QA-CLIMS question sets (QA-CLIMS Table 5)", paper_rows("questions"),
                  "All rows train with L_FRC + L_BRC + L_REG. Paired Δ against RITC only.",
                  reference="RITC only (category, 'no {class}')"),
    lambda: Table("fat", "QA-CLIMS foreground adaptive thresholding (QA-CLIMS Sec. 4.3)",
                  paper_rows("fat"), reference="without FAT"),
    lambda: Table("omega", "QA-CLIMS filter ratio ω (QA-CLIMS Appendix B, Fig. 5)",
                  paper_rows("omega"),
                  "Only ω = 0.1 has a number in the paper text. Paired Δ against ω = 0 (no filter).",
                  x="omega", x_label="ω (omega)", reference="ω = 0"),
    lambda: Table("seeds", "Seed (CAM) mIoU of the methods (SemPLeS and QA-CLIMS Table 1)",
                  _with_oracle(paper_rows("seeds")),
                  "One row per published number; a method published in both papers has two rows. "
                  "Paired Δ against CAM. Mask: the pseudo masks' mIoU (runs with --masks).",
                  reference="CAM", masks=True),
)



def _paper_table(t: papers.PaperTable) -> Table:
    """A table a family's paper adds (a third-party one too), its rows every paper's."""
    return Table(t.name, t.title, paper_rows(t.name), t.description, x=t.x, x_label=t.x_label,
                 reference=t.reference, masks=t.masks)


def _tables() -> dict[str, Table]:
    built = [build() for build in _TABLES]
    added = [_paper_table(t) for t in papers.tables()]
    names = [t.name for t in built + added]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BenchError(f"table {twice[0]!r} is declared twice (a family's paper.table)")
    return {t.name: t for t in built + added}


TABLES: dict[str, Table] = _tables()
