"""Shared fixtures: one cache (synth data + the real synth teacher) per test session.

The teacher is trained once per session (about two minutes on two cores) and reused by
every test that runs a CLIP-guided method; runs use tiny synth sizes via TINY.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.cache import file_lock
from harness.process import configure_process

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ["HF_HUB_OFFLINE"] = "1"  # tests never reach the network, whatever the shell says
# Float reductions on CPU depend on torch's thread count: the pinned end-to-end numbers hold
# for this count (a test that starts `bench` in a subprocess passes OMP_NUM_THREADS).
TEST_THREADS = 2
# before any test module imports torch (libgomp reads OMP_WAIT_POLICY when it loads)
configure_process(threads=TEST_THREADS)

PINNED = Path(__file__).with_name("pinned.json")


def assert_pinned(name: str, record: dict) -> None:
    """An end-to-end run's numbers equal the ones pinned in tests/pinned.json, exactly: reruns
    are bit-identical for a fixed thread count (TEST_THREADS, pinned with them). After a
    change that is meant to move them, `BENCH_PIN=write pytest ...` rewrites the entries of
    the tests it runs (and the diff of pinned.json shows what moved)."""
    record = record.to_dict() if hasattr(record, "to_dict") else record  # a RunRecord or its JSON
    got = {"seed_miou": record["seed_miou"], "context_fp": record.get("context_fp"),
           "torch_threads": record["torch_threads"]}
    if os.environ.get("BENCH_PIN") == "write":
        with file_lock(PINNED.with_suffix(".lock")):
            pins = json.loads(PINNED.read_text()) if PINNED.exists() else {}
            pins[name] = got
            PINNED.write_text(json.dumps(dict(sorted(pins.items())), indent=1) + "\n")
        return
    pins = json.loads(PINNED.read_text())
    assert name in pins, f"{name} has no pinned numbers: run it once with BENCH_PIN=write"
    assert got == pins[name], f"{name}: {got} != pinned {pins[name]}"


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
    from harness.registry import context_gates
    from harness.synth.data import SynthSpec
    from harness.synth.teacher import load_or_train

    return load_or_train(SynthSpec(), cache_dir, log=lambda m: None, pairs=context_gates())


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    return tmp_path / "runs"


# `pytest -m "not slow"` is the fast command: what it leaves out trains a model (the synth
# teacher, a stage), runs `bench` end to end in-process or in a subprocess, or starts worker
# processes or a server. A test marks itself (`@pytest.mark.slow`, or a module's
# `pytestmark`); a test using one of these fixtures is slow by what the fixture does.
SLOW_FIXTURES = {"synth_teacher", "tiny_cam_run", "warm_cache", "postgres_url", "tiny_blip",
                 "odd_voc", "odd_coco"}


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def warm_cache(cache_dir):
    """Make the synth arrays once, so concurrent workers (sweeps, Slurm jobs) never race to
    build them."""
    from harness.runner import resolve_config, run

    cfg = resolve_config("cam", "synth", 0, TINY, device="cpu")
    run(cfg, runs_dir=Path(cache_dir) / "warm-runs", cache_dir=cache_dir, wandb_mode="disabled",
        show_progress=False, log=lambda m: None)
    return cache_dir
