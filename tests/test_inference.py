"""One inference spec per family, read by every consumer of CAMs (harness.infer.InferenceSpec)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harness.generator import build_generator
from harness.infer import REAL_SCALES, SYNTH_SCALES, InferenceSpec, image_cams
from harness.method import RunContext
from harness.registry import get_method
from harness.runner import _evaluate, resolve_config

SMALL = ["n_train=16", "n_eval=8"]


def test_families_declare_their_spec_once():
    semples = get_method("semples").inference
    assert (semples.relu, semples.normalisation) == (False, "minmax")
    cam = get_method("cam").inference
    assert (cam.relu, cam.normalisation, cam.scales, cam.flips) == (True, "max", REAL_SCALES, True)
    assert semples.on("synth").scales == SYNTH_SCALES and semples.on("voc").scales == REAL_SCALES
    with pytest.raises(ValueError, match="normalisation"):
        InferenceSpec(normalisation="sigmoid")


def test_flips_add_the_unflipped_maps_of_the_mirrored_image():
    """flips=True is the image's maps plus its mirror's maps mirrored back; flips=False the
    first term alone."""
    from harness.generator import CamNet, SynthCNN

    torch.manual_seed(0)
    net = CamNet(SynthCNN(), 3).eval()
    img = torch.rand(1, 3, 32, 32)
    one = image_cams(net, img, (1.0,), flips=False)
    mirror = image_cams(net, img.flip(-1), (1.0,), flips=False).flip(-1)
    assert not torch.allclose(one, mirror)  # a CNN's maps are not mirror-symmetric
    assert torch.allclose(image_cams(net, img, (1.0,)), one + mirror, atol=1e-6)


def _zero_share(folder: Path) -> tuple[float, list[float], list[float]]:
    """Share of exact zeros over every class map, and each map's min and max."""
    zeros, total, mins, maxs = 0, 0, [], []
    for path in sorted(folder.glob("*.npy")):
        high = np.load(path, allow_pickle=True).item()["high_res"]
        zeros += int((high == 0).sum())
        total += high.size
        mins += [float(m.min()) for m in high]
        maxs += [float(m.max()) for m in high]
    return zeros / total, mins, maxs


def test_heldout_threshold_is_picked_on_maps_made_like_the_evaluated_ones(cache_dir, tmp_path):
    """SemPLeS's CAMs are min-max normalised raw maps: the held-out split's too (its t was
    picked on max-normalised ReLU'd maps before, about half of their values exact zeros)."""
    cfg = resolve_config("semples", "synth", 0, SMALL, threshold_split="heldout")
    ctx = RunContext(cfg, cache_dir, torch.device("cpu"), show_progress=False)
    torch.manual_seed(0)  # an untrained generator: its raw maps are of both signs
    net = build_generator("synth-cnn", len(ctx.dataset("eval").class_names)).eval()
    scores, _ = _evaluate(ctx, net, tmp_path / "cams")
    eval_zeros, eval_min, eval_max = _zero_share(tmp_path / "cams")
    held_zeros, held_min, held_max = _zero_share(tmp_path / "cams-heldout")
    # min-max: each map spans [0, 1] exactly, with about one zero pixel in 64 × 64
    assert eval_zeros < 0.01 and held_zeros < 0.01, (eval_zeros, held_zeros)
    for mins, maxs in ((eval_min, eval_max), (held_min, held_max)):
        assert max(mins) == 0.0 and min(maxs) == pytest.approx(1.0, abs=1e-3)
    assert scores.provenance["normalisation"] == "minmax" and scores.provenance["relu"] is False


class _LabelGrid(torch.nn.Module):
    """A model with no classifier (CamModel, not CamNet): class k's map is the labels[k]-scaled
    column index of a stride-2 grid, so what reaches `maps` can be read off the output."""

    n_classes, stride = 2, 2

    def maps(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        b, _, h, w = images.shape
        cols = torch.arange(w // 2, dtype=torch.float32).expand(b, 2, h // 2, w // 2)
        return cols * labels[:, :, None, None]


def test_a_model_without_a_classifier_gets_its_labels_through_inference():
    from harness.cam_model import CamModel

    model = _LabelGrid()
    assert isinstance(model, CamModel) and not hasattr(model, "classifier")
    labels = torch.tensor([[1.0, 0.0]])
    one = image_cams(model, torch.zeros(1, 3, 4, 4), (1.0,), flips=False, labels=labels)
    # grid columns (0, 1) → 4 pixels, bilinear (align_corners False): 0, .25, .75, 1
    torch.testing.assert_close(one[0, 0, 0], torch.tensor([0.0, 0.25, 0.75, 1.0]))
    assert float(one[0, 1].abs().max()) == 0.0  # an absent class's map is what the labels made
    both = image_cams(model, torch.zeros(1, 3, 4, 4), (1.0,), labels=labels)
    # the flipped copy got the same labels; un-flipped, its ramp runs the other way: sum 1
    torch.testing.assert_close(both[0, 0], torch.ones(4, 4))


def test_camnet_maps_are_bit_identical_through_the_protocol():
    """What inference computed before the protocol: ReLU(net.cam) summed over the mirror pair
    and resized by the net's own pixel_maps."""
    from harness.generator import CamNet, SynthCNN

    torch.manual_seed(0)
    net = CamNet(SynthCNN(), 3).eval()
    img = torch.rand(2, 3, 30, 30)
    with torch.no_grad():
        x = torch.nn.functional.interpolate(img, scale_factor=0.5, mode="bilinear",
                                            align_corners=False)
        before = torch.zeros(2, 3, 30, 30)
        for y in (img, x):
            both = net.cam(torch.cat([y, y.flip(-1)])).float()
            maps = net.pixel_maps(both, tuple(y.shape[-2:]), (30, 30))
            before += maps[:2] + maps[2:].flip(-1)
    assert torch.equal(image_cams(net, img, (1.0, 0.5)), before)
