"""When a run reads an option or a setting: declared once, on the field itself.

A `RunOptions` field (harness/run_options.py) or a `MethodConfig` setting (harness/config.py)
whose metadata holds `read_when=ReadWhen(...)` is read only by the runs its test accepts.
Given to any other run, it would be recorded and keyed while changing nothing the run does
(issue 32: `--backbone-weights` on synth moved the cache keys and so the number), so
`refuse_unread` refuses it in one line before anything is made; an option only some families
read (the CLIP weights, the VQA model) is dropped from the others' configs instead, so one
`bench reproduce` or sweep command serves every family. A new option or setting declares its
`read_when` beside its default, and the check covers it with no other edit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.errors import BenchError


@dataclass(frozen=True)
class ReadWhen:
    """`test(run_config) -> bool`: whether runs on such data can read the field (`says`: when,
    in words); given to any other run it is refused. `used(run_config) -> bool` (optional):
    whether this run's family reads it; where not, it is dropped from the config (neither
    recorded nor keyed), so one option set serves every cell of a table or a sweep."""

    says: str
    test: Callable[[Any], bool]
    used: Callable[[Any], bool] | None = None


def _family(cfg: Any):
    from harness.registry import get_method

    return get_method(cfg.method)


def _answers_by_model(cfg: Any) -> bool:
    """A family with a `vqa` setting whose answerer is not synth's scene reader (methods/qape.py)."""
    vqa = getattr(cfg.params, "vqa", None)
    if vqa is None:
        return False
    return (vqa if vqa != "auto" else ("synth" if cfg.dataset == "synth" else "blip")) != "synth"


def _segment_pretrained(cfg: Any) -> bool:
    """A --segment stage whose model starts from a pretrained file (not deeplab-synth): the
    request says so (harness.segment.stage.SegmentRequest.pretrained, from the model's
    registration)."""
    seg = getattr(cfg, "segment", None) or {}
    return bool(seg.get("model")) and bool(seg.get("pretrained", True))


ON_SYNTH = ReadWhen("on synth only", lambda cfg: cfg.dataset == "synth")
ON_REAL_DATA = ReadWhen("on real data only", lambda cfg: cfg.dataset != "synth")
LIMIT = ReadWhen("on real data only (synth sizes its splits with n_train and n_eval)",
                 lambda cfg: cfg.dataset != "synth")
DATA_ROOT = ReadWhen("on real data only (synth is generated, it has no root)",
                     lambda cfg: cfg.dataset != "synth")
CLIP_WEIGHTS = ReadWhen("on real data only (synth has its embedded teacher)",
                        lambda cfg: cfg.dataset != "synth", used=lambda cfg: _family(cfg).needs_teacher)
BACKBONE_WEIGHTS = ReadWhen("by a backbone with ImageNet weights only (not synth-cnn: "
                            "--set backbone=...)",
                            lambda cfg: getattr(cfg.params, "backbone", "synth-cnn") != "synth-cnn")
VQA_PATH = ReadWhen("by a model answerer only (on synth qa-clims answers from the scenes: "
                    "--set vqa=blip to ask a model)",
                    lambda cfg: cfg.dataset != "synth" or _answers_by_model(cfg),
                    used=_answers_by_model)
CAM_WEIGHTS = ReadWhen("by a run that starts from the CAM classifier",
                       lambda cfg: True, used=lambda cfg: "cam" in _family(cfg).stage_epochs(cfg.params))
# a flag, not a file: any run may be given it (one reproduce command for every cell), but only
# a run that loads some pretrained model reads it; on synth that is a --segment model with a
# pretrained init (not deeplab-synth), an ImageNet backbone or a model answerer, elsewhere
# every run (its CLIP, backbone or BLIP)
RANDOM_WEIGHTS = ReadWhen(
    "by a run that loads pretrained weights", lambda cfg: True,
    used=lambda cfg: (cfg.dataset != "synth" or _segment_pretrained(cfg) or _answers_by_model(cfg)
                      or getattr(cfg.params, "backbone", "synth-cnn") != "synth-cnn"))
IRN_WEIGHTS = ReadWhen("with --masks irn only",
                       lambda cfg: bool(cfg.masks) and cfg.masks.get("pipeline") == "irn")


def refuse_unread(cfg: Any, options: type) -> Any:
    """`cfg` without the given options its family does not read (`used`), or one line for the
    first given option (a field of `options`, the RunOptions class) or changed setting that
    no run on its data reads (`test`). An option counts as given when it is not None (or
    True); a setting when it differs from its field default (from --set, a variant or the
    family's dataset defaults)."""
    unused = {}
    for f in dataclasses.fields(options):
        rule = f.metadata.get("read_when")
        if rule is None or getattr(cfg, f.name, None) in (None, False):
            continue
        if not rule.test(cfg):
            flag = "--" + f.name.replace("_", "-")
            raise BenchError(f"{flag} is not read by this run ({cfg.method} on {cfg.dataset}): "
                             f"it is read {rule.says}; leave it out")
        if rule.used is not None and not rule.used(cfg):
            unused[f.name] = None
    refuse_unread_settings(cfg, f"this run ({cfg.method} on {cfg.dataset})")
    return dataclasses.replace(cfg, **unused) if unused else cfg


def refuse_unread_with(cls: type, given: dict[str, Any], options: dict[str, Any]) -> None:
    """One line for a setting the user `--set` (`given`) whose field declares
    `unread_with=OPTION` while that option is given: a stage that loads a file instead of
    training (--cam-weights) reads none of its training settings. Checked on the user's own
    --set only: a family's dataset defaults set them for the runs that do train."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in given.items():
        option = fields[key].metadata.get("unread_with") if key in fields else None
        if option and options.get(option) is not None:
            flag = "--" + option.replace("_", "-")
            raise BenchError(f"--set {key}={value} is not read by this run: with {flag} the "
                             f"stage it configures loads that file and trains nothing; leave it out")


def refuse_unread_settings(cfg: Any, what: str) -> None:
    """The settings half of `refuse_unread`: `cfg` needs `params` and what the rules read
    (`bench eval`'s dataset settings: a namespace of `dataset` and `params`)."""
    for f in dataclasses.fields(cfg.params):
        rule = f.metadata.get("read_when")
        if rule is not None and getattr(cfg.params, f.name) != f.default and not rule.test(cfg):
            raise BenchError(f"setting {f.name}={getattr(cfg.params, f.name)!r} is not read by "
                             f"{what}: it is read {rule.says}; leave it out")
