"""Rich progress bars on stderr (stdout stays clean for --json)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, highlight=False)


def log(message: str) -> None:
    console.print(message, markup=False, soft_wrap=True)  # a line stays one line


@contextlib.contextmanager
def progress_bar(label: str, total: int, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """Yields `advance(**fields)`; fields (e.g. loss=0.3) are shown beside the bar."""
    if not enabled or not console.is_terminal and not sys.stderr.isatty():
        yield lambda **_: None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total, info="")

        def advance(**fields: float) -> None:
            info = " ".join(f"{k}={v:.4g}" for k, v in fields.items())
            bar.update(task, advance=1, info=info)

        yield advance
