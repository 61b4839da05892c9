"""What the segmentation stage trains on and is scored on.

- `TrainPairs`: the training split's images with their label maps (pseudo masks, or the
  ground truth for the fully supervised bound), augmented as KZ libs/datasets/base.py:61-104
  does it: a random scale from the recipe's list (image bilinear, labels nearest), pad to
  the crop (image with the mean, i.e. 0 once the mean is subtracted; labels with 255), a
  random crop, a horizontal flip with p 0.5. Which images a step sees and how they are
  augmented is a function of (seed, iteration) alone, never of a running random state, so a
  run resumed from a checkpoint draws exactly the batches the uninterrupted run drew.
- `val_split`: the split each dataset is scored on (VOC val, COCO val2014, synth `segval`).
- `gt_labels`: the training split's ground truth (FS rows, the positive control).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from harness.data import SegDataset
from harness.errors import BenchError
from harness.segment.settings import SegSettings

IGNORE = 255
# where the segmentation model is scored: the dataset's val split (COCO: val2014, which the
# harness calls `eval`; synth: `segval`, a split no other stage reads)
VAL_SPLITS = {"synth": "segval", "coco": "eval"}


def val_split(dataset: str) -> str:
    return VAL_SPLITS.get(dataset, "val")


LabelFn = Callable[[int], np.ndarray]  # image index → H×W uint8 labels (255 = ignore)


def folder_labels(ds: SegDataset, folder: Path) -> LabelFn:
    """Labels from a folder of `<image>.png` pseudo masks (checked against each image)."""
    from harness.masks.pngio import mask_folder, read_mask

    paths = mask_folder(Path(folder), ds.image_names)  # one line naming what is missing
    n_labels = len(ds.class_names) + 1
    return lambda i: read_mask(paths[i], ds.image(i).shape[:2], n_labels)


def gt_labels(ds: SegDataset, dataset: str, root: str | None) -> LabelFn:
    """The training split's pixel ground truth: synth's scene masks; VOC's SBD masks
    (SegmentationClassAug, train_aug's labels in every WSSS reference)."""
    if dataset == "synth":
        return ds.full_mask
    if dataset == "voc":
        from harness.data.voc import decode_mask, find_root

        aug = find_root(root) / "SegmentationClassAug"
        missing = [n for n in ds.image_names if not (aug / f"{n}.png").is_file()]
        if missing:
            raise BenchError(f"--masks gt: {len(missing)} train_aug masks missing from {aug} "
                             f"(first: {missing[0]}.png)")
        return lambda i: decode_mask(aug / f"{ds.image_names[i]}.png")
    raise BenchError(f"--masks gt: no training-split ground truth known for {dataset!r} "
                     "(synth, voc); pass a folder of mask PNGs instead")


def _resize(arr: np.ndarray, scale: float, resample: int) -> np.ndarray:
    h, w = arr.shape[-2:]
    size = (max(1, int(w * scale)), max(1, int(h * scale)))  # KZ: cv2.resize to int(h·s), int(w·s)
    if arr.ndim == 3:  # float channels: one PIL "F" image per channel
        return np.stack([np.asarray(Image.fromarray(c).resize(size, resample)) for c in arr])
    return np.asarray(Image.fromarray(arr).resize(size, resample))


def augment(image: np.ndarray, label: np.ndarray, settings: SegSettings,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(3, H, W) normalised image and (H, W) labels → one crop of `seg_crop` as KZ base.py."""
    scale = float(rng.choice(settings.train_scales))
    if scale != 1.0:
        image = _resize(image, scale, Image.BILINEAR)
        label = _resize(label, scale, Image.NEAREST)
    crop = settings.seg_crop
    h, w = label.shape
    ph, pw = max(crop - h, 0), max(crop - w, 0)
    if ph or pw:  # KZ pads bottom/right: image with the mean (0 here), labels with 255
        image = np.pad(image, ((0, 0), (0, ph), (0, pw)))
        label = np.pad(label, ((0, ph), (0, pw)), constant_values=IGNORE)
    h, w = label.shape
    y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    image, label = image[:, y:y + crop, x:x + crop], label[y:y + crop, x:x + crop]
    if settings.seg_flip and rng.random() < 0.5:
        image, label = image[:, :, ::-1], label[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(label)


class TrainPairs:
    """The training images and their labels, drawn per (iteration, part of ITER_SIZE).

    Sample s (counted over the whole run) is image `perm_e[s mod n]` of epoch e = s // n, with
    perm_e a permutation from (seed, e): every image once per epoch, as a shuffled loader."""

    def __init__(self, ds: SegDataset, labels: LabelFn, settings: SegSettings, seed: int):
        self.ds, self.labels, self.settings, self.seed = ds, labels, settings, seed
        self._perms: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.ds)

    def _index(self, sample: int) -> int:
        epoch, pos = divmod(sample, len(self.ds))
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(len(self.ds))}
        return int(self._perms[epoch][pos])

    def batch(self, iteration: int, part: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 3, crop, crop) and labels (B, crop, crop) of part `part` of `iteration`
        (1-based)."""
        s = self.settings
        first = ((iteration - 1) * s.seg_iter_size + part) * s.seg_batch_size
        images, labels = [], []
        for j in range(s.seg_batch_size):
            i = self._index(first + j)
            rng = np.random.default_rng([self.seed, iteration, part, j])
            img, lab = augment(s.normalize(self.ds.image(i)), self.labels(i), s, rng)
            images.append(img)
            labels.append(lab)
        return (torch.from_numpy(np.stack(images)),
                torch.from_numpy(np.stack(labels).astype(np.int64)))


class PlainView(SegDataset):
    """A split as CAM inference reads it: whole images, no augmentation, no pixel labels
    (the training split's CAMs, from which its pseudo masks are made)."""

    def __init__(self, ds: SegDataset):
        self.base = ds
        self.name, self.split, self.class_names = ds.name, ds.split, ds.class_names
        self.image_names = ds.image_names
        self.context_names, self.cooccur = ds.context_names, ds.cooccur
        self.has_masks = False
        self.spec = getattr(ds, "spec", None)  # synth's generator spec (the stage's key reads it)

    def image(self, i: int) -> np.ndarray:
        return self.base.image(i)

    def labels(self, i: int) -> np.ndarray:
        return self.base.labels(i)
