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
from tests.test_real_data import bench


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
    """Empty cache (every stage trains in this process; the teacher is the shipped one, and a
    teacher trained in-process equals its loaded copy: the test above) → run; delete one
    stage → run; warm rerun: the three records hold the same numbers exactly."""
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    keep = os.environ.get("BENCH_TEST_CACHE")
    if keep:  # the synth arrays only: every stage trains here
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
    assert "stage cache miss: semples-c" in first[3] and "training the synth teacher" not in first[3]
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


@pytest.mark.parametrize(("args", "named"), [
    (["--seed", "3"], "--seed"),
    (["--seed", "0"], "--seed"),  # the default value, given: still not read
    (["--set", "lr=1", "--epochs", "2"], "--set, --epochs"),
    (["--dataset", "voc", "--cam-weights", "{file}", "--resume"],
     "--dataset, --resume, --cam-weights"),
])
def test_an_option_beside_from_is_refused_not_replaced_by_the_record(args, named, monkeypatch,
                                                                     capsys, tmp_path):
    """`bench run --from RUN --seed 3` ran the recorded seed without a word; an option the
    replay does not read is refused before the run is even looked up."""
    given = [a.format(file=__file__) for a in args]
    code, _, err = bench(monkeypatch, capsys, "run", "--from", "nope", *given, "--runs-dir",
                         tmp_path / "runs", "--wandb", "disabled", "--json")
    assert one_error_line(code, err) == (
        f"error: --from replays the run as it was recorded, so it does not read {named}: leave "
        f"{'them' if ',' in named else 'it'} out (run METHOD to change a setting)")
    # where the results and caches go are read: the replay goes on to look the run up
    code, _, err = bench(monkeypatch, capsys, "run", "--from", "nope", "--runs-dir",
                         tmp_path / "runs", "--cache-dir", tmp_path / "cache", "--json")
    assert one_error_line(code, err) == (f"error: --from nope: no run folder with this id in "
                                         f"{tmp_path / 'runs'}")


def test_every_run_option_that_names_a_file_declares_when_it_is_read():
    """A new weights or data option cannot slip through: it declares `read_when`."""
    import dataclasses

    from harness.run_options import INPUT_PATHS, RunOptions

    declared = {f.name for f in dataclasses.fields(RunOptions) if f.metadata.get("read_when")}
    assert declared == {*INPUT_PATHS, "allow_random_weights"}


def test_allow_random_weights_is_kept_only_where_a_pretrained_model_is_loaded():
    """On synth nothing loads pretrained weights unless a --segment model with a pretrained
    init, an ImageNet backbone or a model answerer does: the flag is dropped there (recorded
    as None). deeplab-synth starts from random init by design, so it does not read the flag;
    deeplabv2 does, on synth as anywhere, and without it (or --seg-weights) is refused."""
    from harness.runner import resolve_config

    def kept(variant: str, dataset: str = "synth", **kw) -> bool | None:
        return resolve_config(variant, dataset, device="cpu", allow_random_weights=True,
                              **kw).allow_random_weights
    assert kept("cam") is None and kept("semples") is None and kept("clip-es") is None
    assert kept("cam", "voc") is True
    assert kept("cam", segment="deeplab-synth") is None
    assert kept("cam", segment="deeplabv2") is True
    from harness.errors import BenchError

    with pytest.raises(BenchError, match="deeplabv2 needs --seg-weights FILE"):
        resolve_config("cam", "synth", device="cpu", segment="deeplabv2")
    assert kept("cam", sets=["backbone=resnet50"]) is True
    assert kept("qa-clims", sets=["vqa=blip"]) is True


