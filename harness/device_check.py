"""CUDA discipline, checked on a CPU.

On a GPU, a tensor a step creates without `device=` (a `torch.zeros(...)` inside a loss)
lands on the CPU and the step stops at its first contact with the run's CUDA tensors. No
GPU runs here, so tests reproduce that: under `strict_devices()`, the code a step runs (a
stage's loss, CAM inference; `step_scope()` marks it) makes such tensors on the `meta`
device while the run's own tensors live on `cpu`, and the first op mixing the two raises
"Tensor on device meta is not on the expected device cpu!". Modules built outside a step
and moved with `.to(device)` are fine on a GPU and are not flagged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

_strict = False


@contextlib.contextmanager
def strict_devices() -> Iterator[None]:
    """Tests: inside, every `step_scope()` puts torch's default device on `meta`."""
    global _strict
    before, _strict = _strict, True
    try:
        yield
    finally:
        _strict = before


def step_scope() -> contextlib.AbstractContextManager:
    """Around a step's own code (harness.loop, harness.infer, the segmentation stage)."""
    if not _strict:
        return contextlib.nullcontext()
    import torch

    return torch.device("meta")
