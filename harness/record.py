"""A run's result record (`result.json`): typed, versioned, migrated when read.

The runner builds it, the results store writes and reads it (harness.store), reports and
sweeps read its fields as attributes. The fields reports and sweeps read are typed here;
everything else a run records (the environment, mask scores, the oracle, …) is kept as
written in `extra` and reached by name through `metric`. A record written by an older
version is migrated to the current schema when it is read (`migrate`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# 1: records before the package had a version; 2: `package_version` beside `git_rev`
SCHEMA_VERSION = 2


class RecordError(ValueError):
    """A JSON object that is not a run record: the message says why, in a few words."""


@dataclass(frozen=True)
class RunRecord:
    run_id: str = ""
    method: str = ""
    variant: str = ""
    dataset: str = ""
    seed: int = 0
    status: str = "ok"  # ok, failed (a non-finite loss), running (only while it is built)
    error: str | None = None
    hparams: dict[str, Any] = field(default_factory=dict)  # the family's own settings
    config: dict[str, Any] = field(default_factory=dict)  # RunConfig.to_dict()
    seed_miou: float | None = None
    seed_miou_fixed: float | None = None
    seed_miou_heldout: float | None = None
    best_threshold: float | None = None
    threshold_heldout: float | None = None
    context_fp: float | None = None
    per_class_iou: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] | None = None
    stage_cache: dict[str, Any] = field(default_factory=dict)  # hits and misses of the stages
    environment: dict[str, Any] | None = None  # harness.environment.fingerprint()
    package_version: str | None = None  # None: written before the package had a version
    git_rev: str | None = None
    finished_at: str = ""
    wall_s: float | None = None
    path: str | None = None
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # every other field, as written

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """A record from its JSON object, migrated; RecordError names a field of the wrong
        type."""
        if not isinstance(data, dict):
            raise RecordError(f"a JSON {type(data).__name__}, not a record object")
        data = migrate(data)
        known = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        for name, value in data.items():
            if name in known and value is not None and not _is(value, known[name].type):
                raise RecordError(f"its {name} is a {type(value).__name__}")
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**self.extra, **out}

    def metric(self, name: str) -> Any:
        """A field by name (a typed one or one kept in `extra`); None where absent."""
        if name != "extra" and name in _FIELD_NAMES:
            return getattr(self, name)
        return self.extra.get(name)

    def params(self) -> dict[str, Any]:
        """Every setting of the run: the config's params, the family's own hparams over them."""
        return {**(self.config.get("params") or {}), **self.hparams}

    @property
    def ok(self) -> bool:
        return self.status == "ok"


_FIELD_NAMES = {f.name for f in dataclasses.fields(RunRecord)}
_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "dict": (dict,)}


def _is(value: Any, annotation: str) -> bool:
    """Does a JSON value fit a field's annotation (`float | None`, `dict[str, Any]`, …)?"""
    base = annotation.split("|")[0].split("[")[0].strip()
    types = _TYPES.get(base)
    if types is None:
        return True
    return isinstance(value, types) and not isinstance(value, bool)


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """A record of any earlier schema, as the current one. Schema 1 (and the records before
    `schema_version` existed) lack `package_version`: None, "written before it was kept"."""
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecordError(f"its schema_version is a {type(version).__name__}")
    if version > SCHEMA_VERSION:
        raise RecordError(f"schema {version}, newer than this version's {SCHEMA_VERSION} "
                          "(upgrade wsss-bench to read it)")
    out = dict(data)
    if version < 2:
        out.setdefault("package_version", None)
    out["schema_version"] = SCHEMA_VERSION
    return out


def to_record(rec: RunRecord | dict[str, Any]) -> RunRecord:
    """A RunRecord from a record or its JSON object."""
    return rec if isinstance(rec, RunRecord) else RunRecord.from_dict(rec)
