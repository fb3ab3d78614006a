"""Calibrates a model's default threshold and stores it in the model file.

Usage: etok-tools calibrate MODEL.safetensors [--clips A.mp4 B.avi] [--quantile 0.95]
                                  [--fraction 0.5] [--out OUT.safetensors] [--dry-run]

The threshold (an MSE on the [-1, 1] pixel scale) serves two aims, measured on calibration footage
prepared as etok does (128x128 centre crop, chunks of the model's context; at most --max-frames
per clip, so a long static clip cannot dominate):
  * at least --quantile of the frames can meet it: it is at least that quantile of the per-frame
    error with every token kept;
  * adaptivity shows: the median frame meets it with about --fraction of the tokens: it is at
    least the median per-frame error with that share of tokens kept in every block.
The threshold is the larger of the two. It is written into the safetensors metadata as
"etok_threshold", which `etok encode` uses when no --threshold is given.

Calibration clips default to etok/tools/data/sources.py's CALIBRATION: six real clips from four Debian
packages that no dataset version trains on (`etok-tools data` unpacks them into
~/.cache/etok/sources). Footage the model has not seen keeps the threshold honest: calibrated on
training clips, a model that fits them better gets a stricter threshold than it can keep on new
footage. The held-out bikes.mp4 is never used here (it is what the threshold is judged on).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import sys
from pathlib import Path

import numpy as np
import torch

from .common import etok_binary, frames_of
from .data import sources
from .reference.model import patchify
from .reference.official_format import write_safetensors
from .reference.safetensors_io import load, load_flat


@torch.no_grad()
def full_budget_errors(model, cfg, frames: np.ndarray, kept: int = None) -> np.ndarray:
    """Per-frame MSE with `kept` tokens (default: all) kept in every block, in chunks of the
    model's context."""
    ctx = cfg.max_sequence_length // cfg.max_toks
    kept = cfg.max_toks if kept is None else kept
    errors = []
    for start in range(0, len(frames), ctx):
        chunk = torch.from_numpy(frames[start:start + ctx].copy())[None]
        vision = patchify(chunk, cfg)
        blocks = chunk.shape[1]
        recon, _, _ = model(vision, torch.full((1, blocks), kept))
        err = ((recon - vision) ** 2).reshape(blocks, -1).mean(dim=1)
        errors += err.tolist()
    return np.array(errors)


def default_clips() -> list:
    """etok/tools/data/sources.py's CALIBRATION clips, where `etok-tools data` unpacked them
    (<cache>/sources); none of them is training data."""
    clips = [path for _, path in sources.unpacked(sources.CALIBRATION)]
    found = [c for c in clips if os.path.exists(c)]
    if len(found) < len(clips):
        print(f"calibrate: {len(clips) - len(found)} of the {len(clips)} calibration clips are missing "
              f"(`etok-tools data` unpacks them); using {len(found)}", file=sys.stderr)
    if not found:
        raise SystemExit("calibrate: no calibration clips: run `etok-tools data`, or give --clips")
    return found


def spread(frames: np.ndarray, ctx: int, limit: int) -> np.ndarray:
    """At most `limit` frames of `frames`, as evenly spaced whole chunks of `ctx` frames."""
    chunks = len(frames) // ctx
    want = limit // ctx
    if chunks <= want:
        return frames
    starts = np.linspace(0, chunks - 1, want).round().astype(int) * ctx
    return np.concatenate([frames[s:s + ctx] for s in starts])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--clips", nargs="+", default=None,
                    help="calibration footage (default: sources.CALIBRATION, never trained on; see above)")
    ap.add_argument("--etok", default=None, help="etok binary whose `etok preview` prepares the frames "
                    "(default: the release build, if built)")
    ap.add_argument("--max-frames", type=int, default=160,
                    help="frames per clip at most (evenly spaced chunks), so no clip dominates")
    ap.add_argument("--quantile", type=float, default=0.95)
    ap.add_argument("--fraction", type=float, default=0.5, help="share of max_toks the median frame should need")
    ap.add_argument("--out", default=None, help="write here instead of updating MODEL in place")
    ap.add_argument("--dry-run", action="store_true", help="print the threshold, write nothing")
    args = ap.parse_args(argv)
    args.clips = args.clips or default_clips()
    if any("bikes.mp4" in c for c in args.clips):
        print("calibrate: bikes.mp4 is the held-out clip; calibrate on other footage", file=sys.stderr)
        return 2

    cfg, model = load(args.model)
    size = cfg.image_size[0]
    ctx = cfg.max_sequence_length // cfg.max_toks
    etok = args.etok or etok_binary()
    print(f"calibrate: frames from {'`' + etok + ' preview`' if etok else 'ffmpeg (no etok build found)'}")
    clips = [spread(frames_of(c, size, etok), ctx, args.max_frames) for c in args.clips]
    for c, f in zip(args.clips, clips):
        print(f"calibrate: {Path(c).name}: {len(f)} frames")
    errors = np.concatenate([full_budget_errors(model, cfg, f) for f in clips])
    part = max(cfg.min_toks, round(args.fraction * cfg.max_toks))
    partial = np.concatenate([full_budget_errors(model, cfg, f, kept=part) for f in clips])
    reach = float(np.quantile(errors, args.quantile))
    adapt = float(np.median(partial))
    threshold = max(reach, adapt)
    psnr = 10 * np.log10(4 / threshold)
    print(f"calibrate: {len(errors)} frames; MSE with all {cfg.max_toks} tokens: median {np.median(errors):.5f}, "
          f"q{args.quantile:g} {reach:.5f}; with {part} tokens: median {adapt:.5f}; "
          f"threshold {threshold:.5f} ({psnr:.2f} dB)")
    if args.dry_run:
        return 0
    _, flat, meta = load_flat(args.model)
    stored = json.loads(json.dumps(meta))
    stored["etok_threshold"] = f"{threshold:.6g}"
    dtype = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32"}[next(iter(flat.values())).dtype]
    out = args.out or args.model
    write_safetensors(out, {k: v.float().numpy() for k, v in flat.items()}, stored, dtype)
    print(f"calibrate: wrote etok_threshold={stored['etok_threshold']} into {out}")
    return 0
