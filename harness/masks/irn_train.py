"""IRN's training stage: its affinity labels, its losses, through the shared training loop.

jiwoon-ahn/irn step/train_irn.py and voc12/dataloader.py `VOC12AffinityDataset`: each image
with its IR label is rescaled by a random factor in [0.5, 1.5] (bicubic / nearest), flipped,
cropped at random to `crop`×`crop` (image padded with the mean colour, label with 255); the
label, reduced to stride 4 (nearest), gives every pixel pair within `radius` a positive
background, positive foreground or negative affinity label (`GetAffinityLabelFromIndices`;
pairs touching 255 get none). Losses: −log aff on positive pairs (background and foreground
halves averaged), −log(1 − aff) on negative pairs, L1 of the pair displacement to its offset
(foreground pairs) or to 0 (background pairs); total (pos + neg)/2 + (dp_fg + dp_bg)/2.
The boundary branch learns at lr, the displacement branch at 10·lr, poly schedule.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from harness.generator import IMAGENET_MEAN
from harness.masks.irn_net import IRNet
from harness.masks.path_index import PathIndex

MEAN_RGB = tuple(round(255 * m) for m in IMAGENET_MEAN)  # 0 after normalisation, as the reference pads


def affinity_labels(reduced: np.ndarray, src: np.ndarray, dst: np.ndarray,
                    n_labels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GetAffinityLabelFromIndices: (bg_pos, fg_pos, neg), each (n_dirs, n_src) float32.
    A label ≥ n_labels (255) is unsure: no pair touching it is labelled."""
    flat = reduced.reshape(-1)
    a = flat[src][None, :]
    b = flat[dst]
    valid = (a < n_labels) & (b < n_labels)
    equal = a == b
    pos = equal & valid
    return ((pos & (a == 0)).astype(np.float32), (pos & (a > 0)).astype(np.float32),
            (~equal & valid).astype(np.float32))


def _resize(arr: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
    return np.asarray(Image.fromarray(arr).resize((size[1], size[0]), resample))


def augment_pair(img: np.ndarray, label: np.ndarray, crop: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """imutils.random_scale (0.5–1.5, bicubic / nearest), random_lr_flip, random_crop."""
    s = rng.uniform(0.5, 1.5)
    h, w = label.shape
    size = (max(1, round(h * s)), max(1, round(w * s)))
    img, label = _resize(img, size, Image.BICUBIC), _resize(label, size, Image.NEAREST)
    if rng.random() < 0.5:
        img, label = img[:, ::-1], label[:, ::-1]
    h, w = label.shape
    out_img = np.empty((crop, crop, 3), np.uint8)
    out_img[:] = MEAN_RGB
    out_lab = np.full((crop, crop), 255, np.uint8)
    ch, cw = min(h, crop), min(w, crop)
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    oy, ox = int(rng.integers(0, crop - ch + 1)), int(rng.integers(0, crop - cw + 1))
    out_img[oy:oy + ch, ox:ox + cw] = img[y0:y0 + ch, x0:x0 + cw]
    out_lab[oy:oy + ch, ox:ox + cw] = label[y0:y0 + ch, x0:x0 + cw]
    return out_img, out_lab


class AffinityDataset(torch.utils.data.Dataset):
    """Images of a split with their IR labels → crops and their affinity labels."""

    def __init__(self, image: Callable[[int], np.ndarray], label: Callable[[int], np.ndarray],
                 n: int, crop: int, path_index: PathIndex, n_labels: int):
        self.image, self.label, self.n = image, label, n
        self.crop, self.pi, self.n_labels = crop, path_index, n_labels

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))  # the loop seeds torch
        img, lab = augment_pair(self.image(i), self.label(i), self.crop, rng)
        q = self.crop // 4
        reduced = _resize(np.ascontiguousarray(lab), (q, q), Image.NEAREST)  # pil_rescale(0.25, 0)
        bg, fg, neg = affinity_labels(reduced, self.pi.src_indices, self.pi.dst_indices, self.n_labels)
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255)
        return {"image": x, "bg_pos": torch.from_numpy(bg), "fg_pos": torch.from_numpy(fg),
                "neg": torch.from_numpy(neg)}