def test_cam_stage_settings_beside_cam_weights_are_refused(tmp_path):
    """With --cam-weights the CAM stage loads the file and trains nothing: a --set of its
    training settings is refused in one line; the family's own VOC values of them (cam_epochs
    5, cam_lr 0.1: not the field defaults) are not the user's and pass; without the file the
    same --set is read."""
    from harness.errors import BenchError
    from harness.runner import resolve_config

    weights = tmp_path / "cam.pt"
    weights.write_bytes(b"x")
    for key in ("cam_lr=0.5", "cam_epochs=3", "cam_batch_size=4", "cam_momentum=0.9"):
        with pytest.raises(BenchError, match=rf"--set {key} is not read by this run: with "
                           "--cam-weights"):
            resolve_config("semples", "synth", sets=[key], device="cpu", cam_weights=str(weights))
    voc = resolve_config("clims", "voc", device="cpu", cam_weights=str(weights),
                         allow_random_weights=True)
    assert (voc.params.cam_epochs, voc.params.cam_lr) == (5, 0.1) and voc.cam_weights
    assert resolve_config("semples", "synth", sets=["cam_lr=0.5"], device="cpu").params.cam_lr == 0.5


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


# ---- 5. every OS failure names the path and the cause ---------------------------------------

def test_report_out_a_directory_is_one_line_without_internal_names(monkeypatch, capsys,
                                                                   tmp_path):
    from tests.test_reports import write_record

    write_record(tmp_path / "runs", "a", variant="qa-clims/no-fat", seed=0, seed_miou=60.0)
    out = tmp_path / "table.md"
    out.mkdir()
    code, _, err = bench(monkeypatch, capsys, "report", "--table", "fat", "--runs-dir",
                         tmp_path / "runs", "--out", out)
    line = one_error_line(code, err)
    assert line == f"error: --out {out} is a directory; give a file name"
    assert "_write" not in err and not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("kind", ["--out", "--plot"])
def test_a_report_the_os_refuses_names_its_file_not_the_temporary_one(kind, monkeypatch, capsys,
                                                                      tmp_path):
    """`bench report --out/--plot` where the OS refuses the write: the line named the temporary
    file the write went through (`.t.md.<pid>.tmp`; the plot's, without "cannot write") and a
    refused plot left it behind. Now: the user's file and the cause, nothing left. Refused by
    a file-size limit (what a full disk or quota does) and by a folder squatting on the
    temporary name (the open fails, the OS naming the temporary file)."""
    import resource
    import signal

    from tests.test_reports import write_record

    write_record(tmp_path / "runs", "a", run_id="a", variant="qa-clims/no-fat", seed=0,
                 seed_miou=60.0, per_class={"boat": {"iou": 40.0, "precision": 50.0, "recall": 60.0,
                                     "fp": 30.0, "fn": 30.0}})
    out = tmp_path / "out" / ("t.md" if kind == "--out" else "p.png")
    out.parent.mkdir()
    args = ["report", *(["--table", "fat", "--format", "markdown", "--out", out]
                        if kind == "--out" else ["--run", "a", "--plot", out]),
            "--runs-dir", tmp_path / "runs"]
    what = "--out" if kind == "--out" else "plot"
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, limit[1]))
    try:
        code, _, err = bench(monkeypatch, capsys, *args)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, old)
    assert one_error_line(code, err) == f"error: {what} {out}: cannot write (file too large)"
    assert list(out.parent.iterdir()) == []
    squat = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    squat.mkdir()
    code, _, err = bench(monkeypatch, capsys, *args)
    assert one_error_line(code, err) == f"error: {what} {out}: cannot write (is a directory)"
    assert list(out.parent.iterdir()) == [squat]


