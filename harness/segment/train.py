"""The segmentation stage's training loop: iterations, not epochs, as the references count.

harness/loop.py is epoch-shaped (a loader per epoch, per-epoch checkpoints and schedule) and
the DeepLab recipes are counted in optimiser steps of ITER_SIZE accumulated forwards with a
poly lr recomputed every 10 steps (harness/segment/schedule.py), so this loop is its own,
small: one `train_step` per iteration, a checkpoint every `every` iterations.

A checkpoint holds the model, the optimiser (momentum buffers), torch's random state
(dropout, drop path) and the losses so far; the batches are a function of the iteration
(harness/segment/data.py), so training resumed from iteration k ends in the same weights,
bit for bit, as training that never stopped (tests/test_segment.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from harness.progress import progress_bar
from harness.segment.data import TrainPairs
from harness.segment.schedule import make_optimizer, train_step
from harness.segment.settings import SegSettings

CHECKPOINT = "last.pt"


def _save(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a kill mid-write leaves the previous checkpoint whole


def _resume(folder: Path, model, optimizer, log: Callable[[str], None]) -> tuple[int, list[float]]:
    path = folder / CHECKPOINT
    if not path.is_file():
        return 0, []
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    log(f"segment: resuming from the checkpoint of iteration {state['iteration']} ({path})")
    return int(state["iteration"]), [float(x) for x in state["losses"]]


def train_model(model, pairs: TrainPairs, settings: SegSettings, device: torch.device,
                checkpoints: Path, every: int, log: Callable[[str], None] = print,
                show_progress: bool = True,
                on_iteration: Callable[[int, float], None] | None = None) -> list[float]:
    """Train `model` for `settings.seg_iterations` steps; returns the loss of every step.
    `checkpoints`: the stage's partial folder (kept when the build dies, removed when it
    finishes: harness/cache.py); a checkpoint there is resumed from."""
    model.to(device).train()
    optimizer = make_optimizer(model.param_groups(settings), settings)
    checkpoints.mkdir(parents=True, exist_ok=True)
    start, losses = _resume(checkpoints, model, optimizer, log)
    total = settings.seg_iterations
    with progress_bar("segment", total, enabled=show_progress) as advance:
        for _ in range(start):
            advance()
        for it in range(start + 1, total + 1):
            parts = (pairs.batch(it, k) for k in range(settings.seg_iter_size))
            batches = ((x.to(device), y.to(device)) for x, y in parts)
            loss = train_step(model, optimizer, batches, it, settings)
            losses.append(loss)
            advance(loss=loss)
            if on_iteration is not None:
                on_iteration(it, loss)
            if it % every == 0 and it < total:
                _save(checkpoints / CHECKPOINT, {
                    "iteration": it, "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                    "losses": torch.tensor(losses, dtype=torch.float64)})
    return losses
