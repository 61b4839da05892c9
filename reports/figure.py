"""The papers' qualitative figure (SemPLeS Fig. 3, QA-CLIMS Fig. 3): rows are images;
columns are the image, its ground truth, then each run's CAM overlay and, where the run made
pseudo masks, its mask.

The panels are composed as one RGB array (`grid`), which matplotlib places unresampled
(`figimage`) below the column titles and right of the row names: every panel pixel lands
on a known PNG pixel, so the figure is tested on pixel values. An image whose side divides
the panel size is enlarged by repeating pixels (exact); others are resized (bilinear for
photos and overlays, nearest for labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import BenchError
from harness.record import RunRecord

PANEL = 128  # pixels per panel side
GAP = 4  # white pixels between panels
LEFT, TOP = 110, 24  # margins for the row names and the column titles
DPI = 100
CAM_ALPHA = 0.5  # overlay = (1 - α) image + α jet(max over the present classes' maps)


@dataclass
class FigureRun:
    record: RunRecord
    folder: Path

    @property
    def label(self) -> str:
        return f"{self.record.variant or '?'} s{self.record.seed}"

    @property
    def has_masks(self) -> bool:
        return (self.folder / "masks").is_dir()


def choose_images(runs: list[FigureRun], names: list[str], n: int) -> list[str]:
    """`names` as given, else the `n` images whose mIoU differs most between the runs (one
    run: its worst images), from their images.jsonl; ties by name."""
    from harness.per_image import read

    if names:
        return names
    by_run = [{r["image"]: r["miou"] for r in read(run.folder) if r["miou"] is not None}
              for run in runs]
    shared = sorted(set.intersection(*(set(m) for m in by_run)))
    if len(runs) == 1:
        score = {name: -by_run[0][name] for name in shared}
    else:
        score = {name: max(m[name] for m in by_run) - min(m[name] for m in by_run)
                 for name in shared}
    return sorted(shared, key=lambda name: (-score[name], name))[:n]


def fit(panel: np.ndarray, labels: bool, size: int = PANEL) -> np.ndarray:
    """A (H, W[, 3]) panel to (size, size): pixel repetition when the side divides `size`."""
    h, w = panel.shape[:2]
    if h == w and size % h == 0:
        k = size // h
        return panel.repeat(k, 0).repeat(k, 1)
    from PIL import Image

    resample = Image.Resampling.NEAREST if labels else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(panel).resize((size, size), resample))


def colour_labels(label: np.ndarray) -> np.ndarray:
    """Label map → RGB in VOC's palette (255, ignore: VOC's border colour)."""
    from harness.data.voc import palette

    return palette()[np.asarray(label, np.uint8)]


def cam_overlay(image: np.ndarray, keys: np.ndarray, high_res: np.ndarray) -> np.ndarray:
    """The image blended with the jet colours of the strongest present-class map."""
    import matplotlib

    heat = high_res.max(0) if len(keys) else np.zeros(image.shape[:2], np.float32)
    jet = matplotlib.colormaps["jet"](np.clip(heat, 0, 1))[..., :3] * 255
    return np.round((1 - CAM_ALPHA) * image.astype(np.float64) + CAM_ALPHA * jet).astype(np.uint8)


def panels(ds, name: str, runs: list[FigureRun]) -> list[np.ndarray]:
    """One row: image, GT, then per run its CAM overlay (and mask), each PANEL × PANEL."""
    from harness.camio import read_cam
    from harness.masks.pngio import read_mask

    i = ds.image_names.index(name)
    image = np.asarray(ds.image(i), np.uint8)
    out = [fit(image, False), fit(colour_labels(ds.mask(i)), True)]
    for run in runs:
        keys, high = read_cam(run.folder / "cams" / f"{name}.npy", image.shape[:2])
        out.append(fit(cam_overlay(image, keys, high), False))
        if run.has_masks:
            mask = read_mask(run.folder / "masks" / f"{name}.png", image.shape[:2],
                             len(ds.class_names) + 1)
            out.append(fit(colour_labels(mask), True))
    return out


def grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Panels laid out row by row, GAP white pixels between them."""
    n_rows, n_cols = len(rows), len(rows[0])
    out = np.full((n_rows * (PANEL + GAP) - GAP, n_cols * (PANEL + GAP) - GAP, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            y, x = r * (PANEL + GAP), c * (PANEL + GAP)
            out[y:y + PANEL, x:x + PANEL] = panel
    return out


def column_titles(runs: list[FigureRun]) -> list[str]:
    titles = ["image", "ground truth"]
    for run in runs:
        titles += [f"{run.label} CAM"] + ([f"{run.label} mask"] if run.has_masks else [])
    return titles


def panel_origin(row: int, col: int) -> tuple[int, int]:
    """(y, x) of a panel's top-left pixel in the saved PNG."""
    return TOP + row * (PANEL + GAP), LEFT + col * (PANEL + GAP)


def draw(rows: list[list[np.ndarray]], titles: list[str], names: list[str], out: Path) -> list[Path]:
    """Write the figure as PNG and PDF (out's stem); returns both paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pixels = grid(rows)
    height, width = pixels.shape[0] + TOP, pixels.shape[1] + LEFT
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    fig.figimage(pixels, xo=LEFT, yo=0, origin="upper")
    for c, title in enumerate(titles):
        fig.text((LEFT + c * (PANEL + GAP) + PANEL / 2) / width, 1 - 4 / height, title,
                 ha="center", va="top", fontsize=7)
    for r, name in enumerate(names):
        fig.text(4 / width, 1 - (TOP + r * (PANEL + GAP) + PANEL / 2) / height, name,
                 ha="left", va="center", fontsize=7)
    from harness.oserrors import save_figure

    written = [save_figure(fig, out.with_suffix(suffix), "figure", dpi=DPI)
               for suffix in (".png", ".pdf")]
    plt.close(fig)
    return written


def cams_figure(runs: list[FigureRun], names: list[str], n: int, out: Path,
                cache_dir: Path | None = None) -> list[Path]:
    """`bench report --figure cams`: the images and ground truth of the first run's eval split."""
    from harness.data import default_cache_dir, load_dataset
    from harness.method import data_options
    from harness.replay import config_from_dict

    if not runs:
        raise BenchError("--figure cams needs at least one --run")
    cfg = config_from_dict(runs[0].record.config)
    ds = load_dataset(cfg.dataset, "eval", **data_options(
        cfg.dataset, cfg.params, Path(cache_dir or default_cache_dir()), cfg.data_root, cfg.seed))
    chosen = choose_images(runs, names, n)
    unknown = [name for name in chosen if name not in ds.image_names]
    if unknown:
        raise BenchError(f"--image {unknown[0]} is not an image of {cfg.dataset}'s eval split")
    return draw([panels(ds, name, runs) for name in chosen], column_titles(runs), chosen, out)
