"""The pseudo-mask stages, content-addressed in the stage cache.

Every stage's key holds the SHA-256 of the CAM files it reads (names and bytes), the images
they belong to and its own parameters, nothing else: a sweep whose change leaves the CAMs as
they were reuses the masks, and one that changes only the random walk (β, the background
plane) reuses the trained IRN.

    crf:  masks_crf  (CAMs → dense CRF masks)
    irn:  irn_labels (CAMs → IR labels) → irn (IRN trained on them) → masks_irn (random walk)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.artefacts import files_sha256
from harness.camio import cam_folder, read_cam
from harness.errors import BenchError, in_stage
from harness.masks import crf
from harness.masks.pngio import write_mask
from harness.masks.settings import MaskSettings
from harness.progress import progress_bar
from harness.provenance import recorded_sha256

MASKS = "masks"  # the folder of PNGs inside a mask stage


def cams_digest(folder: Path, names: list[str]) -> str:
    """SHA-256 over the CAM files of `names`, in order (name and bytes of each)."""
    return files_sha256(cam_folder(folder, names))


def _cams(folder: Path, ds, i: int, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return read_cam(Path(folder) / f"{ds.image_names[i]}.npy", img.shape[:2])


def check_pipeline(settings: MaskSettings) -> None:
    """Fail before any training: both pipelines need the dense CRF binding."""
    if settings.pipeline != "none":
        crf.require_densecrf()


def check_weights(ctx, settings: MaskSettings) -> None:
    """IRN's backbone weights, or a trained IRN of the right layout, before any training."""
    if settings.pipeline != "irn":
        return
    given = getattr(ctx.cfg, "irn_weights", None)
    if not given:
        _irn_backbone_weights(ctx)
        return
    from harness.generator import read_state_dict
    from harness.masks.irn_net import IRNet, load_irn_state

    load_irn_state(IRNet(settings.irn_backbone), read_state_dict(Path(given), "IRN"), given)


def crf_params(dataset: str, pipeline: str) -> crf.CrfParams:
    if pipeline == "irn":
        return crf.IRN_CRF
    return crf.SEMPLES_CRF_COCO if dataset == "coco" else crf.SEMPLES_CRF


def make_masks(ctx, ds, cam_dir: Path, settings: MaskSettings,
               seed_threshold: float) -> tuple[Path, dict[str, Any]]:
    """Build (or reuse) the masks of `ds` from the CAM files in `cam_dir` → (PNG folder,
    provenance). `ctx`: a harness.method.RunContext; `seed_threshold`: the seed's best t."""
    digest = cams_digest(cam_dir, ds.image_names)
    # the images: where they come from and which (the digest names them); not the training
    # crop or the family, so any run or `bench masks` over the same CAM files shares the stage
    images = {k: v for k, v in ctx.data_key().items() if k not in ("crop_size", "limit")}
    base = {"cams_sha256": digest, "data": {**images, "split": ds.split, "images": len(ds.image_names)}}
    params = crf_params(ctx.cfg.dataset, settings.pipeline)
    prov: dict[str, Any] = {"pipeline": settings.pipeline, "cams_sha256": digest,
                            "crf": dataclasses.asdict(params), "device": str(ctx.device)}
    if settings.pipeline == "crf":
        bg = settings.crf_bg_threshold or seed_threshold
        deps = {**base, "bg_threshold": bg, "crf": dataclasses.asdict(params)}
        folder, key = ctx.stages.get_or_build(
            "masks_crf", deps, lambda out: _crf_masks(out, ds, cam_dir, bg, params, ctx.show_progress))
        prov.update(bg_threshold=bg, bg_threshold_rule="--mask-set crf_bg_threshold" if
                    settings.crf_bg_threshold else "the seed's best threshold (the release's --curve)",
                    stage_key=key, reference="kuongan/SemPLeS evaluation.py --out-crf, tool/imutils.py")
        return folder / MASKS, prov
    if settings.pipeline == "irn":
        return _irn(ctx, ds, cam_dir, settings, base, params, prov)
    raise BenchError(f"no pseudo-mask pipeline {settings.pipeline!r} (irn, crf or none)")


