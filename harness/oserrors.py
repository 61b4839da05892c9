"""What the disk refused, in the user's words: the path and the cause, in one line.

A full disk, a read-only or permission-denied folder, a directory where a file was expected:
each names the path it concerns and the cause (never an internal function name), and a
write that fails leaves no temporary file behind (`write_text_atomic`, `saving`).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import BenchError

CAUSES = {
    errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
    errno.EPERM: "permission denied", errno.EISDIR: "is a directory",
    errno.EFBIG: "file too large",
}  # any other errno: the OS's own words (strerror)
# what torch.save's C++ writer says when the OS refuses a write (it raises RuntimeError)
_TORCH_WRITE_FAILURES = ("PytorchStreamWriter", "inline_container", "file write failed",
                         "unexpected pos")


def os_cause(exc: BaseException, where: Path | None = None) -> str:
    """A few words on why the OS refused: its errno in words, or for torch's writer (which
    drops the errno) what the folder `where` shows (no free space), else its first line."""
    if isinstance(exc, OSError):
        return CAUSES.get(exc.errno, exc.strerror or type(exc).__name__)
    if where is not None and _full(where):
        return CAUSES[errno.ENOSPC]
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"the write failed ({first[:160]})"


def is_write_failure(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or (isinstance(exc, RuntimeError) and any(
        s in str(exc) for s in _TORCH_WRITE_FAILURES))


def _full(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 20


def unwritable(what: str, path: Path, exc: BaseException, temp: Path | None = None) -> BenchError:
    """One line: `what path: cannot write (cause)`. The path the OS names where it is not
    `temp`, the temporary file the write went through (a folder it could not make, say)."""
    named = getattr(exc, "filename", None)
    path = Path(named) if named and (temp is None or Path(named) != temp) else Path(path)
    folder = path if path.is_dir() else path.parent
    return BenchError(f"{what} {path}: cannot write ({os_cause(exc, folder)})")


def write_text_atomic(path: Path, text: str, what: str = "file") -> None:
    """`text` into `path` through a temporary file beside it; on failure the temporary file
    is removed and one line names `path` and the cause."""
    path = Path(path)
    if path.is_dir():
        raise BenchError(f"{what} {path} is a directory; give a file name")
    with saving(path, what) as tmp:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)


@contextlib.contextmanager
def saving(path: Path, what: str) -> Iterator[Path]:
    """Yield a temporary name beside `path`; on success it becomes `path`, on any failure it
    is removed (a write failure as one line naming `path` and the cause)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if is_write_failure(exc):
            raise unwritable(what, path, exc, tmp) from None
        raise


def save_figure(fig: Any, path: Path, what: str = "figure", **savefig: Any) -> Path:
    """`fig.savefig` into `path` (a .png where it has no suffix) through `saving`: a write the
    OS refuses is one line naming `path` and the cause, and leaves no partial file."""
    path = Path(path)
    path = path if path.suffix else path.with_suffix(".png")
    if path.is_dir():
        raise BenchError(f"{what} {path} is a directory; give a file name")
    with saving(path, what) as tmp:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(tmp, format=path.suffix[1:], **savefig)  # the format: tmp ends in .tmp
    return path
