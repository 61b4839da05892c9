"""IRN's sparse pixel-pair graph: for every pixel, the neighbours within `radius` in a
half-plane (each unordered pair once) and the pixels on the straight path between them.
Follows jiwoon-ahn/irn misc/indexing.py `PathIndex` (same search directions, path cells,
ordering and cropping), numpy only."""

from __future__ import annotations

import numpy as np


def search_paths(radius: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Paths grouped by length (each (n_paths, length, 2) of (dy, dx), destination first) and
    every path's destination (n_dirs, 2), in IRN's order."""
    by_length: list[list] = [[] for _ in range(radius * 4)]
    dirs = [(0, x) for x in range(1, radius)]
    dirs += [(y, x) for y in range(1, radius) for x in range(-radius + 1, radius)
             if x * x + y * y < radius ** 2]
    for dy, dx in dirs:
        length_sq = dy * dy + dx * dx
        (y0, y1), (x0, x1) = sorted((0, dy)), sorted((0, dx))
        # the cells whose centre lies within distance 1 of the segment (0,0)–(dy,dx)
        coords = [[y, x] for y in range(y0, y1 + 1) for x in range(x0, x1 + 1)
                  if (dy * x - dx * y) ** 2 / length_sq < 1]
        coords.sort(key=lambda c: -abs(c[0]) - abs(c[1]))  # farthest (the destination) first
        by_length[len(coords)].append(coords)
    paths = [np.asarray(v) for v in by_length if v]
    return paths, np.concatenate([p[:, 0] for p in paths], axis=0)


class PathIndex:
    """Flat indices, on an (H, W) grid, of every (src, dst) pair and the cells between them."""

    def __init__(self, radius: int, size: tuple[int, int]):
        self.radius = radius
        self.radius_floor = int(np.ceil(radius) - 1)
        self.size = tuple(size)
        self.search_paths, self.search_dst = search_paths(radius)
        self.path_indices, self.src_indices, self.dst_indices = self._indices(self.size)

    def _indices(self, size: tuple[int, int]):
        full = np.arange(size[0] * size[1], dtype=np.int64).reshape(size)
        h, w = size[0] - self.radius_floor, size[1] - 2 * self.radius_floor
        if h <= 0 or w <= 0:
            from harness.errors import BenchError

            raise BenchError(f"affinity radius {self.radius} needs a feature grid larger than "
                             f"{size[0]}×{size[1]} (a larger crop, or a smaller radius)")
        r = self.radius_floor
        path_indices = []
        for paths in self.search_paths:
            per_path = [[full[dy:dy + h, r + dx:r + dx + w].reshape(-1) for dy, dx in p] for p in paths]
            path_indices.append(np.array(per_path))  # (n_paths, length, n_src)
        src = full[:h, r:r + w].reshape(-1)
        dst = np.concatenate([p[:, 0] for p in path_indices], axis=0)  # (n_dirs, n_src)
        return path_indices, src, dst
