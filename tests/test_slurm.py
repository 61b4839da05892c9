"""`--launcher slurm` against a real Slurm (`.ci/slurm-up.sh` starts a one-node one here):
a two-job synth sweep, a two-cell `bench reproduce`, and an `scancel` of one job mid-trial
after which the study still completes with every record, nothing lost, nothing counted
twice. Without Slurm these skip with one line; under CI (CI=true) they fail instead.

Trials are tiny synth `cam` runs (TINY), so the jobs run on the CI machine's cores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from harness.errors import BenchError
from harness.store import ResultsStore
from sweeps import storage as st
from sweeps.slurm import SlurmOptions, check_cluster, check_devices, check_journal_visible
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parent.parent


def _slurm_up() -> str | None:
    """None when sbatch works here, else why not."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "no Slurm here (sbatch/sinfo not found); .ci/slurm-up.sh starts a local one"
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    if out.returncode != 0 or not any(s in out.stdout for s in ("idle", "mixed", "allocated")):
        return f"Slurm is installed but no node is up (sinfo: {out.stdout.strip() or out.stderr.strip()})"
    return None


@pytest.fixture(scope="module")
def slurm():
    why = _slurm_up()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the Slurm tests: {why}")
        pytest.skip(why)


def _bench(*args: str, cache: Path, runs: Path, **popen) -> subprocess.Popen:
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache), "BENCH_RUNS_DIR": str(runs),
           "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, **popen)


def _sets(*extra: str) -> list[str]:
    return [a for s in (*TINY, *extra) for a in ("--set", s)]


def _study(runs: Path, name: str):
    return st.load_study(st.open_storage(st.resolve(None, runs, name)), name)


def _jobs(runs: Path, name: str) -> list[dict]:
    return json.loads((runs / "slurm" / name / "jobs.json").read_text())


def test_two_job_synth_sweep(slurm, warm_cache, tmp_path):
    runs = tmp_path / "runs"
    name = f"slurm-two-{os.getpid()}"
    proc = _bench("sweep", "custom", "--method", "cam", "--param", "cam_lr=grid:0.011,0.022,0.033",
                  "--study", name, *_sets(), "--launcher", "slurm", "--workers", "2",
                  cache=warm_cache, runs=runs)
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err + out
    jobs = _jobs(runs, name)
    assert len(jobs) == 2 and "2 Slurm job(s)" in out
    assert all(f"{j['job_id']} completed" in out for j in jobs)
    study = _study(runs, name)
    done = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    assert sorted(t.params["cam_lr"] for t in done) == [0.011, 0.022, 0.033]
    assert len(study.get_trials()) == 3
    ids = {j["job_id"] for j in jobs}
    assert {t.user_attrs["worker"]["slurm_job"] for t in done} <= ids
    records = ResultsStore(runs).records()
    assert sorted(r.config["params"]["cam_lr"] for r in records) == [0.011, 0.022, 0.033]
    assert {r.metric("slurm_job") for r in records} <= ids  # each run says which job made it
    logs = sorted((runs / "slurm" / name).glob("*_log.out"))
    assert len(logs) == 2 and all("worker finished" in p.read_text() for p in logs)
    # --status shows each job's Slurm state
    status = _bench("sweep", "custom", "--method", "cam", "--param", "cam_lr=grid:0.011,0.022,0.033",
                    "--study", name, "--status", cache=warm_cache, runs=runs)
    sout, serr = status.communicate(timeout=60)
    assert status.returncode == 0, serr
    assert all(f"slurm job {j['job_id']} (worker {k}): COMPLETED" in sout for k, j in enumerate(jobs))


