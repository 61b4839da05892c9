"""One sweep worker: take trials from the study until the grid or the budget is done.

A trial's value is the mean of the sweep's metric (seed mIoU) over the study's seeds; each
seed is a full `harness.runner.run_variant` (as `bench run`) in this process, grouped in
W&B by the study name.
A diverged loss fails that trial with its reason and the sweep goes on.

Dead workers: on PostgreSQL the heartbeat fails a silent worker's trial and
`RetryFailedTrialCallback` queues it again. On a journal file, every worker, before each
trial and while it waits, fails RUNNING trials whose worker process on this host is gone
and queues their parameters again, so a grid still completes after a `kill -9`.

`python -m sweeps.worker --study NAME` (storage URL in $BENCH_SWEEP_STORAGE) is what the
launcher starts; it reads the sweep's definition from the study itself.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import BenchError, NonFiniteLoss
from harness.process import configure_process
from harness.record import RunRecord
from harness.run_options import RunOptions
from sweeps import slurm_state
from sweeps import storage as st
from sweeps.spaces import SweepSpec

POLL_S = 2.0
ORPHAN_S = 600  # a RUNNING trial that never named its worker is dead after this
FAIL_REASON_CHARS = 4000  # a failure is shown whole (`bench sweep --status`), within reason


class TrialFailed(Exception):
    """A trial that ended without a value (diverged loss, bad config); reason in user attrs."""


# ---------------------------------------------------------------- progress of a study

def _norm(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return v
    return round(float(v), 12)


def params_key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, _norm(v)) for k, v in params.items()))


def trial_params(t) -> dict[str, Any]:
    return dict(t.params) or dict(t.system_attrs.get("fixed_params") or {})


@dataclass
class Tally:
    total: int = 0
    complete: int = 0
    running: int = 0
    waiting: int = 0
    failed: int = 0  # failed and not retried
    retried: int = 0  # failed, then queued again
    pruned: int = 0
    remaining: list[dict[str, Any]] = field(default_factory=list)  # grid points never started
    budget: int = 0
    counted: int = 0

    budget_is_trials: bool = False  # TPE: the budget counts trials; grid: points left

    @property
    def can_start(self) -> bool:
        if self.waiting:
            return True
        return self.counted < self.budget and bool(self.remaining or self.budget_is_trials)

    @property
    def done(self) -> bool:
        return not self.can_start and self.running == 0


def retried_numbers(trials) -> set[int]:
    out: set[int] = set()
    for t in trials:
        out.update(t.system_attrs.get("retry_history") or [])
    return out


def requeue_reasons(trials) -> dict[int, str]:
    """Trial number → why it was queued again, read from its retry (`StaleRetry`)."""
    return {t.system_attrs["retry_history"][-1]: f"{t.system_attrs['retry_reason']}; queued again"
            for t in trials if t.system_attrs.get("retry_reason") and t.system_attrs.get("retry_history")}


def tally(study, spec: SweepSpec, n_trials: int | None) -> Tally:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    t = Tally(total=len(trials))
    for tr in trials:
        if tr.state == TrialState.COMPLETE:
            t.complete += 1
        elif tr.state == TrialState.RUNNING:
            t.running += 1
        elif tr.state == TrialState.WAITING:
            t.waiting += 1
        elif tr.state == TrialState.PRUNED:
            if tr.number in retried:
                t.retried += 1
            else:
                t.pruned += 1
        elif tr.state == TrialState.FAIL:
            if tr.number in retried:
                t.retried += 1
            else:
                t.failed += 1
    t.counted = t.total - t.retried
    t.budget = n_trials if n_trials else spec.default_trials()
    if spec.sampler_kind == "grid":
        covered = {params_key(trial_params(tr)) for tr in trials}
        t.remaining = [p for p in spec.grid_points() if params_key(p) not in covered]
        # a trial another worker has just created holds no parameters until it samples them,
        # yet it takes one of the points left: without this, two workers both start the last
        # point (GridSampler then repeats one)
        fresh = sum(1 for tr in trials if tr.state == TrialState.RUNNING and not trial_params(tr))
        t.remaining = t.remaining[fresh:]
    else:
        t.budget_is_trials = True
    return t


# ---------------------------------------------------------------- dead-worker recovery

def _proc_start(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields and fields[0] == "Z":  # a zombie is dead, only not yet reaped
        return None
    return fields[19] if len(fields) > 19 else "?"


def worker_identity(device: str) -> dict[str, Any]:
    pid = os.getpid()
    w = {"host": platform.node(), "pid": pid, "pid_start": _proc_start(pid), "device": device}
    job = slurm_state.current_job()
    if job:
        w["slurm_job"] = job
    return w


def worker_alive(w: dict[str, Any]) -> bool:
    pid = w.get("pid")
    if not isinstance(pid, int):
        return True  # unknown: never fail a trial we cannot judge
    if not Path("/proc").is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    start = _proc_start(pid)
    if start is None:
        return False
    return not (w.get("pid_start") and start != w.get("pid_start"))  # pid reused → dead


def recover_dead_trials(study, storage, max_retry: int = st.MAX_RETRY,
                        log: Callable[[str], None] = print, slurm: bool | None = None) -> int:
    """Fail RUNNING trials whose worker on this host is gone, and queue them again.

    The journal storage has no heartbeat in Optuna 5 (only RDBStorage implements it), so on
    a journal a dead worker is found by its pid, and its trial is failed through the public
    `Study.tell`. The tell goes through a study whose sampler has no `after_trial` hook:
    GridSampler's would call `study.stop()`, which raises outside `optimize`."""
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    teller = optuna.load_study(study_name=study.study_name, storage=storage,
                               sampler=optuna.samplers.RandomSampler())
    host, n = platform.node(), 0
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if slurm is None:
        slurm = slurm_state.available()
    jobs = [w["slurm_job"] for t in running if (w := t.user_attrs.get("worker") or {}).get("slurm_job")]
    known = slurm_state.states(sorted(set(jobs))) if slurm and jobs else {}
    for t in running:
        w = dead_worker(t, host, known.get if known else None)
        if w is None:
            continue
        try:
            failed = teller.tell(t.number, state=TrialState.FAIL)
        except (UpdateFinishedTrialError, RuntimeError, ValueError, KeyError):
            continue  # another worker recovered it first
        reason = (f"Slurm job {w['slurm_job']} {w['slurm_state'].lower()}" if w.get("slurm_state")
                  else f"worker pid {w.get('pid')} on {w.get('host', host)} died")
        st.StaleRetry(max_retry, f"{reason} mid-trial")(study, failed)
        log(f"trial {t.number}: {reason}; queued again with {trial_params(t)}")
        n += 1
    return n


