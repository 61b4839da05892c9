"""The synth segmentation measurement (docs/protocol-segmentation.md), one cell per call, and
its results page. Resumable: a cell already in the store is skipped, so the CPU lock can be
taken one short command at a time:

    flock /work/cpu.lock python -m benchmarks.seg_synth step --runs-dir RUNS   # one cell
    python -m benchmarks.seg_synth status --runs-dir RUNS                       # what is done
    python -m benchmarks.seg_synth report --runs-dir RUNS --out docs/results/segmentation-synth.md

Order (the addendum's): (1) the budget curve, one FS run of 2,000 iterations, seed 0, whose
losses give the plateau budget B; (2) pair by pair (seeds 0–4 × teacher_seed 0, then 1): FS,
cam, semples, clims, qa-clims, then clip-es (not registered: reported beside); (3) with
`--held-out`, the same at seeds 21, 22 × teacher_seed 7.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from reports import seg_synth as S

BUDGET_FILE, FAILED_FILE = S.BUDGET_FILE, S.FAILED_FILE
ALL_ROWS = (S.FS, *S.METHODS, *S.EXTRA_METHODS)


def _bench(args: list[str]) -> dict:
    """Run `bench ARGS --json` in a subprocess; its record (last stdout line)."""
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "cli", *args, "--json"], capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    print(f"[{time.time() - t0:.0f} s] bench {' '.join(args)} → exit {proc.returncode}", flush=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _common(runs: Path) -> list[str]:
    return ["--segment", S.MODEL, "--runs-dir", str(runs)]


def _cache_dir() -> Path:
    from harness.data import default_cache_dir

    return Path(os.environ.get("BENCH_CACHE_DIR") or default_cache_dir())


def budget(runs: Path) -> int | None:
    path = runs / BUDGET_FILE
    return json.loads(path.read_text())["budget"] if path.exists() else None


def run_curve(runs: Path) -> None:
    """(1) One FS run at the curve's length, seed 0; its per-step losses → the budget."""
    rec = _bench(["segment", "--masks", "gt", "--dataset", "synth", "--seed", "0", "--set",
                  f"seg_iterations={S.CURVE_ITERATIONS}", *_common(runs)])
    key = rec["provenance"]["segment"]["stage_key"]
    losses = json.loads((_cache_dir() / "stages" / "segment" / key / "losses.json").read_text())
    b = S.plateau_budget(losses)
    (runs / BUDGET_FILE).write_text(json.dumps(
        {"budget": b, "stage_key": key, "run_id": rec["run_id"], "block": S.BLOCK,
         "block_means": S.block_means(losses), "wall_s": rec.get("wall_s")}, indent=1))
    print(f"plateau budget: {b} iterations", flush=True)


def wanted(held_out: bool, rows: tuple[str, ...] = ALL_ROWS) -> list[tuple[str, S.Pair]]:
    pairs = S.HELD_OUT if held_out else S.PAIRS
    return [(row, p) for p in pairs for row in ALL_ROWS if row in rows]


def todo(runs: Path, b: int, held_out: bool, rows: tuple[str, ...] = ALL_ROWS) -> list[tuple[str, S.Pair]]:
    have = S.cells(S.load_records(runs), b)
    failed = _failed(runs)
    return [(row, p) for row, p in wanted(held_out, rows)
            if p not in have.get(row, {}) and row not in failed]


def _failed(runs: Path) -> dict[str, str]:
    path = runs / FAILED_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def run_cell(runs: Path, b: int, row: str, pair: S.Pair) -> None:
    seed, teacher = pair
    iters = ["--set", f"seg_iterations={b}", "--seed", str(seed)]
    if row == S.FS:
        _bench(["segment", "--masks", "gt", "--dataset", "synth", *iters, *_common(runs)])
        return
    try:
        _bench(["run", row, "--set", f"teacher_seed={teacher}", *iters, "--wandb", "disabled",
                *_common(runs)])
    except RuntimeError as e:
        if row not in S.EXTRA_METHODS:
            raise
        # a method beyond the addendum that does not run on synth: noted, never retried
        (runs / FAILED_FILE).write_text(json.dumps({**_failed(runs), row: str(e)}, indent=1))
        print(f"{row}: does not run here ({e}); skipped from now on", flush=True)


def step(runs: Path, held_out: bool, rows: tuple[str, ...] = ALL_ROWS) -> bool:
    """Run the next missing cell; False when nothing is left."""
    runs.mkdir(parents=True, exist_ok=True)
    b = budget(runs)
    if b is None:
        run_curve(runs)
        return True
    left = todo(runs, b, held_out, rows)
    if not left:
        return False
    run_cell(runs, b, *left[0])
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.seg_synth")
    ap.add_argument("what", choices=("step", "status", "report"))
    ap.add_argument("--runs-dir", type=Path, required=True)
    ap.add_argument("--held-out", action="store_true", help="the held-out pairs (step, status)")
    ap.add_argument("--out", type=Path, help="report: write the page here (else stdout)")
    ap.add_argument("--rows", default=",".join(ALL_ROWS),
                    help="step: only these rows, in the addendum's order (FS and cam first when "
                         "time is short), e.g. FS,cam,semples")
    args = ap.parse_args(argv)
    if args.what == "step":
        return 0 if step(args.runs_dir, args.held_out, tuple(args.rows.split(","))) else 1
    if args.what == "status":
        b = budget(args.runs_dir)
        left = todo(args.runs_dir, b, args.held_out) if b else wanted(args.held_out)
        print(f"budget {b}; {len(left)} cells left; next: {left[:3]}; failed: {_failed(args.runs_dir)}")
        return 0
    if args.out:  # the page and its figure beside it (seed mIoU against seg_miou)
        png = args.out.with_suffix(".png")
        _, _, main_pairs, held = S.measurements(args.runs_dir)
        S.figure(main_pairs, held, png)
        text = S.page(args.runs_dir, png.name)
        tmp = args.out.with_name(f".{args.out.name}.tmp")
        tmp.write_text(text)
        tmp.replace(args.out)
    else:
        print(S.page(args.runs_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
