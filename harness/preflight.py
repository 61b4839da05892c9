"""Open a run's data and load its weights once, as the run's first steps do, without training.

A sweep or a table launches many runs; when the data root or a weights file is wrong, every
one of them fails the same way. The launcher calls `check_inputs` once, before any worker
or Slurm job starts, so the user reads one line (exit 2) instead of N failed trials.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.config import RunConfig
from harness.errors import BenchError


def check_inputs(cfg: RunConfig, cache_dir: Path | None = None,
                 log: Callable[[str], None] = lambda m: None) -> str:
    """Raise one-line BenchError `preflight: …` when `cfg`'s data or weights cannot be
    opened; return a one-line summary of what was opened."""
    try:
        return _check(cfg, cache_dir, log)
    except BenchError as exc:
        raise BenchError(f"preflight (before any worker started): {exc}") from None
    except Exception as exc:  # noqa: BLE001 - an unreadable file, a broken tree: one line
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise BenchError(f"preflight (before any worker started): {type(exc).__name__}: "
                         f"{first}") from None


def _check(cfg: RunConfig, cache_dir: Path | None, log: Callable[[str], None]) -> str:
    import torch

    from harness.cam_checkpoint import load_cam_checkpoint
    from harness.data import default_cache_dir
    from harness.generator import build_generator
    from harness.method import RunContext
    from harness.registry import get_method

    ctx = RunContext(cfg, Path(cache_dir or default_cache_dir()), torch.device("cpu"), log=log,
                     show_progress=False)
    train, evaluation = ctx.dataset("train"), ctx.dataset("eval")
    if not len(train) or not len(evaluation):
        raise BenchError(f"{cfg.dataset}: the train split has {len(train)} images and the eval "
                         f"split {len(evaluation)}; both need at least one")
    opened = [f"{cfg.dataset} train {len(train)} / eval {len(evaluation)} images"]
    if cfg.threshold_split:
        opened.append(f"{cfg.threshold_split} {len(ctx.dataset(cfg.threshold_split))}")
    if get_method(cfg.method).needs_teacher:
        ctx.teacher  # noqa: B018 - loads the CLIP weights (or the synth teacher)
        info = ctx.teacher_info
        opened.append(f"teacher {info.get('weights') or info.get('path') or 'synth'}")
    backbone = getattr(cfg.params, "backbone", None)  # None: the family trains no generator
    if backbone is not None:
        model = build_generator(backbone, len(train.class_names), cfg.backbone_weights,
                                cfg.allow_random_weights)
        opened.append(f"backbone {backbone}"
                      + (f" from {cfg.backbone_weights}" if cfg.backbone_weights else ""))
        if cfg.cam_weights:
            load_cam_checkpoint(model, cfg.cam_weights)
            opened.append(f"CAM baseline {cfg.cam_weights}")
    vqa = Path(cfg.vqa_path) if cfg.vqa_path is not None else None
    if vqa is not None and not vqa.is_dir() and not (vqa.suffix == ".npy" and vqa.is_file()):
        raise BenchError(f"--vqa-path {cfg.vqa_path} is neither a folder (save_pretrained of "
                         "BlipForQuestionAnswering + BlipProcessor, or QA-CLIMS's released "
                         "answers) nor a released VQA answer .npy file")
    if cfg.masks:  # the CRF binding, IRN's backbone weights or a trained IRN of the right layout
        from harness.runner import check_masks

        check_masks(ctx)
        opened.append(f"masks {cfg.masks['pipeline']}"
                      + (f" with IRN {cfg.irn_weights}" if cfg.irn_weights else ""))
    return "preflight ok: " + ", ".join(opened)
