"""Sweeps: the same tests against every storage backend (a journal file and a real
PostgreSQL the fixture starts itself), plus the parts that need no storage.

Trials are tiny `cam` runs over `cam_lr` (TINY sizes), a few seconds each.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import pytest

from harness.devices import parse_devices
from harness.errors import BenchError
from harness.run_options import RunOptions
from harness.store import ResultsStore
from sweeps import get_sweep, sweep_names
from sweeps import storage as st
from sweeps.launcher import SweepRequest, launch, prepare, start_workers
from sweeps.spaces import SweepSpec, custom_sweep, parse_param
from sweeps.worker import run_worker, tally
from tests.conftest import TINY

PG_PASSWORD = "s3cr3t-pw"  # trust auth ignores it; it must never appear in any output


# ---------------------------------------------------------------- PostgreSQL, started here

def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL on 127.0.0.1 (initdb + pg_ctl, as user postgres when root)."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found (initdb); CI: apt-get install -y postgresql")
    root = tempfile.mkdtemp(prefix="bench-pg-")
    data, sock = Path(root) / "data", Path(root) / "sock"
    sock.mkdir()
    as_root = os.geteuid() == 0
    if as_root:
        os.chmod(root, 0o755)
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")

    def sh(*args: str) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *args] if as_root else list(args)
        subprocess.run(cmd, check=True, capture_output=True, cwd=root)

    port = _free_port()
    sh(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    sh(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(Path(root) / "log"), "-w", "-t", "60",
       "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
             "-c synchronous_commit=off -c max_connections=200", "start")
    try:
        yield f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        sh(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["journal", "postgresql"])
def storage(request, tmp_path) -> str:
    """The storage URL each backend test runs against (one fresh study per test)."""
    if request.param == "journal":
        return str(tmp_path / "study.journal")
    return request.getfixturevalue("postgres_url")


def _request(spec: SweepSpec, storage: str, runs_dir: Path, cache_dir: Path, study: str,
             sets: tuple[str, ...] = (), seed: int = 0, **kw) -> SweepRequest:
    options = RunOptions(runs_dir=runs_dir, cache_dir=cache_dir, wandb_mode="disabled")
    return SweepRequest(spec, "synth", [seed], [*TINY, *sets], study, storage, options,
                        heartbeat=2, **{"devices": "cpu", **kw})


def _study_name(request) -> str:
    return "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name)[-50:] + f"-{os.getpid()}"


def _states(study) -> list[tuple[str, dict]]:
    return [(t.state.name, dict(t.params)) for t in study.get_trials(deepcopy=False)]


def _complete_points(study) -> list[float]:
    return sorted(t.params["cam_lr"] for t in study.get_trials(deepcopy=False)
                  if t.state.name == "COMPLETE")


# ---------------------------------------------------------------- the same tests, every backend

def test_two_workers_share_one_study(storage, runs_dir, warm_cache, request, capsys):
    spec = custom_sweep("cam", ["cam_lr=grid:0.01,0.02,0.05,0.1"])
    name = _study_name(request)
    out = launch(_request(spec, storage, runs_dir, warm_cache, name, workers=2), show=True)
    assert out["exit_codes"] == [0, 0]
    _, study = prepare(_request(spec, storage, runs_dir, warm_cache, name))
    # every grid point exactly once, all complete: the workers split the grid
    assert _complete_points(study) == [0.01, 0.02, 0.05, 0.1]
    assert len(study.get_trials()) == 4
    pids = {t.user_attrs["worker"]["pid"] for t in study.get_trials()}
    assert 1 <= len(pids) <= 2
    # each trial's runs are in the results store, grouped under the study
    for t in study.get_trials():
        for run_id in t.user_attrs["runs"]:
            assert (runs_dir / run_id / "result.json").exists()
    text = capsys.readouterr().out
    assert "best params: --set cam_lr=" in text and PG_PASSWORD not in text
    # joining a finished study runs nothing more
    again = launch(_request(spec, storage, runs_dir, warm_cache, name, workers=1), show=False)
    assert again["complete"] == 4 and len(study.get_trials()) == 4


def test_nan_trial_fails_with_reason_and_sweep_goes_on(storage, runs_dir, warm_cache, request):
    spec = custom_sweep("cam", ["cam_lr=grid:0.05,1e12"])
    name = _study_name(request)
    req = _request(spec, storage, runs_dir, warm_cache, name)
    ref, study = prepare(req)
    opts = RunOptions(runs_dir=runs_dir, cache_dir=warm_cache, wandb_mode="disabled")
    state = run_worker(ref, name, "cpu", opts, heartbeat=2,
                       log=lambda m: None)
    assert state.done and state.complete == 1 and state.failed == 1
    failed = [t for t in study.get_trials() if t.state.name == "FAIL"]
    assert failed[0].params["cam_lr"] == 1e12
    assert "nan" in failed[0].user_attrs["fail_reason"].lower()
    # the diverged run is in the store too, as failed
    (run_id,) = failed[0].user_attrs["runs"]
    assert '"status": "failed"' in (runs_dir / run_id / "result.json").read_text()


def test_killed_worker_loses_nothing_and_grid_completes(storage, runs_dir, warm_cache, request):
    spec = custom_sweep("cam", ["cam_lr=grid:0.015,0.03,0.06"])
    name = _study_name(request)
    # trials of a few seconds: a one-epoch tiny trial can finish between the snapshot that
    # sees it running and the kill, and then there is no killed trial to recover. Its own seed:
    # with another backend's trials already in the shared stage cache they would be instant hits
    seed = zlib.crc32(name.encode()) % 10_000 + 1
    req = _request(spec, storage, runs_dir, warm_cache, name, sets=("cam_epochs=25",), seed=seed,
                   workers=1)
    ref, study = prepare(req)
    (victim,) = start_workers(req, ref, name)
    try:
        # wait until one trial has finished and the next one is running, then kill -9
        deadline = time.time() + 120
        while time.time() < deadline:
            trials = study.get_trials(deepcopy=False)
            done = [t for t in trials if t.state.name == "COMPLETE"]
            running = [t for t in trials if t.state.name == "RUNNING" and "worker" in t.user_attrs]
            if done and running:
                break
            assert victim.poll() is None, "worker exited before it could be killed"
            time.sleep(0.1)
        else:
            pytest.fail("no trial was running in time")
        finished_before = {t.number: t.value for t in done}
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed = running[0].number
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    # a fresh worker recovers the dead trial (journal: pid gone; PostgreSQL: heartbeat)
    (rescuer,) = start_workers(req, ref, name)
    assert rescuer.wait(timeout=150) == 0
    trials = {t.number: t for t in study.get_trials()}
    assert trials[killed].state.name == "FAIL"
    for number, value in finished_before.items():  # no finished result lost
        assert trials[number].state.name == "COMPLETE" and trials[number].value == value
    assert _complete_points(study) == [0.015, 0.03, 0.06]
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    assert tally(study, spec, None).done


def test_two_workers_split_a_grid(tmp_path, runs_dir, warm_cache, request):
    """Both workers take trials: the first one seen holding a trial is paused (SIGSTOP), so the
    other must run the rest; resumed, the first finishes its own. Every point once, and the
    paused worker's pid on exactly one trial. (Journal storage: a paused PostgreSQL worker would miss its
    heartbeats and lose its trial, which is the killed-worker test's business.)"""
    spec = custom_sweep("cam", ["cam_lr=grid:0.011,0.022,0.044"])
    name = _study_name(request)
    seed = zlib.crc32(name.encode()) % 10_000 + 1  # its own stages: no instant cache hits
    req = _request(spec, str(tmp_path / "study.journal"), runs_dir, warm_cache, name, seed=seed,
                   workers=2)
    ref, study = prepare(req)
    procs = start_workers(req, ref, name)
    by_pid = {p.pid: p for p in procs}
    try:
        deadline, paused = time.time() + 120, None
        while paused is None and time.time() < deadline:
            for t in study.get_trials(deepcopy=False):
                pid = (t.user_attrs.get("worker") or {}).get("pid")
                if t.state.name == "RUNNING" and pid in by_pid:
                    paused = by_pid[pid]
                    paused.send_signal(signal.SIGSTOP)
                    break
            time.sleep(0.02)
        assert paused is not None, "no trial was running in time"
        # the other worker runs every other point (then waits for the paused one's)
        deadline = time.time() + 150
        while len(_complete_points(study)) < 2 and time.time() < deadline:
            assert all(p.poll() is None for p in procs)
            time.sleep(0.1)
        paused.send_signal(signal.SIGCONT)
        assert [p.wait(timeout=150) for p in procs] == [0, 0]
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()
    trials = study.get_trials()
    assert _complete_points(study) == [0.011, 0.022, 0.044] and len(trials) == 3
    pids = [t.user_attrs["worker"]["pid"] for t in trials]
    assert set(pids) == set(by_pid) and pids.count(paused.pid) == 1


