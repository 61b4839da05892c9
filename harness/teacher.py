"""The frozen CLIP teacher every CLIP-guided method talks to.

One interface (`encode_image`, `encode_text`, `encode_prompts`, and `encode_image_masked`
for a teacher with OVSeg's mask prompts, harness/mask_clip.py) over an open_clip CLIP:
ViT-B-32 / ViT-L-14 built from their configs and loaded from a local weights file, or the
tiny `synth` CLIP (a custom open_clip config) trained on `synth` by `harness/synth/teacher.py`.
Methods never know which one they have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.compat import ensure_torchvision
from harness.errors import BenchError
from harness.mask_clip import (
    OVSEG_FILE,
    PROMPT_KEY,
    check_visual,
    clip_prefix,
    masked_encode,
    random_prompts,
    read_state,
    split_clip_state,
)
from harness.wording import PROMPT_PREFIX  # learned prompts: "SOT a photo of [p_1 … p_L] . EOT"

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class Teacher(nn.Module):
    """A frozen open_clip CLIP with L2-normalised outputs."""

    weights: str | None = None  # the local file a real teacher was loaded from
    # CLIMS's L_CBS gate on this teacher's similarity scale; None: real CLIP, the paper's 0.26
    cbs_gate: float | None = None

    def __init__(self, clip: nn.Module, tokenizer, name: str,
                 mean: tuple[float, ...] = OPENAI_MEAN, std: tuple[float, ...] = OPENAI_STD,
                 mask_prompts: torch.Tensor | None = None):
        super().__init__()
        self.clip, self.tokenizer, self.name = clip, tokenizer, name
        self.clip.eval().requires_grad_(False)  # frozen: no weight gradients are ever kept
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        if mask_prompts is not None:
            check_visual(clip.visual, mask_prompts)
        # OVSeg's learned mask prompts (depth, grid² or 1, width); None: a plain CLIP
        self.register_buffer("mask_prompts", mask_prompts, persistent=False)
        size = clip.visual.image_size
        self.image_size = int(size[0] if isinstance(size, tuple | list) else size)
        self.token_width = int(clip.token_embedding.weight.shape[1])
        self.context_length = int(clip.positional_embedding.shape[0])
        self._text_cache: dict[str, torch.Tensor] = {}

    def train(self, mode: bool = True) -> Teacher:  # the teacher stays in eval mode
        return super().train(False)

    def _input(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], any size → normalised, at the image tower's input size."""
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            images = F.interpolate(images, size=(self.image_size, self.image_size),
                                   mode="bilinear", align_corners=False)
        return (images - self.mean) / self.std

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (any size, resized here) → normalised features. Differentiable."""
        return F.normalize(self.clip.encode_image(self._input(images)), dim=-1)

    def encode_image_masked(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """OVSeg's mask-adapted encoding (harness/mask_clip.py): images (B, 3, H, W) in [0, 1]
        and masks (B, 1, H, W) in [0, 1] of any common size; the patches the mask leaves
        entirely out are replaced by the learned mask prompts. Normalised features,
        differentiable in `images` (never in `masks`, as the reference's ceil)."""
        if self.mask_prompts is None:
            raise BenchError(f"the teacher {self.name} has no mask prompts ({PROMPT_KEY}): "
                             f"the mask-adapted encoder needs {OVSEG_FILE}")
        feats = masked_encode(self.clip.visual, self.mask_prompts, self._input(images), masks)
        return F.normalize(feats, dim=-1)

    def tokens(self, texts: list[str]) -> torch.Tensor:
        """Token ids on the cpu, whatever the default device: the caller moves them (the
        tokenizer makes its tensor without a device; harness/device_check.py)."""
        with torch.device("cpu"):
            return self.tokenizer(texts)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Normalised features of fixed texts, each encoded once per teacher instance."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if todo:
            device = self.mean.device
            tokens = self.tokens(todo).to(device)
            feats = F.normalize(self.clip.encode_text(tokens).float(), dim=-1)
            self._text_cache.update(zip(todo, feats, strict=True))
        return torch.stack([self._text_cache[t] for t in texts])

    def encode_prompts(self, prompts: torch.Tensor) -> torch.Tensor:
        """Learned prompt embeddings (K, L, width) through the frozen text tower.

        The sequence is "SOT a photo of [p_1 … p_L] . EOT", word embeddings replaced by the
        prompts; gradients flow to `prompts` only.
        """
        k, length, _ = prompts.shape
        clip = self.clip
        ids = self.tokens([PROMPT_PREFIX + " ."])[0].to(prompts.device)
        n_prefix = int((ids != 0).sum()) - 3  # "a photo of": all but SOT, ".", EOT
        if 1 + n_prefix + length + 2 > self.context_length:
            raise BenchError(f"prompt_length {length} does not fit the teacher's context "
                             f"length {self.context_length}")
        emb = clip.token_embedding(ids).unsqueeze(0).expand(k, -1, -1)
        head, tail = emb[:, : 1 + n_prefix], emb[:, 1 + n_prefix : 3 + n_prefix]  # tail: ". EOT"
        pad = emb[:, -1:].expand(k, self.context_length - (length + 3 + n_prefix), -1)
        x = torch.cat([head, prompts.to(emb.dtype), tail, pad], dim=1)
        x = x + clip.positional_embedding
        x = clip.transformer(x, attn_mask=clip.attn_mask)
        x = clip.ln_final(x)
        eot = 1 + n_prefix + length + 1
        x = x[:, eot]
        proj = clip.text_projection
        x = proj(x) if isinstance(proj, nn.Linear) else x @ proj
        return F.normalize(x, dim=-1)


def local_clip_weights(arch: str) -> Path | None:
    """An already-downloaded OpenAI checkpoint of `arch` in open_clip's caches (the Hugging
    Face hub cache, or ~/.cache/clip), or None. Never downloads."""
    ensure_torchvision()
    import open_clip

    cfg = open_clip.get_pretrained_cfg(arch, "openai")
    if not cfg:
        return None
    repo = (cfg.get("hf_hub") or "").rstrip("/")
    if repo:
        from huggingface_hub import try_to_load_from_cache

        for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            found = try_to_load_from_cache(repo, filename)
            if isinstance(found, str):
                return Path(found)
    if cfg.get("url"):
        cached = Path.home() / ".cache" / "clip" / cfg["url"].rsplit("/", 1)[-1]
        if cached.is_file():
            return cached
    return None


def _expected_file(arch: str) -> str:
    """What to download, in words, for the one-line missing-weights error."""
    ensure_torchvision()
    import open_clip

    cfg = open_clip.get_pretrained_cfg(arch, "openai")
    if cfg.get("hf_hub"):
        return (f"the OpenAI {arch} weights, e.g. open_clip_pytorch_model.bin from "
                f"huggingface.co/{cfg['hf_hub'].rstrip('/')} or {cfg['url'].rsplit('/', 1)[-1]}")
    return f"an open_clip {arch} .pt/.bin/.safetensors file"


def load_clip_teacher(arch: str, weights: Path | None, allow_random: bool = False,
                      quick_gelu: bool | None = None, mask_prompts: bool = False) -> Teacher:
    """An open_clip model built from its config; weights only from a local file.

    `weights` None: an OpenAI checkpoint already in open_clip's local caches, else random
    init only if `allow_random`, else one line saying which file to provide. `quick_gelu`
    None = QuickGELU for architectures with OpenAI weights (both papers use OpenAI CLIP,
    trained with QuickGELU; open_clip's plain `ViT-B-32` config would use GELU).
    `mask_prompts`: the mask-adapted CLIP (harness/mask_clip.py), whose file must hold mask
    prompts (OVSeg's layout); a plain CLIP file is refused in one line. A file in OVSeg's
    layout also loads without `mask_prompts`, as a plain CLIP (its fine-tuned weights).
    """
    ensure_torchvision()
    import open_clip

    if weights is None and not mask_prompts:  # open_clip's caches hold plain CLIPs only
        weights = local_clip_weights(arch)
    if weights is None and not allow_random:
        if mask_prompts:
            raise BenchError(f"the mask-adapted CLIP {arch} needs local weights: pass --clip-weights "
                             f"PATH with {OVSEG_FILE} (or --set clip_encoder=plain, or "
                             f"--allow-random-weights for smoke tests)")
        raise BenchError(f"CLIP {arch} needs local weights: pass --clip-weights PATH with "
                         f"{_expected_file(arch)} (or --allow-random-weights for smoke tests)")
    if weights is not None and Path(weights).is_dir():
        raise BenchError(f"--clip-weights {weights} is a directory; it takes a file")
    if weights is not None and not Path(weights).is_file():
        raise BenchError(f"CLIP weights file {weights} does not exist")
    if quick_gelu is None:
        quick_gelu = (bool(open_clip.get_pretrained_cfg(arch, "openai").get("quick_gelu"))
                      and not arch.endswith("-quickgelu"))
    import logging

    logging.disable(logging.WARNING)  # open_clip warns "initialized randomly" before we load
    try:
        model = open_clip.create_model(arch, pretrained=None, quick_gelu=quick_gelu)
    except RuntimeError as exc:
        raise BenchError(f"cannot build CLIP {arch}: {str(exc).splitlines()[0]}") from exc
    finally:
        logging.disable(logging.NOTSET)
    if mask_prompts and not hasattr(model.visual, "class_embedding"):
        raise BenchError(f"mask prompts need a ViT image tower; CLIP {arch} has none "
                         f"(use a ViT, e.g. ViT-L-14, or --set clip_encoder=plain)")
    prompts = None
    if weights is not None and mask_prompts:
        prompts = _load_mask_clip_weights(model, Path(weights), arch)
    elif weights is not None:
        _load_clip_weights(model, Path(weights), arch)
    elif mask_prompts:
        prompts = random_prompts(model.visual)
    teacher = Teacher(model, open_clip.get_tokenizer(arch), name=f"open_clip/{arch}",
                      mask_prompts=prompts)
    teacher.weights = str(weights) if weights is not None else None
    return teacher


def load_real_teacher(clip_arch: str, clip_weights: str | None, allow_random_weights: bool,
                      mask_prompts: bool = False) -> tuple[Teacher, dict[str, Any]]:
    """A run's teacher on real data: open_clip `clip_arch` from a local weights file (random
    only when allowed), and what its record says about it. `mask_prompts`: with OVSeg's mask
    prompts (harness/mask_clip.py), from a file that has them."""
    weights = Path(clip_weights) if clip_weights else None
    teacher = load_clip_teacher(clip_arch, weights, allow_random_weights, mask_prompts=mask_prompts)
    info: dict[str, Any] = {"teacher": teacher.name, "weights": teacher.weights or "random"}
    if teacher.mask_prompts is not None:
        info["mask_prompts"] = {"depth": int(teacher.mask_prompts.shape[0]),
                                "per_position": bool(teacher.mask_prompts.shape[1] > 1)}
    return teacher, info


def _load_mask_clip_weights(model: nn.Module, path: Path, arch: str) -> torch.Tensor:
    """The CLIP and its mask prompts from a file in OVSeg's layout (harness/mask_clip.py);
    one line for a plain CLIP file, or a CLIP of another architecture."""
    clip_state, prompts = split_clip_state(read_state(path))
    if prompts is None:
        raise BenchError(f"{path} is a plain CLIP checkpoint without mask prompts ({PROMPT_KEY}): "
                         f"the mask-adapted encoder needs {OVSEG_FILE} (or --set clip_encoder=plain)")
    try:
        model.load_state_dict(clip_state)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:200]
        raise BenchError(f"cannot load CLIP {arch} from {path}: {reason}") from None
    check_visual(model.visual, prompts, what=f"the mask prompts of {path}")
    return prompts.float()


