"""CLIP-ES's CAM arithmetic on plain tensors, each step cited to linyq2117/CLIP-ES@3893f81.

Grad-CAM (pytorch_grad_cam/grad_cam.py, base_cam.py, utils/image.py `scale_cam_image`): the
weight of each channel is the spatial mean of its gradient; CAM = ReLU(Σ_c w_c · act_c),
min-max normalised. CAA, class-aware attention-based affinity (generate_cams_voc12.py:160-214,
utils.py:115-142 `scoremap2bbox`): the attention of the last blocks, CLS removed and averaged,
made doubly stochastic by alternating column and row normalisation, symmetrised, squared, its
columns masked by the boxes around the CAM's confident regions, then multiplied by the CAM.
"""

from __future__ import annotations

import torch


def minmax(x: torch.Tensor) -> torch.Tensor:
    """(x − min) / (max − min + 1e-7) over the last two dims (`scale_cam_image`)."""
    lo = x.amin((-2, -1), keepdim=True)
    x = x - lo
    return x / (1e-7 + x.amax((-2, -1), keepdim=True))


def grad_cam(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """act, grad (C, h, w) at the target layer → min-max(ReLU(Σ_c mean_hw(grad_c) · act_c))."""
    weights = grad.mean((-2, -1))
    return minmax(torch.relu((weights[:, None, None] * act).sum(0)))


def box_mask(cam: torch.Tensor, threshold: float) -> torch.Tensor:
    """(h, w) 0/1: the union of the bounding boxes of the CAM's regions above `threshold`·max,
    exactly as `scoremap2bbox(multi_contour_eval=True)` and its caller draw them.

    The CAM is quantised to uint8 (·255) and thresholded strictly above int(threshold · max);
    OpenCV's contours of the result are traced 8-connected, and the boxes of inner contours
    (holes) lie inside their outer ones, so the union is that of the 8-connected components'
    boxes. Quirks kept: a box's end is clipped to side − 1 and used as an exclusive end
    (`x1 = min(x + w, width − 1)`, `aff_mask[y0:y1, x0:x1] = 1`), so the last row and
    column are never in a box; no region at all gives no box (box [0, 0, 0, 0])."""
    q = (cam.float() * 255).to(torch.uint8)
    on = (q > int(threshold * int(q.max()))).tolist()
    h, w = len(on), len(on[0])
    mask = torch.zeros(h, w, device=cam.device)  # on the run's device (device-discipline test)
    for y0, x0, y1, x1 in _component_boxes(on):
        mask[y0:min(y1, h - 1), x0:min(x1, w - 1)] = 1
    return mask


def _component_boxes(on: list[list[bool]]) -> list[tuple[int, int, int, int]]:
    """(y0, x0, y_end, x_end) of each 8-connected component of the True cells."""
    h, w, seen, boxes = len(on), len(on[0]), set(), []
    for start in ((y, x) for y in range(h) for x in range(w) if on[y][x]):
        if start in seen:
            continue
        seen.add(start)
        todo, ys, xs = [start], [], []
        while todo:
            y, x = todo.pop()
            ys.append(y)
            xs.append(x)
            for n in ((y + dy, x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)):
                if 0 <= n[0] < h and 0 <= n[1] < w and on[n[0]][n[1]] and n not in seen:
                    seen.add(n)
                    todo.append(n)
        boxes.append((min(ys), min(xs), max(ys) + 1, max(xs) + 1))
    return boxes


def affinity(attn: torch.Tensor) -> torch.Tensor:
    """(n, n) averaged patch attention → CAA's affinity: column- then row-normalise three
    times, symmetrise (A + Aᵀ)/2, square once (generate_cams_voc12.py:177-190)."""
    t = attn.float()
    for _ in range(3):
        t = t / t.sum(0, keepdim=True)
        t = t / t.sum(1, keepdim=True)
    t = (t + t.T) / 2
    return t @ t


def caa_refine(attn: torch.Tensor, cam: torch.Tensor, threshold: float) -> torch.Tensor:
    """The refined (h, w) CAM: affinity(attn) with its columns outside the CAM's boxes zeroed,
    times the flattened CAM (generate_cams_voc12.py:171-194)."""
    h, w = cam.shape
    trans = affinity(attn) * box_mask(cam, threshold).view(1, h * w)
    return (trans @ cam.reshape(-1, 1).float()).reshape(h, w)
