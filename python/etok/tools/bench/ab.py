"""Two etok binaries side by side: the same `etok encode` on the same clips, runs alternating
A, B, A, B, ... so that the machine's drift hits both alike; medians and the ratio B/A.

    etok-tools bench ab --a OLD/etok --b NEW/etok [--runs 5] [--clips C ...] [-- ENCODE_ARGS]

Prints one Markdown row per clip: median seconds of A and B, the speed-up A/B, and what each
produced (tokens per frame, evaluations per frame, share within threshold, from --stats), so a
speed-up that changed the output shows it. Used for BENCHMARKS.md ("Budget search").
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ..common import SAMPLES, encode_stats


def timed_encode(binary: str, clip: str, extra: list[str], workdir: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    stats = encode_stats(binary, clip, workdir, extra)
    return time.perf_counter() - start, stats


def summary(stats: dict) -> str:
    blocks = stats["per_block"]
    evaluations = statistics.mean(b["evaluations"] for b in blocks)
    return (f"{stats['mean_tokens']:.1f} tok, {evaluations:.2f} eval, "
            f"{100 * stats['share_meeting_threshold']:.0f}%")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="baseline etok binary")
    ap.add_argument("--b", required=True, help="etok binary to compare")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--clips", nargs="+",
                    default=[str(p) for p in SAMPLES])
    ap.add_argument("extra", nargs="*", help="more `etok encode` arguments (after --)")
    args = ap.parse_args(argv)
    for binary in (args.a, args.b):
        if not Path(binary).is_file():
            print(f"etok-tools bench ab: {binary}: no such binary", file=sys.stderr)
            return 2
    print("| clip | A median s | B median s | speed-up A/B | A output | B output |")
    print("|---|---:|---:|---:|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for clip in args.clips:
            times = {"a": [], "b": []}
            last = {}
            for _ in range(args.runs):
                for key in ("a", "b"):
                    seconds, stats = timed_encode(getattr(args, key), clip, args.extra, work)
                    times[key].append(seconds)
                    last[key] = stats
            a, b = statistics.median(times["a"]), statistics.median(times["b"])
            print(f"| {Path(clip).name} | {a:.2f} | {b:.2f} | {a / b:.2f}× | {summary(last['a'])} | {summary(last['b'])} |",
                  flush=True)
    return 0