def dead_worker(t, host: str, job_state: Callable[[str], str | None] | None = None
                ) -> dict[str, Any] | None:
    """The worker identity of running trial `t` when that worker is gone: a process on this
    host that no longer exists, or (given `job_state`, Slurm's answer) a Slurm job that is no
    longer running (cancelled, preempted, out of time), or this very job, restarted."""
    w = t.user_attrs.get("worker") or {}
    if not w and t.datetime_start is not None:
        # died between taking the trial and naming itself: judge it by age alone
        if time.time() - t.datetime_start.timestamp() > ORPHAN_S:
            w = {"host": host, "pid": "unknown"}
    if not w:
        return None
    job = w.get("slurm_job")
    if job and job_state is not None:
        if job == slurm_state.current_job():  # a requeued job runs its worker again
            same = w.get("host") == host and w.get("pid") == os.getpid()
            return None if same else w
        if not slurm_state.is_alive(job_state(job)):
            return {**w, "slurm_state": job_state(job)}
        if w.get("host") != host:
            return None
    if w.get("host") != host or (isinstance(w.get("pid"), int) and worker_alive(w)):
        return None
    return w


def requeue_unfinished(study, spec: SweepSpec, log: Callable[[str], None]) -> int:
    """Queue again, once per point, what an earlier command left without a value: failed
    trials (bad data, a crash, a diverged loss) and, on a grid, pruned points, unless the
    same parameters are complete, running or queued. Called once per command before its
    workers start, so a command never retries its own failures in a loop, and running the
    command again after the fix runs exactly the points that failed."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    alive = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
    covered = {params_key(trial_params(t)) for t in trials if t.state in alive}
    again = (TrialState.FAIL, TrialState.PRUNED) if spec.sampler_kind == "grid" else (TrialState.FAIL,)
    n = 0
    for t in trials:
        key = params_key(trial_params(t))
        if t.state not in again or t.number in retried or key in covered or not trial_params(t):
            continue
        covered.add(key)
        why = "pruned" if t.state == TrialState.PRUNED else "failed"
        st.StaleRetry(None, f"{why} in an earlier run")(study, t)
        log(f"trial {t.number} {why} before: queued again with {trial_params(t)}")
        n += 1
    return n


def requeue_interrupted(study, log: Callable[[str], None]) -> None:
    """A trial stopped by Ctrl-C / SIGINT is queued again, so rerunning the command redoes it."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    for t in trials:
        w = t.user_attrs.get("worker") or {}
        if (t.state == TrialState.FAIL and t.number not in retried and w.get("pid") == os.getpid()
                and w.get("host") == platform.node() and "fail_reason" not in t.user_attrs):
            st.StaleRetry(st.MAX_RETRY, "interrupted mid-trial")(study, t)
            log(f"trial {t.number} interrupted; queued again for the next run")


