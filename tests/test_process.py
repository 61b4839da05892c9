"""Importing the library changes nothing about the process; what a run sets for itself
(random states, glibc's mmap threshold) is put back when it ends."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "HF_HUB_OFFLINE",
                                                               "TRANSFORMERS_OFFLINE")}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**clean, **env},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_importing_the_library_leaves_the_environment_and_random_states_alone():
    """No environment variable, no torch seed, and Python's and numpy's random states as they
    were (rich.style draws from `random` when it is first imported: harness/__init__.py)."""
    changed = json.loads(_python(
        "import json, os, sys, random; import numpy as np; before = dict(os.environ)\n"
        "py, npy = random.getstate(), np.random.get_state()[1].tolist()\n"
        "import harness, methods, reports, sweeps, cli\n"
        "import harness.runner, harness.loop, harness.cache, harness.compat, sweeps.worker\n"
        "import cli.summary, sweeps.view, reports.render, harness.progress\n"
        "after = dict(os.environ)\n"
        "print(json.dumps({'env': {k: v for k, v in after.items() if before.get(k) != v},"
        " 'torch_seeded': 'torch' in sys.modules and sys.modules['torch'].initial_seed() < 2**20,"
        " 'random_moved': random.getstate() != py,"
        " 'numpy_moved': np.random.get_state()[1].tolist() != npy}))"))
    assert changed == {"env": {}, "torch_seeded": False, "random_moved": False,
                       "numpy_moved": False}


def test_configure_process_sets_what_a_run_needs_and_keeps_what_the_user_set():
    got = json.loads(_python(
        "import json, os\n"
        "from harness.process import configure_process\n"
        "configure_process(threads=1)\n"
        "import torch\n"
        "print(json.dumps([os.environ['OMP_WAIT_POLICY'], os.environ['HF_HUB_OFFLINE'],"
        " torch.get_num_threads()]))", OMP_WAIT_POLICY="ACTIVE"))
    assert got == ["ACTIVE", "1", 1]


def test_the_cli_configures_its_process_before_torch_loads():
    # an import hook notes OMP_WAIT_POLICY at the moment `bench list` first imports torch
    got = _python(
        "import os, sys\n"
        "seen = []\n"
        "class Spy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' and not seen:\n"
        "            seen.append(os.environ.get('OMP_WAIT_POLICY'))\n"
        "sys.meta_path.insert(0, Spy())\n"
        "sys.argv = ['bench', 'list']\n"
        "import cli\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print(seen)")
    assert got == "['PASSIVE']"


MMAP_PROBE = """
import ctypes, sys
from harness.memory import large_tensors_from_mmap
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def from_mmap(mib):
    # the IS_MMAPPED bit (0x2) of the chunk's size word, just before the pointer; each probe
    # asks more than any block freed before it, so the heap cannot serve it from a free chunk
    ptr = libc.malloc(mib << 20)
    try:
        return bool(ctypes.c_size_t.from_address(ptr - 8).value & 2)
    finally:
        libc.free(ptr)

seen = [from_mmap(3)]  # glibc's start: 128 KiB, then it slides up to the freed 3 MiB
with large_tensors_from_mmap():
    seen.append(from_mmap(5))  # the run's fixed 1 MiB
seen.append(from_mmap(7))  # after: put back, from the heap
print(seen)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_large_tensors_come_from_mmap_only_inside_the_run_that_asks():
    assert _python(MMAP_PROBE) == "[True, True, False]"


def test_a_stage_build_seeds_inside_and_puts_the_callers_random_state_back(tmp_path):
    from harness.cache import StageCache

    torch.manual_seed(123), np.random.seed(5), random.seed(7)
    expected = torch.rand(3), np.random.rand(), random.random()
    torch.manual_seed(123), np.random.seed(5), random.seed(7)
    drawn = []

    def build(folder):
        drawn.append(torch.rand(2))
        np.random.seed(0), random.seed(0)  # what third-party code inside may do

    folder, key = StageCache(tmp_path, log=lambda m: None).get_or_build("s", {"a": 1}, build)
    got = torch.rand(3), np.random.rand(), random.random()
    assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:]
    # and what the build drew depends on its key alone, not on the caller's state
    from harness.cache import stage_seed

    assert torch.equal(drawn[0], torch.rand(2, generator=torch.Generator().manual_seed(stage_seed(key))))
