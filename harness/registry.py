"""Method families and their variants, in the style of timm's `@register_model`.

A family is a `Method` subclass registered with `@register_method`; a variant is a small
function returning the config overrides that define it, registered with
`@register_variant("family/name")` (a name registered twice is refused). Ablations are
variants, so `bench list` shows them and tests enumerate them. The built-in families declare
theirs in their torch-free paper (methods/*/paper.py). Built-in families are imported
lazily on first lookup; third-party packages add theirs through the entry-point group
`wsss_bench.methods`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from harness.errors import BenchError

BUILTIN_MODULES = ("methods.cam.method", "methods.clims.method", "methods.semples.method",
                   "methods.qa_clims.method")
ENTRY_POINT_GROUP = "wsss_bench.methods"

_METHODS: dict[str, type] = {}
_VARIANTS: dict[str, Variant] = {}
_DEFAULTS: set[str] = set()  # default variants made by register_method, not by a function
_loaded = False


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
        family = name.split("/", 1)[0]
        doc = (fn.__doc__ or "").strip().splitlines()
        _VARIANTS[name] = Variant(name, family, doc[0] if doc else "", fn, table)
        return fn

    return deco


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()  # the module registers its methods and variants on import


def list_variants() -> list[Variant]:
    _load()
    return [_VARIANTS[k] for k in sorted(_VARIANTS, key=lambda n: (n.split("/")[0], "/" in n, n))
            if _VARIANTS[k].family in _METHODS]


def get_variant(name: str) -> Variant:
    _load()
    if name not in _VARIANTS or _VARIANTS[name].family not in _METHODS:
        known = ", ".join(sorted(_METHODS))
        raise BenchError(f"unknown method or variant {name!r}; methods: {known} "
                         "(`bench list` shows every variant)")
    return _VARIANTS[name]


def get_method(family: str) -> type:
    _load()
    if family not in _METHODS:
        raise BenchError(f"unknown method {family!r}; methods: {', '.join(sorted(_METHODS))}")
    return _METHODS[family]
