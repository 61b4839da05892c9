"""Give freed tensor memory back to the OS (Linux/glibc only).

glibc raises its mmap threshold after the first large free and then serves tensors from its
heap, which it does not shrink by itself: one stage's activations stay resident through every
later stage and add up (benchmarks/real_rss.py). Two measures, measured on the 2-core CPU:

- `mmap_large_tensors()`, on real-size images only: blocks of 1 MB and more come from mmap, so
  a freed one leaves at once (peak RSS of issue 12's semples command 3901 → 1881 MB; with 8 MB
  blocks 2285, with 2 MB 2039, trim alone 2390). On synth's 64-px images it mmaps the many
  small activations of every step: `bench run semples/match-only` went from 21–25 s to 42–47 s
  wall (sys 1–4 s → 30–37 s), so synth runs keep glibc's own threshold.
- `trim_heap()`: once a stage ends, what the heap freed goes back too (every dataset).
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
LARGE_TENSOR_BYTES = 1 << 20


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def mmap_large_tensors() -> None:
    """Serve blocks of LARGE_TENSOR_BYTES and more from mmap (fixed, not glibc's sliding one)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, LARGE_TENSOR_BYTES)


def trim_heap() -> None:
    """Return freed heap pages to the OS; a no-op where glibc is not there."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
