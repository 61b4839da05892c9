"""What Slurm says about a job, and which job this process runs in. Torch- and submitit-free:
sweep workers ask it before each trial (a journal study has no heartbeat, so a trial whose
Slurm job was cancelled, preempted or ran out of time is found dead by its job's state).
"""

from __future__ import annotations

import shutil
import subprocess

from harness.tracking import slurm_job

# states in which a job's worker may still be running its trial (`squeue --states=all`).
# COMPLETING too: a cancelled job's processes get SIGTERM, then SIGKILL KillWait seconds
# later, and may finish their trial meanwhile; it is judged once Slurm says CANCELLED.
ALIVE = frozenset({"RUNNING", "CONFIGURING", "SUSPENDED", "STAGE_OUT", "RESIZING", "SIGNALING",
                   "COMPLETING"})


def available() -> bool:
    return shutil.which("squeue") is not None


def current_job() -> str | None:
    """This process's Slurm job as squeue names it: `ARRAY_TASK` in an array, else the id."""
    return slurm_job()


def states(job_ids: list[str]) -> dict[str, str]:
    """job id -> state (RUNNING, PENDING, CANCELLED, TIMEOUT, COMPLETED, …); a job Slurm no
    longer knows (ended longer ago than MinJobAge) is `GONE`. Empty when squeue fails."""
    if not job_ids:
        return {}
    try:
        out = subprocess.run(["squeue", "-h", "-r", "--states=all", "-o", "%i %T", "-j", ",".join(job_ids)],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return {}
    found: dict[str, str] = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            found[parts[0]] = parts[1]
    if out.returncode != 0 and not found and "Invalid job id" not in out.stderr:
        return {}  # squeue itself failed: judge nothing
    return {j: found.get(j, "GONE") for j in job_ids}


def is_alive(state: str | None) -> bool:
    """None (Slurm not asked, or it did not answer): alive, never fail what we cannot judge.
    PENDING: the job was requeued (preempted), its trial died with the last run."""
    return state is None or state in ALIVE
