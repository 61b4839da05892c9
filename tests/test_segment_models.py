"""The segmentation models, their recipes, losses, schedule, inference and submission writer.

Every expectation is computed by hand (in the comments) or read from the reference's files.
"""

from __future__ import annotations

import math
import tarfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from harness.compat import ensure_torchvision
from harness.errors import BenchError, NonFiniteLoss
from harness.segment.deeplabv2 import DeepLabV2, load_weights
from harness.segment.infer import Prediction, predict_probs, score_predictions
from harness.segment.losses import balanced_cross_entropy, cross_entropy, msc_loss
from harness.segment.models import SegModel, get_seg_model, seg_model_names, seg_model_spec
from harness.segment.schedule import make_optimizer, set_lr, train_step
from harness.segment.settings import SegSettings, resolve_seg_settings, seg_settings_help
from harness.segment.submission import write_submission

SMALL = (1, 1, 1, 1)  # DeepLabV2 with one bottleneck per layer: same strides, dilations, ASPP


def test_registry_and_recipes():
    assert {"deeplabv2", "mask2former", "segmenter"} <= set(seg_model_names())
    spec = seg_model_spec("deeplabv2")
    assert spec.recipes == ("coco", "imagenet")
    coco = spec.settings()  # CL configs/voc12_coco_pretrained.yaml
    assert (coco.seg_batch_size, coco.seg_iter_size, coco.seg_iterations) == (5, 2, 20000)
    assert coco.train_scales == (0.5, 0.75, 1.0, 1.25, 1.5) and coco.seg_loss == "ce"
    imnet = spec.settings(["seg_recipe=imagenet", "lambda_b=3"])  # a method's key is not ours
    assert (imnet.seg_batch_size, imnet.seg_iter_size, imnet.seg_iterations) == (10, 2, 30000)
    assert imnet.train_scales == (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
    assert imnet.seg_loss == "balanced_ce"
    assert spec.settings(["seg_recipe=imagenet", "seg_lr=0.001"]).seg_lr == 0.001
    with pytest.raises(BenchError, match="not a recipe of this model"):
        spec.settings(["seg_recipe=segmenter"])
    with pytest.raises(BenchError, match="seg_lr must be > 0"):
        resolve_seg_settings("coco", ["seg_lr=0"])
    with pytest.raises(BenchError, match="unknown segmentation model"):
        get_seg_model("nope")
    assert {k for k, _, _ in seg_settings_help()} >= {"seg_lr", "seg_recipe", "seg_crf_bi_xy"}


def test_normalize_is_caffe_bgr_minus_mean():
    rgb = np.array([[[200, 100, 50]]], np.uint8)  # R, G, B
    out = SegSettings().normalize(rgb)[:, 0, 0]
    # BGR order minus (104.008, 116.669, 122.675), CL configs IMAGE.MEAN
    assert np.allclose(out, [50 - 104.008, 100 - 116.669, 200 - 122.675], atol=1e-4)


def test_deeplabv2_r101_output_stride_8_and_summed_aspp():
    torch.manual_seed(0)
    model = get_seg_model("deeplabv2")(21, SegSettings(), None).eval()
    # ResNet-101: 3 + 4 + 23 + 3 bottlenecks; its backbone holds torchvision resnet101's
    # 44,549,160 parameters less the 1000-way fc (2048·1000 + 1000): 42,500,160
    assert [len(getattr(model, f"layer{i}")) for i in (2, 3, 4, 5)] == [3, 4, 23, 3]
    backbone = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("aspp"))
    assert backbone == 42_500_160
    # Caffe style: the stride sits on the 1×1 reduce conv; layer4/5 dilate 2/4 at stride 1
    assert model.layer3.block1.reduce.conv.stride == (2, 2)
    assert model.layer3.block1.conv3x3.conv.stride == (1, 1)
    assert model.layer4.block1.reduce.conv.stride == (1, 1)
    assert model.layer4.block5.conv3x3.conv.dilation == (2, 2)
    assert model.layer5.block2.conv3x3.conv.dilation == (4, 4)
    assert model.layer1.pool.ceil_mode
    convs = list(model.aspp.children())
    assert [(c.dilation, c.padding) for c in convs] == [((r, r), (r, r)) for r in (6, 12, 18, 24)]
    assert all(c.bias is not None and c.in_channels == 2048 and c.out_channels == 21 for c in convs)
    assert all(abs(float(c.weight.detach().std()) - 0.01) < 1e-3 and not c.bias.any() for c in convs)
    x = torch.randn(1, 3, 65, 65)
    with torch.no_grad():
        feats = model.layer5(model.layer4(model.layer3(model.layer2(model.layer1(x)))))
        out = model(x)
    # 65 → stem conv /2: 33 → ceil-mode pool: 17 → layer3 /2: 9 = ceil(65 / 8)
    assert feats.shape == (1, 2048, 9, 9) and out.shape == (1, 21, 9, 9)
    assert torch.allclose(out, sum(c(feats) for c in convs), atol=1e-5)
    assert not torch.allclose(out, convs[0](feats), atol=1e-3)  # a sum, not one branch


