"""Held-out evaluation of an ElasticTok model: PSNR/SSIM against kept tokens, adaptive search.

Frames are cut into chunks of the model's context (K blocks of one frame); each chunk is encoded
block-causally, so every frame is conditioned on the frames before it in its chunk.

* `fixed_budget(model, cfg, frames, counts)`: every block keeps the same count; mean PSNR / SSIM
  over all frames (uint8-rounded reconstructions against the uint8 originals), and the mean PSNR
  by position in the chunk: `context_gain` = mean PSNR of the later positions minus the first's,
  which has no earlier frame to draw on (how much the model uses its context; the shipped model
  of 2026-11-27 gains nothing at equal budgets, where x264 with inter prediction gains most).
* `adaptive(model, cfg, frames, thresholds)`: per frame, in order inside its chunk, the smallest
  kept count whose block MSE (pixels in [-1, 1]) is <= the threshold, by binary search over
  [min_toks, max_toks] (max_toks when even that misses), with earlier frames fixed at their chosen
  counts. All chunks and thresholds are searched together as one batch.

Cost: fixed budgets one forward per chunk and count; the adaptive search about
log2(max - min) + 1 forwards per block position over all chunks and thresholds.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..reference.model import patchify, to_uint8, unpatchify


def _gauss(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    return (g / g.sum()).to(torch.float32)


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame SSIM of uint8 (N, H, W, 3) pairs: Gaussian window 11 / sigma 1.5, K1 0.01,
    K2 0.03, range 255, computed per channel over the valid region and averaged."""
    x = torch.from_numpy(a).permute(0, 3, 1, 2).to(torch.float32)
    y = torch.from_numpy(b).permute(0, 3, 1, 2).to(torch.float32)
    g = _gauss()
    win = (g[:, None] * g[None, :])[None, None].repeat(3, 1, 1, 1)
    f = lambda t: F.conv2d(t, win, groups=3)
    mx, my = f(x), f(y)
    sxx, syy, sxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.mean(dim=(1, 2, 3)).numpy().astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame PSNR (dB, range 255) of uint8 (N, H, W, 3) pairs; capped at 99 for equal frames."""
    d = a.astype(np.float64) - b.astype(np.float64)
    mse = (d * d).reshape(len(a), -1).mean(1)
    return np.where(mse > 0, 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-12)), 99.0)


def chunks(frames: np.ndarray, k: int):
    """Consecutive chunks of k frames (the last may be shorter), as a list of arrays."""
    return [frames[i:i + k] for i in range(0, len(frames), k)]


def subset(frames: np.ndarray, k: int, n: int) -> np.ndarray:
    """Frames of `n` evenly spaced whole chunks of k (all frames when n is 0 or too large)."""
    cs = chunks(frames, k)
    if not n or n >= len(cs):
        return frames
    full = [c for c in cs if len(c) == k]
    pick = np.linspace(0, len(full) - 1, n).round().astype(int)
    return np.concatenate([full[i] for i in pick])


@torch.no_grad()
def _forward(model, cfg, x: torch.Tensor, keep: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """Reconstruction in slices of `batch` sequences (bounds the attention memory)."""
    outs = [model(x[i:i + batch], keep[i:i + batch])[0].float() for i in range(0, len(x), batch)]
    return torch.cat(outs)


@torch.no_grad()
def reconstruct(model, cfg, frames: np.ndarray, count: int, device, batch: int = 16) -> np.ndarray:
    """uint8 reconstructions of `frames` (N, H, W, 3) with every block keeping `count` tokens."""
    k = cfg.context_blocks
    recon_by_chunk = {}
    lengths = [len(c) for c in chunks(frames, k)]
    all_chunks = chunks(frames, k)
    for length in sorted(set(lengths)):
        ids = [i for i, n in enumerate(lengths) if n == length]
        for s in range(0, len(ids), batch):
            sel = ids[s:s + batch]
            u8 = torch.from_numpy(np.stack([all_chunks[i] for i in sel])).to(device)
            x = patchify(u8, cfg)
            keep = torch.full((len(sel), length), count, dtype=torch.int64, device=device)
            r = to_uint8(unpatchify(_forward(model, cfg, x, keep), cfg)).cpu().numpy()
            for j, i in enumerate(sel):
                recon_by_chunk[i] = r[j]
    return np.concatenate([recon_by_chunk[i] for i in range(len(all_chunks))])


def fixed_budget(model, cfg, frames: np.ndarray, counts, device) -> dict:
    """{count: {"psnr", "ssim", "psnr_min", "psnr_by_position", "context_gain"}} over all frames."""
    k = cfg.context_blocks
    pos = np.arange(len(frames)) % k
    res = {}
    for n in counts:
        r = reconstruct(model, cfg, frames, int(n), device)
        p, s = psnr(frames, r), ssim(frames, r)
        by_pos = [float(p[pos == j].mean()) for j in range(k) if (pos == j).any()]
        gain = float(p[pos > 0].mean() - p[pos == 0].mean()) if (pos > 0).any() else 0.0
        res[int(n)] = {"psnr": float(p.mean()), "ssim": float(s.mean()), "psnr_min": float(p.min()),
                       "psnr_by_position": by_pos, "context_gain": gain}
    return res


@torch.no_grad()
def adaptive(model, cfg, frames: np.ndarray, thresholds, device, max_chunks: int = 0) -> dict:
    """{threshold: {"mean_keep", "median_keep", "share_met", "psnr", "frames"}} (binary search)."""
    k = cfg.context_blocks
    cs = [c for c in chunks(frames, k) if len(c) == k]
    if max_chunks and len(cs) > max_chunks:
        pick = np.linspace(0, len(cs) - 1, max_chunks).round().astype(int)
        cs = [cs[i] for i in pick]
    nt = len(thresholds)
    u8 = torch.from_numpy(np.stack(cs)).to(device)               # (C, K, H, W, 3)
    x = patchify(u8, cfg).repeat(nt, 1, 1)                          # (T*C, L, D), threshold-major
    thr = torch.tensor(thresholds, dtype=torch.float32, device=device).repeat_interleave(len(cs))
    b, m = x.shape[0], cfg.max_toks
    chosen = torch.full((b, k), cfg.max_toks, dtype=torch.int64, device=device)
    err_at = torch.zeros((b, k), dtype=torch.float32, device=device)

    def block_err(j, counts):
        keep = chosen[:, :j + 1].clone()
        keep[:, j] = counts
        r = _forward(model, cfg, x[:, :(j + 1) * m], keep)
        d = r[:, j * m:(j + 1) * m] - x[:, j * m:(j + 1) * m]
        return (d * d).mean(dim=(1, 2))

    for j in range(k):
        hi = torch.full((b,), cfg.max_toks, dtype=torch.int64, device=device)
        e_hi = block_err(j, hi)
        lo = torch.full((b,), cfg.min_toks - 1, dtype=torch.int64, device=device)
        best_e = e_hi.clone()
        missed = e_hi > thr
        while True:
            active = (~missed) & (hi - lo > 1)
            if not bool(active.any()):
                break
            mid = torch.where(active, (lo + hi) // 2, hi)
            e = block_err(j, mid)
            ok = active & (e <= thr)
            bad = active & ~(e <= thr)
            hi = torch.where(ok, mid, hi)
            best_e = torch.where(ok, e, best_e)
            lo = torch.where(bad, mid, lo)
        chosen[:, j] = hi
        err_at[:, j] = best_e
    res = {}
    for ti, t in enumerate(thresholds):
        sl = slice(ti * len(cs), (ti + 1) * len(cs))
        n = chosen[sl].flatten().float().cpu().numpy()
        e = err_at[sl].flatten().cpu().numpy()
        p = 10 * np.log10(4.0 / np.maximum(e, 1e-12))
        res[float(t)] = {"mean_keep": float(n.mean()), "median_keep": float(np.median(n)),
                         "share_met": float((e <= t).mean()), "psnr": float(p.mean()),
                         "frames": int(n.size)}
    return res


def mse_to_psnr(mse: float) -> float:
    """PSNR (dB) of an MSE measured on pixels in [-1, 1]."""
    return 10 * math.log10(4.0 / mse)
