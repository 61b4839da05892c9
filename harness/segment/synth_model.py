"""`deeplab-synth`: DeepLabV2's shape at the size of synth's 64-px images, for the CPU.

DeepLabV2-ResNet-101 (harness/segment/deeplabv2.py) costs about a second per step on two CPU
cores even at 64 px, too slow for the paired measurement docs/protocol-segmentation.md asks.
This keeps what defines DeepLabV2 — a residual backbone that stops downsampling early and
dilates instead, and an ASPP of four parallel 3×3 convs whose outputs are summed — at
32/64/128 channels and output stride 4 (16×16 logits on a 64-px image), with ASPP rates
1/2/3/4 (DeepLabV2's 6/12/18/24 span about half of its 41×41 logit grid at crop 321; these
span a similar share of 16×16). Random init: no pretrained weights exist for it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from harness.segment.deeplabv2 import ASPP, aspp_param_groups
from harness.segment.losses import pixel_loss
from harness.segment.models import SegModel, register_seg_model
from harness.segment.settings import SegSettings

RATES = (1, 2, 3, 4)


def conv_bn(cin: int, cout: int, stride: int = 1, dil: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, dil, dil, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, ch: int, dil: int = 1):
        super().__init__()
        self.body = nn.Sequential(conv_bn(ch, ch, 1, dil), nn.Conv2d(ch, ch, 3, 1, dil, dil, bias=False),
                                  nn.BatchNorm2d(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class SynthDeepLab(SegModel):
    def __init__(self, n_classes: int, settings: SegSettings):
        super().__init__()
        self.settings = settings
        self.layer1 = nn.Sequential(conv_bn(3, 32), conv_bn(32, 64, 2), Residual(64))  # stride 2
        self.layer2 = nn.Sequential(conv_bn(64, 128, 2), Residual(128))  # stride 4
        self.layer3 = nn.Sequential(Residual(128, 2), Residual(128, 4))  # dilated, stride 4
        self.aspp = ASPP(128, n_classes, RATES)
        self.freeze_bn(settings.seg_freeze_bn)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.aspp(self.layer3(self.layer2(self.layer1(images))))

    def loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return pixel_loss(self.settings.seg_loss, self(images), labels)

    def param_groups(self, settings: SegSettings) -> list[dict]:
        """As DeepLabV2's: backbone convs, ASPP weights, ASPP biases; BatchNorm (trained here)
        without decay."""
        return aspp_param_groups(self, settings)


@register_seg_model("deeplab-synth", recipes=("synth",), pretrained=False)
def deeplab_synth(n_classes: int, settings: SegSettings, weights: Path | None = None) -> SynthDeepLab:
    """DeepLabV2's shape at 64 px (OS 4, ASPP 1/2/3/4 summed), random init: the synth model."""
    model = SynthDeepLab(n_classes, settings)
    if weights is not None:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model
