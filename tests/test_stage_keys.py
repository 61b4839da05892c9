"""Stage keys derive from what each stage reads: flip every setting of every family, one
at a time, and assert exactly which stages' keys change (one row per setting).

The keys come from `harness.plan.stage_keys`: each family's own `train` with nothing
trained. A build that reads a setting its declaration leaves out fails there
(`UndeclaredSetting`), and a setting with no row here fails the test, so a new setting
gets a row saying which stages it re-keys.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest

from harness.config import MethodConfig
from harness.errors import BenchError

pytestmark = pytest.mark.slow  # every test here builds every family's stages (untrained) twice per setting

# small and fast: the keys do not depend on the sizes, only on what changes
BASE = ["n_train=16", "n_eval=4", "batch_size=8", "cam_epochs=1", "epochs=1", "limit=0"]

# A value the generic rule (another choice, +1, ×2, not) cannot give, or a row that needs
# another starting point: setting -> (extra base settings, flipped value)
SPECIAL: dict[str, tuple[list[str], str]] = {
    "clip_arch": ([], "RN50"),
    "questions": ([], "fine,scene"),
    "rounds": (["scheme=alternate"], "2"),
}

SHARED = "cam clims semples-a semples-b semples-c qa-clims"
# settings a synth run does not read: refused in one line (harness/reads.py), never keyed
REFUSED = {k: "refused" for k in ("limit", "crop_size", "cam_crop_size", "clip_arch",
                                  "class_names")}
# setting -> the stages whose key changes, per family (cam, clims, semples, qa-clims);
# one string when the same words hold for every family's stages that exist
EXPECTED: dict[str, dict[str, str]] = {
    "cam": {
        "backbone": "cam", "cam_epochs": "cam", "cam_lr": "cam", "cam_momentum": "cam",
        "cam_batch_size": "cam", "batch_size": "cam", "image_size": "cam", "n_train": "cam",
        "p_cooccur": "cam", **REFUSED,
    },
    "clims": {
        "backbone": "cam clims", "cam_epochs": "cam clims", "cam_lr": "cam clims",
        "cam_momentum": "cam clims", "cam_batch_size": "cam clims", "batch_size": "clims",
        "image_size": "cam clims", "n_train": "cam clims", "p_cooccur": "cam clims",
        **REFUSED, "teacher_seed": "clims",
        # CLIMS's paper settings give the CAM stage its own batch: batch_size is CLIMS's only
        **{k: "clims" for k in ("epochs", "lr", "weight_decay", "optimizer", "schedule",
                                "head_lr_mult", "momentum", "align_corners", "w_otm", "w_btm",
                                "w_cbs", "w_reg", "cbs_threshold", "loss_replicas")},
    },
    "semples": {
        "backbone": "cam semples-a semples-b semples-c",
        **{k: "cam semples-a semples-b semples-c"
           for k in ("cam_epochs", "cam_lr", "cam_momentum", "cam_batch_size", "image_size",
                     "n_train", "p_cooccur")},
        **REFUSED,
        "batch_size": "semples-a semples-b semples-c",  # the CAM stage has its own
        "teacher_seed": "semples-a semples-b semples-c",
        "align_corners": "semples-a semples-b semples-c",
        # (a)'s S shapes (b)'s masks, and (c) learns against (b)'s prompts
        **{k: "semples-a semples-b semples-c"
           for k in ("epochs", "lr", "weight_decay", "head_lr_mult", "momentum", "mask_eps",
                     "lambda_b")},
        # the optimizer and schedule of S are also the prompts'
        "optimizer": "semples-a semples-b semples-c", "schedule": "semples-a semples-b semples-c",
        **{k: "semples-b semples-c" for k in ("prompt_epochs", "prompt_lr", "prompt_mask_eps",
                                              "prompt_losses", "lambda_T", "prompt_length",
                                              "prompt_init")},
        "refine_epochs": "semples-c", "lambda_refine": "semples-c",
        # scheme=alternate with one round is the sequential scheme, stage for stage
        "scheme": "",
        "rounds": "semples-b semples-c",
        # from the bare backbone: no CAM stage, (a) and (c) start elsewhere
        "init": "-cam semples-a semples-b semples-c",
    },
    "qa-clims": {
        "backbone": "cam qa-clims",
        **{k: "cam qa-clims" for k in ("cam_epochs", "cam_lr", "cam_momentum", "cam_batch_size")},
        "batch_size": "qa-clims",  # the CAM stage has its own
        **{k: "qape cam qa-clims" for k in ("image_size", "n_train", "p_cooccur")}, **REFUSED,
        "teacher_seed": "qa-clims",
        "vqa_error_rate": "qape qa-clims",
        **{k: "qa-clims" for k in ("epochs", "lr", "weight_decay", "optimizer", "schedule",
                                   "head_lr_mult", "momentum", "align_corners", "alpha", "beta",
                                   "gamma", "omega", "tau", "fat", "brc_form", "questions",
                                   "loss_replicas", "bg_less_pairs", "clip_encoder")},
        # auto is synth on synth: the same answerer, the same corpus
        "vqa": "",
    },
}
FAMILIES = tuple(EXPECTED)


def _flipped(name: str, value, meta: typing.Mapping, typ) -> str:
    if name in SPECIAL:
        return SPECIAL[name][1]
    if typ is bool:
        return str(not value)
    if "choices" in meta:
        return str(next(c for c in meta["choices"] if c != value))
    candidates = [value + 1, value - 1] if typ is int else [value * 2, value / 2, 0.5, 0.1]

    def fits(v) -> bool:
        return (v != value and ("ge" not in meta or v >= meta["ge"])
                and ("gt" not in meta or v > meta["gt"]) and ("le" not in meta or v <= meta["le"])
                and ("lt" not in meta or v < meta["lt"]))

    return str(next(v for v in candidates if fits(v)))


def _rows(family: str, cache_dir) -> dict[str, str]:
    from harness.plan import stage_keys
    from harness.registry import get_method
    from harness.runner import resolve_config

    def config(sets):  # random weights: the ResNet-50 and DeiT rows build, nothing loads
        return resolve_config(family, sets=sets, device="cpu", allow_random_weights=True)

    cls = get_method(family).config_cls
    hints = typing.get_type_hints(cls)
    bases: dict[tuple[str, ...], tuple] = {}
    out = {}
    for f in dataclasses.fields(cls):
        extra = tuple(SPECIAL.get(f.name, ([], None))[0])
        if extra not in bases:
            cfg = config([*BASE, *extra])
            bases[extra] = cfg, dict(stage_keys(cfg, cache_dir))
        base_cfg, base = bases[extra]
        value = getattr(base_cfg.params, f.name)
        sets = [*BASE, *extra, f"{f.name}={_flipped(f.name, value, f.metadata, hints[f.name])}"]
        try:
            cfg = config(sets)
        except BenchError as exc:
            if "is not read by this run" in str(exc):  # declared `read_when` (harness/reads.py)
                out[f.name] = "refused"
                continue
            raise AssertionError(f"{family}: flipping {f.name} is refused ({exc}); give it a "
                                 "SPECIAL row") from None
        keys = dict(stage_keys(cfg, cache_dir))
        changed = [n for n in keys if base.get(n) != keys[n]] + [f"-{n}" for n in base if n not in keys]
        out[f.name] = " ".join(sorted(changed, key=lambda n: n.lstrip("-")))
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_flipping_each_setting_changes_exactly_the_keys_of_the_stages_that_read_it(family, cache_dir):
    rows = _rows(family, cache_dir)
    order = {n: i for i, n in enumerate(["qape", *SHARED.split()])}
    want = {name: " ".join(sorted(EXPECTED[family].get(name, "").split(),
                                  key=lambda n: order.get(n.lstrip("-"), 99)))
            for name in rows}
    got = {name: " ".join(sorted(v.split(), key=lambda n: order.get(n.lstrip("-"), 99)))
           for name, v in rows.items()}
    unlisted = set(EXPECTED[family]) - set(rows)
    assert not unlisted, f"rows for settings {family} does not have: {unlisted}"
    wrong = {name: (got[name], want[name]) for name in rows if got[name] != want[name]}
    assert not wrong, "setting: (keys that changed, expected)\n" + "\n".join(
        f"{name}: {g!r} != {w!r}" for name, (g, w) in sorted(wrong.items()))


def test_every_shared_setting_has_a_row_or_is_read_by_no_stage():
    """A setting no family's stage reads must be one that only evaluation or the data of
    other splits use: it is listed here, so adding a setting means deciding its row."""
    read_by_none = {"n_eval", "crop_size", "cam_crop_size", "clip_arch", "class_names"}
    rows = set().union(*(EXPECTED[f] for f in FAMILIES))
    missing = {f.name for f in dataclasses.fields(MethodConfig)} - rows - read_by_none
    assert not missing, f"shared settings without a row in EXPECTED: {missing}"


def test_a_build_reading_an_undeclared_setting_fails_naming_both(cache_dir, tmp_path):
    import torch

    from harness.method import RunContext
    from harness.runner import resolve_config
    from harness.stages import StageSpec, UndeclaredSetting

    cfg = resolve_config("cam", sets=BASE, device="cpu")
    ctx = RunContext(cfg, cache_dir, torch.device("cpu"), log=lambda _: None,
                     stage_dir=tmp_path)

    def build(folder):
        (folder / "x").write_text(str(ctx.params.cam_lr + ctx.params.lr))

    with pytest.raises(UndeclaredSetting, match="stage toy read setting 'lr', which its "
                       "declaration, and so its cache key, does not cover"):
        ctx.stage(StageSpec("toy", ("cam_lr",)), build)
    folder, key = ctx.stage(StageSpec("toy", ("cam_lr", "lr")), build)
    assert (folder / "x").read_text() == str(cfg.params.cam_lr + cfg.params.lr)
    record = (folder / "deps.json").read_text()
    assert '"cam_lr": 0.1' in record or f'"cam_lr": {cfg.params.cam_lr}' in record
    assert ctx.params is cfg.params  # outside a build: every setting
