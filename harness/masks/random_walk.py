"""IRN's affinity from a boundary map and its random walk (jiwoon-ahn/irn misc/indexing.py
`edge_to_affinity`, `to_transition_matrix`, `propagate_to_edge`; step/make_sem_seg_labels.py).

The affinity of a pixel pair is 1 − the largest boundary score on the path between them.
The reference builds the dense N×N matrix A (pairs, their transposes and the identity),
T = A^β / column sums, squares T `exp_times` times and multiplies once: x·T^(2^exp_times).
Here T stays sparse and x is multiplied by it 2^exp_times times — the same product by
associativity, without the N×N matrix (11,750² floats for a VOC image at stride 4) or its
cubic squarings; it runs on whichever device the tensors are on.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from harness.masks.path_index import PathIndex


def edge_to_affinity(edge: torch.Tensor, path_indices: list[np.ndarray]) -> torch.Tensor:
    """(B, H·W) boundary scores → (B, n_dirs, n_src) affinities, 1 − max along each path."""
    edge = edge.reshape(edge.shape[0], -1)
    out = []
    for ind in path_indices:
        ind = torch.as_tensor(ind, device=edge.device)
        dist = edge.index_select(-1, ind.reshape(-1)).view(edge.shape[0], *ind.shape)
        out.append(1 - dist.amax(dim=2))  # (B, n_paths, n_src): the max over the path's cells
    return torch.cat(out, dim=1)


def sparse_affinity(edge: torch.Tensor, radius: int) -> torch.Tensor:
    """The (N×N, N = H·W) symmetric affinity of a (H, W) boundary map with ones on the
    diagonal, sparse COO: propagate_to_edge's padding (1.0 = boundary) and cropping."""
    h, w = edge.shape[-2:]
    ph, pw = h + radius, w + 2 * radius
    pi = PathIndex(radius, (ph, pw))
    padded = F.pad(edge.reshape(1, 1, h, w), (radius, radius, 0, radius), value=1.0)
    aff = edge_to_affinity(padded.reshape(1, -1), pi.path_indices)[0].reshape(-1)
    src = np.broadcast_to(pi.src_indices, pi.dst_indices.shape).reshape(-1)
    dst = pi.dst_indices.reshape(-1)
    # padded flat index → index in the cropped (h, w) grid, or −1 (the dense [:-r, r:-r] crop)
    y, x = np.divmod(np.arange(ph * pw), pw)
    inside = (y < h) & (x >= radius) & (x < radius + w)
    to_crop = np.where(inside, y * w + (x - radius), -1)
    s, d = to_crop[src], to_crop[dst]
    keep = (s >= 0) & (d >= 0)
    keep_t = torch.as_tensor(keep, device=edge.device)
    s_t = torch.as_tensor(s[keep], device=edge.device)
    d_t = torch.as_tensor(d[keep], device=edge.device)
    n = h * w
    diag = torch.arange(n, device=edge.device)
    rows = torch.cat([s_t, diag, d_t])
    cols = torch.cat([d_t, diag, s_t])
    vals = aff[keep_t]
    vals = torch.cat([vals, torch.ones(n, device=edge.device, dtype=vals.dtype), vals])
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, n),
                                   check_invariants=False).coalesce()


def transition_matrix(affinity: torch.Tensor, beta: float) -> torch.Tensor:
    """T = A^β / (column sums of A^β), dense or sparse (to_transition_matrix before squaring)."""
    if affinity.is_sparse:
        a = affinity.coalesce()
        v = a.values().pow(beta)
        col = torch.zeros(a.shape[1], device=v.device, dtype=v.dtype).index_add_(0, a.indices()[1], v)
        return torch.sparse_coo_tensor(a.indices(), v / col[a.indices()[1]], a.shape,
                                       check_invariants=False).coalesce()
    scaled = affinity.pow(beta)
    return scaled / scaled.sum(dim=0, keepdim=True)


def walk(x: torch.Tensor, trans: torch.Tensor, steps: int) -> torch.Tensor:
    """x·T^steps for (K, N) row vectors x and a sparse (or dense) (N, N) T."""
    if trans.is_sparse:
        with warnings.catch_warnings():  # "sparse CSR support is in beta": it is what we want
            warnings.simplefilter("ignore", UserWarning)
            t_t = trans.t().coalesce().to_sparse_csr()
    else:
        t_t = trans.t()
    y = x.t().contiguous()
    for _ in range(steps):
        y = t_t @ y  # (x·T)ᵀ = Tᵀ·xᵀ
    return y.t()


def propagate_to_edge(x: torch.Tensor, edge: torch.Tensor, radius: int = 5, beta: float = 10,
                      exp_times: int = 8) -> torch.Tensor:
    """(K, h, w) maps, (h, w) boundary → (K, h, w) maps after the random walk."""
    k, h, w = x.shape
    trans = transition_matrix(sparse_affinity(edge, radius), beta)
    x = x * (1 - edge.reshape(1, h, w))
    return walk(x.reshape(k, h * w), trans, 2 ** exp_times).reshape(k, h, w)


def semantic_labels(cams: torch.Tensor, keys: np.ndarray, edge: torch.Tensor,
                    image_size: tuple[int, int], bg_thres: float, radius: int = 5, beta: float = 10,
                    exp_times: int = 8) -> np.ndarray:
    """make_sem_seg_labels.py for one image: stride-4 CAMs (K, h, w) of the present classes
    `keys`, the boundary map (h, w) → uint8 labels at the image size (0 bg, k+1 class k)."""
    lut = np.concatenate([[0], np.asarray(keys, np.int64) + 1]).astype(np.uint8)
    if len(keys) == 0:
        return np.zeros(image_size, np.uint8)
    rw = propagate_to_edge(cams, edge, radius, beta, exp_times)
    up = F.interpolate(rw[:, None], scale_factor=4, mode="bilinear",
                       align_corners=False)[:, 0, :image_size[0], :image_size[1]]
    up = up / up.max()
    up = F.pad(up, (0, 0, 0, 0, 1, 0), value=bg_thres)
    return lut[up.argmax(0).cpu().numpy()]


def strided_size(size: tuple[int, int], stride: int = 4) -> tuple[int, int]:
    """misc/imutils.py get_strided_size: ((H − 1) // stride + 1, (W − 1) // stride + 1)."""
    return (size[0] - 1) // stride + 1, (size[1] - 1) // stride + 1


def strided_cams(high_res: np.ndarray, stride: int = 4) -> torch.Tensor:
    """The stride-4 maps make_sem_seg_labels reads (make_cam.py's `cam`), from a CAM file's
    `high_res`: bilinear to the strided size, max-normalised per class as make_cam does."""
    t = torch.from_numpy(np.asarray(high_res, np.float32))
    if len(t) == 0:
        return t
    small = F.interpolate(t[None], strided_size(t.shape[-2:], stride), mode="bilinear",
                          align_corners=False)[0]
    return small / (small.flatten(1).amax(1)[:, None, None] + 1e-5)
