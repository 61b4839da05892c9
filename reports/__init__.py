"""The papers' tables compiled from the results store (docs/tables.md says how to read them).

`table_names()` lists them, `get_table(name)` returns the definition (rows, published
values), `reports.compile.compile_table` the measured-vs-published DataFrame,
`reports.render` its terminal / Markdown / CSV / LaTeX / PNG forms and
`reports.reproduce` runs the cells still missing.
"""

from __future__ import annotations

from harness.errors import BenchError


def table_names() -> list[str]:
    from reports.tables import TABLES

    return list(TABLES)


def get_table(name: str):
    from reports.tables import TABLES

    if name not in TABLES:
        raise BenchError(f"unknown table {name!r}; tables: {', '.join(TABLES)}")
    return TABLES[name]
