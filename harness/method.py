"""What a method is, and the context the engine hands it.

A method family supplies a config class and `train(ctx) -> CamModel` (harness.cam_model: a
trained CamNet, or any model with per-class maps at a stride): its losses and its stages.
The engine owns everything else: data, teacher, stage cache, the training loop, CAM inference,
evaluation, the results store and tracking.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import torch

from harness.cam_model import CamModel
from harness.config import GeneratorConfig, MethodConfig, RunConfig
from harness.data import SegDataset, has_fingerprint, load_dataset
from harness.errors import BenchError
from harness.infer import InferenceSpec
from harness.registry import get_method
from harness.stages import DeclaredSettings, StageSpec

SETTINGS_FALLBACK = "voc"  # the paper settings a dataset without its own gets (settings_source)


class Method:
    """Base of every method family."""

    name: ClassVar[str]
    # its settings; a family that declares none trains a generator without settings of its own
    config_cls: ClassVar[type[MethodConfig]] = GeneratorConfig
    needs_teacher: ClassVar[bool] = True
    # stage name → the setting holding its epochs; `--epochs N` sets every one of them
    epoch_fields: ClassVar[dict[str, str]] = {}
    # how its CAMs are made at inference, read by every consumer of CAMs (RunContext.inference)
    inference: ClassVar[InferenceSpec] = InferenceSpec()

    # the family's paper (methods/<family>/paper.py), whose settings per dataset are this
    # family's defaults; duck-typed: anything with `settings(dataset) -> dict`
    paper: ClassVar[Any] = None

    @classmethod
    def settings_source(cls, dataset: str) -> str:
        """The dataset whose paper settings apply on `dataset`: its own, or VOC's where the
        paper has none (a folder of the user's, a plugin dataset): the papers' main setting
        is VOC's, so that is what a user without settings of their own would start from.
        A run says so once and records it (`settings_from`)."""
        if cls.paper is None or cls.paper.settings(dataset):
            return dataset
        return SETTINGS_FALLBACK

    @classmethod
    def dataset_defaults(cls, dataset: str) -> dict[str, Any]:
        """Paper settings per dataset, applied before the variant's and the user's."""
        return cls.paper.settings(cls.settings_source(dataset)) if cls.paper is not None else {}

    @classmethod
    def mask_defaults(cls, dataset: str) -> dict[str, Any]:
        """The family's pseudo-mask pipeline and its settings on `dataset` (paper.py's
        `mask_settings`; {}: the engine's defaults, no masks)."""
        fn = getattr(cls.paper, "mask_settings", None)
        return fn(cls.settings_source(dataset)) if fn is not None else {}

    @classmethod
    def stage_epochs(cls, params: MethodConfig) -> dict[str, int]:
        """Epochs of each stage these settings train (recorded as `stage_epochs`)."""
        return {stage: getattr(params, name) for stage, name in cls.epoch_fields.items()}

    @classmethod
    def context_losses(cls) -> dict[str, Callable]:
        """This family's losses that, with a real CLIP, reward removing a co-occurring context
        from a mask: name → loss of one row of a `harness.synth.gates.ContextPair` (a
        scalar), at fixed settings. The synth teacher's pair gates measure each one on
        held-out pairs (harness/synth/gates.py); {} = none."""
        return {}

    @classmethod
    def teacher_mask_prompts(cls, params: MethodConfig) -> bool:
        """Whether these settings need the real teacher's mask prompts (OVSeg's mask-adapted
        CLIP, harness/mask_clip.py); a family that encodes masked regions so overrides it."""
        return False

    # the names among `context_losses()` the synth teacher must pass (the others are measured
    # and printed "not enforced yet")
    enforced_context_losses: ClassVar[tuple[str, ...]] = ()

    def train(self, ctx: RunContext) -> CamModel:
        raise NotImplementedError


def data_options(dataset: str, params: MethodConfig, cache_dir: Path, root: str | None = None,
                 seed: int = 0, crop_size: int | None = None) -> dict[str, Any]:
    """Keyword options of `load_dataset` for these settings (shared by run and eval);
    `crop_size` None: the method's own."""
    from harness.synth.data import SynthSpec

    crop = params.crop_size if crop_size is None else crop_size
    opts: dict[str, Any] = {"cache_dir": cache_dir, "limit": params.limit, "root": root,
                            "crop_size": crop, "seed": seed}
    if dataset == "synth":
        opts["spec"] = SynthSpec(image_size=params.image_size, p_cooccur=params.p_cooccur,
                                 n_train=params.n_train, n_eval=params.n_eval)
    return opts


@dataclass
class RunContext:
    """The engine's services for one run."""

    cfg: RunConfig
    cache_dir: Path
    device: torch.device
    resume: bool = False
    log: Callable[[str], None] = print
    on_epoch: Callable[[str, int, dict[str, float]], None] | None = None
    teacher_info: dict[str, Any] = field(default_factory=dict)
    show_progress: bool = True
    # harness/plan.py: every stage is built untrained into `stage_dir` (a throwaway cache),
    # with an untrained synth teacher, to list the keys a run would use
    plan: bool = False
    stage_dir: Path | None = None
    _reading: DeclaredSettings | None = field(default=None, init=False, repr=False)

    @property
    def params(self) -> MethodConfig:
        """The run's settings; inside a stage's build, only those the stage declares."""
        return self._reading if self._reading is not None else self.cfg.params

    @property
    def inference(self) -> InferenceSpec:
        """How this run's CAMs are made, on its dataset: the family's one spec."""
        return get_method(self.cfg.method).inference.on(self.cfg.dataset)

    @cached_property
    def stages(self):
        from harness.cache import StageCache

        return StageCache(self.stage_dir or self.cache_dir, log=self.log)

    def stage(self, spec: StageSpec, build: Callable[[Path], None]) -> tuple[Path, str]:
        """(folder, key) of stage `spec` from the cache; on a miss `build(folder)` runs with
        `params` limited to the settings `spec` declares (harness/stages.py)."""
        def declared_build(folder: Path) -> None:
            with self.reading(spec):
                build(folder)

        return self.stages.get_or_build(spec.name, spec.deps(self.cfg.params), declared_build)

    @contextlib.contextmanager
    def reading(self, spec: StageSpec) -> Iterator[None]:
        """`params` is `spec`'s declared settings only, inside."""
        before = self._reading
        self._reading = DeclaredSettings(self.cfg.params, spec)
        try:
            yield
        finally:
            self._reading = before

    def dataset(self, split: str, crop_size: int | None = None) -> SegDataset:
        """`split` of this run's data; `crop_size` None: the method's training crop."""
        cache = self.__dict__.setdefault("_ds_cache", {})
        if (split, crop_size) not in cache:
            cache[split, crop_size] = load_dataset(self.cfg.dataset, split,
                                                   **self.data_options(crop_size))
        return cache[split, crop_size]

    # the data and the teacher enter a stage's key as inputs
    # (data_key, teacher_key, ...): these read the full settings, also inside a build

    def data_options(self, crop_size: int | None = None) -> dict[str, Any]:
        return data_options(self.cfg.dataset, self.cfg.params, self.cache_dir, self.cfg.data_root,
                            self.cfg.seed, crop_size)

    def data_key(self, crop_size: int | None = None) -> dict[str, Any]:
        """What identifies the training data, for stage-cache keys."""
        p = self.cfg.params
        key: dict[str, Any] = {"dataset": self.cfg.dataset, "limit": p.limit}
        if self.cfg.dataset == "synth":
            key.update(image_size=p.image_size, p_cooccur=p.p_cooccur, n_train=p.n_train)
        else:
            env_root = os.environ.get(f"BENCH_{self.cfg.dataset.upper()}_ROOT")
            key.update(root=self.cfg.data_root or env_root,
                       crop_size=p.crop_size if crop_size is None else crop_size)
            if has_fingerprint(self.cfg.dataset):  # a folder: every other key stays as it was
                key["files"] = self.dataset("train").fingerprint
        return key

    def synth_teacher_spec(self):
        """The embedded teacher this run uses (synth only): its recipe with `teacher_seed`."""
        from harness.synth.teacher import TinyClipSpec

        return TinyClipSpec(seed=self.cfg.params.teacher_seed)

    def teacher_key(self) -> dict[str, Any]:
        """What identifies the teacher, for stage-cache keys: the synth teacher's own cache
        name (its spec and generator version), or the CLIP architecture and weights file."""
        if self.cfg.dataset == "synth":
            from harness.synth.shipped import teacher_name
            from harness.synth.teacher import teacher_path

            path = teacher_path(self.data_options()["spec"], self.synth_teacher_spec(), self.cache_dir)
            return {"teacher": teacher_name(path)}
        # prompts are made of the class words, so the wording keys every prompt-based stage
        key = {"teacher": self.cfg.params.clip_arch, "weights": self.cfg.clip_weights,
               "class_names": self.cfg.params.class_names}
        if self.teacher_mask_prompts():  # only then: every other key stays as it was
            key["mask_prompts"] = True
        return key

    def teacher_mask_prompts(self) -> bool:
        """Whether this run needs the real teacher's mask prompts (its family says)."""
        return get_method(self.cfg.method).teacher_mask_prompts(self.cfg.params)

    def prompt_names(self) -> tuple[str, ...]:
        """The words for each class in prompts and questions (`class_names=voc|clims`)."""
        from harness.wording import prompt_class_names

        return prompt_class_names(self.cfg.dataset, self.dataset("train").class_names,
                                  self.cfg.params.class_names)

    @cached_property
    def teacher(self):
        """The frozen CLIP teacher: the embedded synth CLIP, or open_clip from local weights."""
        if self.plan:  # nothing trains in a plan: an untrained teacher of the same shape
            from harness.synth.teacher import untrained_synth_teacher

            teacher, info = untrained_synth_teacher(self.data_options()["spec"],
                                                    self.synth_teacher_spec())
        elif self.cfg.dataset == "synth":
            if self.teacher_mask_prompts():
                raise BenchError("the synth teacher has no mask prompts: on synth the masked "
                                 "regions go through the plain encoder (--set clip_encoder=plain)")
            from harness.registry import context_gates
            from harness.synth.teacher import load_synth_teacher

            teacher, info = load_synth_teacher(
                self.data_options()["spec"], self.synth_teacher_spec(), self.cache_dir,
                log=self.log, show_progress=self.show_progress,
                pairs=context_gates())
        else:
            from harness.teacher import load_real_teacher

            teacher, info = load_real_teacher(self.cfg.params.clip_arch, self.cfg.clip_weights,
                                              self.cfg.allow_random_weights,
                                              self.teacher_mask_prompts())
        self.teacher_info.update(info)
        return teacher.to(self.device)

    def loader(self, split: str = "train", batch_size: int | None = None, shuffle: bool = True,
               seed_offset: int = 0, crop_size: int | None = None) -> torch.utils.data.DataLoader:
        g = torch.Generator().manual_seed(self.cfg.seed * 1000 + seed_offset)
        cuda = self.device.type == "cuda"
        ds, bs = self.dataset(split, crop_size), batch_size or self.params.batch_size
        # drop the ragged last batch, but never every batch (a `limit` below the batch size)
        return torch.utils.data.DataLoader(
            ds, batch_size=bs, shuffle=shuffle, drop_last=shuffle and len(ds) > bs, generator=g,
            num_workers=4 if cuda else 0, pin_memory=cuda, persistent_workers=False)
