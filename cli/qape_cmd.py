"""`bench qape`: build (or resume) the QA-CLIMS QAPE corpus of a dataset's train split."""

from __future__ import annotations

from pathlib import Path

import typer

from cli import app


@app.command("qape")
def qape_command(
    dataset: str = typer.Option("synth", help="synth (embedded), voc or coco"),
    vqa: str = typer.Option("auto", help="answerer: blip, synth (synth only) or auto"),
    vqa_path: Path = typer.Option(None, help="local BLIP VQA folder (save_pretrained of "
                                             "BlipForQuestionAnswering + BlipProcessor)"),
    set_: list[str] = typer.Option([], "--set", help="a qa-clims setting, e.g. vqa_error_rate=0.2"),
    device: str = typer.Option("auto", help="cpu, cuda or cuda:N"),
    cache_dir: Path = typer.Option(None, envvar="BENCH_CACHE_DIR",
                                   help="stage cache (default ~/.cache/wsss-bench)"),
    data_root: Path = typer.Option(None, help="dataset root (voc, coco)"),
    allow_random_weights: bool = typer.Option(False, help="smoke tests only: without --vqa-path, "
                                              "a random-init BLIP VQA of the real architecture"),
) -> None:
    """Ask the VQA model the 16 QAPE templates for every (train image, present class).

    The corpus is a cached stage that `bench run qa-clims` with the same data and answerer
    reuses; an interrupted build resumes where it stopped.
    """
    import torch

    from harness.data import default_cache_dir
    from harness.method import RunContext
    from harness.progress import log
    from harness.runner import resolve_config
    from methods.qape import load_corpus, qape_corpus

    sets = [*set_, f"vqa={vqa}"]
    cfg = resolve_config("qa-clims", dataset, 0, sets, None, device, data_root=data_root,
                         vqa_path=vqa_path, allow_random_weights=allow_random_weights)
    ctx = RunContext(cfg, Path(cache_dir or default_cache_dir()), torch.device(cfg.device), log=log)
    folder, key = qape_corpus(ctx)
    corpus = load_corpus(folder)
    vqa = ctx.teacher_info.get("vqa", {})
    answerer = "random-init BLIP" if vqa.get("random") else vqa.get("path") or vqa.get("kind")
    typer.echo(f"qape corpus [{key}]: {len(corpus)} (image, class) items in {folder} "
               f"(answerer: {answerer})")
    if corpus:
        e = corpus[0]
        typer.echo(f"  e.g. {e['name']} / {e['class_name']}: FG {e['fg'][:3]} BG {e['bg'][:4]}")