@pytest.mark.slow
def test_a_write_the_os_refuses_names_the_file_and_leaves_no_temporary_file(
        monkeypatch, capsys, tmp_path, cache_dir):
    """A file-size limit (RLIMIT_FSIZE: what a full disk or quota does to a write) makes the
    CAM stage's first epoch checkpoint fail: one line naming that file and the cause, and no
    `.tmp` of the stage, the checkpoint or the run left behind."""
    import resource
    import signal

    cache, runs = tmp_path / "cache", tmp_path / "runs"
    cache.mkdir()
    (cache / "synth").symlink_to(cache_dir / "synth", target_is_directory=True)
    args = ("run", "cam", "--seed", "77", "--wandb", "disabled", "--runs-dir", runs,
            "--cache-dir", cache, "--device", "cpu", *_sets())
    code, _, err = bench(monkeypatch, capsys, *args)  # the synth arrays exist after this
    assert code == 0, err
    shutil.rmtree(cache / "stages")
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, limit[1]))
    try:
        code, _, err = bench(monkeypatch, capsys, *args)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, old)
    line = one_error_line(code, err)
    assert line.startswith(f"error: cam: stage cam: epoch checkpoint {cache}/stages/cam/.") \
        and "cannot write (" in line, line
    assert not [p for p in cache.rglob("*") if ".tmp" in p.name]
    assert not list(runs.glob(".inprogress-*"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache_with_every_stage_serves_them_without_a_lock(tmp_path):
    from harness.cache import StageCache

    def build(folder: Path) -> None:
        (folder / "out.txt").write_text("built")

    root = tmp_path / "cache"
    StageCache(root).get_or_build("s", {"a": 1}, build)
    for lock in root.rglob("*.lock"):
        lock.unlink()
    for path in [root, *root.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        folder, _ = StageCache(root).get_or_build("s", {"a": 1}, build)
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755)
    assert (folder / "out.txt").read_text() == "built" and not list(root.rglob("*.lock"))


def test_an_intact_stage_is_served_without_taking_its_lock(tmp_path, monkeypatch):
    """What a read-only cache needs (tested as root too): a hit never opens the lock file."""
    import harness.cache
    from harness.cache import StageCache

    def build(folder: Path) -> None:
        (folder / "out.txt").write_text("built")

    StageCache(tmp_path).get_or_build("s", {"a": 1}, build)
    for lock in tmp_path.rglob("*.lock"):
        lock.unlink()

    def no_lock(path):
        raise AssertionError(f"locked {path}")

    monkeypatch.setattr(harness.cache, "file_lock", no_lock)
    cache = StageCache(tmp_path)
    folder, _ = cache.get_or_build("s", {"a": 1}, build)
    assert cache.hits == ["s"] and (folder / "out.txt").read_text() == "built"


def test_os_causes_are_words():
    import errno

    from harness.oserrors import os_cause

    words = {errno.ENOSPC: "no space left on the device", errno.EROFS: "read-only file system",
             errno.EACCES: "permission denied", errno.EISDIR: "is a directory"}
    for code, said in words.items():
        assert os_cause(OSError(code, os.strerror(code), "/x")) == said


# ---- 6. SIGTERM behaves as SIGINT ------------------------------------------------------------

@pytest.mark.slow
def test_sigterm_names_what_was_kept_and_dropped_and_leaves_nothing(cache_dir, tmp_path):
    import signal
    import subprocess
    import time

    cache, runs = tmp_path / "cache", tmp_path / "runs"
    cache.mkdir()
    (cache / "synth").symlink_to(cache_dir / "synth", target_is_directory=True)
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache), "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "run", "cam", "--seed", "78", "--runs-dir", str(runs),
         *_sets("cam_epochs=200")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env)
    try:
        deadline = time.time() + 300
        while not list(cache.glob("stages/cam/.*.partial/last.pt")) and time.time() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 143, err
    assert lines[-1].startswith("interrupted (SIGTERM): no stage finished; dropped the unfinished "
                                "stage cam (its finished epochs stay for --resume), this run's "
                                "folder .inprogress-"), err
    assert "Traceback" not in err
    assert not list(runs.glob(".inprogress-*"))
    assert not [p for p in cache.rglob("*") if ".tmp" in p.name]


# ---- 7. records ----------------------------------------------------------------------------

def test_a_record_missing_seed_miou_is_skipped_with_a_warning(monkeypatch, capsys, tmp_path):
    from tests.test_reports import write_record

    runs = tmp_path / "runs"
    write_record(runs, "good", variant="qa-clims/no-fat", seed=0, seed_miou=60.0)
    write_record(runs, "bad", variant="qa-clims/no-fat", seed=1)
    code, out, err = bench(monkeypatch, capsys, "runs", "--runs-dir", runs,
                           "--cache-dir", tmp_path / "cache")
    assert code == 0 and "1 finished runs (1 ok); 1 unreadable result files skipped" in out
    assert f"warning: results store: skipped {runs / 'bad' / 'result.json'}: it has no " \
           "seed_miou" in err


