"""`bench data show synth --out grid.png`: see what a benchmark is."""

from __future__ import annotations

from pathlib import Path

import typer

from cli import app

data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("show")
def show(dataset: str = typer.Argument("synth"),
         out: Path = typer.Option(Path("grid.png"), help="PNG to write"),
         n: int = typer.Option(12, help="images to show", min=1, max=64),
         split: str = typer.Option("eval", help="eval (with masks) or train"),
         data_root: Path = typer.Option(None),
         cache_dir: Path = typer.Option(None, envvar="BENCH_CACHE_DIR")) -> None:
    """A grid of images with their masks and scene labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from harness.data import default_cache_dir, load_dataset

    ds = load_dataset(dataset, split, cache_dir=cache_dir or default_cache_dir(), root=data_root)
    n = min(n, len(ds))
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 4.4), squeeze=False)
    cmap = plt.get_cmap("tab10", len(ds.class_names) + 1)
    for i in range(n):
        axes[0, i].imshow(ds.image(i))
        scene = getattr(ds, "scenes", None)
        title = (", ".join(f"{o['subtype']}\non {o['context']}" for o in scene[i].objects) if scene
                 else ", ".join(ds.class_names[k] for k in np.nonzero(ds.labels(i))[0]))
        axes[0, i].set_title(title, fontsize=7)
        if ds.has_masks:
            m = ds.mask(i).astype(float)
            m[m == 255] = np.nan
            axes[1, i].imshow(m, cmap=cmap, vmin=0, vmax=len(ds.class_names), interpolation="nearest")
        for ax in axes[:, i]:
            ax.axis("off")
    fig.suptitle(f"{dataset} / {split}: images (top) and masks (bottom; 0 = background)", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    typer.echo(f"wrote {out}")


@data_app.command("teacher")
def teacher(cache_dir: Path = typer.Option(None, envvar="BENCH_CACHE_DIR"),
            teacher_seed: int = typer.Option(0, help="the teacher's seed (runs: teacher_seed)")) -> None:
    """Train (first use) or load the embedded synth teacher; print its gates (exit 1 if one fails)."""
    from harness.data import default_cache_dir
    from harness.progress import log, progress_bar
    from harness.registry import context_gates
    from harness.synth.data import SynthSpec
    from harness.synth.teacher import TinyClipSpec, check_gate, gate_rows, load_or_train

    spec, pairs = TinyClipSpec(seed=teacher_seed), context_gates()
    with progress_bar("synth teacher", spec.steps) as advance:
        _, info = load_or_train(SynthSpec(), cache_dir or default_cache_dir(), spec, log=log, pairs=pairs,
                                progress=lambda s, n, loss: advance(loss=loss))
    typer.echo(f"synth teacher (seed {teacher_seed}) at {info['path']}")
    for gate, measured, required, passed in gate_rows(info, pairs):
        verdict = "pass" if passed else ("warn" if "not enforced" in required else "FAIL")
        typer.echo(f"  {verdict}  {gate:<48} {measured:>8}  ({required})")
    typer.echo(f"  info  zero-shot sub-types {info['zero_shot_subtypes']:.1f}% (not gated); "
               f"CBS gate on this teacher's scale {info['cbs_gate']:.3f} (real CLIP: 0.26)")
    check_gate(info, pairs)
