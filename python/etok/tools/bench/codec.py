"""Codec benchmark (issue 5): encode/decode speed, the three searches side by side, token savings
against fixed-length budgets at equal quality, compactness of .etok, and peak memory on a long input.

Usage: etok-tools bench codec [--model M.safetensors] [--clips a.mp4 b.mp4] [--runs 3]
                                    [--threshold 0.003] [--out DIR] [--plot savings.png]
                                    [--rd-plot rd.png] [--rd-psnr 24 26 28]

Runs the release `etok` binary (built first). Prints markdown tables for BENCHMARKS.md with the
machine and date. Every timing is the median of --runs runs; the searches alternate run by run
so background load hits them alike.
"""
from __future__ import annotations

import argparse
import json
import lzma
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from ..common import SAMPLES, release_etok


def sh(cmd, text=True, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=text, **kw)


def timed(cmd) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def info(etok, path) -> dict:
    return json.loads(sh([str(etok), "info", str(path), "--json", "--blocks"]).stdout)


def entropy_bits(symbols) -> float:
    counts = Counter(symbols)
    n = sum(counts.values())
    return -sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--etok", default=None, help="etok binary to time (default: build the release etok)")
    ap.add_argument("--clips", nargs="+", default=[str(p) for p in SAMPLES])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--fixed", type=int, nargs="+", default=[16, 32, 48, 64, 96, 128, 160, 192, 224, 256])
    ap.add_argument("--searches", nargs="+", default=["fast", "binary", "linear"])
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory run (the longest part)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--plot", default=None, help="write the savings plot (PNG, needs matplotlib)")
    ap.add_argument("--rd-plot", default=None,
                    help="write the rate-distortion plot (PNG): mean PSNR against mean tokens per "
                         "frame, fixed budgets against elastic encoding at each of --rd-psnr")
    ap.add_argument("--rd-psnr", type=float, nargs="+", default=[20, 22, 24, 25, 26, 27, 28, 29, 30, 32],
                    help="per-frame PSNR targets (dB) for the elastic rate-distortion curve")
    args = ap.parse_args(argv)

    etok = Path(args.etok) if args.etok else release_etok(build=True)
    out = Path(args.out or tempfile.mkdtemp(prefix="etok-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    common = ["-y", "-q"] + (["--model", args.model] if args.model else [])
    thr = ["--threshold", str(args.threshold)] if args.threshold else []
    print(f"# codec benchmark — {platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}\n")

    # 1. The three searches side by side, and decoding.
    print("| clip | search | frames | tokens/frame | passes/frame | encode fps | decode fps | mean PSNR | within threshold |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    savings_rows = []
    match_rows = []  # (clip, elastic tokens, elastic share, smallest fixed budget with that share)
    rd_rows = []  # (clip, "fixed", budget, tokens, psnr) or (clip, "elastic", target dB, tokens, psnr, share)
    for clip in args.clips:
        name = Path(clip).name
        times = {s: [] for s in args.searches}
        for _ in range(args.runs):
            for s in times:
                times[s].append(timed([str(etok), "encode", clip, "-o", str(out / f"{name}.{s}.etok"), "--search", s,
                                       "--stats", str(out / f"{name}.{s}.json")] + thr + common))
        for s in times:
            stats = json.loads((out / f"{name}.{s}.json").read_text())
            dec = [timed([str(etok), "decode", str(out / f"{name}.{s}.etok"), "-o", str(out / f"{name}.y4m")] + common)
                   for _ in range(args.runs)]
            n = stats["frames"]
            print(f"| {name} | {s} | {n} | {stats['mean_tokens']:.1f} | {stats['passes_per_block']:.2f} | "
                  f"{n / statistics.median(times[s]):.2f} | {n / statistics.median(dec):.2f} | {stats['mean_psnr']:.2f} | "
                  f"{100 * stats['share_meeting_threshold']:.0f}% |")
        # 2. Fixed budgets: share of frames meeting the threshold at each budget (the paper's measure).
        fast = json.loads((out / f"{name}.{args.searches[0]}.json").read_text())
        threshold = fast["threshold"]
        def fixed_run(budget):
            sh([str(etok), "encode", clip, "-o", str(out / f"{name}.fixed{budget}.etok"), "--fixed", str(budget),
                "--stats", str(out / f"{name}.fixed{budget}.json")] + common)
            st = json.loads((out / f"{name}.fixed{budget}.json").read_text())
            return st, sum(1 for b in st["per_block"] if b["mse"] <= threshold) / max(1, len(st["per_block"]))

        shares = {}
        most = fast["max_tokens_per_block"]  # the grid stops at the model's largest budget
        for budget in sorted({b for b in args.fixed if b < most} | {most}):
            st, shares[budget] = fixed_run(budget)
            savings_rows.append((name, budget, shares[budget]))
            rd_rows.append((name, "fixed", budget, st["mean_tokens"], st["mean_psnr"]))
        savings_rows.append((name, "elastic", fast["share_meeting_threshold"], fast["mean_tokens"]))
        match_rows.append((name, fast["mean_tokens"], fast["share_meeting_threshold"],
                           smallest_matching_budget(shares, fast["share_meeting_threshold"],
                                                    lambda b: fixed_run(b)[1])))
        if args.rd_plot:
            for target in args.rd_psnr:
                sh([str(etok), "encode", clip, "-o", str(out / f"{name}.rd{target}.etok"), "--psnr", str(target),
                    "--stats", str(out / f"{name}.rd{target}.json")] + common)
                st = json.loads((out / f"{name}.rd{target}.json").read_text())
                rd_rows.append((name, "elastic", target, st["mean_tokens"], st["mean_psnr"],
                                st["share_meeting_threshold"]))

    print("\n## Fixed-length budgets against elastic, at the same threshold\n")
    print("| clip | budget (tokens/frame) | frames meeting the threshold |")
    print("|---|---:|---:|")
    for row in savings_rows:
        if row[1] == "elastic":
            print(f"| {row[0]} | **elastic: {row[3]:.1f} mean** | **{100 * row[2]:.0f}%** |")
        else:
            print(f"| {row[0]} | {row[1]} | {100 * row[2]:.0f}% |")
    print("\nThe smallest fixed budget whose share matches elastic's (to the token: bisection between "
          "the grid points around it):\n")
    print("| clip | elastic tokens/frame | share | smallest fixed budget with that share | elastic needs fewer tokens by |")
    print("|---|---:|---:|---:|---:|")
    for clip, tokens, share, budget in match_rows:
        ratio = f"{budget / tokens:.2f}×" if budget else "— (no fixed budget reaches it)"
        print(f"| {clip} | {tokens:.1f} | {100 * share:.1f}% | {budget or '—'} | {ratio} |")
    if args.plot:
        savings_plot(savings_rows, args.plot)

    print("\n## Rate and distortion: mean PSNR against mean tokens per frame\n")
    print("| clip | encoding | mean tokens/frame | mean PSNR (dB) | frames meeting the target |")
    print("|---|---|---:|---:|---:|")
    for r in rd_rows:
        if r[1] == "fixed":
            print(f"| {r[0]} | fixed {r[2]} | {r[3]:.1f} | {r[4]:.2f} | |")
        else:
            print(f"| {r[0]} | elastic, {r[2]:g} dB per frame | {r[3]:.1f} | {r[4]:.2f} | {100 * r[5]:.0f}% |")
    if args.rd_plot:
        rd_plot(rd_rows, args.rd_plot)

    # 3. Compactness: .etok against raw 16-bit indices, zstd -19, xz -9, and the empirical entropy.
    print("\n## Compactness (bits per kept token)\n")
    print("Per chunk: each chunk of blocks compressed on its own, as random access requires (the .etok")
    print("coder resets at every chunk too); whole stream: one compressor over all chunks.\n")
    print("| clip | .etok file | raw 16-bit | zstd -19 per chunk | xz -9 per chunk | zstd -19 whole stream | "
          "xz -9 whole stream | order-0 entropy of indices |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for clip in args.clips:
        name = Path(clip).name
        path = out / f"{name}.{args.searches[0]}.etok"
        sh([str(etok), "export", str(path), "--format", "npy", "-o", str(out / f"{name}.tokens"), "-y", "-q"])
        import numpy as np
        tokens = np.load(out / f"{name}.tokens" / "tokens.npy").astype("<u2").tobytes()
        n = len(tokens) // 2
        raw = out / f"{name}.raw16"
        raw.write_bytes(tokens)
        zst = len(sh(["zstd", "-19", "-c", str(raw)], text=False).stdout) if shutil_which("zstd") else float("nan")
        xz = len(lzma.compress(tokens, preset=9))
        size = path.stat().st_size
        ent = entropy_bits(np.frombuffer(tokens, dtype="<u2").tolist())
        lengths = np.load(out / f"{name}.tokens" / "lengths.npy").astype(np.int64)
        per = info(etok, path)["encoding"]["chunk_blocks"]
        ends = np.cumsum(lengths)[per - 1::per].tolist()
        if not ends or ends[-1] != n:
            ends.append(n)
        chunks, start = [], 0
        for end in ends:
            chunks.append(tokens[2 * start:2 * end])
            start = end
        xz_chunks = sum(len(lzma.compress(c, preset=9)) for c in chunks)
        zst_chunks = (sum(len(sh(["zstd", "-19", "-c"], text=False, input=c).stdout) for c in chunks)
                      if shutil_which("zstd") else float("nan"))
        print(f"| {name} | {8 * size / n:.2f} | 16.00 | {8 * zst_chunks / n:.2f} | {8 * xz_chunks / n:.2f} | "
              f"{8 * zst / n:.2f} | {8 * xz / n:.2f} | {ent:.2f} |")

    # 4. Peak memory: a clip and the same clip looped ten times (fixed budget: one pass per frame;
    #    memory does not depend on the search).
    if args.no_memory:
        return 0
    print("\n## Peak memory (maximum resident set)\n")
    print("| input | frames | peak RSS |")
    print("|---|---:|---:|")
    clip = min(args.clips, key=lambda c: Path(c).stat().st_size)
    looped = out / "looped.nut"
    sh(["ffmpeg", "-v", "error", "-y", "-stream_loop", "9", "-i", clip, "-c", "copy", "-f", "nut", str(looped)])
    for label, src in (("1×", clip), ("10× (looped)", str(looped))):
        r = subprocess.run(["/usr/bin/time", "-f", "%M", str(etok), "encode", src, "-o", str(out / "mem.etok"),
                            "--fixed", "64", "--stats", str(out / "mem.json")] + common,
                           capture_output=True, text=True, check=True)
        kb = int(r.stderr.strip().splitlines()[-1])
        frames = json.loads((out / "mem.json").read_text())["frames"]
        print(f"| {Path(clip).name} {label} | {frames} | {kb / 1024:.0f} MiB |")
    return 0


def smallest_matching_budget(shares: dict, target: float, share_at) -> int:
    """The smallest budget whose share of frames meeting the threshold is at least `target`, to
    the token. `shares` holds the grid's shares; between the last grid point below the target and
    the first one at or above it, `share_at(budget)` is bisected (the share rises with the budget,
    as the model's error falls with kept tokens). None if no grid point reaches the target."""
    grid = sorted(shares)
    hits = [b for b in grid if shares[b] >= target - 1e-9]
    if not hits:
        return None
    hi = hits[0]
    below = [b for b in grid if b < hi]
    if not below:
        return hi
    lo = below[-1]  # share(lo) < target <= share(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if share_at(mid) >= target - 1e-9:
            hi = mid
        else:
            lo = mid
    return hi


def pyplot():
    """matplotlib's pyplot on the file-only backend, or None (with a note) when it is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        print("(matplotlib not installed: no plot; pip install matplotlib)", file=sys.stderr)
        return None


def savings_plot(rows, path):
    """Share of frames meeting the threshold against tokens per frame: fixed budgets as a curve,
    elastic as a star, one colour per clip (the paper's measure)."""
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, clip in enumerate(dict.fromkeys(r[0] for r in rows)):
        pts = [(r[1], r[2]) for r in rows if r[0] == clip and r[1] != "elastic"]
        ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker="o", color=f"C{i}", label=f"{clip} fixed")
        el = [r for r in rows if r[0] == clip and r[1] == "elastic"][0]
        ax.scatter([el[3]], [100 * el[2]], marker="*", s=200, color=f"C{i}", label=f"{clip} elastic")
    ax.set_xlabel("tokens per frame")
    ax.set_ylabel("% frames meeting the threshold")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def rd_plot(rows, path):
    """PSNR against tokens per frame, one fixed and one elastic curve per clip."""
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, clip in enumerate(dict.fromkeys(r[0] for r in rows)):
        colour = f"C{i}"
        for kind, style in (("fixed", "o--"), ("elastic", "s-")):
            pts = sorted((r[3], r[4]) for r in rows if r[0] == clip and r[1] == kind)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=colour, markersize=4,
                        label=f"{clip}: {'fixed budget' if kind == 'fixed' else 'elastic (per-frame PSNR target)'}")
    ax.set_xlabel("mean kept tokens per frame")
    ax.set_ylabel("mean PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def shutil_which(name):
    import shutil
    return shutil.which(name)
