"""The method families come from the entry-point group `wsss_bench.methods`: harness names
no room above it, a lookup imports only the family it asks for, and the installed metadata
says what pyproject.toml declares."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UPPER_ROOMS = ("methods", "sweeps", "reports", "cli", "benchmarks")


def test_harness_names_no_room_above_it_not_even_in_a_string():
    # lint-imports sees import statements; a module path in a string (importlib) it cannot
    # see, so none may exist: the families reach harness through entry-point metadata only
    named = []
    for path in sorted((REPO / "harness").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                head = node.value.split(":", 1)[0]
                if head.split(".", 1)[0] in UPPER_ROOMS and "." in head and " " not in head:
                    named.append(f"{path.relative_to(REPO)}: {node.value!r}")
    assert named == []


def _declared() -> dict[str, str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"][
        "wsss_bench.methods"]


def test_the_entry_points_pyproject_declares_are_installed():
    # ⊆, not ==: a plugin package installed beside the project adds its own entries
    installed = {ep.name: ep.value for ep in entry_points(group="wsss_bench.methods")}
    assert declared_items_missing(_declared(), installed) == [], (
        "stale install: run `pip install -e .` again")


def declared_items_missing(declared: dict[str, str], installed: dict[str, str]) -> list[str]:
    return [f"{k} = {v}" for k, v in declared.items() if installed.get(k) != v]


def test_a_lookup_imports_only_the_family_it_names():
    # a variant's lookup loads its family's paper (torch-free), a method's lookup its module
    # and what that builds on; listing loads every paper
    code = ("import json, sys\nfrom harness.registry import get_method, get_variant, list_variants\n"
            "def loaded(end): return sorted(m for m in sys.modules if m.startswith('methods.') "
            "and m.endswith(end))\n"
            "get_variant('cam'); out = [loaded('.paper'), loaded('.method'), 'torch' in sys.modules]\n"
            "get_method('semples'); out.append(loaded('.method'))\n"
            "out.append(sorted({v.family for v in list_variants()}))\n"
            "out.append('methods.qa_clims.method' in sys.modules)\nprint(json.dumps(out))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    papers, methods, torch_loaded, after_semples, listed, qa_method = json.loads(out.stdout)
    assert (papers, methods, torch_loaded) == (["methods.cam.paper"], [], False)
    # semples builds on the CAM stage and CLIMS's class prompt, and imports nothing else
    assert after_semples == ["methods.cam.method", "methods.clims.method",
                             "methods.semples.method"] and not qa_method
    # every family pyproject declares is listed (a plugin installed beside may add more)
    assert set(_declared()) <= set(listed)


def test_every_entry_point_is_a_registered_family_of_its_name():
    from harness.method import Method
    from harness.registry import get_method
    from methods.papers import FamilyPaper

    for ep in entry_points(group="wsss_bench.methods"):
        entry = ep.load()
        cls = get_method(ep.name)
        paper = entry if isinstance(entry, FamilyPaper) else entry.paper
        assert issubclass(cls, Method) and cls.name == ep.name == paper.family
        assert cls.paper is paper  # one entry: the method and its paper
