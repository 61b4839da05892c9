"""CAM files in the reference code's format: one `<image>.npy` per image holding a dict
with `keys` (indices of the present classes) and `high_res` (len(keys)×H×W, in [0, 1]).
Files made by the official CLIMS / QA-CLIMS code are read as they are."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from harness.errors import BenchError

REQUIRED_KEYS = ("keys", "high_res")


def write_cam(folder: Path, name: str, keys: np.ndarray, high_res: np.ndarray) -> None:
    tmp = folder / f".{name}.tmp.npy"
    np.save(tmp, {"keys": np.asarray(keys, np.int64), "high_res": high_res.astype(np.float32)})
    os.replace(tmp, folder / f"{name}.npy")


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
        cams = np.asarray(data["high_res"], np.float32)
    except (TypeError, ValueError) as exc:
        raise BenchError(f"cannot read CAM file {path}: {type(exc).__name__}: {exc}") from exc
    expected = (len(keys), *shape)
    if cams.shape != expected:
        raise BenchError(f"CAM file {path}: high_res has shape {cams.shape}, expected "
                         f"(len(keys), H, W) = {expected}")
    if not np.isfinite(cams).all():
        raise BenchError(f"CAM file {path}: high_res contains NaN or inf")
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


def score_folder(evaluator, ds, folder: Path, workers: int = 4) -> int:
    """Score every image of `ds` from its CAM file in `folder` into `evaluator` (a
    `harness.evaluate.SeedEvaluator`), files read and scored in `workers` threads.
    Returns the number of images."""
    paths = cam_folder(folder, ds.image_names)

    def load(i: int) -> tuple:
        gt = ds.mask(i)
        keys, high = read_cam(paths[i], gt.shape)
        if len(keys) and (keys.min() < 0 or keys.max() >= len(ds.class_names)):
            raise BenchError(f"CAM file {paths[i]}: keys {keys.tolist()} outside 0…"
                             f"{len(ds.class_names) - 1} ({ds.name} has {len(ds.class_names)} classes)")
        return keys, high, gt, ds.context_map(i)

    evaluator.add_parallel(len(paths), load, workers)
    return len(paths)
