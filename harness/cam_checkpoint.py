"""A CAM baseline from a checkpoint file (`--cam-weights`): this harness's own CamNet state
dict, the IRN / CLIMS / QA-CLIMS ResNet-50 CAM format (the authors' res50_cam.pth), or
WeakTr's DeiT-S CAM network (the checkpoint SemPLeS starts its generator from).

The reference format (CVI-SZU/CLIMS net/resnet50_cam.py, `Net`): the torchvision-style
ResNet-50 under `resnet50.*` (conv1, bn1, layer1-4 with conv1-3/bn1-3/downsample.0-1),
the same modules again under `stage1-4.*` and `backbone.N.*` (ModuleList aliases), and a
bias-free 1×1 `classifier.weight` (K, 2048, 1, 1). timm's resnet50 names its layers the
same way, so `resnet50.X` → `backbone.net.X`; the aliases are dropped. Note the reference
network has output stride 16 (layer4 stride 1), this harness's timm ResNet-50 32: the
weights are the same tensors, the CAM grid is coarser.

The WeakTr format (hustvl/WeakTr main.py:404-465 and kuongan/SemPLeS main1.py, which
`--resume`s it: `torch.save({'model': model.state_dict(), 'epoch': ..., ['miou': ...]})`;
the model is models.py `WeakTr`, deit_small_WeakTr_patch16_224):
- `patch_embed.proj.*`, `blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*`: timm's
  DeiT-S names (vision_transformer.py Block, Attention, Mlp) → `backbone.net.*` as they are;
- `cls_token` (1, K, 384), one per class → `backbone.net.reg_token` (K register tokens of the
  `deit_small_weaktr` backbone, harness/generator.py: the same place in the sequence);
- `pos_embed` (1, K + 196, 384), the class tokens' entries first → `backbone.net.pos_embed`;
- `head.weight` (K, 384, 3, 3) and `head.bias` (K,) → `classifier.weight`/`.bias`, the
  backbone's 3×3 head;
- left out: `norm.*` (WeakTr's forward_features never applies it: it is the ImageNet DeiT's,
  untrained) and `adaptive_attention_fusion.*` (its attention fusion, the fine CAM, which
  CamNet does not compute). So the loaded network's maps are WeakTr's coarse CAM, exactly
  at 224 px (tests/test_released.py). At other sizes both resize the 14×14 position grid
  bicubically, WeakTr by `scale_factor=(w0 + 0.1) / 14` without antialiasing
  (`interpolate_pos_encoding`), timm to the grid's size, antialiased when shrinking: close,
  not bit-equal.
It loads into `--set backbone=deit_small_weaktr` only: into the plain DeiT-S (one CLS token,
final norm, 1×1 classifier) no tensor-for-tensor mapping exists, and an approximate one would
score a network that is not WeakTr's, so that is one line saying which backbone to use.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from harness.artefacts import file_sha256
from harness.errors import BenchError
from harness.generator import read_state_dict

REFERENCE_MARKER = "resnet50.conv1.weight"
WEAKTR_DROPPED = ("norm.", "adaptive_attention_fusion.")  # see the module docstring


def is_weaktr(state: dict) -> bool:
    """WeakTr's layout: DeiT blocks, per-class CLS tokens and a 4-d (3×3 conv) head."""
    head = state.get("head.weight")
    return ("blocks.0.attn.qkv.weight" in state and "cls_token" in state
            and isinstance(head, torch.Tensor) and head.dim() == 4)


def weaktr_to_camnet(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """WeakTr's keys renamed to the `deit_small_weaktr` CamNet's (module docstring)."""
    out = {}
    for k, v in state.items():
        if k == "cls_token":
            out["backbone.net.reg_token"] = v
        elif k in ("head.weight", "head.bias"):
            out["classifier." + k.removeprefix("head.")] = v
        elif not k.startswith(WEAKTR_DROPPED):
            out["backbone.net." + k] = v
    return out


def _network(own: dict) -> str:
    """What the target CamNet is, from its own keys."""
    if "backbone.net.reg_token" in own:
        return "weaktr"
    if "backbone.net.cls_token" in own:
        return "deit"
    return "resnet" if "backbone.net.conv1.weight" in own else "other"


_EXPECTED = {
    "weaktr": "this harness's deit_small_weaktr CamNet or WeakTr's DeiT-S checkpoint "
              "({'model': state dict} with cls_token, pos_embed, blocks.*, head.weight 3×3)",
    "deit": "this harness's DeiT-S CamNet (for WeakTr/SemPLeS checkpoints use "
            "--set backbone=deit_small_weaktr)",
    "resnet": "this harness's ResNet-50 CamNet or the IRN/CLIMS ResNet-50 CAM format "
              "(resnet50.*, classifier.weight)",
    "other": "this harness's CamNet of the run's backbone",
}


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
    state = read_state_dict(path, "CAM baseline")
    own = model.state_dict()
    network = _network(own)
    if is_weaktr(state):
        if network != "weaktr":
            raise BenchError(f"--cam-weights {path} is WeakTr's DeiT-S CAM network (one CLS token "
                             "per class, a 3×3 head): load it with --set backbone=deit_small_weaktr")
        state = weaktr_to_camnet(state)
    elif REFERENCE_MARKER in state and network != "resnet":
        raise BenchError(f"--cam-weights {path} is the IRN/CLIMS ResNet-50 CAM format: it needs "
                         f"--set backbone=resnet50; expected {_EXPECTED[network]}")
    state = to_camnet_keys(state)
    needed = [k for k in own if not k.endswith("num_batches_tracked")]
    missing = [k for k in needed if k not in state]
    if missing:
        raise BenchError(f"--cam-weights {path} does not fit this CAM network: {len(missing)} "
                         f"tensors missing (first: {missing[0]}); expected {_EXPECTED[network]}")
    for k in needed:
        if not isinstance(state[k], torch.Tensor):
            raise BenchError(f"--cam-weights {path}: {k} is a {type(state[k]).__name__}, not a "
                             f"tensor; expected {_EXPECTED[network]}")
        if tuple(state[k].shape) != tuple(own[k].shape):
            raise BenchError(f"--cam-weights {path}: {k} has shape {tuple(state[k].shape)}, this "
                             f"network needs {tuple(own[k].shape)} (another backbone or "
                             "number of classes?)")
    model.load_state_dict({**own, **{k: state[k].to(own[k].dtype) for k in needed}})
    return file_sha256(path)
