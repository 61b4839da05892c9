"""Issue 32: nothing silently different. The first run on an empty cache equals every rerun,
inputs a run does not read are refused, CAM values are checked, every failure names its file."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY


def bench(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`bench ARGS` in-process through the console entry point: (exit code, stdout, stderr)."""
    from cli import main

    monkeypatch.setattr(sys, "argv", ["bench", *map(str, args)])
    with pytest.raises(SystemExit) as exit_:
        main()
    out = capsys.readouterr()
    return int(exit_.value.code or 0), out.out, out.err


def one_error_line(code: int, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code != 0, err
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _sets(*extra: str) -> list[str]:
    return [a for s in (*TINY, *extra) for a in ("--set", s)]


# ---- 1. bit-for-bit first run ----------------------------------------------------------------

@pytest.mark.slow
def test_a_freshly_trained_teacher_is_the_one_reread_from_disk(tmp_path):
    """The cause of issue 32's first-run drift: the trained teacher's text cache was filled by
    its gates on one thread; the teacher a run gets must encode exactly as the reloaded one."""
    import torch

    from harness.registry import context_gates
    from harness.synth.data import SynthSpec
    from harness.synth.teacher import TinyClipSpec, load_or_train
    from harness.wording import photo_prompt

    spec = TinyClipSpec(steps=20, n_images=200, n_holdout=40, seed=3)  # any recipe, tiny
    trained, _ = load_or_train(SynthSpec(), tmp_path, spec, log=lambda m: None,
                               pairs=context_gates())
    loaded, _ = load_or_train(SynthSpec(), tmp_path, spec, log=lambda m: None,
                              pairs=context_gates())
    texts = [photo_prompt(c) for c in ("boat", "water", "a cow")]
    assert torch.equal(trained.encode_text(texts), loaded.encode_text(texts))


@pytest.mark.slow
def test_first_run_equals_a_rerun_after_a_stage_is_rebuilt(tmp_path, monkeypatch, capsys):
    """Empty cache (the teacher trains in this process) → run; delete one stage → run; warm
    rerun: the three records hold the same numbers exactly."""
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    keep = os.environ.get("BENCH_TEST_CACHE")
    if keep:  # the synth arrays only: the teacher must train here
        cache.mkdir()
        (Path(keep) / "synth").mkdir(parents=True, exist_ok=True)
        (cache / "synth").symlink_to(Path(keep).resolve() / "synth", target_is_directory=True)
    monkeypatch.setenv("BENCH_CACHE_DIR", str(cache))
    args = ("run", "semples", "--json", "--seed", "5", "--epochs", "1", "--wandb", "disabled",
            "--runs-dir", str(runs), "--device", "cpu", *_sets())

    def numbers() -> tuple:
        code, out, err = bench(monkeypatch, capsys, *args)
        assert code == 0, err
        rec = json.loads(out)
        return rec["seed_miou"], rec["context_fp"], rec["per_class_iou"], err

    first = numbers()
    assert "training the synth teacher" in first[3]
    stage_c = cache / "stages" / "semples-c"
    shutil.rmtree(stage_c)
    rebuilt = numbers()
    assert "stage cache miss: semples-c" in rebuilt[3]
    warm = numbers()
    assert first[:3] == rebuilt[:3] == warm[:3]


# ---- 2. an option or setting a run does not read is refused ---------------------------------

@pytest.mark.parametrize("args, says", [
    (["semples", "--backbone-weights", "{file}"], "--backbone-weights is not read by this run"),
    (["semples", "--backbone-weights", "{dir}"], "--backbone-weights is not read by this run"),
    (["semples", "--clip-weights", "{file}"], "--clip-weights is not read by this run"),
    (["cam", "--clip-weights", "{file}"], "--clip-weights is not read by this run"),
    (["qa-clims", "--vqa-path", "{dir}"], "--vqa-path is not read by this run"),
    (["semples", "--vqa-path", "{dir}"], "--vqa-path is not read by this run"),
    (["cam", "--irn-weights", "{file}", "--masks", "none"], "--irn-weights is not read"),
    (["cam", "--data-root", "{dir}"], "--data-root is not read by this run"),
    (["semples", "--set", "limit=64"], "setting limit=64 is not read by this run (semples on "
     "synth): it is read on real data only (synth sizes its splits with n_train and n_eval)"),
    (["cam", "--set", "crop_size=64"], "setting crop_size=64 is not read"),
    (["cam", "--dataset", "voc", "--set", "n_train=64"], "setting n_train=64 is not read by this "
     "run (cam on voc): it is read on synth only"),
])
def test_an_input_the_run_does_not_read_is_refused_in_one_line(args, says, monkeypatch, capsys,
                                                               tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_text("not read")
    given = [a.format(file=weights, dir=tmp_path) for a in args]
    code, _, err = bench(monkeypatch, capsys, "run", *given, "--runs-dir", tmp_path / "runs",
                         "--cache-dir", tmp_path / "cache", "--wandb", "disabled")
    assert code == 2 and says in one_error_line(code, err)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()


def test_every_run_option_that_names_a_file_declares_when_it_is_read():
    """A new weights or data option cannot slip through: it declares `read_when`."""
    import dataclasses

    from harness.run_options import INPUT_PATHS, RunOptions

    declared = {f.name for f in dataclasses.fields(RunOptions) if f.metadata.get("read_when")}
    assert declared == set(INPUT_PATHS)


def test_bench_eval_refuses_a_setting_synth_does_not_read(monkeypatch, capsys, tmp_path):
    code, _, err = bench(monkeypatch, capsys, "eval", "--cams", tmp_path, "--set", "limit=4",
                         "--cache-dir", tmp_path / "cache")
    assert "setting limit=4 is not read by synth data" in one_error_line(code, err)


def test_an_input_only_other_families_read_is_dropped_not_recorded(tmp_path):
    """One `bench reproduce` command serves a table's cam, semples and qa-clims cells: the
    options a family does not read leave its config (so its record and keys)."""
    from harness.runner import resolve_config

    given = {"clip_weights": __file__, "vqa_path": str(tmp_path), "cam_weights": __file__,
             "allow_random_weights": True}
    cam = resolve_config("cam", "voc", device="cpu", **given)
    assert (cam.clip_weights, cam.vqa_path, cam.cam_weights) == (None, None, __file__)
    semples = resolve_config("semples", "voc", sets=["init=backbone"], device="cpu", **given)
    assert (semples.clip_weights, semples.vqa_path, semples.cam_weights) == (__file__, None, None)
    qa = resolve_config("qa-clims", "voc", device="cpu", **given)
    assert (qa.clip_weights, qa.vqa_path, qa.cam_weights) == (__file__, str(tmp_path), __file__)


def test_an_input_a_run_reads_is_still_taken():
    from harness.runner import resolve_config

    cfg = resolve_config("semples", "synth", sets=["init=cam"], device="cpu",
                         cam_weights=__file__)  # semples from the CAM classifier reads it
    assert cfg.cam_weights == __file__
    voc = resolve_config("cam", "voc", sets=["limit=30", "crop_size=64"], device="cpu")
    assert (voc.params.limit, voc.params.crop_size) == (30, 64)


# ---- 3. CAM files validated on read ---------------------------------------------------------

def _gt_cams(folder: Path, cache: Path) -> list[str]:
    """Exact CAMs of the synth eval split (n_eval=4): each present class's map is its GT mask."""
    import numpy as np

    from harness.camio import write_cam
    from harness.synth.data import SynthSpec
    from harness.synth.dataset import SynthDataset

    ds = SynthDataset(SynthSpec(n_eval=4), "eval", cache)
    folder.mkdir()
    for i, name in enumerate(ds.image_names):
        keys = np.flatnonzero(ds.labels(i))
        write_cam(folder, name, keys, np.stack([(ds.mask(i) == k + 1) for k in keys]).astype(float))
    return ds.image_names


def _eval(monkeypatch, capsys, cams: Path, cache: Path) -> tuple[int, str, str]:
    return bench(monkeypatch, capsys, "eval", "--cams", cams, "--set", "n_eval=4", "--json",
                 "--cache-dir", cache, "--workers", "1")


@pytest.mark.parametrize("damage, says", [
    (lambda h: h * 0 + 1e30, "outside [0, 1]"),
    (lambda h: h - 0.5, "spans -0.5 … 0.5, outside [0, 1]"),
    (lambda h: (h * 255).astype("uint8"), "high_res is uint8, expected float maps in [0, 1]"),
    (lambda h: h * 0 - 70, "outside [0, 1]"),
])
def test_cam_values_outside_the_format_are_refused_naming_the_file(damage, says, monkeypatch,
                                                                   capsys, tmp_path):
    import numpy as np

    cams, cache = tmp_path / "cams", tmp_path / "cache"
    names = _gt_cams(cams, cache)
    code, out, err = _eval(monkeypatch, capsys, cams, cache)
    assert code == 0 and json.loads(out)["seed_miou"] == 100.0, err  # GT maps score 100 exactly
    bad = cams / f"{names[2]}.npy"
    data = np.load(bad, allow_pickle=True).item()
    np.save(bad, {**data, "high_res": damage(data["high_res"])})
    line = one_error_line(*_eval(monkeypatch, capsys, cams, cache)[::2])
    assert line.startswith(f"error: CAM file {bad}: ") and says in line


def test_cam_keys_the_image_does_not_have_are_one_warning(monkeypatch, capsys, tmp_path):
    import numpy as np

    cams, cache = tmp_path / "cams", tmp_path / "cache"
    names = _gt_cams(cams, cache)
    path = cams / f"{names[1]}.npy"
    data = np.load(path, allow_pickle=True).item()
    stranger = next(k for k in range(6) if k not in data["keys"])
    np.save(path, {"keys": np.append(data["keys"], stranger),
                   "high_res": np.concatenate([data["high_res"], 0 * data["high_res"][:1]])})
    code, out, err = _eval(monkeypatch, capsys, cams, cache)
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning: CAM file")]
    assert code == 0 and json.loads(out)["seed_miou"] == 100.0  # an all-zero map changes nothing
    assert warnings == [f"warning: CAM file {path}: keys name classes [{stranger}] its image does "
                        "not have (1 of 4 files so); scored as given"]


# ---- 4. the synth data has a manifest -------------------------------------------------------

@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_damaged_synth_data_is_named_regenerated_and_the_run_goes_on(damage, monkeypatch, capsys,
                                                                     tmp_path):
    cams, cache = tmp_path / "cams", tmp_path / "cache"
    _gt_cams(cams, cache)
    (data,) = (cache / "synth").glob("*_eval_4.npz")
    raw = data.read_bytes()
    data.write_bytes({"flip": raw[:500] + bytes([raw[500] ^ 0xFF]) + raw[501:],
                      "truncate": raw[: len(raw) // 2], "empty": b""}[damage])
    code, out, err = _eval(monkeypatch, capsys, cams, cache)
    assert code == 0 and json.loads(out)["seed_miou"] == 100.0, err
    warned = [ln for ln in err.splitlines() if ln.startswith("warning: synth data")]
    assert len(warned) == 1 and warned[0].startswith(f"warning: synth data {data} ")
    assert warned[0].endswith("; generating it again")
    assert data.read_bytes() == raw  # regenerated bit for bit
    code, _, err = _eval(monkeypatch, capsys, cams, cache)
    assert code == 0 and "warning" not in err
