"""Pick the teacher for a run: the embedded synth CLIP, or open_clip from local weights.

Explicit arguments, no run context: the run context (harness.method) owns the type and calls
this module for the loading, so neither imports the other back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.progress import progress_bar

if TYPE_CHECKING:
    from harness.data.synth import SynthSpec
    from harness.synth_teacher import TinyClipSpec
    from harness.teacher import Teacher


def load_synth_teacher(data_spec: SynthSpec, clip_spec: TinyClipSpec, cache_dir: Path,
                       log: Callable[[str], None] = print, show_progress: bool = True
                       ) -> tuple[Teacher, dict[str, Any]]:
    """The embedded tiny CLIP for this synth spec (trained on first use, then cached); fails
    in one line when any of its gates fails."""
    from harness.synth_teacher import accuracy_line, check_gate, load_or_train

    with progress_bar("synth teacher", clip_spec.steps, enabled=show_progress) as advance:
        teacher, info = load_or_train(data_spec, cache_dir, clip_spec, log=log,
                                      progress=lambda s, n, loss: advance(loss=loss))
    check_gate(info)  # one line and exit != 0 when any gate fails
    log(f"synth teacher passes its gates; zero-shot: {accuracy_line(info)}; "
        f"CBS gate {info['cbs_gate']:.3f}")
    return teacher, info


def load_real_teacher(clip_arch: str, clip_weights: str | None, allow_random_weights: bool
                      ) -> tuple[Teacher, dict[str, Any]]:
    """open_clip `clip_arch` from a local weights file (random only when allowed)."""
    from harness.teacher import load_clip_teacher

    weights = Path(clip_weights) if clip_weights else None
    teacher = load_clip_teacher(clip_arch, weights, allow_random_weights)
    return teacher, {"teacher": teacher.name, "weights": teacher.weights or "random"}
