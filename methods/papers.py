"""The papers as data: one torch-free `paper.py` per method family, collected here.

A family's paper holds its per-dataset settings, its variants (each with the paper-table
rows it reproduces and their published values) and its sweep grids. `reports` builds its
tables from `rows(table)`, `sweeps` its grids from `grid(family, name)`; the family's method
reads `settings(family, dataset)`. A new ablation is one variant function in its family's
paper.py:

    @PAPER.variant("semples/no-refine", reproduces="Table 4: L_match only",
                   rows=[row("ablation", "SemPLeS: no refine", 67.6, "SemPLeS Table 4")])
    def no_refine() -> dict:
        \"\"\"One line for `bench list`.\"\"\"
        return {"lambda_refine": 0.0}

Variants register in `harness.registry` (which refuses a name registered twice). The papers
are found through the entry-point group `wsss_bench.methods` (harness.registry.families:
each entry is a family's PAPER), so a family installed by another package adds its
variants, rows to any table, whole tables (`FamilyPaper.table`) and sweeps
(`FamilyPaper.sweep`) exactly as a built-in one does. The rows of a table come in the
papers' `order`, then family name, then in the order each paper declares them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.config import set_item
from harness.errors import BenchError
from harness.registry import families, register_variant


@dataclass(frozen=True)
class Published:
    """A number transcribed exactly from a paper (None where the paper gives none)."""

    value: float | None
    source: str
    note: str = ""


@dataclass(frozen=True)
class PaperRow:
    """One row of `bench report` tables (the same row may sit in several): its label,
    published value and, on top of the variant, the hyperparameters that make it (`--set`).
    A paper declares it (`row`); reports' tables hold it as it is (reports.tables.Row)."""

    label: str
    variant: str  # "" in a paper's declaration: filled in by `FamilyPaper.variant`
    published: Published
    hparams: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None  # label of this row's reference row (default: the table's)
    control: str = ""  # "oracle": read cam records' oracle_* fields instead of the method's
    mask: Published | None = None  # the pseudo-mask mIoU the same table row publishes
    tables: tuple[str, ...] = ()  # the tables it sits in

    def sets(self) -> list[str]:
        """The `--set key=value` strings that, on top of the variant, make this row."""
        return [set_item(k, v) for k, v in self.hparams.items()]

    @property
    def settings(self) -> str:
        return " ".join(self.sets())


def row(tables: str | tuple[str, ...], label: str, value: float | None, source: str, note: str = "",
        hparams: dict[str, Any] | None = None, reference: str | None = None,
        mask: float | None = None) -> PaperRow:
    """A row of table(s) `tables` whose published value is `value` (`source`: where); `mask`:
    the pseudo-mask mIoU the same row of the same source publishes (Table 1's Mask column)."""
    tables = (tables,) if isinstance(tables, str) else tuple(tables)
    return PaperRow(label, "", Published(value, source, note), dict(hparams or {}), reference,
                    mask=Published(mask, source) if mask is not None else None, tables=tables)


@dataclass(frozen=True)
class FinalRow:
    """A row of the final-segmentation table (`bench report --table final`, reports/final.py):
    a segmentation model trained on a method's pseudo masks, or on the ground truth (`variant`
    "": the fully supervised row), with the VOC val / VOC test / COCO val mIoU its source
    publishes (None where it gives none)."""

    label: str
    variant: str  # the method variant whose masks it trains on; "" = ground truth (FS)
    model: str  # the segmentation model's registered name (harness/segment)
    val: float | None
    test: float | None
    coco: float | None
    source: str
    note: str = ""

    @property
    def supervised(self) -> bool:
        return not self.variant


@dataclass(frozen=True)
class PaperTable:
    """A table a family's paper adds to `bench report` (reports.tables.Table's fields; its
    rows are every paper's rows naming it)."""

    name: str
    title: str
    description: str = ""
    reference: str | None = None  # label of the row paired Δs are taken against
    x: str | None = None  # the hyperparameter a curve plot runs along
    x_label: str = ""
    masks: bool = False  # has a Mask column


@dataclass(frozen=True)
class PaperSweep:
    """A named grid sweep a family's paper adds to `bench sweep`: its grid `grid` over the
    hyperparameter of that name, run on `variant` (default: the family)."""

    name: str
    grid: str
    description: str
    variant: str = ""
    source: str = ""  # the paper table / figure it reproduces


