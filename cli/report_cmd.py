"""`bench report` (a paper table: measured beside published) and `bench reproduce` (run
the table's missing cells, then report)."""

from __future__ import annotations

from pathlib import Path

import typer

from cli import app
from cli import options as opt
from harness.errors import BenchError
from harness.run_options import RunOptions
from sweeps.slurm import SlurmOptions


def _emit(name: str, dataset: str, runs_dir: Path | None, fmt: str | None, out: Path | None,
          plot_path: Path | None, wandb_log: bool, **select) -> None:
    """Compile table `name` (select: seeds, teacher_seeds, sets, epochs, threshold,
    mixed_provenance) and write it to the terminal, `out`, a plot and W&B."""
    from reports.compile import compile_table
    from reports.render import plot, print_table, render

    fmt = _format(fmt, out)
    df = compile_table(name, dataset=dataset, runs_dir=runs_dir, **select)
    if fmt is not None:
        _write(render(df, fmt), out)
    else:
        print_table(df)
    if plot_path is not None:
        typer.echo(f"wrote {plot(df, plot_path)}", err=True)
    if wandb_log:
        _log_wandb(df, name, runs_dir, plot_path)


def _emit_per_class(run_ids: list[str], variant: str | None, dataset: str,
                    runs_dir: Path | None, sets: list[str], epochs: int | None, fmt: str | None,
                    out: Path | None, plot_path: Path | None) -> None:
    from cli.eval_cmd import check_plot_path
    from cli.summary import write_pr_plot
    from harness.store import ResultsStore
    from reports.per_class import as_record, heading, per_class_frame, print_table, render, select_runs

    fmt = _format(fmt, out)
    if plot_path is not None:
        check_plot_path(plot_path)
    runs = select_runs(ResultsStore(runs_dir).records(), run_ids, variant, dataset, sets, epochs)
    df = per_class_frame(runs)
    if fmt is not None:
        _write(render(df, fmt), out)
    else:
        print_table(df)
    if plot_path is not None:  # the same precision/recall bars as `bench eval --plot`
        write_pr_plot(as_record(df), plot_path, heading(df, "Per-class precision and recall"))
        typer.echo(f"wrote {plot_path}", err=True)


def _emit_comparison(table: str, rows: tuple[str, str], dataset: str, runs_dir: Path | None,
                     fmt: str | None, out: Path | None, **select) -> None:
    from reports.compare import compare_from_store, render_lines

    fmt = _format(fmt, out)
    if fmt not in (None, "markdown"):
        raise BenchError(f"--compare prints text or markdown (got --format {fmt})")
    lines = render_lines(compare_from_store(table, *rows, runs_dir, dataset=dataset, **select))
    _write(("\n\n" if fmt == "markdown" else "\n").join(lines) + "\n", out)


def _format(fmt: str | None, out: Path | None) -> str | None:
    if fmt is None and out is not None:
        fmt = {".md": "markdown", ".csv": "csv", ".tex": "latex"}.get(out.suffix.lower())
        if fmt is None:
            raise BenchError(f"--out {out}: give --format markdown|csv|latex")
    return fmt


def _write(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    typer.echo(f"wrote {out}", err=True)


def _log_wandb(df, name: str, runs_dir: Path | None, plot_path: Path | None) -> None:
    import os

    import wandb

    from harness.store import default_runs_dir
    from harness.tracking import resolve_mode
    from reports.render import display_frame

    mode = resolve_mode(None)
    if mode == "disabled":
        return
    os.environ.setdefault("WANDB_SILENT", "true")
    folder = Path(runs_dir or default_runs_dir())
    folder.mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=os.environ.get("WANDB_PROJECT", "wsss-bench"), mode=mode,
                     job_type="report", name=f"report-{name}-{df.attrs['dataset']}",
                     dir=str(folder), reinit="create_new")
    row = {f"report/{name}": wandb.Table(dataframe=display_frame(df).astype(str))}
    if plot_path is not None:
        row[f"report/{name}_plot"] = wandb.Image(str(plot_path))
    run.log(row)
    run.finish()


