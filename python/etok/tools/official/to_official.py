"""Turns an etok safetensors model into an official ElasticTok checkpoint: the reverse of
`etok-tools convert`, so the official JAX code can run etok's models (Tools/official/bench.sh).

usage: etok-tools official to-official MODEL.safetensors OUT.params [--config-out CONFIG.json]
                                       [--layout stacked|per_layer] [--dtype keep|float32|float16]

OUT.params is a tux StreamingCheckpointer params stream, as the official code loads with
--load_checkpoint='params::OUT.params': one msgpack record [key, value] per tensor, key the
flax path without the leading "params" (["encoder", "in_proj", "kernel"]), value the bytes of
flax.serialization.to_bytes(array), i.e. msgpack ExtType(1, packb([shape, dtype, raw LE bytes])).
Layouts: stacked (default, what the official scripts' scan_layers=True load: every block
parameter of a stack under .../encoder_blocks/scan_decoder/..., layer on axis 0) or per_layer
(.../encoder_blocks/{i}/..., for scan_layers=False). Values keep the file's dtype unless --dtype
says otherwise (float16 -> float32 is exact). CONFIG.json (default OUT.params.json) gets the
model config from the file's metadata, official field names plus etok_image_size.

Our own code (numpy and msgpack only); it needs no torch. Exit status: 0 done,
1 the model file cannot be read or converted, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys

import msgpack
import numpy as np

# safetensors dtype code -> (numpy little-endian dtype, flax dtype name)
ST_DTYPES = {"F32": ("<f4", "float32"), "F16": ("<f2", "float16"), "BF16": ("<u2", "bfloat16")}
# Largest header a model file may claim (bytes); anything bigger is not a model.
MAX_HEADER = 64 << 20
STACK = re.compile(r"^params/(encoder/encoder_blocks|decoder/decoder_blocks)/(\d+)/(.+)$")


class ModelFileError(ValueError):
    """A model file that cannot be turned into a checkpoint; the message names file and tensor."""


def read_safetensors(path: str) -> tuple[dict, dict]:
    """-> ({name: (numpy array as stored, flax dtype name)}, metadata). Strict about offsets."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read ({e.strerror})") from e
    if len(blob) < 8:
        raise ModelFileError(f"{path}: too short for a safetensors header")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER or 8 + n > len(blob):
        raise ModelFileError(f"{path}: header length {n} does not fit the file")
    try:
        header = json.loads(blob[8:8 + n])
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path}: header is not JSON ({e})") from e
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, info in header.items():
        if info.get("dtype") not in ST_DTYPES:
            raise ModelFileError(f"{path}: tensor {name}: unsupported dtype {info.get('dtype')!r}")
        npdt, flaxdt = ST_DTYPES[info["dtype"]]
        lo, hi = info["data_offsets"]
        shape = tuple(int(s) for s in info["shape"])
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(npdt).itemsize
        if not (0 <= lo <= hi <= len(data)) or hi - lo != size:
            raise ModelFileError(f"{path}: tensor {name}: data offsets {lo}..{hi} do not match shape {shape}")
        out[name] = (np.frombuffer(data[lo:hi], dtype=npdt).reshape(shape), flaxdt)
    return out, meta


def as_dtype(arr: np.ndarray, stored: str, want: str) -> tuple[np.ndarray, str]:
    """Array and flax dtype name to write. bfloat16 stays raw bits unless float32 is asked for."""
    if want == "keep" or want == stored:
        return arr, stored
    if stored == "bfloat16":
        f32 = (arr.astype(np.uint32) << 16).view(np.float32)
    else:
        f32 = arr.astype(np.float32)
    if want == "float32":
        return f32, "float32"
    if want == "float16":
        if stored != "float16" and not np.array_equal(f32.astype(np.float16).astype(np.float32), f32):
            raise ModelFileError("float16 would round the weights; use --dtype keep or float32")
        return f32.astype(np.float16), "float16"
    raise ModelFileError(f"--dtype {want}: unsupported")


def flax_value(arr: np.ndarray, dtype: str) -> bytes:
    """The bytes flax.serialization.to_bytes(arr) writes for one array."""
    le = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    inner = msgpack.packb([list(arr.shape), dtype, np.ascontiguousarray(le).tobytes()], use_bin_type=True)
    return msgpack.packb(msgpack.ExtType(1, inner), use_bin_type=True)


def records(tensors: dict, layout: str, want: str):
    """Yields (key list, value bytes) in a stable order (sorted names; stacks by parameter)."""
    stacks: dict = {}
    for name in sorted(tensors):
        arr, stored = tensors[name]
        arr, dt = as_dtype(arr, stored, want)
        m = STACK.match(name)
        if layout == "stacked" and m:
            stacks.setdefault((m.group(1), m.group(3)), {})[int(m.group(2))] = (arr, dt)
            continue
        if not name.startswith("params/"):
            raise ModelFileError(f"tensor {name}: not an official parameter name (params/...)")
        yield name.split("/")[1:], flax_value(arr, dt)
    for (prefix, rest), layers in sorted(stacks.items()):
        if sorted(layers) != list(range(len(layers))):
            raise ModelFileError(f"params/{prefix}/*/{rest}: layers {sorted(layers)} are not 0..n-1")
        dts = {dt for _, dt in layers.values()}
        stacked = np.stack([layers[i][0] for i in range(len(layers))])
        yield (f"{prefix}/scan_decoder/{rest}").split("/"), flax_value(stacked, dts.pop())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="etok-tools official to-official", description=__doc__.splitlines()[0])
    p.add_argument("model", metavar="MODEL.safetensors")
    p.add_argument("out", metavar="OUT.params")
    p.add_argument("--config-out", metavar="CONFIG.json")
    p.add_argument("--layout", default="stacked", choices=["stacked", "per_layer"])
    p.add_argument("--dtype", default="keep", choices=["keep", "float32", "float16"])
    a = p.parse_args(argv)
    try:
        tensors, meta = read_safetensors(a.model)
        if "config" not in meta:
            raise ModelFileError(f"{a.model}: no config in the metadata (not an etok model file)")
        cfg = json.loads(meta["config"])
        packer = msgpack.Packer(use_bin_type=True)
        n = 0
        with open(a.out, "wb") as f:
            for key, value in records(tensors, a.layout, a.dtype):
                f.write(packer.pack([key, value]))
                n += 1
        cfg_path = a.config_out or a.out + ".json"
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
    except ModelFileError as e:
        print(f"etok-tools official to-official: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"etok-tools official to-official: error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {n} records ({len(tensors)} tensors, {a.layout}) to {a.out}; config to {cfg_path}; "
          f"name {meta.get('name', '')!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
