"""`bench`: one Typer app, one module per sub-command.

Every failure ends in one line on stderr and a non-zero exit: a `BenchError` as its message,
a usage error as Click's message, a file the disk refused as its name and cause, anything
else as its type and first line, all prefixed with the stage it happened in when one is
known. `--debug` (anywhere on the command line) or BENCH_DEBUG=1 prints the traceback
first. Ctrl-C is one line naming the stages kept and what was dropped, exit 130.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings

import typer

from harness.errors import BenchError, failed_stage
from harness.process import configure_process

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, sweep and report CLIP-guided WSSS methods (CAM, CLIMS, SemPLeS, QA-CLIMS).")

DEBUG_FLAG = "--debug"


def _print_version(asked: bool) -> None:
    if asked:
        from harness import package_version

        typer.echo(f"wsss-bench {package_version()}")
        raise typer.Exit()


@app.callback()
def _options(debug: bool = typer.Option(False, DEBUG_FLAG, help="on failure, print the traceback "
                                         "before the one-line error (also BENCH_DEBUG=1)"),
             version: bool = typer.Option(False, "--version", callback=_print_version,
                                          is_eager=True, help="print the version and exit")) -> None:
    """Train, sweep and report CLIP-guided WSSS methods (CAM, CLIMS, SemPLeS, QA-CLIMS)."""


# every command module, enumerated; each registers its commands on `app` when imported
COMMAND_MODULES = ("run_cmd", "eval_cmd", "masks_cmd", "list_cmd", "data_cmd", "qape_cmd",
                   "sweep_cmd", "report_cmd", "runs_cmd", "segment_cmd")


def _register() -> None:
    """Import every command module. One that fails to import (a missing file included) fails
    `bench` loudly with its own error: a command never silently disappears."""
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"cli.{name}")


def main() -> None:
    configure_process()  # before anything loads torch (harness/process.py)
    _register()
    debug = _take_debug_flag()
    import signal

    previous = _terminate_as_interrupt()
    # warnings (torch's UserWarnings) are held back: on failure the error line is the only
    # line of the failure (--debug shows them), on success they follow the output, once each
    try:
        with warnings.catch_warnings(record=True) as caught:
            code = _invoke(debug, caught)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code == 0:
        _show_warnings(caught)
    sys.exit(code)


def _invoke(debug: bool, caught: list[warnings.WarningMessage], argv: list[str] | None = None
            ) -> int:
    """Run the command line (`argv`, default sys.argv's) through Click without its standalone
    mode (which swallows an EOFError into `Aborted!`); every failure becomes one line on
    stderr and an exit code. Tests call it in-process."""
    click = _click()

    command = typer.main.get_command(app)
    try:
        with command.make_context("bench", sys.argv[1:] if argv is None else list(argv)) as ctx:
            command.invoke(ctx)
        return 0
    except typer.Exit as exc:
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        return exc.exit_code
    except click.ClickException as exc:
        typer.echo(f"error: {click_line(exc)}", err=True)
        return exc.exit_code
    except (KeyboardInterrupt, typer.Abort) as exc:
        signal_name = getattr(exc, "signal_name", None)
        typer.echo(f"interrupted{f' ({signal_name})' if signal_name else ''}: "
                   f"{interrupted_line(exc)}", err=True)
        return getattr(exc, "exit_code", 130)
    except BrokenPipeError:
        return 1
    except Exception as exc:  # noqa: BLE001 - every failure is one line; --debug shows the rest
        if debug:
            _show_warnings(caught)
            traceback.print_exc()
        typer.echo(f"error: {error_line(exc, debug)}", err=True)
        return exc.exit_code if isinstance(exc, BenchError) else 1


def _terminate_as_interrupt():
    """SIGTERM raises `Terminated` (a KeyboardInterrupt) in the main thread: the run cleans
    up as on Ctrl-C and the CLI says what was kept and dropped, exit 143."""
    import signal

    from harness.errors import Terminated

    def handler(signum, frame) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it outright
        raise Terminated()

    return signal.signal(signal.SIGTERM, handler)  # the handler before, to put back


def _click():
    """The Click typer runs on (recent typer vendors its own copy as typer._click)."""
    import importlib

    import typer.core

    return getattr(typer.core, "_click", None) or importlib.import_module("click")


def click_line(exc) -> str:
    """A usage error in one line, with the help command of the sub-command it concerns."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    return f"{message} (see `{ctx.command_path} --help`)" if ctx is not None else message


def interrupted_line(exc: BaseException) -> str:
    """What a Ctrl-C kept (stages that finished: cached) and dropped (set by the runner)."""
    kept, dropped = getattr(exc, "bench_kept", None), getattr(exc, "bench_dropped", None)
    if kept is None and dropped is None:
        return "stopped, nothing recorded"
    kept_text = (f"kept the finished stages {', '.join(kept)} (cached, a rerun reuses them)"
                 if kept else "no stage finished")
    return f"{kept_text}; dropped {', '.join(dropped or ['nothing'])}"


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    seen = set()
    for w in caught:
        line = (str(w.message).strip().splitlines() or [""])[0][:200]
        if (w.category, line) not in seen:
            seen.add((w.category, line))
            typer.echo(f"warning: {w.category.__name__}: {line}", err=True)


def _take_debug_flag() -> bool:
    """--debug is accepted anywhere (`bench run cam --debug` too): taken out of argv here."""
    found = DEBUG_FLAG in sys.argv[1:]
    if found:
        sys.argv = [sys.argv[0], *(a for a in sys.argv[1:] if a != DEBUG_FLAG)]
    return found or os.environ.get("BENCH_DEBUG", "") not in ("", "0")


def error_line(exc: BaseException, debug: bool = False) -> str:
    """The one line a failure prints: [stage: ]cause[, and what a rerun does]."""
    stage = failed_stage(exc)
    hint = not debug
    if isinstance(exc, BenchError):
        cause, hint = str(exc), False
    elif isinstance(exc, OSError):  # the disk, not a bug: the file and the cause in words
        from harness.oserrors import os_cause

        name = exc.filename or "a file"
        cause, hint = f"{name}: {os_cause(exc)}", False
    else:  # a bug: its type and first line (no internal names: --debug shows where)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        cause = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    line = f"{stage}: {cause}" if stage else cause
    if failed_stage(exc):
        line += " (the stages finished before it stay cached; a rerun starts here)"
    if hint:
        line += f" ({DEBUG_FLAG} or BENCH_DEBUG=1 shows the traceback)"
    return line
