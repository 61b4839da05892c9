"""Pseudo-mask speed and memory per VOC-size image on CPU: the random walk and the dense CRF,
each beside a plain numpy/scipy floor measured in the same run.

One VOC-size image (500×375 px: a 125×94 stride-4 grid, N = 11,750 nodes), two present
classes with smooth CAMs, a smooth boundary map. Each case runs in its own child process
(so its peak RSS is its own), `--repeats` times after one warm-up; prints the median wall
and the child's peak RSS, beside `import` (the same child doing nothing: the floor of RSS).

- random walk: harness.masks.random_walk.propagate_to_edge (radius 5, β 10, 2^8 steps on
  the sparse transition matrix, torch CPU);
  floor: the same graph's 256 products x ← x·T in plain numpy (np.bincount over the
  non-zeros: a sparse matrix-vector product without any sparse library).
  (IRN's own dense form, the N×N matrix squared 8 times, needs 11,750² × 4 B = 552 MB per
  matrix and 8 × 2N³ = 26 TFLOP per image; it is not run.)
- dense CRF: harness.masks.crf.crf_inference_label, pydensecrf2, 10 mean-field iterations
  with the Gaussian and the bilateral kernel (IRN's parameters);
  floor: 10 mean-field iterations in plain numpy with the Gaussian kernel alone (an FFT
  convolution, sxy 3) — what any mean field costs before its bilateral term.

    python benchmarks/masks.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
H, W = 375, 500
CASES = ("import", "random_walk", "random_walk_floor", "crf", "crf_floor")


def gaussian_filter(a, sigma):
    """A Gaussian blur of a 2-D array (or each channel of H×W×C) by FFT, in numpy."""
    import numpy as np

    if a.ndim == 3:
        return np.stack([gaussian_filter(a[..., c], sigma) for c in range(a.shape[2])], -1)
    h, w = a.shape
    y = np.fft.fftfreq(h)[:, None]
    x = np.fft.rfftfreq(w)[None, :]
    kernel = np.exp(-2 * (np.pi * sigma) ** 2 * (y ** 2 + x ** 2))
    return np.fft.irfft2(np.fft.rfft2(a) * kernel, s=a.shape)


def _inputs():
    import numpy as np

    rng = np.random.default_rng(0)
    h, w = (H - 1) // 4 + 1, (W - 1) // 4 + 1
    cams = np.stack([gaussian_filter(rng.random((h, w)), 6) for _ in range(2)]).astype(np.float32)
    cams /= cams.reshape(2, -1).max(1)[:, None, None]
    edge = gaussian_filter(rng.random((h, w)), 2).astype(np.float32)
    edge = (edge - edge.min()) / (edge.max() - edge.min())
    img = gaussian_filter(rng.random((H, W, 3)), 4)
    img = ((img - img.min()) / (img.max() - img.min()) * 255).astype(np.uint8)
    labels = rng.integers(0, 3, (H, W))
    return cams, edge, img, labels


def _case(name: str, repeats: int) -> dict:
    import numpy as np

    cams, edge, img, labels = _inputs()
    if name == "import":
        import torch  # noqa: F401 - the RSS every case starts from

        fn = lambda: None  # noqa: E731
    elif name == "random_walk":
        import torch

        from harness.masks.random_walk import propagate_to_edge

        torch.set_num_threads(1)
        x, e = torch.from_numpy(cams), torch.from_numpy(edge)
        fn = lambda: propagate_to_edge(x, e, radius=5, beta=10, exp_times=8)  # noqa: E731
    elif name == "random_walk_floor":
        import torch

        from harness.masks.random_walk import sparse_affinity

        a = sparse_affinity(torch.from_numpy(edge), 5).coalesce()  # the graph, built once
        rows, cols = a.indices().numpy()
        vals = a.values().numpy().astype(np.float64)

        def fn():
            v = vals ** 10
            col = np.bincount(cols, weights=v, minlength=a.shape[0])
            t = v / col[cols]
            y = (cams * (1 - edge)).reshape(2, -1).astype(np.float64)
            n = a.shape[0]
            for _ in range(256):  # (x·T)_j = Σ_i x_i T_ij
                y = np.stack([np.bincount(cols, weights=t * yk[rows], minlength=n) for yk in y])
            return y
    elif name == "crf":
        from harness.masks.crf import IRN_CRF, crf_inference_label

        fn = lambda: crf_inference_label(img, labels, 3, IRN_CRF)  # noqa: E731
    elif name == "crf_floor":
        def fn():
            u = np.where(np.arange(3)[:, None, None] == labels[None], 0.7, 0.3 / 2)
            unary = -np.log(u)
            q = np.exp(-unary)
            q /= q.sum(0)
            for _ in range(10):
                msg = np.stack([gaussian_filter(q[k], 3) for k in range(3)])
                energy = unary + 3 * (msg.sum(0)[None] - msg)  # Potts compatibility
                q = np.exp(-(energy - energy.min(0)))
                q /= q.sum(0)
            return q.argmax(0)
    else:
        raise SystemExit(f"unknown case {name}")
    fn()  # warm-up
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB → MiB on Linux
    return {"case": name, "median_s": statistics.median(walls), "peak_rss_mib": rss, "repeats": repeats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--case", choices=CASES)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(_case(args.case, args.repeats)))
        return
    print(f"one VOC-size image {W}×{H} (stride-4 grid {(W - 1) // 4 + 1}×{(H - 1) // 4 + 1}), "
          f"CPU, median of {args.repeats}")
    for case in CASES:
        out = subprocess.run([sys.executable, __file__, "--case", case, "--repeats", str(args.repeats)],
                             capture_output=True, text=True, cwd=ROOT, check=True,
                             env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin"})
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['case']:<18} {r['median_s'] * 1000:9.1f} ms   peak RSS {r['peak_rss_mib']:7.1f} MiB")


if __name__ == "__main__":
    main()
