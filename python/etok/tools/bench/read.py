"""Reading throughput: the Python package against `etok export` on the same .etok files, and the
PyTorch DataLoader over tar shards (BENCHMARKS.md, "Python package").

    etok-tools bench read FILE.etok... [--cli .build/release/etok] [--repeat 5] [--shards DIR]

For each file: the wall time of `etok export FILE --format npy` (a process, as a pipeline calling
the command per clip runs it) and of `etok.open(FILE)` followed by every block's tokens (in this
process); the median of --repeat runs, as frames/s and tokens/s. --shards: clips, frames and
tokens per second through `EtokDataset(DIR)` in a DataLoader (2 workers, batch 8, collate).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import etok

from ..common import ROOT


def median_seconds(run, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_file(path, cli, repeat):
    with etok.open(path) as f:
        frames, tokens = int(f.frames.sum()), int(f.lengths.sum())
    out = tempfile.mkdtemp(prefix="etok-bench-")
    export = median_seconds(lambda: subprocess.run([cli, "export", path, "--format", "npy", "-o", out + "/", "-y", "-q"],
                                                   check=True), repeat)

    def read_blocks():
        with etok.open(path) as f:
            for k in range(len(f)):
                f.block_tokens(k)

    def read_block_objects():
        with etok.open(path) as f:
            for block in f:
                block.tokens
    python = median_seconds(read_blocks, repeat)
    objects = median_seconds(read_block_objects, repeat)
    name = os.path.basename(path)
    for what, seconds in (("etok export (process)", export), ("etok.open + block_tokens", python),
                          ("etok.open + Block objects", objects)):
        print(f"| {name} | {what} | {frames} | {tokens} | {seconds * 1e3:.1f} ms | {frames / seconds:,.0f} | "
              f"{tokens / seconds:,.0f} | {export / seconds:.2f}× |")


def bench_shards(folder, repeat):
    import torch
    from etok.torch import EtokDataset, collate
    data = EtokDataset(folder)
    counts = {}

    def epoch():
        clips = frames = tokens = 0
        loader = torch.utils.data.DataLoader(data, batch_size=8, num_workers=2, collate_fn=collate)
        for batch in loader:
            clips += len(batch["keys"])
            frames += int(batch["frames"].sum())
            tokens += int(batch["mask"].sum())
        counts.update(clips=clips, frames=frames, tokens=tokens)
    seconds = median_seconds(epoch, repeat)
    print(f"| DataLoader (2 workers, batch 8) over {folder} | {counts['clips']} clips | {seconds:.2f} s | "
          f"{counts['clips'] / seconds:,.0f} clips/s | {counts['frames'] / seconds:,.0f} frames/s | "
          f"{counts['tokens'] / seconds:,.0f} tokens/s |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*")
    parser.add_argument("--cli", default=str(ROOT / ".build" / "release" / "etok"),
                        help="the etok command to compare with (default: the checkout's release build)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--shards")
    args = parser.parse_args(argv)
    print(f"library: {etok._lib.lib().path}; cli: {args.cli}")
    if args.files:
        print("| file | reader | frames | tokens | time | frames/s | tokens/s | vs export |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
    for path in args.files:
        bench_file(path, args.cli, args.repeat)
    if args.shards:
        bench_shards(args.shards, args.repeat)
