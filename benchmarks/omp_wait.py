"""OpenMP wait policy: a synth training run alone and beside a second one, torch's default wait vs passive.

torch's OpenMP threads spin while they wait for work (OMP_WAIT_POLICY=ACTIVE behaviour).
When another process holds a core (a second sweep or `bench reproduce --workers` process,
a test run beside a measurement) the spinning threads take turns with the one doing the
work, and a run slows by several times. `harness` sets OMP_WAIT_POLICY=PASSIVE unless the
user set it; this prints what that buys.

Each measurement is `bench run qa-clims` on synth in a child process with the CAM stage
cached and a fresh qa-clims stage (its lr nudged by 1e-9 per run, so the stage key
differs and the work is the same), `--epochs`-short; conditions interleaved per repeat;
prints the median wall per condition (torch's default wait, ACTIVE, PASSIVE) and the
default/PASSIVE ratio.

    python benchmarks/omp_wait.py [--repeats 3] [--epochs 2] [--cache DIR]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_nudge = itertools.count(1)
POLICIES = ("default", "ACTIVE", "PASSIVE")


def bench_run(policy: str, epochs: int, cache: Path, runs: Path) -> subprocess.Popen:
    # "default": an empty value stops harness from setting PASSIVE and libgomp ignores it
    # (one warning line), i.e. torch's behaviour when nobody sets the variable
    env = {**os.environ, "OMP_WAIT_POLICY": "" if policy == "default" else policy,
           "BENCH_CACHE_DIR": str(cache), "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    lr = 0.002 + next(_nudge) * 1e-9
    cmd = [sys.executable, "-m", "cli", "run", "qa-clims", "--set", f"epochs={epochs}",
           "--set", f"lr={lr!r}", "--runs-dir", str(runs), "--wandb", "disabled"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def timed(policy: str, together: int, epochs: int, cache: Path, runs: Path) -> float:
    """Median wall of `together` identical runs started at once."""
    t0 = time.perf_counter()
    procs = [bench_run(policy, epochs, cache, runs) for _ in range(together)]
    walls = []
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            sys.exit(f"bench run failed ({policy}): {err.decode()[-500:]}")
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=None,
                    help="stage cache to use (default: a temporary one; the first run builds "
                         "the teacher and the CAM)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp) / "cache"
        runs = Path(tmp) / "runs"
        timed("PASSIVE", 1, 1, cache, runs)  # warm: teacher, data and CAM stage cached
        conditions = [(policy, n) for n in (1, 2) for policy in POLICIES]
        walls: dict[tuple[str, int], list[float]] = {c: [] for c in conditions}
        for _ in range(args.repeats):
            for policy, n in conditions:
                walls[(policy, n)].append(timed(policy, n, args.epochs, cache, runs))
    print(f"bench run qa-clims --set epochs={args.epochs} (synth, CAM cached), "
          f"{os.cpu_count()} cores, median of {args.repeats}")
    for n in (1, 2):
        med = {policy: statistics.median(walls[(policy, n)]) for policy in POLICIES}
        label = "alone" if n == 1 else f"{n} at once"
        print(f"  {label:10s} " + "   ".join(f"{p} {med[p]:6.1f} s" for p in POLICIES)
              + f"   default/PASSIVE {med['default'] / med['PASSIVE']:5.2f}x")


if __name__ == "__main__":
    main()
