"""How much a model draws on its context: mean PSNR by position in the chunk for budget patterns.

    etok-tools context-gain [MODEL] [--clips A.mp4 ...] [--patterns 64,64,64,64 256,32,32,32]
                                  [--max-frames 160]

Frames come from `etok preview` (exactly what the encoder sees; release build), cut into chunks
of the model's context (4 blocks); every chunk is encoded with the pattern's kept count per block
(PyTorch reference model). Position 0 has no earlier frame to draw on; if the model uses its
context, later positions beat it at equal budgets, and after a full first block the later ones
keep part of its quality. Context gain (equal budgets only): mean PSNR of positions 1.. minus
position 0's. The table in docs/model.md ("Where the gap is") comes from this script.

--attention also prints, per layer, where the last block's queries look (softmax mass, mean over
heads, queries and chunks): on each block of the chunk, and on the same patch one block back.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from .common import SAMPLES, SHIPPED, etok_binary, frames_of
from .reference import model as reference_model
from .reference.model import patchify
from .reference.safetensors_io import load


@torch.no_grad()
def psnr_by_position(model, cfg, frames: np.ndarray, pattern: list) -> np.ndarray:
    """Mean PSNR (dB, from the [-1, 1] MSE) per chunk position over the whole chunks of `frames`."""
    k = len(pattern)
    out = []
    for s in range(0, len(frames) - k + 1, k):
        x = patchify(torch.from_numpy(frames[s:s + k].copy())[None], cfg)
        recon, _, _ = model(x, torch.tensor([pattern]))
        err = ((recon - x) ** 2).reshape(k, -1).mean(dim=1)
        out.append((10 * torch.log10(4 / err)).numpy())
    return np.array(out).mean(axis=0)


@torch.no_grad()
def attention_mass(model, cfg, frames: np.ndarray, pattern: list) -> np.ndarray:
    """(layers, blocks + 1): per encoder then decoder layer, the attention mass of the last block's
    queries on each block, then on the same patch one block back; mean over heads, queries and
    the whole chunks of `frames`. Reads the reference model's "exact" attention probabilities
    through its `observe_probs` hook."""
    k, m = len(pattern), cfg.max_toks
    records = []

    def observe(probs):
        last = probs.mean(dim=1)[0][(k - 1) * m:k * m]                # last block's queries, head mean
        mass = [float(last[:, j * m:(j + 1) * m].sum(dim=1).mean()) for j in range(k)]
        same = float(last[torch.arange(m), (k - 2) * m + torch.arange(m)].mean()) if k > 1 else 0.0
        records.append(mass + [same])

    layers = [mod for mod in model.modules() if isinstance(mod, reference_model.Attention)]
    for layer in layers:
        layer.impl, layer.observe_probs = "exact", observe
    try:
        total, chunks = None, 0
        for s in range(0, len(frames) - k + 1, k):
            records.clear()
            model(patchify(torch.from_numpy(frames[s:s + k].copy())[None], cfg), torch.tensor([pattern]))
            rows = np.array(records)
            total = rows if total is None else total + rows
            chunks += 1
    finally:
        for layer in layers:
            layer.observe_probs = None
    return total / max(chunks, 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default=str(SHIPPED))
    ap.add_argument("--clips", nargs="+", default=[str(p) for p in SAMPLES])
    ap.add_argument("--patterns", nargs="+", default=None,
                    help="kept counts per block, comma-separated (default: every block at 1/8, 1/4, "
                         "1/2 and all of the model's tokens, then all tokens first and 1/8 or 1/4 after: "
                         "32,32,32,32 ... 256,64,64,64 for the default model)")
    ap.add_argument("--max-frames", type=int, default=160, help="first N frames of each clip (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attention", action="store_true",
                    help="also print where the last block's queries attend, per layer")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg, model = load(args.model)
    ctx = cfg.max_sequence_length // cfg.max_toks
    if args.patterns is None:
        most = cfg.max_toks
        at = lambda f: max(cfg.min_toks, most // f)  # noqa: E731
        patterns = [[at(f)] * ctx for f in (8, 4, 2, 1)] + [[most] + [at(f)] * (ctx - 1) for f in (8, 4)]
    else:
        patterns = [[int(v) for v in p.split(",")] for p in args.patterns]
    for p in patterns:
        if len(p) != ctx or min(p) < cfg.min_toks or max(p) > cfg.max_toks:
            print(f"context_gain: pattern {p}: need {ctx} counts in [{cfg.min_toks}, {cfg.max_toks}]",
                  file=sys.stderr)
            return 2
    etok = etok_binary()
    print("| clip | kept tokens per block | PSNR by position (dB) | context gain (dB) |")
    print("|---|---|---|---|")
    for clip in args.clips:
        frames = frames_of(clip, cfg.image_size[0], etok)
        if args.max_frames:
            frames = frames[:args.max_frames]
        for p in patterns:
            by_pos = psnr_by_position(model, cfg, frames, p)
            # The gain compares like with like: only defined when every block keeps the same count.
            gain = f"{by_pos[1:].mean() - by_pos[0]:+.2f}" if len(set(p)) == 1 else "—"
            print(f"| {Path(clip).name} ({len(frames)} frames) | {', '.join(map(str, p))} | "
                  f"{' / '.join(f'{v:.2f}' for v in by_pos)} | {gain} |", flush=True)
    if args.attention:
        enc = cfg.num_encoder_layers
        for clip in args.clips:
            frames = frames_of(clip, cfg.image_size[0], etok)[:args.max_frames or None]
            for p in patterns:
                rows = attention_mass(model, cfg, frames, p)
                print(f"\n{Path(clip).name}, kept {', '.join(map(str, p))}: attention of block {len(p) - 1}'s "
                      f"queries on blocks 0..{len(p) - 1} | on the same patch one block back")
                for i, r in enumerate(rows):
                    name = f"encoder {i}" if i < enc else f"decoder {i - enc}"
                    print(f"  {name}: {' '.join(f'{v:.2f}' for v in r[:-1])} | {r[-1]:.3f}")
    return 0