def _load_clip_weights(model: nn.Module, path: Path, arch: str) -> None:
    """open_clip's loader (plain / wrapped state dicts, safetensors); OpenAI TorchScript
    archives (ViT-B-32.pt) through torch.jit; the CLIP inside OVSeg's detectron2 layout.
    Any failure is one line naming the file."""
    from open_clip.factory import load_checkpoint

    try:
        try:
            load_checkpoint(model, str(path))
        except Exception as first:
            if _is_torchscript(path):
                state = torch.jit.load(str(path), map_location="cpu").state_dict()
                for key in ("input_resolution", "context_length", "vocab_size"):
                    state.pop(key, None)
            else:
                state = _wrapped_clip_state(path)
                if state is None:
                    raise first from None
            model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - any failure to read the file is the user's
        from harness.artefacts import unreadable_reason

        raise BenchError(f"cannot load CLIP {arch} from {path}: the file "
                         f"{unreadable_reason(path, exc)} (is it an open_clip {arch} "
                         "checkpoint?)") from None


def _wrapped_clip_state(path: Path) -> dict[str, torch.Tensor] | None:
    """The CLIP's tensors of a file where it sits under a prefix (OVSeg's detectron2 layout,
    its mask prompts left out, or under "model"), or None when it holds no ViT CLIP."""
    try:
        state = read_state(path)
    except BenchError:
        return None
    if clip_prefix(state) is None:
        return None
    return split_clip_state(state)[0]


def _is_torchscript(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
