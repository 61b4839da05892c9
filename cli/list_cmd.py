"""`bench list`: methods and variants, datasets, sweeps and report tables."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from cli import app


@app.command("list")
def list_command(settings: bool = typer.Option(False, "--settings",
                                               help="also list every --set key per method")) -> None:
    """Everything `bench` can run: variants, datasets, sweeps, tables."""
    from harness.data import dataset_names
    from harness.registry import get_method, list_variants

    console = Console()
    table = Table(title="methods and variants")
    table.add_column("variant")
    table.add_column("reproduces")
    table.add_column("description")
    for v in list_variants():
        table.add_row(v.name, v.table, v.description)
    console.print(table)
    console.print("datasets: " + ", ".join(dataset_names()))
    for title, names in _extras():
        console.print(f"{title}: " + (", ".join(names) if names else "(none yet)"))
    console.print(_segment_line(), soft_wrap=True)
    if settings:
        for family in sorted({v.family for v in list_variants()}):
            console.print(_epochs_line(get_method(family)), soft_wrap=True)
            cfg = get_method(family).config_cls
            t = Table(title=f"{family} settings (--set key=value)")
            t.add_column("key")
            t.add_column("default")
            t.add_column("meaning")
            defaults = cfg()
            for key, text in cfg.field_help().items():
                t.add_row(key, str(getattr(defaults, key)), text)
            console.print(t)
        console.print(_mask_settings_table())
        console.print(_seg_settings_table())


def _segment_line() -> str:
    """The segmentation models and their recipes, read without importing any model (a model's
    module may import transformers: harness.segment.models.MODEL_MODULES)."""
    from harness.segment.models import MODEL_MODULES
    from harness.segment.settings import RECIPES

    return (f"segmentation models (--segment): {', '.join(sorted(MODEL_MODULES))}; recipes "
            f"(--set seg_recipe=): {', '.join(RECIPES)}")


def _seg_settings_table() -> Table:
    """The segmentation stage's settings (--set key=value beside --segment MODEL): the field
    default and the value each recipe sets (a model's first recipe is its default)."""
    from harness.segment.settings import RECIPES, seg_settings_help

    t = Table(title="segmentation settings (--segment MODEL, --set key=value; a recipe sets "
                    "several, a --set wins over it)")
    for col in ("key", "default", "recipes", "meaning"):
        t.add_column(col)
    for key, default, text in seg_settings_help():
        by_recipe = ", ".join(f"{r}: {v[key]}" for r, v in RECIPES.items() if key in v)
        t.add_row(key, default, by_recipe, text)
    return t


def _mask_settings_table() -> Table:
    """The pseudo-mask settings (--mask-set key=value): the engine's defaults (IRN's and
    SemPLeS's references); each family's paper.py sets its pipeline per dataset (docs/masks.md)."""
    from harness.masks.settings import MaskSettings

    t = Table(title="pseudo-mask settings (--masks irn|crf|none, --mask-set key=value)")
    for col in ("key", "default", "meaning"):
        t.add_column(col)
    defaults = MaskSettings()
    for key, text in MaskSettings.field_help().items():
        t.add_row(key, str(getattr(defaults, key)), text)
    return t


def _epochs_line(method) -> str:
    stages = "; ".join(f"{stage}: --set {name}=N" for stage, name in method.epoch_fields.items())
    return (f"{method.name} epochs: --epochs N sets every stage ({stages}); "
            "--set of one stage's field wins over --epochs")


def _extras() -> list[tuple[str, list[str]]]:
    out = []
    try:
        from sweeps import sweep_names

        out.append(("sweeps", sweep_names()))
    except ImportError:
        pass
    try:
        from reports import table_names
        from reports.final import NAME as FINAL

        out.append(("tables", [*table_names(), FINAL]))
    except ImportError:
        pass
    return out
