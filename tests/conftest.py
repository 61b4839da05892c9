"""Shared fixtures: one cache (synth data + the real synth teacher) per test session.

The teacher is trained once per session (about two minutes on two cores) and reused by
every test that runs a CLIP-guided method; runs use tiny synth sizes via TINY.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.process import configure_process

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ["HF_HUB_OFFLINE"] = "1"  # tests never reach the network, whatever the shell says
# Float reductions on CPU depend on torch's thread count: the pinned end-to-end numbers hold
# for this count (a test that starts `bench` in a subprocess passes OMP_NUM_THREADS).
TEST_THREADS = 2
# before any test module imports torch (libgomp reads OMP_WAIT_POLICY when it loads)
configure_process(threads=TEST_THREADS)

# Tiny synth runs: small splits, a 3-epoch CAM (at IRN's momentum 1e-4 one epoch of 4 steps
# leaves every class dead), the teacher keyed independently of these.
TINY = ["n_train=64", "n_eval=16", "cam_epochs=3", "batch_size=16"]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """A session-wide BENCH_CACHE_DIR (synth arrays, teacher, stages).

    BENCH_TEST_CACHE=DIR keeps the slow parts (synth arrays, the trained teacher) across
    sessions; stages always start empty, since tests assert on which stages get trained.
    """
    path = tmp_path_factory.mktemp("bench-cache")
    keep = os.environ.get("BENCH_TEST_CACHE")
    if keep:
        for sub in ("synth", "teachers"):
            (Path(keep) / sub).mkdir(parents=True, exist_ok=True)
            (path / sub).symlink_to(Path(keep).resolve() / sub, target_is_directory=True)
    os.environ["BENCH_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def synth_teacher(cache_dir):
    """The real embedded teacher (trained on first use in this session) and its info."""
    from harness.synth.data import SynthSpec
    from harness.synth.teacher import load_or_train

    return load_or_train(SynthSpec(), cache_dir, log=lambda m: None)


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    return tmp_path / "runs"
