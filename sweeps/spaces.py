"""Named sweeps: method + search space + sampler + metric, declared as data.

A sweep never imports its method: `bench list` shows every sweep even while the method
that owns it is not registered yet, and the method is looked up only when a sweep starts.
Grids are read from the method family's paper (methods/*/paper.py, torch-free), so Table
5's λ values and the ω grid live in one place.

Parameter syntax (also `bench sweep custom --param NAME=SPEC`):

    float:LOW:HIGH[:log]     a continuous range (TPE)
    int:LOW:HIGH[:log]       an integer range (TPE)
    grid:V1,V2,...           a grid axis (GridSampler when every axis is a grid)
    cat:A,B,...              categorical choices (TPE)
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from harness.config import set_text
from harness.errors import BenchError
from methods.papers import grid, sweeps

KINDS = ("float", "int", "grid", "cat")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # float | int | grid | cat
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial) -> Any:
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def describe(self) -> str:
        if self.kind in ("float", "int"):
            return f"{self.kind}:{set_text(self.low)}:{set_text(self.high)}" + (":log" if self.log else "")
        return f"{self.kind}:" + ",".join(set_text(c) for c in self.choices)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "low": self.low, "high": self.high,
                "log": self.log, "choices": list(self.choices)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Param:
        return cls(d["name"], d["kind"], d.get("low"), d.get("high"), bool(d.get("log")),
                   tuple(d.get("choices") or ()))


@dataclass(frozen=True)
class SweepSpec:
    name: str
    method: str  # a variant name, e.g. "semples" or "qa-clims"
    params: tuple[Param, ...]
    description: str = ""
    metric: str = "seed_miou"
    direction: str = "maximize"
    n_trials: int | None = None  # default budget for TPE sweeps; grid sweeps = grid size
    sets: tuple[str, ...] = field(default=())  # fixed settings every trial gets
    paper: str = ""  # the paper table / figure it reproduces

    @property
    def sampler_kind(self) -> str:
        return "grid" if self.params and all(p.kind == "grid" for p in self.params) else "tpe"

    def grid(self) -> dict[str, list[Any]]:
        return {p.name: list(p.choices) for p in self.params}

    def grid_points(self) -> list[dict[str, Any]]:
        import itertools

        g = self.grid()
        return [dict(zip(g, combo, strict=True)) for combo in itertools.product(*g.values())]

    def default_trials(self) -> int:
        if self.sampler_kind == "grid":
            return math.prod(len(p.choices) for p in self.params)
        return self.n_trials or 20

    def make_sampler(self, seed: int | None = None):
        import optuna

        if self.sampler_kind == "grid":
            return optuna.samplers.GridSampler(self.grid(), seed=seed)
        return optuna.samplers.TPESampler(seed=seed)

    def space_text(self) -> str:
        return " ".join(f"{p.name}={p.describe()}" for p in self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "params": [p.to_dict() for p in self.params],
                "description": self.description, "metric": self.metric,
                "direction": self.direction, "n_trials": self.n_trials, "sets": list(self.sets),
                "paper": self.paper}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepSpec:
        return cls(d["name"], d["method"], tuple(Param.from_dict(p) for p in d["params"]),
                   d.get("description", ""), d.get("metric", "seed_miou"),
                   d.get("direction", "maximize"), d.get("n_trials"), tuple(d.get("sets") or ()),
                   d.get("paper", ""))

    def fingerprint(self) -> str:
        body = json.dumps({"method": self.method, "params": [p.to_dict() for p in self.params]},
                          sort_keys=True)
        return hashlib.sha1(body.encode()).hexdigest()[:8]


def _num(text: str) -> float | int | str:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_param(text: str) -> Param:
    """`lambda_b=float:0.5:5:log`, `omega=grid:0.05,0.1,0.2`, `optimizer=cat:sgd,adamw`."""
    name, sep, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name or not spec:
        raise BenchError(f"--param expects NAME=KIND:..., e.g. lambda_b=float:0.5:5:log (got {text!r})")
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "categorical":
        kind = "cat"
    if kind not in KINDS:
        raise BenchError(f"--param {name}: kind must be one of {', '.join(KINDS)} (got {kind!r})")
    if kind in ("float", "int"):
        parts = rest.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2].lower() != "log"):
            raise BenchError(f"--param {name}: expected {kind}:LOW:HIGH[:log] (got {spec!r})")
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            raise BenchError(f"--param {name}: LOW and HIGH must be numbers (got {spec!r})") from None
        log = len(parts) == 3
        if not low < high:
            raise BenchError(f"--param {name}: LOW must be < HIGH (got {spec!r})")
        if log and low <= 0:
            raise BenchError(f"--param {name}: a log range needs LOW > 0 (got {spec!r})")
        if kind == "int" and not (low.is_integer() and high.is_integer()):
            raise BenchError(f"--param {name}: int bounds must be integers (got {spec!r})")
        return Param(name, kind, low, high, log)
    values = tuple(_num(v.strip()) for v in rest.split(",") if v.strip())
    if not values:
        raise BenchError(f"--param {name}: give at least one value, e.g. {kind}:0.05,0.1 (got {spec!r})")
    if len(set(values)) != len(values):
        raise BenchError(f"--param {name}: duplicate values in {spec!r}")
    return Param(name, kind, choices=values)


def custom_sweep(method: str, params: list[str], metric: str = "seed_miou",
                 n_trials: int | None = None) -> SweepSpec:
    if not method:
        raise BenchError("`bench sweep custom` needs --method, e.g. --method cam")
    if not params:
        raise BenchError("`bench sweep custom` needs at least one --param NAME=KIND:...")
    parsed = tuple(parse_param(p) for p in params)
    names = [p.name for p in parsed]
    if len(set(names)) != len(names):
        raise BenchError(f"--param: each name once (got {', '.join(names)})")
    spec = SweepSpec("custom", method, parsed, f"ad hoc sweep of {method}", metric=metric,
                     n_trials=n_trials)
    return spec


def _grid(name: str, *values: float) -> Param:
    return Param(name, "grid", choices=tuple(values))


def _range(name: str, low: float, high: float, log: bool = True) -> Param:
    return Param(name, "float", low, high, log)


def _paper_grid(family: str, name: str) -> Param:
    return _grid(name, *grid(family, name))


# The named sweeps. Grids are the papers' values where the paper prints them.
SWEEPS: dict[str, SweepSpec] = {s.name: s for s in [
    SweepSpec("lambda_refine", "semples", (_paper_grid("semples", "lambda_refine"),),
              "SemPLeS refinement weight λ (Eq. 3), the paper's Table 5 grid",
              paper="SemPLeS Table 5"),
    SweepSpec("lambda_b", "semples", (_paper_grid("semples", "lambda_b"),),
              "SemPLeS background-repelling weight λ_b (Eq. 1), around the VOC default 2.4"),
    SweepSpec("lambda_T", "semples", (_paper_grid("semples", "lambda_T"),),
              "SemPLeS prompt text-repelling weight λ_T (Eq. 2), around the VOC default 0.02"),
    SweepSpec("semples_weights", "semples",
              (_range("lambda_b", 0.2, 10.0), _range("lambda_T", 0.001, 0.2),
               _range("lambda_refine", 0.001, 0.5)),
              "SemPLeS loss weights λ_b, λ_T, λ jointly (TPE)", n_trials=30),
    # one ω grid for the sweep and the report's curve (the paper prints only the optimum)
    SweepSpec("omega", "qa-clims", (_paper_grid("qa-clims", "omega"),),
              "QA-CLIMS filter ratio ω (Eq. 9), the Appendix B curve (optimum 0.1)",
              paper="QA-CLIMS Appendix B, Figure 5"),
    SweepSpec("tau", "qa-clims", (_paper_grid("qa-clims", "tau"),),
              "QA-CLIMS contrastive temperature τ, around the paper's 0.7"),
    SweepSpec("qa_clims_weights", "qa-clims",
              (_range("alpha", 1.0, 50.0), _range("beta", 1.0, 50.0), _range("gamma", 0.01, 2.0)),
              "QA-CLIMS loss weights α, β, γ jointly (TPE)", n_trials=30),
    # runs today on the baseline: the machinery's smoke test and a quick demo
    SweepSpec("cam_lr", "cam", (_paper_grid("cam", "cam_lr"),),
              "CAM baseline classifier learning rate (a fast demo of the sweep machinery)"),
]}


def _add_paper_sweeps() -> None:
    """The sweeps the families' papers add (FamilyPaper.sweep; a third-party family's too)."""
    for paper, s in sweeps():
        if s.name in SWEEPS:
            raise BenchError(f"sweep {s.name!r} of {paper.family}'s paper is already a sweep")
        SWEEPS[s.name] = SweepSpec(s.name, s.variant or paper.family,
                                   (_paper_grid(paper.family, s.grid),), s.description,
                                   paper=s.source)


_add_paper_sweeps()
