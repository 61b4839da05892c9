"""Textures and shapes of the `synth` benchmark: pure numpy, deterministic given an rng.

Every function paints into an (H, W, 3) float image in place and/or returns a boolean
mask. Contexts are textured bands; objects are parametric shapes with colour and pose
jitter and a named sub-type, so captions and VQA answers have something to talk about.
"""

from __future__ import annotations

import numpy as np

Rng = np.random.Generator


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return y, x


def clutter(size: int, rng: Rng) -> np.ndarray:
    """Neutral background: grey-brown noise with a few muted rectangles."""
    base = rng.uniform(0.35, 0.55)
    img = np.full((size, size, 3), base, np.float32)
    img += rng.normal(0, 0.03, (size, size, 3)).astype(np.float32)
    for _ in range(rng.integers(2, 5)):
        y0, x0 = rng.integers(0, size, 2)
        h, w = rng.integers(4, size // 3, 2)
        img[y0 : y0 + h, x0 : x0 + w] = base + rng.uniform(-0.12, 0.12, 3)
    return img


def texture(context: str, h: int, w: int, rng: Rng) -> np.ndarray:
    """An (h, w, 3) patch of a context's texture."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    noise = rng.normal(0, 0.025, (h, w, 1)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi)
    if context == "water":
        wave = 0.08 * np.sin(y * 1.4 + 0.6 * np.sin(x * 0.35 + phase))[..., None]
        rgb = np.array([0.08, 0.28, 0.62]) + wave * np.array([1, 1, 1.2])
    elif context == "sky":
        grad = (y / max(h, 1))[..., None] * np.array([0.1, 0.08, 0.0])
        rgb = np.array([0.55, 0.75, 0.95]) + grad
        for _ in range(rng.integers(1, 3)):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            cloud = ((y - cy) / 3) ** 2 + ((x - cx) / 7) ** 2 < 1
            rgb = np.where(cloud[..., None], np.array([0.95, 0.95, 0.97]), rgb)
    elif context == "grass":
        blades = 0.07 * np.sin(x * 2.1 + phase)[..., None]
        rgb = np.array([0.22, 0.55, 0.14]) + blades * np.array([0.5, 1, 0.3])
        noise = noise * 2
    elif context == "railway":
        rgb = np.broadcast_to(np.array([0.48, 0.42, 0.36]), (h, w, 3)).copy()
        ties = ((x + phase) % 6) < 2
        rgb[ties] = [0.32, 0.2, 0.1]
        mid = h / 2
        for rail in (mid - h * 0.18, mid + h * 0.18):
            rgb[np.abs(y - rail) < 1.0] = [0.8, 0.8, 0.82]
        noise = noise * 1.5
    elif context == "road":
        rgb = np.broadcast_to(np.array([0.24, 0.24, 0.26]), (h, w, 3)).copy()
        dash = (np.abs(y - h / 2) < 1.0) & (((x + phase * 3) % 10) < 5)
        rgb[dash] = [0.9, 0.8, 0.15]
    else:
        raise ValueError(f"unknown context {context!r}")
    return np.clip(rgb + noise, 0, 1).astype(np.float32)


def _ellipse(y, x, cy, cx, ry, rx):
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1


def _rect(y, x, y0, y1, x0, x1):
    return (y >= y0) & (y < y1) & (x >= x0) & (x < x1)


def _triangle(y, x, p0, p1, p2):
    """Points inside the triangle with vertices p=(y, x)."""

    def side(a, b):
        return (x - b[1]) * (a[0] - b[0]) - (a[1] - b[1]) * (y - b[0])

    d1, d2, d3 = side(p0, p1), side(p1, p2), side(p2, p0)
    neg = (d1 < 0) | (d2 < 0) | (d3 < 0)
    pos = (d1 > 0) | (d2 > 0) | (d3 > 0)
    return ~(neg & pos)


def draw_object(img: np.ndarray, cls: str, subtype: str, cy: float, cx: float, s: float,
                flip: bool, rng: Rng) -> np.ndarray:
    """Paint one object centred at (cy, cx) with size s; returns its boolean mask."""
    y, x = grid(img.shape[0])
    if flip:  # mirror the shape horizontally about its centre
        x = 2 * cx - x
    parts: list[tuple[np.ndarray, np.ndarray]] = []  # (mask, colour) painted in order
    jitter = rng.uniform(-0.06, 0.06, 3)
    if cls == "aeroplane":
        body = np.array([0.9, 0.9, 0.92]) + jitter
        parts.append((_ellipse(y, x, cy, cx, s * 0.12, s * 0.5), body))
        if subtype == "jet":
            wing = _triangle(y, x, (cy, cx + s * 0.1), (cy - s * 0.45, cx - s * 0.2),
                             (cy + s * 0.45, cx - s * 0.2))
        else:
            wing = _rect(y, x, cy - s * 0.45, cy + s * 0.45, cx - s * 0.05, cx + s * 0.08)
        tail = _rect(y, x, cy - s * 0.25, cy, cx - s * 0.5, cx - s * 0.38)
        parts += [(wing, body * 0.85), (tail, np.array([0.8, 0.1, 0.1]))]
    elif cls == "bird":
        colour = {"eagle": [0.2, 0.2, 0.26], "parrot": [0.1, 0.7, 0.3]}[subtype] + jitter
        parts.append((_ellipse(y, x, cy, cx, s * 0.18, s * 0.3), np.array(colour)))
        for sgn in (-1, 1):
            parts.append((_triangle(y, x, (cy, cx - s * 0.15), (cy, cx + s * 0.15),
                                    (cy - s * 0.45, cx + sgn * s * 0.35)), np.array(colour) * 0.8))
        parts.append((_triangle(y, x, (cy - s * 0.05, cx + s * 0.28), (cy + s * 0.05, cx + s * 0.28),
                                (cy, cx + s * 0.42)), np.array([0.95, 0.75, 0.1])))
    elif cls == "boat":
        hull = np.array([0.55, 0.12, 0.1]) + jitter
        parts.append((_triangle(y, x, (cy, cx - s * 0.5), (cy, cx + s * 0.5), (cy + s * 0.22, cx))
                      | _rect(y, x, cy - s * 0.02, cy + s * 0.1, cx - s * 0.35, cx + s * 0.35), hull))
        if subtype == "sailboat":
            parts.append((_triangle(y, x, (cy - s * 0.05, cx - s * 0.3), (cy - s * 0.05, cx + s * 0.2),
                                    (cy - s * 0.6, cx + s * 0.05)), np.array([0.97, 0.97, 0.95])))
        else:
            parts.append((_rect(y, x, cy - s * 0.25, cy - s * 0.02, cx - s * 0.15, cx + s * 0.25),
                          np.array([0.95, 0.95, 0.9])))
    elif cls == "car":
        colour = np.array(rng.choice([[0.85, 0.1, 0.1], [0.95, 0.8, 0.1], [0.1, 0.3, 0.85]])) + jitter
        h = 0.3 if subtype == "sedan" else 0.45
        parts.append((_rect(y, x, cy - s * h * 0.5, cy + s * 0.15, cx - s * 0.5, cx + s * 0.5), colour))
        parts.append((_rect(y, x, cy - s * (h * 0.5 + 0.18), cy - s * h * 0.5, cx - s * 0.25,
                            cx + s * 0.2), colour * 0.8))
        for wx in (-0.3, 0.3):
            parts.append((_ellipse(y, x, cy + s * 0.17, cx + wx * s, s * 0.11, s * 0.11),
                          np.array([0.05, 0.05, 0.05])))
    elif cls == "cow":
        coat = {"dairy cow": [0.95, 0.95, 0.93], "bull": [0.45, 0.25, 0.12]}[subtype] + jitter
        body = _ellipse(y, x, cy, cx, s * 0.2, s * 0.38)
        legs = np.zeros_like(body)
        for lx in (-0.25, -0.1, 0.15, 0.28):
            legs |= _rect(y, x, cy + s * 0.1, cy + s * 0.38, cx + lx * s - 1, cx + lx * s + 1)
        head = _ellipse(y, x, cy - s * 0.15, cx + s * 0.42, s * 0.12, s * 0.1)
        parts += [(body | head, np.array(coat)), (legs, np.array(coat) * 0.6)]
        spots = _ellipse(y, x, cy - s * 0.05, cx - s * 0.1, s * 0.09, s * 0.12) & body
        parts.append((spots, np.array([0.05, 0.05, 0.05])))
    elif cls == "train":
        colour = {"passenger train": [0.75, 0.1, 0.15], "freight train": [0.2, 0.45, 0.25]}[subtype]
        colour = np.array(colour) + jitter
        parts.append((_rect(y, x, cy - s * 0.2, cy + s * 0.15, cx - s * 0.75, cx + s * 0.75), colour))
        if subtype == "passenger train":
            win = _rect(y, x, cy - s * 0.12, cy - s * 0.02, cx - s * 0.7, cx + s * 0.7) & (
                (x % 5) < 3)
            parts.append((win, np.array([0.9, 0.95, 1.0])))
        else:
            gaps = ((x - cx + s) % (s * 0.4)) < 1.2
            parts.append((gaps & _rect(y, x, cy - s * 0.2, cy + s * 0.15, cx - s * 0.75, cx + s * 0.75),
                          np.array([0.1, 0.1, 0.1])))
    else:
        raise ValueError(f"unknown class {cls!r}")
    mask = np.zeros(img.shape[:2], bool)
    for m, colour in parts:
        img[m] = np.clip(colour, 0, 1)
        mask |= m
    return mask
