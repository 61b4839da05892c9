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

Variants register in `harness.registry` (which refuses a name registered twice); the rows
of a table come in family order (FAMILIES), then in the order the paper declares them.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.config import set_item
from harness.errors import BenchError
from harness.registry import register_variant

# the families whose papers are built in, in the order their rows appear in a table
FAMILIES = ("cam", "clims", "semples", "qa_clims")


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


class FamilyPaper:
    """One family's paper: settings per dataset, variants with their rows, sweep grids."""

    def __init__(self, family: str, settings: dict[str, dict[str, Any]],
                 grids: dict[str, tuple[float, ...]] | None = None,
                 masks: dict[str, dict[str, Any]] | None = None):
        self.family = family
        self._settings = settings
        self.grids = dict(grids or {})
        self._masks = dict(masks or {})
        self.rows: list[PaperRow] = []

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


def _papers() -> list[FamilyPaper]:
    return [importlib.import_module(f"methods.{f}.paper").PAPER for f in FAMILIES]


def paper(family: str) -> FamilyPaper:
    """The paper of `family` ("cam", "clims", "semples", "qa-clims")."""
    for p in _papers():
        if p.family == family:
            return p
    raise BenchError(f"no paper for method {family!r}; known: "
                     f"{', '.join(p.family for p in _papers())}")


def rows(table: str) -> list[PaperRow]:
    """Every family's rows of `table`, in family order, then in declaration order."""
    return [r for p in _papers() for r in p.rows if table in r.tables]


def grid(family: str, name: str) -> tuple[float, ...]:
    """The values of sweep grid `name` in `family`'s paper."""
    return paper(family).grids[name]
