"""`bench`: one Typer app, one module per sub-command."""

from __future__ import annotations

import sys

import typer

from harness.errors import BenchError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, sweep and report CLIP-guided WSSS methods (CAM, CLIMS, SemPLeS, QA-CLIMS).")


def _register() -> None:
    import importlib

    for name in ("run_cmd", "eval_cmd", "list_cmd", "data_cmd", "qape_cmd", "sweep_cmd",
                 "report_cmd"):
        try:
            importlib.import_module(f"harness.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"harness.cli.{name}":
                raise


def main() -> None:
    _register()
    try:
        app()
    except BenchError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