def test_param_groups_and_poly_lrs_by_hand():
    s = resolve_seg_settings("coco", ["seg_iterations=100", "seg_lr=0.01"])
    model = DeepLabV2(3, s, SMALL)
    groups = {g["name"]: g for g in model.param_groups(s)}
    assert set(groups) == {"backbone", "head_weight", "head_bias"}  # BatchNorm frozen: no group
    n_convs = 1 + 4 * 4  # the stem, and per layer reduce, 3×3, increase and the shortcut
    assert len(groups["backbone"]["params"]) == n_convs
    opt = make_optimizer(model.param_groups(s), s)
    assert [g["weight_decay"] for g in opt.param_groups] == [5e-4, 5e-4, 0.0]

    def lrs(it):
        set_lr(opt, it, s)
        return [g["lr"] for g in opt.param_groups]

    # KZ lr_scheduler.py: recomputed every 10 iterations, so 1…10 run at the base lr, 11…20 at
    # base · (1 − 10/100)^0.9 = base · 0.9^0.9 = base · 0.909533, 51…60 at base · 0.5^0.9
    assert lrs(1) == pytest.approx([0.01, 0.1, 0.2])
    assert lrs(10) == pytest.approx([0.01, 0.1, 0.2])
    assert lrs(11) == pytest.approx([0.00909533, 0.0909533, 0.1819066], rel=1e-6)
    assert lrs(55) == pytest.approx([0.00535887, 0.0535887, 0.1071774], rel=1e-6)
    assert lrs(100) == pytest.approx([0.01 * 0.1 ** 0.9, 0.1 * 0.1 ** 0.9, 0.2 * 0.1 ** 0.9])
    assert model.layer2.block1.reduce.bn.training is False  # frozen even in train mode
    model.train()
    assert model.layer2.block1.reduce.bn.training is False and model.aspp.training


def _ce(logits, k):  # −log softmax(logits)[k], by hand
    return -(logits[k] - math.log(sum(math.exp(v) for v in logits)))


