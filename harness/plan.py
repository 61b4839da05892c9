"""The stages a configuration runs and their keys, found by running the method's own
`train` with nothing trained.

Every stage is built untrained into a throwaway stage cache and the synth teacher is an
untrained one of the same shape, so the keys come from the code that computes them in a
real run (the declarations in methods/*/method.py), in seconds; the run's data (its synth
arrays) comes from the real cache. `tests/test_stage_keys.py` flips every setting with it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from harness.config import RunConfig
from harness.method import RunContext
from harness.registry import get_method


def stage_keys(cfg: RunConfig, cache_dir: Path) -> list[tuple[str, str]]:
    """(stage, key) of every stage `cfg` asks for, in the order it asks."""
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        ctx = RunContext(cfg, Path(cache_dir), torch.device("cpu"), log=lambda _: None,
                         show_progress=False, plan=True, stage_dir=Path(tmp))
        get_method(cfg.method)().train(ctx)
        return list(ctx.stages.keys)
