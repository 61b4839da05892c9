"""The results store: `runs/<run_id>/` with config, per-epoch metrics, CAMs and result.json.

A run writes into a hidden `.inprogress-<run_id>` folder and is renamed into place when it
ends, so readers never see half a run and a killed run leaves nothing they would read.
Run ids are unique, so any number of processes can write at once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from harness.errors import BenchError

SCHEMA_VERSION = 1


def default_runs_dir() -> Path:
    return Path(os.environ.get("BENCH_RUNS_DIR", "runs"))


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


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

    def write_json(self, name: str, obj: Any) -> None:
        write_json_atomic(self.path / name, obj)

    def append_metrics(self, row: dict[str, Any]) -> None:
        with open(self.path / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")

    def finish(self, record: dict[str, Any]) -> Path:
        self.write_json("result.json", record)
        final = self.store.root / self.run_id
        os.replace(self.path, final)
        self.path = final
        return final

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class ResultsStore:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()

    def check_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise BenchError(f"runs dir {self.root} is not writable ({exc.strerror})") from exc

    def begin(self, method: str, variant: str, seed: int) -> RunDir:
        self.check_writable()
        slug = variant.replace("/", "-")
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-s{seed}-{uuid.uuid4().hex[:6]}"
        return RunDir(self, run_id)

    def records(self, status: str | None = "ok") -> list[dict[str, Any]]:
        out = []
        if not self.root.is_dir():
            return out
        for path in sorted(self.root.glob("*/result.json")):
            if path.parent.name.startswith("."):
                continue
            try:
                rec = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue  # a foreign or damaged file is skipped, never fatal to a report
            if status is None or rec.get("status") == status:
                out.append(rec)
        return out

    def frame(self, status: str | None = "ok"):
        import pandas as pd

        rows = []
        for rec in self.records(status):
            row = {k: v for k, v in rec.items() if not isinstance(v, dict | list)}
            row.update({f"hp.{k}": v for k, v in rec.get("hparams", {}).items()})
            rows.append(row)
        return pd.DataFrame(rows)
