"""The CLIP-ES family: training-free CAMs from the run's frozen CLIP (linyq2117/CLIP-ES@3893f81).

Nothing trains. `train` wraps the run's teacher (the embedded tiny CLIP on synth, open_clip
ViT-B/16 on real data) in a `ClipEsModel`, a `harness.cam_model.CamModel` whose maps are, per
class present in the image (its labels):

1. blocks 1 … L−1 of the image tower without gradients (clip/model.py:226-236), their
   head-averaged attention kept; the positional embeddings resized bilinearly to the grid
   (clip/model.py:9-24, 259);
2. the last block from its `ln_1` output (the Grad-CAM target layer, generate_cams_voc12.py:
   244), then ln_post, the mean of the patch tokens, the projection, cosine with the texts ×
   logit scale, softmax over the image's class texts and the background set
   (clip/model.py:400-422);
3. Grad-CAM of the class's probability on the patch tokens (methods/clip_es/cams.py), then
   CAA with the last `caa_layers` blocks' attention and the box mask (cams.py), min-max.

Where this differs from the reference, and why: images are padded to a multiple of the patch
(the harness's grid convention, harness.cam_model) where the reference resizes each side up
to it (≤ 15 px on VOC); the model runs in float32 (the reference in fp16); the maps are
min-max normalised on the grid and resized by inference, the reference resizes then scales
(the same up to bilinear rounding at the extremes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.config import MethodConfig, hp
from harness.data import SegDataset
from harness.data import background_texts as dataset_background
from harness.infer import InferenceSpec
from harness.method import Method, RunContext
from harness.registry import register_method
from harness.wording import REFERENCE_WORDED, photo_prompt, prompt_class_names
from methods.clip_es import cams
from methods.clip_es.paper import BACKGROUND_COCO, BACKGROUND_VOC, PAPER, SYNONYMS, TEMPLATE


def _scales(text: str) -> tuple[float, ...]:
    return tuple(float(s) for s in text.split(",") if s.strip())


@dataclass(frozen=True)
class ClipEsConfig(MethodConfig):
    """CLIP-ES settings (paper.py cites each default)."""

    softmax: bool = hp(True, "Grad-CAM of the softmax over class and background texts "
                       "(False: of the raw logit, the paper's ablation)")
    background: bool = hp(True, "add the background text set to the softmax (False: the "
                          "image's class texts only)")
    caa: bool = hp(True, "refine with class-aware attention affinity (CAA)")
    caa_layers: int = hp(8, "CAA averages the attention of the last N blocks (all if fewer)", ge=1)
    box_threshold: float = hp(0.4, "CAA box mask: regions above this share of the CAM's max "
                              "(VOC 0.4, COCO 0.7)", gt=0, lt=1)
    scales: str = hp("1.0", "comma-separated image scales the CAMs are averaged over (the "
                     "reference: 1.0 only)")

    def validate(self) -> ClipEsConfig:
        super().validate()
        try:
            values = _scales(self.scales)
        except ValueError:
            values = ()
        if not values or min(values) <= 0:
            from harness.errors import BenchError

            raise BenchError(f"scales must be positive numbers, comma-separated (got {self.scales!r})")
        return self


def class_texts(dataset: str, names: tuple[str, ...]) -> list[str]:
    """Each class's prompt: the reference's template and synonyms on voc and coco; on synth the
    teacher's own wording (the only one it was trained on); any other dataset (a folder) its
    class names in the reference's template, without VOC's and COCO's synonyms."""
    if dataset == "synth":
        return [photo_prompt(n) for n in names]
    if dataset not in REFERENCE_WORDED:
        return [TEMPLATE.format(n) for n in prompt_class_names(dataset, names)]
    return [TEMPLATE.format(SYNONYMS.get(n, n)) for n in names]


def background_texts(ds: SegDataset) -> list[str]:
    """The background set (harness.data.background_texts): the dataset's own (synth's
    contexts, in the teacher's wording; a folder's background.txt), else the reference's on
    voc and coco, else the harness's generic set."""
    words = dataset_background(ds, {"voc": BACKGROUND_VOC, "coco": BACKGROUND_COCO})
    return [photo_prompt(w) if ds.name == "synth" else TEMPLATE.format(w) for w in words]


@register_method
class ClipEs(Method):
    """CLIP-ES: Grad-CAM of CLIP's softmax over class and background texts, refined by CAA."""

    name = "clip-es"
    paper = PAPER
    config_cls = ClipEsConfig
    epoch_fields: dict[str, str] = {}  # nothing trains
    # one pass at scale 1.0, no flip (generate_cams_voc12.py:125-126: the flipped copy is
    # built and dropped); min-max per class (scale_cam_image); scales of its own: `scales`
    inference = InferenceSpec(scales=(1.0,), flips=False, relu=False, normalisation="minmax")

    def train(self, ctx: RunContext) -> ClipEsModel:
        p: Any = ctx.params
        dataset = ctx.cfg.dataset
        names = tuple(ctx.dataset("train").class_names)
        teacher = ctx.teacher
        texts = teacher.encode_text(class_texts(dataset, names)).float()
        bg = (teacher.encode_text(background_texts(ctx.dataset("train"))).float() if p.background
              else texts[:0])
        ctx.log(f"clip-es: {len(names)} class texts, {len(bg)} background texts, nothing trains")
        return ClipEsModel(teacher, texts, bg, softmax=p.softmax, caa=p.caa,
                           caa_layers=p.caa_layers, box_threshold=p.box_threshold,
                           scales=_scales(p.scales))


