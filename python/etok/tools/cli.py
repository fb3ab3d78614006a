"""`etok-tools`: the one command over etok's Python tools (training, conversion, calibration,
fixtures, datasets, benchmarks). Each subcommand is a module of etok.tools with a `main(argv)`;
it is imported only when run, so `etok-tools --help` and `import etok` never load torch."""
from __future__ import annotations

import importlib
import sys

# name -> (module under etok.tools, one line for --help). Order: the model's life cycle, then data.
COMMANDS = {
    "train": ("train", "train or resume a run, evaluate it, export its model file"),
    "convert": ("convert", "official ElasticTok checkpoint (msgpack) -> etok model file (safetensors)"),
    "make-random-official": ("make_random_official", "random weights in the official checkpoint format (tests, benchmarks)"),
    "calibrate": ("calibrate", "choose a model's default threshold on held-out clips; store it in the file"),
    "context-gain": ("context_gain", "PSNR by position in the chunk: how much a model draws on its context"),
    "fixtures": ("make_fixtures", "write the Swift tests' reference fixtures (Tests/EtokModelTests/Fixtures)"),
    "data": ("data.make_dataset", "build the training and held-out datasets (~/.cache/etok)"),
    "release": ("common", "print the path of the release etok binary (--build builds it)"),
}

# bench NAME -> (module under etok.tools.bench, one line).
BENCHES = {
    "ab": ("ab", "two etok binaries on the same encodes, alternating runs; medians and speed-up"),
    "clips": ("clips", "clip-by-clip quality of a model on real footage (the model card's table)"),
    "codec": ("codec", "codec: speed, the three searches, token savings, .etok size, peak memory"),
    "engine": ("engine", "etok's Swift engine against the PyTorch reference: time per block, MFU"),
    "rate": ("rate", "rate control against the threshold search and fixed budgets"),
    "vs-x264": ("vs_x264", "etok against x264 at the same bits per frame"),
    "read": ("read", "Python reading (etok.open, DataLoader) against `etok export`"),
}

# official NAME -> (module under etok.tools.official, one line): Tools/official/bench.sh's steps on
# this side. Its driver of the official JAX code runs only in that venv: python -m etok.tools.official.run.
OFFICIAL = {
    "to-official": ("to_official", "etok model file -> official checkpoint + config (the reverse of convert)"),
    "same-tensors": ("same_tensors", "two safetensors files hold bit-identical tensors (the round-trip check)"),
    "compare": ("compare", "etok against the official code: reconstructions, kept counts, speed"),
}

# Commands with subcommands: group -> (package under etok.tools, its table, what one entry is).
GROUPS = {"bench": ("bench", BENCHES, "benchmark"), "official": ("official", OFFICIAL, "step")}

EXTRA_HINT = "pip install './python[tools]' (torch, safetensors, msgpack)"
OPTIONAL = {"torch", "safetensors", "msgpack", "matplotlib", "cv2"}


def usage() -> str:
    grouped = [(f"{group} {name}", line) for group, (_, table, _) in GROUPS.items() for name, (_, line) in table.items()]
    width = max(map(len, [*COMMANDS, *(name for name, _ in grouped)])) + 2
    lines = ["usage: etok-tools COMMAND [ARGS...]   (or: python3 -m etok.tools COMMAND ...)",
             "", "etok's Python tools; `etok-tools COMMAND --help` explains each.", "", "commands:"]
    lines += [f"  {name:<{width}}{line}" for name, (_, line) in COMMANDS.items()]
    lines += [f"  {name:<{width}}{line}" for name, line in grouped]
    lines += ["", f"Most commands need the tools extra: {EXTRA_HINT}.",
              "They work in an etok checkout: the one this package is in, else $ETOK_REPO or the working directory's."]
    return "\n".join(lines)


def run(module: str, prog: str, argv: list[str]) -> int:
    """Imports etok.tools.MODULE and runs its main(argv) as `etok-tools PROG`."""
    try:
        mod = importlib.import_module(f"etok.tools.{module}")
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] in OPTIONAL:
            print(f"etok-tools {prog}: needs the Python module {error.name}: {EXTRA_HINT}", file=sys.stderr)
            return 2
        raise
    sys.argv[0] = f"etok-tools {prog}"  # argparse's prog for the tools that take it from argv
    result = mod.main(argv)
    return int(result or 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name in GROUPS:
        package, table, what = GROUPS[name]
        if not rest or rest[0] in ("-h", "--help"):
            width = max(map(len, table)) + 2
            print(f"usage: etok-tools {name} NAME [ARGS...]\n\n{what}s:")
            for sub, (_, line) in table.items():
                print(f"  {sub:<{width}}{line}")
            return 0 if rest else 2
        if rest[0] not in table:
            print(f"etok-tools {name}: no {what} '{rest[0]}' (one of: {', '.join(table)})", file=sys.stderr)
            return 2
        return run(f"{package}.{table[rest[0]][0]}", f"{name} {rest[0]}", rest[1:])
    if name not in COMMANDS:
        print(f"etok-tools: no command '{name}' (etok-tools --help lists them)", file=sys.stderr)
        return 2
    return run(COMMANDS[name][0], name, rest)
