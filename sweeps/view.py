"""What a study is doing: trials done / running / failed, the best so far, every trial.

`live()` refreshes in place while local workers run (a plain line per change when the
output is not a terminal); `bench sweep … --status` prints one snapshot of a study that
runs elsewhere; `final_report()` prints the best parameters and a table of all trials.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from harness.config import set_item
from harness.text import shown
from sweeps.spaces import SweepSpec
from sweeps.worker import Tally, requeue_reasons, retried_numbers, tally, trial_params


def _best(study):
    try:
        return study.best_trial
    except ValueError:
        return None


def summary_line(study, spec: SweepSpec, t: Tally) -> str:
    best = _best(study)
    best_txt = (f"best {spec.metric}={best.value:.3f} (trial {best.number}: "
                + ", ".join(f"{k}={shown(v, '.4g')}" for k, v in best.params.items()) + ")"
                if best is not None else "best: none yet")
    left = (f", {len(t.remaining)} grid points not started" if spec.sampler_kind == "grid"
            else f", budget {t.budget}")
    return (f"{study.study_name}: {t.complete} done, {t.running} running, {t.waiting} queued, "
            f"{t.failed} failed, {t.pruned} pruned, {t.retried} retried{left}; {best_txt}")


def trials_table(study, spec: SweepSpec, title: str | None = None) -> Table:
    trials = study.get_trials(deepcopy=False)
    retried, requeued = retried_numbers(trials), requeue_reasons(trials)
    best = _best(study)
    table = Table(title=title or f"study {study.study_name} ({spec.name}: {spec.method}, "
                                 f"{spec.sampler_kind})")
    table.add_column("#", justify="right")
    table.add_column("state")
    for p in spec.params:
        table.add_column(p.name, justify="right")
    table.add_column(spec.metric, justify="right")
    table.add_column("per seed", justify="right")
    table.add_column("time", justify="right")
    table.add_column("worker")
    table.add_column("note")
    now = datetime.now(UTC)
    for t in trials:
        params = trial_params(t)
        state = t.state.name.lower()
        if state == "fail" and t.number in retried:
            state = "fail→retried"
        style = {"complete": "", "running": "cyan", "waiting": "dim", "pruned": "yellow"}.get(
            state, "red")
        if best is not None and t.number == best.number:
            style = "bold green"
        per_seed = t.user_attrs.get(spec.metric + "_per_seed") or []
        start = t.datetime_start
        end = t.datetime_complete or (now if start else None)
        if start is not None and start.tzinfo is None:
            end = end.replace(tzinfo=None) if end else None
        secs = (end - start).total_seconds() if start and end else None
        w = t.user_attrs.get("worker") or {}
        note = (t.user_attrs.get("fail_reason") or t.system_attrs.get("fail_reason")
                or requeued.get(t.number, ""))
        if state == "pruned" and t.intermediate_values:
            step = max(t.intermediate_values)
            note = f"pruned at step {step} (−loss {t.intermediate_values[step]:.3g})"
        if t.system_attrs.get("failed_trial") is not None:
            note = (f"retry of #{t.system_attrs['failed_trial']}" + (f"; {note}" if note else ""))
        table.add_row(str(t.number), Text(state, style=style),
                      *[shown(params.get(p.name, ""), ".4g") for p in spec.params],
                      f"{t.value:.3f}" if t.value is not None and state == "complete" else "",
                      " ".join(f"{v:.2f}" for v in per_seed),
                      f"{secs:.0f}s" if secs is not None else "",
                      f"{w.get('host', '')}:{w.get('pid', '')}" if w else "",
                      Text(note[:80]))
    return table


def failures(study) -> list[tuple[int, dict[str, Any], str]]:
    """(number, parameters, whole reason) of each failed trial not queued again, in order."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    return [(t.number, trial_params(t), t.user_attrs.get("fail_reason")
             or t.system_attrs.get("fail_reason") or "no reason recorded (see the worker logs)")
            for t in trials if t.state.name == "FAIL" and t.number not in retried]


def print_failures(study, console: Console) -> None:
    """Each failure on one line, whole and unwrapped (the table's note column is cut)."""
    for n, params, reason in failures(study):
        values = ", ".join(f"{k}={shown(v, '.4g')}" for k, v in params.items())
        console.print(f"trial {n} failed ({values}): {reason}", soft_wrap=True, markup=False,
                      style="red", highlight=False)


def snapshot(study, spec: SweepSpec, n_trials: int | None = None):
    t = tally(study, spec, n_trials)
    return Group(Text(summary_line(study, spec, t), style="bold"), trials_table(study, spec))


def final_report(study, spec: SweepSpec, console: Console | None = None,
                 n_trials: int | None = None) -> None:
    console = console or Console()
    console.print(trials_table(study, spec))
    print_failures(study, console)
    t = tally(study, spec, n_trials)
    console.print(summary_line(study, spec, t))
    best = _best(study)
    if best is not None:
        console.print("best params: " + " ".join(f"--set {set_item(k, v)}" for k, v in best.params.items())
                      + f"  ({spec.metric} {best.value:.3f}, trial {best.number})")
    if spec.sampler_kind == "grid" and t.remaining:
        console.print(f"[yellow]{len(t.remaining)} grid points not run yet: rerun the same "
                      "command to continue[/yellow]")


def live(study, spec: SweepSpec, alive: Callable[[], bool], n_trials: int | None = None,
         console: Console | None = None, refresh_s: float = 2.0) -> None:
    """Show progress until `alive()` is false: a live table on a terminal, lines otherwise."""
    console = console or Console()
    if console.is_terminal:
        from rich.live import Live

        with Live(snapshot(study, spec, n_trials), console=console, refresh_per_second=1) as lv:
            while alive():
                time.sleep(refresh_s)
                lv.update(snapshot(study, spec, n_trials))
        return
    last = ""
    while True:
        running = alive()
        line = summary_line(study, spec, tally(study, spec, n_trials))
        if line != last:
            console.print(line, soft_wrap=True)
            last = line
        if not running:
            return
        time.sleep(refresh_s)