def fail_stale(study, storage, ref: st.StorageRef, log: Callable[[str], None]) -> None:
    if ref.kind == "journal":
        recover_dead_trials(study, storage, log=log)
    else:
        import warnings

        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optuna.storages.fail_stale_trials(study)


# ---------------------------------------------------------------- the objective

def make_pruner(name: str):
    import optuna

    name = (name or "none").lower()
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    raise BenchError(f"--pruner must be none, median or hyperband (got {name!r})")


def trial_sets(definition: dict[str, Any], params: dict[str, Any]) -> list[str]:
    spec = SweepSpec.from_dict(definition["spec"])
    return [*spec.sets, *definition.get("sets", []), *(f"{k}={v!r}" if isinstance(v, float)
                                                      else f"{k}={v}" for k, v in params.items())]


def make_objective(definition: dict[str, Any], study_name: str, device: str,
                   options: RunOptions, prune: bool, log: Callable[[str], None]):
    import optuna

    from harness.runner import run_variant

    spec = SweepSpec.from_dict(definition["spec"])
    seeds: list[int] = list(definition["seeds"])

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker_identity(device))
        params = {p.name: p.suggest(trial) for p in spec.params}
        log(f"trial {trial.number} start {params}")
        values, runs, step = [], [], 0
        for i, seed in enumerate(seeds):
            def on_epoch(stage: str, epoch: int, means: dict[str, float], i: int = i) -> None:
                nonlocal step
                if not prune or not means:
                    return
                loss = means.get("loss", next(iter(means.values())))
                if math.isfinite(loss):
                    trial.report(-float(loss), i * 1000 + step)  # higher is better, like the metric
                step += 1
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at {stage} epoch {epoch + 1}")

            try:
                record = run_variant(spec.method, definition["dataset"], seed,
                                     trial_sets(definition, params), definition.get("epochs"),
                                     device, group=study_name, on_epoch=on_epoch, log=log,
                                     show_progress=False, **options.run_kwargs())
            except NonFiniteLoss as exc:
                _fail(trial, f"seed {seed}: {exc}", runs, getattr(exc, "record", None))
                log(f"trial {trial.number} failed: {exc}")
                raise TrialFailed(str(exc)) from None
            except (optuna.TrialPruned, KeyboardInterrupt):
                raise
            except BenchError as exc:
                _fail(trial, f"seed {seed}: {exc}", runs, None)
                log(f"trial {trial.number} failed: {exc}")
                raise TrialFailed(str(exc)) from None
            except Exception as exc:  # a bug in a method must not end the whole sweep
                tb = traceback.format_exc(limit=3)
                _fail(trial, f"seed {seed}: {type(exc).__name__}: {exc}", runs, None)
                log(f"trial {trial.number} crashed:\n{tb}")
                raise TrialFailed(str(exc)) from None
            value = record.metric(spec.metric)
            if value is None or not math.isfinite(float(value)):
                _fail(trial, f"seed {seed}: metric {spec.metric} missing or not finite", runs, record)
                raise TrialFailed(f"metric {spec.metric} missing")
            values.append(float(value))
            runs.append(record.run_id)
            trial.set_user_attr("runs", runs)
            trial.set_user_attr(spec.metric + "_per_seed", values)
        mean = sum(values) / len(values)
        log(f"trial {trial.number} done {spec.metric}={mean:.3f} {params}")
        return mean

    return objective