# ---------------------------------------------------------------- no storage needed

def test_named_sweeps_are_declared_without_their_methods():
    names = sweep_names()
    for n in ("lambda_refine", "lambda_b", "lambda_T", "semples_weights", "omega", "tau",
              "qa_clims_weights"):
        assert n in names
    lr = get_sweep("lambda_refine")
    assert lr.method == "semples" and lr.sampler_kind == "grid"
    assert lr.grid() == {"lambda_refine": [0.0, 0.01, 0.02, 0.05, 0.1]}
    assert get_sweep("semples_weights").sampler_kind == "tpe"
    assert {p.name for p in get_sweep("qa_clims_weights").params} == {"alpha", "beta", "gamma"}
    assert get_sweep("omega").method == "qa-clims"
    with pytest.raises(BenchError, match="unknown sweep"):
        get_sweep("nope")


def test_bench_list_survives_unregistered_sweep_methods():
    from typer.testing import CliRunner

    from cli import _register, app

    _register()
    res = CliRunner().invoke(app, ["list"])
    assert res.exit_code == 0, res.output
    assert "lambda_refine" in res.output


def test_unregistered_method_fails_before_any_worker(tmp_path):
    spec = SweepSpec("x", "no-such-method", (parse_param("lambda_b=grid:1,2"),))
    with pytest.raises(BenchError, match="needs method 'no-such-method'"):
        prepare(SweepRequest(spec, options=RunOptions(runs_dir=tmp_path)))
    assert not (tmp_path / "sweeps").exists()


