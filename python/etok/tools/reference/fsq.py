"""Finite scalar quantization (FSQ) as the official ElasticTok code defines it.

For levels L (per code dimension), in float32:
  half_l = float32((L - 1) * (1 - 1e-3) / 2)        constants computed in float64, rounded once
  offset = 0.5 if L is even else 0
  shift  = float32(tan(offset / half_l))            (tan, as the official code has it)
  bound  = tanh(z + shift) * half_l - offset
  code   = round_half_to_even(bound) / (L div 2)     in [-1, 1]
  index  = sum_d (round(bound_d) + L_d div 2) * basis_d,  basis_0 = 1, basis_d = prod(L_<d)
A token with code 0 everywhere (the masked token, z = 0) has index sum_d (L_d div 2) * basis_d:
32036 for (8, 8, 8, 5, 5, 5).
Training uses a straight-through estimator: the gradient of round is taken as identity.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def constants(levels):
    """(half_l, offset, shift, half_width, basis) as float32/int64 tensors."""
    lv = np.asarray(levels, dtype=np.float64)
    half_l = (lv - 1.0) * (1.0 - 1e-3) / 2.0
    offset = np.where(np.asarray(levels) % 2 == 0, 0.5, 0.0)
    shift = np.tan(offset / half_l)
    half_width = np.asarray(levels, dtype=np.int64) // 2
    basis = np.concatenate([[1], np.cumprod(np.asarray(levels, dtype=np.int64))[:-1]])
    f32 = lambda a: torch.from_numpy(a.astype(np.float32))
    return f32(half_l), f32(offset), f32(shift), torch.from_numpy(half_width), torch.from_numpy(basis)


def masked_index(levels) -> int:
    """The index of the all-zero code (what a token that is not kept gets)."""
    basis = [math.prod(levels[:d]) for d in range(len(levels))]
    return int(sum((l // 2) * b for l, b in zip(levels, basis)))


def quantize(z: torch.Tensor, levels):
    """z (..., len(levels)) -> (codes in [-1, 1] float32 with a straight-through gradient,
    indices int64 (...))."""
    with torch.autocast(device_type=z.device.type, enabled=False):
        z = z.float()
        half_l, offset, shift, half_width, basis = (t.to(z.device) for t in constants(levels))
        bound = torch.tanh(z + shift) * half_l - offset
        rounded = torch.round(bound)  # half to even
        ste = bound + (rounded - bound).detach()
        codes = ste / half_width.to(torch.float32)
        idx = ((rounded.detach().to(torch.int64) + half_width) * basis).sum(-1)
    return codes, idx


def bound_values(z: torch.Tensor, levels) -> torch.Tensor:
    """The pre-rounding values tanh(z + shift) * half_l - offset (for margin checks)."""
    half_l, offset, shift, _, _ = constants(levels)
    return torch.tanh(z.float() + shift) * half_l - offset


def indices_to_codes(indices: torch.Tensor, levels) -> torch.Tensor:
    """FSQ indices (...) -> codes (..., len(levels)) float32 in [-1, 1]."""
    _, _, _, half_width, basis = constants(levels)
    lv = torch.tensor(levels, dtype=torch.int64)
    idx = indices.to(torch.int64)
    if bool((idx < 0).any()) or bool((idx >= math.prod(levels)).any()):
        raise ValueError(f"FSQ index out of range [0, {math.prod(levels)})")
    digits = (idx[..., None] // basis.to(idx.device)) % lv.to(idx.device)
    hw = half_width.to(idx.device)
    return ((digits - hw).to(torch.float32) / hw.to(torch.float32))
