"""The stage cache: a stage's output is keyed by the hash of exactly what it depends on.

A stage is a folder under `<cache>/stages/<name>/<key>/`, built in a temporary folder and
renamed into place, so a crash never leaves a half-written stage, and guarded by a file
lock, so concurrent sweep workers build it once and the others reuse it. A build that
fails removes its temporary folder and names its stage on the exception (`errors.in_stage`);
a finished stage keeps no `.partial` checkpoints beside it.

The last file a build writes is `manifest.json`, the sha256 and size of every other file
(harness/artefacts.py); a folder without one never finished. Every cache hit checks it: a
file that does not match is named in one warning line and the stage is rebuilt, so a run
never computes on bytes its build did not write.
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

from harness.artefacts import MANIFEST, check_manifest, folder_files, load_tensors, write_manifest
from harness.errors import in_stage
from harness.leftovers import owner_tag
from harness.memory import trim_heap
from harness.oserrors import is_write_failure, os_cause

# bump when a stage's on-disk format or what its key determines changes
# (4: manifest.json replaces the `done` marker; 5: keys from StageSpec declarations)
CACHE_FORMAT = 5


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path`; in a read-only folder, on the lock file already there
    (flock needs no write access), so a read-only cache still serves what it holds."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a")
    except OSError as exc:
        try:
            fh = open(path)
        except OSError:
            raise exc from None  # no lock file either: why it could not be made
    with fh:
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
        self.built: list[str] = []  # the misses whose build finished (kept on Ctrl-C)
        self.building: str | None = None  # the stage being built (or interrupted) now
        self.folders: dict[str, Path] = {}  # stage name → its folder, for provenance hashes
        self.keys: list[tuple[str, str]] = []  # (stage, key) of every stage asked for, in order

    def path(self, name: str, key: str) -> Path:
        return self.root / name.replace("/", "_") / key

    def get_or_build(self, name: str, deps: dict[str, Any],
                     build: Callable[[Path], None]) -> tuple[Path, str]:
        """Return (folder, key) of stage `name`; `build(tmp_folder)` runs only on a miss."""
        key = stage_key(name, deps)
        final = self.path(name, key)
        self.folders[name] = final
        self.keys.append((name, key))
        # an intact stage is served without its lock: a read-only cache serves what it holds
        if final.exists() and check_manifest(final / MANIFEST) is None:
            return self._hit(final, name, key)
        with self._locked(final.parent, key, name):
            if final.exists():
                damage = check_manifest(final / MANIFEST)
                if damage is None:
                    return self._hit(final, name, key)
                self.log(f"warning: stage {name} [{key}]: {final / damage.file} {damage.cause}; "
                         "rebuilding the stage")
            self.misses.append(name)
            self.log(f"stage cache miss: {name} [{key}] - training")
            _remove_stale_builds(final.parent, key)  # the lock is ours: any other is dead
            tmp = final.parent / f".{key}.{owner_tag()}.tmp"
            try:
                tmp.mkdir(parents=True)
            except OSError as exc:
                raise _unwritable(self.root, exc, name) from None
            self.building = name  # stays set when the build is interrupted
            try:
                with in_stage(name):
                    self._build(tmp, key, deps, build)
                    _remove_tree(final)  # a damaged copy
                    os.replace(tmp, final)
            except BaseException as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                if is_write_failure(exc):  # the disk refused: the folder and why, one line
                    raise _unwritable(self.root, exc, name) from None
                raise
            self.building = None
            self.built.append(name)
            # its per-epoch checkpoints only served --resume of the unfinished stage
            shutil.rmtree(self.partial_dir(name, key), ignore_errors=True)
        trim_heap()  # the stage's activations leave with it, not at the end of the run
        return final, key

    def _hit(self, final: Path, name: str, key: str) -> tuple[Path, str]:
        self.hits.append(name)
        self.log(f"stage cache hit: {name} [{key}]")
        return final, key

    @contextlib.contextmanager
    def _locked(self, folder: Path, key: str, name: str) -> Iterator[None]:
        """The key's lock; a cache folder that cannot hold it is one line naming the folder."""
        lock = file_lock(folder / f"{key}.lock")
        try:
            lock.__enter__()
        except OSError as exc:
            raise _unwritable(self.root, exc, name) from None
        try:
            yield
        finally:
            lock.__exit__(None, None, None)

    @staticmethod
    def _build(tmp: Path, key: str, deps: dict[str, Any], build: Callable[[Path], None]) -> None:
        (tmp / "deps.json").write_text(json.dumps(deps, indent=1, sort_keys=True, default=str))
        import torch

        from harness.seeding import isolated_rng

        with isolated_rng():  # what `build` initialises depends on its key alone
            torch.manual_seed(stage_seed(key))
            build(tmp)
        write_manifest(tmp / MANIFEST, folder_files(tmp), stage=tmp.parent.name, key=key,
                       format=CACHE_FORMAT)

    @staticmethod
    def load(folder: Path, name: str, map_location: Any = "cpu") -> Any:
        """A stage's torch file, read as plain tensors (the manifest was checked on the hit
        or the build wrote it in this process)."""
        return load_tensors(folder / name, f"stage file of {folder.parent.name}",
                            map_location=map_location)

    def partial_dir(self, name: str, key: str) -> Path:
        """Where a stage keeps per-epoch checkpoints for --resume while it trains."""
        return self.path(name, key).parent / f".{key}.partial"


def _remove_stale_builds(folder: Path, key: str) -> None:
    """Temporary folders of this key left by killed builders (called under the key's lock)."""
    for stale in folder.glob(f".{key}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)


def _remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)  # a failure here (read-only cache) must not be silent


def _unwritable(root: Path, exc: BaseException, stage: str):
    from harness.errors import BenchError

    err = BenchError(f"stage cache {root} is not writable ({os_cause(exc, root)}): pass "
                     "--cache-dir or BENCH_CACHE_DIR to a writable folder with space")
    err.bench_stage = stage
    return err
