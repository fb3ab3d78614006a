"""Converts an official ElasticTok checkpoint (tux StreamingCheckpointer params file) to an etok
safetensors model file.

usage: etok-tools convert CHECKPOINT OUT.safetensors --config CONFIG.json
                           [--dtype float16|float32|bfloat16] [--name NAME]

CONFIG.json holds the model config with the official field names (the official checkpoints do not
store it). Both layer layouts are read: per layer (.../encoder_blocks/0/...) and stacked
(.../encoder_blocks/scan_decoder/..., layer index on axis 0). Strict: an unknown, missing,
duplicate or misshapen tensor is an error naming it. Prints every tensor it writes. Needs only
numpy and msgpack. Exit status: 0 done, 1 conversion failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .reference.config import ConfigError, ElasticTokConfig
from .reference.official_format import (CheckpointError, read_checkpoint,
                                       write_safetensors)

FORMAT = "etok-elastictok"


def convert(checkpoint: str, out: str, config_path: str, dtype: str = "float32", name: str = "",
            log=print) -> dict:
    """Converts; returns the flat tensors written. Raises CheckpointError / ConfigError."""
    try:
        with open(config_path) as f:
            cfg_dict = json.load(f)
    except OSError as e:
        raise ConfigError(f"{config_path}: cannot read ({e.strerror})") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"{config_path}: not JSON ({e})") from e
    try:
        cfg = ElasticTokConfig.from_dict(cfg_dict)
    except ConfigError as e:
        raise ConfigError(f"{config_path}: {e}") from e
    flat = read_checkpoint(checkpoint, cfg)
    for k in sorted(flat):
        log(f"{k}  {list(flat[k].shape)}  {dtype}")
    write_safetensors(out, flat, {"format": FORMAT, "config": cfg.to_json(),
                                  "name": name or os.path.basename(checkpoint)}, dtype)
    log(f"wrote {len(flat)} tensors to {out}")
    return flat


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="etok-tools convert",
                                description="Convert an official ElasticTok checkpoint to safetensors.")
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    p.add_argument("out", metavar="OUT.safetensors")
    p.add_argument("--config", required=True, metavar="CONFIG.json")
    p.add_argument("--dtype", default="float32", choices=["float16", "float32", "bfloat16"])
    p.add_argument("--name", default="")
    args = p.parse_args(argv)
    try:
        convert(args.checkpoint, args.out, args.config, args.dtype, args.name)
    except (CheckpointError, ConfigError) as e:
        print(f"etok-tools convert: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"etok-tools convert: error: {e.filename or args.out}: {e.strerror}", file=sys.stderr)
        return 1
    return 0
