"""`bench report` (a paper table: measured beside published) and `bench reproduce` (run
the table's missing cells, then report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import app
from cli import options as opt
from harness.errors import BenchError
from harness.run_options import RunOptions
from reports.selection import CellSelection
from sweeps.slurm import SlurmOptions


def _emit(name: str, select: CellSelection, runs_dir: Path | None, fmt: str | None,
          out: Path | None, plot_path: Path | None, wandb_log: bool) -> None:
    """Compile table `name` over `select`'s cells and write it to the terminal, `out`, a plot
    and W&B."""
    from reports.compile import compile_table
    from reports.render import plot, print_table, render

    fmt = _format(fmt, out)
    df = compile_table(name, runs_dir=runs_dir, select=select)
    if fmt is not None:
        _write(render(df, fmt), out)
    else:
        print_table(df)
    if plot_path is not None:
        typer.echo(f"wrote {plot(df, plot_path)}", err=True)
    if wandb_log:
        _log_wandb(df, name, runs_dir, plot_path)


def _emit_per_class(run_ids: list[str], variant: str | None, select: CellSelection,
                    runs_dir: Path | None, fmt: str | None, out: Path | None,
                    plot_path: Path | None) -> None:
    from cli.eval_cmd import check_plot_path
    from cli.summary import write_pr_plot
    from harness.store import ResultsStore
    from reports.per_class import as_record, heading, per_class_frame, print_table, render, select_runs

    fmt = _format(fmt, out)
    if plot_path is not None:
        check_plot_path(plot_path)
    runs = select_runs(ResultsStore(runs_dir).records(), run_ids, variant, select.dataset,
                       list(select.sets), select.epochs)
    df = per_class_frame(runs)
    if fmt is not None:
        _write(render(df, fmt), out)
    else:
        print_table(df)
    if plot_path is not None:  # the same precision/recall bars as `bench eval --plot`
        write_pr_plot(as_record(df), plot_path, heading(df, "Per-class precision and recall"))
        typer.echo(f"wrote {plot_path}", err=True)


def _emit_worst(run_ids: list[str], n: int, runs_dir: Path | None) -> None:
    from harness.store import ResultsStore
    from reports.per_image import run_folder, worst_lines

    if len(run_ids) != 1 or n < 1:
        raise BenchError("--worst N (N ≥ 1) takes one --run RUN_ID")
    store = ResultsStore(runs_dir)
    rec, folder = run_folder(store.records(), run_ids[0], store.root)
    for line in worst_lines(rec, folder, n):
        typer.echo(line)


def _emit_figure(kind: str, run_ids: list[str], names: list[str], n: int, out: Path | None,
                 runs_dir: Path | None) -> None:
    from harness.store import ResultsStore
    from reports.figure import FigureRun, cams_figure
    from reports.per_image import run_folder

    if kind != "cams":
        raise BenchError(f"--figure {kind}: the one figure is cams")
    if out is None or not run_ids or n < 1:
        raise BenchError("--figure cams needs --run RUN_ID (repeatable), --out FILE.png and "
                         "--images N ≥ 1")
    store = ResultsStore(runs_dir)
    records = store.records()
    runs = [FigureRun(*run_folder(records, run_id, store.root)) for run_id in run_ids]
    for path in cams_figure(runs, names, n, out):
        typer.echo(f"wrote {path}", err=True)


def _emit_comparison(table: str, rows: tuple[str, str], select: CellSelection,
                     runs_dir: Path | None, fmt: str | None, out: Path | None) -> None:
    from reports.compare import compare_from_store, render_lines

    fmt = _format(fmt, out)
    if fmt not in (None, "markdown"):
        raise BenchError(f"--compare prints text or markdown (got --format {fmt})")
    lines = render_lines(compare_from_store(table, *rows, runs_dir, select))
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
    from harness.oserrors import write_text_atomic

    write_text_atomic(out, text, "--out")  # a refused write: the file and why, in one line
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


# `bench report list | table NAME | compare NAME A B | per-class`, one small command each;
# `bench report --table NAME …` (the options on `report` itself) is the older spelling, kept
report_app = typer.Typer(help="Paper tables from the results store, measured beside "
                         "published; or a run's per-class table.")
app.add_typer(report_app, name="report")

Format = Annotated[str | None, typer.Option("--format", help="markdown, csv or latex "
                                             "(default: terminal)")]
Out = Annotated[Path | None, typer.Option("--out", help="write the formatted table to this file")]
Plot = Annotated[Path | None, typer.Option("--plot", help="write a PNG plot (λ/ω curve or "
                                           "per-class precision/recall bars)")]


@report_app.callback(invoke_without_command=True)
@opt.selection_params()
def report_command(
    ctx: typer.Context,
    table: str = typer.Option(None, "--table", "-t", help="table name (see --list), or "
                              "per-class with --run/--variant"),
    list_: bool = typer.Option(False, "--list", help="list the tables and their sources"),
    fmt: str = typer.Option(None, "--format", help="markdown, csv or latex (default: terminal)"),
    out: Path = typer.Option(None, help="write the formatted table to this file"),
    plot_path: Path = typer.Option(None, "--plot", help="write a PNG plot (λ/ω curve or "
                                   "per-class IoU bars)"),
    wandb_log: bool = typer.Option(False, "--wandb", help="also log the table to W&B "
                                   "(mode from WANDB_MODE, offline by default)"),
    runs_dir: opt.RunsDir = None,
    run: list[str] = typer.Option([], "--run", help="per-class: a run id (or unique prefix; "
                                  "repeatable)"),
    variant: str = typer.Option(None, help="per-class: the mean over this variant's runs"),
    compare: tuple[str, str] = typer.Option(None, "--compare", metavar="A B",
                                            help="paired Δ B − A between two rows of --table "
                                            "(a label, a variant or a unique part of a label)"),
    worst: int = typer.Option(None, "--worst", metavar="N", help="with --run: the run's N worst "
                              "images (its images.jsonl)"),
    figure: str = typer.Option(None, "--figure", help="cams: the qualitative figure of the "
                               "--run runs (image, GT, each run's CAM overlay and mask) to --out, "
                               "as PNG and PDF"),
    images: int = typer.Option(6, "--images", help="--figure: rows, the images whose mIoU "
                               "differs most between the runs (one run: its worst)"),
    image: list[str] = typer.Option([], "--image", help="--figure: this image as a row "
                                    "(repeatable; instead of choosing by disagreement)"),
    select: CellSelection = None,
) -> None:
    """A paper table from the results store: measured mean ± std, n, paired Δ to the
    table's reference row with a 95 % CI, published, Δ; or a run's per-class table."""
    from reports.per_class import NAME

    if ctx.invoked_subcommand is not None:
        return
    if worst is not None:
        _emit_worst(run, worst, runs_dir)
        return
    if figure is not None:
        _emit_figure(figure, run, image, images, out, runs_dir)
        return
    if table is None and (run or variant) and not list_:
        table = NAME  # `--run ID` alone asks for that run's per-class table
    if list_ or table is None:
        _list_tables()
        if table is None and not list_:
            raise BenchError("--compare needs --table: the table whose rows it compares"
                             if compare else "give --table NAME (one of the tables above)")
    elif table == NAME:
        if compare:
            raise BenchError("--compare takes two rows of a paper table, not of per-class")
        _emit_per_class(run, variant, select, runs_dir, fmt, out, plot_path)
    elif run or variant:
        raise BenchError("--run/--variant go with --table per-class")
    elif compare:
        _emit_comparison(table, compare, select, runs_dir, fmt, out)
    elif table == FINAL:
        _emit_final(select, runs_dir, fmt, out)
    else:
        _emit(table, select, runs_dir, fmt, out, plot_path, wandb_log)


@report_app.command("list")
def report_list() -> None:
    """The tables and their sources."""
    _list_tables()


@report_app.command("table")
@opt.selection_params()
def report_table(name: str = typer.Argument(..., help="table name (bench report list)"),
                 fmt: Format = None, out: Out = None, plot_path: Plot = None,
                 wandb_log: bool = typer.Option(False, "--wandb", help="also log the table to "
                                                "W&B (mode from WANDB_MODE, offline by default)"),
                 runs_dir: opt.RunsDir = None, select: CellSelection = None) -> None:
    """A paper table: measured mean ± std, n, paired Δ to the reference row with a 95 % CI,
    published, Δ."""
    _emit(name, select, runs_dir, fmt, out, plot_path, wandb_log)


@report_app.command("compare")
@opt.selection_params()
def report_compare(name: str = typer.Argument(..., help="table name (bench report list)"),
                   first: str = typer.Argument(..., help="row A: a label, a variant or a unique "
                                               "part of a label"),
                   second: str = typer.Argument(..., help="row B, as A"),
                   fmt: Format = None, out: Out = None, runs_dir: opt.RunsDir = None,
                   select: CellSelection = None) -> None:
    """The paired Δ B − A between two rows of a table, with its 95 % CI."""
    _emit_comparison(name, (first, second), select, runs_dir, fmt, out)


@report_app.command("per-class")
@opt.selection_params()
def report_per_class(run: list[str] = typer.Option([], "--run", help="a run id (or unique "
                                                   "prefix; repeatable)"),
                     variant: str = typer.Option(None, help="the mean over this variant's runs"),
                     fmt: Format = None, out: Out = None, plot_path: Plot = None,
                     runs_dir: opt.RunsDir = None, select: CellSelection = None) -> None:
    """Per-class IoU, precision, recall, FP and FN of runs (--run) or of a variant's cell."""
    _emit_per_class(run, variant, select, runs_dir, fmt, out, plot_path)


