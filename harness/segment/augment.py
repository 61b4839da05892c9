"""The training augmentation of CLIMS's DeepLabV2 recipes (CL libs/datasets/base.py:61-104).

Per image: a scale drawn from `seg_scales`; the image resized bilinearly (cv2 INTER_LINEAR:
half-pixel centres, no antialias, as torch's bilinear with align_corners False) and the label
with PIL NEAREST; padded bottom/right to the crop, the image with the mean colour (0 after
normalisation) and the label with 255; a random crop; a horizontal flip with p 0.5
(`seg_flip`); mean subtraction (here `SegSettings.normalize`, which also orders the channels).
The random draws come from the caller's generator, so a resumed run can replay them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from harness.segment.losses import IGNORE, pil_nearest_index
from harness.segment.settings import SegSettings


def augment(rgb: np.ndarray, label: np.ndarray, settings: SegSettings,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """H×W×3 uint8 RGB and H×W labels (255 = ignore) → a (3, crop, crop) float32 image as the
    model is fed and a (crop, crop) int64 label map."""
    scale = float(rng.choice(settings.train_scales))  # CL: random.choice(self.scales)
    h0, w0 = label.shape
    h, w = int(h0 * scale), int(w0 * scale)  # CL: int(h * scale_factor), truncated
    img = torch.from_numpy(settings.normalize(rgb))[None]
    img = F.interpolate(img, size=(h, w), mode="bilinear", align_corners=False)[0].numpy()
    lab = np.asarray(label)[pil_nearest_index(h0, h)][:, pil_nearest_index(w0, w)].astype(np.int64)
    crop = settings.seg_crop
    ph, pw = max(crop - h, 0), max(crop - w, 0)
    if ph or pw:  # normalised, the mean colour is 0
        img = np.pad(img, ((0, 0), (0, ph), (0, pw)))
        lab = np.pad(lab, ((0, ph), (0, pw)), constant_values=IGNORE)
    top = int(rng.integers(0, lab.shape[0] - crop + 1))  # CL: random.randint(0, h - crop)
    left = int(rng.integers(0, lab.shape[1] - crop + 1))
    img, lab = img[:, top:top + crop, left:left + crop], lab[top:top + crop, left:left + crop]
    if settings.seg_flip and rng.random() < 0.5:
        img, lab = img[:, :, ::-1], lab[:, ::-1]
    return np.ascontiguousarray(img, np.float32), np.ascontiguousarray(lab)