@pytest.mark.parametrize("field", ["variant", "dataset"])
def test_a_record_missing_what_a_table_selects_by_is_skipped_with_a_warning(field, monkeypatch,
                                                                          capsys, tmp_path):
    """A record without its variant or dataset was listed as ok by `bench runs` and counted
    in no cell of any table (n = 0, no SKIPPED line), as one without seed_miou was."""
    from tests.test_reports import write_record

    runs = tmp_path / "runs"
    write_record(runs, "good", variant="semples", seed=0, seed_miou=60.0)
    write_record(runs, "bad", variant="semples", seed=1, seed_miou=61.0)
    bad = runs / "bad" / "result.json"
    bad.write_text(json.dumps({k: v for k, v in json.loads(bad.read_text()).items() if k != field}))
    code, out, err = bench(monkeypatch, capsys, "runs", "--runs-dir", runs)
    assert code == 0 and "1 finished runs (1 ok); 1 unreadable result files skipped" in out
    assert f"warning: results store: skipped {bad}: it has no {field}" in err
    code, out, err = bench(monkeypatch, capsys, "report", "-t", "ablation", "--format",
                           "markdown", "--runs-dir", runs)
    assert code == 0 and "SKIPPED: 1 result file" in out + err


def test_a_record_over_the_size_limit_is_skipped_unread(tmp_path, monkeypatch):
    import harness.store
    from harness.store import ResultsStore

    path = tmp_path / "big" / "result.json"
    path.parent.mkdir()
    with open(path, "wb") as fh:  # a sparse 60 MB file: nothing is read, so nothing is written
        fh.truncate(60 * 2**20)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"read {self}"))
    said: list[str] = []
    assert ResultsStore(tmp_path, warn=said.append).records() == []
    assert said == [f"warning: results store: skipped {path}: 60 MB, over the "
                    f"{harness.store.MAX_RECORD_BYTES // 2**20} MB a record may hold (not read)"]


def test_the_tables_n_and_its_missing_cells_agree(tmp_path):
    """Seed 5 alone: a one-seed cell is complete (n = 1, nothing missing); asking for two
    seeds, the missing one is seed 0 (the shortfall), never a cell that is there."""
    from reports.compile import compile_table
    from reports.selection import CellSelection
    from tests.test_reports import write_record

    runs = tmp_path / "runs"
    write_record(runs, "a", variant="qa-clims/no-fat", seed=5, seed_miou=60.0)
    one = compile_table("fat", runs_dir=runs, select=CellSelection(strict=False))
    row = one[one["variant"] == "qa-clims/no-fat"].iloc[0]
    assert row["n"] == 1 and row["command"] == ""
    two = compile_table("fat", runs_dir=runs, select=CellSelection(seeds=2, strict=False))
    row = two[two["variant"] == "qa-clims/no-fat"].iloc[0]
    assert row["n"] == 1 and "--seed 0" in row["command"] and "--seed 5" not in row["command"]
    assert CellSelection(seeds=[5, 6]).missing({(5, 0)}) == [(6, 0)]
    assert CellSelection(seeds=3, teacher_seeds=2).missing({(5, 0), (0, 1)}) == [
        (0, 0), (1, 0), (1, 1), (2, 1)]


# ---- 9, 10. messages and provenance --------------------------------------------------------

