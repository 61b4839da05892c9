"""A CAM baseline from a checkpoint file (`--cam-weights`): this harness's own CamNet state
dict, or the IRN / CLIMS / QA-CLIMS ResNet-50 CAM format (the authors' res50_cam.pth).

The reference format (CVI-SZU/CLIMS net/resnet50_cam.py, `Net`): the torchvision-style
ResNet-50 under `resnet50.*` (conv1, bn1, layer1-4 with conv1-3/bn1-3/downsample.0-1),
the same modules again under `stage1-4.*` and `backbone.N.*` (ModuleList aliases), and a
bias-free 1×1 `classifier.weight` (K, 2048, 1, 1). timm's resnet50 names its layers the
same way, so `resnet50.X` → `backbone.net.X`; the aliases are dropped. Note the reference
network has output stride 16 (layer4 stride 1), this harness's timm ResNet-50 32: the
weights are the same tensors, the CAM grid is coarser.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from harness.artefacts import file_sha256
from harness.errors import BenchError
from harness.generator import read_state_dict

REFERENCE_MARKER = "resnet50.conv1.weight"


def to_camnet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reference ResNet-50 CAM keys renamed to CamNet's; CamNet's own kept as they are."""
    if REFERENCE_MARKER not in state:
        return state
    out = {f"backbone.net.{k.removeprefix('resnet50.')}": v for k, v in state.items()
           if k.startswith("resnet50.")}
    if "classifier.weight" in state:
        out["classifier.weight"] = state["classifier.weight"]
    return out


def load_cam_checkpoint(model: nn.Module, path: str | Path) -> str:
    """Load the CAM baseline at `path` into `model` (every tensor); return the file's sha256.
    A file that does not fit the model is one line naming the first mismatch."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"--cam-weights file {path} does not exist")
    state = to_camnet_keys(read_state_dict(path, "CAM baseline"))
    own = model.state_dict()
    needed = [k for k in own if not k.endswith("num_batches_tracked")]
    missing = [k for k in needed if k not in state]
    if missing:
        raise BenchError(f"--cam-weights {path} does not fit this CAM network: {len(missing)} "
                         f"tensors missing (first: {missing[0]}); expected this harness's CamNet "
                         "or the IRN/CLIMS ResNet-50 CAM format (resnet50.*, classifier.weight)")
    for k in needed:
        if tuple(state[k].shape) != tuple(own[k].shape):
            raise BenchError(f"--cam-weights {path}: {k} has shape {tuple(state[k].shape)}, this "
                             f"network needs {tuple(own[k].shape)} (another backbone or "
                             "number of classes?)")
    model.load_state_dict({**own, **{k: state[k].to(own[k].dtype) for k in needed}})
    return file_sha256(path)
