"""A method family from another distribution, exactly as a third-party author would ship it:
a package and its dist-info (entry point `wsss_bench.methods`) on sys.path, nothing in this
repository changed. It adds a family, a variant, a row to an existing table, a table of its
own and a sweep, and `bench list`, `bench report` and the sweep registry show each; the
registry's own tests still pass with it installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = [sys.executable, "-c", "from cli import main; main()"]

PAPER = '''
from methods.papers import FamilyPaper, row

PAPER = FamilyPaper("toy", {"synth": {}}, grids={"lr": (0.3, 0.7)},
                    method="toyplug.method:Toy", order=5)
PAPER.table("toy-table", "Toy table", description="rows a plugin adds", reference="Toy")
PAPER.sweep("toy_lr", "lr", "toy learning rate")


@PAPER.variant("toy", rows=[row(("seeds", "toy-table"), "Toy", 12.3, "Toy paper")])
def toy() -> dict:
    """A toy family from a plugin."""
    return {}


@PAPER.variant("toy/half", rows=[row("toy-table", "Toy half", 4.5, "Toy paper")])
def half() -> dict:
    """The toy family's one ablation."""
    return {"lr": 0.3}
'''
METHOD = '''
from harness.generator import build_generator
from harness.method import Method
from harness.registry import register_method
from toyplug.paper import PAPER


@register_method
class Toy(Method):
    """A toy family: an untrained synth CNN (what a run needs of a family, nothing more)."""

    name = "toy"
    paper = PAPER
    needs_teacher = False

    def train(self, ctx):
        return build_generator("synth-cnn", len(ctx.dataset("train").class_names))
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> dict[str, str]:
    """The environment of a process that has the plugin installed beside the project."""
    root = tmp_path_factory.mktemp("site")
    (root / "toyplug").mkdir()
    (root / "toyplug" / "__init__.py").write_text("")
    (root / "toyplug" / "paper.py").write_text(PAPER)
    (root / "toyplug" / "method.py").write_text(METHOD)
    info = root / "toyplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[wsss_bench.methods]\ntoy = toyplug.paper:PAPER\n")
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "WANDB_MODE": "disabled", "COLUMNS": "250"}


def _run(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_bench_list_shows_the_plugin_family_variant_sweep_and_table(plugin):
    out = _run(plugin, *BENCH, "list")
    assert "toy/half" in out and "A toy family from a plugin." in out
    assert "toy_lr" in out.split("sweeps:")[1] and "toy-table" in out.split("tables:")[1]


def test_bench_report_shows_the_row_it_adds_and_its_own_table(plugin, tmp_path):
    seeds = _run(plugin, *BENCH, "report", "--table", "seeds", "--runs-dir", str(tmp_path))
    rows = [line.split("│")[1].strip() for line in seeds.splitlines() if line.startswith("│")]
    # order 5 puts it first; the built-in rows keep their order
    assert rows[:3] == ["Toy", "CAM", "CLIMS"] and "12.3" in seeds
    own = _run(plugin, *BENCH, "report", "--table", "toy-table", "--runs-dir", str(tmp_path))
    assert "Toy half" in own and "4.5" in own and "bench run toy/half" in own


def test_the_plugin_sweep_is_a_grid_over_its_paper_values(plugin):
    code = ("import json; from sweeps import get_sweep; s = get_sweep('toy_lr'); "
            "print(json.dumps([s.method, s.sampler_kind, s.grid()]))")
    assert json.loads(_run(plugin, sys.executable, "-c", code)) == [
        "toy", "grid", {"lr": [0.3, 0.7]}]


@pytest.mark.slow
def test_the_plugin_family_runs_and_the_registry_tests_pass_with_it(plugin, tmp_path):
    record = json.loads(_run(plugin, *BENCH, "run", "toy/half", "--json", "--set", "n_eval=8",
                             "--set", "n_train=8", "--runs-dir", str(tmp_path / "runs"),
                             "--cache-dir", str(tmp_path / "cache")).strip().splitlines()[-1])
    assert (record["method"], record["variant"], record["status"]) == ("toy", "toy/half", "ok")
    # a family that declares no settings has a trained generator's (GeneratorConfig), not
    # the CAM stage's, which belong to the families that start from it
    assert record["config"]["params"]["lr"] == 0.3 and "cam_lr" not in record["config"]["params"]
    _run(plugin, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(REPO / "tests" / "test_registry.py"))
