"""CUDA discipline, checked on a CPU (harness/device_check.py): one tiny run of every family
with each training step and the CAM inference under `torch.device("meta")` as the default
device while the run's tensors live on cpu, so a tensor a step makes without `device=` fails
there as it would on a GPU. CI runs it (a slow test: every family trains a few steps).

Each registered segmentation model takes one training step (its `loss`) and one inference
(`predict_probs`) the same way; a new model is covered by registering it. The segmentation
stage's own loop is to wrap its step in `harness.device_check.step_scope()`, as harness.loop
does (or train through harness.loop)."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
import torch

from harness.device_check import step_scope, strict_devices
from harness.registry import list_variants
from harness.segment.models import seg_model_names

pytestmark = pytest.mark.slow  # trains every family for a few steps

TINY = ["n_train=16", "n_eval=4", "batch_size=8", "cam_batch_size=8"]
FAMILIES = sorted({v.family for v in list_variants()})


def _tiny_run(family: str, cache_dir, runs_dir, seed: int = 5) -> dict:
    from harness.registry import get_method
    from harness.runner import resolve_config, run

    method = get_method(family)
    trains = bool(method.epoch_fields)  # a training-free family (CLIP-ES) has none
    fields = {f.name for f in dataclasses.fields(method.config_cls)}
    sets = [s for s in TINY if s.partition("=")[0] in fields]  # its own settings only
    cfg = resolve_config(family, "synth", seed, sets, epochs=1 if trains else None, device="cpu")
    return run(cfg, runs_dir=runs_dir, cache_dir=cache_dir, wandb_mode="disabled",
               show_progress=False, log=lambda m: None)


def test_step_scope_is_meta_only_when_strict():
    run_tensor = torch.ones(2)
    assert torch.zeros(1).device.type == "cpu"
    with step_scope():
        assert torch.zeros(1).device.type == "cpu"
    with strict_devices(), step_scope():
        assert torch.zeros(1).device.type == "meta"
        with pytest.raises(RuntimeError, match="meta is not on the expected device cpu"):
            run_tensor + torch.zeros(2)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_steps_and_infers_with_explicit_devices(family, cache_dir, runs_dir):
    with strict_devices():
        record = _tiny_run(family, cache_dir, runs_dir)
    assert record.status == "ok" and record.seed_miou is not None


def test_a_tensor_made_without_device_in_a_loss_fails(cache_dir, runs_dir, monkeypatch):
    """The check itself: a `torch.zeros(())` without device added to the CAM loss stops
    the run under strict devices (and not without)."""
    import methods.cam.method as cam

    real = cam.classification_loss

    def careless(model, batch):
        loss, parts = real(model, batch)
        return loss + torch.zeros(()), parts

    monkeypatch.setattr(cam, "classification_loss", careless)
    # the meta tensor fails at its first contact with the run's: a mixed op, or reading it
    # its own seed: the family test's CAM stage (seed 5) is cached and would train nothing
    with strict_devices(), pytest.raises(RuntimeError, match="meta"):
        _tiny_run("cam", cache_dir, runs_dir, seed=6)
    assert not list(runs_dir.glob("*/result.json"))  # the run stopped: nothing recorded


# transformers' Mask2Former Hungarian matcher makes its index tensors with torch.as_tensor and
# no device (modeling_mask2former.py, Mask2FormerHungarianMatcher.forward): right on CUDA,
# where CPU indices may index CUDA tensors, but meta indices silently index garbage (a NaN
# loss), so its training step is not checkable this way; its inference is
CPU_INDICES_IN_LOSS = {"mask2former"}


@pytest.mark.parametrize("name", seg_model_names())
def test_every_segmentation_model_steps_and_infers_with_explicit_devices(name):
    from harness.segment.infer import predict_probs
    from harness.segment.models import seg_model_spec

    spec = seg_model_spec(name)
    settings = spec.settings()
    torch.manual_seed(0)
    model = spec.factory(7, settings, None).train()
    images = torch.rand(2, 3, 64, 64)
    labels = torch.randint(0, 7, (2, 64, 64))
    labels[:, :4] = 255
    with strict_devices():
        with step_scope() if name not in CPU_INDICES_IN_LOSS else contextlib.nullcontext():
            loss = model.loss(images, labels)
        loss.backward()
        with step_scope(), torch.no_grad():
            probs = predict_probs(model.eval(), images, settings)
    assert torch.isfinite(loss) and probs.shape[:2] == (2, 7) and probs.device.type == "cpu"
