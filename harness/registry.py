"""Method families and their variants, in the style of timm's `@register_model`.

A family is a `Method` subclass registered with `@register_method`; a variant is a small
function returning the config overrides that define it, registered with
`@register_variant("family/name")` (a name registered twice is refused). Ablations are
variants, so `bench list` shows them and tests enumerate them. The built-in families declare
theirs in their torch-free paper (methods/*/paper.py).

Where the families come from: the entry-point group `wsss_bench.methods`, one entry per
family, `name = "module:Class"` (lazy, as lm-evaluation-harness's registry), the built-in
ones declared in this project's pyproject.toml and a third-party package's in its own. A
lookup imports only the family it names (a miss, and `list_variants`, import them all), so
this module names no package above `harness`, not even as a string, and the layers contract
holds without an exception. The metadata comes with the install (`pip install -e .`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from harness.errors import BenchError

ENTRY_POINT_GROUP = "wsss_bench.methods"

_METHODS: dict[str, type] = {}
_VARIANTS: dict[str, Variant] = {}
_DEFAULTS: set[str] = set()  # default variants made by register_method, not by a function
_IMPORTED: set[str] = set()  # entry points already loaded


@dataclass(frozen=True)
class Variant:
    name: str
    family: str
    description: str
    overrides: Callable[[], dict[str, Any]]
    table: str = ""  # the paper table row it reproduces, for `bench list`


def register_method(cls: type) -> type:
    """Register a method family; its default variant is the family name itself."""
    _METHODS[cls.name] = cls
    if cls.name not in _VARIANTS:
        doc = (cls.__doc__ or "").strip().splitlines()
        _VARIANTS[cls.name] = Variant(cls.name, cls.name, doc[0] if doc else "", dict)
        _DEFAULTS.add(cls.name)  # a stand-in: a variant of that name may still replace it
    return cls


def register_variant(name: str, table: str = "") -> Callable:
    """Register `fn() -> overrides` as variant `name` ("family/variant"); docstring = help."""

    def deco(fn: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
        if name in _VARIANTS and name not in _DEFAULTS:
            first = _VARIANTS[name].overrides
            raise BenchError(f"variant {name!r} is registered twice: {first.__module__}."
                             f"{first.__qualname__} and {fn.__module__}.{fn.__qualname__}")
        _DEFAULTS.discard(name)
        family = _family_of(name)
        doc = (fn.__doc__ or "").strip().splitlines()
        _VARIANTS[name] = Variant(name, family, doc[0] if doc else "", fn, table)
        return fn

    return deco


def _load(family: str | None = None) -> None:
    """Import the entry point of `family` (None: every one), each once; importing a module
    registers its families and variants."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if not found:
        raise BenchError(f"no method family is installed (entry-point group {ENTRY_POINT_GROUP}): "
                         "install the project with `pip install -e .` in its folder")
    for name in [family] if family in found else list(found):
        if name not in _IMPORTED:
            _IMPORTED.add(name)
            found[name].load()


def _family_of(name: str) -> str:
    return name.split("/", 1)[0]


def list_variants() -> list[Variant]:
    _load()
    return [_VARIANTS[k] for k in sorted(_VARIANTS, key=lambda n: (n.split("/")[0], "/" in n, n))
            if _VARIANTS[k].family in _METHODS]


def get_variant(name: str) -> Variant:
    if name not in _VARIANTS:
        _load(_family_of(name))
    if name not in _VARIANTS or _VARIANTS[name].family not in _METHODS:
        _load()  # a family registered under another entry-point name, or none: all of them
    if name not in _VARIANTS or _VARIANTS[name].family not in _METHODS:
        known = ", ".join(sorted(_METHODS))
        raise BenchError(f"unknown method or variant {name!r}; methods: {known} "
                         "(`bench list` shows every variant)")
    return _VARIANTS[name]


def get_method(family: str) -> type:
    if family not in _METHODS:
        _load(family)
    if family not in _METHODS:
        _load()
    if family not in _METHODS:
        raise BenchError(f"unknown method {family!r}; methods: {', '.join(sorted(_METHODS))}")
    return _METHODS[family]


def context_losses() -> dict[str, Callable]:
    """Every family's `Method.context_losses()` (name → loss of one row of a
    harness.synth.gates.ContextPair): what the synth teacher's pair gates measure."""
    _load()
    out: dict[str, Callable] = {}
    for family in sorted(_METHODS):
        for name, loss in _METHODS[family].context_losses().items():
            if name in out:
                raise BenchError(f"context loss {name!r} is declared by two families")
            out[name] = loss
    return out