def test_two_cell_reproduce_as_a_job_array(slurm, warm_cache, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli import _register, app
    from methods.papers import Published
    from reports import tables
    from reports.tables import Row, Table

    _register()
    monkeypatch.setitem(tables.TABLES, "tiny-cam", Table(
        "tiny-cam", "tiny", (Row("CAM", "cam", Published(48.3, "QA-CLIMS Table 1")),)))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    runs = tmp_path / "runs"
    args = ["reproduce", "tiny-cam", "--seeds", "2", *_sets("cam_lr=0.044"), "--launcher", "slurm",
            "--runs-dir", str(runs), "--cache-dir", str(warm_cache), "--wandb", "disabled"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "ran 2, failed 0, skipped 0" in res.output
    records = ResultsStore(runs).records()
    assert sorted(r.seed for r in records) == [0, 1]
    (jobs,) = [_jobs(runs, "reproduce-tiny-cam-synth")]
    assert len(jobs) == 2 and {r.metric("slurm_job") for r in records} == {j["job_id"] for j in jobs}
    assert len({j["job_id"].split("_")[0] for j in jobs}) == 1  # one array
    # submitting again finds nothing missing and submits nothing
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "ran 0, failed 0, skipped 0" in again.output
    assert len(_jobs(runs, "reproduce-tiny-cam-synth")) == 2
    status = CliRunner().invoke(app, [*args, "--status"])
    assert status.exit_code == 0 and "0 missing run(s)" in status.output
    assert status.output.count(": COMPLETED") == 2


def test_scancel_mid_trial_loses_nothing_and_counts_nothing_twice(slurm, warm_cache, tmp_path):
    """Two jobs, three slow points; one job is cancelled while its trial runs. The other job
    finds the trial's job gone (Slurm's state; the journal has no heartbeat), queues it again
    and runs it: every point complete once, the cancelled trial failed, one record per point."""
    runs = tmp_path / "runs"
    name = f"slurm-cancel-{os.getpid()}"
    seed = zlib.crc32(name.encode()) % 10_000 + 1  # its own stages: no cache hit makes it instant
    grid = "cam_lr=grid:0.015,0.025,0.035"
    proc = _bench("sweep", "custom", "--method", "cam", "--param", grid, "--study", name,
                  "--seeds", f"{seed}-{seed}", *_sets("cam_epochs=30"), "--launcher", "slurm",
                  "--workers", "2", cache=warm_cache, runs=runs)
    try:
        deadline, victim = time.time() + 300, None
        while time.time() < deadline and victim is None:
            time.sleep(0.5)
            assert proc.poll() is None, proc.communicate()
            if not (runs / "sweeps" / f"{name}.journal").exists():
                continue
            for t in _study(runs, name).get_trials():
                job = (t.user_attrs.get("worker") or {}).get("slurm_job")
                if t.state.name == "RUNNING" and job:
                    victim = (t.number, job)
                    break
        assert victim is not None, "no trial ran in a Slurm job in time"
        subprocess.run(["scancel", victim[1]], check=True)
        out, err = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err + out
    trials = {t.number: t for t in _study(runs, name).get_trials()}
    killed = trials[victim[0]]
    assert killed.state.name == "FAIL"
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == victim[0]]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    assert f"Slurm job {victim[1]} cancelled mid-trial" in retries[0].system_attrs["retry_reason"]
    complete = sorted(t.params["cam_lr"] for t in trials.values() if t.state.name == "COMPLETE")
    assert complete == [0.015, 0.025, 0.035]  # every point once: nothing lost, nothing twice
    records = ResultsStore(runs).records()
    assert sorted(r.config["params"]["cam_lr"] for r in records) == [0.015, 0.025, 0.035]
    assert f"{victim[1]} cancelled" in out


# ---------------------------------------------------------------- bad input, one line

def test_bad_slurm_input_is_one_line(slurm, tmp_path):
    with pytest.raises(BenchError, match=r"unknown partition 'nope'; this cluster has: debug"):
        check_cluster(SlurmOptions(partition="nope"))
    with pytest.raises(BenchError, match="does not match --slurm-gpus 2"):
        check_devices("cuda:0", SlurmOptions(gpus_per_job=2))
    with pytest.raises(BenchError, match="--slurm-gpus is 0"):
        check_devices("cuda:0,cuda:1", SlurmOptions())
    assert check_devices("cuda:0,cuda:1", SlurmOptions(gpus_per_job=2)) == "cuda"
    assert check_devices(None, SlurmOptions()) == "cpu"
    # a journal on this machine's disk is fine when every node is this machine ...
    ref = st.resolve(str(tmp_path / "s.journal"), tmp_path, "s")
    check_journal_visible(ref, check_cluster(SlurmOptions()))
    # ... and not when the jobs run on other nodes
    with pytest.raises(BenchError, match="cannot see; put it .* on a shared file system"):
        check_journal_visible(ref, ["node-a", "node-b"])


def test_launcher_slurm_without_slurm_is_one_line(tmp_path, warm_cache):
    """No sbatch on PATH: one line, exit 2, before any study is made."""
    env = {**os.environ, "PATH": "/nonexistent", "BENCH_CACHE_DIR": str(warm_cache),
           "WANDB_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-m", "cli", "sweep", "lambda_refine", "--launcher",
                           "slurm", "--runs-dir", str(tmp_path / "runs")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == ("error: --launcher slurm: no Slurm on this machine (sbatch, "
                                   "squeue, sinfo not found); run on a login node of the cluster, "
                                   "or use --launcher local")
    assert not (tmp_path / "runs" / "sweeps").exists()
