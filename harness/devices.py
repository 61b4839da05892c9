"""Device slots for several worker processes (sweep workers, `bench reproduce --workers`).

Torch-free on purpose: a launcher splits the devices before any worker imports torch."""

from __future__ import annotations

from harness.errors import BenchError


def parse_devices(devices: str, workers: int) -> list[tuple[str, str | None]]:
    """`cpu`, `auto` or `cuda:0,cuda:1` → per worker (device inside the worker,
    CUDA_VISIBLE_DEVICES; None leaves it as the environment says)."""
    items = [d.strip() for d in (devices or "cpu").split(",") if d.strip()]
    out = []
    for k in range(workers):
        d = items[k % len(items)]
        if d == "cpu":
            out.append(("cpu", ""))
        elif d == "auto":
            out.append(("auto", None))  # the worker takes cuda when it sees one, else cpu
        elif d == "cuda":
            out.append(("cuda", None))  # all visible GPUs, as the environment says
        elif d.startswith("cuda:") and d[5:].isdigit():
            out.append(("cuda:0", d[5:]))
        else:
            raise BenchError(f"--devices takes cpu, auto, cuda or cuda:N[,cuda:M…] (got {d!r})")
    return out
