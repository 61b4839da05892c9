"""Where a study lives: a journal file (default, one machine) or PostgreSQL (many machines).

- no `--storage`: `<runs-dir>/sweeps/<study>.journal` (JournalStorage, safe for several
  processes on one machine or on a shared file system);
- `--storage PATH.journal` or `journal:PATH`: that journal file;
- `--storage postgresql://user:pw@host/db` (or `postgresql+psycopg://…`): RDBStorage with a
  heartbeat; a trial whose worker stops beating is failed and re-queued
  (`RetryFailedTrialCallback`). `sqlite:///…` works too (one machine, tests).

The study is created once, before any worker starts (two workers creating a fresh RDB
study at the same instant race on schema creation). Passwords never reach a log line:
every string shown goes through `mask()`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import BenchError

DEFAULT_HEARTBEAT = 60  # seconds; a dead worker's trial is retried after grace = 2 × heartbeat
MAX_RETRY = 3
ATTR = "bench"  # the study user attr holding the sweep's definition


@dataclass(frozen=True)
class StorageRef:
    url: str  # full URL (may hold a password): never print it, print `.masked`
    kind: str  # journal | rdb

    @property
    def masked(self) -> str:
        return mask(self.url)

    @property
    def journal_path(self) -> Path | None:
        return Path(self.url[len("journal:"):]) if self.kind == "journal" else None


def mask(text: str) -> str:
    """Hide the password of every URL in `text` (`user:***@host`)."""
    return re.sub(r"(://[^:/@\s]+:)([^@\s]*)@", r"\1***@", str(text))


def resolve(storage: str | None, runs_dir: Path | str, study: str) -> StorageRef:
    if not storage:
        return StorageRef(f"journal:{Path(runs_dir).resolve() / 'sweeps' / (study + '.journal')}",
                          "journal")
    s = storage.strip()
    if s.startswith(("postgresql://", "postgres://")):
        # psycopg 3 is the installed driver; SQLAlchemy's default for postgresql:// is psycopg2
        s = "postgresql+psycopg://" + s.split("://", 1)[1]
    if s.startswith(("postgresql+", "sqlite:", "mysql")):
        return StorageRef(s, "rdb")
    if s.startswith("journal:"):
        s = s[len("journal:"):]
        s = s[2:] if s.startswith("//") else s
    if "://" in s:
        raise BenchError(f"--storage: unsupported URL {mask(s)!r} (use postgresql://…, "
                         "sqlite:///…, or a journal file path)")
    return StorageRef(f"journal:{Path(s).resolve()}", "journal")


def open_storage(ref: StorageRef, heartbeat: int = DEFAULT_HEARTBEAT, max_retry: int = MAX_RETRY):
    import optuna
    from optuna.storages import RDBStorage
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if ref.kind == "journal":
        path = ref.journal_path
        path.parent.mkdir(parents=True, exist_ok=True)
        # no heartbeat here: Optuna 5's JournalStorage does not implement it (only RDBStorage
        # does); a dead worker's trial is found by its pid (sweeps.worker.recover_dead_trials)
        return JournalStorage(JournalFileBackend(str(path)))
    try:
        with warnings.catch_warnings():  # heartbeat_interval is "experimental" in Optuna 5
            warnings.simplefilter("ignore")
            return RDBStorage(ref.url, engine_kwargs={"pool_pre_ping": True},
                              heartbeat_interval=heartbeat, grace_period=2 * heartbeat,
                              heartbeat_stale_trial_callback=StaleRetry(max_retry))
    except Exception as exc:  # connection refused, bad credentials, missing driver
        raise BenchError(f"cannot open sweep storage {ref.masked}: {mask(_one_line(exc))}") from None


class StaleRetry:
    """Queue a dead worker's trial again with the same parameters: Optuna's public
    `RetryHeartbeatStaleTrialCallback` (the `RetryFailedTrialCallback` of Optuna < 4.9; it
    keeps `failed_trial` / `retry_history`), handed the trial without the dead worker's
    identity, so the retry is never mistaken for a dead trial. Why it was queued again goes
    on the retry (`retry_reason`): a finished trial takes no attributes through public API."""

    def __init__(self, max_retry: int | None = MAX_RETRY,
                 reason: str = "worker stopped beating (heartbeat) mid-trial"):
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        self.reason = reason
        with warnings.catch_warnings():  # "experimental" in Optuna 5
            warnings.simplefilter("ignore")
            self._retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def __call__(self, study, trial) -> None:
        trial = copy.deepcopy(trial)
        trial.user_attrs = {k: v for k, v in trial.user_attrs.items()
                            if k not in ("worker", "fail_reason", "runs")}
        trial.system_attrs = {**trial.system_attrs, "retry_reason": self.reason}
        self._retry(study, trial)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def create_study(storage, study_name: str, definition: dict[str, Any], direction: str):
    """Create the study (or load it) once, store the sweep definition, and return it.

    A study made by an earlier command must have the same definition: a joining worker
    with other seeds or settings would mix incomparable trials."""
    import optuna

    last: Exception | None = None
    for attempt in range(5):
        try:
            study = optuna.create_study(storage=storage, study_name=study_name,
                                        direction=direction, load_if_exists=True)
            break
        except Exception as exc:  # noqa: BLE001 - a concurrent creator; load it
            last = exc
            time.sleep(0.5 * (attempt + 1))
    else:
        raise BenchError(f"cannot create study {study_name!r}: {mask(_one_line(last))}")
    stored = study.user_attrs.get(ATTR)
    if stored is None:
        study.set_user_attr(ATTR, json.loads(json.dumps(definition, default=str)))
        return study
    check_same(study_name, stored, definition)
    return study


def check_same(study_name: str, stored: dict[str, Any], wanted: dict[str, Any]) -> None:
    for key in ("spec", "dataset", "seeds", "sets", "epochs"):
        a, b = json.dumps(stored.get(key), sort_keys=True), json.dumps(wanted.get(key), sort_keys=True,
                                                                        default=str)
        if a != b:
            raise BenchError(f"study {study_name!r} already exists with another {key} "
                             f"({a} vs {b}); use another --study name to start afresh")


def load_study(storage, study_name: str):
    import optuna

    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise BenchError(f"no study {study_name!r} in this storage") from None


def study_definition(study) -> dict[str, Any]:
    d = study.user_attrs.get(ATTR)
    if d is None:
        raise BenchError(f"study {study.study_name!r} was not made by `bench sweep`")
    return d


def env_storage() -> str | None:
    """Workers started by the launcher get the storage URL through the environment, not argv,
    so a password never shows in `ps`."""
    return os.environ.get("BENCH_SWEEP_STORAGE")
