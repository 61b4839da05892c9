"""`bench reproduce TABLE`: run the cells of a table that the results store still lacks
(each cell over seeds × teacher seeds), then report. Runs go through
`harness.runner.run_variant` (the same entry point `bench run` uses, so the stage cache
is shared). A run that was interrupted leaves nothing
in the store, so re-running the command does exactly what is still missing.

`workers` > 1 runs the missing cells in that many spawned processes, pinned to `devices`
as sweep workers are (`cuda:0,cuda:1` → one GPU each; CPU workers split the cores). The
stage cache's file locks make concurrent runs of one seed build its CAM stage once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.process import configure_process
from harness.record import RunRecord, to_record
from harness.run_options import RunOptions
from harness.store import ResultsStore
from reports import get_table
from reports.compile import (
    MASK_METRIC,
    CellSelection,
    cell_records,
    metric_field,
    only_listed,
    teacher_axis,
)
from reports.protocol import HELDOUT_SPLIT
from reports.tables import Row, Table
from sweeps.slurm import SlurmOptions


@dataclass(frozen=True)
class Job:
    row: Row
    dataset: str
    seed: int
    sets: tuple[str, ...]  # the row's settings, the extra --set ones, and teacher_seed=
    epochs: int | None = None
    teacher_seed: int = 0
    threshold_split: str | None = None  # the held-out split that picks t (--threshold heldout)

    @property
    def command(self) -> str:
        return " ".join(["bench run", self.row.variant, f"--dataset {self.dataset}",
                         f"--seed {self.seed}",
                         *[f"--set {s}" for s in self.sets]]
                        + ([f"--epochs {self.epochs}"] if self.epochs is not None else [])
                        + ([f"--threshold-split {self.threshold_split}"]
                           if self.threshold_split else []))


def missing_jobs(table: Table | str, select: CellSelection, records: list[RunRecord],
                 masks: str | None = None) -> list[Job]:
    """One job per (cell, seed, teacher seed) not in the store; cells that are the same run
    (e.g. the default `semples` row and `λ = 0.05`) are run once. Control rows (the oracle)
    are read from their variant's runs and never add a job. `threshold="heldout"`: a run
    without a held-out seed mIoU is missing, and runs pick t on the held-out split.
    `masks="irn"|"crf"` (`--masks`): a run without masks of that pipeline is missing too, so
    asking a measured table for its Mask column runs its cells again with masks."""
    if isinstance(table, str):
        table = get_table(table)
    dataset, sets, epochs = select.dataset, list(select.sets), select.epochs
    split = HELDOUT_SPLIT if select.threshold == "heldout" else None
    with_masks = masks not in (None, "none")
    records = [to_record(r) for r in records]
    if with_masks:
        records = [r for r in records if _mask_pipeline(r) == masks]
    jobs, seen = [], set()
    for row in (r for r in table.rows if not r.control):
        have = cell_records(records, row, dataset, sets, epochs, metric=MASK_METRIC if with_masks
                            else metric_field(row, select.threshold))
        for seed, teacher in select.missing(only_listed(have, select.seeds, select.teacher_seeds)):
            key = (row.variant, tuple(sorted(row.hparams.items())), seed, teacher)
            if key in seen:
                continue
            seen.add(key)
            teacher_set = [f"teacher_seed={teacher}"] if teacher_axis(select.teacher_seeds) else []
            jobs.append(Job(row, dataset, seed, tuple([*row.sets(), *sets, *teacher_set]), epochs,
                            teacher, split))
    return jobs


def _mask_pipeline(rec: RunRecord) -> str | None:
    masks = rec.config.get("masks")
    return masks.get("pipeline") if isinstance(masks, dict) else None


def reproduce(table: str, select: CellSelection = CellSelection(),
              options: RunOptions | None = None, workers: int = 1,
              device: str = "auto", log: Callable[[str], None] = print,
              dry_run: bool = False, devices: str | None = None,
              slurm: SlurmOptions | None = None) -> dict[str, list]:
    """Run what is missing (`select`'s pairs per cell); returns {"ran": [...],
    "failed": [...], "skipped": [...]}. `options`: data, weights, runs and cache dirs, W&B
    mode, as every cell's run receives them. `slurm`: run the cells as a Slurm job array
    (submitit) instead of here."""
    from harness.errors import BenchError

    if workers < 1:
        raise BenchError("--workers must be ≥ 1")
    options = options or RunOptions()
    out, todo = plan(table, select, options, log, dry_run)
    cell = CellOptions(select.epochs, options, f"reproduce-{table}")
    if todo and slurm is None:  # (the Slurm path checks its cluster first, then this)
        log(preflight(todo[0], cell))
    if slurm is not None:
        if todo:
            _run_slurm(todo, cell, slurm, devices, slurm_folder(options, table, select.dataset),
                       out, log)
    elif workers == 1 or len(todo) <= 1:
        for i, job in enumerate(todo, 1):
            log(f"[{i}/{len(todo)}] {job.command}")
            _tally(out, job, run_job(job, device, cell), log)
    else:
        _run_parallel(todo, workers, devices or ("cpu" if device == "auto" else device),
                      cell, out, log)
    return out


@dataclass(frozen=True)
class CellOptions:
    """What every cell's run receives besides its own Job: pickled to spawned workers and
    to Slurm jobs as is."""
    epochs: int | None
    options: RunOptions
    group: str  # the W&B group


def plan(table: str, select: CellSelection, options: RunOptions, log: Callable[[str], None],
         dry_run: bool = False) -> tuple[dict[str, list], list[Job]]:
    """The missing jobs whose variant is registered here (the rest are skipped, said why)."""
    from harness.errors import BenchError
    from harness.registry import get_variant

    records = ResultsStore(options.runs_dir).records()
    jobs = missing_jobs(table, select, records, options.masks)
    dataset = select.dataset
    out: dict[str, list] = {"ran": [], "failed": [], "skipped": []}
    log(f"{table}: {len(jobs)} missing run(s) on {dataset}")
    todo = []
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
        todo.append(job)
    return out, todo


def slurm_folder(options: RunOptions, table: str, dataset: str) -> Path:
    from sweeps.slurm import folder_for

    return folder_for(options, f"reproduce-{table}-{dataset}")


def preflight(first: Job, cell: CellOptions) -> str:
    """Open the first missing cell's data, weights and mask inputs before any cell runs: a
    bad --data-root, weights file or --mask-set is one line and exit 2, not one failure per
    cell. Returns what it opened, in one line."""
    from harness.preflight import check_inputs
    from harness.runner import resolve_config

    cfg = resolve_config(first.row.variant, first.dataset, first.seed, list(first.sets),
                         cell.epochs, "cpu", **cell.options.inputs(),
                         threshold_split=first.threshold_split)
    return check_inputs(cfg, cell.options.cache_dir)


def run_cell(job: Job, device: str, cell: CellOptions) -> str | None:
    """Runs in a Slurm job: one cell's run, its log lines in the job's log."""
    from sweeps.slurm import job_process

    job_process()
    return run_job(job, device, cell, show_progress=False, quiet=False)


def _run_slurm(jobs: list[Job], cell: CellOptions, slurm: SlurmOptions, devices: str | None,
               folder: Path, out: dict[str, list], log: Callable[[str], None]) -> None:
    """One array task per missing cell; waits for the array, then tallies each cell. A cell
    whose job was cancelled or timed out is failed here and missing from the store, so the
    same command submits it again."""
    from sweeps import slurm as sj

    sj.check_cluster(slurm)
    device = sj.check_devices(devices, slurm)
    log(preflight(jobs[0], cell))
    ex = sj.executor(folder, slurm, f"bench-{cell.group}")
    submitted = sj.submit(ex, run_cell, [(job, device, cell) for job in jobs], folder,
                          [job.command for job in jobs])
    log(f"{len(jobs)} run(s) as Slurm job array {submitted[0].job_id.split('_')[0]} ({device}); "
        f"logs in {folder}")
    final = sj.wait(submitted)
    for job, sub in zip(jobs, submitted, strict=True):
        state = final.get(sub.job_id, "unknown")
        if not sub.paths.result_pickle.exists():
            _tally(out, job, f"Slurm job {sub.job_id} {state.lower()} without a result (log: "
                   f"{sub.paths.stdout})", log)
            continue
        try:
            error = sub.result()
        except Exception as exc:  # noqa: BLE001 - the run's own error, raised in the job
            error = f"Slurm job {sub.job_id}: {(str(exc).strip().splitlines() or [''])[-1][:300]}"
        _tally(out, job, error, log)


def _tally(out: dict[str, list], job: Job, error: str | None, log: Callable[[str], None]) -> None:
    out["ran" if error is None else "failed"].append(job)
    if error is not None:
        log(f"    failed: {job.command}: {error}")


def run_job(job: Job, device: str, cell: CellOptions, show_progress: bool = True,
            quiet: bool = True) -> str | None:
    """One cell's run; None when it finished, else why it was recorded failed (NaN loss)."""
    from harness.errors import NonFiniteLoss
    from harness.runner import run_variant

    extra = {"threshold_split": job.threshold_split} if job.threshold_split else {}
    if not show_progress:
        extra.update(show_progress=False, **({"log": lambda m: None} if quiet else {}))
    try:
        run_variant(job.row.variant, job.dataset, job.seed, list(job.sets), cell.epochs,
                    device, group=cell.group, **extra, **cell.options.run_kwargs())
    except NonFiniteLoss as exc:
        return str(exc)
    return None


