"""Write a VOC-size evaluation fixture: VOC `train`'s image count (1,464) and shapes, palette
PNG masks with a 255 border around each object, and one reference-format CAM file per image
(a dict with `keys` and `high_res`, K×H×W float32 in [0, 1]), as CLIMS's make_cam writes them.

    python benchmarks/eval_fixture.py OUT_DIR [--n 1464] [--seed 0]

OUT_DIR/voc is a VOC root (`--data-root`), OUT_DIR/cams the CAM folder (`--cams`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.camio import write_cam  # noqa: E402
from harness.data.voc import CLASSES, palette  # noqa: E402

# (H, W) of VOC train images and roughly how often each occurs (500×375 landscape dominates)
SHAPES = (((375, 500), 0.55), ((500, 375), 0.18), ((333, 500), 0.12), ((500, 333), 0.05),
          ((334, 500), 0.04), ((281, 500), 0.03), ((366, 500), 0.03))
N_TRAIN = 1464


def blob(h: int, w: int, cy: float, cx: float, sy: float, sx: float) -> np.ndarray:
    """A separable Gaussian bump, peak 1 at (cy, cx)."""
    y = np.exp(-0.5 * ((np.arange(h, dtype=np.float32) - cy) / sy) ** 2)
    x = np.exp(-0.5 * ((np.arange(w, dtype=np.float32) - cx) / sx) ** 2)
    return y[:, None] * x[None, :]


def make_image(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask uint8 H×W, keys, high_res K×H×W) of one image: 1–3 objects, CAMs that cover
    each object imperfectly and spill onto its surroundings."""
    shapes, probs = zip(*SHAPES, strict=True)
    h, w = shapes[rng.choice(len(shapes), p=np.array(probs) / sum(probs))]
    keys = np.sort(rng.choice(len(CLASSES), rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]), replace=False))
    mask = np.zeros((h, w), np.uint8)
    high = np.empty((len(keys), h, w), np.float32)
    yy, xx = np.ogrid[:h, :w]
    for j, k in enumerate(keys):
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        ry, rx = rng.uniform(0.1, 0.35) * h, rng.uniform(0.1, 0.35) * w
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        mask[(inside <= 1.1) & (inside > 1.0)] = 255  # the VOC border
        mask[inside <= 1.0] = k + 1
        cam = blob(h, w, cy + rng.normal(0, ry / 3), cx + rng.normal(0, rx / 3), ry * 0.8, rx * 0.8)
        cam += 0.4 * blob(h, w, rng.uniform(0, h), rng.uniform(0, w), ry, rx)  # context spill
        cam += rng.uniform(0, 0.05, (1, w)).astype(np.float32)
        high[j] = cam / cam.max()
    return mask, keys, high


def write_fixture(out: Path, n: int = N_TRAIN, seed: int = 0) -> None:
    voc = out / "voc" / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    cams = out / "cams"
    cams.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = [f"{2007 + i // 1000}_{i % 1000:06d}" for i in range(n)]
    pal = palette().reshape(-1).tolist()
    for name in ids:
        mask, keys, high = make_image(rng)
        png = Image.fromarray(mask, mode="P")
        png.putpalette(pal)
        png.save(voc / "SegmentationClass" / f"{name}.png")
        # eval never reads the pixels, but the VOC loader checks every image exists
        Image.new("RGB", mask.shape[::-1], (120, 110, 100)).save(voc / "JPEGImages" / f"{name}.jpg")
        write_cam(cams, name, keys, high)
    (voc / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids) + "\n")
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=N_TRAIN)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.time()
    write_fixture(args.out, args.n, args.seed)
    print(f"wrote {args.n} masks and CAM files under {args.out} in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
