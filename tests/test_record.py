"""What a record keeps beyond the scores: the environment fingerprint, per-image results,
replay from a record, and the qualitative figure."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

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


def test_image_log_rows_equal_hand_computation():
    """Image a: t=0.3 exact (mIoU 100), t=0.6 bg 1/2, boat 2/3; image b (all background, a flat
    0.4 map): t=0.3 all boat (0, 0), t=0.6 all background (bg 1, boat absent). The split's best
    t is 0.6 (bg 5/6, boat 2/3 = 75.0 vs bg 1/5, boat 3/7 at 0.3)."""
    from harness.evaluate import SeedEvaluator
    from harness.per_image import ImageLog, worst

    ev = SeedEvaluator(["boat"], thresholds=(0.3, 0.6), fixed_threshold=0.3)
    log = ImageLog(ev)
    keys = np.array([0])
    for name, high, gt in [("a", [[0.2, 0.5], [0.7, 0.9]], [[0, 1], [1, 1]]),
                           ("b", [[0.4, 0.4], [0.4, 0.4]], [[0, 0], [0, 0]])]:
        counts = ev.scorer(keys, np.array([high], np.float32), np.array(gt, np.uint8))
        ev.add_counts(counts)
        log.add(name, counts)
    scores = ev.scores()
    assert scores.best_threshold == 0.6 and scores.seed_miou == pytest.approx(75.0)
    a, b = log.rows(scores.best_threshold)
    assert a == {"image": "a", "miou": pytest.approx(100 * (1 / 2 + 2 / 3) / 2, abs=1e-4),
                 "per_class_iou": {"background": 50.0, "boat": pytest.approx(66.6667, abs=1e-4)},
                 "best_t": 0.3, "miou_at_best_t": 100.0}
    assert b == {"image": "b", "miou": 100.0, "per_class_iou": {"background": 100.0},
                 "best_t": 0.6, "miou_at_best_t": 100.0}
    assert [r["image"] for r in worst([a, b], 1)] == ["a"]


def test_every_variant_config_survives_its_record():
    from harness.registry import list_variants
    from harness.replay import config_from_dict
    from harness.runner import resolve_config

    for name in [v.name for v in list_variants()]:
        cfg = resolve_config(name, "synth", 3, ["n_train=16"], device="cpu")
        assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg, name


def test_replay_refuses_a_missing_or_changed_input_in_one_line(tmp_path):
    from harness.errors import BenchError
    from harness.provenance import input_hashes
    from harness.replay import load_replay
    from harness.runner import resolve_config

    weights = tmp_path / "cam.pt"
    weights.write_bytes(b"weights v1")
    cfg = resolve_config("cam", "synth", 0, [], device="cpu", cam_weights=str(weights))
    run = tmp_path / "runs" / "20250101-000000-cam-s0-abcdef"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))
    (run / "result.json").write_text(json.dumps({"run_id": run.name, "inputs": input_hashes(cfg)}))
    assert load_replay("20250101", tmp_path / "runs")[0] == cfg  # a unique prefix finds it
    weights.write_bytes(b"weights v2")
    with pytest.raises(BenchError, match=r"its cam_weights .*cam.pt has changed \(sha256"):
        load_replay(run, tmp_path / "runs")
    weights.unlink()
    with pytest.raises(BenchError, match=r"its cam_weights .*cam.pt is missing"):
        load_replay(run.name, tmp_path / "runs")
    with pytest.raises(BenchError, match="no run folder with this id"):
        load_replay("nope", tmp_path / "runs")


@pytest.mark.slow
def test_replay_is_bit_identical_and_writes_images(cache_dir, runs_dir):
    """A tiny cam run, then `bench run --from` it: the same seed mIoU bit for bit, the same
    per-image lines; `bench report --run --worst` lists its worst images."""
    import os
    import subprocess
    import sys

    from tests.conftest import TEST_THREADS, TINY

    env = {**os.environ, "BENCH_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": str(TEST_THREADS),
           "COLUMNS": "200"}

    def bench(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "cli", *args, "--runs-dir", str(runs_dir)],
                              capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc

    sets = [a for s in [*TINY, "cam_epochs=2"] for a in ("--set", s)]
    first = json.loads(bench("run", "cam", "--seed", "43", "--json", "--wandb", "disabled",
                             *sets).stdout)
    again = json.loads(bench("run", "--from", first["run_id"][:-2], "--json", "--wandb",
                             "disabled").stdout)
    assert again["run_id"] != first["run_id"] and again["config"] == first["config"]
    assert again["seed_miou"] == first["seed_miou"]  # bit for bit, not approx
    assert again["per_class_iou"] == first["per_class_iou"]
    lines = (Path(first["path"]) / "images.jsonl").read_text().splitlines()
    assert len(lines) == 16 and lines == (Path(again["path"]) / "images.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert {r["image"] for r in rows} == {p.stem for p in (Path(first["path"]) / "cams").glob("*.npy")}
    out = bench("report", "--run", first["run_id"], "--worst", "3").stdout.splitlines()
    lowest = sorted(rows, key=lambda r: (r["miou"], r["image"]))[:3]
    assert len(out) == 4 and [ln.split()[1] for ln in out[1:]] == [r["image"] for r in lowest]
    assert f"mIoU {lowest[0]['miou']:5.1f}" in out[1]


def test_cams_figure_pixels_at_known_places(tmp_path, monkeypatch):
    """Two hand-made runs on a 4-image synth split: run A's maps are 1 everywhere, run B's 0
    and B has a mask of class 0 (label 1) everywhere. `bench report --figure cams --images 2`
    picks the two images whose mIoU differs most (spreads 0, 30, 0, 80 → images 3, 1) and
    draws image, GT, A's CAM, B's CAM, B's mask; each panel pixel is read back from the PNG."""
    import matplotlib
    from PIL import Image
    from typer.testing import CliRunner

    from cli import _register, app
    from harness.camio import write_cam
    from harness.data import load_dataset
    from harness.data.voc import palette
    from harness.masks.pngio import write_mask
    from harness.method import data_options
    from harness.runner import resolve_config
    from reports.figure import GAP, LEFT, PANEL, TOP, panel_origin

    cache = tmp_path / "cache"
    monkeypatch.setenv("BENCH_CACHE_DIR", str(cache))
    cfg = resolve_config("cam", "synth", 0, ["n_eval=4", "n_train=8"], device="cpu")
    ds = load_dataset("synth", "eval", **data_options("synth", cfg.params, cache))
    names = list(ds.image_names)
    root = tmp_path / "runs"
    for run, level, mious in (("A", 1.0, [50, 60, 70, 80]), ("B", 0.0, [50, 90, 70, 0])):
        folder = root / f"2025-{run}"
        (folder / "cams").mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps({
            "run_id": folder.name, "variant": f"cam{run}", "seed": 0, "status": "ok",
            "dataset": "synth", "config": cfg.to_dict(), "best_threshold": 0.3,
            "seed_miou": 50.0}))
        (folder / "images.jsonl").write_text("".join(
            json.dumps({"image": n, "miou": m, "per_class_iou": {}, "best_t": 0.3,
                        "miou_at_best_t": m}) + "\n" for n, m in zip(names, mious, strict=True)))
        for i, name in enumerate(names):
            keys = np.nonzero(ds.labels(i))[0]
            write_cam(folder / "cams", name, keys, np.full((len(keys), 64, 64), level, np.float32))
            if run == "B":
                (folder / "masks").mkdir(exist_ok=True)
                write_mask(folder / "masks", name, np.ones((64, 64), np.uint8))
    out = tmp_path / "fig" / "cams.png"
    _register()
    res = CliRunner().invoke(app, ["report", "--figure", "cams", "--run", "2025-A", "--run",
                                   "2025-B", "--images", "2", "--out", str(out),
                                   "--runs-dir", str(root)])
    assert res.exit_code == 0, res.output
    assert out.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    png = np.asarray(Image.open(out).convert("RGB"))
    assert png.shape == (TOP + 2 * PANEL + GAP, LEFT + 5 * (PANEL + GAP) - GAP, 3)
    jet = np.array(matplotlib.colormaps["jet"]([0.0, 1.0])[:, :3] * 255)
    for row, i in enumerate([3, 1]):
        image, gt = np.asarray(ds.image(i)), ds.mask(i)
        for y, x in [(0, 0), (10, 50), (31, 31), (63, 63), (40, 5)]:
            # 64 px images in 128 px panels: pixel (y, x) fills (2y…2y+1, 2x…2x+1)
            at = [png[oy + 2 * y + 1, ox + 2 * x].tolist()
                  for oy, ox in (panel_origin(row, col) for col in range(5))]
            assert at[0] == image[y, x].tolist()
            assert at[1] == palette()[gt[y, x]].tolist()
            assert at[2] == np.round(0.5 * image[y, x] + 0.5 * jet[1]).astype(int).tolist()
            assert at[3] == np.round(0.5 * image[y, x] + 0.5 * jet[0]).astype(int).tolist()
            assert at[4] == [128, 0, 0]  # VOC's colour of label 1
    assert png[panel_origin(0, 1)[0] + PANEL, LEFT + 10].tolist() == [255, 255, 255]  # the gap
