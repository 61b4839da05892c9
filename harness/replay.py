"""`bench run --from <run id or folder>`: run a recorded run again, exactly.

The run's resolved config (config.json) is rebuilt as it was, not resolved again from its
variant (a variant's defaults may have moved since); the input files it read are checked
against the sha256 the record holds, and what cannot be reproduced is refused in one line
before anything trains: a missing input, a changed file. On the same machine (same
environment, same thread count, which the replay sets from the record) it gives the same
seed mIoU, bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from harness.config import RunConfig
from harness.errors import BenchError
from harness.run_options import INPUT_PATHS as INPUT_FIELDS  # the files and folders a run reads


def config_from_dict(d: dict[str, Any]) -> RunConfig:
    """The RunConfig a `RunConfig.to_dict()` came from (its family's config class rebuilt)."""
    from harness.registry import get_method

    cls = get_method(d["method"]).config_cls
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d["params"]) - known)
    if unknown:
        raise BenchError(f"the recorded config has settings this version does not know "
                         f"({', '.join(unknown)}): it cannot be replayed here")
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    return RunConfig(**{k: v for k, v in d.items() if k in fields and k != "params"},
                     params=cls(**d["params"]).validate())


def find_run(source: str | Path, runs_root: Path) -> Path:
    """A run folder from a folder path, a run id or a unique prefix of one in `runs_root`."""
    path = Path(source)
    if (path / "result.json").is_file():
        return path
    hits = sorted(p for p in runs_root.glob(f"{source}*") if (p / "result.json").is_file())
    exact = [p for p in hits if p.name == str(source)]
    if len(exact) == 1 or len(hits) == 1:
        return (exact or hits)[0]
    raise BenchError(f"--from {source}: " + (f"no run folder with this id in {runs_root}"
                                             if not hits else f"{len(hits)} runs start with it"))


def load_replay(source: str | Path, runs_root: Path) -> tuple[RunConfig, dict[str, Any]]:
    """(config, record) of the run to replay; refuses in one line what cannot be reproduced."""
    folder = find_run(source, runs_root)
    record = json.loads((folder / "result.json").read_text())
    config = folder / "config.json"
    cfg = config_from_dict(json.loads(config.read_text()) if config.is_file() else record["config"])
    from harness.provenance import input_hashes

    recorded = record.get("inputs") or {}
    for name in INPUT_FIELDS:
        given = getattr(cfg, name)
        if given is None:
            continue
        if not Path(given).exists():
            raise BenchError(f"cannot replay {folder.name}: its {name} {given} is missing")
        want = recorded.get(name)
        if want and input_hashes(cfg).get(name) != want:
            raise BenchError(f"cannot replay {folder.name}: its {name} {given} has changed "
                             f"(sha256 {input_hashes(cfg)[name][:12]}…, recorded {want[:12]}…)")
    check_data(cfg, record, folder.name)
    return cfg, record


def check_data(cfg: RunConfig, record: dict[str, Any], name: str) -> None:
    """A dataset that fingerprints its files (a folder) must hold the files the run read:
    relabelled, added or replaced images would train and score something else under the same
    command, so the replay is refused in one line. Other datasets record no fingerprint."""
    want = (record.get("provenance") or {}).get("data_fingerprint")
    if not want:
        return
    from harness.data import default_cache_dir, load_dataset
    from harness.method import data_options

    got = load_dataset(cfg.dataset, "eval", **data_options(
        cfg.dataset, cfg.params, default_cache_dir(), cfg.data_root, cfg.seed)).fingerprint
    if got != want:
        raise BenchError(f"cannot replay {name}: the files of its {cfg.dataset} dataset "
                         f"{cfg.data_root or ''} have changed since it ran (fingerprint {got}, "
                         f"recorded {want}): relabelled, added or replaced images")


def replay_notes(record: dict[str, Any]) -> list[str]:
    """Lines to print before a replay: what differs from the recorded run's machine."""
    from harness.environment import differing, fingerprint
    from harness.store import git_revision

    notes = []
    fields = differing([record.get("environment"), fingerprint()])
    if fields:
        notes.append(f"note: this environment differs from the recorded run's in "
                     f"{', '.join(fields)}: the numbers may differ")
    rev = git_revision()
    if record.get("git_rev") and record["git_rev"] != rev:
        notes.append(f"note: recorded at git {record['git_rev']}, replayed at {rev}")
    return notes


def replay(source: str | Path, runs_root: Path, log=print, **run_kwargs: Any) -> dict[str, Any]:
    """Run `source` again from its record (`harness.runner.run` keywords: cache_dir,
    wandb_mode, …), at the recorded torch thread count; returns the new record."""
    import torch

    from harness.runner import resolve_device, run

    cfg, record = load_replay(source, runs_root)
    resolve_device(cfg.device)  # a CUDA run on a machine without CUDA: one line
    for line in replay_notes(record):
        log(line)
    threads = torch.get_num_threads()
    # float reductions on CPU depend on the thread count: the recorded one reproduces it
    torch.set_num_threads(int(record.get("torch_threads") or threads))
    try:
        return run(cfg, runs_dir=runs_root, log=log, **run_kwargs)
    finally:
        torch.set_num_threads(threads)
