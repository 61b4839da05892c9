"""The method families come from the entry-point group `wsss_bench.methods`: harness names
no room above it, a lookup imports only the family it asks for, and the installed metadata
says what pyproject.toml declares."""

from __future__ import annotations

import ast
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


def test_the_installed_entry_points_are_the_ones_pyproject_declares():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"][
        "wsss_bench.methods"]
    installed = {ep.name: ep.value for ep in entry_points(group="wsss_bench.methods")}
    assert installed == declared, "stale install: run `pip install -e .` again"


def test_a_lookup_imports_only_the_family_it_names():
    code = ("import sys\nfrom harness.registry import get_method, get_variant, list_variants\n"
            "get_variant('cam'); a = sorted(m for m in sys.modules "
            "if m.startswith('methods.') and m.endswith('.method'))\n"
            "get_method('semples'); b = sorted(m for m in sys.modules if m.startswith('methods.') "
            "and m.endswith('.method'))\n"
            "names = {v.family for v in list_variants()}\n"
            "print(a, b, 'methods.qa_clims.method' in sys.modules, sorted(names))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "['methods.cam.method']",
        # semples builds on the CAM stage and CLIMS's class prompt, and imports nothing else
        "['methods.cam.method',", "'methods.clims.method',", "'methods.semples.method']",
        "True", "['cam',", "'clims',", "'qa-clims',", "'semples']"]


def test_every_entry_point_is_a_registered_family_of_its_name():
    from harness.method import Method
    from harness.registry import get_method

    for ep in entry_points(group="wsss_bench.methods"):
        cls = ep.load()
        assert issubclass(cls, Method) and cls.name == ep.name and get_method(ep.name) is cls
