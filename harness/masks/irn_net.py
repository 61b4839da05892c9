"""IRN's network (Ahn, Cho & Kwak, CVPR'19), following jiwoon-ahn/irn net/resnet50_irn.py:
a frozen ResNet-50 (strides 2, 2, 2, 1: layer4 keeps stride 16) and two trainable branches
on its five stages, a class-boundary map and a displacement field, both at stride 4.

The backbone is timm's ResNet-50, whose parameter names are torchvision's, registered under
the reference's names (`resnet50`, and `stage1`…`stage5` / `backbone` aliasing it), so a
state dict of the reference layout (res50_irn.pth) loads as it is and ours loads there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.compat import ensure_torchvision
from harness.errors import BenchError
from harness.generator import IMAGENET_MEAN, IMAGENET_STD


def _branch(cin: int, cout: int, groups: int, up: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 1, bias=False), nn.GroupNorm(groups, cout)]
    if up > 1:
        layers.append(nn.Upsample(scale_factor=up, mode="bilinear", align_corners=False))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class MeanShift(nn.Module):
    """Subtracts the displacement field's mean at inference (train_irn.py measures it)."""

    def __init__(self, n: int):
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.training else x - self.running_mean.view(1, -1, 1, 1)


class IRNet(nn.Module):
    stride = 4

    def __init__(self, backbone: str = "resnet50"):
        super().__init__()
        ensure_torchvision()
        import timm

        r = timm.create_model(backbone, pretrained=False)
        # strides=[2, 2, 2, 1] in the reference: layer4 keeps layer3's stride 16
        r.layer4[0].conv2.stride = (1, 1)
        r.layer4[0].downsample[0].stride = (1, 1)
        self.resnet50 = r
        self.stage1 = nn.Sequential(r.conv1, r.bn1, r.act1, r.maxpool)
        self.stage2 = nn.Sequential(r.layer1)
        self.stage3 = nn.Sequential(r.layer2)
        self.stage4 = nn.Sequential(r.layer3)
        self.stage5 = nn.Sequential(r.layer4)
        self.mean_shift = MeanShift(2)
        # the class-boundary branch
        self.fc_edge1 = _branch(64, 32, 4)
        self.fc_edge2 = _branch(256, 32, 4)
        self.fc_edge3 = _branch(512, 32, 4, up=2)
        self.fc_edge4 = _branch(1024, 32, 4, up=4)
        self.fc_edge5 = _branch(2048, 32, 4, up=4)
        self.fc_edge6 = nn.Conv2d(160, 1, 1, bias=True)
        # the displacement-field branch
        self.fc_dp1 = _branch(64, 64, 8)
        self.fc_dp2 = _branch(256, 128, 16)
        self.fc_dp3 = _branch(512, 256, 16)
        self.fc_dp4 = _branch(1024, 256, 16, up=2)
        self.fc_dp5 = _branch(2048, 256, 16, up=2)
        self.fc_dp6 = _branch(768, 256, 16, up=2)
        self.fc_dp7 = nn.Sequential(nn.Conv2d(448, 256, 1, bias=False), nn.GroupNorm(16, 256),
                                    nn.ReLU(inplace=True), nn.Conv2d(256, 2, 1, bias=False),
                                    self.mean_shift)
        self.backbone = nn.ModuleList([self.stage1, self.stage2, self.stage3, self.stage4, self.stage5])
        self.edge_layers = nn.ModuleList([self.fc_edge1, self.fc_edge2, self.fc_edge3, self.fc_edge4,
                                          self.fc_edge5, self.fc_edge6])
        self.dp_layers = nn.ModuleList([self.fc_dp1, self.fc_dp2, self.fc_dp3, self.fc_dp4, self.fc_dp5,
                                        self.fc_dp6, self.fc_dp7])
        for p in self.backbone.parameters():
            p.requires_grad_(False)  # the reference detaches every stage: only the branches learn
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> IRNet:
        super().train(mode)
        self.backbone.eval()  # frozen BatchNorm statistics, as the reference's train()
        return self

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [0, 1] (ImageNet-normalised here, TorchvisionNormalize in the reference) →
        boundary logits (B, 1, h, w) and displacements (B, 2, h, w) at stride 4."""
        x = (images - self.mean) / self.std
        with torch.no_grad():
            x1 = self.stage1(x)
            x2 = self.stage2(x1)
            x3 = self.stage3(x2)
            x4 = self.stage4(x3)
            x5 = self.stage5(x4)
        e2 = self.fc_edge2(x2)
        size = e2.shape[-2:]
        edge = self.fc_edge6(torch.cat([self.fc_edge1(x1), e2, self.fc_edge3(x3)[..., :size[0], :size[1]],
                                        self.fc_edge4(x4)[..., :size[0], :size[1]],
                                        self.fc_edge5(x5)[..., :size[0], :size[1]]], dim=1))
        dp2, dp3 = self.fc_dp2(x2), self.fc_dp3(x3)
        s3 = dp3.shape[-2:]
        up3 = self.fc_dp6(torch.cat([dp3, self.fc_dp4(x4)[..., :s3[0], :s3[1]],
                                     self.fc_dp5(x5)[..., :s3[0], :s3[1]]], dim=1))
        dp = self.fc_dp7(torch.cat([self.fc_dp1(x1), dp2, up3[..., :dp2.shape[2], :dp2.shape[3]]], dim=1))
        return edge, dp

    def trainable_parameters(self) -> tuple[list, list]:
        return list(self.edge_layers.parameters()), list(self.dp_layers.parameters())

    @torch.no_grad()
    def boundary(self, image: torch.Tensor, pad_to: int) -> torch.Tensor:
        """EdgeDisplacement.forward for one (3, H, W) image: padded on the right and bottom to
        `pad_to` (the reference's crop_size; more if the image is larger, to a multiple of 16),
        run with its flip, sigmoid of the mean logit, cropped to the stride-4 size → (h, w)."""
        h, w = image.shape[-2:]
        th = max(pad_to, -(-h // 16) * 16)
        tw = max(pad_to, -(-w // 16) * 16)
        # the image and its flip, each padded on its own right (VOC12ClassificationDatasetMSF
        # stacks [img, flip(img)] before EdgeDisplacement pads): crop, then flip the second back
        x = F.pad(torch.stack([image, image.flip(-1)]), (0, tw - w, 0, th - h))
        edge, _ = self(x)
        fh, fw = (h - 1) // self.stride + 1, (w - 1) // self.stride + 1
        edge = edge[:, 0, :fh, :fw]
        both = edge[0] / 2 + edge[1].flip(-1) / 2
        return torch.sigmoid(both)


def load_irn_state(model: IRNet, state: object, path: str) -> None:
    """Load a state dict of this layout (ours or the reference's res50_irn.pth), or one line."""
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BenchError(f"IRN checkpoint {path} is not a state dict of tensors")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel's prefix
    own = model.state_dict()
    needed = [k for k in own if k.startswith(("fc_edge", "fc_dp", "mean_shift"))]
    missing = [k for k in needed if k not in state]
    if missing:
        sample = ", ".join(sorted(state)[:3])
        raise BenchError(f"IRN checkpoint {path} is of another layout: it lacks {len(missing)} of the "
                         f"{len(needed)} branch tensors (first: {missing[0]}; it holds e.g. {sample}); "
                         "expected jiwoon-ahn/irn net/resnet50_irn.py's (fc_edge1…6, fc_dp1…7, resnet50.*)")
    bad = [k for k in state if k in own and state[k].shape != own[k].shape]
    if bad:
        raise BenchError(f"IRN checkpoint {path}: {bad[0]} has shape {tuple(state[bad[0]].shape)}, "
                         f"expected {tuple(own[bad[0]].shape)}")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
