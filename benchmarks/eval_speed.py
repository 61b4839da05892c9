"""Seed evaluation speed on the VOC-size fixture: our `bench eval` path against a plain numpy
one-pass floor over the same files, and the evaluator as it was before the one-pass rewrite
(predict and count once per threshold), all in one run; checks all three agree.

    python benchmarks/eval_fixture.py /tmp/evalfix          # once: 1,464 VOC-size images
    python benchmarks/eval_speed.py /tmp/evalfix [--runs 3] [--old-runs 1]

Prints the median wall time of each path and ours / floor (goal ≤ 1.5×) and old / ours.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.evaluate import DEFAULT_THRESHOLDS, FIXED_THRESHOLD, iou_from_confusion  # noqa: E402

N_LABELS = 21  # VOC background + 20 classes


def fixture_paths(fix: Path) -> tuple[list[str], Path, Path]:
    voc = fix / "voc" / "VOCdevkit" / "VOC2012"
    ids = (voc / "ImageSets" / "Segmentation" / "train.txt").read_text().split()
    return ids, voc / "SegmentationClass", fix / "cams"


def floor(fix: Path) -> list[float]:
    """The plain one-pass floor: for each file pair, max/argmax once, bin the max over the
    19 thresholds, one bincount; no validation, no threads, no dataset layer."""
    ids, seg, cams = fixture_paths(fix)
    edges = np.asarray(DEFAULT_THRESHOLDS, np.float32)
    n = N_LABELS
    hist = np.zeros((len(edges) + 1) * (n + 1) * n, np.int64)
    for name in ids:
        d = np.load(cams / f"{name}.npy", allow_pickle=True).item()
        gt = np.asarray(Image.open(seg / f"{name}.png"))
        high = d["high_res"]
        label = (d["keys"] + 1)[high.argmax(0)]
        bins = np.searchsorted(edges, high.max(0))
        hist += np.bincount(((bins * (n + 1) + np.minimum(gt, n)) * n + label).ravel(),
                            minlength=hist.size)
    hist = hist.reshape(len(edges) + 1, n + 1, n)
    confs = np.cumsum(hist[::-1], 0)[::-1][1:, :-1, :].copy()
    confs[:, :, 0] = hist[:, :-1, :].sum((0, 2))[None] - confs[:, :, 1:].sum(2)
    return [float(np.nanmean(iou_from_confusion(c)) * 100) for c in confs]


def old_path(fix: Path) -> list[float]:
    """The evaluator before the rewrite: files read one by one, then per threshold a label
    map and a confusion matrix (SeedEvaluator.add as it was)."""
    from harness.camio import cam_folder, read_cam
    from harness.data import load_dataset
    from harness.evaluate import confusion, predict

    ds = load_dataset("voc", "eval", root=fix / "voc", cache_dir=None)
    thresholds = sorted(set(DEFAULT_THRESHOLDS) | {FIXED_THRESHOLD})
    confs = np.zeros((len(thresholds), N_LABELS, N_LABELS), np.int64)
    for i, path in enumerate(cam_folder(fix / "cams", ds.image_names)):
        gt = ds.mask(i)
        keys, high = read_cam(path, gt.shape)
        for ti, t in enumerate(thresholds):
            confs[ti] += confusion(predict(keys, high, t), gt, N_LABELS)
    by_t = {t: float(np.nanmean(iou_from_confusion(c)) * 100) for t, c in zip(thresholds, confs,
                                                                              strict=True)}
    return [by_t[t] for t in DEFAULT_THRESHOLDS]


def ours(fix: Path, cache_dir: Path) -> list[float]:
    """`bench eval --dataset voc --data-root … --cams … --json`, in this process."""
    from typer.testing import CliRunner

    from cli import _register, app

    _register()  # every sub-command, as `bench` registers them
    result = CliRunner().invoke(app, ["eval", "--dataset", "voc", "--data-root", str(fix / "voc"),
                                      "--cams", str(fix / "cams"), "--cache-dir", str(cache_dir),
                                      "--json"])
    if result.exit_code != 0:
        raise SystemExit(f"bench eval failed: {result.output}")
    return list(json.loads(result.stdout)["miou_by_threshold"].values())


def timed(fn, *args) -> tuple[float, float, list[float]]:
    """(wall s, CPU s of this process, all threads, result): CPU time is what a busy shared
    machine disturbs least."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return time.perf_counter() - t0, time.process_time() - c0, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("fixture", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--old-runs", type=int, default=1, help="the old path takes ~7× longer")
    args = ap.parse_args()
    import cli.eval_cmd  # noqa: F401  (imports outside the timed region, as in a session)
    import harness.method  # noqa: F401

    cache = Path(tempfile.mkdtemp(prefix="evalspeed-"))
    first, _, ref = timed(ours, args.fixture, cache)  # fills the image-label cache, as any first eval
    print(f"ours, first run (labels decoded and cached): {first:.1f} s")
    times: dict[str, list[float]] = {"floor": [], "ours": [], "old": []}
    cpu: dict[str, list[float]] = {"floor": [], "ours": [], "old": []}
    for r in range(args.runs):
        for name, fn in (("floor", floor), ("ours", ours), ("old", old_path)):
            if name == "old" and r >= args.old_runs:
                continue
            dt, dc, mious = timed(fn, args.fixture, *((cache,) if name == "ours" else ()))
            times[name].append(dt)
            cpu[name].append(dc)
            diff = max(abs(a - b) for a, b in zip(mious, ref, strict=True))
            print(f"run {r + 1} {name:>5}: wall {dt:6.1f} s, CPU {dc:6.1f} s  "
                  f"(max |ΔmIoU| vs ours {diff:.2e})", flush=True)
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cli", "eval", "--dataset", "voc", "--data-root",
                    str(args.fixture / "voc"), "--cams", str(args.fixture / "cams"), "--json"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    cli = time.perf_counter() - t0
    med = {k: statistics.median(v) for k, v in times.items() if v}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items() if v}
    print(f"images: {len(fixture_paths(args.fixture)[0])}, cores: {os.cpu_count()}, "
          f"thresholds: {len(DEFAULT_THRESHOLDS)}")
    print(f"median floor {med['floor']:.1f} s, ours {med['ours']:.1f} s, old {med['old']:.1f} s; "
          f"`bench eval` as a process (imports included): {cli:.1f} s")
    print(f"wall: ours / floor = {med['ours'] / med['floor']:.2f}x (goal <= 1.5x); "
          f"old / ours = {med['old'] / med['ours']:.1f}x")
    print(f"CPU: floor {med_cpu['floor']:.1f} s, ours {med_cpu['ours']:.1f} s, old {med_cpu['old']:.1f} s; "
          f"ours / floor = {med_cpu['ours'] / med_cpu['floor']:.2f}x; "
          f"old / ours = {med_cpu['old'] / med_cpu['ours']:.1f}x")


if __name__ == "__main__":
    main()