def test_cross_entropies_by_hand_and_255_excluded():
    logits = torch.tensor([[[[1.0, 0.0], [2.0, 0.5]], [[0.0, 3.0], [0.0, 0.5]],
                            [[0.5, 0.0], [1.0, 0.0]]]], requires_grad=True)  # (1, 3, 2, 2)
    labels = torch.tensor([[[0, 1], [255, 2]]])
    px = {(0, 0): [1.0, 0.0, 0.5], (0, 1): [0.0, 3.0, 0.0], (1, 1): [0.5, 0.5, 0.0]}
    ce = [_ce(px[(0, 0)], 0), _ce(px[(0, 1)], 1), _ce(px[(1, 1)], 2)]
    loss = cross_entropy(logits, labels)
    assert float(loss) == pytest.approx(sum(ce) / 3, rel=1e-6)
    loss.backward()
    assert not logits.grad[0, :, 1, 0].any()  # the 255 pixel has no gradient
    # CLIMS main_v2.py criterion_balance: (mean over bg pixels + mean over fg pixels) / 2
    assert float(balanced_cross_entropy(logits, labels)) == pytest.approx(
        (ce[0] + (ce[1] + ce[2]) / 2) / 2, rel=1e-6)
    only_bg = torch.tensor([[[0, 0], [255, 255]]])
    assert float(balanced_cross_entropy(logits, only_bg)) == pytest.approx(
        (ce[0] + _ce(px[(0, 1)], 0)) / 2, rel=1e-6)  # no fg pixel: the bg mean, not 0/0
    all_ignored = torch.full((1, 2, 2), 255)
    assert float(cross_entropy(logits, all_ignored)) == 0.0
    assert float(balanced_cross_entropy(logits, all_ignored)) == 0.0


@pytest.mark.parametrize("kind", ["ce", "balanced_ce"])
def test_msc_loss_ignores_what_is_ignored(kind):
    """Image columns 0–1 of an 8×8 image reach only the logits that (after KZ's 0.5 / 0.75
    bilinear resizes, the nearest label resize and the max) sit on label columns 0–3, which
    are 255: changing those columns must change neither the loss nor the gradients, while
    changing a labelled column must."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 1)
    images = torch.randn(2, 3, 8, 8)
    labels = torch.randint(0, 3, (2, 8, 8))
    labels[:, :, :4] = 255

    def run(x):
        conv.zero_grad()
        loss = msc_loss(conv, x, labels, kind)
        loss.backward()
        return float(loss), conv.weight.grad.clone()

    base, grad = run(images)
    ignored = images.clone()
    ignored[:, :, :, :2] = torch.randn(2, 3, 8, 2) * 5
    same, same_grad = run(ignored)
    assert same == pytest.approx(base, rel=1e-6) and torch.allclose(same_grad, grad, atol=1e-6)
    labelled = images.clone()
    labelled[:, :, :, 6:] += 3.0
    assert run(labelled)[0] != pytest.approx(base, rel=1e-3)


class Identity2(SegModel):
    """A stride-1 'model' whose two logits are the image's first two channels."""

    def forward(self, images):
        return images[:, :2]


def test_multiscale_merges_by_hand():
    # channel 0 = [0, 4, 8, 12] along the width, channel 1 = 5 everywhere (4×4 image)
    img = torch.zeros(1, 3, 4, 4)
    img[0, 0] = torch.tensor([0.0, 4, 8, 12])
    img[0, 1] = 5.0
    # bilinear, align_corners False: scale 0.5 → [2, 10] → back to 4: [2, 4, 8, 10];
    # scale 0.75 → [0.667, 6, 11.333] → back to 4: [0.667, 4, 8, 11.333]
    kz = resolve_seg_settings("coco", [])  # test scales 1, 0.5, 0.75, max, no flip
    got = predict_probs(Identity2(), img, kz)[0, 0, 0]  # P(class 0) along a row
    fg_max = torch.tensor([2.0, 4, 8, 12])  # the pixel-wise max of the three views
    assert torch.allclose(got, torch.sigmoid(fg_max - 5), atol=1e-5)
    wt = resolve_seg_settings("coco", ["seg_merge=mean"])
    views = torch.tensor([[0.0, 4, 8, 12], [2, 4, 8, 10], [2 / 3, 4, 8, 34 / 3]])
    got = predict_probs(Identity2(), img, wt)[0, 0, 0]  # mean of each view's softmax
    assert torch.allclose(got, torch.sigmoid(views - 5).mean(0), atol=1e-5)
    flipped = resolve_seg_settings("coco", ["seg_merge=mean", "seg_test_scales=1.0",
                                            "seg_test_flip=true"])
    # a flipped view is flipped back: the identity model gives the same map twice
    assert torch.allclose(predict_probs(Identity2(), img, flipped)[0, 0, 0],
                          torch.sigmoid(views[0] - 5), atol=1e-6)


