"""The real path end to end at real image sizes, with the papers' architectures at random init.

Any image size through every backbone (timm resnet50, deit_small_patch16_224): CAMs at the
image's own size, unchanged where sizes already worked. Every method family through the CLI
on VOC / COCO layouts of odd-sized images (not multiples of 16 or 32). A failure after
training is one line, and the rerun starts at the failed step.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harness.generator import CamNet, build_generator
from harness.infer import REAL_SCALES, image_cams

BACKBONES = ("resnet50", "deit_small_patch16_224")


@pytest.fixture(scope="module")
def generators() -> dict[str, CamNet]:
    torch.manual_seed(0)
    return {name: build_generator(name, 20, allow_random=True).eval() for name in BACKBONES}


@pytest.fixture(params=BACKBONES)
def generator(request, generators) -> CamNet:
    return generators[request.param]


def cams_before(model: CamNet, images: torch.Tensor, scales) -> torch.Tensor:
    """The inference of the previous release (sizes that fill the grid only), kept as the
    reference: flips merged on the grid, one resize per scale."""
    h, w = images.shape[-2:]
    total = torch.zeros(images.shape[0], model.classifier.out_channels, h, w)
    for s in scales:
        x = images if s == 1.0 else F.interpolate(images, scale_factor=s, mode="bilinear",
                                                   align_corners=False)
        cams = model.cam(torch.cat([x, x.flip(-1)]))
        cams = cams[: len(x)] + cams[len(x):].flip(-1)
        total += F.interpolate(cams.float(), size=(h, w), mode="bilinear", align_corners=False)
    return total


# sizes whose every scale (0.5, 1, 1.5, 2) fills the backbone's grid: multiples of 2·stride
@pytest.mark.parametrize("backbone, size", [("resnet50", (64, 64)), ("resnet50", (128, 192)),
                                            ("deit_small_patch16_224", (64, 64)),
                                            ("deit_small_patch16_224", (224, 224))])
@torch.no_grad()
def test_sizes_that_fill_the_grid_give_the_same_cams_as_before(generators, backbone, size):
    model = generators[backbone]
    images = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
    assert torch.equal(image_cams(model, images, REAL_SCALES),
                       cams_before(model, images, REAL_SCALES))


@pytest.mark.parametrize("size", [(137, 101), (150, 113), (375, 500)])
@torch.no_grad()
def test_any_size_gives_cams_at_the_image_size(generator, size):
    images = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(2))
    cams = image_cams(generator, images, REAL_SCALES)
    assert cams.shape == (1, 20, *size)
    assert torch.isfinite(cams).all() and cams.min() >= 0 and cams.max() > 0


@torch.no_grad()
def test_odd_image_is_padded_with_the_mean_colour_and_cropped_back():
    """A DeiT pads to the next multiple of 16 with zeros after normalisation (the ImageNet
    mean colour): padding the image by hand with that colour gives the same grid, and the
    map of the odd image is the padded image's map cropped to the image's pixels."""
    torch.manual_seed(0)
    model = build_generator("deit_small_patch16_224", 5, allow_random=True).eval()
    h, w = 137, 101
    images = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(3))
    padded = model.mean.expand(1, 3, 144, 112).clone()
    padded[..., :h, :w] = images
    odd_maps, padded_maps = model.maps(images), model.maps(padded)
    assert odd_maps.shape[-2:] == (9, 7)
    torch.testing.assert_close(odd_maps, padded_maps, rtol=1e-5, atol=1e-5)
    cropped = F.interpolate(padded_maps, size=(144, 112), mode="bilinear",
                            align_corners=False)[..., :h, :w]
    torch.testing.assert_close(model.pixel_maps(odd_maps, (h, w)), cropped, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_resnet_grid_is_ceil_of_size_over_stride():
    torch.manual_seed(0)
    model = build_generator("resnet50", 3, allow_random=True).eval()
    assert model.stride == 32
    assert model.maps(torch.rand(1, 3, 137, 101)).shape[-2:] == (5, 4)  # ceil(137/32), ceil(101/32)


def test_odd_sizes_train_through_both_backbones(generator):
    """A training step on an odd crop: the loss is finite and every backbone weight gets a
    gradient (the padding does not cut the graph)."""
    generator.train()
    try:
        images = torch.rand(2, 3, 100, 84, generator=torch.Generator().manual_seed(4))
        labels = torch.zeros(2, 20)
        labels[0, 3] = labels[1, 7] = 1
        loss = F.multilabel_soft_margin_loss(generator(images), labels)
        loss.backward()
        grads = [p.grad for p in generator.backbone.parameters() if p.requires_grad]
        assert torch.isfinite(loss) and all(g is not None for g in grads)
    finally:
        generator.zero_grad(set_to_none=True)
        generator.eval()
