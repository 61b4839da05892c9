"""Mask generators: a backbone's feature map and a 1×1 classifier give per-class maps.

`maps` are the raw class scores per location; `forward` pools them into image logits
(the CAM classifier's output); `cam` is their ReLU, what every method's inference reads.
Methods turn maps into training masks their own way (sigmoid, min-max).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from harness.cam_model import pixel_maps
from harness.compat import ensure_torchvision
from harness.errors import BenchError

# On CPU a ViT generator recomputes each block's activations in backward instead of keeping
# all twelve (timm grad checkpointing): DeiT-S at 448 px, batch 8 keeps ~1.4 GB instead of
# ~2.6 GB (benchmarks/real_rss.py), for one more forward pass. Same numbers: LayerNorm has
# no running statistics and DeiT-S no dropout. Not for CNNs: BatchNorm would update its
# running statistics twice. CUDA keeps everything (speed first; the memory is there).
CHECKPOINT_ON_CPU = True

# WeakTr's DeiT-S CAM network, the generator SemPLeS starts from (hustvl/WeakTr models.py
# `WeakTr`; kuongan/SemPLeS models123.py is the same class). It is timm's DeiT-S with three
# changes, each kept here so that WeakTr's released checkpoint loads tensor for tensor
# (harness/cam_checkpoint.py) and computes WeakTr's own coarse CAM:
# - one CLS token per class: `cls_token` (1, K, 384), before the patches, each with its own
#   position embedding (`pos_embed` (1, K + 196, 384)); here timm's register tokens
#   (class_token=False, reg_tokens=K: the same order, position embeddings over them too);
# - no final LayerNorm: `forward_features` returns the blocks' output as it is (the `norm`
#   its base class builds is never applied), here final_norm=False;
# - the head is a 3×3 Conv2d with bias over the patch grid (padding 1), not a 1×1 classifier:
#   `x_patch = self.head(x_patch)`, whose mean is `coarse_cam_pred`.
# What this network does not have is WeakTr's attention fusion (`adaptive_attention_fusion`,
# its fine CAM from the attention maps): its maps are WeakTr's coarse CAM (attention_type
# 'patchcam'), what every CamNet's are.
WEAKTR_BACKBONE = "deit_small_weaktr"
WEAKTR_BASE = "deit_small_patch16_224"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SynthCNN(nn.Module):
    """A small CNN for 64-px synth images: stride 4, receptive field wide enough to see context."""

    out_channels = 128
    stride = 4

    def __init__(self) -> None:
        super().__init__()

        def block(i: int, o: int, stride: int, dilation: int = 1) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(i, o, 3, stride, dilation, dilation, bias=False),
                                 nn.BatchNorm2d(o),
                                 nn.ReLU(inplace=True))

        self.body = nn.Sequential(block(3, 32, 2), block(32, 64, 2), block(64, 96, 1),
                                  block(96, 128, 1, dilation=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TimmFeatures(nn.Module):
    """A timm backbone's last feature map; ViTs' patch tokens are laid back on their grid.

    Any image size: a ViT pads the image on the right and bottom to the next patch multiple
    (timm `dynamic_img_pad`, zeros after normalisation: the mean colour) and interpolates its
    position embeddings to the grid (`dynamic_img_size`, bicubic as WeakTr's DeiT,
    hustvl/WeakTr models.py `interpolate_pos_encoding`); a CNN's padded convolutions give a
    grid of ceil(size / stride) cells. Either way cell (i, j) covers pixels
    [i·stride, (i+1)·stride), which `CamNet.pixel_maps` uses to crop the map back.
    """

    def __init__(self, name: str, class_tokens: int = 0):
        super().__init__()
        ensure_torchvision()
        import timm

        self.is_vit = name.startswith("deit") or name.startswith("vit")
        if self.is_vit:
            # class_tokens = K: WeakTr's token layout (one CLS token per class, no final norm)
            weaktr = ({"class_token": False, "reg_tokens": class_tokens, "global_pool": "avg",
                       "final_norm": False} if class_tokens else {})
            self.net = timm.create_model(name, pretrained=False, num_classes=0,
                                         dynamic_img_size=True, dynamic_img_pad=True, **weaktr)
            self.out_channels = self.net.num_features
            self.stride = int(self.net.patch_embed.patch_size[0])
        else:
            self.net = timm.create_model(name, pretrained=False, features_only=True, out_indices=[-1])
            self.out_channels = self.net.feature_info.channels()[-1]
            self.stride = int(self.net.feature_info.reduction()[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.is_vit:
            return self.net(x)[-1]
        self.net.set_grad_checkpointing(CHECKPOINT_ON_CPU and self.training
                                        and torch.is_grad_enabled() and x.device.type == "cpu")
        tokens = self.net.forward_features(x)[:, self.net.num_prefix_tokens:]
        h, w = grid_size(x.shape[-2:], self.stride)
        return tokens.transpose(1, 2).reshape(x.shape[0], -1, h, w)


def grid_size(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """Feature-grid cells of an image of `size` pixels: ceil(size / stride) per side."""
    return -(-int(size[0]) // stride), -(-int(size[1]) // stride)


class CamNet(nn.Module):
    def __init__(self, backbone: nn.Module, n_classes: int, head_kernel: int = 1):
        super().__init__()
        self.backbone = backbone
        # 1×1 and bias-free (IRN's classifier); WeakTr's head is 3×3 with bias, padding 1
        self.classifier = nn.Conv2d(backbone.out_channels, n_classes, head_kernel,
                                    padding=head_kernel // 2, bias=head_kernel != 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def maps(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Raw per-class maps (B, K, h, w) from images in [0, 1] (a classifier's maps do not
        depend on the labels: harness.cam_model.CamModel)."""
        return self.classifier(self.backbone((images - self.mean) / self.std))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.maps(images).mean((2, 3))

    def cam(self, images: torch.Tensor) -> torch.Tensor:
        return F.relu(self.maps(images))

    @property
    def stride(self) -> int:
        return self.backbone.stride

    @property
    def n_classes(self) -> int:
        return self.classifier.out_channels

    def pixel_maps(self, maps: torch.Tensor, size: tuple[int, int],
                   out: tuple[int, int] | None = None) -> torch.Tensor:
        """harness.cam_model.pixel_maps at this network's stride."""
        return pixel_maps(maps, self.stride, size, out)

    def param_groups(self, lr: float, head_mult: float) -> list[dict]:
        return [{"params": list(self.backbone.parameters()), "lr": lr},
                {"params": list(self.classifier.parameters()), "lr": lr * head_mult}]