def test_scores_use_the_evaluation_confusion():
    gt = np.array([[0, 0, 1, 255]])
    pred = np.array([[0, 1, 1, 2]])
    out = score_predictions([Prediction("a", pred, None, gt)], ["cat", "dog"])
    # bg: tp 1, union 2 → 50 %; cat: tp 1, union 2 → 50 %; dog: absent from gt and (counted)
    # prediction (its only pixel is 255 in gt) → NaN, left out of the mean
    assert out["seg_miou"] == pytest.approx(50.0)
    assert out["seg_per_class"]["cat"]["precision"] == pytest.approx(50.0)
    assert out["seg_per_class"]["dog"]["iou"] is None and "seg_miou_crf" not in out


def test_nan_loss_is_one_line_and_no_update():
    s = resolve_seg_settings("coco", ["seg_iter_size=1"])
    model = DeepLabV2(3, s, SMALL).train()
    opt = make_optimizer(model.param_groups(s), s)
    before = model.aspp.c0.weight.detach().clone()
    images = torch.randn(1, 3, 33, 33)
    images[0, 0, 5, 5] = float("nan")
    with pytest.raises(NonFiniteLoss) as err:
        train_step(model, opt, [(images, torch.zeros(1, 33, 33, dtype=torch.long))], 7, s)
    assert "\n" not in str(err.value) and "iteration 7" in str(err.value)
    assert torch.equal(model.aspp.c0.weight, before)


def test_train_step_accumulates_and_moves_the_head():
    torch.manual_seed(0)
    s = resolve_seg_settings("coco", ["seg_iterations=10"])  # ITER_SIZE 2
    model = DeepLabV2(3, s, SMALL).train()  # BatchNorm frozen: the forward is deterministic
    opt = make_optimizer(model.param_groups(s), s)
    x, y = torch.randn(1, 3, 33, 33), torch.randint(0, 3, (1, 33, 33))
    with torch.no_grad():
        single = float(model.loss(x, y))
    before = model.aspp.c0.bias.detach().clone()
    # the same batch twice, each divided by ITER_SIZE 2: the step's loss is that batch's loss
    assert train_step(model, opt, [(x, y), (x, y)], 1, s) == pytest.approx(single, rel=1e-5)
    assert not torch.equal(model.aspp.c0.bias, before)


def test_weights_load_from_timm_resnet_layout(tmp_path):
    ensure_torchvision()  # timm imports torchvision (harness/compat.py says why)
    from timm.models.resnet import Bottleneck, ResNet

    torch.manual_seed(0)
    tv = ResNet(Bottleneck, [1, 1, 1, 1])  # torchvision/timm key layout, random weights
    torch.save(tv.state_dict(), tmp_path / "r.pth")
    model = DeepLabV2(21, SegSettings(), SMALL)
    counts = load_weights(model, tmp_path / "r.pth")
    assert counts["head"] == 0
    assert torch.equal(model.layer1.conv1.conv.weight, tv.conv1.weight)
    assert torch.equal(model.layer3.block1.shortcut.bn.running_var, tv.layer2[0].downsample[1].running_var)
    assert torch.equal(model.layer5.block1.increase.conv.weight, tv.layer4[0].conv3.weight)
    # a full checkpoint (KZ layout, MSC's `base.` prefix) loads head and all
    other = DeepLabV2(21, SegSettings(), SMALL)
    torch.save({f"base.{k}": v for k, v in other.state_dict().items()}, tmp_path / "full.pth")
    load_weights(model, tmp_path / "full.pth")
    assert torch.equal(model.aspp.c3.weight, other.aspp.c3.weight)
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "bad.pth")
    with pytest.raises(BenchError, match="backbone tensors missing"):
        load_weights(model, tmp_path / "bad.pth")


