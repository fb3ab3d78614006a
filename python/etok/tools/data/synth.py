"""Synthetic clips from still photos: slow pan, zoom and rotation, with occlusion and cuts.

A clip is rendered by sampling the photo (float (3, H, W) in [0, 1], shortest side a few times
the output) through a moving similarity transform: view centre c(t), view width w(t) in source
pixels, angle a(t). Each frame is sampled at 2x the output size with bilinear interpolation and
averaged 2x2 down to the output, which keeps zoomed-out views free of aliasing.

Everything random comes from the numpy Generator passed in, so a seed fixes the clip.
Cost: one grid_sample of 256x256 per frame; a few ms.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

MOTIONS = ("pan", "zoom", "rotate", "mixed", "static")


def _view_grid(h: int, w: int, cx: float, cy: float, width: float, angle: float, out: int):
    """Normalised sampling grid (1, out, out, 2) for a square view of `width` source pixels."""
    s = (torch.arange(out, dtype=torch.float32) + 0.5) / out - 0.5  # [-0.5, 0.5)
    yy, xx = torch.meshgrid(s, s, indexing="ij")
    ca, sa = math.cos(angle), math.sin(angle)
    px = cx + width * (ca * xx - sa * yy)
    py = cy + width * (sa * xx + ca * yy)
    gx = px / w * 2 - 1
    gy = py / h * 2 - 1
    return torch.stack([gx, gy], dim=-1)[None]


def _render(photo: torch.Tensor, cx, cy, width, angle, size: int) -> torch.Tensor:
    """One frame (3, size, size) float in [0, 1]."""
    _, h, w = photo.shape
    grid = _view_grid(h, w, cx, cy, width, angle, 2 * size)
    img = F.grid_sample(photo[None], grid, mode="bilinear", padding_mode="reflection",
                        align_corners=False)
    return F.avg_pool2d(img, 2)[0]


def _fit(h, w, cx, cy, width, angle):
    """Shrinks the view and moves the centre so the rotated square stays inside the photo."""
    reach = 0.5 * (abs(math.cos(angle)) + abs(math.sin(angle)))
    width = min(width, (min(h, w) - 2) / (2 * reach))
    r = width * reach
    return min(max(cx, r), w - r), min(max(cy, r), h - r), width


def _trajectory(rng: np.random.Generator, h: int, w: int, frames: int, size: int, motion: str):
    """Per-frame (cx, cy, width, angle) lists for one motion kind."""
    short = min(h, w)
    wmin, wmax = float(size), float(short) * 0.95
    width = float(rng.uniform(wmin, max(wmin, wmax)))
    cx, cy = float(rng.uniform(0, w)), float(rng.uniform(0, h))
    angle = float(rng.normal(0, 0.05)) if rng.random() < 0.3 else 0.0
    speed = dir_x = dir_y = 0.0
    zoom = 1.0
    spin = 0.0
    if motion in ("pan", "mixed"):
        speed = float(rng.uniform(0.5, 4.0 if motion == "pan" else 2.5))  # output px per frame
        theta = float(rng.uniform(0, 2 * math.pi))
        dir_x, dir_y = math.cos(theta), math.sin(theta)
    if motion in ("zoom", "mixed"):
        zoom = float(rng.uniform(1.01, 1.05 if motion == "zoom" else 1.03))
        if rng.random() < 0.5:
            zoom = 1.0 / zoom
    if motion in ("rotate", "mixed"):
        spin = math.radians(float(rng.uniform(0.4, 2.5 if motion == "rotate" else 1.2)))
        spin *= 1 if rng.random() < 0.5 else -1
        width = min(width, short * 0.6)
    traj = []
    for _ in range(frames):
        cx, cy, width = _fit(h, w, cx, cy, width, angle)
        traj.append((cx, cy, width, angle))
        step = speed * width / size
        cx, cy = cx + step * dir_x, cy + step * dir_y
        width = min(max(width * zoom, wmin * 0.9), short)
        angle += spin
    return traj


def make_clip(rng: np.random.Generator, photo: torch.Tensor, other: torch.Tensor,
              frames: int = 8, size: int = 128, motion: str = "pan",
              occlude: bool = False, cut: bool = False) -> np.ndarray:
    """Renders one clip: uint8 (frames, size, size, 3).

    photo, other: float (3, H, W) in [0, 1]; `other` supplies the occluder and the shot after a cut.
    """
    _, h, w = photo.shape
    traj = _trajectory(rng, h, w, frames, size, motion)
    out = torch.stack([_render(photo, *p, size) for p in traj])  # (T, 3, S, S)
    if cut:
        k = int(rng.integers(2, frames - 1))
        _, h2, w2 = other.shape
        traj2 = _trajectory(rng, h2, w2, frames - k, size, str(rng.choice(MOTIONS[:4])))
        out[k:] = torch.stack([_render(other, *p, size) for p in traj2])
    if occlude:
        ow, oh = int(rng.integers(size // 5, size // 2)), int(rng.integers(size // 5, size // 2))
        _, h2, w2 = other.shape
        patch = _render(other, float(rng.uniform(0, w2)), float(rng.uniform(0, h2)),
                        float(max(ow, oh) * rng.uniform(1.0, 2.0)), 0.0, max(ow, oh))
        patch = patch[:, :oh, :ow]
        x0, y0 = float(rng.uniform(-ow, size)), float(rng.uniform(-oh, size))
        vx, vy = float(rng.uniform(-6, 6)), float(rng.uniform(-6, 6))
        for t in range(frames):
            x, y = int(round(x0 + vx * t)), int(round(y0 + vy * t))
            xa, ya, xb, yb = max(x, 0), max(y, 0), min(x + ow, size), min(y + oh, size)
            if xa < xb and ya < yb:
                out[t, :, ya:yb, xa:xb] = patch[:, ya - y:yb - y, xa - x:xb - x]
    return (out.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
