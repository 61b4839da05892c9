"""The CLI end to end at tiny sizes, and every bad input: one line, non-zero exit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TEST_THREADS, TINY, assert_pinned

pytestmark = pytest.mark.slow  # every test here runs `bench` in a subprocess as a user would

BENCH = [sys.executable, "-m", "cli"]


def bench(*args, cache_dir, runs_dir=None, check=False):
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache_dir), "WANDB_MODE": "disabled",
           "OMP_NUM_THREADS": str(TEST_THREADS)}  # the count the pinned numbers hold for
    if runs_dir is not None:
        env["BENCH_RUNS_DIR"] = str(runs_dir)
    proc = subprocess.run([*BENCH, *args], capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def assert_one_line_error(proc, fragment):
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1], proc.stderr  # log lines may precede it
    assert fragment in errors[0], errors[0]
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def tiny_cam_run(cache_dir, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    sets = [a for s in TINY for a in ("--set", s)]
    # its own seed: a stage another test trained first would be a cache hit here, and a hit
    # writes no metrics.jsonl, which test_run_cam_json_record checks
    proc = bench("run", "cam", "--json", "--seed", "41", "--threshold-split", "heldout", *sets,
                 cache_dir=cache_dir, runs_dir=runs, check=True)
    return json.loads(proc.stdout), runs


def test_run_cam_json_record(tiny_cam_run):
    record, runs = tiny_cam_run
    for key in ("seed_miou", "seed_miou_fixed", "per_class_iou", "context_fp", "best_threshold",
                "wall_s", "git_rev", "package_version", "config"):
        assert key in record
    assert record["status"] == "ok"
    assert_pinned("cli: bench run cam --seed 41 --threshold-split heldout", record)
    assert set(record["per_class_iou"]) == {"background", "aeroplane", "bird", "boat", "car", "cow",
                                            "train"}
    run_dir = Path(record["path"])
    assert (run_dir / "result.json").exists() and (run_dir / "metrics.jsonl").exists()
    assert len(list((run_dir / "cams").glob("*.npy"))) == 16
    assert not list(runs.glob(".inprogress-*"))


def test_eval_rescores_written_cams_identically(tiny_cam_run, cache_dir):
    record, _ = tiny_cam_run
    proc = bench("eval", "--cams", str(Path(record["path"]) / "cams"), "--json",
                 "--set", "n_eval=16",
                 cache_dir=cache_dir, check=True)
    scored = json.loads(proc.stdout)
    assert scored["seed_miou"] == pytest.approx(record["seed_miou"])
    assert scored["context_fp"] == pytest.approx(record["context_fp"])


def test_run_record_carries_provenance_and_heldout_threshold(tiny_cam_run):
    record, _ = tiny_cam_run
    prov = record["provenance"]
    assert set(prov) == {"split", "n_images", "gt_source", "threshold_rule", "scales", "flips",
                         "relu", "normalisation", "crf", "class_names", "clip_arch", "clip_weights_sha256",
                         "cam_checkpoint_sha256", "random_weights"}
    assert prov["split"] == "synth/eval" and prov["n_images"] == 16 and prov["scales"] == [1.0]
    assert len(prov["cam_checkpoint_sha256"]) == 64 and prov["class_names"] == "voc"
    assert "heldout" in prov["threshold_rule"]["seed_miou_heldout"]
    assert record["miou_by_threshold"][str(record["threshold_heldout"])] == \
        pytest.approx(record["seed_miou_heldout"])
    assert set(record["per_class"]["boat"]) == {"iou", "precision", "recall", "fp", "fn"}


def test_eval_picks_the_same_heldout_threshold_and_plots(tiny_cam_run, cache_dir, tmp_path):
    record, _ = tiny_cam_run
    run_dir = Path(record["path"])
    plot = tmp_path / "pr.png"
    proc = bench("eval", "--cams", str(run_dir / "cams"), "--threshold-split", "heldout",
                 "--threshold-cams", str(run_dir / "cams-heldout"), "--set", "n_eval=16",
                 "--plot", str(plot), "--json", cache_dir=cache_dir, check=True)
    scored = json.loads(proc.stdout)
    assert scored["threshold_heldout"] == record["threshold_heldout"]
    assert scored["seed_miou_heldout"] == pytest.approx(record["seed_miou_heldout"])
    assert scored["per_class"] == record["per_class"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,fragment", [
    (["eval", "--cams", ".", "--threshold-split", "train"], "has no pixel labels"),
    (["run", "cam", "--threshold-split", "eval"], "shares 300 of its 300 images"),
])
def test_bad_threshold_split_is_one_line(args, fragment, cache_dir):
    """Subprocess smoke tests (the other bad inputs run in-process: tests/test_app.py)."""
    assert_one_line_error(bench(*args, cache_dir=cache_dir), fragment)


def test_empty_or_overlapping_voc_threshold_split(cache_dir, tmp_path):
    from tests.fixtures_real import VOC_TRAIN, make_voc

    root = make_voc(tmp_path / "voc")
    val = root / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / "val.txt"
    args = ["eval", "--cams", str(tmp_path), "--dataset", "voc", "--data-root", str(root),
            "--threshold-split", "heldout"]
    val.write_text(VOC_TRAIN[0] + "\n")
    assert_one_line_error(bench(*args, cache_dir=cache_dir), "shares 1 of its 1 images")
    val.write_text("")
    assert_one_line_error(bench(*args, cache_dir=cache_dir), "lists no images")


@pytest.mark.parametrize("content,fragment", [
    ({"keys": np.array([0]), "high_res": np.zeros((1, 8, 8), np.float32)}, "expected"),
    ({"high_res": np.zeros((1, 64, 64), np.float32)}, "lacks 'keys'"),
    ({"keys": np.array([0]), "cams": np.zeros((1, 64, 64), np.float32)}, "lacks 'high_res'"),
])
def test_malformed_cam_file(content, fragment, tiny_cam_run, cache_dir, tmp_path):
    record, _ = tiny_cam_run
    cams = tmp_path / "cams"
    cams.mkdir()
    for f in (Path(record["path"]) / "cams").glob("*.npy"):
        (cams / f.name).write_bytes(f.read_bytes())
    first = sorted(cams.glob("*.npy"))[0]
    np.save(first, content)
    proc = bench("eval", "--cams", str(cams), "--set", "n_eval=16", cache_dir=cache_dir)
    assert_one_line_error(proc, fragment)


def test_bad_input_is_one_line(cache_dir):
    """A subprocess smoke test of the error line (the others: tests/test_app.py)."""
    assert_one_line_error(bench("run", "no-such-method", cache_dir=cache_dir), "unknown method")


def test_unwritable_runs_dir(cache_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = bench("run", "cam", *[a for s in TINY for a in ("--set", s)], "--runs-dir",
                 str(blocker / "runs"), cache_dir=cache_dir)
    assert_one_line_error(proc, "not writable")


def test_data_show_writes_a_picture(cache_dir, tmp_path):
    """The grid: 1.9 × 4.4 inches per image column at 110 dpi, and every class of the shown
    masks in its tab10 colour (nearest interpolation keeps the colours exact)."""
    import matplotlib
    from PIL import Image

    from harness.data import load_dataset

    out = tmp_path / "grid.png"
    bench("data", "show", "synth", "--out", str(out), "--n", "4", cache_dir=cache_dir, check=True)
    with Image.open(out) as im:
        assert im.size == (round(1.9 * 4 * 110), round(4.4 * 110))  # (836, 484)
        colours = {tuple(c[:3]) for _, c in im.convert("RGBA").getcolors(im.width * im.height)}
    ds = load_dataset("synth", "eval", cache_dir=cache_dir)
    cmap = matplotlib.colormaps["tab10"].resampled(len(ds.class_names) + 1)
    shown = {int(k) for i in range(4) for k in np.unique(ds.mask(i)) if k != 255}
    assert 0 in shown and len(shown) >= 2  # background and at least one class
    for k in shown:
        assert tuple(round(255 * v) for v in cmap(k)[:3]) in colours, k


def test_list_shows_methods(cache_dir):
    proc = bench("list", cache_dir=cache_dir, check=True)
    assert "cam" in proc.stdout and "synth" in proc.stdout


def test_nan_loss_is_one_line_and_recorded_failed(cache_dir, tmp_path):
    sets = [a for s in [*TINY, "cam_lr=1e30", "cam_epochs=2"] for a in ("--set", s)]
    proc = bench("run", "cam", *sets, cache_dir=cache_dir, runs_dir=tmp_path)
    assert proc.returncode == 3
    assert_one_line_error(proc, "loss became nan")
    (result,) = tmp_path.glob("*/result.json")
    record = json.loads(result.read_text())
    assert record["status"] == "failed" and "nan" in record["error"]
