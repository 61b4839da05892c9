"""Seeding that stays inside what it seeds.

Most random draws in a run come from explicit `torch.Generator`s (loader shuffles, flips,
prompt initialisation). Two cannot: module initialisation (timm, open_clip and torch.nn
constructors take no generator) and the draws inside datasets and layers (real-image crops,
dropout). Those read torch's global generator, so a run, a stage build and every epoch seed
it, inside `isolated_rng()`, which saves the global states (torch CPU and CUDA, numpy,
random) first and puts them back after: a caller's random state is what it was, whatever it
ran, and what is drawn inside depends only on the seed given (the streams are the ones the
bare `torch.manual_seed` calls drew before, so the numbers did not change).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def isolated_rng() -> Iterator[None]:
    """Within: seed torch/numpy/random freely. After: their global states as before."""
    py, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)


def seed_all(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and random; call it inside `isolated_rng()`."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
