"""etok's fixed token budgets against x264 at the same bits per frame: where the model stands.

    etok-tools bench vs-x264 [--clips Samples/bikes.mp4 ...] [--model M] [--etok PATH]

For each clip, on exactly the frames etok encodes (`etok preview`, 128x128 RGB):
  * etok: `etok encode --fixed N` for each N; bits per frame = the whole .etok file (container,
    index and token stream) x 8 / frames; per-frame PSNR from the block table (the encoder's
    measured reconstruction, which the decoder reproduces exactly).
  * x264 (libx264 through the ffmpeg CLI, yuv444p so chroma is not subsampled, preset veryslow)
    at a sweep of CRF values, three ways: intra only (-g 1: each frame alone, like etok's first
    block of a chunk); inter prediction with a keyframe every 4 frames (-g 4: the same random
    access as etok's chunks of 4 blocks, the like-for-like comparison); and x264's default GOP
    (up to 250 frames: what a classical codec gains from all earlier frames). Bits per frame =
    the sum of the stream's packets x 8 / frames.
For each etok budget the x264 PSNR at the same bits per frame is interpolated (linear in
log bits) between the two nearest CRF points. PSNR is the mean over frames of each frame's
RGB PSNR (peak 255, which equals 10 log10(4 / MSE) on etok's [-1, 1] scale); "meet" is the share
of frames at or above the model's default threshold. Writes a markdown table to stdout (and
--json FILE). Costs a few minutes per clip on 2 cores; a benchmark, not a test.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..common import SAMPLES, frames_of, release_etok
from ..data.evaluate import psnr as psnr_per_frame

SIZE = 128


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def etok_point(etok: str, clip: str, fixed: int, model, tmp: Path) -> dict:
    out = tmp / f"fixed{fixed}.etok"
    cmd = [etok, "encode", clip, "-o", str(out), "--fixed", str(fixed), "-q", "-y"]
    if model:
        cmd += ["--model", model]
    run(cmd)
    info = json.loads(run([etok, "info", str(out), "--json", "--blocks"], text=True).stdout)
    psnr = np.array([b["psnr"] for b in info["per_block"]])
    return {"tokens": fixed, "bits": out.stat().st_size * 8 / info["frames"], "psnr": psnr,
            "threshold_psnr": 10 * np.log10(4 / info["threshold"])}


def x264_curve(frames: np.ndarray, gop: int, crfs, tmp: Path) -> list:
    """[(bits per frame, per-frame PSNR array)] for each CRF; gop 0: x264's default."""
    src = tmp / "seen.rgb"
    points = []
    for crf in crfs:
        out = tmp / f"x264-g{gop}-{crf}.mkv"
        cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{SIZE}x{SIZE}",
               "-r", "25", "-i", str(src), "-c:v", "libx264", "-pix_fmt", "yuv444p", "-preset", "veryslow",
               "-crf", str(crf)] + (["-g", str(gop)] if gop else []) + [str(out)]
        run(cmd)
        sizes = run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=size",
                     "-of", "csv=p=0", str(out)], text=True).stdout.split()
        bits = sum(int(s) for s in sizes) * 8 / len(frames)
        dec = np.frombuffer(run(["ffmpeg", "-v", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt", "rgb24",
                                 "-"]).stdout, np.uint8).reshape(-1, SIZE, SIZE, 3)
        points.append((bits, psnr_per_frame(dec, frames)))
    return sorted(points, key=lambda p: p[0])


def at_bits(curve: list, bits: float, key) -> float:
    """key(psnr array) interpolated linearly in log(bits) between the nearest CRF points (None
    outside the swept range)."""
    xs = np.log([b for b, _ in curve])
    ys = np.array([key(p) for _, p in curve])
    x = np.log(bits)
    if x < xs[0] or x > xs[-1]:
        return None
    return float(np.interp(x, xs, ys))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", nargs="+", default=[str(p) for p in SAMPLES])
    ap.add_argument("--model", default=None, help="weights (default: the bundled model)")
    ap.add_argument("--etok", default=None, help="etok binary (default: the release build, built if needed)")
    ap.add_argument("--fixed", type=int, nargs="+", default=[64, 128, 192, 256])
    ap.add_argument("--crf", type=int, nargs="+", default=list(range(12, 52, 3)))
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args(argv)
    etok = args.etok or release_etok(build=True)
    if not etok:
        print("etok-tools bench vs-x264: no etok binary (swift build -c release)", file=sys.stderr)
        return 2
    etok = str(etok)
    rows = []
    for clip in args.clips:
        with tempfile.TemporaryDirectory() as t:
            tmp = Path(t)
            frames = frames_of(clip, SIZE, etok)  # `etok preview`: what etok encodes
            (tmp / "seen.rgb").write_bytes(frames.tobytes())  # x264's input
            curves = {"intra": x264_curve(frames, 1, args.crf, tmp),
                      "gop4": x264_curve(frames, 4, args.crf, tmp),
                      "inter": x264_curve(frames, 0, args.crf, tmp)}
            for n in args.fixed:
                e = etok_point(etok, clip, n, args.model, tmp)
                thr = e["threshold_psnr"]
                meet = lambda p, thr=thr: float(np.mean(p >= thr - 1e-9))
                row = {"clip": Path(clip).name, "frames": len(frames), "tokens": n, "bits": e["bits"],
                       "etok_psnr": float(e["psnr"].mean()), "etok_meet": meet(e["psnr"]),
                       "threshold_psnr": thr}
                for kind, curve in curves.items():
                    row[f"{kind}_psnr"] = at_bits(curve, e["bits"], np.mean)
                    row[f"{kind}_meet"] = at_bits(curve, e["bits"], meet)
                rows.append(row)
                print(f"etok-tools bench vs-x264: {row['clip']} {n} tokens: {e['bits']:.0f} bits/frame", file=sys.stderr)

    print("| clip | tokens/frame | bits/frame | etok PSNR (meet) | x264 intra | x264 GOP 4 | x264 default GOP |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = ["—" if r[k + "_psnr"] is None else f"{r[k + '_psnr']:.2f} dB ({100 * r[k + '_meet']:.0f}%)"
                 for k in ("etok", "intra", "gop4", "inter")]
        print(f"| {r['clip']} | {r['tokens']} | {r['bits']:.0f} | " + " | ".join(cells) + " |")
    if rows:
        print(f"\nEach cell: mean PSNR (share of frames at or above the default threshold, "
              f"{rows[0]['threshold_psnr']:.2f} dB); x264 at the same bits per frame as etok; — where "
              f"the CRF sweep does not reach them.")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0
