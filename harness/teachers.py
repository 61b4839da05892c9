"""Pick the teacher for a run: the embedded synth CLIP, or open_clip from local weights."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.progress import progress_bar

if TYPE_CHECKING:
    from harness.method import RunContext
    from harness.teacher import Teacher


def load_teacher(ctx: RunContext) -> tuple[Teacher, dict[str, Any]]:
    if ctx.cfg.dataset == "synth":
        from harness.synth_teacher import accuracy_line, check_gate, load_or_train

        spec = ctx.data_options()["spec"]
        clip_spec = ctx.synth_teacher_spec()
        with progress_bar("synth teacher", clip_spec.steps, enabled=ctx.show_progress) as advance:
            teacher, info = load_or_train(spec, ctx.cache_dir, clip_spec, log=ctx.log,
                                          progress=lambda s, n, loss: advance(loss=loss))
        check_gate(info)  # one line and exit != 0 when any gate fails
        ctx.log(f"synth teacher passes its gates; zero-shot: {accuracy_line(info)}; "
                f"CBS gate {info['cbs_gate']:.3f}")
        return teacher, info
    from harness.teacher import load_clip_teacher

    weights = Path(ctx.cfg.clip_weights) if ctx.cfg.clip_weights else None
    teacher = load_clip_teacher(ctx.params.clip_arch, weights, ctx.cfg.allow_random_weights)
    return teacher, {"teacher": teacher.name, "weights": teacher.weights or "random"}
