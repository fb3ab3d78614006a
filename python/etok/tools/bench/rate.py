"""Rate control against the threshold search and fixed budgets (issue 16), for BENCHMARKS.md.

For each clip, with the default model, `etok encode --stats` runs:
  default      the threshold search (fast), the baseline for model passes per frame;
  rate         --tokens-per-second R, R = PER_FRAME tokens per frame over the clip's media time
               (its first frame to its last plus one mean interval, as etok measures it);
  budget       --budget N, N = PER_FRAME x frames (two passes);
  fixed        --fixed PER_FRAME: the single fixed budget with exactly the same total;
  cap          the threshold search with --max-tokens-per-chunk CAP.
and prints one markdown table: tokens, repeat blocks (0-token frames, which the default threshold
search writes), achieved against target, mean and worst-frame PSNR,
largest chunk, passes and counts evaluated per frame, wall time.

Usage: etok-tools bench rate --etok .build/release/etok [--per-frame 100] [--cap 400]
       [--clips Samples/bikes.mp4 ...] [--threads 2] [--modes default rate budget fixed cap]
rate and budget use the default objective (balanced); the variants rate-mse, rate-psnr,
budget-mse, budget-psnr (--rate-objective mse|psnr), rate-floor (--min-tokens FLOOR), rate-cap
(--max-tokens-per-chunk CAP on top of the rate) and rate-norepeat, budget-norepeat (--no-repeat:
rate control without repeat blocks) are run with --modes. After the table, one line per clip sets every rate and budget mode against the
fixed budget (mean and worst-frame PSNR, deltas) and says whether issue 16's bar holds: mean PSNR
at least 0.3 dB above the fixed budget's and a higher worst frame, at the same total.
Deterministic except the wall times. Sets OPENBLAS_CORETYPE=Haswell unless it is set.
"""
import argparse
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
import time


def encode(etok, clip, extra, workdir, name, threads):
    out = os.path.join(workdir, name + ".etok")
    stats = os.path.join(workdir, name + ".json")
    started = time.time()
    subprocess.run([etok, "encode", clip, "-o", out, "-y", "-q", "--stats", stats, "--threads", str(threads)] + extra,
                   check=True)
    wall = time.time() - started
    with open(stats) as f:
        s = json.load(f)
    s["wall"] = wall
    return s


def media_seconds(blocks, fallback):
    """etok's rule: first block time to last, plus one mean interval (RateControl.swift)."""
    t = [b["seconds"] for b in blocks]
    if len(t) < 2 or t[-1] <= t[0]:
        return fallback * max(1, len(t))
    return (t[-1] - t[0]) * len(t) / (len(t) - 1)


