"""Training-step benchmark: each method's step against its floor and the reference structure.

For every training step (CAM, CLIMS, SemPLeS (a), (b), (c), QA-CLIMS) with the papers'
architectures at random weights (timm resnet50 / deit_small_patch16_224 mask generators,
open_clip ViT-B-32 / ViT-L-14 built from config, nothing downloaded), one process times,
interleaved step by step, three ways of doing the same step's work:

1. ours: the method's real step function (`methods.*`), then backward;
2. floor: generator forward + backward plus ONE CLIP image forward + backward over the
   2P masked crops, text features precomputed, CLIP weights frozen (SemPLeS (b): the
   generator and the P background crops forward only, the prompts through the text
   tower forward + backward, as the stage trains only the prompts);
3. reference: the step structure of the authors' code (see `reference_*` below; each
   cites the file it follows): every text re-encoded each step, CLIP parameters left
   trainable where the authors left them so, foregrounds encoded twice where they are,
   per-pair Python loops to build crops, QA-CLIMS's per-pair loss loop in fp32.

Median of `--steps` timed steps after `--warmup`; prints ours/floor and reference/ours.
CPU here at a small batch and a small image size (CLIP ViTs built with
`force_image_size`, same depth and width); on a GPU `--device cuda --bf16` runs the
papers' batch sizes at 224 px CLIP input and prints achieved TFLOP/s and MFU.

    python benchmarks/step.py                       # CPU: batch 2, 128 px, 4x4 CLIP tokens
    python benchmarks/step.py --json                # one JSON object per step
    python benchmarks/step.py --device cuda --bf16  # GPU: papers' batches, 224 px
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

N_CLASSES = 20  # VOC
CLASSES_PER_IMAGE = 2  # positive pairs P = 2·batch
# dense bf16 peak of the cards these runs are lent (TFLOP/s), for MFU
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


@dataclass(frozen=True)
class StepSpec:
    name: str
    backbone: str
    clip_arch: str | None
    paper_batch: int


STEPS = (
    StepSpec("cam", "resnet50", None, 16),
    StepSpec("clims", "resnet50", "ViT-B-32", 16),
    StepSpec("semples-a", "deit_small_patch16_224", "ViT-B-32", 64),
    StepSpec("semples-b", "deit_small_patch16_224", "ViT-B-32", 64),
    StepSpec("semples-c", "deit_small_patch16_224", "ViT-B-32", 64),
    StepSpec("qa-clims", "resnet50", "ViT-L-14", 8),
)


# ----------------------------------------------------------------------------- building blocks


def build_teacher(arch: str, grid: int | None, device: torch.device):
    """An open_clip CLIP from its config at random weights (QuickGELU, as OpenAI's), wrapped in
    the harness Teacher; `grid` patches per side shrinks the input size, not the network."""
    from harness.compat import ensure_torchvision

    ensure_torchvision()
    import open_clip

    from harness.teacher import Teacher

    kwargs = {}
    if grid is not None:
        patch = int(arch.rsplit("-", 1)[-1])
        kwargs["force_image_size"] = patch * grid
    clip = open_clip.create_model(arch, pretrained=None, quick_gelu=True, **kwargs)
    return Teacher(clip, open_clip.get_tokenizer(arch), name=f"open_clip/{arch}").to(device)


def make_batch(batch: int, size: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    labels = torch.zeros(batch, N_CLASSES)
    for i in range(batch):
        labels[i, torch.randperm(N_CLASSES, generator=g)[:CLASSES_PER_IMAGE]] = 1
    return {"image": torch.rand(batch, 3, size, size, generator=g).to(device),
            "labels": labels.to(device), "index": torch.arange(batch, device=device)}


def class_names() -> list[str]:
    from harness.data.voc import CLASSES

    return list(CLASSES)


def synthetic_corpus(batch: dict) -> list[dict]:
    """A QAPE corpus row per positive pair: 16 answers, distinct words per pair."""
    from methods.vqa import TEMPLATES

    words = ("tree", "water", "grass", "road", "sky", "wall", "table", "sea", "field", "rock",
             "street", "snow", "sand", "fence", "floor", "window")
    rows = []
    for n, k in (batch["labels"] > 0.5).nonzero().tolist():
        answers = [words[(n * 7 + k + t) % len(words)] for t in range(len(TEMPLATES))]
        rows.append({"image": n, "class": k, "answers": answers})
    return rows


def pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n, k = (labels > 0.5).nonzero(as_tuple=True)
    return n, k


# ----------------------------------------------------------------------------- the floor


def floor_step(spec: StepSpec, model, teacher, batch: dict, text: torch.Tensor, prompts=None):
    """Generator forward + backward and one CLIP image forward + backward over the 2P crops."""
    images = batch["image"]
    if teacher is None:
        return F.multilabel_soft_margin_loss(model(images), batch["labels"])
    n, k = pairs(batch["labels"])
    if spec.name == "semples-b":
        with torch.no_grad():
            m = torch.sigmoid(model.maps(images))
            m = F.interpolate(m, size=images.shape[-2:], mode="bilinear")[n, k][:, None]
            feats = teacher.encode_image((1 - m) * images[n])
        ub = teacher.encode_prompts(prompts)
        return (feats.float() * ub[k].float()).sum()
    m = torch.sigmoid(model.maps(images))
    m = F.interpolate(m, size=images.shape[-2:], mode="bilinear")[n, k][:, None]
    x = images[n]
    feats = teacher.encode_image(torch.cat([m * x, (1 - m) * x])).float()
    return (feats * text[k].repeat(2, 1)).sum() + m.mean()


# ----------------------------------------------------------------------------- ours


def ours_step(spec: StepSpec, model, teacher, batch: dict, ctx: dict):
    if spec.name == "cam":
        from methods.cam.method import classification_loss

        return classification_loss(model, batch)[0]
    if spec.name == "clims":
        from methods.clims.method import ClimsConfig, cbs_gate, clims_step

        p = ClimsConfig()
        return clims_step(model, teacher, batch, ctx["text"], ctx["bg_text"], p,
                          cbs_gate(teacher, p))[0]
    if spec.name == "qa-clims":
        from methods.qa_clims.method import QAClimsConfig, ritc_loss

        return ritc_loss(model, teacher, ctx["corpus_texts"], QAClimsConfig(), batch)[0]
    from methods.semples.method import SemplesConfig, generator_step, prompt_step

    p = SemplesConfig()
    if spec.name == "semples-a":
        return generator_step(model, teacher, batch, ctx["text"], None, p)[0]
    if spec.name == "semples-b":
        return prompt_step(model, teacher, ctx["prompts"], batch, ctx["text"], p)[0]
    return generator_step(model, teacher, batch, ctx["text"], ctx["ub"], p)[0]


# ----------------------------------------------------------------------------- the reference


def _ref_text(teacher, texts: list[str]) -> torch.Tensor:
    """clip.tokenize + encode_text inside the step, as the references' clip_forward does."""
    tokens = teacher.tokenizer(texts).to(teacher.mean.device)
    return F.normalize(teacher.clip.encode_text(tokens), dim=-1)


def _ref_image(teacher, x: torch.Tensor) -> torch.Tensor:
    return F.normalize(teacher.clip.encode_image((x - teacher.mean) / teacher.std), dim=-1)


def _ref_crops(maps_224: torch.Tensor, img_224: torch.Tensor, labels: torch.Tensor):
    """The per-pair Python loop of CLIMS step/train_clims.py (also SemPLeS engine*.py,
    QA-CLIMS step/train_qa_clims.py): one fg and one bg crop appended per positive pair."""
    b, kk = maps_224.shape[:2]
    flat = maps_224.reshape(b * kk, 1, *maps_224.shape[-2:])
    fg_indices = torch.nonzero(labels.reshape(-1) == 1).squeeze(1)
    temp_idx = torch.nonzero(labels == 1)
    fg, bg, cls = [], [], []
    for j in range(temp_idx.shape[0]):
        fg.append(flat[fg_indices[j]] * img_224[temp_idx[j, 0]])
        bg.append((1 - flat[fg_indices[j]]) * img_224[temp_idx[j, 0]])
        cls.append(int(temp_idx[j, 1]))
    return torch.stack(fg), torch.stack(bg), cls


def _ref_inputs(model, teacher, batch: dict, sigmoid: bool, grad: bool = True):
    size = teacher.image_size
    with torch.set_grad_enabled(grad):
        x = model.maps(batch["image"])
        x = torch.sigmoid(x) if sigmoid else x
        maps = F.interpolate(x, (size, size), mode="bilinear", align_corners=True)
        if not sigmoid:  # SemPLeS engine1.py: per-map min-max with +1e-1 in the denominator
            lo = maps.amin((2, 3), keepdim=True)
            hi = maps.amax((2, 3), keepdim=True)
            maps = (maps - lo) / (hi - lo + 1e-1)
    img = F.interpolate(batch["image"], (size, size), mode="bilinear", align_corners=True)
    return x, maps, img


def reference_clims(model, teacher, batch: dict, ctx: dict):
    """CLIMS step/train_clims.py + clip_utils.clip_forward + clip_loss.py: fg crops encoded for
    L_OTM and again for L_CBS, bg for L_BTM, class texts encoded in both clip_forward calls and
    the background prompts in CBSLoss.forward, every step; train_clims.py leaves CLIP's
    requires_grad on (the freezing lines are commented out)."""
    x, maps, img = _ref_inputs(model, teacher, batch, sigmoid=True)
    fg, bg, cls = _ref_crops(maps, img, batch["labels"])
    texts = [f"a photo of {ctx['names'][c]}." for c in cls]
    otm = -torch.log((_ref_image(teacher, fg) * _ref_text(teacher, texts)).sum(-1)
                     .clamp(1e-4, 0.9999)).mean()
    btm = -torch.log(1 - (_ref_image(teacher, bg) * _ref_text(teacher, texts)).sum(-1)
                     .clamp(1e-4, 0.9999)).mean()
    logits = _ref_image(teacher, fg) @ _ref_text(teacher, ctx["bg_words"]).T
    cbs = -(torch.log(1 - logits) * (logits > 0.26).float()).sum()
    return 10 * otm + 24 * btm + cbs + 0.2 * x.mean()


def reference_semples(stage: str, model, teacher, batch: dict, ctx: dict):
    """SemPLeS release (NVIDIA; engine1/2/3.py, clip_utils.py, main1.py, mirrored at
    github.com/kuongan/SemPLeS): clip_forward re-encodes the class texts for the fg and for
    the bg call, clip_forward_global re-encodes them again with the prompts and encodes the
    fg crops a second time (stage c); main*.py leave CLIP trainable; (b) runs S under no_grad."""
    x, maps, img = _ref_inputs(model, teacher, batch, sigmoid=False, grad=stage != "b")
    fg, bg, cls = _ref_crops(maps, img, batch["labels"])
    texts = [f"a photo of {ctx['names'][c]}." for c in cls]
    idx = torch.tensor(cls, device=fg.device)

    def sim(a, b):
        return (a * b).sum(-1).clamp(1e-4, 0.9999)

    if stage == "b":
        ub = teacher.encode_prompts(ctx["prompts"].embeddings)[idx]
        img_sim = sim(_ref_image(teacher, bg), ub)
        label_sim = sim(_ref_text(teacher, texts), ub)
        return -torch.log(img_sim).mean() + 0.02 * torch.log(label_sim).mean()
    loss = (-torch.log(sim(_ref_image(teacher, fg), _ref_text(teacher, texts))).mean()
            - 2.4 * torch.log(1 - sim(_ref_image(teacher, bg), _ref_text(teacher, texts))).mean())
    if stage == "c":
        ub = teacher.encode_prompts(ctx["prompts"].embeddings)[idx]
        _ref_text(teacher, texts)  # label_similarity, computed and unused in engine3.py
        loss = loss - 0.05 * torch.log(1 - sim(_ref_image(teacher, fg), ub)).mean()
    return loss


def reference_qa_clims(model, teacher, batch: dict, ctx: dict):
    """QA-CLIMS step/train_qa_clims.py + clip_loss.py: FAT masks, per-pair crop loop, fg and bg
    crops in two encode_image calls (CLIP frozen by misc/clip_adapter.py, text features cached
    by gen_text_feats_cache.py), then a Python loop over pairs of InfoNCELossFG/BG, fp32."""
    x, maps, img = _ref_inputs(model, teacher, batch, sigmoid=True)
    theta = 0.1 * maps.detach().amax((2, 3), keepdim=True)  # net/mask_adapter.py
    fat = (maps.detach() >= theta).float()
    fg, bg, cls = _ref_crops(maps, img, batch["labels"])
    _, fat_fg, _ = _ref_crops(fat, torch.ones_like(img[:, :1]), batch["labels"])
    vf = teacher.clip.encode_image((fg * fat_fg - teacher.mean) / teacher.std).float()
    vb = teacher.clip.encode_image((bg * (1 - fat_fg) - teacher.mean) / teacher.std).float()
    texts = ctx["corpus_texts"]
    n, k = pairs(batch["labels"])
    tf, tb, mask = texts(batch["index"][n], k)
    frc = brc = vf.new_zeros(())
    for i in range(len(cls)):
        f = vf[i] / vf[i].norm()
        b = vb[i] / vb[i].norm()
        bg_t = tb[i][mask[i]]
        pos = torch.exp(f @ tf[i] / 0.7)
        frc = frc - torch.log(pos / (pos + torch.exp(f @ bg_t.T / 0.7).sum()))
        m = torch.exp(b @ bg_t.T / 0.7).mean()
        brc = brc - torch.log(m / (m + torch.exp(b @ tf[i] / 0.7)))
    return 10 * frc + 8 * brc + 0.2 * x.mean()


def reference_step(spec: StepSpec, model, teacher, batch: dict, ctx: dict):
    if spec.name == "cam":  # step/train_cam.py: the same classification loss
        return F.multilabel_soft_margin_loss(model(batch["image"]), batch["labels"])
    if spec.name == "clims":
        return reference_clims(model, teacher, batch, ctx)
    if spec.name == "qa-clims":
        return reference_qa_clims(model, teacher, batch, ctx)
    return reference_semples(spec.name[-1], model, teacher, batch, ctx)


# ----------------------------------------------------------------------------- timing


def setup(spec: StepSpec, args, device: torch.device) -> dict:
    from harness.generator import build_generator

    torch.manual_seed(0)
    model = build_generator(spec.backbone, N_CLASSES, allow_random=True).to(device).train()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    teacher = build_teacher(spec.clip_arch, args.grid, device) if spec.clip_arch else None
    batch = make_batch(args.batch or spec.paper_batch, args.size, device)
    ctx: dict = {"names": class_names(), "model": model, "teacher": teacher, "batch": batch}
    if teacher is None:
        return ctx
    from methods.clims.method import BACKGROUND_WORDS, background_prompt, class_prompt

    ctx["text"] = teacher.encode_text([class_prompt(c) for c in ctx["names"]])
    ctx["bg_words"] = [background_prompt(w) for w in BACKGROUND_WORDS["voc"]]
    ctx["bg_text"] = teacher.encode_text(ctx["bg_words"])
    if spec.name.startswith("semples"):
        from methods.semples.method import Prompts, SemplesConfig

        p = SemplesConfig()
        ctx["prompts"] = Prompts(N_CLASSES, p.prompt_length, teacher.token_width,
                                 p.prompt_init, seed=0).to(device)
        with torch.no_grad():
            ctx["ub"] = teacher.encode_prompts(ctx["prompts"].embeddings).float()
        if spec.name == "semples-b":
            model.requires_grad_(False).eval()
    if spec.name == "qa-clims":
        from methods.qa_clims.method import CorpusTexts

        ctx["corpus_texts"] = CorpusTexts(synthetic_corpus(batch), "fine,alias,object,scene",
                                          teacher, len(batch["image"]), N_CLASSES, device,
                                          tuple(ctx["names"]))
    return ctx


def ways(spec: StepSpec, ctx: dict, args) -> dict[str, Callable[[], torch.Tensor]]:
    model, teacher, batch = ctx["model"], ctx["teacher"], ctx["batch"]
    prompts = ctx.get("prompts")
    autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16)

    def ours():
        with autocast:
            return ours_step(spec, model, teacher, batch, ctx)

    def floor():
        with autocast:
            return floor_step(spec, model, teacher, batch, ctx.get("text"),
                              prompts.embeddings if prompts is not None else None)

    def reference():
        trainable = spec.name in ("clims", "semples-a", "semples-b", "semples-c")
        if teacher is not None and trainable:
            teacher.clip.requires_grad_(True)
        try:
            # CLIMS / QA-CLIMS run fp32; the SemPLeS release runs torch.cuda.amp.autocast (fp16)
            fp16 = args.bf16 and spec.name.startswith("semples")
            with torch.autocast(args.device, dtype=torch.float16, enabled=fp16):
                return reference_step(spec, model, teacher, batch, ctx)
        finally:
            if teacher is not None:
                teacher.clip.requires_grad_(False)

    return {"ours": ours, "floor": floor, "reference": reference}