class FamilyPaper:
    """One family's paper: settings per dataset, variants with their rows, sweep grids, and
    the family's `Method` class as "module:Class" (imported only when a run needs it).

    `order` places the family's rows in every table (lower first; the built-in families
    10, 20, 30, 40 keep the papers' order: cam, clims, semples, qa-clims)."""

    def __init__(self, family: str, settings: dict[str, dict[str, Any]],
                 grids: dict[str, tuple[float, ...]] | None = None,
                 masks: dict[str, dict[str, Any]] | None = None, *, method: str = "",
                 order: int = 100):
        self.family = family
        self.method = method
        self.order = order
        self._settings = settings
        self.grids = dict(grids or {})
        self._masks = dict(masks or {})
        self.rows: list[PaperRow] = []
        self.tables: list[PaperTable] = []
        self.sweeps: list[PaperSweep] = []
        self.final: list[FinalRow] = []

    def final_row(self, label: str, model: str, val: float | None, test: float | None,
                  coco: float | None, source: str, variant: str = "", note: str = "") -> FinalRow:
        """Add a row to the final-segmentation table (`variant` "": trained on ground truth)."""
        if variant and variant.split("/", 1)[0] != self.family:
            raise BenchError(f"final row {label!r}: variant {variant!r} is not of {self.family!r}")
        self.final.append(FinalRow(label, variant, model, val, test, coco, source, note))
        return self.final[-1]

    def table(self, name: str, title: str, **fields: Any) -> PaperTable:
        """Add table `name` to `bench report` (PaperTable's fields); rows name it."""
        self.tables.append(PaperTable(name, title, **fields))
        return self.tables[-1]

    def sweep(self, name: str, grid: str, description: str, **fields: Any) -> PaperSweep:
        """Add grid sweep `name` over this paper's grid `grid` to `bench sweep`."""
        if grid not in self.grids:
            raise BenchError(f"sweep {name!r}: {self.family}'s paper has no grid {grid!r}")
        self.sweeps.append(PaperSweep(name, grid, description, **fields))
        return self.sweeps[-1]

    def settings(self, dataset: str) -> dict[str, Any]:
        """The family's settings on `dataset` ({} where it has none)."""
        return dict(self._settings.get(dataset, {}))

    def mask_settings(self, dataset: str) -> dict[str, Any]:
        """The family's pseudo-mask pipeline and its settings on `dataset`
        (harness.masks.settings.MaskSettings fields; {} = none)."""
        return dict(self._masks.get(dataset, {}))

    def variant(self, name: str, reproduces: str = "", rows: list[PaperRow] = ()) -> Callable:
        """Register `fn() -> overrides` as variant `name` with the table rows it reproduces."""
        if name.split("/", 1)[0] != self.family:
            raise BenchError(f"variant {name!r} is not of family {self.family!r}")

        def deco(fn: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
            register_variant(name, table=reproduces)(fn)
            self.rows.extend(dataclasses.replace(r, variant=name) for r in rows)
            return fn

        return deco


def papers() -> list[FamilyPaper]:
    """Every installed family's paper, in table order (`order`, then family name)."""
    found = [p for p in families().values() if isinstance(p, FamilyPaper)]
    return sorted(found, key=lambda p: (p.order, p.family))


def paper(family: str) -> FamilyPaper:
    """The paper of installed family `family` ("cam", "clims", "semples", "qa-clims", ...)."""
    for p in papers():
        if p.family == family:
            return p
    raise BenchError(f"no paper for method {family!r}; known: "
                     f"{', '.join(p.family for p in papers())}")


def rows(table: str) -> list[PaperRow]:
    """Every family's rows of `table`, in table order, then in declaration order."""
    return [r for p in papers() for r in p.rows if table in r.tables]


def final_rows() -> list[FinalRow]:
    """Every family's final-segmentation rows, in table order, then in declaration order."""
    return [r for p in papers() for r in p.final]


def tables() -> list[PaperTable]:
    """The tables the papers add, in table order."""
    return [t for p in papers() for t in p.tables]


def sweeps() -> list[tuple[FamilyPaper, PaperSweep]]:
    """The sweeps the papers add, each with its paper, in table order."""
    return [(p, s) for p in papers() for s in p.sweeps]


def grid(family: str, name: str) -> tuple[float, ...]:
    """The values of sweep grid `name` in `family`'s paper."""
    return paper(family).grids[name]
