"""The segmentation optimiser: SGD or AdamW over a model's groups, a poly schedule, one step.

KZ libs/utils/lr_scheduler.py:19-29 PolynomialLR(step_size=10, iter_max, power=0.9), stepped
once per iteration after the update (CL main.py:264-267 `scheduler.step(epoch=iteration)`):
the lr is recomputed only when the iteration is a multiple of `step_size`, so iteration i
(1-based) runs at base · (1 − step·⌊(i−1)/step⌋ / iter_max)^power. It is stateless here, so a
resumed run needs no scheduler state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from harness.errors import NonFiniteLoss
from harness.segment.settings import SegSettings


def poly_factor(iteration: int, settings: SegSettings) -> float:
    """The poly multiplier of iteration `iteration` (1-based) as KZ's scheduler leaves it."""
    step, total = settings.seg_lr_step, settings.seg_iterations
    last = step * ((iteration - 1) // step)  # the last iteration where KZ recomputed
    return max(0.0, 1.0 - min(last, total) / total) ** settings.seg_poly_power


def group_lr(group: dict, iteration: int, settings: SegSettings) -> float:
    """One group's lr at `iteration`: base · multiplier · poly, floored at seg_min_lr (WeakTr's
    timm scheduler decays towards its min lr; 0 = KZ's plain poly)."""
    peak = settings.seg_lr * group["lr_mult"]
    floor = min(settings.seg_min_lr, peak)
    return floor + (peak - floor) * poly_factor(iteration, settings)


def make_optimizer(groups: list[dict], settings: SegSettings) -> torch.optim.Optimizer:
    """SGD (CL main.py:178-198: momentum 0.9, per-group lr and decay) or AdamW, over `groups`
    (SegModel.param_groups); each group keeps its `lr_mult` for `set_lr`."""
    groups = [dict(g, params=list(g["params"]), lr=settings.seg_lr * g["lr_mult"]) for g in groups]
    groups = [g for g in groups if g["params"]]
    if settings.seg_optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=settings.seg_lr)
    return torch.optim.SGD(groups, lr=settings.seg_lr, momentum=settings.seg_momentum,
                           nesterov=settings.seg_nesterov and settings.seg_momentum > 0)


def set_lr(optimizer: torch.optim.Optimizer, iteration: int, settings: SegSettings) -> None:
    for g in optimizer.param_groups:
        g["lr"] = group_lr(g, iteration, settings)


def train_step(model, optimizer: torch.optim.Optimizer, batches: Iterable[tuple],
               iteration: int, settings: SegSettings) -> float:
    """One optimiser step as CL main.py:233-267: zero the gradients, for each of ITER_SIZE
    batches (images, labels) backpropagate loss / ITER_SIZE, then step at iteration's lr.
    Returns the step's summed loss; a NaN or infinite loss raises NonFiniteLoss before any
    update is applied."""
    set_lr(optimizer, iteration, settings)
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for images, labels in batches:
        loss = model.loss(images, labels) / settings.seg_iter_size
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLoss(f"segmentation loss became {value} at iteration {iteration} "
                                f"(seg_lr={settings.seg_lr:g}, seg_loss={settings.seg_loss}); "
                                "lower seg_lr or check the masks")
        loss.backward()
        total += value
    optimizer.step()
    return total
