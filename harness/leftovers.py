"""What killed processes leave behind, recognised by the owner tag in its name or folder.

Every temporary file or folder this harness writes is named (or, for a run folder, holds
an `owner` file) with `host.pid` of its writer. A leftover is one whose writer is gone:
on this host, no process with that pid is alive; a leftover of another host is never
judged from here (its process may be running there, the cache being shared).
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

OWNER_FILE = "owner"
_TAG = re.compile(r"(?P<host>[^./]+)\.(?P<pid>\d+)")
# a folder without an owner file (an older version wrote it) counts as left behind once
# nothing in it changed for this long
ORPHAN_AGE_S = 3600


def this_host() -> str:
    return socket.gethostname().replace(".", "_")


def owner_tag() -> str:
    """`host.pid` of this process."""
    return f"{this_host()}.{os.getpid()}"


def alive(tag: str) -> bool | None:
    """Whether the writer `host.pid` still runs: True/False on this host, None elsewhere."""
    m = _TAG.fullmatch(tag.strip())
    if not m:
        return None
    if m["host"] != this_host():
        return None
    pid = int(m["pid"])
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _tag_in_name(name: str) -> str | None:
    """The owner tag in `.<key>.<host>.<pid>.tmp` or `<stem>.<host>.<pid>.tmp[.ext]`."""
    m = re.search(r"\.([^./]+\.\d+)\.tmp(\.[a-z]+)?$", name)
    return m.group(1) if m else None


def is_left_behind(path: Path, orphans: bool = False) -> bool:
    """A temporary file/folder (owner in its name) or an unfinished run folder (owner file)
    whose writer is gone; `orphans`: also a folder with no owner untouched for an hour."""
    tag = _tag_in_name(path.name)
    if tag is None and path.is_dir():
        try:
            tag = (path / OWNER_FILE).read_text()
        except OSError:
            return orphans and _age(path) > ORPHAN_AGE_S
    if tag is None:
        return False
    return alive(tag) is False


def _age(path: Path) -> float:
    try:
        newest = max([path.stat().st_mtime, *(p.stat().st_mtime for p in path.rglob("*"))])
    except OSError:
        return 0.0
    return time.time() - newest


def cache_leftovers(cache_dir: Path, orphans: bool = False) -> list[Path]:
    """Temporary stage folders, epoch checkpoints, teacher files and data arrays that killed
    writers were writing under a cache folder."""
    out: list[Path] = []
    stages = cache_dir / "stages"
    if stages.is_dir():
        for stage in stages.iterdir():
            if not stage.is_dir():
                continue
            out += [p for p in stage.glob(".*.tmp") if is_left_behind(p, orphans)]
            out += [p for p in stage.glob(".*.partial/*.tmp") if is_left_behind(p, orphans)]
    teachers = cache_dir / "teachers"
    if teachers.is_dir():
        out += [p for p in teachers.glob("*.tmp") if is_left_behind(p, orphans)]
    out += [p for p in cache_dir.glob("*/*.tmp.npz") if is_left_behind(p, orphans)]  # data
    return sorted(out)


def run_leftovers(runs_dir: Path, orphans: bool = False) -> list[Path]:
    """`.inprogress-*` folders of killed runs."""
    if not runs_dir.is_dir():
        return []
    return sorted(p for p in runs_dir.glob(".inprogress-*")
                  if p.is_dir() and is_left_behind(p, orphans))