def _fail(trial, reason: str, runs: list[str], record: RunRecord | None) -> None:
    trial.set_user_attr("fail_reason", reason[:FAIL_REASON_CHARS])
    if record is not None and record.run_id:
        runs = [*runs, record.run_id]
    if runs:
        trial.set_user_attr("runs", runs)


# ---------------------------------------------------------------- the loop

def run_worker(ref: st.StorageRef, study_name: str, device: str = "cpu",
               options: RunOptions | None = None, n_trials: int | None = None,
               timeout: float | None = None, pruner: str = "none",
               heartbeat: int = st.DEFAULT_HEARTBEAT, tag: str = "",
               log: Callable[[str], None] | None = None) -> Tally:
    import optuna

    tag = tag or f"{platform.node()}:{os.getpid()}"
    log = log or (lambda m: print(f"[{tag}] {m}", flush=True))
    storage = st.open_storage(ref, heartbeat=heartbeat)
    definition = st.study_definition(st.load_study(storage, study_name))
    spec = SweepSpec.from_dict(definition["spec"])
    study = optuna.load_study(study_name=study_name, storage=storage,
                              sampler=spec.make_sampler(), pruner=make_pruner(pruner))
    objective = make_objective(definition, study_name, device, options or RunOptions(),
                               pruner != "none", log)
    log(f"worker on {device}, study {study_name!r} in {ref.masked}")
    t0 = time.time()
    while True:
        fail_stale(study, storage, ref, log)
        state = tally(study, spec, n_trials)
        if state.done:
            break
        if timeout and time.time() - t0 > timeout:
            log(f"timeout ({timeout:g} s): no new trials")
            break
        if not state.can_start:
            time.sleep(POLL_S)  # others are running the last trials; recover them if they die
            continue
        try:
            study.optimize(objective, n_trials=1, catch=(TrialFailed,), gc_after_trial=True)
        except KeyboardInterrupt:
            requeue_interrupted(study, log)
            raise
    log(f"worker finished: {state.complete} complete, {state.failed} failed, "
        f"{state.pruned} pruned")
    return state


def parser() -> argparse.ArgumentParser:
    """The worker's command line, as `sweeps.launcher.worker_command` writes it."""
    ap = argparse.ArgumentParser(description="one bench sweep worker (started by `bench sweep`)")
    ap.add_argument("--study", required=True)
    ap.add_argument("--device", default="cpu")
    RunOptions.add_arguments(ap)
    ap.add_argument("--n-trials", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=None)
    ap.add_argument("--pruner", default="none")
    ap.add_argument("--heartbeat", type=int, default=st.DEFAULT_HEARTBEAT)
    ap.add_argument("--tag", default="")
    return ap


def main(argv: list[str] | None = None) -> int:
    configure_process()  # before anything loads torch (harness/process.py)
    a = parser().parse_args(argv)
    url = st.env_storage()
    if not url:
        print("error: BENCH_SWEEP_STORAGE is not set", file=sys.stderr)
        return 2
    ref = st.StorageRef(url, "journal" if url.startswith("journal:") else "rdb")
    try:
        run_worker(ref, a.study, a.device, RunOptions.from_namespace(a), a.n_trials, a.timeout,
                   a.pruner, a.heartbeat, a.tag)
    except BenchError as exc:
        print(f"error: {st.mask(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