@report_app.command("page")
def report_page(protocol: int = typer.Option(..., "--protocol", help="the protocol version "
                                             "(docs/protocol-v2.md: 2)"),
                out: Out = None, runs_dir: opt.RunsDir = None) -> None:
    """A protocol's current results page: every paper table over its cells, as Markdown
    (docs/results/index.md)."""
    from harness.store import ResultsStore
    from reports.page import page

    _write(page(protocol, ResultsStore(runs_dir).records()), out)


def _list_tables() -> None:
    from reports import get_table, table_names
    from reports.per_class import NAME, TITLE

    for name in table_names():
        typer.echo(f"{name:12s} {get_table(name).title}")
    typer.echo(f"{NAME:12s} {TITLE} of --run RUN_ID or --variant NAME")
    from reports.final import NAME as FINAL_NAME
    from reports.final import TITLE as FINAL_TITLE

    typer.echo(f"{FINAL_NAME:12s} {FINAL_TITLE}")


FINAL = "final"  # reports/final.py: the segmentation stage's table, its own compiler
# its rows are the papers' VOC/COCO models (deeplabv2, mask2former, …), which synth does not
# train, so with no --dataset it reads VOC runs and suggests VOC commands
FINAL_DATASET = "voc"


def _emit_final(select: CellSelection, runs_dir: Path | None, fmt: str | None,
                out: Path | None) -> None:
    from reports.final import compile_final, render, store_records

    df = compile_final(store_records(runs_dir), select.dataset_for(FINAL_DATASET))
    _write(render(df, _format(fmt, out) or "markdown"), out)


