#!/usr/bin/env python3
"""Draws docs/coder-contexts.png (bits per token per candidate context model, per clip) and prints a
markdown table from the JSON that coder_lab.py --json writes.

    python3 Tools/coder_lab/plot.py RESULTS.json [OUT.png]
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {"C eq3 np4": "rc-fsq-2 (chosen)"}


def main():
    results = json.load(open(sys.argv[1]))
    out = sys.argv[2] if len(sys.argv) > 2 else "docs/coder-contexts.png"
    clips = list(results)
    names = [k for k in results[clips[0]] if k not in ("order0",)]
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(names) + 1.6))
    height = 0.8 / len(clips)
    for i, clip in enumerate(clips):
        ys = [j + i * height for j in range(len(names))]
        ax.barh(ys, [results[clip][n] for n in names], height=height, label=clip.split("_")[0])
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(names))])
    ax.set_yticklabels([LABELS.get(n, n) for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("bits per token (lower is better); chunks of 4 blocks, each coded on its own")
    ax.set_title("FSQ token coding: candidate context models (Tools/coder_lab)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print("| model | " + " | ".join(c.split("_")[0] for c in clips) + " |")
    print("|---|" + "---:|" * len(clips))
    for n in ["order0"] + names:
        print(f"| {LABELS.get(n, n)} | " + " | ".join(f"{results[c][n]:.2f}" for c in clips) + " |")


if __name__ == "__main__":
    main()
