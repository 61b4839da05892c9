"""`--launcher slurm`: sweep workers (one Slurm job each) and table cells (a job array over
the missing cells) submitted through submitit, the Slurm launcher Hydra and FAIR use.

Jobs share what local workers share: the Optuna storage (PostgreSQL, or the journal file on
a file system every node sees) and the stage cache, so the same races are already handled
(a grid point is taken once, a (dataset, seed) CAM stage is built once under its lock).
A job that is cancelled, preempted or runs out of time mid-trial leaves a RUNNING trial:
on PostgreSQL the heartbeat fails and queues it again; on the journal every worker, and the
command that submitted the jobs while it waits, asks Slurm for the job's state
(`sweeps.slurm_state`) and queues the trial again when the job is gone.

Job scripts and logs go under `<runs-dir>/slurm/<name>/` (submitit's folder), with a
`jobs.json` that `--status` reads to show each job's Slurm state.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import BenchError
from harness.run_options import RunOptions
from sweeps import slurm_state
from sweeps import storage as st

NETWORK_FS = ("nfs", "nfs4", "lustre", "gpfs", "beegfs", "cifs", "smb2", "ceph", "fuse.ceph",
              "cephfs", "wekafs", "panfs", "glusterfs", "fuse.glusterfs", "afs", "9p", "virtiofs",
              "fuse.sshfs", "orangefs", "pvfs2", "ocfs2", "gfs2", "quobyte", "fuse.juicefs")
ROOT = Path(__file__).resolve().parent.parent  # this checkout: the jobs import it first


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    gpus_per_job: int = 0
    cpus_per_job: int | None = None
    mem: str | None = None
    time_min: int = 240
    array_parallelism: int | None = None
    sbatch: tuple[str, ...] = ()  # extra directives: "--qos=high", "account=proj", "--exclusive"
    setup: tuple[str, ...] = ()  # shell lines each job runs before the worker

    def directives(self) -> dict[str, Any]:
        """The extra sbatch directives as submitit's `additional_parameters`."""
        out: dict[str, Any] = {}
        for item in self.sbatch:
            key, sep, value = item.lstrip("-").partition("=")
            if not key:
                raise BenchError(f"--slurm-sbatch {item!r}: give a directive, e.g. --qos=high")
            out[key.replace("-", "_")] = value if sep else True
        return out


# ---------------------------------------------------------------- checks before submitting

def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"--launcher slurm: {cmd[0]} failed ({exc})") from None


def check_cluster(opts: SlurmOptions) -> list[str]:
    """One line and exit 2 when there is no Slurm here or the partition is unknown; returns
    the nodes of the partition the jobs will run in."""
    missing = [c for c in ("sbatch", "squeue", "sinfo") if shutil.which(c) is None]
    if missing:
        raise BenchError(f"--launcher slurm: no Slurm on this machine ({', '.join(missing)} not "
                         "found); run on a login node of the cluster, or use --launcher local")
    out = _run(["sinfo", "-h", "-o", "%P %N"])
    if out.returncode != 0:
        raise BenchError(f"--launcher slurm: sinfo failed: {_first(out.stderr)} (is slurmctld up?)")
    partitions: dict[str, str] = {}
    default = None
    for line in out.stdout.splitlines():
        name, _, nodes = line.strip().partition(" ")
        if name.endswith("*"):
            name = name[:-1]
            default = name
        partitions[name] = nodes
    chosen = opts.partition or default
    if chosen not in partitions:
        known = ", ".join(sorted(partitions)) or "none"
        what = f"unknown partition {opts.partition!r}" if opts.partition else "no default partition"
        raise BenchError(f"--slurm-partition: {what}; this cluster has: {known}")
    return expand_nodes(partitions[chosen])


def expand_nodes(text: str) -> list[str]:
    out = _run(["scontrol", "show", "hostnames", text]) if shutil.which("scontrol") else None
    if out is not None and out.returncode == 0:
        return out.stdout.split()
    return [text] if text else []


def check_devices(devices: str | None, opts: SlurmOptions) -> str:
    """The device each job's worker uses; --devices must agree with --slurm-gpus (a job sees
    its own GPUs only, as cuda:0 … cuda:N-1)."""
    want = "cuda" if opts.gpus_per_job else "cpu"
    if devices is None or devices in ("auto", want):
        return want
    items = [d.strip() for d in devices.split(",") if d.strip()]
    gpus = [d for d in items if d.startswith("cuda")]
    if opts.gpus_per_job == 0 and gpus:
        raise BenchError(f"--devices {devices} asks for GPUs, but --slurm-gpus is 0: give "
                         f"--slurm-gpus {len(gpus)} (each job then sees its GPUs as cuda:0…)")
    if opts.gpus_per_job and (len(items) != opts.gpus_per_job or len(gpus) != len(items)):
        raise BenchError(f"--devices {devices} does not match --slurm-gpus {opts.gpus_per_job}: "
                         f"a job sees its {opts.gpus_per_job} GPU(s) as cuda:0…; give --devices "
                         "cuda or leave it out")
    return "cuda" if gpus else "cpu"