class AffinityLoss(torch.nn.Module):
    """AffinityDisplacementLoss of net/resnet50_irn.py with train_irn.py's reduction."""

    def __init__(self, net: IRNet, path_index: PathIndex):
        super().__init__()
        self.net, self.pi = net, path_index
        for i, ind in enumerate(path_index.path_indices):
            self.register_buffer(f"path_indices{i}", torch.from_numpy(ind), persistent=False)
        target = torch.from_numpy(path_index.search_dst).t()[None, :, :, None].float()  # (1, 2, n_dirs, 1)
        self.register_buffer("disp_target", target, persistent=False)

    def to_affinity(self, edge: torch.Tensor) -> torch.Tensor:
        from harness.masks.random_walk import edge_to_affinity

        paths = [getattr(self, f"path_indices{i}") for i in range(len(self.pi.path_indices))]
        return edge_to_affinity(edge, paths)

    def to_pair_displacement(self, disp: torch.Tensor) -> torch.Tensor:
        h, w = disp.shape[-2:]
        r = self.pi.radius_floor
        ch, cw = h - r, w - 2 * r
        src = disp[:, :, :ch, r:r + cw]
        dst = torch.stack([disp[:, :, dy:dy + ch, r + dx:r + dx + cw] for dy, dx in self.pi.search_dst], 2)
        pair = src.unsqueeze(2) - dst
        return pair.reshape(pair.shape[0], pair.shape[1], pair.shape[2], -1)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        edge, dp = self.net(batch["image"])
        aff = self.to_affinity(torch.sigmoid(edge.float()))
        pos_l = -torch.log(aff + 1e-5)
        neg_l = -torch.log(1.0 + 1e-5 - aff)
        pair = self.to_pair_displacement(dp.float())
        dp_fg_l = (pair - self.disp_target).abs()
        dp_bg_l = pair.abs()
        bg, fg, neg = batch["bg_pos"], batch["fg_pos"], batch["neg"]
        pos = (bg * pos_l).sum() / (bg.sum() + 1e-5) / 2 + (fg * pos_l).sum() / (fg.sum() + 1e-5) / 2
        negative = (neg * neg_l).sum() / (neg.sum() + 1e-5)
        dp_fg = (dp_fg_l * fg.unsqueeze(1)).sum() / (2 * fg.sum() + 1e-5)
        dp_bg = (dp_bg_l * bg.unsqueeze(1)).sum() / (2 * bg.sum() + 1e-5)
        total = (pos + negative) / 2 + (dp_fg + dp_bg) / 2
        return total, {"pos_aff": pos.detach(), "neg_aff": negative.detach(),
                       "dp_fg": dp_fg.detach(), "dp_bg": dp_bg.detach()}


@torch.no_grad()
def displacement_mean(net: IRNet, images: Callable[[int], np.ndarray], n: int, crop: int,
                      device: torch.device, batch_size: int) -> torch.Tensor:
    """train_irn.py's last pass: the mean displacement over top-left crops of the images
    (imutils.top_left_crop, padded with 0 = the mean colour), batches dropping the ragged
    last one as its loader does (all of them when there are fewer than a batch)."""
    net.eval()
    means = []
    chunks = [list(range(i, min(n, i + batch_size))) for i in range(0, n, batch_size)]
    if len(chunks) > 1 and len(chunks[-1]) < batch_size:
        chunks = chunks[:-1]
    for idx in chunks:
        batch = []
        for i in idx:
            img = images(i)
            out = np.empty((crop, crop, 3), np.uint8)
            out[:] = MEAN_RGB
            h, w = min(crop, img.shape[0]), min(crop, img.shape[1])
            out[:h, :w] = img[:h, :w]
            batch.append(torch.from_numpy(out).permute(2, 0, 1).float().div(255))
        _, dp = net(torch.stack(batch).to(device))
        means.append(dp.float().mean(dim=(0, 2, 3)).cpu())
    return torch.stack(means).mean(0)
