"""Clip-by-clip quality of a model on real footage (the model card's *Unseen real footage* table).

Usage: etok-tools bench clips [--model M.safetensors] [--clips a.mp4 ...] [--psnr 23.8 ...]
                                    [--threshold 0.0138 ...]

For every clip, with the release `etok` binary (built first): the PSNR of each frame at the full
budget (the model's largest; median and 5th percentile over frames), then the `fast` search at the model's default
threshold and at each --psnr target and --threshold (MSE): tokens per frame and the share of frames meeting it. The
last lines pool all frames of the clips that are real footage. Deterministic: one run.

Default clips: the held-out bikes.mp4, the calibration clips and dataset v3's added clips
(etok/tools/data/sources.py), where `etok-tools data` unpacked them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..common import ROOT, encode_stats, release_etok
from ..data import sources


def default_clips() -> list:
    """[(name, role, path)] of the clips that exist on this machine."""
    out = [("bikes", "held out", str(ROOT / "Samples/bikes.mp4"))]
    out += [(n, "cal", p) for n, p in sources.unpacked(sources.CALIBRATION)]
    out += [(n, "v3", p) for n, p in sources.unpacked(sources.VIDEOS_V3)]
    missing = [n for n, _, p in out if not os.path.exists(p)]
    if missing:
        print(f"etok-tools bench clips: {len(missing)} clips missing ({', '.join(missing)}): "
              f"`etok-tools data` unpacks them", file=sys.stderr)
    return [(n, r, p) for n, r, p in out if os.path.exists(p)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model file (default: the one bundled with etok)")
    ap.add_argument("--clips", nargs="+", default=None, help="clips to measure (default: see above)")
    ap.add_argument("--psnr", type=float, nargs="*", default=[], help="further thresholds, as PSNR in dB")
    ap.add_argument("--threshold", type=float, nargs="*", default=[], help="further thresholds, as MSE")
    args = ap.parse_args(argv)
    etok = str(release_etok(build=True))
    clips = [(Path(c).stem, "", c) for c in args.clips] if args.clips else default_clips()
    model = ["--model", args.model] if args.model else []
    settings = ([("default", [])] + [(f"{p:g} dB", ["--psnr", f"{p:g}"]) for p in args.psnr]
                + [(f"{t:g}", ["--threshold", f"{t:g}"]) for t in args.threshold])
    print(f"# clip by clip — {args.model or 'bundled model'}, {time.strftime('%Y-%m-%d')}\n")
    print("| clip | role | frames | PSNR at the full budget (median / 5th pct) | "
          + " | ".join(f"tokens (share meeting) at {name}" for name, _ in settings) + " |")
    print("|---|---|---:|---|" + "---|" * len(settings))
    pooled = {name: [0, 0.0, 0.0] for name, _ in settings}  # frames, tokens, frames meeting
    threshold = None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, role, clip in clips:
            cells = []
            for sname, extra in settings:
                st = encode_stats(etok, clip, tmp, model + extra)
                most = st["max_tokens_per_block"]
                if sname == "default":
                    threshold = st["threshold"]
                cells.append(f"{st['mean_tokens']:.1f} ({100 * st['share_meeting_threshold']:.0f}%)")
                if name not in sources.NOT_REAL:
                    n = len(st["per_block"])
                    pooled[sname][0] += n
                    pooled[sname][1] += n * st["mean_tokens"]
                    pooled[sname][2] += n * st["share_meeting_threshold"]
            full = encode_stats(etok, clip, tmp, model + ["--fixed", str(most)])
            psnr = np.array([b["psnr"] for b in full["per_block"]])
            print(f"| {name} | {role} | {len(psnr)} | {np.median(psnr):.2f} / {np.quantile(psnr, 0.05):.2f} | "
                  + " | ".join(cells) + " |", flush=True)
    if threshold:
        print(f"\nDefault threshold: {threshold:.6g} ({10 * np.log10(4 / threshold):.2f} dB).")
    for sname, (n, tokens, meeting) in pooled.items():
        if n:
            print(f"Pooled over {n} frames of real footage ({', '.join(sorted(sources.NOT_REAL))} left out), at "
                  f"{sname}: {tokens / n:.1f} tokens per frame, {100 * meeting / n:.1f}% of frames meet it.")
    return 0