@app.command("report")
def report_command(
    table: str = typer.Option(None, "--table", "-t", help="table name (see --list), or "
                              "per-class with --run/--variant"),
    list_: bool = typer.Option(False, "--list", help="list the tables and their sources"),
    dataset: str = typer.Option("synth", help="synth, voc or coco"),
    fmt: str = typer.Option(None, "--format", help="markdown, csv or latex (default: terminal)"),
    out: Path = typer.Option(None, help="write the formatted table to this file"),
    plot_path: Path = typer.Option(None, "--plot", help="write a PNG plot (λ/ω curve or "
                                   "per-class IoU bars)"),
    wandb_log: bool = typer.Option(False, "--wandb", help="also log the table to W&B "
                                   "(mode from WANDB_MODE, offline by default)"),
    runs_dir: opt.RunsDir = None,
    seeds: str = typer.Option("1", help="seeds a complete cell has: N (0 … N-1), or only "
                              "these: 10-14, 3,7, 2-2 (one seed)"),
    teacher_seeds: str = typer.Option("1", help="teacher seeds a complete cell has, as --seeds; "
                                      "a second seed axis, cells are paired by both"),
    threshold: str = typer.Option("best", help="which seed mIoU: best (best t on the eval GT), "
                                  "fixed (t = 0.15) or heldout (t chosen on a held-out split)"),
    mixed_provenance: bool = typer.Option(False, "--mixed-provenance", help="show rows whose "
                                          "provenance differs (flagged) instead of refusing"),
    set_: list[str] = typer.Option([], "--set", help="only runs made with this extra setting "
                                   "(key=value, repeatable), as given to bench run/reproduce"),
    epochs: int = typer.Option(None, help="only runs made with this --epochs"),
    run: list[str] = typer.Option([], "--run", help="per-class: a run id (or unique prefix; "
                                  "repeatable)"),
    variant: str = typer.Option(None, help="per-class: the mean over this variant's runs"),
    compare: tuple[str, str] = typer.Option(None, "--compare", metavar="A B",
                                            help="paired Δ B − A between two rows of --table "
                                            "(a label, a variant or a unique part of a label)"),
) -> None:
    """A paper table from the results store: measured mean ± std, n, paired Δ to the
    table's reference row with a 95 % CI, published, Δ; or a run's per-class table."""
    from reports import get_table, table_names
    from reports.compile import parse_seeds
    from reports.per_class import NAME, TITLE

    if table is None and (run or variant) and not list_:
        table = NAME  # `--run ID` alone asks for that run's per-class table
    if list_ or table is None:
        for name in table_names():
            typer.echo(f"{name:12s} {get_table(name).title}")
        typer.echo(f"{NAME:12s} {TITLE} of --run RUN_ID or --variant NAME")
        if table is None and not list_:
            raise typer.Exit(1)
        return
    if table == NAME and compare:
        raise BenchError("--compare takes two rows of a paper table, not of per-class")
    if table == NAME:
        _emit_per_class(run, variant, dataset, runs_dir, set_, epochs, fmt, out, plot_path)
        return
    if run or variant:
        raise BenchError("--run/--variant go with --table per-class")
    if compare:
        _emit_comparison(table, compare, dataset, runs_dir, fmt, out, seeds=parse_seeds(seeds),
                         teacher_seeds=parse_seeds(teacher_seeds, "--teacher-seeds"),
                         sets=set_, epochs=epochs, threshold=threshold,
                         mixed_provenance=mixed_provenance)
        return
    _emit(table, dataset, runs_dir, fmt, out, plot_path, wandb_log, seeds=parse_seeds(seeds),
          teacher_seeds=parse_seeds(teacher_seeds, "--teacher-seeds"), sets=set_, epochs=epochs,
          threshold=threshold, mixed_provenance=mixed_provenance)


@app.command("reproduce")
@opt.run_option_params()
@opt.slurm_option_params()
def reproduce_command(
    table: str = typer.Argument(..., help="table name (bench report --list)"),
    dataset: str = typer.Option("synth", help="synth, voc or coco"),
    seeds: str = typer.Option("1", help="seeds per cell: N (0 … N-1), or these: 10-14, 3,7, "
                              "2-2 (one seed)"),
    teacher_seeds: str = typer.Option("1", help="teacher seeds per cell, as --seeds: every "
                                      "cell runs seeds × teacher seeds"),
    threshold: str = typer.Option("best", help="report best, fixed or heldout seed mIoU "
                                  "(heldout: runs pick t on the held-out split)"),
    mixed_provenance: bool = typer.Option(False, "--mixed-provenance",
                                          help="report: flag rows of differing provenance"),
    workers: int = typer.Option(1, help="runs in parallel, one process each (--launcher slurm: "
                                "see --slurm-array-parallelism)"),
    launcher: opt.Launcher = "local",
    status: bool = typer.Option(False, "--status", help="print the missing runs and the Slurm "
                                "jobs submitted for them, and exit"),
    devices: opt.Devices = None,
    set_: opt.Sets = None,
    epochs: opt.Epochs = None,
    dry_run: bool = typer.Option(False, "--dry-run", help="list the missing runs, run nothing"),
    device: opt.Device = opt.DEFAULT_DEVICE,
    fmt: str = typer.Option(None, "--format", help="report format (default: terminal)"),
    out: Path = typer.Option(None, help="write the report to this file"),
    plot_path: Path = typer.Option(None, "--plot", help="write a PNG plot"),
    options: RunOptions = RunOptions(),
    slurm: SlurmOptions = SlurmOptions(),
) -> None:
    """Run the TABLE cells missing from the results store (resumable), then report."""
    from reports import get_table
    from reports.compile import check_threshold, parse_seeds
    from reports.reproduce import reproduce

    get_table(table)
    check_threshold(threshold)  # a bad --threshold or seed list fails before any run
    seeds, teacher_seeds = parse_seeds(seeds), parse_seeds(teacher_seeds, "--teacher-seeds")
    if status:
        from reports.reproduce import plan, slurm_folder
        from sweeps.slurm import job_lines

        plan(table, dataset, seeds, opt.sets(set_), epochs, options, lambda m: typer.echo(m),
             True, teacher_seeds, threshold)
        for line in job_lines(slurm_folder(options, table, dataset)):
            typer.echo(line)
        return
    result = reproduce(table, dataset, seeds, opt.sets(set_), epochs, options, workers, device,
                       log=lambda m: typer.echo(m, err=True), dry_run=dry_run, devices=devices,
                       teacher_seeds=teacher_seeds, threshold=threshold,
                       slurm=slurm if launcher == "slurm" else None)
    typer.echo(f"ran {len(result['ran'])}, failed {len(result['failed'])}, "
               f"skipped {len(result['skipped'])}", err=True)
    _emit(table, dataset, options.runs_dir, fmt, out, plot_path, False, seeds=seeds,
          teacher_seeds=teacher_seeds, sets=opt.sets(set_), epochs=epochs, threshold=threshold,
          mixed_provenance=mixed_provenance)
