"""GPU check, ready for the day a device is lent: one training step of every method at the
papers' batch and size in bf16 (benchmarks/step.py's steps: the methods' real step
functions, random weights, nothing downloaded), one step of each registered segmentation
model at its recipe's batch and crop, and CAM inference of one VOC-sized image at the
reference scales and flips; per stage, the step time (median) and the peak CUDA memory.

    python benchmarks/gpu.py                  # cuda, bf16, the papers' sizes
    python benchmarks/gpu.py --json           # one JSON object per stage
    python benchmarks/gpu.py --device cpu --smoke   # the same code, tiny sizes (CI-able)

It is also the first CUDA path ever run: every tensor a step creates must be on the run's
device (tests/test_device_discipline.py checks that on the CPU). No GPU has been lent to
this project's sessions yet; benchmarks/README.md holds the figures once one is.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks import step as steps  # noqa: E402

INFER_SIZE = 512  # a VOC image's long side is 500; CAM inference at the reference scales
N_SEG_CLASSES = 21  # VOC with background


def paper_size(spec: steps.StepSpec) -> int:
    """The training crop of the step's family on VOC, from its paper settings (the CAM
    stage's own crop for the CAM baseline)."""
    from harness.runner import resolve_config

    family = spec.name.split("-")[0] if not spec.name.startswith("qa") else "qa-clims"
    p = resolve_config(family, "voc", 0, [], device="cpu").params
    return (p.cam_crop_size if family == "cam" else p.crop_size) or p.crop_size


def measure(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> dict:
    """Median seconds of `fn` over `repeats` after `warmup`, and the peak memory of one call."""
    for _ in range(warmup):
        fn()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"step_s": statistics.median(times), "peak_gib": peak}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def method_stages(args, device: torch.device) -> list[dict]:
    out = []
    for spec in steps.STEPS:
        size = args.size or paper_size(spec)
        step_args = argparse.Namespace(batch=args.batch, size=size, grid=args.grid,
                                       channels_last=False, bf16=args.bf16, device=device.type)
        ctx = steps.setup(spec, step_args, device)
        ours = steps.ways(spec, ctx, step_args)["ours"]

        def one(ours=ours, ctx=ctx):
            steps.zero_grads(ctx)
            ours().backward()

        row = measure(one, device, args.repeats, args.warmup)
        out.append({"stage": f"method {spec.name}", "batch": len(ctx["batch"]["image"]),
                    "size": size, **row})
        del ctx, ours
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def segmentation_stages(args, device: torch.device) -> list[dict]:
    from harness.segment.infer import predict_probs
    from harness.segment.models import seg_model_names, seg_model_spec

    out = []
    for name in seg_model_names():
        spec = seg_model_spec(name)
        settings = spec.settings()
        batch, crop = args.batch or settings.seg_batch_size, args.size or settings.seg_crop
        torch.manual_seed(0)
        model = spec.factory(N_SEG_CLASSES, settings, None).to(device).train()
        images = torch.rand(batch, 3, crop, crop, device=device)
        labels = torch.randint(0, N_SEG_CLASSES, (batch, crop, crop), device=device)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)

        def train_step(model=model, images=images, labels=labels, autocast=autocast):
            model.zero_grad(set_to_none=True)
            with autocast:
                loss = model.loss(images, labels)
            loss.backward()

        out.append({"stage": f"segment {name} train", "batch": batch, "size": crop,
                    **measure(train_step, device, args.repeats, args.warmup)})

        @torch.no_grad()
        def infer(model=model, images=images[:1], autocast=autocast, settings=settings):
            with autocast:
                predict_probs(model.eval(), images, settings)

        out.append({"stage": f"segment {name} infer", "batch": 1, "size": crop,
                    **measure(infer, device, args.repeats, args.warmup)})
        del model, images, labels
    return out


def inference_stage(args, device: torch.device) -> dict:
    from harness.generator import build_generator
    from harness.infer import REAL_SCALES, image_cams

    size = args.size or INFER_SIZE
    model = build_generator("resnet50", N_SEG_CLASSES - 1, allow_random=True).to(device).eval()
    image = torch.rand(1, 3, size, size, device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)

    def infer():
        with autocast:
            image_cams(model, image, REAL_SCALES)

    return {"stage": "CAM inference (4 scales + flips)", "batch": 1, "size": size,
            **measure(infer, device, args.repeats, args.warmup)}


def render(row: dict) -> str:
    peak = f"{row['peak_gib']:6.2f} GiB" if row["peak_gib"] is not None else "   (cpu)"
    return (f"{row['stage']:36s} batch {row['batch']:3d}  {row['size']:4d} px  "
            f"{row['step_s'] * 1e3:9.1f} ms  peak {peak}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    ap.add_argument("--smoke", action="store_true", help="batch 2, 64 px, 2×2 CLIP tokens: a "
                    "quick run of the same code (e.g. --device cpu)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device here: --device cpu --smoke runs the same code at tiny sizes")
    args.bf16 = not args.fp32 and device.type == "cuda"
    args.batch, args.size, args.grid = (2, 64, 2) if args.smoke else (None, None, None)
    if args.smoke:
        args.repeats, args.warmup = 1, 0
    from harness.environment import fingerprint

    env = fingerprint()
    if not args.json:
        print(f"{env['gpu'] or env['cpu']}, torch {env['torch']}, CUDA {env['cuda']}, bf16 "
              f"{args.bf16}, median of {args.repeats} after {args.warmup} warm-up")
    for row in [*method_stages(args, device), *segmentation_stages(args, device),
                inference_stage(args, device)]:
        print(json.dumps(row) if args.json else render(row), flush=True)


if __name__ == "__main__":
    main()
