"""What `bench run M --dataset voc|coco` resolves is the papers' settings, for every method
and variant; `--epochs N` reaches every stage; every method shares one CAM baseline.

The expected values are transcribed here from the papers and reference code, independently
of the families' `methods/*/paper.py` (the settings the methods read):
- SemPLeS paper §4.1 (/work/shared/papers/000_*): CLIP ViT-B/32, batch 64, lr 5e-4 (VOC) /
  5e-6 (COCO), 60 epochs, AdamW, cosine; input 224 from its code (main2.py --input-size).
- QA-CLIMS paper §4 "Implementation Details" (/work/shared/papers/001_*): ResNet-50 following
  IRN, SGD poly, 15 epochs, lr 3.5e-4, batch 8 (2 GPUs × 4), "other settings remain the
  same" on COCO; CLIP ViT-L/14 and 512 crops from CVI-SZU/QA-CLIMS (run_voc12_qa_clims.sh,
  step/train_qa_clims.py).
- CLIMS (METHODS.md "Reference training"): ResNet-50, SGD poly lr 2.5e-4, batch 16, 512
  crops, 15 epochs, CLIP ViT-B/32.
- CAM stage = IRN train_cam (CVI-SZU/QA-CLIMS parser.py): 5 epochs, lr 0.1, batch 16, 512.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

PAPER = {
    "cam": {"backbone": "resnet50", "crop": 512, "batch": 16, "lr": 0.1, "epochs": 5,
            "optimizer": "sgd", "schedule": "poly"},
    "clims": {"backbone": "resnet50", "clip": "ViT-B-32", "crop": 512, "batch": 16,
              "lr": 2.5e-4, "epochs": 15, "optimizer": "sgd", "schedule": "poly"},
    "qa-clims": {"backbone": "resnet50", "clip": "ViT-L-14", "crop": 512, "batch": 8,
                 "lr": 3.5e-4, "epochs": 15, "optimizer": "sgd", "schedule": "poly"},
    "semples": {"backbone": "deit_small_patch16_224", "clip": "ViT-B-32", "crop": 224,
                "batch": 64, "lr": {"voc": 5e-4, "coco": 5e-6}, "epochs": 60,
                "optimizer": "adamw", "schedule": "cosine"},
}
CAM_STAGE = {"epochs": 5, "lr": 0.1, "batch": 16, "crop": 512}
LOSS_WEIGHTS = {  # the family's default variant
    ("clims", "voc"): {"w_otm": 10, "w_btm": 24, "w_cbs": 1, "w_reg": 0.2, "cbs_threshold": 0.26},
    ("clims", "coco"): {"w_otm": 2, "w_btm": 14, "w_cbs": 1.25, "w_reg": 0.2,
                        "cbs_threshold": 0.285},
    ("qa-clims", "voc"): {"alpha": 10, "beta": 8, "gamma": 0.2, "omega": 0.1, "tau": 0.7},
    ("qa-clims", "coco"): {"alpha": 30, "beta": 24, "gamma": 0.2, "omega": 0.1, "tau": 0.7},
    ("semples", "voc"): {"lambda_b": 2.4, "lambda_T": 0.02, "lambda_refine": 0.05},
    ("semples", "coco"): {"lambda_b": 0.75, "lambda_T": 0.01, "lambda_refine": 0.2},
}


def _variants() -> list[str]:
    """The variants of the families transcribed above (CLIP-ES's settings: test_clip_es.py; a
    plugin installed beside the project brings its own)."""
    from harness.registry import list_variants

    return [v.name for v in list_variants() if v.family in PAPER]


def _resolve(variant: str, dataset: str, **kw):
    from harness.runner import resolve_config

    root = None if dataset == "synth" else "/data/" + dataset  # synth has none: refused
    return resolve_config(variant, dataset, device="cpu", data_root=root, **kw)


def _cam_key(cfg) -> str:
    from harness.method import RunContext
    from methods.cam.method import cam_stage_spec

    spec = cam_stage_spec(RunContext(cfg, Path("/nonexistent"), torch.device("cpu")))
    return spec.key(cfg.params)


@pytest.mark.parametrize("dataset", ["voc", "coco"])
@pytest.mark.parametrize("variant", _variants())
def test_every_variant_resolves_the_papers_settings(variant, dataset):
    from harness.runner import stage_epochs

    cfg = _resolve(variant, dataset)
    p, paper = cfg.params, PAPER[cfg.method]
    if variant != "cam/deit-s":  # that row is the DeiT-S baseline on purpose
        assert p.backbone == paper["backbone"]
    if "clip" in paper:
        assert p.clip_arch == paper["clip"]
    lr = paper["lr"][dataset] if isinstance(paper["lr"], dict) else paper["lr"]
    assert (p.crop_size, p.batch_size, p.lr, p.optimizer, p.schedule) == (
        paper["crop"], paper["batch"], pytest.approx(lr), paper["optimizer"], paper["schedule"])
    # the CAM stage: IRN's settings whichever method trains it
    assert (p.cam_epochs, p.cam_lr) == (CAM_STAGE["epochs"], CAM_STAGE["lr"])
    if p.optimizer == "sgd":  # IRN's PolyOptimizer really runs momentum = weight_decay = 1e-4
        assert (p.momentum, p.weight_decay) == (1e-4, 1e-4)
    assert p.cam_momentum == 1e-4 and p.align_corners
    assert (p.cam_batch_size or p.batch_size, p.cam_crop_size or p.crop_size) == (
        CAM_STAGE["batch"], CAM_STAGE["crop"])
    epochs = stage_epochs(cfg)
    # the default pseudo masks: IRN for the ResNet-50 families (its 3 epochs, irn run_sample.py;
    # CLIMS and QA-CLIMS with conf_bg_thres 0.1, sem_seg_bg_thres 0.2), SemPLeS's dense CRF
    pipeline, conf_bg, sem_bg = {"cam": ("irn", 0.05, 0.25), "clims": ("irn", 0.1, 0.2),
                                 "qa-clims": ("irn", 0.1, 0.2), "semples": ("crf", 0.05, 0.25)}[cfg.method]
    assert (cfg.masks["pipeline"], cfg.masks["conf_bg_thres"], cfg.masks["sem_seg_bg_thres"]) == (
        pipeline, conf_bg, sem_bg)
    assert epochs.pop("irn", None) == (3 if pipeline == "irn" else None)
    if cfg.method == "cam":
        assert epochs == {"cam": 5}
    else:
        own = {k: v for k, v in epochs.items() if k != "cam"}
        # every stage, semples/joint's too (its S trains refine_epochs: the scheme rule)
        assert set(own.values()) == {paper["epochs"]}, epochs
        assert epochs.get("cam") == 5
    if variant == cfg.method and (cfg.method, dataset) in LOSS_WEIGHTS:
        for name, value in LOSS_WEIGHTS[cfg.method, dataset].items():
            assert getattr(p, name) == pytest.approx(value), name


@pytest.mark.parametrize("dataset", ["voc", "coco"])
def test_one_cam_baseline_per_dataset_and_seed(dataset):
    cam = _cam_key(_resolve("cam", dataset))
    assert _cam_key(_resolve("clims", dataset)) == cam
    assert _cam_key(_resolve("qa-clims", dataset)) == cam
    # SemPLeS's generator is a DeiT-S: its baseline is the `cam/deit-s` row, same settings
    deit = _cam_key(_resolve("cam/deit-s", dataset))
    assert deit != cam
    assert {_cam_key(_resolve(v, dataset)) for v in _variants() if v.startswith("semples")} == {deit}
    assert _cam_key(_resolve("semples", dataset, sets=["backbone=resnet50"])) == cam
    assert _cam_key(_resolve("clims", dataset, seed=1)) != cam  # per seed
    # --epochs N reaches the CAM stage too, and the rows stay equal
    assert (_cam_key(_resolve("clims", dataset, epochs=1))
            == _cam_key(_resolve("cam", dataset, epochs=1)) != cam)


def test_epochs_reaches_every_stage_and_set_still_wins():
    from harness.runner import stage_epochs

    assert stage_epochs(_resolve("semples", "voc", epochs=2)) == {
        "cam": 2, "semples-a": 2, "semples-b": 2, "semples-c": 2}
    # and IRN's, where the pseudo masks train it (qa-clims's default on coco)
    assert stage_epochs(_resolve("qa-clims", "coco", epochs=3)) == {"cam": 3, "qa-clims": 3, "irn": 3}
    assert stage_epochs(_resolve("clims", "synth", epochs=1)) == {"cam": 1, "clims": 1}
    assert stage_epochs(_resolve("semples/match-only", "voc", epochs=1)) == {
        "cam": 1, "semples-c": 1}  # no prompts: no (b), nor the (a) that only feeds it
    sets = ["prompt_epochs=4", "cam_epochs=2"]
    assert stage_epochs(_resolve("semples", "voc", epochs=1, sets=sets)) == {
        "cam": 2, "semples-a": 1, "semples-b": 4, "semples-c": 1}
    assert stage_epochs(_resolve("semples", "voc", sets=["init=backbone"])).get("cam") is None


def test_list_settings_says_how_to_set_one_stage(monkeypatch, capsys):
    import sys

    from cli import main

    monkeypatch.setattr(sys, "argv", ["bench", "list", "--settings"])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_:
        main()
    assert not exit_.value.code
    out = capsys.readouterr().out
    assert "semples epochs: --epochs N sets every stage" in out
    assert "semples-b: --set prompt_epochs=N" in out and "cam: --set cam_epochs=N" in out
    # the segmentation stage's models, recipes and settings, with what each recipe sets
    assert ("segmentation models (--segment): deeplab-synth, deeplabv2, mask2former, segmenter; "
            "recipes (--set seg_recipe=): coco, imagenet, m2f, segmenter, synth") in out
    assert "tables: " in out and ", final" in out
    seg_lr = next(line for line in out.splitlines() if line.startswith("│ seg_lr "))
    # the field default is CLIMS's DeepLabV2 lr; m2f and synth set their own
    assert "│ 0.00025 " in seg_lr and "m2f: 0.0001" in seg_lr and "synth: 0.01" in seg_lr


def test_epochs_is_refused_by_a_family_that_names_no_stage_epochs(monkeypatch):
    from harness import registry
    from harness.errors import BenchError
    from harness.method import Method

    class Bare(Method):
        name = "bare-family"

    monkeypatch.setitem(registry._METHODS, "bare-family", Bare)
    monkeypatch.setitem(registry._VARIANTS, "bare-family",
                        registry.Variant("bare-family", "bare-family", "", dict))
    assert _resolve("bare-family", "synth").params.epochs == 6  # no --epochs: fine
    with pytest.raises(BenchError, match=r"--epochs is not read by this run: bare-family names "
                       r"no stage epochs .* no --segment stage was asked for"):
        _resolve("bare-family", "synth", epochs=2)
    # a --segment stage reads it (its iterations), so the same family takes it there
    assert _resolve("bare-family", "synth", epochs=2, segment="deeplab-synth").segment["epochs"] == 2


def test_settings_apply_in_order_dataset_variant_epochs_set(monkeypatch):
    """The order `resolve_config` (and the README) states: the family's dataset defaults
    (its paper's settings), then the variant's overrides, then --epochs, then --set; each
    later one wins. CLIMS on VOC: lr 2.5e-4, 15 epochs, batch 16 (the paper's)."""
    from harness import registry

    probe = registry.Variant("clims/order-probe", "clims", "", lambda: {"lr": 0.123, "epochs": 7})
    monkeypatch.setitem(registry._VARIANTS, probe.name, probe)
    p = _resolve("clims/order-probe", "voc").params
    assert (p.lr, p.epochs, p.batch_size) == (0.123, 7, 16)  # the variant beats the dataset
    p = _resolve("clims/order-probe", "voc", epochs=3).params
    assert (p.lr, p.epochs, p.cam_epochs) == (0.123, 3, 3)  # --epochs beats the variant
    p = _resolve("clims/order-probe", "voc", epochs=3, sets=["epochs=4", "lr=0.5"]).params
    assert (p.lr, p.epochs, p.cam_epochs) == (0.5, 4, 3)  # --set beats both
