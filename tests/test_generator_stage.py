"""harness.generator_stage: a stage's optimisation declared once, trained once per key.

The declaration gives the stage's settings (so its key) and the loop's optimiser values; the
helper trains a toy module one SGD step (hand-computed), saves it, and serves the second ask
from the cache without training.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.generator_stage import (
    Fixed,
    StageOptim,
    Trainable,
    load_module,
    stage_spec,
    train_generator_stage,
)
from harness.stages import StageSpec


def test_a_declaration_names_its_settings_and_resolves_fixed_values():
    from methods.cam.method import CAM_OPTIM, CamConfig

    assert StageOptim().settings() == ("epochs", "lr", "optimizer", "schedule", "weight_decay",
                                       "momentum", "head_lr_mult")
    assert CAM_OPTIM.settings() == ("cam_epochs", "cam_lr", "cam_momentum")
    o = CAM_OPTIM.resolve(CamConfig(cam_lr=0.2, cam_epochs=3, lr=7.0, optimizer="adamw"))
    # the CAM stage's own recipe, whatever the method's optimiser says
    assert (o.epochs, o.lr, o.optimizer, o.schedule, o.weight_decay, o.momentum,
            o.head_lr_mult) == (3, 0.2, "sgd", "poly", 1e-4, 1e-4, 10.0)
    prompts = StageOptim(epochs=None, lr="prompt_lr", weight_decay=Fixed(0.0), head_lr_mult=None)
    assert prompts.settings() == ("prompt_lr", "optimizer", "schedule", "momentum")


def test_epochs_given_per_call_are_an_input_of_the_key_and_said_once():
    spec = StageSpec("s", ("backbone",), {"seed": 0})
    got = stage_spec(spec, StageOptim(epochs=None), epochs=4)
    assert got.inputs == {"seed": 0, "epochs": 4}
    assert got.settings == ("backbone", "lr", "optimizer", "schedule", "weight_decay",
                            "momentum", "head_lr_mult")
    with pytest.raises(ValueError, match="once"):
        stage_spec(spec, StageOptim(), epochs=4)  # a setting holds them already
    with pytest.raises(ValueError, match="once"):
        stage_spec(spec, StageOptim(epochs=None))


def test_the_cam_stage_key_is_the_one_its_old_declaration_gave(tmp_path):
    """The declaration moved into CAM_OPTIM; the key (so every cached CAM stage) did not."""
    from harness.method import RunContext
    from harness.runner import resolve_config
    from methods.cam.method import CAM_HEAD_LR_MULT, cam_stage_spec

    cfg = resolve_config("clims", "synth", 3, [], device="cpu")
    ctx = RunContext(cfg, tmp_path, torch.device("cpu"))
    own = cfg.params.cam_stage()
    old = StageSpec("cam", settings=("backbone", "cam_epochs", "cam_lr", "cam_momentum"),
                    inputs={"data": ctx.data_key(own["crop_size"]), "seed": 3,
                            "batch_size": own["batch_size"], "head_lr_mult": CAM_HEAD_LR_MULT,
                            "backbone_weights": None})
    assert cam_stage_spec(ctx).key(cfg.params) == old.key(cfg.params)
    assert own == {"batch_size": 16, "crop_size": 0}  # synth: the CAM stage's batch 16


def test_a_stage_trains_once_saves_and_is_served_from_the_cache(tmp_path):
    """w = 1, loss (w − 3)², one plain SGD step at cam_lr 0.1: w = 1 − 0.1·2·(1 − 3) = 1.4."""
    from harness.method import RunContext
    from harness.runner import resolve_config

    cfg = resolve_config("cam", "synth", 0, ["cam_lr=0.1"], device="cpu")
    ctx = RunContext(cfg, tmp_path, torch.device("cpu"), log=lambda _: None,
                     show_progress=False, stage_dir=tmp_path / "stages")
    optim = StageOptim(epochs=Fixed(1), lr="cam_lr", optimizer=Fixed("sgd"),
                       schedule=Fixed("constant"), weight_decay=Fixed(0.0), momentum=Fixed(0.0),
                       head_lr_mult=None)
    built = []

    def setup(o) -> Trainable:
        built.append(o)
        toy = nn.Linear(1, 1, bias=False)
        nn.init.constant_(toy.weight, 1.0)
        return Trainable({"toy": toy}, lambda b: (((toy.weight - 3) ** 2).sum(), {}),
                         groups=[{"params": list(toy.parameters()), "lr": o.lr}],
                         batches=lambda epoch: [{"x": torch.zeros(1)}])

    spec = StageSpec("toy", (), {"seed": 0})
    folder, key = train_generator_stage(ctx, spec, optim, setup, keep=("toy",))
    assert len(built) == 1 and built[0].lr == 0.1
    trained = load_module(ctx, folder, nn.Linear(1, 1, bias=False), "toy")
    assert trained.weight.item() == pytest.approx(1.4, abs=1e-6)
    again, key2 = train_generator_stage(ctx, spec, optim, setup, keep=("toy",))
    assert (again, key2) == (folder, key) and len(built) == 1  # a hit: nothing trains
    # the key covers the declared setting: another cam_lr is another stage
    other = RunContext(resolve_config("cam", "synth", 0, ["cam_lr=0.2"], device="cpu"), tmp_path,
                       torch.device("cpu"), log=lambda _: None, show_progress=False,
                       stage_dir=tmp_path / "stages")
    _, key3 = train_generator_stage(other, spec, optim, setup, keep=("toy",))
    assert key3 != key and len(built) == 2
