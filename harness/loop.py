"""The one training loop every method's stages run through.

A stage gives its modules, parameter groups, a `loss_fn(batch) -> (loss, parts)` and its
epochs; the loop owns the optimizer and schedule (from the config), bf16 autocast on
CUDA, the NaN guard, per-epoch checkpoints (for --resume), progress and epoch logging.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from harness.data.augment import augment_seed, draw_flip
from harness.device_check import step_scope
from harness.errors import NonFiniteLoss
from harness.method import RunContext
from harness.progress import progress_bar
from harness.seeding import isolated_rng

LossFn = Callable[[dict], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class Stage:
    name: str
    key: str
    modules: dict[str, nn.Module]
    param_groups: list[dict]
    loss_fn: LossFn
    epochs: int
    optimizer: str = "sgd"
    schedule: str = "poly"
    weight_decay: float = 1e-4
    momentum: float = 1e-4  # SGD only: IRN PolyOptimizer's real momentum (harness.config `momentum`)
    batches: Callable[[int], Iterable[dict]] | None = None  # epoch -> batches; default: train loader
    on_epoch_end: list[Callable[[int], None]] = field(default_factory=list)


def make_optimizer(stage: Stage) -> torch.optim.Optimizer:
    groups = [g for g in stage.param_groups if g["params"]]
    for g in groups:
        g.setdefault("initial_lr", g["lr"])
    if stage.optimizer == "adamw":
        return torch.optim.AdamW(groups, weight_decay=stage.weight_decay)
    # per-group weight decay as the references' param-group dicts; momentum: see Stage.momentum
    return torch.optim.SGD(groups, momentum=stage.momentum, weight_decay=stage.weight_decay)


def lr_factor(schedule: str, step: int, total: int) -> float:
    progress = min(step / max(total, 1), 1.0)
    if schedule == "poly":  # the CLIMS / QA-CLIMS reference schedule, power 0.9
        return (1 - progress) ** 0.9
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0


def train_stage(ctx: RunContext, stage: Stage) -> None:
    """Train `stage` to completion, resuming from its last epoch checkpoint if asked. The
    epochs seed torch's global generator; the caller's state is put back after."""
    if ctx.plan:  # harness/plan.py lists the stages' keys: nothing trains
        return
    with isolated_rng():
        _train_stage(ctx, stage)


def _train_stage(ctx: RunContext, stage: Stage) -> None:
    batches = stage.batches or (lambda epoch: ctx.loader("train", seed_offset=epoch))
    steps_per_epoch = len(batches(0))
    total = steps_per_epoch * stage.epochs
    ctx.log(f"{stage.name}: {stage.epochs} epochs of {steps_per_epoch} steps")
    opt = make_optimizer(stage)
    ckpt = ctx.stages.partial_dir(stage.name, stage.key) / "last.pt"
    start = _resume(ckpt, stage, opt, ctx) if ctx.resume else 0
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=ctx.device.type == "cuda")
    for m in stage.modules.values():
        m.train()
    for epoch in range(start, stage.epochs):
        # The epoch's random streams (flips; crops of real images and dropout, drawn from
        # torch's global generator) come from the run seed and the epoch alone: every method
        # and variant of one seed sees the same augmentation (paired comparisons), a stage's
        # output does not depend on which upstream stages were cache hits in this process,
        # and a resumed run continues exactly as an uninterrupted one.
        torch.manual_seed(augment_seed(ctx.cfg.seed, epoch))
        flips = torch.Generator().manual_seed(augment_seed(ctx.cfg.seed, epoch))
        sums: dict[str, float] = {}
        label = f"{stage.name} epoch {epoch + 1}/{stage.epochs}"
        with progress_bar(label, steps_per_epoch, enabled=ctx.show_progress) as advance:
            for i, batch in enumerate(batches(epoch)):
                step = epoch * steps_per_epoch + i
                for g in opt.param_groups:
                    g["lr"] = g["initial_lr"] * lr_factor(stage.schedule, step, total)
                batch = {k: v.to(ctx.device, non_blocking=True) if torch.is_tensor(v) else v
                         for k, v in batch.items()}
                batch["flip"] = draw_flip(flips)
                with autocast, step_scope():  # step_scope: CUDA discipline in tests
                    loss, parts = stage.loss_fn(batch)
                if not torch.isfinite(loss):
                    shown = ", ".join(f"{k}={float(v):.4g}" for k, v in parts.items())
                    raise NonFiniteLoss(f"{stage.name}: loss became {float(loss.detach())} at epoch "
                                        f"{epoch + 1}, step {i + 1} ({shown})")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                for k, v in {"loss": loss, **parts}.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                advance(loss=float(loss.detach()))
        means = {k: v / steps_per_epoch for k, v in sums.items()}
        ctx.log(f"{stage.name} epoch {epoch + 1}/{stage.epochs}: "
                + " ".join(f"{k}={v:.4f}" for k, v in means.items()))
        if ctx.on_epoch:
            ctx.on_epoch(stage.name, epoch, means)
        for hook in stage.on_epoch_end:
            hook(epoch)
        _save(ckpt, stage, opt, epoch)
    for m in stage.modules.values():
        m.eval()


def _save(path: Path, stage: Stage, opt: torch.optim.Optimizer, epoch: int) -> None:
    """The epoch checkpoint for --resume, with its checksum manifest beside it."""
    from harness.artefacts import write_manifest
    from harness.leftovers import is_left_behind, owner_tag
    from harness.oserrors import is_write_failure, unwritable

    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f"{path.stem}.*.tmp"):  # of a writer killed mid-save
        if is_left_behind(stale):
            stale.unlink(missing_ok=True)
    state = {"epoch": epoch, "optimizer": opt.state_dict(),
             "modules": {k: m.state_dict() for k, m in stage.modules.items()}}
    tmp = path.with_suffix(f".{owner_tag()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
        write_manifest(_manifest(path), [path], stage=stage.name, epoch=epoch + 1)
    except BaseException as exc:  # an interrupt too: no temporary file stays
        tmp.unlink(missing_ok=True)  # a failed write leaves no temporary file
        if not is_write_failure(exc):
            raise
        raise unwritable(f"stage {stage.name}: epoch checkpoint", path, exc) from None


def _manifest(path: Path) -> Path:
    return path.with_suffix(".manifest.json")


def _resume(path: Path, stage: Stage, opt: torch.optim.Optimizer, ctx: RunContext) -> int:
    """The epoch after the stage's last checkpoint; a damaged checkpoint is named in one
    warning line and the stage starts from its first epoch."""
    from harness.artefacts import check_manifest, load_tensors
    from harness.errors import BenchError

    if not path.exists():
        return 0
    damage = check_manifest(_manifest(path))
    try:
        if damage is not None:
            raise BenchError(f"{path.parent / damage.file} {damage.cause}")
        state = load_tensors(path, "epoch checkpoint", map_location=ctx.device)
        for k, m in stage.modules.items():
            m.load_state_dict(state["modules"][k])
        opt.load_state_dict(state["optimizer"])
    except (BenchError, KeyError, RuntimeError, TypeError, ValueError) as exc:
        ctx.log(f"warning: stage {stage.name}: cannot resume, {exc}; training it from epoch 1")
        return 0
    ctx.log(f"{stage.name}: resumed after epoch {state['epoch'] + 1}")
    return state["epoch"] + 1
