"""Faults of the disk, the user and the patience, each through the CLI: a damaged stage is
named and rebuilt to the intact number, a bad file or record is one line, a killed run
leaves nothing that counts and its rerun gives the same record."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import TINY
from tests.test_cli import BENCH, assert_one_line_error, bench

pytestmark = pytest.mark.slow  # every test here runs `bench` in a subprocess and breaks it

SETS = [a for s in TINY for a in ("--set", s)]
SAME = ("seed_miou", "seed_miou_fixed", "best_threshold", "per_class_iou", "context_fp")


def fresh_cache(tmp_path: Path, cache_dir: Path) -> Path:
    """A stage cache of this test's own, sharing the session's synth data and teacher.

    Its callers take the `synth_teacher` fixture: without BENCH_TEST_CACHE the session's
    synth/ and teachers/ exist only once the teacher is trained, and a link to a folder not
    yet there left the run (`bench run cam` in the Ctrl-C test) failing before its first
    epoch when the test ran alone or first."""
    path = tmp_path / "cache"
    path.mkdir()
    for sub in ("synth", "teachers"):
        (path / sub).symlink_to((cache_dir / sub).resolve(), target_is_directory=True)
    return path


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 4096] = bytes(b ^ 0xFF for b in data[mid:mid + 4096])
    path.write_bytes(bytes(data))


DAMAGES = {
    "flipped 4 KB": (_flip, "does not match its sha256"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:5000]), "is 5000 bytes where"),
    "0 bytes": (lambda p: p.write_bytes(b""), "is 0 bytes where"),
}


def test_a_damaged_stage_checkpoint_is_named_and_rebuilt_to_the_intact_number(cache_dir, synth_teacher,
                                                                               tmp_path):
    cache_dir = fresh_cache(tmp_path, cache_dir)
    args = ["run", "cam", "--json", "--seed", "71", *SETS]
    intact = json.loads(bench(*args, cache_dir=cache_dir, runs_dir=tmp_path / "runs",
                              check=True).stdout)
    (checkpoint,) = (cache_dir / "stages" / "cam").glob("*/generator.pt")
    for name, (damage, says) in DAMAGES.items():
        damage(checkpoint)
        proc = bench(*args, cache_dir=cache_dir, runs_dir=tmp_path / "runs", check=True)
        warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: ")]
        assert len(warnings) == 1 and str(checkpoint) in warnings[0] and says in warnings[0], \
            (name, proc.stderr)
        assert "rebuilding the stage" in warnings[0]
        record = json.loads(proc.stdout)
        assert record["stage_cache"] == {"hits": [], "misses": ["cam"]}, name
        assert {k: record[k] for k in SAME} == {k: intact[k] for k in SAME}, name
    again = json.loads(bench(*args, cache_dir=cache_dir, runs_dir=tmp_path / "runs",
                             check=True).stdout)
    assert again["stage_cache"] == {"hits": ["cam"], "misses": []}  # the rebuilt stage verifies


@pytest.mark.parametrize("content, says", [
    (b"", "is empty (0 bytes)"),
    (b"PK\x03\x04" + bytes(3000), "cut short or damaged"),
    (b"\x80\x02garbage that is no checkpoint", "is not a PyTorch checkpoint"),
])
def test_a_bad_cam_weights_file_is_one_line_naming_it(content, says, cache_dir, tmp_path):
    bad = tmp_path / "res50_cam.pth"
    bad.write_bytes(content)
    # TINY's cam_epochs is refused beside --cam-weights (the stage trains nothing)
    no_cam = [a for s in TINY if not s.startswith("cam_") for a in ("--set", s)]
    proc = bench("run", "cam", *no_cam, "--cam-weights", str(bad), cache_dir=cache_dir,
                 runs_dir=tmp_path / "runs")
    assert_one_line_error(proc, says)
    assert str(bad) in proc.stderr.splitlines()[-1]
    assert "Aborted" not in proc.stderr


def test_unreadable_records_are_skipped_named_and_counted_in_the_legend(cache_dir, tmp_path):
    good = {"method": "qa-clims", "variant": "qa-clims", "dataset": "synth", "seed": 0,
            "hparams": {}, "status": "ok", "seed_miou": 50.0, "per_class_iou": {}}
    bad = {"binary": b"\xff\xfe\x00{", "list": b"[1, 2]", "typed": json.dumps({**good, "seed": "0"}).encode(),
           "torn": b'{"status": "ok", "seed_mi'}
    for name, content in {**bad, "good": json.dumps(good).encode()}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_bytes(content)
    proc = bench("report", "-t", "fat", "--format", "markdown", cache_dir=cache_dir,
                 runs_dir=tmp_path, check=True)
    warned = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: results store")]
    assert len(warned) == 4, proc.stderr
    for name, why in [("binary", "not UTF-8"), ("list", "a JSON list"), ("typed", "its seed is a str"),
                      ("torn", "not JSON")]:
        (line,) = [ln for ln in warned if f"/{name}/result.json" in ln]
        assert why in line, line
    assert "SKIPPED: 4 result files" in proc.stdout
    assert "| 50.0" in proc.stdout or "50.00" in proc.stdout  # the readable record counts


def _wait_for(predicate, proc, timeout=120.0, step=0.005):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(step)
    return False


def _start(args, cache_dir, runs_dir):
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache_dir), "WANDB_MODE": "disabled",
           "BENCH_RUNS_DIR": str(runs_dir)}
    # SIGINT back to its default in the child: a shell that starts pytest in the background
    # (`nohup pytest &`) leaves SIGINT ignored, the child inherits that, Python then installs no
    # KeyboardInterrupt handler, and the Ctrl-C test's run trains to its end instead
    return subprocess.Popen([*BENCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_a_run_killed_while_writing_cams_leaves_nothing_counted_and_its_rerun_is_identical(
        cache_dir, tmp_path):
    # 300 evaluation images: CAM writing lasts long enough to be killed in the middle
    args = ["run", "cam", "--json", "--seed", "73", *SETS, "--set", "n_eval=300"]
    reference = json.loads(bench(*args, cache_dir=cache_dir, runs_dir=tmp_path / "ref",
                                 check=True).stdout)
    runs = tmp_path / "runs"
    proc = _start(args, cache_dir, runs)
    cams = lambda: list(runs.glob(".inprogress-*/cams/*.npy"))  # noqa: E731
    try:
        assert _wait_for(lambda: len(cams()) >= 20, proc), "the run ended before it was killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    written = len(cams())
    assert 0 < written < 300
    (left,) = runs.glob(".inprogress-*")
    listing = bench("runs", cache_dir=cache_dir, runs_dir=runs, check=True).stdout
    assert "0 finished runs" in listing and f"left behind: {left}" in listing

    proc = bench(*args, cache_dir=cache_dir, runs_dir=runs, check=True)
    record = json.loads(proc.stdout)
    assert f"removed {left.name}, the unfinished folder of a killed run" in proc.stderr
    assert not left.exists() and not list(runs.glob(".inprogress-*"))
    assert record["stage_cache"]["hits"] == ["cam"]
    assert {k: record[k] for k in SAME} == {k: reference[k] for k in SAME}
    ref_cams = Path(reference["path"]) / "cams"
    for path in sorted(ref_cams.glob("*.npy"))[::25]:
        assert (Path(record["path"]) / "cams" / path.name).read_bytes() == path.read_bytes()
    listing = bench("runs", cache_dir=cache_dir, runs_dir=runs, check=True).stdout
    assert "1 finished runs (1 ok)" in listing and "0 unfinished run folders" in listing


def test_ctrl_c_names_the_stages_kept_and_what_was_dropped(cache_dir, synth_teacher, tmp_path):
    cache_dir = fresh_cache(tmp_path, cache_dir)
    runs = tmp_path / "runs"
    proc = _start(["run", "cam", "--seed", "74", *SETS, "--set", "cam_epochs=200"], cache_dir, runs)
    lines: list[str] = []
    try:
        # the CAM stage is training once its first epoch is logged
        assert _wait_for(lambda: list(cache_dir.glob("stages/cam/.*.partial/last.pt")), proc,
                         step=0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 130, err
    assert lines[-1].startswith("interrupted: no stage finished; dropped the unfinished stage "
                                "cam (its finished epochs stay for --resume), this run's folder "
                                ".inprogress-"), err
    assert "Traceback" not in err and "Aborted" not in err
    assert not list(runs.glob(".inprogress-*")) and not list(cache_dir.glob("stages/cam/.*.tmp"))


def test_an_unwritable_cache_dir_is_one_line(cache_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = bench("run", "cam", *SETS, "--cache-dir", str(blocker / "cache"), cache_dir=cache_dir,
                 runs_dir=tmp_path / "runs")
    assert_one_line_error(proc, f"{blocker / 'cache'}")
    assert "Not a directory" in proc.stderr.splitlines()[-1]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache_dir_is_one_line(cache_dir, tmp_path):
    cache = tmp_path / "cache"
    for sub in ("synth", "teachers"):  # the data exists, the stage cannot be written
        (cache / sub).mkdir(parents=True)
        for f in (cache_dir / sub).iterdir():
            (cache / sub / f.name).symlink_to(f.resolve())
    cache.chmod(0o555)
    try:
        proc = bench("run", "cam", *SETS, "--seed", "75", "--cache-dir", str(cache),
                     cache_dir=cache_dir, runs_dir=tmp_path / "runs")
    finally:
        cache.chmod(0o755)
    assert_one_line_error(proc, "is not writable")


def test_a_damaged_epoch_checkpoint_is_named_and_the_stage_starts_over(tmp_path):
    import torch

    from harness.loop import Stage, _resume, _save

    net = torch.nn.Linear(3, 2)
    stage = Stage("s", "k", {"net": net}, [{"params": list(net.parameters()), "lr": 0.1}],
                  lambda b: None, 3)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path / "last.pt"
    _save(path, stage, opt, 1)
    said: list[str] = []
    ctx = SimpleNamespace(log=said.append, device="cpu")
    assert _resume(path, stage, opt, ctx) == 2 and said == ["s: resumed after epoch 2"]
    _flip(path)
    said.clear()
    assert _resume(path, stage, opt, ctx) == 0
    assert len(said) == 1 and said[0].startswith(f"warning: stage s: cannot resume, {path} does "
                                                 "not match its sha256") and "epoch 1" in said[0]
    assert not list(tmp_path.glob("*.tmp"))


def test_manifest_names_the_first_damage(tmp_path):
    from harness.artefacts import check_manifest, folder_files, write_manifest

    (tmp_path / "a.pt").write_bytes(b"a" * 100)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json").write_text("{}")
    manifest = tmp_path / "manifest.json"
    write_manifest(manifest, folder_files(tmp_path), stage="x")
    assert check_manifest(manifest) is None
    assert sorted(json.loads(manifest.read_text())["files"]) == ["a.pt", "sub/b.json"]
    (tmp_path / "sub" / "b.json").write_text("[]")
    assert str(check_manifest(manifest)) == ("sub/b.json does not match its sha256 (its bytes "
                                             "changed after its build wrote them)")
    (tmp_path / "sub" / "b.json").unlink()
    assert str(check_manifest(manifest)) == "sub/b.json is missing"
    manifest.write_bytes(b"\xff")
    assert str(check_manifest(manifest)) == "manifest.json is not a readable manifest"
    manifest.unlink()
    assert check_manifest(manifest).cause.startswith("is missing")


def test_leftovers_are_judged_by_their_owner(tmp_path):
    from harness.leftovers import OWNER_FILE, cache_leftovers, owner_tag, run_leftovers, this_host

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stage = tmp_path / "cache" / "stages" / "cam"
    (stage / f".abc.{this_host()}.{dead}.tmp").mkdir(parents=True)  # a killed builder's
    (stage / f".abd.{owner_tag()}.tmp").mkdir()  # this live process's
    (stage / ".abe.otherhost.1.tmp").mkdir()  # another host's: never judged from here
    (stage / ".abc.partial").mkdir()
    (stage / ".abc.partial" / f"last.{this_host()}.{dead}.tmp").write_bytes(b"x")
    (tmp_path / "cache" / "synth").mkdir()
    (tmp_path / "cache" / "synth" / f"x_train_8.{this_host()}.{dead}.tmp.npz").write_bytes(b"x")
    (tmp_path / "cache" / "synth" / f"y_train_8.{owner_tag()}.tmp.npz").write_bytes(b"x")
    assert sorted(p.name for p in cache_leftovers(tmp_path / "cache")) == [
        f".abc.{this_host()}.{dead}.tmp", f"last.{this_host()}.{dead}.tmp",
        f"x_train_8.{this_host()}.{dead}.tmp.npz"]
    runs = tmp_path / "runs"
    for name, owner in [("dead", f"{this_host()}.{dead}"), ("live", owner_tag()), ("none", None)]:
        (runs / f".inprogress-{name}").mkdir(parents=True)
        if owner:
            (runs / f".inprogress-{name}" / OWNER_FILE).write_text(owner)
    assert [p.name for p in run_leftovers(runs)] == [".inprogress-dead"]
    old = time.time() - 7200
    os.utime(runs / ".inprogress-none", (old, old))
    assert [p.name for p in run_leftovers(runs, orphans=True)] == [".inprogress-dead",
                                                                   ".inprogress-none"]