def _run_parallel(jobs: list[Job], workers: int, devices: str, cell: CellOptions,
                  out: dict[str, list], log: Callable[[str], None]) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from harness.devices import parse_devices

    spawn = mp.get_context("spawn")
    slots = spawn.Queue()
    for slot in parse_devices(devices, workers):
        slots.put(slot)
    threads = max(1, (os.cpu_count() or 1) // workers)
    log(f"{len(jobs)} run(s) on {workers} worker(s) ({devices})")
    with ProcessPoolExecutor(workers, mp_context=spawn,
                             initializer=_init_worker, initargs=(slots, threads)) as pool:
        futures = {pool.submit(_worker_job, job, cell): job for job in jobs}
        for done, future in enumerate(as_completed(futures), 1):
            job = futures[future]
            error = future.result()  # a BenchError or a crash propagates: stop, as one run would
            log(f"[{done}/{len(jobs)}] finished: {job.command}")
            _tally(out, job, error, log)


_WORKER_DEVICE = "cpu"


def _init_worker(slots, threads: int) -> None:
    """Pin this worker to one device slot before torch is imported in it."""
    global _WORKER_DEVICE
    _WORKER_DEVICE, visible = slots.get()
    if visible is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = visible
    if _WORKER_DEVICE == "cpu":
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    configure_process(int(os.environ["OMP_NUM_THREADS"]) if _WORKER_DEVICE == "cpu" else None)


def _worker_job(job: Job, cell: CellOptions) -> str | None:
    return run_job(job, _WORKER_DEVICE, cell, show_progress=False)
