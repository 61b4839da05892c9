"""OVSeg's mask prompt tuning on open_clip's VisionTransformer: `encode_image(x, mask)`.

QA-CLIMS (§4.1, and its default `--use_mask_clip True`) encodes its regions with the
mask-adapted CLIP of OVSeg (Liang et al., 2022): OpenAI's ViT-L/14 fine-tuned with learned
*mask prompts*, released as `ovseg_swinbase_vitL14_ft_mpt.pth`. What follows is the
arithmetic of OVSeg's modified CLIP (facebookresearch/ov-seg third_party/CLIP/clip/model.py
`VisionTransformer.forward`; the same code as CVI-SZU/QA-CLIMS third_party/CLIP/clip/
model.py), written against open_clip's modules:

- The mask (at the encoder's input resolution there, 224) goes to the patch grid by
  `AvgPool2d(patch, stride=patch)` then `ceil`: a patch is kept (1) when any pixel of its
  footprint is inside the mask, masked out (0) only when the whole footprint is outside.
  `patch_keep` takes the max of (mask > 0) over each footprint, which is that same value for
  masks in [0, 1] at 224 and the same footprints at any other size (the teacher resizes the
  image to its square input, so patch (i, j) covers the same region of the original).
  No gradient flows through the mask (ceil has none); it flows through the image.
- Prompt 0 replaces the masked-out patch embeddings right after the patch convolution,
  before the class token, the positional embedding and ln_pre; prompt d (d = 1 … depth−1)
  replaces the masked-out patch tokens of block d−1's output, i.e. of block d's input. With
  depth 3 (QA-CLIMS misc/clip_adapter.py `mask_prompt_depth=3`; OVSeg
  configs/ovseg_swinB_vitL_demo.yaml MASK_PROMPT_DEPTH: 3) the inputs of the first three
  blocks carry prompts and the class token is never replaced.
- The prompts are `visual.mask_embedding`, shape (depth, grid², width) (one per depth and
  patch position) or (depth, 1, width) (one per depth, broadcast over positions).

The checkpoint is a detectron2 file: {"model": state dict} with the CLIP under
`clip_adapter.clip_model.` in OpenAI CLIP's names, which are open_clip's own names for a
ViT CLIP, plus `visual.mask_embedding` and the segmenter's other tensors (Swin backbone,
head), which are dropped (QA-CLIMS misc/clip_adapter.py loads `torch.load(...)['model']`
into a wrapper with `clip_adapter.clip_model` and strict=False; ovseg_utils.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import BenchError

MASK_PROMPT_DEPTH = 3  # QA-CLIMS misc/clip_adapter.py: mask_clip.load(..., mask_prompt_depth=3)
PROMPT_KEY = "visual.mask_embedding"
OVSEG_PREFIX = "clip_adapter.clip_model."  # where the CLIP sits in OVSeg's detectron2 state dict
OVSEG_FILE = "OVSeg's ovseg_swinbase_vitL14_ft_mpt.pth"
PROMPT_INIT_STD = 0.02  # ov-seg open_clip_training model.py init_mask_embedding('mae')


def patch_keep(masks: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Masks (B, 1, H, W) or (B, H, W) in [0, 1] → (B, gh·gw, 1): 1 where a patch keeps its
    token (any pixel of its footprint > 0), 0 where the mask prompt replaces it."""
    if masks.dim() == 4:
        if masks.shape[1] != 1:
            raise ValueError(f"masks must have one channel (got shape {tuple(masks.shape)})")
        masks = masks[:, 0]
    inside = (masks.detach() > 0).float().unsqueeze(1)
    return F.adaptive_max_pool2d(inside, grid).flatten(1).unsqueeze(-1)


