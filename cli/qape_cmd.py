"""`bench qape`: build (or resume) the QA-CLIMS QAPE corpus of a dataset's train split."""

from __future__ import annotations

from pathlib import Path

import typer

from cli import app
from cli import options as opt
from harness.run_options import RunOptions


@app.command("qape")
@opt.run_option_params("data_root", "vqa_path", "allow_random_weights", "cache_dir")
def qape_command(
    dataset: str = typer.Option("synth", help=opt.DATASET_HELP),
    vqa: str = typer.Option("auto", help="answerer: blip, synth (synth only) or auto"),
    import_: Path | None = typer.Option(
        None, "--import", help="QA-CLIMS's released VQA answers instead of a VQA model: "
        "voc_vqa_fg_blip.npy (its _bg_ sibling found beside it) or the folder holding both; "
        "`bench run qa-clims --vqa-path` with the same path reuses the corpus"),
    set_: opt.Sets = None,
    device: opt.Device = opt.DEFAULT_DEVICE,
    options: RunOptions = RunOptions(),
) -> None:
    """Ask the VQA model the 16 QAPE templates for every (train image, present class).

    --set takes a qa-clims setting, e.g. vqa_error_rate=0.2. The corpus is a cached stage
    that `bench run qa-clims` with the same data and answerer reuses; an interrupted build
    resumes where it stopped. --import builds it from QA-CLIMS's released answer files
    instead (keyed by their sha256; docs/released-files.md).
    """
    import dataclasses

    import torch

    from harness.data import default_cache_dir
    from harness.errors import BenchError
    from harness.method import RunContext
    from harness.progress import log
    from harness.runner import resolve_config
    from methods.qape import load_corpus, qape_corpus
    from methods.vqa_released import is_released

    if import_ is not None:
        if options.vqa_path is not None:
            raise BenchError("--import and --vqa-path both name the answers: give one")
        if not import_.exists():
            raise BenchError(f"--import {import_} does not exist")
        if not is_released(import_):
            raise BenchError(f"--import {import_} is not QA-CLIMS's released VQA answers (a .npy "
                             "file, or a folder holding {voc,coco}_vqa_{fg,bg}_blip.npy); a BLIP "
                             "folder goes to --vqa-path")
        options, vqa = dataclasses.replace(options, vqa_path=import_), "blip"
    cfg = resolve_config("qa-clims", dataset, 0, [*opt.sets(set_), f"vqa={vqa}"], None, device,
                         **options.inputs())
    ctx = RunContext(cfg, Path(options.cache_dir or default_cache_dir()), torch.device(cfg.device), log=log)
    folder, key = qape_corpus(ctx)
    corpus = load_corpus(folder)
    vqa = ctx.teacher_info.get("vqa", {})
    answerer = "random-init BLIP" if vqa.get("random") else vqa.get("path") or vqa.get("kind")
    typer.echo(f"qape corpus [{key}]: {len(corpus)} (image, class) items in {folder} "
               f"(answerer: {answerer})")
    if corpus:
        e = corpus[0]
        typer.echo(f"  e.g. {e['name']} / {e['class_name']}: FG {e['fg'][:3]} BG {e['bg'][:4]}")
