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
    dataset: str = typer.Option("synth", help="synth (embedded), voc or coco"),
    vqa: str = typer.Option("auto", help="answerer: blip, synth (synth only) or auto"),
    set_: opt.Sets = None,
    device: opt.Device = opt.DEFAULT_DEVICE,
    options: RunOptions = RunOptions(),
) -> None:
    """Ask the VQA model the 16 QAPE templates for every (train image, present class).

    --set takes a qa-clims setting, e.g. vqa_error_rate=0.2. The corpus is a cached stage
    that `bench run qa-clims` with the same data and answerer reuses; an interrupted build
    resumes where it stopped.
    """
    import torch

    from harness.data import default_cache_dir
    from harness.method import RunContext
    from harness.progress import log
    from harness.runner import resolve_config
    from methods.qape import load_corpus, qape_corpus

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