def zero_grads(ctx: dict) -> None:
    for m in (ctx["model"], ctx["teacher"], ctx.get("prompts")):
        if m is not None:
            for p in m.parameters():
                p.grad = None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_once(fn: Callable[[], torch.Tensor], ctx: dict, device: torch.device) -> float:
    zero_grads(ctx)
    sync(device)
    t0 = time.perf_counter()
    fn().backward()
    sync(device)
    return time.perf_counter() - t0


def step_flops(fn: Callable[[], torch.Tensor], ctx: dict) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    zero_grads(ctx)
    with FlopCounterMode(display=False) as counter:
        fn().backward()
    return float(counter.get_total_flops())


def bench_step(spec: StepSpec, args, device: torch.device) -> dict:
    ctx = setup(spec, args, device)
    fns = ways(spec, ctx, args)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for rep in range(args.warmup + args.steps):
        for name, fn in fns.items():  # interleaved: load on the machine hits all three alike
            t = time_once(fn, ctx, device)
            if rep >= args.warmup:
                times[name].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"step": spec.name, "device": device.type, "batch": len(ctx["batch"]["image"]),
           "image_size": args.size, "clip": spec.clip_arch,
           "clip_input": ctx["teacher"].image_size if ctx["teacher"] else None,
           "ours_s": med["ours"], "floor_s": med["floor"], "reference_s": med["reference"],
           "ours_over_floor": med["ours"] / med["floor"],
           "reference_over_ours": med["reference"] / med["ours"]}
    if args.flops:
        flops = step_flops(fns["ours"], ctx)
        out["ours_tflops"] = flops / med["ours"] / 1e12
        peak = peak_tflops(device)
        out["mfu"] = out["ours_tflops"] / peak if peak else None
    return out


def peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast for ours and the floor")
    ap.add_argument("--batch", type=int, default=None,
                    help="images per step (default: 2 on CPU, the paper's on CUDA)")
    ap.add_argument("--size", type=int, default=None,
                    help="generator input size (default: 128 on CPU, 224 on CUDA)")
    ap.add_argument("--grid", type=int, default=None,
                    help="CLIP patches per side (default: 4 on CPU, native 224 px on CUDA)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per way (median)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--only", default="", help="comma list of steps (default: all)")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--flops", action="store_true", help="count FLOPs: TFLOP/s (and MFU on GPU)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", action="store_true", help="one JSON object per step")
    args = ap.parse_args()
    cpu = args.device == "cpu"
    args.batch = args.batch or (2 if cpu else None)
    args.size = args.size or (128 if cpu else 224)
    args.grid = args.grid or (4 if cpu else None)
    args.flops = args.flops or not cpu
    if args.bf16 and cpu:
        sys.exit("--bf16 is for --device cuda (CPU bf16 autocast would time a different kernel set)")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - {s.name for s in STEPS}
    if unknown:
        sys.exit(f"--only: unknown step(s) {', '.join(sorted(unknown))}; "
                 f"choose from {', '.join(s.name for s in STEPS)}")
    if not args.json:
        print(f"device {args.device}, torch threads {torch.get_num_threads()}, batch "
              f"{args.batch or 'paper'}, image {args.size} px, CLIP grid "
              f"{args.grid or 'native'}, {args.steps} steps after {args.warmup} warm-up, bf16 "
              f"{args.bf16}")
    for spec in STEPS:
        if only and spec.name not in only:
            continue
        row = bench_step(spec, args, device)
        print(json.dumps(row) if args.json else render(row), flush=True)


def render(r: dict) -> str:
    line = (f"{r['step']:10s} batch {r['batch']:3d}  ours {r['ours_s'] * 1e3:8.1f} ms  floor "
            f"{r['floor_s'] * 1e3:8.1f} ms  reference {r['reference_s'] * 1e3:8.1f} ms  "
            f"ours/floor {r['ours_over_floor']:5.2f}  reference/ours {r['reference_over_ours']:5.2f}")
    if "ours_tflops" in r:
        line += f"  {r['ours_tflops']:.3f} TFLOP/s"
        if r.get("mfu") is not None:
            line += f"  MFU {r['mfu'] * 100:.1f}%"
    return line


if __name__ == "__main__":
    main()
