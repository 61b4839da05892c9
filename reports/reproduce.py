"""`bench reproduce TABLE`: run the cells of a table that the results store still lacks,
then report. Runs go in-process through `harness.runner.resolve_config` + `run` (the same
entry point `bench run` uses, so the stage cache is shared), one after another. A run that
was interrupted leaves nothing in the store, so re-running the command does exactly what is
still missing. `workers` is accepted for the future sweeps-backed parallel path; today runs
are sequential (one process; the 2-core CPU machines gain nothing from more)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.store import ResultsStore
from reports import get_table
from reports.compile import cell_records
from reports.tables import Row, Table


@dataclass(frozen=True)
class Job:
    row: Row
    dataset: str
    seed: int
    sets: tuple[str, ...]
    epochs: int | None = None

    @property
    def command(self) -> str:
        return " ".join(["bench run", self.row.variant, f"--dataset {self.dataset}",
                         f"--seed {self.seed}",
                         *[f"--set {s}" for s in self.sets]]
                        + ([f"--epochs {self.epochs}"] if self.epochs is not None else []))


def missing_jobs(table: Table | str, dataset: str, seeds: int, records: list[dict[str, Any]],
                 sets: list[str] = (), epochs: int | None = None) -> list[Job]:
    """One job per (cell, seed) not in the store; cells that are the same run (e.g. the
    default `semples` row and `λ = 0.05`) are run once."""
    if isinstance(table, str):
        table = get_table(table)
    jobs, seen = [], set()
    for row in table.rows:
        have = cell_records(records, row, dataset, list(sets), epochs)
        for seed in range(seeds):
            key = (row.variant, tuple(sorted(row.hparams.items())), seed)
            if seed in have or key in seen:
                continue
            seen.add(key)
            jobs.append(Job(row, dataset, seed, tuple([*row.sets(), *sets]), epochs))
    return jobs


def reproduce(table: str, dataset: str = "synth", seeds: int = 1, sets: list[str] = (),
              epochs: int | None = None, runs_dir: Path | str | None = None,
              cache_dir: Path | None = None, wandb_mode: str | None = None, workers: int = 1,
              device: str = "auto", log: Callable[[str], None] = print,
              dry_run: bool = False, **paths: Any) -> dict[str, list]:
    """Run what is missing; returns {"ran": [...], "failed": [...], "skipped": [...]}."""
    from harness.errors import BenchError, NonFiniteLoss
    from harness.registry import get_variant
    from harness.runner import resolve_config, run

    records = ResultsStore(runs_dir).records()
    jobs = missing_jobs(table, dataset, seeds, records, list(sets), epochs)
    out: dict[str, list] = {"ran": [], "failed": [], "skipped": []}
    if workers > 1:
        log(f"note: --workers {workers}: runs are sequential for now")
    log(f"{table}: {len(jobs)} missing run(s) on {dataset}")
    for i, job in enumerate(jobs, 1):
        try:
            get_variant(job.row.variant)
        except BenchError:
            log(f"[{i}/{len(jobs)}] skip {job.command}: variant {job.row.variant} is not "
                "registered in this checkout")
            out["skipped"].append(job)
            continue
        if dry_run:
            log(f"[{i}/{len(jobs)}] would run: {job.command}")
            out["skipped"].append(job)
            continue
        log(f"[{i}/{len(jobs)}] {job.command}")
        cfg = resolve_config(job.row.variant, dataset, job.seed, list(job.sets), epochs, device,
                             **paths)
        try:
            run(cfg, runs_dir=runs_dir, cache_dir=cache_dir, wandb_mode=wandb_mode,
                group=f"reproduce-{table}")
            out["ran"].append(job)
        except NonFiniteLoss as exc:
            log(f"    failed: {exc}")
            out["failed"].append(job)
    return out
