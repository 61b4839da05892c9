"""The one exception type the CLI turns into a single line and a non-zero exit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class BenchError(Exception):
    """A user-facing error: bad input, missing data, a diverged loss. Message is one line."""

    exit_code = 2


class NonFiniteLoss(BenchError):
    """A training loss became NaN or infinite; the run is recorded as failed."""

    exit_code = 3


@contextlib.contextmanager
def in_stage(stage: str) -> Iterator[None]:
    """Name `stage` on any exception raised inside (the innermost stage wins), so the CLI's
    one line says where a run failed."""
    try:
        yield
    except Exception as exc:
        if getattr(exc, "bench_stage", None) is None:
            exc.bench_stage = stage
        raise


def failed_stage(exc: BaseException) -> str | None:
    return getattr(exc, "bench_stage", None)


def check_file(flag: str, given: object) -> None:
    """`flag`'s path names a regular file, or one line saying what it names instead."""
    if given is None:
        return
    from pathlib import Path

    path = Path(str(given))
    if path.is_dir():
        raise BenchError(f"{flag} {given} is a directory; it takes a file")
    if not path.is_file():
        raise BenchError(f"{flag} file {given} does not exist")


class Terminated(KeyboardInterrupt):
    """SIGTERM (Slurm's time limit or preemption, `kill`): handled as Ctrl-C is, so a run
    keeps its finished stages, drops its folder and temporary files, and says so."""

    signal_name = "SIGTERM"
    exit_code = 143  # 128 + SIGTERM, as a shell reports a process it terminated
