"""Process-wide settings, applied by the entry points and never on import.

Importing `harness`, `methods`, `sweeps` or `reports` changes nothing about the process: no
environment variable, no allocator setting, no random state (tests/test_process.py checks
it). What a process needs is set here, once, by whoever owns the process: the `bench` CLI
(cli.main), a sweep worker (sweeps.worker.main), a `bench reproduce --workers` worker and
tests/conftest.py. A value the user set in the environment always wins.

Allocator settings are not here: glibc's mmap threshold is a per-run choice (real-size
images only), set and put back around that run by `harness.memory.large_tensors_from_mmap`.
"""

from __future__ import annotations

import os

# Every setting configure_process may put into os.environ, with its value.
ENVIRONMENT = {
    # torch's OpenMP threads spin while they wait for work. When another process holds a
    # core (a second sweep or `bench reproduce --workers` process, tests beside a run) the
    # spinning threads steal it from the one doing the work: a 2-epoch synth qa-clims run
    # took 68-90 s instead of 14 s (benchmarks/omp_wait.py). libgomp reads it once, when
    # torch loads, so it must be set before the first `import torch`.
    "OMP_WAIT_POLICY": "PASSIVE",
    # Nothing is fetched at run time: every Hugging Face hub lookup (open_clip, timm,
    # transformers) fails fast instead of retrying over the network.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


def configure_process(threads: int | None = None) -> None:
    """Set this process up for benchmark runs (call it before anything imports torch).

    `threads`: torch's intra-op thread count in this process (a child process takes its own,
    from OMP_NUM_THREADS); None leaves torch's default or the user's OMP_NUM_THREADS and does
    not load torch. Float reductions on CPU depend on the count, so bit-identical reruns need
    the same one (every run records it as `torch_threads`)."""
    for key, value in ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1 (got {threads})")
        import torch

        torch.set_num_threads(threads)
