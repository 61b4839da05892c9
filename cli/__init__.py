"""`bench`: one Typer app, one module per sub-command.

Every failure ends in one line on stderr and a non-zero exit: a `BenchError` as its message,
anything else as its type and first line, both prefixed with the stage it happened in when
one is known. `--debug` (anywhere on the command line) or BENCH_DEBUG=1 prints the traceback
first.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer

from harness.errors import BenchError, failed_stage
from harness.process import configure_process

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, sweep and report CLIP-guided WSSS methods (CAM, CLIMS, SemPLeS, QA-CLIMS).")

DEBUG_FLAG = "--debug"


@app.callback()
def _options(debug: bool = typer.Option(False, DEBUG_FLAG, help="on failure, print the traceback "
                                         "before the one-line error (also BENCH_DEBUG=1)")) -> None:
    """Train, sweep and report CLIP-guided WSSS methods (CAM, CLIMS, SemPLeS, QA-CLIMS)."""


def _register() -> None:
    import importlib

    for name in ("run_cmd", "eval_cmd", "list_cmd", "data_cmd", "qape_cmd", "sweep_cmd",
                 "report_cmd"):
        try:
            importlib.import_module(f"cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"cli.{name}":
                raise


def main() -> None:
    configure_process()  # before anything loads torch (harness/process.py)
    _register()
    debug = _take_debug_flag()
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - every failure is one line; --debug shows the rest
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {error_line(exc, debug)}", err=True)
        sys.exit(exc.exit_code if isinstance(exc, BenchError) else 1)


def _take_debug_flag() -> bool:
    """--debug is accepted anywhere (`bench run cam --debug` too): taken out of argv here."""
    found = DEBUG_FLAG in sys.argv[1:]
    if found:
        sys.argv = [sys.argv[0], *(a for a in sys.argv[1:] if a != DEBUG_FLAG)]
    return found or os.environ.get("BENCH_DEBUG", "") not in ("", "0")


def error_line(exc: BaseException, debug: bool = False) -> str:
    """The one line a failure prints: [stage: ]cause[, and what a rerun does]."""
    stage = failed_stage(exc)
    if isinstance(exc, BenchError):
        cause = str(exc)
    else:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        cause = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        stage = stage or _where(exc)
    line = f"{stage}: {cause}" if stage else cause
    if failed_stage(exc):
        line += " (the stages finished before it stay cached; a rerun starts here)"
    if not isinstance(exc, BenchError) and not debug:
        line += f" ({DEBUG_FLAG} or BENCH_DEBUG=1 shows the traceback)"
    return line


def _where(exc: BaseException) -> str | None:
    """The innermost frame in this project's code, as `module.function`."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if any(f"/{pkg}/" in f.filename for pkg in ("harness", "methods", "sweeps", "reports", "cli"))]
    if not frames:
        return None
    f = frames[-1]
    return f"{os.path.splitext(os.path.basename(f.filename))[0]}.{f.name}"
