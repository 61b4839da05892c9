"""The results store: `runs/<run_id>/` with config, per-epoch metrics, CAMs and result.json.

A run writes into a hidden `.inprogress-<run_id>` folder and is renamed into place when it
ends, so readers never see half a run and a killed run leaves nothing they would read.
Run ids are unique, so any number of processes can write at once. The folder's `owner` file
(host.pid) tells a killed run's folder from a live one: the next run on this host removes
it, and `bench runs --clean` lists and removes them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import BenchError
from harness.leftovers import OWNER_FILE, owner_tag, run_leftovers
from harness.record import RecordError, RunRecord, to_record


def default_runs_dir() -> Path:
    return Path(os.environ.get("BENCH_RUNS_DIR", "runs"))


def write_json_atomic(path: Path, obj: Any) -> None:
    """`obj` as JSON through a temporary file; a refused write names the file and the cause
    in one line and leaves no temporary file (harness/oserrors.py)."""
    from harness.oserrors import saving

    text = json.dumps(obj, indent=1, sort_keys=True, default=str)
    with saving(path, "results store") as tmp:
        tmp.write_text(text)


def git_revision() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here,
                             capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class RunDir:
    def __init__(self, store: ResultsStore, run_id: str):
        self.store, self.run_id = store, run_id
        self.path = store.root / f".inprogress-{run_id}"
        self.path.mkdir(parents=True)
        # who writes it: a cleaner tells a live run from a killed one (harness/leftovers.py)
        (self.path / OWNER_FILE).write_text(owner_tag())

    def write_json(self, name: str, obj: Any) -> None:
        write_json_atomic(self.path / name, obj)

    def append_metrics(self, row: dict[str, Any]) -> None:
        from harness.oserrors import unwritable

        path = self.path / "metrics.jsonl"
        try:
            with open(path, "a") as fh:
                fh.write(json.dumps(row) + "\n")
        except OSError as exc:
            raise unwritable("results store", path, exc) from None

    def finish(self, record: RunRecord | dict[str, Any]) -> Path:
        self.write_json("result.json", to_record(record).to_dict())
        (self.path / OWNER_FILE).unlink(missing_ok=True)
        final = self.store.root / self.run_id
        os.replace(self.path, final)
        self.path = final
        return final

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# A record is a few kB (its per-class IoU, config and provenance); anything far larger is not
# one, and reading it whole would take seconds and gigabytes (issue 32: a 2 GB file, 20 s).
MAX_RECORD_BYTES = 50 * 2**20
# what every record holds, and what a finished (ok) one adds: what `bench runs` counts and a
# table selects and scores by (a record without them was listed as ok and made a silent n = 0)
REQUIRED_FIELDS = ("status", "seed", "variant", "dataset")
REQUIRED_OK_FIELDS = ("seed_miou",)


def _read_record(path: Path) -> tuple[RunRecord | None, str]:
    """(record, "") or (None, why it is not one)."""
    try:
        size = path.stat().st_size
        if size > MAX_RECORD_BYTES:
            return None, (f"{size / 2**20:.0f} MB, over the {MAX_RECORD_BYTES // 2**20} MB a "
                          "record may hold (not read)")
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        return None, f"unreadable ({exc.strerror or type(exc).__name__})"
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    try:
        return _from_json(json.loads(text)), ""
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg}, line {exc.lineno})"
    except RecordError as exc:
        return None, str(exc)


def _from_json(data: Any) -> RunRecord:
    """The record of a JSON value, or RecordError: also when it lacks a required field."""
    if isinstance(data, dict):
        required = (*REQUIRED_FIELDS, *(REQUIRED_OK_FIELDS if data.get("status") == "ok" else ()))
        missing = [name for name in required if name not in data]
        if missing:
            raise RecordError(f"it has no {', '.join(missing)}")
    return RunRecord.from_dict(data)


def _stderr_line(message: str) -> None:
    print(message, file=sys.stderr)


class ResultsStore:
    def __init__(self, root: Path | str | None = None,
                 warn: Callable[[str], None] = _stderr_line):
        self.root = Path(root) if root is not None else default_runs_dir()
        self.warn = warn
        self.skipped: list[tuple[Path, str]] = []  # (file, why) of the last records() call

    def check_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            from harness.oserrors import os_cause

            raise BenchError(f"runs dir {self.root} is not writable ({os_cause(exc)})") from None

    def begin(self, method: str, variant: str, seed: int) -> RunDir:
        self.check_writable()
        for path in self.clean_leftovers():
            self.warn(f"removed {path.name}, the unfinished folder of a killed run")
        slug = variant.replace("/", "-")
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-s{seed}-{uuid.uuid4().hex[:6]}"
        return RunDir(self, run_id)

    def leftovers(self, orphans: bool = False) -> list[Path]:
        """`.inprogress-*` folders whose run was killed (never counted by `records`);
        `orphans`: also those without an owner file (an older version's) idle for an hour."""
        return run_leftovers(self.root, orphans)

    def clean_leftovers(self, orphans: bool = False) -> list[Path]:
        removed = []
        for path in self.leftovers(orphans):
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                removed.append(path)
        return removed

    def records(self, status: str | None = "ok") -> list[RunRecord]:
        """Every finished run's record (of `status`; None: all). A file that cannot be read,
        is not UTF-8 JSON or holds no object is skipped with one warning line naming it
        (never fatal to a report); `self.skipped` lists them for the report's legend."""
        out: list[RunRecord] = []
        self.skipped = []
        if not self.root.is_dir():
            return out
        for path in sorted(self.root.glob("*/result.json")):
            if path.parent.name.startswith("."):
                continue
            rec, why = _read_record(path)
            if rec is None:
                self.skipped.append((path, why))
                self.warn(f"warning: results store: skipped {path}: {why}")
                continue
            if status is None or rec.status == status:
                out.append(rec)
        return out

    def frame(self, status: str | None = "ok"):
        import pandas as pd

        rows = []
        for rec in self.records(status):
            row = {k: v for k, v in rec.to_dict().items() if not isinstance(v, dict | list)}
            row.update({f"hp.{k}": v for k, v in rec.hparams.items()})
            rows.append(row)
        return pd.DataFrame(rows)