def test_submission_layout_and_palette(tmp_path):
    a = np.array([[0, 1], [15, 20]], np.uint8)
    b = np.zeros((3, 5), np.uint8)
    archive = write_submission(tmp_path, [("2008_000001", a), ("2008_000002", b)])
    assert archive == tmp_path / "results.tar.gz"
    png = tmp_path / "results/VOC2012/Segmentation/comp5_test_cls/2008_000001.png"
    with Image.open(png) as im:
        assert im.mode == "P" and np.array_equal(np.array(im), a)
        pal = im.getpalette()[:3 * 21]
    # the VOC colour map: 0 black, 1 (128, 0, 0), 2 (0, 128, 0), 15 person (192, 128, 128),
    # 20 tvmonitor (0, 64, 128)
    assert pal[0:6] == [0, 0, 0, 128, 0, 0] and pal[6:9] == [0, 128, 0]
    assert pal[45:48] == [192, 128, 128] and pal[60:63] == [0, 64, 128]
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == [
            "results/VOC2012/Segmentation/comp5_test_cls/2008_000001.png",
            "results/VOC2012/Segmentation/comp5_test_cls/2008_000002.png"]
    assert not list(tmp_path.glob(".*tmp*"))


# --- Mask2Former (transformers), seg_arch=small: the same code with a few layers ---------------

@pytest.fixture(scope="module")
def m2f():
    torch.manual_seed(0)
    spec = seg_model_spec("mask2former")
    return spec.factory(4, spec.settings(["seg_arch=small"]), None)


def test_m2f_targets_keep_background_as_a_class():
    from harness.segment.mask2former import targets

    grid = torch.tensor([[[0, 1], [255, 3]], [[255, 255], [2, 2]]])
    masks, classes = targets(grid, 4)
    assert classes[0].tolist() == [0, 1, 3] and classes[1].tolist() == [2]
    assert masks[0].tolist() == [[[1, 0], [0, 0]], [[0, 1], [0, 0]], [[0, 0], [0, 1]]]
    assert masks[1].tolist() == [[[0, 0], [1, 1]]]  # 255 is in no mask


def _m2f_loss(model, masks, classes, aux, labels):
    torch.manual_seed(1)  # the matcher's and the point sampler's draws
    return model.loss_from_outputs(masks, classes, aux, labels)


def test_m2f_loss_keeps_255_out(m2f):
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 64)
    labels = torch.randint(0, 4, (2, 64, 64))
    labels[:, :, :24] = 255  # on the masks' 16×16 grid: columns 0–5 ignored
    out = m2f.net(pixel_values=images, output_auxiliary_logits=True)
    masks = out.masks_queries_logits.detach().requires_grad_()
    classes = out.class_queries_logits.detach()
    aux = [(a["masks_queries_logits"].detach(), a["class_queries_logits"].detach())
           for a in out.auxiliary_logits]
    base = _m2f_loss(m2f, masks, classes, aux, labels)
    base.backward()
    assert torch.isfinite(base) and masks.grad[..., :6].abs().max() == 0  # no gradient there
    assert masks.grad[..., 6:].abs().max() > 0

    def noisy(m, cols):
        m = m.detach().clone()
        m[..., cols] += torch.randn_like(m[..., cols]) * 10
        return m

    ignored = slice(0, 6)
    changed = _m2f_loss(m2f, noisy(masks, ignored), classes,
                        [(noisy(m, ignored), c) for m, c in aux], labels)
    assert float(changed) == pytest.approx(float(base), rel=1e-6)
    labelled = _m2f_loss(m2f, noisy(masks, slice(8, 16)), classes, aux, labels)
    assert float(labelled) != pytest.approx(float(base), rel=1e-3)
    # the ignored pixels taken as background instead (the library's loss, no ignore) differ
    as_bg = _m2f_loss(m2f, masks, classes, aux, torch.where(labels == 255, 0, labels))
    assert float(as_bg) != pytest.approx(float(base), rel=1e-3)
    assert float(_m2f_loss(m2f, masks, classes, aux, torch.full_like(labels, 255))) == 0.0


