"""Optuna sweeps: named search spaces, local and multi-machine workers.

`sweep_names()` and `get_sweep()` read declarations only (no method is imported), so
`bench list` works even while a sweep's method is not registered yet.
"""

from __future__ import annotations

from sweeps.spaces import SWEEPS, SweepSpec, custom_sweep

__all__ = ["SweepSpec", "custom_sweep", "get_sweep", "sweep_names"]


def sweep_names() -> list[str]:
    return sorted(SWEEPS)


def get_sweep(name: str) -> SweepSpec:
    from harness.errors import BenchError

    if name not in SWEEPS:
        raise BenchError(f"unknown sweep {name!r}; named sweeps: {', '.join(sweep_names())} "
                         "(or `bench sweep custom --method M --param NAME=KIND:...`)")
    return SWEEPS[name]
