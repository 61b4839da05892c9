"""What a record keeps beyond the scores: the environment fingerprint, per-image results,
replay from a record, and the qualitative figure."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from harness.store import ResultsStore


def _write(root: Path, name: str, **fields) -> None:
    rec = {"method": "qa-clims", "dataset": "synth", "seed": 0, "hparams": {}, "status": "ok",
           "finished_at": "2025-01-01T00:00:00", "per_class_iou": {}, "run_id": name, **fields}
    (root / name).mkdir(parents=True)
    (root / name / "result.json").write_text(json.dumps(rec))


def test_fingerprint_names_this_environment():
    import numpy
    import torch

    from harness.environment import fingerprint

    env = fingerprint()
    assert env["torch"] == torch.__version__ and env["numpy"] == numpy.__version__
    assert env["python"].count(".") == 2 and env["cpu"]
    assert env["torch_threads"] == torch.get_num_threads()
    # absent packages are None, never an error (smp is not a dependency)
    smp = importlib.util.find_spec("segmentation_models_pytorch")
    assert (env["smp"] is None) == (smp is None)
    assert env["gpu_count"] == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


def test_report_warns_once_when_rows_come_from_two_environments(tmp_path):
    from harness.environment import differing
    from reports.compile import compile_table
    from reports.render import to_markdown

    a = {"python": "3.12.3", "torch": "2.13.0", "numpy": "2.4.6", "cpu": "EPYC"}
    b = {**a, "torch": "2.12.0", "cpu": "Xeon"}
    assert differing([a, dict(a)]) == [] and differing([a, b]) == ["torch", "cpu"]
    root = tmp_path / "runs"
    for seed, env in enumerate([a, b]):
        _write(root, f"nofat-{seed}", variant="qa-clims/no-fat", seed=seed, seed_miou=60.0,
               environment=env)
    df = compile_table("fat", ResultsStore(root).records(), seeds=2, strict=False)
    lines = [ln for ln in to_markdown(df).splitlines() if "different environments" in ln]
    assert len(lines) == 1 and "differ in torch, cpu" in lines[0]
    # one environment: no line
    (root / "nofat-1").rename(tmp_path / "gone")
    df = compile_table("fat", ResultsStore(root).records(), strict=False)
    assert "different environments" not in to_markdown(df)


def test_per_class_report_shows_each_runs_environment(tmp_path):
    from reports.per_class import per_class_frame, select_runs
    from reports.per_class import to_markdown as per_class_md

    root = tmp_path / "runs"
    stats = {"background": {"iou": 80.0, "precision": 90.0, "recall": 88.0, "fp": 10.0, "fn": 12.0}}
    _write(root, "r1", variant="cam", per_class=stats, seed_miou=50.0,
           environment={"python": "3.12.3", "torch": "2.13.0+cpu", "smp": None})
    md = per_class_md(per_class_frame(select_runs(ResultsStore(root).records(), ["r1"])))
    assert "- environment of r1: python 3.12.3, torch 2.13.0+cpu" in md and "smp" not in md
