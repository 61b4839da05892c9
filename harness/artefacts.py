"""Verified artefacts: checksum manifests written when a build finishes, checked on load, and
torch files read as plain tensors with one line naming the file when they cannot be.

A manifest is a JSON object `{"files": {relative name: {"sha256": hex, "bytes": n}}, ...}`
beside (or inside) what it covers. `check_manifest` says, in a few words, the first thing
that does not match; the caller names its stage, warns in one line and rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import BenchError

MANIFEST = "manifest.json"


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def files_sha256(paths: list[Path]) -> str:
    """SHA-256 over files in order (each one's name and bytes): the content key of a folder
    of CAMs or masks that a stage reads."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Damage:
    """What is wrong with a verified artefact: which file, and why (a few words)."""

    file: str
    cause: str

    def __str__(self) -> str:
        return f"{self.file} {self.cause}"


def write_manifest(manifest: Path, files: list[Path], **extra: Any) -> None:
    """Checksum `files` (paths under manifest's folder) into `manifest`, atomically: the
    manifest is the last thing a build writes, so its presence means the build finished."""
    base = manifest.parent
    entries = {str(f.relative_to(base)): {"sha256": file_sha256(f), "bytes": f.stat().st_size}
               for f in sorted(files)}
    tmp = manifest.with_name(f".{manifest.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**extra, "files": entries}, indent=1, sort_keys=True))
    os.replace(tmp, manifest)


def folder_files(folder: Path, skip: tuple[str, ...] = (MANIFEST,)) -> list[Path]:
    """Every regular file under `folder` (recursively), except `skip` at its top."""
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and
            not (p.parent == folder and p.name in skip)]


def check_manifest(manifest: Path) -> Damage | None:
    """None when every file `manifest` lists is there with its size and sha256; else the
    first damage found (the manifest itself missing or unreadable counts)."""
    try:
        data = json.loads(manifest.read_bytes().decode("utf-8"))
        files = data["files"]
        if not isinstance(files, dict) or not files:
            raise ValueError("lists no files")
    except FileNotFoundError:
        return Damage(manifest.name, "is missing (its build never finished, or an older "
                      "version wrote it)")
    except OSError as exc:
        return Damage(manifest.name, f"is unreadable ({exc.strerror or type(exc).__name__})")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return Damage(manifest.name, "is not a readable manifest")
    for name, entry in files.items():
        path = manifest.parent / name
        try:
            size = path.stat().st_size
            if isinstance(entry, dict) and size != entry.get("bytes"):
                return Damage(name, f"is {size} bytes where its build wrote {entry.get('bytes')} "
                              "(truncated or overwritten)")
            if not isinstance(entry, dict) or file_sha256(path) != entry.get("sha256"):
                return Damage(name, "does not match its sha256 (its bytes changed after its "
                              "build wrote them)")
        except FileNotFoundError:
            return Damage(name, "is missing")
        except OSError as exc:
            return Damage(name, f"is unreadable ({exc.strerror or type(exc).__name__})")
    return None


def unreadable_reason(path: Path, exc: BaseException) -> str:
    """A few words on why torch could not read `path` (never the advice to unpickle it)."""
    try:
        size = path.stat().st_size
    except OSError as err:
        return f"cannot be read ({err.strerror or type(err).__name__})"
    if size == 0:
        return "is empty (0 bytes)"
    if _is_zip(path) and _zip_broken(path):  # torch's format: a zip archive, its end cut off
        return "is a PyTorch archive cut short or damaged (truncated?)"
    if isinstance(exc, EOFError) or "failed finding central directory" in str(exc) \
            or isinstance(exc, zipfile.BadZipFile):
        return "ends early (truncated?)"
    if isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in str(exc) \
            or "invalid load key" in str(exc):
        return "is not a PyTorch checkpoint of plain tensors"
    if isinstance(exc, OSError):
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("Error(s) in loading state_dict"):
        return f"does not fit this network ({(lines[1:] or lines)[0][:160]})"
    if isinstance(exc, KeyError | ValueError | UnicodeDecodeError | AttributeError):
        return "is not a PyTorch checkpoint"  # what torch's legacy unpickler trips over
    first = (lines or [type(exc).__name__])[0][:160]
    return f"cannot be read ({type(exc).__name__}: {first})"


def _is_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _zip_broken(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is not None
    except (zipfile.BadZipFile, OSError, EOFError):
        return True


def load_tensors(path: Path | str, what: str, map_location: Any = "cpu") -> Any:
    """`torch.load(path, weights_only=True)`: tensors and plain containers only, never code.
    Any failure is one BenchError naming `what` and the file."""
    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - whatever torch raises, the file is named
        raise BenchError(f"{what} {path} {unreadable_reason(path, exc)}") from None