class ClipEsModel(nn.Module):
    """A CamModel over a frozen open_clip ViT: per-class CLIP-ES maps at the patch stride."""

    def __init__(self, teacher: nn.Module, texts: torch.Tensor, bg: torch.Tensor, *,
                 softmax: bool = True, caa: bool = True, caa_layers: int = 8,
                 box_threshold: float = 0.4, scales: tuple[float, ...] = (1.0,)):
        super().__init__()
        self.teacher = teacher
        visual = teacher.clip.visual
        if getattr(visual, "attn_pool", None) is not None or not hasattr(visual, "conv1"):
            raise ValueError("CLIP-ES needs a plain ViT image tower (conv1 patches, no attn_pool)")
        self.register_buffer("texts", texts, persistent=False)
        self.register_buffer("bg", bg, persistent=False)
        self.softmax, self.caa, self.caa_layers = softmax, caa, caa_layers
        self.box_threshold, self.scales = box_threshold, scales

    @property
    def n_classes(self) -> int:
        return len(self.texts)

    @property
    def stride(self) -> int:
        return int(self.teacher.clip.visual.conv1.kernel_size[0])

    def maps(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """(B, K, h, w): each present class's CLIP-ES map averaged over `scales` (resized to
        the scale-1 grid), zero for the absent classes (CLIP-ES needs the labels)."""
        if labels is None:
            raise ValueError("CLIP-ES maps need the image labels (its softmax runs over them)")
        h, w = (-(-int(s) // self.stride) for s in images.shape[-2:])
        out = torch.zeros(len(images), self.n_classes, h, w, device=images.device)
        for b in range(len(images)):
            present = torch.nonzero(labels[b] > 0).flatten().tolist()
            if not present:
                continue
            for s in self.scales:
                x = images[b : b + 1]
                if s != 1.0:
                    x = F.interpolate(x, scale_factor=s, mode="bicubic", align_corners=False)
                m = self.image_maps(x.clamp(0, 1), present)
                out[b, present] += F.interpolate(m[None], size=(h, w), mode="bilinear",
                                                 align_corners=False)[0] / len(self.scales)
        return out

    def image_maps(self, image: torch.Tensor, present: list[int]) -> torch.Tensor:
        """(len(present), gh, gw) maps of one image (1, 3, H, W) in [0, 1]."""
        x, grid = self._tokens(image)
        *blocks, last = self.teacher.clip.visual.transformer.resblocks
        attns = []
        with torch.no_grad():
            for block in blocks:
                x, a = _block(block, x)
                attns.append(a)
        with torch.enable_grad():
            act = last.ln_1(x).detach().requires_grad_(True)  # the Grad-CAM target layer
            scores, a = self._scores(last, x, act, present)
            grads = [torch.autograd.grad(scores[i], act, retain_graph=i + 1 < len(present))[0]
                     for i in range(len(present))]
        attn = torch.stack([*attns, a.detach()])[-self.caa_layers:, 0, 1:, 1:].mean(0).float()
        out = []
        for g in grads:
            cam = cams.grad_cam(_grid(act.detach(), grid), _grid(g, grid))
            out.append(cams.minmax(cams.caa_refine(attn, cam, self.box_threshold)) if self.caa
                       else cam)
        return torch.stack(out)

    def _tokens(self, image: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """ln_pre(patches + CLS + positional embeddings resized to the grid), no gradients."""
        v, ps = self.teacher.clip.visual, self.stride
        x = (image - self.teacher.mean) / self.teacher.std
        x = F.pad(x, (0, -x.shape[-1] % ps, 0, -x.shape[-2] % ps))  # the mean colour
        with torch.no_grad():
            x = v.conv1(x)
            grid = tuple(x.shape[-2:])
            x = x.flatten(2).transpose(1, 2)
            cls = v.class_embedding.to(x.dtype).view(1, 1, -1)
            x = torch.cat([cls, x], 1) + _positions(v.positional_embedding, grid).to(x.dtype)
            return v.ln_pre(x), grid

    def _scores(self, last: nn.Module, x: torch.Tensor, act: torch.Tensor,
                present: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The last block from its ln_1 output → per present class, its softmax probability
        (or logit) among [present class texts; background texts]; and the block's attention."""
        v = self.teacher.clip.visual
        y, a = last.attn(act, act, act, need_weights=True, average_attn_weights=True)
        y = x + last.ls_1(y)
        y = y + last.ls_2(last.mlp(last.ln_2(y)))
        feat = F.normalize(v.ln_post(y)[:, 1:].mean(1) @ v.proj, dim=-1)
        texts = torch.cat([self.texts[present], self.bg])
        logits = self.teacher.clip.logit_scale.exp() * feat @ texts.T
        probs = logits.softmax(-1) if self.softmax else logits
        return probs[0, : len(present)], a


def _block(block: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One open_clip ResidualAttentionBlock, also returning its head-averaged attention."""
    q = block.ln_1(x)
    y, a = block.attn(q, q, q, need_weights=True, average_attn_weights=True)
    x = x + block.ls_1(y)
    return x + block.ls_2(block.mlp(block.ln_2(x))), a


def _grid(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(1, 1 + h·w, C) tokens → (C, h, w) patch tokens (the reference's reshape_transform)."""
    return tokens[0, 1:].T.reshape(-1, *grid)


def _positions(pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """CLS + patch positional embeddings, the patch ones resized bilinearly to `grid`
    (clip/model.py:9-24 `upsample_pos_emb`)."""
    n = int(round((pos.shape[0] - 1) ** 0.5))
    patches = pos[1:].T.reshape(1, -1, n, n)
    if (n, n) != grid:
        patches = F.interpolate(patches, size=grid, mode="bilinear", align_corners=False)
    return torch.cat([pos[:1], patches.flatten(2)[0].T])
