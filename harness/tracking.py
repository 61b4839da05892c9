"""W&B mirror of a run: config, per-epoch losses, metrics, per-class IoU table, CAM overlays.

Offline by default (no account needed; `wandb sync` uploads later). W&B is a mirror,
never the source of truth: reports read the results store.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

MODES = ("offline", "online", "disabled")


def resolve_mode(cli_mode: str | None) -> str:
    mode = cli_mode or os.environ.get("WANDB_MODE") or "offline"
    if mode == "dryrun":
        mode = "offline"
    if mode not in MODES:
        from harness.errors import BenchError

        raise BenchError(f"--wandb must be one of {', '.join(MODES)} (got {mode!r})")
    return mode


def slurm_job() -> str | None:
    """The Slurm job this process runs in (`ARRAY_TASK` in a job array), else None."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID") or None


class Tracker:
    """One W&B run. Importing wandb and starting its service take seconds (about 14 s on a
    busy 2-core machine), a fixed cost that dominated short cached reruns, so `wandb.init`
    runs in a background thread while the run loads data and trains; the first call that
    needs the run waits for it, and an error of `wandb.init` is raised there."""

    def __init__(self, mode: str, run_dir: Path, name: str, config: dict[str, Any],
                 group: str | None = None, tags: list[str] | None = None):
        self.mode = mode
        self._run = None
        self._starting: threading.Thread | None = None
        self._error: BaseException | None = None
        if mode == "disabled":
            return
        os.environ.setdefault("WANDB_SILENT", "true")
        job = slurm_job()
        if job:  # a run made in a Slurm job says which one (its log is that job's)
            config = {**config, "slurm_job_id": job}
            tags = [*(tags or []), f"slurm-{job}"]
        kwargs = {"project": os.environ.get("WANDB_PROJECT", "wsss-bench"), "name": name,
                  "group": group, "tags": tags, "config": config, "dir": str(run_dir),
                  "mode": mode, "reinit": "create_new"}
        self._starting = threading.Thread(target=self._start, args=(kwargs,), daemon=True,
                                          name="wandb-init")
        self._starting.start()

    def _start(self, kwargs: dict[str, Any]) -> None:
        try:
            import wandb

            self._run = wandb.init(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self._error = exc

    @property
    def run(self):
        """The W&B run (None when disabled), once `wandb.init` has returned."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None
            if self._error is not None:
                error, self._error = self._error, None
                raise error
        return self._run

    def log(self, row: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.log(row)

    def summary(self, record: dict[str, Any], class_names: list[str],
                overlays: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        if self.run is None:
            return
        import wandb

        for key in ("seed_miou", "seed_miou_fixed", "best_threshold", "context_fp", "wall_s"):
            if record.get(key) is not None:
                self.run.summary[key] = record[key]
        ious = record.get("per_class_iou", {})
        self.run.log({"per_class_iou": wandb.Table(columns=["class", "iou"],
                                                    data=[[k, v] for k, v in ious.items()])})
        labels = {0: "background", **{i + 1: n for i, n in enumerate(class_names)}}
        images = [wandb.Image(img, masks={"prediction": {"mask_data": pred, "class_labels": labels},
                                          "ground_truth": {"mask_data": gt, "class_labels": labels}})
                  for img, pred, gt in overlays]
        if len({img.shape for img, _, _ in overlays}) == 1:
            self.run.log({"cam_overlays": images})
        elif images:  # a list of sizes that differ: wandb prints a WARNING line in the run's
            # output (a real dataset's images, VOC's or a folder's): one key per image
            self.run.log({f"cam_overlays/{i}": im for i, im in enumerate(images)})

    def finish(self, exit_code: int = 0) -> None:
        if exit_code and self._error is not None:
            return  # a failing run: keep its own error, not wandb.init's
        if self.run is not None:
            self._run.finish(exit_code=exit_code)
            self._run = None
