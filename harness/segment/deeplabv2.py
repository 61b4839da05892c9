"""DeepLabV2-ResNet-101 (CLIMS, QA-CLIMS, CLIP-ES, SemPLeS Table 3 row 1), written once.

No maintained library has it (smp's DeepLabV3 uses rates 12/24/36 and no ASPP sum). Layout
as KZ libs/models/resnet.py + deeplabv2.py:17-52 (KZ = kazuto1011/deeplab-pytorch@4219467):
a Caffe-style ResNet-101 (MSRA: the stride sits on the 1×1 `reduce` conv), a 7×7 stem and a
3×3 max-pool with ceil_mode, layer4 (torchvision's layer3) dilated 2 and layer5 (layer4)
dilated 4 at stride 1, so the output stride is 8; then an ASPP of four 3×3 convs 2048 → K,
dilation = padding 6/12/18/24, with bias, N(0, 0.01) init, whose outputs are summed.

Module names follow KZ's, so its converted Caffe inits (`deeplabv1_resnet101-{coco,imagenet}
.pth`) and CLIMS's trained checkpoints load as they are; see `load_weights` for torchvision's.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import BenchError
from harness.segment.losses import msc_loss, pixel_loss
from harness.segment.models import SegModel, register_seg_model
from harness.segment.settings import SegSettings

N_BLOCKS = (3, 4, 23, 3)  # ResNet-101 (KZ __init__.py DeepLabV2_ResNet101_MSC n_blocks)
# seg_arch=small: one bottleneck per layer, the same strides, dilations and ASPP (CPU, synth)
N_BLOCKS_SMALL = (1, 1, 1, 1)
ATROUS_RATES = (6, 12, 18, 24)  # KZ __init__.py atrous_rates
MSC_SCALES = (0.5, 0.75)  # KZ __init__.py MSC(scales=[0.5, 0.75])
BN_MOMENTUM = 1 - 0.999  # KZ resnet.py _ConvBnReLU: momentum=1 - 0.999 (frozen in CLIMS anyway)


class ConvBN(nn.Sequential):
    """conv (no bias) → BatchNorm → optional ReLU; children `conv`, `bn` as KZ's _ConvBnReLU."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, pad: int = 0, dil: int = 1,
                 relu: bool = True):
        super().__init__(OrderedDict(conv=nn.Conv2d(cin, cout, k, stride, pad, dil, bias=False),
                                     bn=nn.BatchNorm2d(cout, eps=1e-5, momentum=BN_MOMENTUM)))
        if relu:
            self.add_module("relu", nn.ReLU(inplace=True))


class Bottleneck(nn.Module):
    """MSRA bottleneck: stride on the 1×1 reduce conv, dilation on the 3×3 (KZ _Bottleneck)."""

    def __init__(self, cin: int, cout: int, stride: int, dilation: int, downsample: bool):
        super().__init__()
        mid = cout // 4
        self.reduce = ConvBN(cin, mid, 1, stride)
        self.conv3x3 = ConvBN(mid, mid, 3, 1, dilation, dilation)
        self.increase = ConvBN(mid, cout, 1, relu=False)
        self.shortcut = ConvBN(cin, cout, 1, stride, relu=False) if downsample else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.increase(self.conv3x3(self.reduce(x))) + self.shortcut(x))


def res_layer(n: int, cin: int, cout: int, stride: int, dilation: int) -> nn.Sequential:
    """n bottlenecks `block1…blockn`; the first downsamples (KZ _ResLayer, no multi-grid)."""
    return nn.Sequential(OrderedDict(
        (f"block{i + 1}", Bottleneck(cin if i == 0 else cout, cout, stride if i == 0 else 1,
                                     dilation, i == 0)) for i in range(n)))


