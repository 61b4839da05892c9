"""Benchmark (not a test): wall time of the same small grid with 1 and with 2 local workers.

    python benchmarks/sweep_workers.py [--grid 0.01,0.02,0.05,0.1] [--seeds 1] [--keep DIR]

Each point of the grid is a tiny `cam` run on `synth` (TINY sizes; `--full`: default
sizes). Both studies use their own journal and results store; the data cache is shared and
built once before timing.
With N CPU workers each gets cores // N threads, so on a 2-core machine the ratio shows
process-level parallelism against torch's own threading. Timings on a shared machine are
noisy: run it twice before trusting a number.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = ["n_train=64", "n_eval=16", "cam_epochs=1", "batch_size=16"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default="0.01,0.02,0.05,0.1", help="cam_lr values")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--workers", default="1,2", help="worker counts to compare")
    ap.add_argument("--keep", default=None, help="keep runs/journals in this folder")
    ap.add_argument("--full", action="store_true",
                    help="default synth sizes (1,200 images, ~15 s a trial) instead of tiny runs")
    a = ap.parse_args()
    sets = [] if a.full else TINY

    from rich.console import Console

    from harness.run_options import RunOptions
    from harness.runner import resolve_config, run
    from sweeps.launcher import SweepRequest, launch
    from sweeps.spaces import custom_sweep

    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    cache = Path(os.environ.get("BENCH_CACHE_DIR") or root / "cache")
    os.environ["BENCH_CACHE_DIR"] = str(cache)
    # build the synth arrays once, outside the timing
    run(resolve_config("cam", "synth", 0, sets, device="cpu"), runs_dir=root / "warm",
        cache_dir=cache, wandb_mode="disabled", show_progress=False, log=lambda m: None)
    # distinct cam_lr per worker count, so no timed trial is a stage-cache hit
    base = [float(v) for v in a.grid.split(",")]
    console = Console()
    times: dict[int, float] = {}
    for k, n in enumerate(int(w) for w in a.workers.split(",")):
        grid = ",".join(repr(round(v * (1 + 0.001 * (k + 1)), 6)) for v in base)
        spec = custom_sweep("cam", [f"cam_lr=grid:{grid}"])
        options = RunOptions(runs_dir=root / f"runs-w{n}", cache_dir=cache, wandb_mode="disabled")
        req = SweepRequest(spec, "synth", list(range(a.seeds)), list(sets), f"bench-w{n}-{os.getpid()}",
                           None, options, workers=n, devices="cpu")
        out = launch(req, console, show=False)
        assert out["complete"] == len(base), out
        times[n] = out["wall_s"]
        console.print(f"{n} worker(s): {out['wall_s']:.1f} s for {len(base)} trials "
                      f"× {a.seeds} seed(s)")
    ns = sorted(times)
    if len(ns) >= 2:
        console.print(f"ratio {ns[0]}→{ns[-1]} workers: {times[ns[0]] / times[ns[-1]]:.2f}× "
                      f"faster (cpu_count={os.cpu_count()}; noisy on a shared machine)")
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