def test_param_syntax():
    p = parse_param("lambda_b=float:0.5:5:log")
    assert (p.kind, p.low, p.high, p.log) == ("float", 0.5, 5.0, True)
    assert parse_param("omega=grid:0.05,0.1,0.2").choices == (0.05, 0.1, 0.2)
    assert parse_param("epochs=int:1:4").kind == "int"
    assert parse_param("optimizer=cat:sgd,adamw").choices == ("sgd", "adamw")
    for bad in ("lambda_b", "x=float:5:1", "x=float:0:1:log", "x=foo:1", "x=grid:", "x=grid:1,1"):
        with pytest.raises(BenchError):
            parse_param(bad)
    mixed = custom_sweep("semples", ["lambda_b=float:0.5:5:log", "omega=grid:0.1,0.2"])
    assert mixed.sampler_kind == "tpe"
    assert custom_sweep("cam", ["cam_lr=grid:0.1,0.2"]).sampler_kind == "grid"


def test_storage_urls_and_masking(tmp_path):
    ref = st.resolve(None, tmp_path, "s")
    assert ref.kind == "journal" and ref.journal_path == (tmp_path / "sweeps" / "s.journal").resolve()
    pg = st.resolve("postgresql://u:hunter2@db:5432/optuna", tmp_path, "s")
    assert pg.kind == "rdb" and pg.url.startswith("postgresql+psycopg://")
    assert "hunter2" not in pg.masked and "u:***@db" in pg.masked
    masked = st.mask("error at postgresql+psycopg://a:b@c/d here")
    assert masked == "error at postgresql+psycopg://a:***@c/d here"
    with pytest.raises(BenchError):
        st.resolve("redis://x", tmp_path, "s")


