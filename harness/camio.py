"""CAM files in the reference code's format: one `<image>.npy` per image holding a dict
with `keys` (indices of the present classes) and `high_res` (len(keys)×H×W, in [0, 1]).
Files made by the official CLIMS / QA-CLIMS code are read as they are."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.errors import BenchError

REQUIRED_KEYS = ("keys", "high_res")
# float32 rounding of a map scaled to [0, 1] stays far inside this; a shifted, rescaled or
# bit-flipped map (issue 32: −0.5 … 0.5, 0 … 255, −70, 1e30) far outside it
RANGE_TOLERANCE = 1e-3


def write_cam(folder: Path, name: str, keys: np.ndarray, high_res: np.ndarray) -> None:
    from harness.oserrors import unwritable

    tmp, path = folder / f".{name}.tmp.npy", folder / f"{name}.npy"
    try:
        np.save(tmp, {"keys": np.asarray(keys, np.int64), "high_res": high_res.astype(np.float32)})
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)  # a failed or interrupted write leaves no temporary file
        if not isinstance(exc, OSError):
            raise
        raise unwritable("CAM file", path, exc) from None


def read_cam(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Load and validate one CAM file against its image's (H, W)."""
    try:
        data = np.load(path, allow_pickle=True)
        data = data.item() if data.dtype == object and data.shape == () else data
    except Exception as exc:  # any unreadable file is the user's input problem
        raise BenchError(f"cannot read CAM file {path}: {type(exc).__name__}: {exc}") from exc
    missing = [k for k in REQUIRED_KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        found = sorted(map(str, data)) if isinstance(data, dict) else f"an array {data.shape}"
        raise BenchError(f"CAM file {path} lacks {' and '.join(map(repr, missing))}: expected a dict "
                         f"with 'keys' and 'high_res' (the reference format), found {found}")
    try:
        keys = np.asarray(data["keys"], np.int64).reshape(-1)
        raw = np.asarray(data["high_res"])
        if raw.dtype.kind != "f":  # e.g. uint8 0-255: a score on those bytes would mean nothing
            raise BenchError(f"CAM file {path}: high_res is {raw.dtype}, expected float maps "
                             "in [0, 1]")
        cams = raw.astype(np.float32, copy=False)
    except (TypeError, ValueError) as exc:
        raise BenchError(f"cannot read CAM file {path}: {type(exc).__name__}: {exc}") from exc
    expected = (len(keys), *shape)
    if cams.shape != expected:
        raise BenchError(f"CAM file {path}: high_res has shape {cams.shape}, expected "
                         f"(len(keys), H, W) = {expected}")
    if not np.isfinite(cams).all():
        raise BenchError(f"CAM file {path}: high_res contains NaN or inf")
    if cams.size and (cams.min() < -RANGE_TOLERANCE or cams.max() > 1 + RANGE_TOLERANCE):
        raise BenchError(f"CAM file {path}: high_res spans {cams.min():.4g} … {cams.max():.4g}, "
                         "outside [0, 1] (the format's maps are scaled to [0, 1])")
    return keys, cams


def per_image_files(folder: Path, image_names: list[str], suffix: str, what: str) -> list[Path]:
    """`folder/<name><suffix>` of every image, or one error naming what is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchError(f"{what} folder {folder} does not exist or is not a folder")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise BenchError(f"{what} folder {folder} is not readable")
    paths = [folder / f"{n}{suffix}" for n in image_names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise BenchError(f"{what} folder {folder} lacks {len(missing)} of {len(paths)} files "
                         f"(first: {missing[0]})")
    return paths


def cam_folder(folder: Path, image_names: list[str]) -> list[Path]:
    """The CAM file of every image, or one error naming what is missing."""
    return per_image_files(folder, image_names, ".npy", "CAM")


def score_folder(evaluator, ds, folder: Path, workers: int = 4,
                 warn: Callable[[str], None] | None = None) -> int:
    """Score every image of `ds` from its CAM file in `folder` into `evaluator` (a
    `harness.evaluate.SeedEvaluator`), files read and scored in `workers` threads.
    Files whose `keys` name classes their image does not have get one warning line (`warn`,
    default stderr): the reference code's keys are the image's labels. Returns the number
    of images."""
    paths = cam_folder(folder, ds.image_names)
    strangers: list[tuple[int, list[int]]] = []

    def load(i: int) -> tuple:
        gt = ds.mask(i)
        keys, high = read_cam(paths[i], gt.shape)
        if len(keys) and (keys.min() < 0 or keys.max() >= len(ds.class_names)):
            raise BenchError(f"CAM file {paths[i]}: keys {keys.tolist()} outside 0…"
                             f"{len(ds.class_names) - 1} ({ds.name} has {len(ds.class_names)} classes)")
        extra = sorted(set(keys.tolist()) - set(np.flatnonzero(ds.labels(i)).tolist()))
        if extra:
            strangers.append((i, extra))
        return keys, high, gt, ds.context_map(i)

    evaluator.add_parallel(len(paths), load, workers)
    if strangers:
        i, extra = min(strangers)
        (warn or _stderr)(f"warning: CAM file {paths[i]}: keys name classes {extra} its image "
                          f"does not have ({len(strangers)} of {len(paths)} files so); scored "
                          "as given")
    return len(paths)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)