def check_visual(visual: nn.Module, prompts: torch.Tensor, what: str = "the mask prompts") -> None:
    """One line unless `prompts` fit `visual` (an open_clip VisionTransformer)."""
    if not hasattr(visual, "conv1") or not hasattr(visual, "class_embedding"):
        raise BenchError(f"{what} need a ViT image tower (got {type(visual).__name__})")
    grid = tuple(visual.grid_size)
    width = int(visual.conv1.out_channels)
    n_blocks = len(visual.transformer.resblocks)
    ok = (prompts.dim() == 3 and prompts.shape[1] in (1, grid[0] * grid[1])
          and prompts.shape[2] == width and 1 <= prompts.shape[0] <= n_blocks)
    if not ok:
        raise BenchError(f"{what} have shape {tuple(prompts.shape)}; this ViT needs (depth ≤ "
                         f"{n_blocks}, {grid[0] * grid[1]} or 1, {width})")


def random_prompts(visual: nn.Module, depth: int = MASK_PROMPT_DEPTH, seed: int = 0) -> torch.Tensor:
    """Random-init prompts for `visual` (smoke tests only), as OVSeg initialises them."""
    g = torch.Generator().manual_seed(seed)
    n = visual.grid_size[0] * visual.grid_size[1]
    return torch.randn(depth, n, visual.conv1.out_channels, generator=g) * PROMPT_INIT_STD


def masked_encode(visual: nn.Module, prompts: torch.Tensor, images: torch.Tensor,
                  masks: torch.Tensor) -> torch.Tensor:
    """OVSeg's `VisionTransformer.forward(x, m)` on open_clip's `visual`: normalised images
    (B, 3, S, S) at the tower's input size, masks (B, 1, H, W) in [0, 1] → unnormalised
    image features (B, D). The rest is open_clip's own forward (`_embeds`, blocks, `_pool`)."""
    x = visual.conv1(images)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # (B, grid², width)
    keep = patch_keep(masks, tuple(visual.grid_size)).to(x.dtype)
    prompts = prompts.to(x.dtype).expand(-1, x.shape[1], -1)  # (depth, grid², width)
    depth = prompts.shape[0]
    x = x * keep + prompts[0] * (1 - keep)
    cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    x = visual.ln_pre(visual.patch_dropout(x))
    batch_first = getattr(visual.transformer, "batch_first", True)
    for i, block in enumerate(visual.transformer.resblocks):
        x = block(x) if batch_first else block(x.transpose(0, 1)).transpose(0, 1)
        if i + 1 < depth:  # the next block's input: masked-out patch tokens → prompt i + 1
            x = torch.cat([x[:, :1], x[:, 1:] * keep + prompts[i + 1] * (1 - keep)], dim=1)
    pooled, _ = visual._pool(x)
    return pooled @ visual.proj if visual.proj is not None else pooled


# ----------------------------------------------------------------------------- checkpoints


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file: a plain state dict, or one wrapped under "model"
    (detectron2, OVSeg) or "state_dict"; safetensors too. One line if unreadable."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read the file is the user's
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise BenchError(f"cannot read CLIP weights {path}: {reason}") from None
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise BenchError(f"cannot read CLIP weights {path}: not a state dict "
                         f"(a {type(obj).__name__})")
    return obj


def clip_prefix(state: dict[str, torch.Tensor]) -> str | None:
    """The prefix under which a ViT CLIP sits in `state` ("" for a plain open_clip/OpenAI
    state dict, OVSEG_PREFIX in OVSeg's), or None when there is none."""
    found = [k.removesuffix("visual.conv1.weight") for k in state if k.endswith("visual.conv1.weight")]
    if not found:
        return None
    return OVSEG_PREFIX if OVSEG_PREFIX in found else min(found, key=len)


def split_clip_state(state: dict[str, torch.Tensor]
                     ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """(the CLIP's tensors under open_clip's names, the mask prompts or None) of `state`,
    in OVSeg's layout or a plain one; every other tensor (Swin backbone, head) dropped."""
    prefix = clip_prefix(state)
    if prefix is None:
        return state, None
    clip = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    return clip, clip.pop(PROMPT_KEY, None)
