"""Writes an official-format ElasticTok checkpoint (tux params msgpack, per-layer layout) with
random weights of a config's exact shapes, for speed and memory benchmarks of the official
models without downloading them (BENCHMARKS.md, docs/official-models.md).

usage: etok-tools make-random-official CONFIG.json OUT.msgpack [--seed N]

Kernels ~ N(0, 0.02^2) (the official initializer_range), norms 1, embeddings N(0, 0.02^2).
Then convert as a user would: etok-tools convert OUT.msgpack OUT.safetensors --config CONFIG.json
Needs numpy and msgpack. Exit status 0 done, 1 failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from .reference.config import ConfigError, ElasticTokConfig
from .reference.official_format import official_shapes, write_checkpoint


def random_params(cfg: ElasticTokConfig, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in official_shapes(cfg).items():
        if name.endswith("norm/kernel") or name.endswith("ln_f/kernel"):
            out[name] = np.ones(shape, np.float32)
        else:
            out[name] = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="etok-tools make-random-official", description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    try:
        with open(a.config) as f:
            cfg = ElasticTokConfig.from_dict(json.load(f))
    except (OSError, json.JSONDecodeError, ConfigError) as e:
        print(f"etok-tools make-random-official: error: {a.config}: {e}", file=sys.stderr)
        return 1
    params = random_params(cfg, a.seed)
    write_checkpoint(a.out, params, cfg, "per_layer")
    print(f"wrote {len(params)} tensors, {sum(v.size for v in params.values())} parameters to {a.out}")
    return 0