def _crf_masks(out: Path, ds, cam_dir: Path, bg: float, params: crf.CrfParams,
               show_progress: bool) -> None:
    (out / MASKS).mkdir()
    with in_stage("dense CRF masks"), progress_bar("CRF masks", len(ds), enabled=show_progress) as advance:
        for i, name in enumerate(ds.image_names):
            img = ds.image(i)
            keys, high = _cams(cam_dir, ds, i, img)
            write_mask(out / MASKS, name, crf.crf_mask(img, keys, high, bg, params))
            advance()


def _irn(ctx, ds, cam_dir, s: MaskSettings, base, params, prov):
    from harness.masks.irlabel import ir_label

    def labels(out: Path) -> None:
        (out / MASKS).mkdir()
        with progress_bar("IR labels", len(ds), enabled=ctx.show_progress) as advance:
            for i, name in enumerate(ds.image_names):
                img = ds.image(i)
                keys, high = _cams(cam_dir, ds, i, img)
                write_mask(out / MASKS, name, ir_label(img, keys, high, s.conf_fg_thres,
                                                       s.conf_bg_thres, params))
                advance()

    label_deps = {**base, **s.stage_params("conf_fg_thres", "conf_bg_thres"),
                  "crf": dataclasses.asdict(params)}
    label_dir, label_key = ctx.stages.get_or_build("irn_labels", label_deps, labels)
    net, irn_key, irn_prov = _trained_irn(ctx, ds, label_dir / MASKS, label_key, s)

    def masks(out: Path) -> None:
        _random_walk_masks(out, ctx, ds, cam_dir, net, s)

    rw = s.stage_params("beta", "exp_times", "sem_seg_bg_thres", "rw_radius", "irn_crop_size")
    folder, key = ctx.stages.get_or_build("masks_irn", {**base, "irn": irn_key, **rw}, masks)
    prov.update(ir_labels={"stage_key": label_key, **s.stage_params("conf_fg_thres", "conf_bg_thres")},
                irn=irn_prov, random_walk=rw, stage_key=key,
                reference="jiwoon-ahn/irn step/cam_to_ir_label.py, train_irn.py, make_sem_seg_labels.py")
    return folder / MASKS, prov


def _random_walk_masks(out: Path, ctx, ds, cam_dir: Path, net, s: MaskSettings) -> None:
    from harness.masks.random_walk import semantic_labels, strided_cams

    (out / MASKS).mkdir()
    net.eval()
    with in_stage("random walk"), progress_bar("random walk", len(ds), enabled=ctx.show_progress) as advance:
        for i, name in enumerate(ds.image_names):
            img = ds.image(i)
            keys, high = _cams(cam_dir, ds, i, img)
            x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div(255)
            edge = net.boundary(x.to(ctx.device), s.irn_crop_size).float()
            cams = strided_cams(high).to(ctx.device)
            with torch.no_grad():
                label = semantic_labels(cams, keys, edge, img.shape[:2], s.sem_seg_bg_thres,
                                        s.rw_radius, s.beta, s.exp_times)
            write_mask(out / MASKS, name, label)
            advance()


def _trained_irn(ctx, ds, label_dir: Path, label_key: str, s: MaskSettings):
    """IRN trained on the IR labels (a cached stage), or the --irn-weights checkpoint."""
    from harness.masks.irn_net import IRNet, load_irn_state

    net = IRNet(s.irn_backbone)
    given = getattr(ctx.cfg, "irn_weights", None)
    if given:
        from harness.generator import read_state_dict

        load_irn_state(net, read_state_dict(Path(given), "IRN"), given)
        sha = recorded_sha256(given)
        return net.to(ctx.device), f"file:{sha}", {"weights": given, "weights_sha256": sha}
    backbone = _irn_backbone_weights(ctx)
    deps = {"labels": label_key, "seed": ctx.cfg.seed, "backbone_weights_sha256": recorded_sha256(backbone),
            **s.stage_params("irn_backbone", "irn_crop_size", "irn_batch_size", "irn_epochs", "irn_lr",
                             "irn_weight_decay", "irn_momentum", "irn_radius", "irn_limit")}

    def build(out: Path) -> None:
        _train_irn(ctx, ds, label_dir, net, backbone, s, key)
        torch.save(net.state_dict(), out / "irn.pt")

    from harness.cache import stage_key

    key = stage_key("irn", deps)
    folder, key = ctx.stages.get_or_build("irn", deps, build)
    net.load_state_dict(torch.load(folder / "irn.pt", map_location="cpu", weights_only=True))
    prov = {"stage_key": key, "backbone_weights_sha256": deps["backbone_weights_sha256"],
            **{k: v for k, v in deps.items() if k.startswith("irn_")}}
    return net.to(ctx.device), key, prov


