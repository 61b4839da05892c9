"""Segmenter-DeiT-S (WeakTr's online retraining, SemPLeS Table 3 row 2) on timm.

WT = hustvl/WeakTr@3457ad3 `OnlineRetraining/segm/`. The encoder is timm's
`deit_small_patch16_224` (config.yml:35-42: d 384, 6 heads, 12 layers, no distillation token;
drop path 0.1, train.py `--drop-path`), fed images padded to a multiple of 16 (model/utils.py
padding); its patch tokens go through the mask transformer (model/decoder.py MaskTransformer,
config.yml:153-156: 2 layers, dropout 0.1, d_model = the encoder's, d_model/64 heads, 4×
feed-forward): class embeddings join the patches, both are projected and L2-normalised, their
products are the class masks, layer-normed over classes, upsampled to the padded image and
cropped (model/segmenter.py:32-46). The code is ours, its names are not WT's.

Loss (engine.py:21-48 with decoder.py GradientClipping): per-pixel CE (255 → 0), and once the
batch mean is ≤ `seg_clip_start` (1.2) each pixel's loss is capped at max(mean over its
`seg_clip_patch`² patch (120), batch mean), the cap detached, then averaged over all pixels
(mmseg's weight_reduce_loss "mean": ignored pixels count in the denominator, as in WT).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from harness.compat import ensure_torchvision
from harness.errors import BenchError
from harness.segment.losses import IGNORE, resize_labels
from harness.segment.models import SegModel, own_loss_only, register_seg_model
from harness.segment.settings import SegSettings

PATCH = 16
ENCODER = "deit_small_patch16_224"
SMALL = dict(depth=2, embed_dim=96, num_heads=3)  # seg_arch=small: the same code, narrow


def encoder(arch: str, drop_path: float = 0.1) -> nn.Module:
    ensure_torchvision()  # timm imports torchvision (harness/compat.py)
    import timm

    extra = SMALL if arch == "small" else {}
    return timm.create_model(ENCODER, pretrained=False, num_classes=0, dynamic_img_size=True,
                             drop_path_rate=drop_path, **extra)


class MaskTransformer(nn.Module):
    """WT model/decoder.py MaskTransformer, on timm's transformer block."""

    def __init__(self, n_classes: int, d_encoder: int, n_layers: int = 2, dropout: float = 0.1):
        super().__init__()
        from timm.models.vision_transformer import Block

        d = d_encoder  # WT model/factory.py: decoder d_model = encoder d_model, heads d/64
        self.n_classes = n_classes
        self.blocks = nn.ModuleList(Block(d, max(1, d // 64), 4.0, qkv_bias=True, proj_drop=dropout,
                                          attn_drop=dropout) for _ in range(n_layers))
        self.cls_emb = nn.Parameter(torch.randn(1, n_classes, d) * 0.02)
        self.proj_dec = nn.Linear(d_encoder, d)
        self.proj_patch = nn.Parameter(d ** -0.5 * torch.randn(d, d))
        self.proj_classes = nn.Parameter(d ** -0.5 * torch.randn(d, d))
        self.decoder_norm = nn.LayerNorm(d)
        self.mask_norm = nn.LayerNorm(n_classes)
        for m in (self.proj_dec, *[b for blk in self.blocks for b in blk.modules()]):
            if isinstance(m, nn.Linear):  # WT model/utils.py init_weights
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        x = torch.cat([self.proj_dec(tokens), self.cls_emb.expand(len(tokens), -1, -1)], 1)
        for blk in self.blocks:
            x = blk(x)
        x = self.decoder_norm(x)
        k = self.n_classes
        patches = F.normalize(x[:, :-k] @ self.proj_patch, dim=-1)
        classes = F.normalize(x[:, -k:] @ self.proj_classes, dim=-1)
        masks = self.mask_norm(patches @ classes.transpose(1, 2))  # (B, N, K)
        return masks.transpose(1, 2).reshape(len(x), k, *grid)


class Segmenter(SegModel):
    def __init__(self, n_classes: int, settings: SegSettings, enc: nn.Module):
        super().__init__()
        self.settings = settings
        self.encoder = enc
        self.decoder = MaskTransformer(n_classes, enc.embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits at the image's own size (stride 1), as WT's model returns them."""
        h, w = images.shape[-2:]
        x = F.pad(images, (0, -w % PATCH, 0, -h % PATCH))  # WT padding: zeros, bottom/right
        tokens = self.encoder.forward_features(x)[:, self.encoder.num_prefix_tokens:]
        masks = self.decoder(tokens, (x.shape[-2] // PATCH, x.shape[-1] // PATCH))
        # WT model/segmenter.py:45: F.interpolate(mode="bilinear") (align_corners False)
        return F.interpolate(masks, size=x.shape[-2:], mode="bilinear")[..., :h, :w]

    def loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self(images)
        return clipped_ce(logits, resize_labels(labels, tuple(logits.shape[-2:])),
                          self.settings.seg_clip_start, self.settings.seg_clip_patch)

    def param_groups(self, settings: SegSettings) -> list[dict]:
        """WT train.py `--enc-lr 0.1`: the encoder at seg_backbone_lr_mult, the decoder at the
        head's; timm's no-weight-decay names (position and class tokens, norms, biases) and
        the decoder's class embedding without decay (WT's weight decay is 0 anyway)."""
        out = []
        for name, part, mult in (("encoder", self.encoder, settings.seg_backbone_lr_mult),
                                 ("decoder", self.decoder, settings.seg_head_lr_mult)):
            decay, no_decay = [], []
            for n, p in part.named_parameters():
                (no_decay if p.ndim <= 1 or n in ("pos_embed", "cls_token", "cls_emb") else decay).append(p)
            out += [dict(name=name, params=decay, lr_mult=mult, weight_decay=settings.seg_weight_decay),
                    dict(name=f"{name}_no_decay", params=no_decay, lr_mult=mult, weight_decay=0.0)]
        return out


def clipped_ce(logits: torch.Tensor, labels: torch.Tensor, start: float, patch: int) -> torch.Tensor:
    """WT's loss (module docstring); `start` ≤ 0 turns the clipping off. Where WT pools with
    padding h % patch (identical at its 480 crop, an error past half a patch), the last
    partial patch is pooled as it is."""
    loss = F.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="none")  # (B, H, W)
    mean = loss.detach().mean()
    if start <= 0 or mean > start:
        return loss.mean()
    h, w = loss.shape[-2:]
    local = F.avg_pool2d(loss.detach().mean(0)[None, None], patch, patch, ceil_mode=True)[0, 0]
    cap = torch.maximum(local, mean).repeat_interleave(patch, 0).repeat_interleave(patch, 1)[:h, :w]
    return torch.minimum(loss, cap).mean()


@register_seg_model("segmenter", recipes=("segmenter",))
def segmenter(n_classes: int, settings: SegSettings, weights: Path | None = None) -> Segmenter:
    """Segmenter: timm DeiT-S/16 + a 2-layer mask transformer, WeakTr's clipped CE."""
    own_loss_only("segmenter", settings)
    model = Segmenter(n_classes, settings, encoder(settings.seg_arch))
    if weights is not None:
        _load(model, Path(weights))
    return model


def _load(model: Segmenter, path: Path) -> None:
    """A timm DeiT-S state dict (encoder init) or a whole Segmenter's (`encoder.*`,
    `decoder.*`); a backbone tensor missing is an error."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BenchError(f"--seg-weights {path}: not a readable torch state dict ({exc})") from None
    sd = sd.get("model", sd) if isinstance(sd, dict) else sd
    if not any(k.startswith("encoder.") for k in sd):
        sd = {f"encoder.{k}": v for k, v in sd.items() if not k.startswith("head")}
    own = model.state_dict()
    missing = [k for k in own if k.startswith("encoder.") and (k not in sd or sd[k].shape != own[k].shape)]
    if missing:
        raise BenchError(f"--seg-weights {path}: {len(missing)} encoder tensors missing or of another "
                         f"shape (e.g. {missing[0]}); expected timm's {ENCODER}")
    model.load_state_dict({k: v for k, v in sd.items() if k in own and v.shape == own[k].shape},
                          strict=False)
