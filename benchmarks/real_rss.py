"""Benchmark (not a test): peak resident memory of `bench run semples` on a VOC-layout tree.

    python benchmarks/real_rss.py [--sizes voc-small|voc-real|both] [--limit 8] [--keep DIR]

The command `bench run semples --dataset voc --data-root TREE --set limit=8
--epochs 1 --allow-random-weights` (plus `--set prompt_epochs=1 refine_epochs=1
cam_epochs=1`, what `--epochs 1` means once every stage follows it), on a tree of 12 images
of 90–140 px (`voc-small`, as the issue) and/or of VOC's own 500×375 / 375×500 / 333×500
(`voc-real`). Each configuration runs in a fresh process (peak RSS is per process), once
as before (backbone activations all kept for backward, freed tensors kept in glibc's heap)
and once as now (on CPU a ViT backbone recomputes them block by block,
`harness.generator.CHECKPOINT_ON_CPU`; on real data blocks of 1 MB and more are mmapped and the
heap is trimmed when each stage ends, so freed tensors go back to the OS, `harness.memory`). A thread
samples VmRSS every 20 ms and charges it to the stage being trained (or to inference); the
process's peak is `resource.getrusage(...).ru_maxrss`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SIZES = {"voc-small": None, "voc-real": [(375, 500), (500, 375), (333, 500), (500, 333)]}


def tree(root: Path, kind: str, n: int = 12) -> Path:
    import numpy as np

    from tests.fixtures_real import make_voc_sized

    if (root / "VOCdevkit").is_dir():
        return root
    rng = np.random.default_rng(0)
    fixed = SIZES[kind]
    sizes = ([fixed[i % len(fixed)] for i in range(n)] if fixed else
             [(int(rng.integers(90, 141)), int(rng.integers(90, 141))) for _ in range(n)])
    return make_voc_sized(root, sizes)


def vm_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(args: argparse.Namespace) -> None:
    """One run in this process; prints {phase: peak MB, ...} as JSON on the last line."""
    import harness.cache
    import harness.generator
    import harness.runner
    from harness.runner import resolve_config, run

    harness.generator.CHECKPOINT_ON_CPU = args.mode == "now"
    if args.mode == "before":  # freed heap stays resident, as before
        harness.cache.trim_heap = lambda: None
        harness.runner.large_tensors_from_mmap = contextlib.nullcontext
    phase, peaks, done = ["setup"], {}, threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peaks[phase[0]] = max(peaks.get(phase[0], 0.0), vm_rss_mb())

    def log(message: str) -> None:
        if message.startswith("stage cache miss: "):
            phase[0] = message.split()[3]

    evaluate = harness.runner._evaluate

    def timed_evaluate(*a, **k):  # instrumentation only: names the phase
        phase[0] = "CAM inference"
        return evaluate(*a, **k)

    harness.runner._evaluate = timed_evaluate
    threading.Thread(target=sample, daemon=True).start()
    sets = [f"limit={args.limit}", "prompt_epochs=1", "refine_epochs=1", "cam_epochs=1"]
    cfg = resolve_config("semples", "voc", 0, sets, epochs=1, device="cpu",
                         data_root=args.data_root, allow_random_weights=True)
    t0 = time.time()
    run(cfg, runs_dir=Path(args.work) / "runs", cache_dir=Path(args.work) / f"cache-{os.getpid()}",
        wandb_mode="disabled", log=log, show_progress=False)
    done.set()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mb": peak, "wall_s": time.time() - t0, "phases": peaks}))


def measure(data_root: Path, work: Path, mode: str, limit: int) -> dict:
    cmd = [sys.executable, __file__, "--child", "--mode", mode, "--data-root", str(data_root),
           "--work", str(work), "--limit", str(limit)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="voc-small", choices=("voc-small", "voc-real", "both"))
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--modes", default="before,now")
    ap.add_argument("--keep", default=None, help="keep trees and runs in this folder")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="now", help=argparse.SUPPRESS)
    ap.add_argument("--data-root", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--work", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a)
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="bench-rss-"))
    kinds = ["voc-small", "voc-real"] if a.sizes == "both" else [a.sizes]
    print(f"torch threads {__import__('torch').get_num_threads()}, cpus {os.cpu_count()}")
    for kind in kinds:
        root = tree(work / kind, kind)
        results = {m: measure(root, work, m, a.limit) for m in a.modes.split(",")}
        print(f"\n{kind}: bench run semples --set limit={a.limit} --epochs 1 (each stage 1 epoch)")
        phases = list(dict.fromkeys(p for r in results.values() for p in r["phases"]))
        print(f"{'phase':<16}" + "".join(f"{m + ' MB':>12}" for m in results))
        for p in phases:
            print(f"{p:<16}" + "".join(f"{r['phases'].get(p, 0):>12.0f}" for r in results.values()))
        print(f"{'peak RSS':<16}" + "".join(f"{r['peak_mb']:>12.0f}" for r in results.values()))
        print(f"{'wall s':<16}" + "".join(f"{r['wall_s']:>12.1f}" for r in results.values()))
        if {"before", "now"} <= results.keys():
            ratio = results["now"]["peak_mb"] / results["before"]["peak_mb"]
            print(f"peak now / before: {ratio:.2f}")


if __name__ == "__main__":
    main()