def largest_chunk(s, chunk_blocks=4):
    chunks = {}
    for b in s["per_block"]:
        chunks[b["block"] // chunk_blocks] = chunks.get(b["block"] // chunk_blocks, 0) + b["kept"]
    return max(chunks.values())


def repeats(s):
    """Repeat blocks (0 tokens, the previous frame shown again; on by default for threshold
    encodes) in an `etok encode --stats` summary, from its blocks ("repeat", absent before format
    1.2, when there were none)."""
    return sum(1 for b in s["per_block"] if b.get("repeat"))


def row(clip, mode, s, target=None, achieved=None):
    frames = s["frames"]
    psnrs = [b["psnr"] for b in s["per_block"]]
    passes = sum(b["passes"] for b in s["per_block"]) / frames
    evals = sum(b["evaluations"] for b in s["per_block"]) / frames
    hit = "" if target is None else f"{achieved:.6g} / {target:.6g} ({100 * (achieved / target - 1):+.2f}%)"
    return (f"| {os.path.basename(clip)} | {mode} | {frames} | {s['tokens']} | {s['tokens'] / frames:.1f} | "
            f"{repeats(s)} | {hit} | "
            f"{sum(psnrs) / len(psnrs):.2f} | {min(psnrs):.2f} | {100 * s['share_meeting_threshold']:.0f}% | "
            f"{largest_chunk(s)} | {passes:.2f} | {evals:.2f} | {s['wall']:.0f} | {s.get('bytes', 0)} |")


def detail(clip, label, s, chunk_blocks=4):
    """Kept tokens by position in the chunk, and how far the allocator's predicted error (from
    curves measured with the earlier blocks at provisional counts) was from the committed one."""
    kept = [[b["kept"] for b in s["per_block"] if b["block"] % chunk_blocks == k] for k in range(chunk_blocks)]
    positions = " / ".join(f"{sum(k) / len(k):.1f}" if k else "-" for k in kept)
    gaps = [10 * math.log10(b["mse"] / b["predicted_mse"]) for b in s["per_block"] if b.get("predicted_mse")]
    gap = f"{sum(gaps) / len(gaps):+.3f} / {max(abs(g) for g in gaps):.2f}" if gaps else "-"
    return f"| {os.path.basename(clip)} | {label} | {positions} | {gap} |"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--etok", required=True)
    p.add_argument("--clips", nargs="+", default=["Samples/bikes.mp4", "Samples/carphone_pristine.mp4", "Samples/tree.avi"])
    p.add_argument("--per-frame", type=int, default=100, help="tokens per frame the rate and budget modes aim at")
    p.add_argument("--cap", type=int, default=400, help="--max-tokens-per-chunk for the capped threshold run")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--floor", type=int, default=64, help="--min-tokens of the rate-floor mode")
    p.add_argument("--modes", nargs="+", default=["default", "rate", "budget", "fixed", "cap"],
                   help="of default rate budget fixed cap rate-mse rate-psnr budget-mse budget-psnr rate-floor "
                        "rate-cap rate-norepeat budget-norepeat")
    args = p.parse_args(argv)
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "?")
    print(f"{datetime.date.today()}, {model}, {os.cpu_count()} cores, OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}, "
          f"--threads {args.threads}, {args.per_frame} tokens/frame, cap {args.cap}", file=sys.stderr)
    print("| clip | mode | frames | tokens | tokens/frame | repeats | achieved / target | mean PSNR | worst PSNR | "
          "within threshold | largest chunk | passes/frame | evaluations/frame | wall s | bytes |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    notes = []
    versus = {}
    with tempfile.TemporaryDirectory() as work:
        for clip in args.clips:
            name = os.path.splitext(os.path.basename(clip))[0]
            # The clip's media time, from a cheap fixed encode (etok's own block times).
            probe = encode(args.etok, clip, ["--fixed", str(args.per_frame)], work, name + "-fixed", args.threads)
            frames = probe["frames"]
            seconds = media_seconds(probe["per_block"], 1 / 25)
            rate = round(args.per_frame * frames / seconds, 3)
            runs = {
                "default": ("default (fast search)", [], None),
                "rate": (f"--tokens-per-second {rate:g}", ["--tokens-per-second", str(rate)], "rate"),
                "budget": (f"--budget {args.per_frame * frames}", ["--budget", str(args.per_frame * frames)], "budget"),
                "fixed": (f"--fixed {args.per_frame}", None, None),
                "cap": (f"default + --max-tokens-per-chunk {args.cap}", ["--max-tokens-per-chunk", str(args.cap)], "cap"),
                "rate-mse": (f"--tokens-per-second {rate:g} --rate-objective mse",
                             ["--tokens-per-second", str(rate), "--rate-objective", "mse"], "rate"),
                "budget-mse": (f"--budget {args.per_frame * frames} --rate-objective mse",
                               ["--budget", str(args.per_frame * frames), "--rate-objective", "mse"], "budget"),
                "rate-psnr": (f"--tokens-per-second {rate:g} --rate-objective psnr",
                              ["--tokens-per-second", str(rate), "--rate-objective", "psnr"], "rate"),
                "budget-psnr": (f"--budget {args.per_frame * frames} --rate-objective psnr",
                                ["--budget", str(args.per_frame * frames), "--rate-objective", "psnr"], "budget"),
                "rate-floor": (f"--tokens-per-second {rate:g} --min-tokens {args.floor}",
                               ["--tokens-per-second", str(rate), "--min-tokens", str(args.floor)], "rate"),
                "rate-cap": (f"--tokens-per-second {rate:g} --max-tokens-per-chunk {args.cap}",
                             ["--tokens-per-second", str(rate), "--max-tokens-per-chunk", str(args.cap)], "rate"),
                "rate-norepeat": (f"--tokens-per-second {rate:g} --no-repeat",
                                  ["--tokens-per-second", str(rate), "--no-repeat"], "rate"),
                "budget-norepeat": (f"--budget {args.per_frame * frames} --no-repeat",
                                    ["--budget", str(args.per_frame * frames), "--no-repeat"], "budget"),
            }
            for mode in args.modes:
                label, extra, kind = runs[mode]
                s = probe if extra is None else encode(args.etok, clip, extra, work, f"{name}-{mode}", args.threads)
                rc = s.get("rate_control")
                if kind in ("rate", "budget"):
                    print(row(clip, label, s, rc["target"], rc["achieved"]))
                elif kind == "cap":
                    print(row(clip, label, s, args.cap, float(largest_chunk(s))))
                else:
                    print(row(clip, label, s))
                notes.append(detail(clip, label, s))
                if kind in ("rate", "budget"):
                    versus.setdefault(clip, (probe, []))[1].append((label, s))
                sys.stdout.flush()
    print()
    print("| clip | mode | mean kept at chunk position 0 / 1 / 2 / 3 | predicted − committed PSNR, mean / max abs (dB) |")
    print("|---|---|---|---|")
    for n in notes:
        print(n)
    if versus:
        print()
        print("Against the fixed budget with the same total (mean / worst-frame PSNR, dB):")
        for clip, (fixed, modes) in versus.items():
            print(bar_line(clip, args.per_frame, fixed, modes))


def psnr_figures(s):
    psnrs = [b["psnr"] for b in s["per_block"]]
    return sum(psnrs) / len(psnrs), min(psnrs)


def bar_line(clip, per_frame, fixed, modes):
    """One clip's modes against `--fixed per_frame`, and whether issue 16's bar holds for each."""
    f_mean, f_worst = psnr_figures(fixed)
    parts = [f"- {os.path.basename(clip)}: --fixed {per_frame} {f_mean:.2f} / {f_worst:.2f}"]
    for label, s in modes:
        mean, worst = psnr_figures(s)
        holds = mean >= f_mean + 0.3 and worst > f_worst
        parts.append(f"{label} {mean:.2f} / {worst:.2f} ({mean - f_mean:+.2f} / {worst - f_worst:+.2f}, "
                     f"bar {'holds' if holds else 'missed'})")
    return "; ".join(parts)
