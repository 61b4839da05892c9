"""Make torchvision importable on a CPU torch.

The only torchvision wheel matching torch 2.13.0 is a CUDA build whose compiled ops do
not load on the CPU torch, and its import then fails on `torchvision::nms` missing.
open_clip, timm and transformers only use its pure-Python parts, so registering the two
op schemas it looks up at import time is enough. Where the ops load, this is a no-op.
Importing this module does nothing; the schemas are registered on the first call (the
hub-offline setting that used to ride here is `harness.process.configure_process`'s).
"""

from __future__ import annotations

_done = False


def ensure_torchvision() -> None:
    """Import torchvision, registering missing op schemas first if its C ops fail to load."""
    global _done
    if _done:
        return
    import torch

    if not _torchvision_ops_load():
        lib = torch.library.Library("torchvision", "DEF")  # noqa: F841 - kept alive below
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define(
            "qnms(Tensor dets, Tensor scores, float iou_threshold, float scale, int zero_point)"
            " -> Tensor"
        )
        globals()["_torchvision_lib"] = lib
    import torchvision  # noqa: F401

    _done = True


def _torchvision_ops_load() -> bool:
    """True where torchvision's compiled extension loads into this torch."""
    import importlib.util
    from pathlib import Path

    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return True  # no torchvision: let the import below raise its own clear error
    for lib in Path(spec.origin).parent.glob("_C*.so"):
        try:
            torch.ops.load_library(str(lib))
            return True
        except (OSError, RuntimeError):
            return False
    return False