def test_m2f_semantic_scores(m2f):
    m2f.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = m2f.net(pixel_values=x)
        log_scores = m2f(x)
    # Σ_q P(class k | q) · sigmoid(mask_q), by hand for class 2 at one cell
    p = out.class_queries_logits[0].softmax(-1)[:, 2]
    m = out.masks_queries_logits[0, :, 3, 5].sigmoid()
    assert log_scores.shape == (1, 4, 16, 16)
    assert float(log_scores[0, 2, 3, 5].exp()) == pytest.approx(float((p * m).sum()), rel=1e-5)
    groups = {g["name"]: g for g in m2f.param_groups(m2f.settings)}
    assert groups["backbone"]["lr_mult"] == 0.1 and groups["head_no_decay"]["weight_decay"] == 0
    assert all(".encoder." in n for n, p in m2f.net.named_parameters()
               if any(p is q for q in groups["backbone"]["params"]))


# --- Segmenter (timm DeiT-S + mask transformer, WeakTr's loss) ---------------------------------

def test_segmenter_shapes_and_encoder():
    spec = seg_model_spec("segmenter")
    full = spec.factory(21, spec.settings(), None)
    # timm deit_small_patch16_224 without its 1000-way head: 22,050,664 − 385,000 parameters
    assert sum(p.numel() for p in full.encoder.parameters()) == 21_665_664
    assert len(full.decoder.blocks) == 2 and full.decoder.blocks[0].attn.num_heads == 6
    small = spec.factory(4, spec.settings(["seg_arch=small"]), None).eval()
    with torch.no_grad():
        out = small(torch.randn(1, 3, 50, 70))  # padded to 64×80 inside, cropped back
    assert out.shape == (1, 4, 50, 70)
    with pytest.raises(BenchError, match="own loss"):
        spec.factory(4, spec.settings(["seg_arch=small", "seg_loss=balanced_ce"]), None)


def test_weaktr_clipped_ce_by_hand():
    from harness.segment.segmenter import clipped_ce

    torch.manual_seed(0)
    logits = torch.randn(1, 3, 2, 4, requires_grad=True)
    labels = torch.tensor([[[0, 1, 2, 0], [255, 1, 1, 2]]])
    lp = logits.detach().log_softmax(1)[0]
    ce = np.zeros((2, 4))
    for y in range(2):
        for x in range(4):
            k = int(labels[0, y, x])
            ce[y, x] = 0.0 if k == 255 else -float(lp[k, y, x])
    mean = ce.mean()  # over all 8 pixels: the ignored one counts as 0 (mmseg "mean")
    assert float(clipped_ce(logits, labels, 0.0, 2)) == pytest.approx(mean, rel=1e-6)
    assert float(clipped_ce(logits, labels, mean / 2, 2)) == pytest.approx(mean, rel=1e-6)
    # clipping on: 2×2 patches (columns 0–1, 2–3), cap = max(patch mean, mean), loss ≤ cap
    caps = [max(ce[:, :2].mean(), mean), max(ce[:, 2:].mean(), mean)]
    capped = np.minimum(ce, np.repeat(caps, 2)[None, :])
    loss = clipped_ce(logits, labels, 10.0, 2)
    assert float(loss) == pytest.approx(capped.mean(), rel=1e-6)
    loss.backward()
    assert not logits.grad[0, :, 1, 0].any()  # the 255 pixel
    clipped = ce > np.repeat(caps, 2)[None, :]
    assert clipped.any()
    for y, x in zip(*np.nonzero(clipped), strict=True):  # a capped pixel passes no gradient
        assert not logits.grad[0, :, y, x].any()


