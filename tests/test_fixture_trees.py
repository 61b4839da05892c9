"""tests/fixtures_real.fixed_tree: a fixture tree's folder is named by the files it holds, so
the pinned real-layout numbers (whose stage keys include the data root) move only when the
fixtures' bytes do, never when tests/fixtures_real.py is edited otherwise."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest

from tests.fixtures_real import fixed_tree, tree_hash


@pytest.fixture
def temp_root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    return tmp_path / "wsss-bench-test-fixtures"


def _write(files: dict[str, bytes]):
    def make(root: Path) -> None:
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
    return make


def test_the_folder_is_named_by_the_relative_paths_and_bytes_it_holds(temp_root):
    files = {"b/y.txt": b"yy", "a.txt": b"x"}
    first = fixed_tree("t", _write(files))
    # by hand: a.txt before b/y.txt, each path and content length-prefixed (8 bytes, big-endian)
    h = hashlib.sha256()
    for part in (b"a.txt", b"x", b"b/y.txt", b"yy"):
        h.update(len(part).to_bytes(8, "big") + part)
    assert first == temp_root / f"t-{h.hexdigest()[:16]}" and tree_hash(first) == h.hexdigest()[:16]
    assert (first / "b" / "y.txt").read_bytes() == b"yy"
    # built again (another session, the same bytes from other code): the same folder, kept
    marker = first / "a.txt"
    inode = marker.stat().st_ino
    assert fixed_tree("t", _write(dict(reversed(files.items())))) == first
    assert marker.stat().st_ino == inode
    # other bytes, or the same bytes under another path: another folder
    assert fixed_tree("t", _write({**files, "a.txt": b"z"})) != first
    assert fixed_tree("t", _write({"b/y.txt": b"yy", "c.txt": b"x"})) != first
    assert len(list(temp_root.glob("t-*"))) == 3 and not list(temp_root.glob(".t.*"))  # no build left


def test_a_build_that_fails_leaves_nothing_and_a_killed_one_is_cleared(temp_root):
    def crash(root: Path) -> None:
        _write({"a.txt": b"half"})(root)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        fixed_tree("t", crash)
    assert [p.name for p in temp_root.iterdir()] == ["t.lock"]
    killed = temp_root / ".t.999999.tmp"  # a session killed mid-build
    _write({"a.txt": b"half"})(killed)
    root = fixed_tree("t", _write({"a.txt": b"x"}))
    assert not killed.exists() and sorted(p.name for p in temp_root.iterdir()) == [root.name, "t.lock"]
