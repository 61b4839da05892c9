"""QAPE throughput: one generate call for many images vs one generate call per question.

Uses the tiny random BLIP of the tests (a BlipConfig + hand-written vocabulary), so it
measures the harness's batching, not BLIP's quality. Same images, same questions (every
present class × the 16 templates), in one process: `across-images` answers
`--images-per-call` images per `answer_many` call (what `bench qape` does),
`per-image` one call per image, `per-question` one generate call per question (the
reference code's way). Prints the per-(image, class) item time of each (median over
calls, one call's time shared by its items) and the ratios, and checks the answers agree.

    .venv/bin/python benchmarks/qape_throughput.py [--images 32] [--images-per-call 16]
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
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--images-per-call", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch

    from harness.synth.data import SynthSpec
    from harness.synth.dataset import SynthDataset
    from methods.qape import corpus_items
    from methods.vqa import TEMPLATES, BlipAnswerer
    from tests.fixtures_real import make_tiny_blip

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_tiny_blip(Path(tmp) / "blip")
        ds = SynthDataset(SynthSpec(n_train=max(args.images, 8), n_eval=4), "train", Path(tmp))
        by_image: dict[int, list[int]] = {}
        for i, k in corpus_items(ds):
            if i < args.images:
                by_image.setdefault(i, []).append(k)
        items = [(i, ds.image(i), [(ds.class_names[k], t) for k in ks
                                   for t in range(len(TEMPLATES))]) for i, ks in by_image.items()]
        per_call = {"across-images": args.images_per_call, "per-image": 1, "per-question": 1}
        results = {mode: run_mode(BlipAnswerer(folder, args.device,
                                               batched=mode != "per-question"),
                                  items, n, ds) for mode, n in per_call.items()}
    report(results, items, args)


def run_mode(a, items: list, per_call: int, ds) -> dict:
    a.answer(0, ds.image(0), [("boat", 0)])  # warm-up (lazy load, first call)
    a.generate_calls = a.questions_asked = 0
    per_item, answers = [], []
    for c in range(0, len(items), per_call):
        chunk = items[c:c + per_call]
        n_items = sum(len(asks) for _, _, asks in chunk) / 16
        t0 = time.perf_counter()
        answers += a.answer_many(chunk)
        per_item.append((time.perf_counter() - t0) / n_items)
    return {"median": statistics.median(per_item), "calls": a.generate_calls,
            "questions": a.questions_asked, "answers": answers}


def report(results: dict, items: list, args) -> None:
    import torch

    q = results["per-question"]
    print(f"images {len(items)}, (image, class) items {sum(len(x) for _, _, x in items) // 16}, "
          f"questions {q['questions']} (each mode), device {args.device}, "
          f"torch threads {torch.get_num_threads()}")
    for mode, r in results.items():
        same = r["answers"] == q["answers"]
        print(f"{mode:14s} median {r['median'] * 1000:8.2f} ms per item, {1 / r['median']:8.1f} "
              f"items/s, {r['calls']:5d} generate calls, answers identical to per-question: {same}")
    for mode in ("across-images", "per-image"):
        print(f"speed-up per-question / {mode}: {q['median'] / results[mode]['median']:.1f}x")


if __name__ == "__main__":
    main()
