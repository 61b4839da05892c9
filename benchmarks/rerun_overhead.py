"""Per-run overhead: a first `bench run semples` vs a λ-only rerun that hits the stage cache.

Both runs are `bench run semples` in child processes on fresh cache and runs folders
(so the first run builds the synth data, the teacher and every stage, as on a new
machine; `--warm-teacher DIR` copies a built teacher and data in first, to see the ratio
without the teacher build). The second run changes only `lambda_refine`, so stages (a) and
(b) are cache hits and only stage (c) trains. Prints both walls (whole processes, from
the parent), their ratio, and where each run's time went, measured inside the child:
imports, data, teacher, each stage (built or cache hit), CAM inference, evaluation,
W&B, results store; exclusive times (a phase inside another is not counted twice).

    python benchmarks/rerun_overhead.py [--lambda-refine 0.1] [--wandb offline]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHASES_ENV = "BENCH_OVERHEAD_PHASES"  # the child writes its phase times to this file


class Phases:
    """Exclusive wall time per phase: a phase running inside another is subtracted from it."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.stack: list[list] = []

    def wrap(self, name, fn):
        phases = self

        def timed(*args, **kwargs):
            phase = name(*args) if callable(name) else name
            phases.stack.append([phase, time.perf_counter(), 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                label, start, inner = phases.stack.pop()
                spent = time.perf_counter() - start
                phases.totals[label] = phases.totals.get(label, 0.0) + spent - inner
                if phases.stack:
                    phases.stack[-1][2] += spent

        return timed


def child(argv: list[str]) -> None:
    """Run `bench run` in this process with its phases timed; write them as JSON."""
    t0 = time.perf_counter()
    phases = Phases()
    import cli  # noqa: F401 - the CLI's own imports, as `bench` pays them
    import harness.runner as runner
    from harness import cache, evaluate, method, teacher, tracking
    from harness.synth import teacher as synth_teacher

    phases.totals["imports (harness, torch)"] = time.perf_counter() - t0
    method.load_dataset = phases.wrap("data", method.load_dataset)
    for module, name in ((synth_teacher, "load_synth_teacher"), (teacher, "load_real_teacher")):
        setattr(module, name, phases.wrap("teacher load", getattr(module, name)))
    get_or_build = cache.StageCache.get_or_build
    def stage_label(store, stage, deps, *_):
        done = (store.path(stage, cache.stage_key(stage, deps)) / "manifest.json").exists()
        return f"stage {stage} ({'cache hit' if done else 'built'})"

    cache.StageCache.get_or_build = phases.wrap(stage_label, get_or_build)
    runner._evaluate = phases.wrap("CAM inference", runner._evaluate)
    for name in ("add", "scores"):
        setattr(evaluate.SeedEvaluator, name,
                phases.wrap("evaluation", getattr(evaluate.SeedEvaluator, name)))
    for name in ("__init__", "log", "summary", "finish"):
        setattr(tracking.Tracker, name, phases.wrap("W&B", getattr(tracking.Tracker, name)))
    from harness import store

    runner.ResultsStore.begin = phases.wrap("results store", runner.ResultsStore.begin)
    for name in ("write_json", "append_metrics", "finish"):
        setattr(store.RunDir, name, phases.wrap("results store", getattr(store.RunDir, name)))
    runner.git_revision = phases.wrap("git revision", runner.git_revision)
    run = phases.wrap("run (rest: config, model init, text features)", runner.run)
    runner.run = run
    sys.argv = ["bench", *argv]
    try:
        cli.main()
    except SystemExit as exc:
        if exc.code:
            raise
    finally:
        phases.totals["process (rest)"] = (time.perf_counter() - t0
                                           - sum(phases.totals.values()))
        Path(os.environ[PHASES_ENV]).write_text(json.dumps(phases.totals))


def run_child(argv: list[str], env: dict, out: Path) -> tuple[float, dict]:
    env = {**env, PHASES_ENV: str(out)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", *argv], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"bench run failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return wall, json.loads(out.read_text())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.path.insert(0, str(ROOT))
        child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", default="semples")
    ap.add_argument("--lambda-refine", default="0.1", help="the rerun's λ (the first run: default)")
    ap.add_argument("--wandb", default="offline", choices=("offline", "disabled"))
    ap.add_argument("--warm-teacher", type=Path, default=None,
                    help="copy synth data + teacher from this cache dir into the fresh cache first")
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="key=value for both runs (e.g. n_train=400 for a shorter measurement)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rerun-overhead-"))
    cache_dir, runs_dir = tmp / "cache", tmp / "runs"
    cache_dir.mkdir()
    if args.warm_teacher:
        for sub in ("synth", "teacher", "teachers"):
            if (args.warm_teacher / sub).is_dir():
                shutil.copytree(args.warm_teacher / sub, cache_dir / sub)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_CACHE_DIR": str(cache_dir),
           "HF_HUB_OFFLINE": "1"}
    base = ["run", args.method, "--device", "cpu", "--runs-dir", str(runs_dir),
            "--wandb", args.wandb, "--json", *[x for kv in args.sets for x in ("--set", kv)]]
    try:
        first_wall, first = run_child(base, env, tmp / "first.json")
        again_wall, again = run_child([*base, "--set", f"lambda_refine={args.lambda_refine}"],
                                      env, tmp / "again.json")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    report(args, first_wall, first, again_wall, again)


def report(args, first_wall: float, first: dict, again_wall: float, again: dict) -> None:
    import torch

    print(f"{args.method}: first run vs rerun with --set lambda_refine={args.lambda_refine}; "
          f"W&B {args.wandb}; torch threads {torch.get_num_threads()}; warm teacher: "
          f"{bool(args.warm_teacher)}; both runs: {' '.join(args.sets) or 'defaults'}")
    print(f"{'phase':52s} {'first s':>9s} {'rerun s':>9s}")
    for name in sorted(set(first) | set(again), key=lambda n: -first.get(n, again.get(n, 0))):
        print(f"{name:52s} {first.get(name, 0):9.2f} {again.get(name, 0):9.2f}")
    print(f"{'python start-up (process wall - child total)':52s} "
          f"{first_wall - sum(first.values()):9.2f} {again_wall - sum(again.values()):9.2f}")
    print(f"wall: first {first_wall:.1f} s, rerun {again_wall:.1f} s, "
          f"ratio rerun/first {again_wall / first_wall:.2f}")


if __name__ == "__main__":
    main()