class ASPP(nn.Module):
    """Four parallel 3×3 convs with dilation = padding = rate, summed (KZ deeplabv2.py:17-33)."""

    def __init__(self, cin: int, n_classes: int, rates: tuple[int, ...] = ATROUS_RATES):
        super().__init__()
        for i, r in enumerate(rates):
            conv = nn.Conv2d(cin, n_classes, 3, 1, padding=r, dilation=r, bias=True)
            nn.init.normal_(conv.weight, 0.0, 0.01)
            nn.init.zeros_(conv.bias)
            self.add_module(f"c{i}", conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(conv(x) for conv in self.children())


class DeepLabV2(SegModel):
    def __init__(self, n_classes: int, settings: SegSettings, n_blocks: tuple[int, ...] = N_BLOCKS):
        super().__init__()
        self.settings = settings
        self.layer1 = nn.Sequential(OrderedDict(conv1=ConvBN(3, 64, 7, 2, 3),  # KZ _Stem
                                                pool=nn.MaxPool2d(3, 2, 1, ceil_mode=True)))
        self.layer2 = res_layer(n_blocks[0], 64, 256, 1, 1)
        self.layer3 = res_layer(n_blocks[1], 256, 512, 2, 1)
        self.layer4 = res_layer(n_blocks[2], 512, 1024, 1, 2)
        self.layer5 = res_layer(n_blocks[3], 1024, 2048, 1, 4)
        self.aspp = ASPP(2048, n_classes)
        # KZ's convs keep torch's default init; CL re-initialises nothing but loads its init file
        self.freeze_bn(settings.seg_freeze_bn)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.layer5(self.layer4(self.layer3(self.layer2(self.layer1(images)))))
        return self.aspp(x)

    def loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.settings.seg_msc_loss:
            return msc_loss(self, images, labels, self.settings.seg_loss, MSC_SCALES)
        return pixel_loss(self.settings.seg_loss, self(images), labels)

    def param_groups(self, settings: SegSettings) -> list[dict]:
        """CL main.py:49-68 get_params + 178-198: every conv in `layer*` at 1× with decay, the
        ASPP weights at 10× with decay, the ASPP biases at 20× without. BatchNorm is in no group
        while frozen; unfrozen (not a CL recipe) it joins the backbone without decay."""
        return aspp_param_groups(self, settings)


# torchvision / timm ResNet names → KZ's (layerN in torchvision is layer(N+1) in KZ)
_TV_PARTS = {"conv1": "reduce.conv", "bn1": "reduce.bn", "conv2": "conv3x3.conv",
             "bn2": "conv3x3.bn", "conv3": "increase.conv", "bn3": "increase.bn",
             "downsample.0": "shortcut.conv", "downsample.1": "shortcut.bn"}
_TV_BLOCK = re.compile(r"^layer(\d)\.(\d+)\.(conv\d|bn\d|downsample\.[01])\.(.+)$")


def _from_torchvision(key: str) -> str | None:
    if key.startswith(("conv1.", "bn1.")):
        part, rest = key.split(".", 1)
        return f"layer1.conv1.{'conv' if part == 'conv1' else 'bn'}.{rest}"
    m = _TV_BLOCK.match(key)
    if m is None:
        return None  # fc.* and anything else: not part of the backbone
    layer, block, part, rest = m.groups()
    return f"layer{int(layer) + 1}.block{int(block) + 1}.{_TV_PARTS[part]}.{rest}"


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle with code, a truncated file: one line, never executed
        raise BenchError(f"--seg-weights {path}: not a readable torch state dict ({exc})") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
    if not isinstance(sd, dict):
        raise BenchError(f"--seg-weights {path}: holds a {type(sd).__name__}, not a state dict")
    return {re.sub(r"^(module\.)?(base\.)?", "", k): v for k, v in sd.items()}


def load_weights(model: DeepLabV2, path: Path) -> dict[str, int]:
    """Load an init or checkpoint into `model`. Layouts read: KZ/CLIMS's (`layer1.conv1.conv.
    weight`, …, `aspp.c0.weight`; a `base.`/`module.` prefix from MSC or DataParallel is
    dropped), and torchvision's / timm's ResNet-101 (`conv1.weight`, `layer1.0.conv1.weight`,
    …; note torchvision puts the stride on the 3×3 conv, Caffe on the 1×1: the tensors fit, the
    features they were trained for differ slightly). An ASPP of another class count is left at
    its init; a backbone tensor missing is an error. Returns counts of what loaded."""
    raw = _state_dict(path)
    if "conv1.weight" in raw:
        raw = {new: v for k, v in raw.items() if (new := _from_torchvision(k)) is not None}
    own = model.state_dict()
    take = {k: v for k, v in raw.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in take and not k.startswith("aspp.")
               and not k.endswith("num_batches_tracked")]
    if missing:
        raise BenchError(f"--seg-weights {path}: {len(missing)} backbone tensors missing or of "
                         f"another shape (e.g. {missing[0]}); known layouts: deeplab-pytorch/CLIMS, "
                         "torchvision/timm ResNet-101")
    model.load_state_dict(take, strict=False)
    return {"loaded": len(take), "head": sum(k.startswith("aspp.") for k in take)}


@register_seg_model("deeplabv2", recipes=("coco", "imagenet"))
def deeplabv2(n_classes: int, settings: SegSettings, weights: Path | None = None) -> DeepLabV2:
    """DeepLabV2-ResNet-101, output stride 8, ASPP 6/12/18/24 summed (CLIMS's recipes)."""
    model = DeepLabV2(n_classes, settings, N_BLOCKS_SMALL if settings.seg_arch == "small" else N_BLOCKS)
    if weights is not None:
        load_weights(model, Path(weights))
    return model


def aspp_param_groups(model: nn.Module, settings: SegSettings) -> list[dict]:
    """The optimiser groups of a `layer*` backbone under an `aspp` head (DeepLabV2 and the synth
    model): backbone convs, ASPP weights, ASPP biases; BatchNorm only where not frozen."""
    backbone = [m.weight for n, m in model.named_modules()
                if n.startswith("layer") and isinstance(m, nn.Conv2d)]
    norms = [p for n, m in model.named_modules() if n.startswith("layer")
             and isinstance(m, nn.BatchNorm2d) for p in m.parameters()]
    aspp, wd = list(model.aspp.children()), settings.seg_weight_decay
    groups = [dict(name="backbone", params=backbone, lr_mult=settings.seg_backbone_lr_mult,
                   weight_decay=wd),
              dict(name="head_weight", params=[m.weight for m in aspp],
                   lr_mult=settings.seg_head_lr_mult, weight_decay=wd),
              dict(name="head_bias", params=[m.bias for m in aspp],
                   lr_mult=settings.seg_head_bias_lr_mult,
                   weight_decay=wd if settings.seg_head_bias_decay else 0.0)]
    if not model.frozen_bn:
        groups.append(dict(name="norm", params=norms, lr_mult=settings.seg_backbone_lr_mult,
                           weight_decay=0.0))
    return groups
