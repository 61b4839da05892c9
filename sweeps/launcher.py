"""Start a sweep: create the study once, then N local worker processes, one per device slot.

`--devices cuda:0,cuda:1` pins worker k to device k mod len(devices) through
CUDA_VISIBLE_DEVICES (the worker then sees it as cuda:0); `cpu` gives every worker the
CPU. Running the same command on another machine with the same `--storage` and
`--study` starts more workers on the same study: they share its grid or trial budget.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.devices import parse_devices
from harness.errors import BenchError
from harness.run_options import RunOptions
from sweeps import storage as st
from sweeps.spaces import SweepSpec


@dataclass
class SweepRequest:
    spec: SweepSpec
    dataset: str = "synth"
    seeds: list[int] = field(default_factory=lambda: [0])
    sets: list[str] = field(default_factory=list)
    study: str | None = None
    storage: str | None = None
    options: RunOptions = field(default_factory=RunOptions)  # data, weights, dirs, W&B: per worker
    epochs: int | None = None  # --epochs: part of the study's definition, as --set is
    n_trials: int | None = None
    workers: int = 1
    devices: str | None = None  # None: --device for every worker
    device: str = "auto"
    timeout: float | None = None
    pruner: str = "none"
    heartbeat: int = st.DEFAULT_HEARTBEAT

    @property
    def runs_dir(self) -> Path:
        return self.options.runs_root

    @property
    def worker_devices(self) -> str:
        return self.devices or self.device

    def study_name(self) -> str:
        if self.study:
            return self.study
        if self.spec.name == "custom":
            return f"custom-{self.spec.method.replace('/', '-')}-{self.spec.fingerprint()}-{self.dataset}"
        return f"{self.spec.name}-{self.dataset}"

    def definition(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "dataset": self.dataset, "seeds": list(self.seeds),
                "sets": list(self.sets), "epochs": self.epochs}


def preflight(req: SweepRequest) -> str:
    """Fail fast (before any worker) on an unregistered method, an unknown parameter, data
    that cannot be opened or weights that cannot be loaded: one line, exit 2. Returns what
    it opened, in one line."""
    from harness.errors import BenchError as BE
    from harness.preflight import check_inputs
    from harness.registry import get_variant
    from harness.runner import resolve_config
    from sweeps.worker import trial_sets

    try:
        get_variant(req.spec.method)
    except BE as exc:
        raise BenchError(f"sweep {req.spec.name!r} needs method {req.spec.method!r}, which is not "
                         f"registered here ({exc})") from None
    probe = {}
    for p in req.spec.params:
        probe[p.name] = p.choices[0] if p.choices else (int(p.low) if p.kind == "int" else p.low)
    cfg = resolve_config(req.spec.method, req.dataset, req.seeds[0],
                         trial_sets(req.definition(), probe), req.epochs, device="cpu",
                         **req.options.inputs())
    return check_inputs(cfg, req.options.cache_dir)


def check_request(req: SweepRequest) -> None:
    if req.workers < 1:
        raise BenchError(f"--workers must be ≥ 1 (got {req.workers})")
    if req.n_trials is not None and req.n_trials < 1:
        raise BenchError(f"--n-trials must be ≥ 1 (got {req.n_trials}); leave it out for the "
                         "whole grid or the sweep's budget")
    if not req.seeds:
        raise BenchError("--seeds must name at least one seed")


def prepare(req: SweepRequest, log: Callable[[str], None] = lambda m: None):
    """Check the request, open the data and weights once (preflight), resolve the storage and
    create (or join) the study, and queue again what failed or was pruned before: exactly
    once, before any worker starts."""
    from sweeps.worker import requeue_unfinished

    check_request(req)
    log(preflight(req))
    name = req.study_name()
    ref = st.resolve(req.storage, req.runs_dir, name)
    storage = st.open_storage(ref, heartbeat=req.heartbeat)
    study = st.create_study(storage, name, req.definition(), req.spec.direction)
    requeue_unfinished(study, req.spec, log)
    return ref, study


def worker_command(req: SweepRequest, name: str, device: str, tag: str) -> list[str]:
    """`python -m sweeps.worker …`: the run options travel on the command line, absolute (a
    worker may start in another folder); the storage URL travels in the environment."""
    cmd = [sys.executable, "-m", "sweeps.worker", "--study", name, "--device", device,
           "--pruner", req.pruner, "--heartbeat", str(req.heartbeat), "--tag", tag,
           *req.options.absolute().to_argv()]
    if req.n_trials:
        cmd += ["--n-trials", str(req.n_trials)]
    if req.timeout:
        cmd += ["--timeout", str(req.timeout)]
    return cmd


def start_workers(req: SweepRequest, ref: st.StorageRef, name: str,
                  log_dir: Path | None = None) -> list[subprocess.Popen]:
    procs = []
    log_dir = log_dir or Path(req.runs_dir) / "sweeps" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parent.parent
    for k, (device, visible) in enumerate(parse_devices(req.worker_devices, req.workers)):
        env = dict(os.environ, BENCH_SWEEP_STORAGE=ref.url, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        if visible is not None:
            env["CUDA_VISIBLE_DEVICES"] = visible
        if device in ("cpu", "auto") and req.workers > 1 and "OMP_NUM_THREADS" not in os.environ:
            # N CPU workers share the cores instead of each taking all of them
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // req.workers))
        tag = f"w{k}@{platform.node()}:{os.getpid()}"
        logf = open(log_dir / f"{name}.{platform.node()}.{os.getpid()}.w{k}.log", "ab")  # noqa: SIM115
        procs.append(subprocess.Popen(worker_command(req, name, device, tag), env=env,
                                      stdout=logf, stderr=subprocess.STDOUT, cwd=os.getcwd()))
        logf.close()
    return procs


def launch(req: SweepRequest, console=None, show: bool = True) -> dict[str, Any]:
    """Create the study, run N local workers to the end, print the result; return a summary."""
    from rich.console import Console

    from sweeps import view

    console = console or Console()
    ref, study = prepare(req, log=lambda m: console.print(m, soft_wrap=True, markup=False))
    name = study.study_name
    t0 = time.time()
    log_dir = Path(req.runs_dir) / "sweeps" / "logs"
    console.print(f"sweep {req.spec.name} ({req.spec.method}, {req.spec.sampler_kind}: "
                  f"{req.spec.space_text()}) → study {name!r} in {ref.masked}; "
                  f"{req.workers} worker(s) on {req.worker_devices}; logs in {log_dir}", soft_wrap=True)
    procs = start_workers(req, ref, name, log_dir)
    try:
        if show:
            view.live(study, req.spec, lambda: any(p.poll() is None for p in procs),
                      req.n_trials, console)
        for p in procs:
            p.wait()
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        raise
    wall = time.time() - t0
    codes = [p.returncode for p in procs]
    if show:
        view.final_report(study, req.spec, console, req.n_trials)
        console.print(f"wall time {wall:.1f} s with {req.workers} worker(s)")
    bad = [c for c in codes if c not in (0, None)]
    if bad:
        console.print(f"[red]{len(bad)} worker(s) exited with an error: see {log_dir}[/red]")
    return outcome(study, req, ref, wall, codes)


class SweepFailed(BenchError):
    """Every trial of the study failed: the sweep measured nothing."""

    exit_code = 1


def outcome(study, req: SweepRequest, ref: st.StorageRef, wall: float,
            codes: list[int | None]) -> dict[str, Any]:
    from sweeps import view
    from sweeps.worker import tally

    t = tally(study, req.spec, req.n_trials)
    return {"study": study.study_name, "storage": ref.masked, "wall_s": wall, "exit_codes": codes,
            "complete": t.complete, "failed": t.failed, "pruned": t.pruned,
            "remaining": len(t.remaining), "running": t.running, "failures": view.failures(study)}


def check_outcome(out: dict[str, Any], console) -> None:
    """A study whose every trial failed raises SweepFailed (exit 1) after printing the first
    failure whole; some failures: say how many, and that a rerun retries them."""
    failures = out["failures"]
    if not failures:
        return
    number, params, reason = failures[0]
    rerun = "run the same command again to retry them"
    if out["complete"] == 0:
        console.print(f"first failure, trial {number} {params}: {reason}", soft_wrap=True,
                      markup=False, highlight=False)
        raise SweepFailed(f"all {len(failures)} trial(s) of study {out['study']!r} failed (the "
                          f"first above); fix the cause, then {rerun}")
    console.print(f"{len(failures)} of {len(failures) + out['complete']} trial(s) failed (first: "
                  f"trial {number}: {reason.splitlines()[0] if reason else ''}); {rerun}",
                  soft_wrap=True, markup=False, style="yellow")
