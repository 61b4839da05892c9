"""Give freed tensor memory back to the OS (Linux/glibc only).

glibc raises its mmap threshold after the first large free and then serves tensors from its
heap, which it does not shrink by itself: one stage's activations stay resident through every
later stage and add up (benchmarks/real_rss.py). Two measures, measured on the 2-core CPU:

- `large_tensors_from_mmap()`, around one run on real-size images only: blocks of 1 MB and
  more come from mmap, so a freed one leaves at once (peak RSS of benchmarks/real_rss.py's semples command
  3901 → 1881 MB; with 8 MB blocks 2285, with 2 MB 2039, trim alone 2390). On synth's 64-px
  images it mmaps the many small activations of every step: `bench run semples/match-only`
  went from 21–25 s to 42–47 s wall (sys 1–4 s → 30–37 s), so synth runs keep glibc's own
  threshold, and the setting is put back when the real-size run ends (a later synth run in
  the same process, a sweep worker's or a test session's, would otherwise pay the 2x).
- `trim_heap()`: once a stage ends, what the heap freed goes back too (every dataset).
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
from collections.abc import Iterator

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
LARGE_TENSOR_BYTES = 1 << 20
# glibc starts at a 128 KiB threshold and slides it up to the size of each freed mmapped
# block, up to DEFAULT_MMAP_THRESHOLD_MAX (4 MiB · sizeof(long): 32 MiB on 64-bit). mallopt
# cannot turn the sliding back on, so a run's setting is put back as that ceiling: freed
# blocks below it go back to the heap, as they do once glibc's own threshold has slid up
# (the difference: blocks between where it had slid to and the ceiling now use the heap too).
SLIDING_CEILING_BYTES = 4 * 1024 * 1024 * ctypes.sizeof(ctypes.c_long)


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def set_mmap_threshold(nbytes: int) -> bool:
    """Blocks of `nbytes` and more come from mmap (a fixed threshold); False without glibc."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, nbytes))


@contextlib.contextmanager
def large_tensors_from_mmap() -> Iterator[None]:
    """Within: blocks of LARGE_TENSOR_BYTES and more come from mmap. After: the threshold is
    glibc's sliding ceiling (SLIDING_CEILING_BYTES), so later runs allocate as before."""
    changed = set_mmap_threshold(LARGE_TENSOR_BYTES)
    try:
        yield
    finally:
        if changed:
            set_mmap_threshold(SLIDING_CEILING_BYTES)


def trim_heap() -> None:
    """Return freed heap pages to the OS; a no-op where glibc is not there."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