def check_journal_visible(ref: st.StorageRef, nodes: list[str]) -> None:
    """A journal file is shared through the file system: the jobs must see the same file.
    On a cluster whose nodes are all this machine any path works; else it must be on a
    network file system."""
    if ref.kind != "journal":
        return
    host = platform.node().split(".")[0]
    if nodes and all(n.split(".")[0] == host for n in nodes):
        return
    fs = fs_type(ref.journal_path.parent)
    if fs not in NETWORK_FS:
        raise BenchError(f"--storage {ref.journal_path}: a journal on this machine's local "
                         f"{fs or 'unknown'} file system, which the jobs on {', '.join(nodes[:3])}"
                         f"{'…' if len(nodes) > 3 else ''} cannot see; put it (with --runs-dir) on "
                         "a shared file system, or use --storage postgresql://…")


def fs_type(path: Path) -> str | None:
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    out = _run(["stat", "-f", "-c", "%T", str(path)])
    return out.stdout.strip() or None if out.returncode == 0 else None


def _first(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


# ---------------------------------------------------------------- submitting and watching

def executor(folder: Path, opts: SlurmOptions, name: str):
    import submitit

    folder.mkdir(parents=True, exist_ok=True)
    ex = submitit.SlurmExecutor(folder=str(folder), max_num_timeout=0)
    params: dict[str, Any] = {
        "job_name": name[:60], "time": opts.time_min, "stderr_to_stdout": True,
        # the jobs import this checkout, whatever the cluster's default Python path says
        "setup": [f"export PYTHONPATH={ROOT}${{PYTHONPATH:+:$PYTHONPATH}}", "export PYTHONUNBUFFERED=1",
                  *opts.setup],
        "additional_parameters": opts.directives(),
    }
    for key, value in (("partition", opts.partition), ("cpus_per_task", opts.cpus_per_job),
                       ("mem", opts.mem), ("array_parallelism", opts.array_parallelism),
                       ("gpus_per_node", opts.gpus_per_job or None)):
        if value is not None:
            params[key] = value
    ex.update_parameters(**params)
    return ex


def submit(ex, fn: Callable[..., Any], args: list[tuple], folder: Path, what: list[str]) -> list:
    """A job array of `fn(*a)` for each tuple `a`; records every job in `folder`/jobs.json."""
    try:
        jobs = ex.map_array(fn, *zip(*args, strict=True))
    except Exception as exc:  # noqa: BLE001 - sbatch's refusal is the user's one line
        raise BenchError(f"sbatch refused the jobs: {_first(str(exc).split('Error:')[-1])}") from None
    record_jobs(folder, [{"job_id": j.job_id, "what": w, "submitted": time.strftime("%Y-%m-%dT%H:%M:%S")}
                         for j, w in zip(jobs, what, strict=True)])
    return jobs


def record_jobs(folder: Path, entries: list[dict[str, Any]]) -> None:
    path = folder / "jobs.json"
    known = read_jobs(folder)
    tmp = path.with_name(f".jobs.{os.getpid()}.tmp")
    tmp.write_text(json.dumps([*known, *entries], indent=1))
    os.replace(tmp, path)


def read_jobs(folder: Path) -> list[dict[str, Any]]:
    try:
        return json.loads((folder / "jobs.json").read_text())
    except (OSError, json.JSONDecodeError):
        return []


def job_lines(folder: Path) -> list[str]:
    """One line per job submitted from `folder`: id, what it runs, Slurm's state, its log."""
    jobs = read_jobs(folder)
    now = slurm_state.states([j["job_id"] for j in jobs]) if slurm_state.available() else {}
    return [f"slurm job {j['job_id']} ({j['what']}): {now.get(j['job_id'], 'unknown')}, "
            f"submitted {j['submitted']}, log {folder / (j['job_id'] + '_0_log.out')}" for j in jobs]


def wait(jobs: list, poll_s: float = 3.0, on_poll: Callable[[], None] | None = None) -> dict[str, str]:
    """Until no job is pending or running; returns job id -> final state. Slurm is asked
    directly (squeue), not through sacct: clusters without accounting answer it too."""
    ids = [j.job_id for j in jobs]
    while True:
        now = slurm_state.states(ids)
        if now and all(s not in ("PENDING", "CONFIGURING") and not slurm_state.is_alive(s)
                       for s in now.values()):
            return now
        if on_poll:
            on_poll()
        time.sleep(poll_s)


def folder_for(options: RunOptions, name: str) -> Path:
    return options.runs_root.resolve() / "slurm" / name


def job_process() -> None:
    """Set up a Slurm job's process as `bench` sets up its own: torch takes the job's CPUs
    (SLURM_CPUS_PER_TASK; task/none binds nothing, so torch would take the whole node's)."""
    from harness.process import configure_process

    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    configure_process(int(cpus) if cpus and cpus.isdigit() else None)


# ---------------------------------------------------------------- sweeps

def sweep_job(k: int, study_name: str, url: str | None, device: str, options: RunOptions,
              n_trials: int | None, timeout: float | None, pruner: str, heartbeat: int) -> int:
    """Runs in the Slurm job: one sweep worker (as `python -m sweeps.worker`). A PostgreSQL
    URL comes through the job's environment (sbatch exports the submitter's), never the
    pickled arguments, so no password is written to the job folder."""
    from sweeps.worker import run_worker

    job_process()
    url = url or st.env_storage()
    if not url:
        raise BenchError("BENCH_SWEEP_STORAGE is not in this job's environment (sbatch --export)")
    ref = st.StorageRef(url, "journal" if url.startswith("journal:") else "rdb")
    tag = f"slurm{slurm_state.current_job()}@{platform.node()}"
    state = run_worker(ref, study_name, device, options, n_trials, timeout, pruner, heartbeat, tag)
    return state.complete


def launch_sweep(req, slurm: SlurmOptions, console) -> dict[str, Any]:
    """`bench sweep --launcher slurm`: preflight and the study here, then one job per
    worker; waits for the jobs, showing progress, and returns the launcher's outcome."""
    from sweeps import view
    from sweeps.launcher import outcome, prepare
    from sweeps.worker import recover_dead_trials

    nodes = check_cluster(slurm)
    device = check_devices(req.devices, slurm)
    ref = st.resolve(req.storage, req.runs_dir, req.study_name())
    check_journal_visible(ref, nodes)
    ref, study = prepare(req, log=lambda m: console.print(m, soft_wrap=True, markup=False))
    name = study.study_name
    folder = folder_for(req.options, name)
    ex = executor(folder, slurm, f"bench-sweep-{name}")
    if ref.kind == "rdb":
        os.environ["BENCH_SWEEP_STORAGE"] = ref.url  # exported to the jobs by sbatch
    t0 = time.time()
    jobs = submit(ex, sweep_job, [(k, name, ref.url if ref.kind == "journal" else None, device,
                                   req.options.absolute(), req.n_trials, req.timeout, req.pruner,
                                   req.heartbeat) for k in range(req.workers)],
                  folder, [f"worker {k}" for k in range(req.workers)])
    console.print(f"sweep {req.spec.name} → study {name!r} in {ref.masked}: {len(jobs)} Slurm "
                  f"job(s) {', '.join(j.job_id for j in jobs)} ({device}); logs in {folder}",
                  soft_wrap=True, markup=False)
    storage = st.open_storage(ref, heartbeat=req.heartbeat)
    log = lambda m: console.print(m, soft_wrap=True, markup=False)  # noqa: E731

    def watch() -> None:
        if ref.kind == "journal":  # the jobs are gone: nobody else would recover their trials
            recover_dead_trials(study, storage, log=log, slurm=True)

    try:
        final = wait(jobs, on_poll=watch)
    except KeyboardInterrupt:
        console.print(f"the jobs keep running; `bench sweep {req.spec.name} --status` shows them; "
                      f"scancel {' '.join(j.job_id for j in jobs)} stops them", soft_wrap=True)
        raise
    watch()
    view.final_report(study, req.spec, console, req.n_trials)
    console.print(f"wall time {time.time() - t0:.1f} s with {len(jobs)} Slurm job(s): "
                  + ", ".join(f"{j} {s.lower()}" for j, s in final.items()), soft_wrap=True)
    from sweeps.worker import tally

    # a job that ended otherwise (cancelled, timed out) is an error only when its study is not
    # done: its trial was queued again and finished by another job
    done = tally(study, req.spec, req.n_trials).done
    codes = [0 if s == "COMPLETED" or done else 1 for s in final.values()]
    return outcome(study, req, ref, time.time() - t0, codes)
