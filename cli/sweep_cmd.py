"""`bench sweep NAME`: an Optuna study over a named search space (or `custom`)."""

from __future__ import annotations

import typer

from cli import app
from cli import options as opt
from harness.errors import BenchError
from harness.run_options import RunOptions
from sweeps.slurm import SlurmOptions


def parse_seeds(text: str) -> list[int]:
    """--seeds as `bench report` and `bench reproduce` read it (reports.compile.parse_seeds:
    a count, a range or a list), as the list of seeds each trial runs."""
    from reports.selection import parse_seeds as parse
    from reports.selection import seed_values

    return seed_values(parse(text or "1"))


@app.command("sweep")
@opt.run_option_params()
@opt.slurm_option_params()
def sweep_command(
    name: str = typer.Argument(..., help="a named sweep (see `bench list`) or `custom`"),
    method: str = typer.Option(None, help="custom sweeps: the method or variant to sweep"),
    param: list[str] = typer.Option([], "--param",
                                    help="custom sweeps: NAME=float:LOW:HIGH[:log] | int:… | "
                                         "grid:V1,V2,… | cat:A,B,… (repeatable)"),
    dataset: str = typer.Option("synth", help=opt.DATASET_HELP),
    n_trials: int = typer.Option(None, help="trials in the study, all workers together "
                                            "(default: the grid size, or the sweep's budget)"),
    seeds: str = typer.Option("1", help="seeds per trial: a count (3 → 0,1,2), a range (10-14) "
                                        "or a list (0,4,7); a trial's value is the mean over them"),
    workers: int = typer.Option(1, help="worker processes (--launcher slurm: Slurm jobs), all "
                                        "taking trials from the one study"),
    launcher: opt.Launcher = "local",
    devices: opt.Devices = None,
    device: opt.Device = opt.DEFAULT_DEVICE,
    storage: str = typer.Option(None, envvar="BENCH_SWEEP_STORAGE",
                                help="journal file (default <runs-dir>/sweeps/<study>.journal) "
                                     "or postgresql://user:pw@host/db for many machines"),
    study: str = typer.Option(None, help="study name (default NAME-DATASET); the same "
                                         "storage and study on another machine joins it"),
    timeout: float = typer.Option(None, help="seconds after which a worker starts no new trial"),
    pruner: str = typer.Option("none", help="none, median or hyperband (per-epoch −loss)"),
    set_: opt.Sets = None,
    epochs: opt.Epochs = None,
    heartbeat: int = typer.Option(60, help="PostgreSQL: heartbeat seconds; a silent worker's "
                                           "trial is retried after twice this"),
    status: bool = typer.Option(False, "--status", help="print the study's progress and exit "
                                                       "(for a sweep running elsewhere)"),
    options: RunOptions = RunOptions(),
    slurm: SlurmOptions = SlurmOptions(),
) -> None:
    """Run an Optuna study: each trial = full runs over --seeds, value = mean seed mIoU."""
    from rich.console import Console

    from sweeps import slurm as slurm_jobs
    from sweeps.launcher import SweepRequest, check_outcome, launch

    req = SweepRequest(_spec(name, method, param, n_trials), dataset=dataset,
                       seeds=parse_seeds(seeds), sets=opt.sets(set_), study=study,
                       storage=storage, options=options, epochs=epochs, n_trials=n_trials,
                       workers=workers, devices=devices, device=device, timeout=timeout,
                       pruner=pruner, heartbeat=heartbeat)
    console = Console()
    if status:
        _print_status(req, console)
        return
    out = slurm_jobs.launch_sweep(req, slurm, console) if launcher == "slurm" else launch(req, console)
    check_outcome(out, console)
    if out["exit_codes"] and any(c not in (0, None) for c in out["exit_codes"]):
        raise typer.Exit(1)


def _spec(name: str, method: str | None, param: list[str], n_trials: int | None):
    """The named sweep, or `custom`'s from --method and --param."""
    from sweeps import get_sweep
    from sweeps.spaces import custom_sweep

    if name == "custom":
        return custom_sweep(method, param, n_trials=n_trials)
    if method or param:
        raise BenchError("--method and --param are for `bench sweep custom`")
    return get_sweep(name)


def _print_status(req, console) -> None:
    """`bench sweep NAME --status`: the study's progress, its failures and its Slurm jobs, for
    a sweep running elsewhere (`req`: a sweeps.launcher.SweepRequest)."""
    from sweeps import slurm as slurm_jobs
    from sweeps import storage as st
    from sweeps import view
    from sweeps.spaces import SweepSpec

    study_name = req.study_name()
    ref = st.resolve(req.storage, req.runs_dir, study_name)
    if ref.kind == "journal" and not ref.journal_path.exists():
        raise BenchError(f"no study {study_name!r}: {ref.journal_path} does not exist")
    s = st.load_study(st.open_storage(ref, heartbeat=req.heartbeat), study_name)
    stored = SweepSpec.from_dict(st.study_definition(s)["spec"])
    console.print(f"storage {ref.masked}", soft_wrap=True)
    console.print(view.snapshot(s, stored, req.n_trials))
    view.print_failures(s, console)
    for line in slurm_jobs.job_lines(slurm_jobs.folder_for(req.options, study_name)):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
