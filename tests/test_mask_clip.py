"""OVSeg's mask prompts on open_clip's VisionTransformer (harness/mask_clip.py).

Random init throughout: a small custom config of open_clip's own CLIP class (the same
VisionTransformer code as ViT-L/14), and one test on ViT-L/14 itself. What is checked is the
arithmetic of OVSeg's third_party/CLIP/clip/model.py `VisionTransformer.forward(x, m)`:
masked-out patch tokens *are* the prompts, block by block, and nothing else changes.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harness.errors import BenchError
from harness.mask_clip import masked_encode, patch_keep, random_prompts

SIZE, PATCH = 56, 14  # a 4 × 4 patch grid


def small_teacher(depth: int = 3, seed: int = 0):
    from harness.compat import ensure_torchvision

    ensure_torchvision()
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    from harness.teacher import Teacher

    torch.manual_seed(seed)
    vision = CLIPVisionCfg(layers=4, width=32, head_width=16, patch_size=PATCH, image_size=SIZE)
    text = CLIPTextCfg(context_length=16, vocab_size=49408, width=32, heads=2, layers=1)
    clip = CLIP(embed_dim=24, vision_cfg=vision, text_cfg=text, quick_gelu=True)
    prompts = torch.randn(depth, 16, 32)  # distinct per depth and position
    return Teacher(clip, open_clip.tokenizer.SimpleTokenizer(context_length=16), "small",
                   mask_prompts=prompts)


def hand_mask() -> tuple[torch.Tensor, list[int]]:
    """A mask whose kept patches are known by hand: the top-left 28 × 28 block (patches 0, 1,
    4, 5), one pixel in patch 15 (row 3, col 3) and a faint 0.01 in patch 7 (row 1, col 3)."""
    m = torch.zeros(1, 1, SIZE, SIZE)
    m[..., :28, :28] = 1
    m[..., 55, 55] = 1
    m[..., 20, 43] = 0.01
    return m, [0, 1, 4, 5, 7, 15]


def block_inputs(teacher, images, masks) -> list[torch.Tensor]:
    """The input of every block of the image tower during one masked encode."""
    seen: list[torch.Tensor] = []
    blocks = teacher.clip.visual.transformer.resblocks
    hooks = [b.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
             for b in blocks]
    try:
        with torch.no_grad():
            teacher.encode_image_masked(images, masks)
    finally:
        for h in hooks:
            h.remove()
    assert len(seen) == len(blocks)
    return seen


def test_patch_keep_by_hand_and_as_the_reference_pools():
    m, kept = hand_mask()
    keep = patch_keep(m, (4, 4))
    assert keep.shape == (1, 16, 1)
    assert keep[0, :, 0].nonzero().flatten().tolist() == kept
    # the reference: AvgPool2d(patch, stride=patch), then ceil, at 224 (ViT-L/14's grid 16)
    g = torch.Generator().manual_seed(0)
    soft = torch.rand(3, 1, 224, 224, generator=g) * (torch.rand(3, 1, 224, 224, generator=g) > 0.5)
    soft[:, :, :112] = 0  # whole patches outside the mask, too
    ref = torch.ceil(F.avg_pool2d(soft[:, 0], PATCH, stride=PATCH)).reshape(3, -1, 1)
    torch.testing.assert_close(patch_keep(soft, (16, 16)), ref, rtol=0, atol=0)
    assert 0 < ref.mean() < 1


def test_masked_out_tokens_are_the_prompts_depth_by_depth():
    teacher = small_teacher()
    visual, prompts = teacher.clip.visual, teacher.mask_prompts
    m, kept = hand_mask()
    out = [j for j in range(16) if j not in kept]
    x = torch.rand(1, 3, SIZE, SIZE)
    ins = block_inputs(teacher, x, m)
    # block 0: prompt 0 replaced the patch embedding before the positional embedding and ln_pre
    with torch.no_grad():
        first = visual.ln_pre(prompts[0] + visual.positional_embedding[1:])
    torch.testing.assert_close(ins[0][0, 1:][out], first[out])
    # blocks 1 and 2 (depth 3): their input's masked-out patch rows are prompts 1 and 2, exactly
    for d in (1, 2):
        torch.testing.assert_close(ins[d][0, 1:][out], prompts[d][out], rtol=0, atol=0)
        kept_rows = ins[d][0, 1:][kept]
        assert (kept_rows - prompts[d][kept]).abs().amax(-1).min() > 0.1  # kept: image tokens
    # block 3: past the depth nothing is replaced
    assert (ins[3][0, 1:][out] - prompts[:, out]).abs().amax(-1).min() > 0.1
    # the class token is never a prompt
    for d in (1, 2):
        assert (ins[d][0, 0] - prompts[d]).abs().amax(-1).min() > 0.1


def test_all_ones_mask_is_the_plain_encoder_and_zeros_are_not():
    teacher = small_teacher()
    x = torch.rand(2, 3, 70, 45)  # any size: resized as the plain encoder resizes
    with torch.no_grad():
        plain = teacher.encode_image(x)
        ones = teacher.encode_image_masked(x, torch.ones(2, 1, 70, 45))
        zeros = teacher.encode_image_masked(x, torch.zeros(2, 1, 70, 45))
    torch.testing.assert_close(ones, plain, rtol=0, atol=1e-6)
    assert (zeros - plain).abs().max() > 1e-2
    # every patch prompted: nothing of the image is left, two images give the same features
    with torch.no_grad():
        other = teacher.encode_image_masked(torch.rand(2, 3, 70, 45), torch.zeros(2, 1, 70, 45))
    torch.testing.assert_close(other, zeros)


def test_gradient_reaches_the_image_not_the_mask():
    teacher = small_teacher()
    x = torch.rand(1, 3, SIZE, SIZE, requires_grad=True)
    m, _ = hand_mask()
    m.requires_grad_(True)
    teacher.encode_image_masked(x, m).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert m.grad is None  # the reference's ceil has no gradient either


def test_broadcast_prompts_and_shape_errors():
    teacher = small_teacher()
    visual = teacher.clip.visual
    one = torch.randn(3, 1, 32)  # (depth, 1, width): one prompt per depth, every position
    m, _ = hand_mask()
    x = torch.rand(1, 3, SIZE, SIZE)
    with torch.no_grad():
        a = masked_encode(visual, one, x, m)
        b = masked_encode(visual, one.expand(-1, 16, -1).clone(), x, m)
    assert a.shape == (1, 24)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    from harness.teacher import Teacher

    with pytest.raises(BenchError, match=r"have shape \(3, 9, 32\); this ViT needs"):
        Teacher(teacher.clip, teacher.tokenizer, "bad", mask_prompts=torch.zeros(3, 9, 32))
    assert random_prompts(visual).shape == (3, 16, 32)
    plain = Teacher(teacher.clip, teacher.tokenizer, "plain")
    with pytest.raises(BenchError, match="has no mask prompts"):
        plain.encode_image_masked(torch.rand(1, 3, SIZE, SIZE), m)


@pytest.mark.slow
def test_vit_l_14_at_random_init():
    """The paper's architecture (~300M image-tower parameters), built by open_clip from its
    config: OVSeg's prompt shape (3, 256, 1024) and prompts at the inputs of blocks 1 and 2."""
    from harness.teacher import load_clip_teacher

    teacher = load_clip_teacher("ViT-L-14", None, allow_random=True, mask_prompts=True)
    prompts = teacher.mask_prompts
    assert tuple(prompts.shape) == (3, 256, 1024) and teacher.image_size == 224
    m = torch.zeros(1, 1, 224, 224)
    m[..., :112, 14:] = 1  # patches (r < 8, c ≥ 1) kept
    kept = [r * 16 + c for r in range(8) for c in range(1, 16)]
    out = [j for j in range(256) if j not in kept]
    x = torch.rand(1, 3, 224, 224)
    ins = block_inputs(teacher, x, m)
    for d in (1, 2):
        torch.testing.assert_close(ins[d][0, 1:][out], prompts[d][out], rtol=0, atol=0)
    assert (ins[3][0, 1:][out] - prompts[2][out]).abs().amax(-1).min() > 1e-3
    with torch.no_grad():
        torch.testing.assert_close(teacher.encode_image_masked(x, torch.ones_like(m)),
                                   teacher.encode_image(x), rtol=0, atol=1e-6)


def test_split_clip_state_of_both_layouts():
    from harness.mask_clip import split_clip_state

    t = {n: torch.full((2,), float(i)) for i, n in enumerate(
        ["visual.conv1.weight", "visual.mask_embedding", "token_embedding.weight"])}
    ovseg = {f"clip_adapter.clip_model.{k}": v for k, v in t.items()}
    ovseg["backbone.layers.0.blocks.0.norm1.weight"] = torch.zeros(3)  # Swin: dropped
    ovseg["clip_adapter.non_object_embedding"] = torch.zeros(1, 4)  # the adapter's own: dropped
    for state in (ovseg, dict(t)):
        clip, prompts = split_clip_state(state)
        assert sorted(clip) == ["token_embedding.weight", "visual.conv1.weight"]
        assert prompts.tolist() == [1.0, 1.0] and clip["token_embedding.weight"].tolist() == [2.0, 2.0]
    clip, prompts = split_clip_state({"visual.conv1.weight": t["visual.conv1.weight"]})
    assert prompts is None and list(clip) == ["visual.conv1.weight"]