def test_devices_pin_one_gpu_per_worker():
    assert parse_devices("cuda:0,cuda:1", 3) == [("cuda:0", "0"), ("cuda:0", "1"), ("cuda:0", "0")]
    assert parse_devices("cpu", 2) == [("cpu", ""), ("cpu", "")]
    with pytest.raises(BenchError):
        parse_devices("tpu:0", 1)


def test_status_of_a_study_elsewhere(postgres_url, runs_dir, warm_cache, request):
    from typer.testing import CliRunner

    from cli import _register, app

    _register()
    spec = custom_sweep("cam", ["cam_lr=grid:0.05"])
    name = _study_name(request)
    prepare(_request(spec, postgres_url, runs_dir, warm_cache, name))
    res = CliRunner().invoke(app, ["sweep", "custom", "--method", "cam", "--param",
                                   "cam_lr=grid:0.05", "--storage", postgres_url, "--study", name,
                                   "--status"])
    assert res.exit_code == 0, res.output
    assert name in res.output and "1 grid points not started" in res.output
    assert PG_PASSWORD not in res.output


def test_interrupted_trial_is_queued_again(tmp_path):
    import optuna

    from sweeps.worker import requeue_interrupted, worker_identity

    spec = custom_sweep("cam", ["cam_lr=grid:0.01,0.02"])
    ref = st.resolve(None, tmp_path, "s")
    study = st.create_study(st.open_storage(ref), "s", {"spec": spec.to_dict()}, "maximize")
    study.sampler = spec.make_sampler()

    def interrupted(trial):
        trial.set_user_attr("worker", worker_identity("cpu"))
        trial.suggest_categorical("cam_lr", [0.01, 0.02])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        study.optimize(interrupted, n_trials=1)
    requeue_interrupted(study, log=lambda m: None)
    t = tally(study, spec, None)
    assert (t.waiting, t.retried, t.failed) == (1, 1, 0) and t.can_start
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))[0]
    assert waiting.params == study.trials[0].params and "worker" not in waiting.user_attrs
    # why trial 0 was queued again is read from its retry (a finished trial takes no attrs)
    from rich.console import Console

    from sweeps.view import trials_table

    console = Console(record=True, width=200)
    console.print(trials_table(study, spec))
    rows = console.export_text().splitlines()
    assert any("fail→retried" in r and "interrupted mid-trial; queued again" in r for r in rows)
    assert any("retry of #0" in r for r in rows)


# ---------------------------------------------------------------- failing sweeps fail

def _sweep_cli(*args: str, runs: Path, cache: Path):
    import sys

    env = {**os.environ, "BENCH_CACHE_DIR": str(cache), "WANDB_MODE": "disabled",
           "BENCH_RUNS_DIR": str(runs)}
    return subprocess.run([sys.executable, "-m", "cli", "sweep", *args], capture_output=True,
                          text=True, env=env, timeout=600)


