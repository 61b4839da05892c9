"""What a stage reads, declared once: its key, its folder and its record derive from it.

A stage declares the settings (config fields) its build reads and its other inputs (the
keys of the stages it starts from, the data and teacher keys, values it resolved from
settings, such as the epochs of one round). `StageSpec.deps` is its record (`deps.json`)
and what its key hashes (harness/cache.py). While the build runs, `RunContext.params` is
a `DeclaredSettings` view that hands out only the declared settings, so a build that
starts reading a setting its key does not cover fails at once, naming both, instead of
being reused stale when that setting changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class UndeclaredSetting(Exception):
    """A stage's build read a setting its declaration (so its key) leaves out: a bug."""


@dataclass(frozen=True)
class StageSpec:
    name: str
    settings: tuple[str, ...] = ()  # the config fields the build reads
    inputs: Mapping[str, Any] = field(default_factory=dict)  # everything else it depends on

    def deps(self, params: Any) -> dict[str, Any]:
        """The stage's record: its settings' values and its inputs (what its key hashes)."""
        unknown = [n for n in self.settings if not hasattr(params, n)]
        if unknown:
            raise UndeclaredSetting(f"stage {self.name} declares settings {', '.join(unknown)} "
                                    f"that {type(params).__name__} does not have")
        return {"settings": {n: getattr(params, n) for n in sorted(set(self.settings))},
                "inputs": dict(self.inputs)}

    def key(self, params: Any) -> str:
        from harness.cache import stage_key

        return stage_key(self.name, self.deps(params))


class DeclaredSettings:
    """`params` as stage `spec`'s build sees them: the declared settings, nothing else."""

    def __init__(self, params: Any, spec: StageSpec):
        object.__setattr__(self, "_params", params)
        object.__setattr__(self, "_spec", spec)
        object.__setattr__(self, "_allowed", frozenset(spec.settings))

    def __getattr__(self, name: str) -> Any:
        if name in self._allowed:
            return getattr(self._params, name)
        fields = {f.name for f in dataclasses.fields(self._params)}
        what = f"setting {name!r}" if name in fields else f"{name!r} of its settings"
        raise UndeclaredSetting(f"stage {self._spec.name} read {what}, which its declaration, "
                                "and so its cache key, does not cover: add it to the stage's "
                                "settings (harness/stages.py)")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a stage's settings are read-only")