def build_generator(backbone: str, n_classes: int, weights: str | Path | None = None,
                    allow_random: bool = False) -> CamNet:
    """A CamNet; real backbones load ImageNet weights from a local file, never a hub."""
    if backbone == "synth-cnn":
        return CamNet(SynthCNN(), n_classes)
    if weights is None and not allow_random:
        raise BenchError(f"backbone {backbone} needs local ImageNet weights: pass "
                         f"--backbone-weights PATH with {_EXPECTED.get(backbone, 'a timm state dict')} "
                         "(or --allow-random-weights for smoke tests)")
    if backbone == WEAKTR_BACKBONE:
        net = CamNet(TimmFeatures(WEAKTR_BASE, class_tokens=n_classes), n_classes, head_kernel=3)
    else:
        net = CamNet(TimmFeatures(backbone), n_classes)
    if weights is not None:
        if not Path(weights).is_file():
            raise BenchError(f"backbone weights file {weights} does not exist")
        state = read_state_dict(Path(weights), f"backbone {backbone}")
        if backbone == WEAKTR_BACKBONE:
            state = per_class_tokens(state, n_classes)
        missing, _ = net.backbone.net.load_state_dict(state, strict=False)
        if len(missing) > len(state) // 2:
            raise BenchError(f"backbone weights {weights} do not match {backbone} "
                             f"({len(missing)} tensors missing)")
    return net


def per_class_tokens(state: dict[str, torch.Tensor], n_classes: int) -> dict[str, torch.Tensor]:
    """ImageNet DeiT-S weights for WeakTr's layout, as its `--finetune` makes them (hustvl/WeakTr
    main.py:319-347): the one CLS token and its position embedding repeated for each class;
    the ImageNet head and the final norm (WeakTr applies neither) left out."""
    out = {k: v for k, v in state.items() if not k.startswith(("head.", "norm.", "cls_token"))}
    if "cls_token" in state and state["cls_token"].shape[1] == 1:
        out["reg_token"] = state["cls_token"].repeat(1, n_classes, 1)
    pos = state.get("pos_embed")
    if pos is not None and pos.shape[1] % 2 == 1:  # 1 + a square grid of patches
        out["pos_embed"] = torch.cat([pos[:, :1].repeat(1, n_classes, 1), pos[:, 1:]], dim=1)
    return out


_EXPECTED = {
    "resnet50": "ImageNet ResNet-50 weights (torchvision resnet50-19c8e357.pth / "
                "resnet50-0676ba61.pth, or timm resnet50 model.safetensors)",
    "deit_small_patch16_224": "ImageNet DeiT-S weights (deit_small_patch16_224-cd65a155.pth, "
                              "or timm deit_small_patch16_224.fb_in1k model.safetensors)",
    WEAKTR_BACKBONE: "ImageNet DeiT-S weights (deit_small_patch16_224-cd65a155.pth, as WeakTr's "
                     "--finetune; or a WeakTr checkpoint as --cam-weights)",
}


def numpy_scalars() -> list:
    """The numpy globals of a numpy scalar beside the tensors, allowed to `weights_only`: WeakTr's
    checkpoint_best_mIoU.pth stores its mIoU as np.float64 (hustvl/WeakTr main.py:433-437,
    evaluation.py `whole_eval`: np.nanmean · 100). A scalar and its dtype are data, not code.
    Written under numpy 1.x, the scalar's pickled name is numpy.core.multiarray.scalar."""
    import numpy as np

    scalar = (getattr(np, "_core", None) or np.core).multiarray.scalar  # numpy 2 / 1.26
    legacy = "numpy.core.multiarray.scalar"
    named = [] if scalar.__module__ + ".scalar" == legacy else [(scalar, legacy)]
    return [scalar, *named, np.dtype, *(getattr(np.dtypes, n) for n in np.dtypes.__all__)]


def read_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    """A state dict from .pt/.pth/.bin or .safetensors, unwrapped from {"model"|"state_dict"}
    and a DataParallel "module." prefix; one line naming the file when it cannot be read."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
            with allow(numpy_scalars()) if allow else contextlib.nullcontext():
                state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - an unreadable file is the user's to fix
        from harness.artefacts import unreadable_reason

        raise BenchError(f"cannot read {what} weights {path}: the file "
                         f"{unreadable_reason(path, exc)}") from None
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise BenchError(f"{what} weights {path} hold no state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}
