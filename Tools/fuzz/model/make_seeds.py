#!/usr/bin/env python3
"""Writes the seed corpus of etok-fuzz-model: small valid etok model files (safetensors, the
config JSON in the metadata; docs/model.md), one per storage dtype and bottleneck, with random
weights from a fixed seed. Each loads in etok (the replay run checks that none is refused).

    python3 Tools/fuzz/model/make_seeds.py [OUT_DIR]     (default: Tools/fuzz/model/corpus)
"""
import json
import os
import random
import struct
import sys


def tensors(cfg):
    """(name, shape) of every tensor of a model with config cfg, as ModelWeights.expectedTensors."""
    d, f = cfg["hidden_size"], cfg["intermediate_size"]
    tp, hp, wp = cfg["patch_size"]
    patch = tp * hp * wp * 3
    code = len(cfg["fsq_quant_levels"]) if cfg["bottleneck_type"] == "fsq" else cfg["vae_bottleneck_dim"]
    pre = code if cfg["bottleneck_type"] == "fsq" else 2 * code

    def block(prefix):
        return [(f"{prefix}/attention/{w}/kernel", [d, d]) for w in ("wq", "wk", "wv", "wo")] + [
            (f"{prefix}/attention_norm/kernel", [d]), (f"{prefix}/ffn_norm/kernel", [d]),
            (f"{prefix}/feed_forward/w1/kernel", [d, f]), (f"{prefix}/feed_forward/w2/kernel", [f, d]),
            (f"{prefix}/feed_forward/w3/kernel", [d, f])]
    out = [("params/encoder/in_proj/kernel", [patch, d]), ("params/encoder/is_kept_embed", [1, d]),
           ("params/encoder/is_masked_embed", [1, d])]
    for i in range(cfg["num_encoder_layers"]):
        out += block(f"params/encoder/encoder_blocks/{i}")
    out += [("params/encoder/ln_f/kernel", [d]), ("params/encoder/pre_quant/kernel", [d, pre]),
            ("params/decoder/post_quant/kernel", [code, d])]
    for i in range(cfg["num_decoder_layers"]):
        out += block(f"params/decoder/decoder_blocks/{i}")
    out += [("params/decoder/ln_f/kernel", [d]), ("params/decoder/out_proj/kernel", [d, patch])]
    return out


def encode(value, dtype):
    bits = struct.unpack("<I", struct.pack("<f", value))[0]
    if dtype == "F32":
        return struct.pack("<I", bits)
    if dtype == "BF16":
        return struct.pack("<H", bits >> 16)
    return struct.pack("<e", value)


def write(path, cfg, dtype, rng):
    header, data = {"__metadata__": {"format": "etok-elastictok", "config": json.dumps(cfg, sort_keys=True)}}, b""
    for name, shape in tensors(cfg):
        count = 1
        for n in shape:
            count *= n
        norm = name.endswith("norm/kernel") or name.endswith("ln_f/kernel")
        values = b"".join(encode(1 + 0.1 * rng.uniform(-1, 1) if norm else 0.3 * rng.uniform(-1, 1), dtype)
                          for _ in range(count))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(values)]}
        data += values
    blob = json.dumps(header, sort_keys=True).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob + data)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    os.makedirs(out, exist_ok=True)
    rng = random.Random(14)
    base = {"hidden_size": 4, "intermediate_size": 4, "num_encoder_layers": 1, "num_decoder_layers": 1,
            "num_attention_heads": 2, "patch_size": [1, 2, 2], "frames_per_block": 1, "min_toks": 1,
            "max_toks": 4, "max_sequence_length": 8, "bottleneck_type": "fsq", "fsq_quant_levels": [3, 2],
            "rms_norm_eps": 1e-6, "theta": 10000.0}
    seeds = {
        "fsq-f32": (base, "F32"),
        "fsq-f16": (base, "F16"),
        "fsq-bf16": (base, "BF16"),
        "fsq-image-size": (dict(base, etok_image_size=[2, 8], max_toks=4, max_sequence_length=4), "F16"),
        "fsq-no-layers": (dict(base, num_encoder_layers=0, num_decoder_layers=0), "F32"),
        "vae-frames": (dict(base, bottleneck_type="vae", vae_bottleneck_dim=2, frames_per_block=2,
                            patch_size=[2, 2, 2], max_toks=4, max_sequence_length=8), "F32"),
    }
    for name, (cfg, dtype) in seeds.items():
        write(os.path.join(out, f"{name}.safetensors"), cfg, dtype, rng)
        print(f"wrote {name}.safetensors")


if __name__ == "__main__":
    main()
