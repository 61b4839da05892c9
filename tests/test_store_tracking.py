"""Results store under concurrent writers and crashes; W&B offline mirror."""

import multiprocessing as mp
import os

import pytest

from harness.store import ResultsStore


def _write(root, i):
    store = ResultsStore(root)
    run = store.begin("cam", "cam", i)
    run.write_json("config.json", {"i": i})
    run.finish({"status": "ok", "seed": i, "seed_miou": float(i)})


def test_concurrent_writers_lose_nothing(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_write, args=(tmp_path, i)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    seeds = sorted(r.seed for r in ResultsStore(tmp_path).records())
    assert seeds == list(range(8))


def test_an_unfinished_run_is_invisible_and_a_discarded_one_is_gone(tmp_path):
    store = ResultsStore(tmp_path)
    run = store.begin("cam", "cam", 0)
    run.write_json("result.json", {"status": "ok"})  # written but never renamed into place
    assert store.records() == []
    run.discard()
    assert list(tmp_path.iterdir()) == []


def test_wandb_offline_writes_a_run(tmp_path):
    from harness.tracking import Tracker

    os.environ.pop("WANDB_MODE", None)
    try:
        tracker = Tracker("offline", tmp_path, "t", {"lambda_refine": 0.05}, group="study")
        tracker.log({"cam/loss": 0.5, "epoch": 1})
        tracker.summary({"seed_miou": 50.0, "per_class_iou": {"background": 90.0}}, ["boat"], [])
        tracker.finish()
    finally:
        os.environ["WANDB_MODE"] = "disabled"
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb")) and list(runs[0].glob("*.wandb"))[0].stat().st_size > 0


def test_wandb_init_runs_in_background_and_its_error_surfaces_at_first_use(tmp_path):
    """wandb.init starts in a thread (its seconds overlap the run's work); a failure of it is
    raised by the first call that needs the run, and a failing run's finish keeps its own error."""
    from harness.tracking import Tracker

    tracker = Tracker("no-such-mode", tmp_path, "t", {})
    assert tracker._starting is not None  # returned before wandb.init finished
    with pytest.raises(Exception, match="(?i)mode"):
        tracker.log({"cam/loss": 0.5})
    failing = Tracker("no-such-mode", tmp_path, "t", {})
    failing._starting.join()
    failing.finish(exit_code=1)  # no second error while a run is already failing


@pytest.mark.parametrize("mode", ["bogus"])
def test_bad_wandb_mode(mode):
    from harness.errors import BenchError
    from harness.tracking import resolve_mode

    with pytest.raises(BenchError, match="--wandb must be one of"):
        resolve_mode(mode)