def _irn_backbone_weights(ctx) -> str | None:
    """IRN's frozen ResNet-50 starts from ImageNet weights: --backbone-weights when the family's
    own backbone is that ResNet-50; random only on synth or with --allow-random-weights."""
    p = ctx.params
    weights = ctx.cfg.backbone_weights if getattr(p, "backbone", "") == "resnet50" else None
    if weights is None and ctx.cfg.dataset != "synth" and not ctx.cfg.allow_random_weights:
        from harness.generator import _EXPECTED

        raise BenchError(f"--masks irn: IRN's frozen backbone resnet50 needs local ImageNet weights: "
                         f"pass --backbone-weights PATH with {_EXPECTED['resnet50']} (a ResNet-50 "
                         "family's), or --irn-weights with a trained IRN, or --masks none "
                         "(or --allow-random-weights for smoke tests)")
    return weights


def _train_irn(ctx, ds, label_dir: Path, net, backbone: str | None, s: MaskSettings, key: str) -> None:
    from harness.generator import read_state_dict
    from harness.loop import Stage, train_stage
    from harness.masks.irn_train import AffinityDataset, AffinityLoss, displacement_mean
    from harness.masks.path_index import PathIndex
    from harness.masks.pngio import read_mask

    if backbone is not None:
        state = read_state_dict(Path(backbone), "IRN backbone")
        missing, _ = net.resnet50.load_state_dict(state, strict=False)
        if len(missing) > len(state) // 2:
            raise BenchError(f"backbone weights {backbone} do not match IRN's ResNet-50 "
                             f"({len(missing)} tensors missing)")
    n = min(len(ds), s.irn_limit) if s.irn_limit else len(ds)
    n_labels = len(ds.class_names) + 1
    pi = PathIndex(s.irn_radius, (s.irn_crop_size // 4, s.irn_crop_size // 4))
    names = ds.image_names

    def label(i: int) -> np.ndarray:
        img_shape = ds.image(i).shape[:2]
        return read_mask(label_dir / f"{names[i]}.png", img_shape, n_labels)

    data = AffinityDataset(ds.image, label, n, s.irn_crop_size, pi, n_labels)
    bs = min(s.irn_batch_size, n)
    cuda = ctx.device.type == "cuda"

    def batches(epoch: int):
        g = torch.Generator().manual_seed(ctx.cfg.seed * 1000 + 7 + epoch)
        return torch.utils.data.DataLoader(data, batch_size=bs, shuffle=True, drop_last=True, generator=g,
                                           num_workers=4 if cuda else 0, pin_memory=cuda)

    net.to(ctx.device)
    loss = AffinityLoss(net, pi).to(ctx.device)
    edge_params, dp_params = net.trainable_parameters()
    groups = [{"params": edge_params, "lr": s.irn_lr, "weight_decay": s.irn_weight_decay},
              {"params": dp_params, "lr": 10 * s.irn_lr, "weight_decay": s.irn_weight_decay}]
    stage = Stage("irn", key, {"irn": net}, groups, loss, s.irn_epochs, optimizer="sgd",
                  schedule="poly", weight_decay=s.irn_weight_decay, momentum=s.irn_momentum,
                  batches=batches)
    train_stage(ctx, stage)
    net.mean_shift.running_mean.copy_(
        displacement_mean(net, ds.image, n, s.irn_crop_size, ctx.device, bs).to(net.mean_shift.running_mean))