def test_item_9_messages_are_exact(monkeypatch, capsys, tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("")
    common = ("--runs-dir", tmp_path / "runs", "--cache-dir", tmp_path / "cache")
    code, _, err = bench(monkeypatch, capsys, "run", "cam", "--dataset", "voc", "--data-root",
                         a_file, "--allow-random-weights", *common)
    assert one_error_line(code, err).startswith(f"error: --data-root {a_file} is a file, not a "
                                                "folder; expected ")
    code, _, err = bench(monkeypatch, capsys, "run", "cam", "--cam-weights", tmp_path, *common)
    assert one_error_line(code, err) == f"error: --cam-weights {tmp_path} is a directory; it " \
                                        "takes a file"
    code, _, err = bench(monkeypatch, capsys, "run", "clims", "--dataset", "voc", "--clip-weights",
                         tmp_path, "--data-root", tmp_path, *common)
    assert one_error_line(code, err).startswith("error: ")  # the data root is heard of first
    from harness.teacher import load_real_teacher

    with pytest.raises(Exception, match=f"--clip-weights {tmp_path} is a directory; it takes a "
                                        "file"):
        load_real_teacher("ViT-B-32", str(tmp_path), False, False)
    code, _, err = bench(monkeypatch, capsys, "report", "--compare", "a", "b", *common[:2])
    assert one_error_line(code, err) == "error: --compare needs --table: the table whose rows " \
                                        "it compares"


def test_gt_source_states_the_runs_own_split_and_count():
    from harness.provenance import provenance

    prov = provenance("voc", "eval", 30)
    assert prov["gt_source"] == "VOC2012 SegmentationClass (train ids, 30 images)"
    assert provenance("synth", "eval", 300)["gt_source"] == \
        "synth generator masks (eval split, 300 images)"


def test_the_summary_prints_the_records_percentages_as_recorded():
    """The records hold percentages (37.5 = 37.5 %); the summary printed them through a
    format spec of " %" (Python's percent type: ×100), so 37.5 showed as 3750.000000%."""
    from rich.console import Console

    from cli.summary import print_eval, print_mask_eval

    record = {"seed_miou": 55.3, "best_threshold": 0.65, "seed_miou_fixed": 21.28,
              "fixed_threshold": 0.15, "background_leak": 37.5, "context_fp": 2.27,
              "context_fp_negative": 1.19, "context_fp_best_t": 4.36, "dead_classes": [],
              "oracle_seed_miou": 72.69, "oracle_context_fp": 0.0,
              "per_class": {"boat": {"iou": 54.91, "precision": 77.8, "recall": 65.12,
                                     "fp": 15.67, "fn": 29.42}},
              "mask_miou": 60.0, "mask_background_leak": 12.5, "mask_context_fp": 3.0,
              "mask_context_fp_negative": 1.5,
              "mask_per_class": {"boat": {"iou": 60.0, "precision": 70.0, "recall": 80.0,
                                          "fp": 10.0, "fn": 30.0}}}
    console = Console(record=True, width=160)
    print_eval(record, "run", console)
    print_mask_eval(record, "masks", console)
    text = " ".join(console.export_text().split())
    for shown in ("background leak │ 37.50 %", "context_fp (60 % recall) │ 2.27 %",
                  "negative control │ 1.19 %", "at best t (old figure) │ 4.36 %",
                  "context_fp 0.00 %", "background leak │ 12.50 %",
                  "context_fp of the masks │ 3.00 %", "negative control │ 1.50 %"):
        assert shown in text, text
    assert "3750" not in text


def test_bench_data_teacher_prints_the_shipped_teachers_gates(monkeypatch, capsys, tmp_path):
    """`bench data teacher` stopped at an import (load_shipped from the wrong module) before
    printing anything: the shipped teacher of seed 0 loads, nothing trains, and its gates are
    the ones shipped with it (harness/synth/shipped/*.json)."""
    from harness.synth.shipped import SHIPPED_DIR

    shipped = json.loads(next(p for p in SHIPPED_DIR.glob("synth-*.json")
                              if not p.name.endswith(".manifest.json")).read_text())
    code, out, err = bench(monkeypatch, capsys, "data", "teacher", "--cache-dir", tmp_path)
    assert code == 0, err
    assert f"synth teacher (seed 0, shipped with wsss-bench) at {SHIPPED_DIR}" in out
    objects = next(ln for ln in out.splitlines() if "zero-shot objects  " in ln)
    assert objects.split()[:2] == ["pass", "zero-shot"] \
        and float(objects.split()[3]) == round(shipped["zero_shot_objects"], 1)
    assert not (tmp_path / "teachers").exists()  # nothing trained or copied into the cache