@app.command("reproduce")
@opt.run_option_params()
@opt.slurm_option_params()
@opt.selection_params()
def reproduce_command(
    table: str = typer.Argument(..., help="table name (bench report --list)"),
    workers: int = typer.Option(1, help="runs in parallel, one process each (--launcher slurm: "
                                "see --slurm-array-parallelism)"),
    launcher: opt.Launcher = "local",
    status: bool = typer.Option(False, "--status", help="print the missing runs and the Slurm "
                                "jobs submitted for them, and exit"),
    devices: opt.Devices = None,
    dry_run: bool = typer.Option(False, "--dry-run", help="list the missing runs, run nothing"),
    device: opt.Device = opt.DEFAULT_DEVICE,
    fmt: str = typer.Option(None, "--format", help="report format (default: terminal)"),
    out: Path = typer.Option(None, help="write the report to this file"),
    plot_path: Path = typer.Option(None, "--plot", help="write a PNG plot"),
    options: RunOptions = RunOptions(),
    slurm: SlurmOptions = SlurmOptions(),
    select: CellSelection = None,
) -> None:
    """Run the TABLE cells missing from the results store (resumable), then report."""
    from reports import get_table
    from reports.reproduce import reproduce

    if table == FINAL:  # its cells are runs with --segment and bench segment --masks gt
        from reports.final import reproduce_final, seed_list

        result = reproduce_final(select.dataset_for(FINAL_DATASET), seed_list(select.seeds),
                                 list(select.sets), select.epochs, options, device,
                                 lambda m: typer.echo(m, err=True), dry_run)
        typer.echo(f"ran {len(result['ran'])}, failed {len(result['failed'])}", err=True)
        _emit_final(select, options.runs_dir, fmt, out)
        return

    get_table(table)  # a bad table, --threshold or seed list fails before any run
    if status:
        _reproduce_status(table, select, options)
        return
    result = reproduce(table, select, options, workers, device,
                       log=lambda m: typer.echo(m, err=True), dry_run=dry_run, devices=devices,
                       slurm=slurm if launcher == "slurm" else None)
    typer.echo(f"ran {len(result['ran'])}, failed {len(result['failed'])}, "
               f"skipped {len(result['skipped'])}", err=True)
    _emit(table, select, options.runs_dir, fmt, out, plot_path, False)


def _reproduce_status(table: str, select: CellSelection, options: RunOptions) -> None:
    """`bench reproduce --status`: the missing runs, and the Slurm jobs submitted for them."""
    from reports.reproduce import plan, slurm_folder
    from sweeps.slurm import job_lines

    plan(table, select, options, lambda m: typer.echo(m), True)
    for line in job_lines(slurm_folder(options, table, select.dataset)):
        typer.echo(line)
