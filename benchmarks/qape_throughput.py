"""QAPE throughput: one batched generate per image vs one generate call per question.

Uses the tiny random BLIP of the tests (a BlipConfig + hand-written vocabulary), so it
measures the harness's batching, not BLIP's quality. Same images, same questions (every
present class × the 16 templates), one run each; prints per-image medians and the ratio.

    .venv/bin/python benchmarks/qape_throughput.py [--images 8] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import numpy as np
    import torch

    from harness.data.synth import SynthSpec
    from harness.data.synth_dataset import SynthDataset
    from methods.qape import corpus_items
    from methods.vqa import TEMPLATES, BlipAnswerer
    from tests.fixtures_real import make_tiny_blip

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_tiny_blip(Path(tmp) / "blip")
        ds = SynthDataset(SynthSpec(n_train=max(args.images, 8), n_eval=4), "train", Path(tmp))
        items = corpus_items(ds)
        by_image: dict[int, list[int]] = {}
        for i, k in items:
            if i < args.images:
                by_image.setdefault(i, []).append(k)
        results = {}
        for mode in ("batched", "per-question"):
            a = BlipAnswerer(folder, args.device, batched=mode == "batched")
            a.answer(0, ds.image(0), [("boat", 0)])  # warm-up (lazy load, first call)
            a.generate_calls = a.questions_asked = 0
            per_image, answers = [], []
            for i, ks in by_image.items():
                asks = [(ds.class_names[k], t) for k in ks for t in range(len(TEMPLATES))]
                t0 = time.perf_counter()
                answers.append(a.answer(i, ds.image(i), asks))
                per_image.append((time.perf_counter() - t0) / len(ks))
            results[mode] = (statistics.median(per_image), a.generate_calls, a.questions_asked,
                             answers)
    (tb, cb, qb, ab), (tq, cq, _, aq) = results["batched"], results["per-question"]
    same = np.mean([x == y for a1, a2 in zip(ab, aq, strict=True)
                    for x, y in zip(a1, a2, strict=True)])
    print(f"images {len(by_image)}, questions {qb} (each mode), device {args.device}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"batched:      median {tb * 1000:8.1f} ms per (image, class) item, "
          f"{1 / tb:7.2f} items/s, {cb} generate calls")
    print(f"per-question: median {tq * 1000:8.1f} ms per (image, class) item, "
          f"{1 / tq:7.2f} items/s, {cq} generate calls")
    print(f"speed-up (per-question / batched median): {tq / tb:.1f}x; identical answers: "
          f"{same * 100:.0f}%")


if __name__ == "__main__":
    main()
