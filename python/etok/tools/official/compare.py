"""Compares etok and the official code for Tools/official/bench.sh (numpy only).

usage: etok-tools official compare fixed  ETOK_DIR OFFICIAL_DIR FRAMES.npy KEEP MAX_TOKS
           reconstructions (max |difference|), kept FSQ codes (share equal) and per-block MSE
           (etok's recon against the input, the official _recon_with_mask loss)
       etok-tools official compare search ETOK_STATS.json OFFICIAL.json
           per-block kept counts: how many equal, the histogram of differences
       etok-tools official compare speed  TIMES.tsv
           medians per side and the ratios (TIMES.tsv: side, search, round, seconds, frames, load1)
"""

from __future__ import annotations

import collections
import json
import sys

import numpy as np


def patches(frames: np.ndarray, tokens: int) -> np.ndarray:
    """uint8 (T, 128, 128, 3) with 1-frame blocks and 8x8 patches -> (L, 192) in [-1, 1]."""
    T, H, W, C = frames.shape
    v = frames.reshape(T, H // 8, 8, W // 8, 8, C).transpose(0, 1, 3, 2, 4, 5).reshape(T * tokens, -1)
    return v.astype(np.float32) / 127.5 - 1


def fixed(etok_dir, off_dir, frames_path, keep, max_toks):
    keep, max_toks = int(keep), int(max_toks)
    re, ro = np.load(f"{etok_dir}/recon.npy"), np.load(f"{off_dir}/recon.npy")
    ce, co = np.load(f"{etok_dir}/codes.npy"), np.load(f"{off_dir}/codes.npy")
    kept = (np.arange(len(ce)) % max_toks) < keep
    x = patches(np.load(frames_path), max_toks)
    mse_e = ((re - x) ** 2).reshape(-1, max_toks * re.shape[1]).mean(1)
    mse_o = np.load(f"{off_dir}/losses.npy")
    rel = np.abs(mse_e - mse_o) / mse_o
    print(f"keep {keep}: recon max |etok - official| {np.abs(re - ro).max():.2e} (mean {np.abs(re - ro).mean():.1e}); "
          f"kept codes equal {int((ce[kept] == co[kept]).sum())}/{int(kept.sum())}; "
          f"per-block MSE max relative difference {rel.max():.1e} over {len(rel)} blocks")


def search(etok_stats, official_json):
    e = [b["kept"] for b in json.load(open(etok_stats))["per_block"]]
    o = json.load(open(official_json))
    k = np.array(o["kept"])
    d = k - np.array(e)
    hist = dict(sorted(collections.Counter(d.tolist()).items()))
    line = f"{o['alg']}: {int((d == 0).sum())}/{len(d)} blocks keep the same count as etok; official - etok: {hist}"
    if "final_loss" in o:
        miss = sum(1 for x in o["final_loss"] if x > o["threshold"])
        line += f"; official's chosen count misses the threshold in {miss}/{len(d)} blocks"
    print(line)


def speed(tsv):
    rows = [l.rstrip("\n").split("\t") for l in open(tsv) if l.strip() and not l.startswith("#")]
    per = collections.defaultdict(list)
    loads = []
    for side, search_, _round, secs, frames, load1 in rows:
        per[(side, search_)].append(float(secs) / float(frames))
        loads.append(float(load1))
    med = {k: float(np.median(v)) for k, v in per.items()}
    for (side, s), v in sorted(med.items()):
        print(f"{side:9s} {s:16s} {v * 1000:8.1f} ms/frame (median of {len(per[(side, s)])}: "
              f"{', '.join(f'{x * 1000:.0f}' for x in per[(side, s)])})")
    for es, os_ in (("fast", "fast"), ("fast", "official-binary"), ("binary", "official-binary"), ("binary", "binary")):
        if ("etok", es) in med and ("official", os_) in med:
            print(f"etok {es} vs official {os_}: {med[('official', os_)] / med[('etok', es)]:.2f}x")
    print(f"load average (1 min) at the runs' starts: {min(loads):.2f}-{max(loads):.2f}, median {np.median(loads):.2f}")


COMPARISONS = {"fixed": (fixed, 5), "search": (search, 2), "speed": (speed, 1)}  # name -> (function, arguments)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if not argv or argv[0] not in COMPARISONS or len(argv) - 1 != COMPARISONS[argv[0]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        COMPARISONS[argv[0]][0](*argv[1:])
    except OSError as e:
        print(f"etok-tools official compare: error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
