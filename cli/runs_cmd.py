"""`bench runs`: what the results store and the stage cache hold, and what killed
processes left in them (`--clean` removes it)."""

from __future__ import annotations

from pathlib import Path

import typer

from cli import app


@app.command("runs")
def runs_command(
    runs_dir: Path = typer.Option(None, envvar="BENCH_RUNS_DIR", help="results store (default ./runs)"),
    cache_dir: Path = typer.Option(None, envvar="BENCH_CACHE_DIR",
                                   help="teacher, data and stage cache (default ~/.cache/wsss-bench)"),
    clean: bool = typer.Option(False, "--clean", help="remove the unfinished run folders and "
                               "temporary stage files of killed processes (and, an hour after "
                               "their last change, unowned ones an older version left)"),
) -> None:
    """Count the finished runs, list unreadable records and the leftovers of killed runs."""
    from harness.data import default_cache_dir
    from harness.leftovers import cache_leftovers
    from harness.store import ResultsStore

    store = ResultsStore(runs_dir)
    records = store.records(status=None)
    by_status: dict[str, int] = {}
    for rec in records:
        by_status[rec.status] = by_status.get(rec.status, 0) + 1
    counts = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "none"
    typer.echo(f"{store.root}: {len(records)} finished runs ({counts}); "
               f"{len(store.skipped)} unreadable result files skipped")
    running = sorted(store.root.glob(".inprogress-*")) if store.root.is_dir() else []
    left_runs = store.leftovers(orphans=clean)
    cache = Path(cache_dir or default_cache_dir())
    left_cache = cache_leftovers(cache, orphans=clean)
    typer.echo(f"{len(running) - len(left_runs)} runs in progress (or of another host); "
               f"{len(left_runs)} unfinished run folders and {len(left_cache)} temporary cache "
               "files of killed processes" + ("" if clean or not (left_runs or left_cache)
                                              else " (bench runs --clean removes them)"))
    for path in [*left_runs, *left_cache]:
        if clean:
            _remove(path)
        typer.echo(f"{'removed' if clean else 'left behind'}: {path}")


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