def test_crf_with_clims_kernels_matches_pydensecrf_and_cleans_a_speck():
    dcrf = pytest.importorskip("pydensecrf.densecrf")
    utils = pytest.importorskip("pydensecrf.utils")
    from harness.segment.infer import crf_labels

    rgb = np.zeros((12, 16, 3), np.uint8)
    rgb[:, :8] = (200, 30, 30)
    rgb[:, 8:] = (30, 30, 200)
    probs = np.full((3, 12, 16), 0.1, np.float32)
    probs[1, :, :8], probs[2, :, 8:] = 0.8, 0.8
    probs[:, 5, 3] = (0.1, 0.3, 0.6)  # a speck of class 2 inside the class-1 region
    s = SegSettings()  # CL configs CRF: 10 iterations, POS 3/1, BI 4/67/3
    got = crf_labels(rgb, probs, s)
    d = dcrf.DenseCRF2D(16, 12, 3)
    d.setUnaryEnergy(np.ascontiguousarray(utils.unary_from_softmax(probs)))
    d.addPairwiseGaussian(sxy=1, compat=3)
    d.addPairwiseBilateral(sxy=67, srgb=3, rgbim=np.ascontiguousarray(rgb), compat=4)
    assert np.array_equal(got, np.array(d.inference(10)).reshape(3, 12, 16).argmax(0))
    assert got[5, 3] == 1 and (got[:, :8] == 1).all() and (got[:, 8:] == 2).all()


def test_label_resize_is_pils_nearest():
    from harness.segment.losses import resize_labels

    rng = np.random.default_rng(0)
    for (h0, w0), (h, w) in [((375, 500), (281, 375)), ((500, 375), (750, 562)), ((321, 321), (41, 41))]:
        a = rng.integers(0, 21, (h0, w0)).astype(np.uint8)
        pil = np.asarray(Image.fromarray(a).resize((w, h), Image.NEAREST))
        got = resize_labels(torch.from_numpy(a)[None].long(), (h, w))[0].numpy()
        assert np.array_equal(got, pil)  # (torch's nearest-exact misses ~15 % of 500 → 375)


def test_augment_scales_pads_with_ignore_and_crops():
    from harness.segment.augment import augment

    rgb = np.random.default_rng(1).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    label = np.random.default_rng(2).integers(0, 3, (20, 20)).astype(np.uint8)
    s = resolve_seg_settings("coco", ["seg_scales=0.5", "seg_crop=10", "seg_flip=false"])
    img, lab = augment(rgb, label, s, np.random.default_rng(0))  # 20 → 10 = the crop: no draw left
    assert np.array_equal(lab, np.asarray(Image.fromarray(label).resize((10, 10), Image.NEAREST)))
    want = F.interpolate(torch.from_numpy(s.normalize(rgb))[None], size=(10, 10), mode="bilinear",
                         align_corners=False)[0].numpy()
    assert img.shape == (3, 10, 10) and np.allclose(img, want)
    big = resolve_seg_settings("coco", ["seg_scales=1.0", "seg_crop=24", "seg_flip=false"])
    img, lab = augment(rgb, label, big, np.random.default_rng(0))
    # 20×20 padded bottom/right to 24×24 (only placement: top = left = 0)
    assert (lab[20:] == 255).all() and (lab[:, 20:] == 255).all()
    assert np.array_equal(lab[:20, :20], label) and not img[:, 20:].any() and not img[:, :, 20:].any()
    flips = resolve_seg_settings("coco", ["seg_scales=1.0", "seg_crop=20"])
    outs = [augment(rgb, label, flips, np.random.default_rng(k)) for k in range(8)]
    kept = [np.array_equal(lab, label) for _, lab in outs]
    flipped = [np.array_equal(lab, label[:, ::-1]) for _, lab in outs]
    assert all(k != f for k, f in zip(kept, flipped, strict=True))  # one or the other, p 0.5
    assert any(kept) and any(flipped)
    for (img, _), f in zip(outs, flipped, strict=True):  # the image flips with its label
        assert np.allclose(img, s.normalize(rgb)[:, :, ::-1] if f else s.normalize(rgb))