def test_failed_trials_fail_the_sweep_and_a_rerun_retries_them(tmp_path, warm_cache, request):
    """cam_lr=1e12 diverges (NaN) every time: a study of only that point exits 1 with the
    failure whole; beside a good point it says how many failed; each rerun queues the
    failed point again (and only it), and --status prints every failure's whole line."""
    name = _study_name(request)
    runs = tmp_path / "runs"
    sets = [a for s in TINY for a in ("--set", s)]
    base = ["custom", "--method", "cam", "--study", name, *sets, "--devices", "cpu"]
    bad = _sweep_cli(*base, "--param", "cam_lr=grid:1e12", runs=runs, cache=warm_cache)
    assert bad.returncode == 1, bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith(f"error: all 1 trial(s) of study '{name}' failed")
    assert "first failure, trial 0 {'cam_lr': 1000000000000.0}: seed 0: cam: loss became nan" in bad.stdout
    # another study: one good point, one bad; the rerun retries the bad point only
    name2 = name + "-mixed"
    mixed = [*base[:4], name2, *base[5:], "--param", "cam_lr=grid:0.05,1e12"]
    some = _sweep_cli(*mixed, runs=runs, cache=warm_cache)
    assert some.returncode == 0, some.stderr
    study = st.load_study(st.open_storage(st.resolve(None, runs, name2)), name2)
    (bad_n,) = [t.number for t in study.get_trials() if t.params["cam_lr"] == 1e12]
    assert f"1 of 2 trial(s) failed (first: trial {bad_n}: seed 0: cam: loss became nan" in some.stdout
    again = _sweep_cli(*mixed, runs=runs, cache=warm_cache)
    assert again.returncode == 0 and f"trial {bad_n} failed before: queued again" in again.stdout
    trials = study.get_trials()
    assert sorted((t.state.name, t.params["cam_lr"]) for t in trials) == [
        ("COMPLETE", 0.05), ("FAIL", 1e12), ("FAIL", 1e12)]
    assert trials[2].system_attrs["failed_trial"] == bad_n  # the retry, not a new point
    status = _sweep_cli(*mixed, "--status", runs=runs, cache=warm_cache)
    assert status.returncode == 0, status.stderr
    (line,) = [ln for ln in status.stdout.splitlines() if ln.startswith("trial 2 failed")]
    assert line == f"trial 2 failed (cam_lr=1e+12): {trials[2].user_attrs['fail_reason']}"
    assert "recorded as failed in" in line  # the whole reason, to its end


def test_bad_n_trials_is_one_line(tmp_path, warm_cache):
    for n in ("0", "-1"):
        proc = _sweep_cli("custom", "--method", "cam", "--param", "cam_lr=grid:0.05", "--n-trials",
                          n, runs=tmp_path / "runs", cache=warm_cache)
        assert proc.returncode == 2 and proc.stderr.strip() == (
            f"error: --n-trials must be ≥ 1 (got {n}); leave it out for the whole grid or the "
            "sweep's budget"), proc.stderr
    assert not (tmp_path / "runs" / "sweeps").exists()


def test_pruned_and_failed_grid_points_are_queued_again_once(tmp_path):
    import optuna

    from sweeps.worker import requeue_unfinished

    spec = custom_sweep("cam", ["cam_lr=grid:0.01,0.02,0.03"])
    ref = st.resolve(None, tmp_path, "s")
    study = st.create_study(st.open_storage(ref), "s", {"spec": spec.to_dict()}, "maximize")
    study.sampler = spec.make_sampler()
    dist = optuna.distributions.CategoricalDistribution([0.01, 0.02, 0.03])
    for value, state in ((0.01, "COMPLETE"), (0.02, "FAIL"), (0.03, "PRUNED")):
        study.add_trial(optuna.create_trial(
            state=getattr(optuna.trial.TrialState, state), params={"cam_lr": value},
            distributions={"cam_lr": dist}, value=1.0 if state == "COMPLETE" else None))
    assert requeue_unfinished(study, spec, log=lambda m: None) == 2
    assert requeue_unfinished(study, spec, log=lambda m: None) == 0  # queued already
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert sorted(t.params["cam_lr"] for t in waiting) == [0.02, 0.03]
    t = tally(study, spec, None)
    assert (t.complete, t.waiting, t.failed, t.pruned, t.retried) == (1, 2, 0, 0, 2)


# ---------------------------------------------------------------- sweeps on real data

