"""`bench data show synth --out grid.png`: see what a benchmark is."""

from __future__ import annotations

from pathlib import Path

import typer

from cli import app
from harness.errors import BenchError

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
    from harness.oserrors import save_figure

    typer.echo(f"wrote {save_figure(fig, out, 'picture', dpi=110)}")


@data_app.command("teacher")
def teacher(cache_dir: Path = typer.Option(None, envvar="BENCH_CACHE_DIR"),
            teacher_seed: int = typer.Option(0, help="the teacher's seed (runs: teacher_seed)"),
            rebuild: bool = typer.Option(False, "--rebuild", help="train the teacher here even "
                                         "where one ships (the default seed's), and print its "
                                         "gates beside the shipped one's"),
            ship: bool = typer.Option(False, "--ship", help="with --rebuild (maintainers): write "
                                      "the teacher trained here as the package's shipped one")
            ) -> None:
    """Load the embedded synth teacher (the shipped one, or trained here on first use); print
    its gates (exit 1 if one fails)."""
    from harness.data import default_cache_dir
    from harness.progress import log, progress_bar
    from harness.registry import context_gates
    from harness.synth.data import SynthSpec
    from harness.synth.teacher import (
        TinyClipSpec,
        check_gate,
        gate_rows,
        load_or_train,
        load_shipped,
        teacher_path,
    )

    spec, pairs = TinyClipSpec(seed=teacher_seed), context_gates()
    cache = cache_dir or default_cache_dir()
    shipped = load_shipped(teacher_path(SynthSpec(), spec, cache), SynthSpec(), spec)
    if rebuild:
        from harness.artefacts import file_sha256

        path = teacher_path(SynthSpec(), spec, cache)
        for stale in path.parent.glob(f"{path.stem}.*"):  # train it again, here
            if stale.suffix != ".lock":
                stale.unlink()
    with progress_bar("synth teacher", spec.steps) as advance:
        _, info = load_or_train(SynthSpec(), cache, spec, log=log, pairs=pairs,
                                shipped=not rebuild,
                                progress=lambda s, n, loss: advance(loss=loss))
    where = "shipped with wsss-bench" if info.get("shipped") else "trained here"
    typer.echo(f"synth teacher (seed {teacher_seed}, {where}) at {info['path']}")
    beside = gate_rows(shipped[1], pairs) if rebuild and shipped else None
    if beside:
        typer.echo(f"  {'':6}{'gate':<48} {'here':>8}  {'shipped':>8}  "
                   f"(shipped sha256 {file_sha256(shipped[1]['path'])[:12]}…)")
    for i, (gate, measured, required, passed) in enumerate(gate_rows(info, pairs)):
        verdict = "pass" if passed else ("warn" if "not enforced" in required else "FAIL")
        other = f"  {beside[i][1]:>8}" if beside else ""
        typer.echo(f"  {verdict}  {gate:<48} {measured:>8}{other}  ({required})")
    typer.echo(f"  info  zero-shot sub-types {info['zero_shot_subtypes']:.1f}% (not gated); "
               f"CBS gate on this teacher's scale {info['cbs_gate']:.3f} (real CLIP: 0.26)")
    check_gate(info, pairs)
    if ship:
        from harness.synth.teacher import write_shipped

        if not rebuild or teacher_seed != 0:
            raise BenchError("--ship takes --rebuild and the default teacher seed 0")
        write_shipped(cache, pairs, log=log)
