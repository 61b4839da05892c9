"""The environment fingerprint every run record carries: what can move a number between two
machines that ran the same config (the authors' trackers are full of "my mIoU is 1–2 points
lower" threads where nobody could tell what differed: a GPU kind, a torch version).

Package versions are read from the installed distributions' metadata, so fingerprinting
imports none of them; a package that is not installed is recorded as None.
"""

from __future__ import annotations

import platform
from functools import lru_cache
from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.record import RunRecord

# distribution name -> the record's key: the dependencies whose versions change numbers
PACKAGES = {
    "open_clip_torch": "open_clip", "timm": "timm", "transformers": "transformers",
    "numpy": "numpy", "pillow": "pillow", "pydensecrf2": "pydensecrf2",
    "segmentation-models-pytorch": "smp",
}
# the fields two records must share for their numbers to be comparable bit for bit (the host
# name and thread count are recorded but not compared: threads are a run setting)
COMPARED = ("python", "torch", "cuda", "cudnn", "gpu", "cpu", *PACKAGES.values())


def package_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; elsewhere platform's word for it)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fingerprint() -> dict[str, Any]:
    """Python, torch, CUDA and cuDNN, the GPU name and count, the CPU model, torch's thread
    count and the versions of the number-moving dependencies."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "cpu": cpu_model(), "torch_threads": torch.get_num_threads(),
        **{key: package_version(dist) for dist, key in PACKAGES.items()},
    }


def summary_line(env: dict[str, Any] | None) -> str:
    """One line for `bench report --run`: "python 3.12.3, torch 2.13.0+cpu, …"."""
    if not env:
        return "not recorded (a record older than the fingerprint)"
    return ", ".join(f"{k} {env[k]}" for k in (*COMPARED, "gpu_count", "torch_threads")
                     if env.get(k) is not None)


def differing(envs: list[dict[str, Any] | None]) -> list[str]:
    """The compared fields on which these records' environments differ (a record without a
    fingerprint differs on `environment`)."""
    if any(env is None for env in envs):
        return ["environment"] if len(envs) > 1 and not all(env is None for env in envs) else []
    return [k for k in COMPARED if len({str(env.get(k)) for env in envs}) > 1]


def mixed_line(records: list[RunRecord]) -> str:
    """One warning line when `records` come from different environments, else ""."""
    fields = differing([rec.environment for rec in records])
    if not fields:
        return ""
    return (f"rows come from different environments (they differ in {', '.join(fields)}): "
            "numbers may move with the environment alone")
