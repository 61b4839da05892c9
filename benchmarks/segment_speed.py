"""Segmentation-stage speed: training step, val inference and dense CRF, each against a floor.

For each model (DeepLabV2-R101, Mask2Former, Segmenter-DeiT-S; random init, nothing fetched)
one process times, interleaved, repeat by repeat:

1. train: ours = `harness.segment.schedule.train_step` (lr set, ITER_SIZE forwards of the
   model's reference loss — DeepLabV2's MSC: three forwards and their max; Mask2Former's
   Hungarian-matched loss; Segmenter's clipped CE — backward, optimiser step) against the
   floor = ITER_SIZE plain forward + backward of the same model at scale 1 with a trivial
   loss. The ratio is what the recipe's loss and the optimiser add to the network's own work.
2. val: ours = `harness.segment.infer.predict_probs` at the recipe's test scales (and flips)
   with its merge, against the floor = the same forwards alone (no resize, merge, softmax).
3. crf: ours = `harness.segment.infer.crf_labels` with the recipe's kernels against
   pydensecrf2 called directly with the same values (CLIMS's DeepLabV2 parameters).

Medians of `--repeats` after one warm-up. CPU defaults are small (batch 1, crop 129,
seg_arch small for Mask2Former); on a GPU:

    python benchmarks/segment_speed.py                                   # CPU, small sizes
    python benchmarks/segment_speed.py --device cuda --batch 10 --crop 321 --bf16 --arch full

prints each step's peak memory and extrapolates the step to the recipe's iteration count.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from harness.process import configure_process  # noqa: E402

N_CLASSES = 21  # VOC, background included


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_times(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict:
    """Each fn once to warm up, then `repeats` rounds, interleaved; medians in seconds."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def build(name: str, arch: str, device: torch.device, sets: list[str]):
    from harness.segment.models import seg_model_spec

    spec = seg_model_spec(name)
    settings = spec.settings([f"seg_arch={arch}", *sets])
    torch.manual_seed(0)
    return spec.factory(N_CLASSES, settings, None).to(device), settings


def bench_model(name: str, args, device: torch.device) -> dict:
    from harness.segment.infer import predict_probs
    from harness.segment.schedule import make_optimizer, train_step

    arch = args.arch or ("small" if name == "mask2former" and device.type == "cpu" else "full")
    model, s = build(name, arch, device, args.set)
    opt = make_optimizer(model.param_groups(s), s)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.crop, args.crop, generator=g).to(device)
    y = torch.randint(0, N_CLASSES, (args.batch, args.crop, args.crop), generator=g)
    y[:, :, : args.crop // 8] = 255
    y = y.to(device)
    batches = [(x, y)] * s.seg_iter_size

    def amp():
        return torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else nullcontext()

    def ours_train():
        model.train()
        with amp():
            train_step(model, opt, batches, 1, s)

    def floor_train():
        model.train()
        model.zero_grad(set_to_none=True)
        for _ in range(s.seg_iter_size):
            with amp():
                out = model(x)
            out.float().mean().backward()

    val_x = x[:1]

    def ours_val():
        model.eval()
        with amp():
            predict_probs(model, val_x, s)

    @torch.no_grad()
    def floor_val():
        model.eval()
        flips = (False, True) if s.seg_test_flip else (False,)
        with amp():
            for sc in s.test_scales:
                xs = val_x if sc == 1.0 else torch.nn.functional.interpolate(
                    val_x, scale_factor=sc, mode="bilinear", align_corners=False)
                for f in flips:
                    model(xs.flip(-1) if f else xs)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t = median_times({"train": ours_train, "train_floor": floor_train}, args.repeats, device)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    t.update(median_times({"val": ours_val, "val_floor": floor_val}, args.repeats, device))
    return {"model": name, "arch": arch, "recipe": s.seg_recipe, "batch": args.batch,
            "iter_size": s.seg_iter_size, "crop": args.crop, "bf16": args.bf16,
            "test_scales": s.seg_test_scales, "peak_train_gib": peak, **t,
            "train_ratio": t["train"] / t["train_floor"], "val_ratio": t["val"] / t["val_floor"],
            "recipe_hours": t["train"] * s.seg_iterations / 3600}


def bench_crf(size: int, repeats: int) -> dict:
    """Ours against pydensecrf2 called directly, CLIMS's DeepLabV2 kernels, one image."""
    import pydensecrf.densecrf as dcrf
    import pydensecrf.utils as utils

    from harness.segment.infer import crf_labels
    from harness.segment.settings import SegSettings

    s = SegSettings()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    logits = rng.normal(size=(N_CLASSES, size, size)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(0, keepdims=True)

    def direct():
        d = dcrf.DenseCRF2D(size, size, N_CLASSES)
        d.setUnaryEnergy(np.ascontiguousarray(utils.unary_from_softmax(probs)))
        d.addPairwiseGaussian(sxy=1, compat=3)
        d.addPairwiseBilateral(sxy=67, srgb=3, rgbim=np.ascontiguousarray(rgb), compat=4)
        return np.array(d.inference(10)).reshape(N_CLASSES, size, size).argmax(0)

    assert np.array_equal(crf_labels(rgb, probs, s), direct())  # the same labels, or no figure
    t = median_times({"crf": lambda: crf_labels(rgb, probs, s), "crf_direct": direct}, repeats,
                     torch.device("cpu"))
    return {"model": "crf", "size": size, **t, "crf_ratio": t["crf"] / t["crf_direct"]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="deeplabv2,mask2former,segmenter")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--crop", type=int, default=129)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--arch", choices=("full", "small"), default=None,
                   help="seg_arch (default: full; Mask2Former small on CPU)")
    p.add_argument("--set", action="append", default=[], help="extra seg_* settings, key=value")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--crf-size", type=int, default=321, help="CRF image side (0 = skip)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    configure_process()
    device = torch.device(args.device)
    rows = [bench_model(m, args, device) for m in args.models.split(",") if m]
    if args.crf_size:
        rows.append(bench_crf(args.crf_size, args.repeats))
    for r in rows:
        print(json.dumps(r) if args.json else _line(r))


def _line(r: dict) -> str:
    if r["model"] == "crf":
        return (f"crf {r['size']}x{r['size']}, 21 classes: ours {r['crf']:.3f} s, pydensecrf2 "
                f"direct {r['crf_direct']:.3f} s, ratio {r['crf_ratio']:.2f}")
    mem = f", peak {r['peak_train_gib']:.1f} GiB" if r["peak_train_gib"] is not None else ""
    return (f"{r['model']} ({r['arch']}, {r['recipe']}) batch {r['batch']}x{r['iter_size']} crop "
            f"{r['crop']}{' bf16' if r['bf16'] else ''}: train step {r['train']:.3f} s vs floor "
            f"{r['train_floor']:.3f} s (x{r['train_ratio']:.2f}){mem}; val at {r['test_scales']} "
            f"{r['val']:.3f} s vs floor {r['val_floor']:.3f} s (x{r['val_ratio']:.2f}); recipe's "
            f"iterations at this step: {r['recipe_hours']:.1f} h")


if __name__ == "__main__":
    main()