def test_sweep_on_a_voc_tree_carries_the_run_options_and_preflight_fails_first(tmp_path):
    """A VOC-layout tree with odd image sizes, no weights: without --allow-random-weights
    the preflight says so in one line (exit 2) before any worker or study; with it, every
    trial runs on that tree with random weights."""
    from tests.fixtures_real import ODD_SIZES, make_voc

    root = make_voc(tmp_path / "voc", sizes=ODD_SIZES)
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    args = ["custom", "--method", "cam", "--param", "cam_lr=grid:0.05,0.1", "--dataset", "voc",
            "--data-root", str(root), "--set", "limit=2", "--epochs", "1", "--set", "cam_batch_size=2",
            "--set", "cam_crop_size=100", "--devices", "cpu"]
    bad = _sweep_cli(*args, runs=runs, cache=cache)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: preflight (before any worker started): backbone resnet50 needs local ImageNet "
        "weights: pass --backbone-weights PATH with ImageNet ResNet-50 weights (torchvision "
        "resnet50-19c8e357.pth / resnet50-0676ba61.pth, or timm resnet50 model.safetensors) "
        "(or --allow-random-weights for smoke tests)"], bad.stderr
    assert not (runs / "sweeps").exists()
    missing = _sweep_cli(*args[:8], str(tmp_path / "nowhere"), *args[9:], "--allow-random-weights",
                         runs=runs, cache=cache)
    assert missing.returncode == 2 and missing.stderr.startswith(
        "error: preflight (before any worker started): "), missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    # the pseudo masks' settings are the run's: a bad one is refused before any study too
    bad_mask = _sweep_cli(*args, "--allow-random-weights", "--mask-set", "beta=0", runs=runs,
                          cache=cache)
    assert bad_mask.returncode == 2 and len(bad_mask.stderr.strip().splitlines()) == 1
    assert "beta" in bad_mask.stderr and not (runs / "sweeps").exists(), bad_mask.stderr
    # cam's pseudo masks on voc are IRN's (bench run --masks): --masks none turns them off
    ok = _sweep_cli(*args, "--allow-random-weights", "--masks", "none", runs=runs, cache=cache)
    assert ok.returncode == 0, ok.stderr + ok.stdout
    assert "preflight ok: voc train 2 / eval 2 images, backbone resnet50" in ok.stdout
    assert "masks irn" not in ok.stdout
    records = ResultsStore(runs).records()
    assert sorted(r.params()["cam_lr"] for r in records) == [0.05, 0.1]
    for r in records:
        assert r.config["data_root"] == str(root.resolve()) and r.metric("allow_random_weights")
        assert r.metric("stage_epochs") == {"cam": 1} and r.dataset == "voc"
        assert r.config["masks"] is None and r.metric("mask_miou") is None


# ---------------------------------------------------------------- optuna-dashboard

def test_a_journal_study_opens_with_optunas_public_api_and_the_dashboard(tmp_path):
    """What docs/sweeps.md tells the user: a sweep's journal file opens with
    JournalStorage(JournalFileBackend(path)) and serves in optuna-dashboard."""
    import io
    import json as _json
    from wsgiref.util import setup_testing_defaults

    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    from optuna_dashboard import wsgi

    spec = custom_sweep("cam", ["cam_lr=grid:0.01,0.02"])
    ref = st.resolve(None, tmp_path, "dash")
    study = st.create_study(st.open_storage(ref), "dash", {"spec": spec.to_dict()}, "maximize")
    dist = optuna.distributions.CategoricalDistribution([0.01, 0.02])
    for lr, value in ((0.01, 14.5), (0.02, 15.25)):
        study.add_trial(optuna.create_trial(params={"cam_lr": lr}, distributions={"cam_lr": dist},
                                            value=value))
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "sweeps" / "dash.journal")))
    opened = optuna.load_study(study_name="dash", storage=storage)
    assert opened.best_value == 15.25 and opened.best_params == {"cam_lr": 0.02}
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["dash"]

    app = wsgi(storage)

    def get(path: str) -> dict:
        environ: dict = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
        setup_testing_defaults(environ)
        status = []
        body = b"".join(app(environ, lambda s, h, exc_info=None: status.append(s)))
        assert status == ["200 OK"], (path, status)
        return _json.loads(body)

    (shown,) = get("/api/studies")["study_summaries"]
    assert shown["study_name"] == "dash" and shown["directions"] == ["maximize"]
    detail = get(f"/api/studies/{shown['study_id']}")
    assert len(detail["trials"]) == 2 and detail["best_trials"][0]["values"] == [15.25]
