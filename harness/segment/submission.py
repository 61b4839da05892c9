"""The PASCAL VOC evaluation server's submission: label PNGs in its layout, packed as a tarball.

CL eval.py:177-208 writes `results/VOC2012/Segmentation/comp5_test_cls/<id>.png` (comp5: trained
on VOC data only) as 8-bit palette PNGs with the VOC colour map (its `colorful`); the server
takes them packed as `results.tar.gz`. The PNGs are written by the pseudo masks' own writer
(harness.masks.pngio.write_mask: mode P, VOC palette, atomic), the tarball atomically too.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from harness.masks.pngio import write_mask

LAYOUT = Path("results/VOC2012/Segmentation/comp5_test_cls")
ARCHIVE = "results.tar.gz"


def write_submission(out_dir: Path, labels: Iterable[tuple[str, np.ndarray]]) -> Path:
    """Write each (image_id, H×W labels 0…20) under `out_dir`/LAYOUT and pack `out_dir`/
    results.tar.gz (members `results/VOC2012/…/<id>.png`, as the server unpacks them).
    Returns the archive's path; a reader never sees a partial PNG or archive."""
    out_dir = Path(out_dir)
    folder = out_dir / LAYOUT
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for image_id, label in labels:
        write_mask(folder, image_id, label)
        names.append(image_id)
    archive = out_dir / ARCHIVE
    tmp = out_dir / f".{ARCHIVE}.{os.getpid()}.tmp"
    with tarfile.open(tmp, "w:gz") as tar:
        for name in sorted(names):
            tar.add(folder / f"{name}.png", arcname=str(LAYOUT / f"{name}.png"))
    os.replace(tmp, archive)
    return archive
