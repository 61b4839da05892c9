"""The engine: config, registry, data, the training loop, stage cache, results store,
evaluation, teachers and tracking."""

import os

# torch's OpenMP threads spin while they wait for work. When another process holds a core
# (a second sweep or `bench reproduce --workers` process, tests beside a run) the spinning
# threads steal it from the one doing the work: a 2-epoch synth qa-clims run took 68–90 s
# instead of 14 s (benchmarks/omp_wait.py). Set before torch starts its thread pool; a
# value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
