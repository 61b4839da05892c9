"""Method families and their variants, in the style of timm's `@register_model`.

A family is a `Method` subclass registered with `@register_method`; a variant is a small
function returning the config overrides that define it, registered with
`@register_variant("family/name")` (a name registered twice is refused). Ablations are
variants, so `bench list` shows them and tests enumerate them.

Where the families come from: the entry-point group `wsss_bench.methods`, one entry per
family (lazy, as lm-evaluation-harness's registry), the built-in ones declared in this
project's pyproject.toml and a third-party package's in its own. The entry is the family's
*paper* (`name = "pkg.paper:PAPER"`, a `methods.papers.FamilyPaper`, torch-free): loading it
registers the family's variants, table rows, tables, sweeps and published values, and its
`method` attribute ("module:Class") names the `Method` class, imported only when a run needs
it. So `bench list`, reports and sweeps see every family without importing torch. An entry
that is the `Method` class itself ("module:Class", its paper in `Method.paper`) is read too.

A lookup loads only the family it names (a miss, `families()` and `list_variants`, all of
them), so this module names no package above `harness`, not even as a string, and the layers
contract holds without an exception. The metadata comes with the install (`pip install -e .`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from harness.errors import BenchError

ENTRY_POINT_GROUP = "wsss_bench.methods"

_METHODS: dict[str, type] = {}
_VARIANTS: dict[str, Variant] = {}
_DEFAULTS: set[str] = set()  # default variants made by register_method, not by a function
_IMPORTED: set[str] = set()  # entry points already loaded
_PAPERS: dict[str, Any] = {}  # family → its paper (the entry point's object)


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
    """Load the entry point of `family` (None: every one), each once; loading a paper
    registers its variants, a Method class its family."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if not found:
        raise BenchError(f"no method family is installed (entry-point group {ENTRY_POINT_GROUP}): "
                         "install the project with `pip install -e .` in its folder")
    for name in [family] if family in found else list(found):
        if name not in _IMPORTED:
            _IMPORTED.add(name)
            _add_entry(name, found[name].load())


def _add_entry(name: str, entry: Any) -> None:
    """Keep the paper of entry `name`: the entry itself, or a Method class's `paper`."""
    paper = entry.paper if isinstance(entry, type) else entry
    family = getattr(paper, "family", None) or getattr(entry, "name", name)
    if family != name:
        raise BenchError(f"entry point {name!r} of {ENTRY_POINT_GROUP} holds family {family!r}: "
                         "the entry's name must be the family's")
    if isinstance(entry, type):
        _METHODS.setdefault(family, entry)
    if paper is not None:
        _PAPERS[family] = paper
    if family not in _VARIANTS:  # a paper that declares no default variant gets one
        _VARIANTS[family] = Variant(family, family, "", dict)
        _DEFAULTS.add(family)


def _family_known(family: str) -> bool:
    return family in _METHODS or family in _PAPERS


def _family_of(name: str) -> str:
    return name.split("/", 1)[0]


def list_variants() -> list[Variant]:
    _load()
    return [_VARIANTS[k] for k in sorted(_VARIANTS, key=lambda n: (n.split("/")[0], "/" in n, n))
            if _family_known(_VARIANTS[k].family)]


def families() -> dict[str, Any]:
    """Every installed family → its paper (`methods.papers.FamilyPaper`; None for a family
    whose Method class declares none), loading every entry point; sorted by name."""
    _load()
    return {f: _PAPERS.get(f) for f in sorted({*_PAPERS, *_METHODS})}


def get_variant(name: str) -> Variant:
    if name not in _VARIANTS:
        _load(_family_of(name))
    if name not in _VARIANTS or not _family_known(_VARIANTS[name].family):
        _load()  # a family registered under another entry-point name, or none: all of them
    if name not in _VARIANTS or not _family_known(_VARIANTS[name].family):
        known = ", ".join(families())
        raise BenchError(f"unknown method or variant {name!r}; methods: {known} "
                         "(`bench list` shows every variant)")
    return _VARIANTS[name]


def get_method(family: str) -> type:
    """The `Method` class of `family`, imported from its paper's `method` ("module:Class")."""
    if family not in _METHODS:
        _load(family)
    if family not in _METHODS and family not in _PAPERS:
        _load()
    if family not in _METHODS and getattr(_PAPERS.get(family), "method", None):
        module, _, attr = _PAPERS[family].method.partition(":")
        cls = getattr(import_module(module), attr)
        _METHODS.setdefault(family, cls)  # registered by its decorator, or here
    if family not in _METHODS:
        raise BenchError(f"unknown method {family!r}; methods: {', '.join(families())}")
    return _METHODS[family]


def context_gates():
    """The synth teacher's pair gates (harness.synth.gates.PairGates) that a run hands it:
    every installed family's `Method.context_losses()` and the ones it enforces."""
    from harness.synth.gates import PairGates

    losses: dict[str, Callable] = {}
    enforced: list[str] = []
    for family in families():
        method = get_method(family)
        for name, loss in method.context_losses().items():
            if name in losses:
                raise BenchError(f"context loss {name!r} is declared by two families")
            losses[name] = loss
        enforced += method.enforced_context_losses
    return PairGates(losses, tuple(enforced))
