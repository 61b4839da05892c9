"""The stage cache: a stage's output is keyed by the hash of exactly what it depends on.

A stage is a folder under `<cache>/stages/<name>/<key>/`, built in a temporary folder and
renamed into place, so a crash never leaves a half-written stage, and guarded by a file
lock, so concurrent sweep workers build it once and the others reuse it. A build that
fails removes its temporary folder and names its stage on the exception (`errors.in_stage`);
a finished stage keeps no `.partial` checkpoints beside it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.errors import in_stage
from harness.memory import trim_heap

CACHE_FORMAT = 3  # bump when a stage's on-disk format or what its key determines changes


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def stage_key(name: str, deps: dict[str, Any]) -> str:
    blob = json.dumps({"stage": name, "format": CACHE_FORMAT, "deps": deps}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def stage_seed(key: str, epoch: int = -1) -> int:
    """A seed from a stage key (hex) and an epoch (−1: the stage's initialisation)."""
    return (int(key[:12], 16) + 7919 * (epoch + 1)) % 2**63


class StageCache:
    def __init__(self, root: Path, log: Callable[[str], None] = print):
        self.root = Path(root) / "stages"
        self.log = log
        self.hits: list[str] = []
        self.misses: list[str] = []
        self.folders: dict[str, Path] = {}  # stage name → its folder, for provenance hashes

    def path(self, name: str, key: str) -> Path:
        return self.root / name.replace("/", "_") / key

    def get_or_build(self, name: str, deps: dict[str, Any],
                     build: Callable[[Path], None]) -> tuple[Path, str]:
        """Return (folder, key) of stage `name`; `build(tmp_folder)` runs only on a miss."""
        key = stage_key(name, deps)
        final = self.path(name, key)
        self.folders[name] = final
        with file_lock(final.parent / f"{key}.lock"):
            if (final / "done").exists():
                self.hits.append(name)
                self.log(f"stage cache hit: {name} [{key}]")
                return final, key
            self.misses.append(name)
            self.log(f"stage cache miss: {name} [{key}] - training")
            _remove_stale_builds(final.parent, key)  # the lock is ours: any other is dead
            tmp = final.parent / f".{key}.{os.getpid()}.tmp"
            tmp.mkdir(parents=True)
            try:
                with in_stage(name):
                    self._build(tmp, key, deps, build)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            # its per-epoch checkpoints only served --resume of the unfinished stage
            shutil.rmtree(self.partial_dir(name, key), ignore_errors=True)
        trim_heap()  # the stage's activations leave with it, not at the end of the run
        return final, key

    @staticmethod
    def _build(tmp: Path, key: str, deps: dict[str, Any], build: Callable[[Path], None]) -> None:
        (tmp / "deps.json").write_text(json.dumps(deps, indent=1, sort_keys=True, default=str))
        import torch

        from harness.seeding import isolated_rng

        with isolated_rng():  # what `build` initialises depends on its key alone
            torch.manual_seed(stage_seed(key))
            build(tmp)
        (tmp / "done").touch()

    def partial_dir(self, name: str, key: str) -> Path:
        """Where a stage keeps per-epoch checkpoints for --resume while it trains."""
        return self.path(name, key).parent / f".{key}.partial"


def _remove_stale_builds(folder: Path, key: str) -> None:
    """Temporary folders of this key left by killed builders (called under the key's lock)."""
    for stale in folder.glob(f".{key}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
