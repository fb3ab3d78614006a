"""Official ElasticTok checkpoints (tux StreamingCheckpointer "params" files), numpy + msgpack only.

File layout: a headerless stream of msgpack records, each a 2-array [key, value]:
  key   = the parameter path as an array of strings, without the leading "params"
          (e.g. ["encoder", "encoder_blocks", "0", "attention", "wq", "kernel"])
  value = msgpack bin holding flax.serialization.to_bytes(array), i.e. one msgpack object:
          ExtType(1, packb([shape, dtype_name, raw little-endian C-order bytes]))
          (ExtType 3 is the same for a numpy scalar; arrays over 2**30 bytes are a map
          {"__msgpack_chunked_array__": true, "shape": {"0": d0, ...}, "chunks": {"0": arr, ...}}).
Two layer layouts: per layer (.../encoder_blocks/{i}/...) and stacked by nn.scan
(.../encoder_blocks/scan_decoder/... with the layer index as the leading axis).

Also here: the expected official names and shapes for a config, and a numpy-only safetensors
writer (the converter must not need torch).
"""

from __future__ import annotations

import json
import os
import re
import struct
from typing import BinaryIO, Iterator

import msgpack
import numpy as np

from .config import ElasticTokConfig


class CheckpointError(ValueError):
    """A checkpoint that cannot be converted; the message names the file and the tensor."""


# ------------------------------------------------------------------------------ names
def block_shapes(cfg: ElasticTokConfig) -> dict:
    d, f = cfg.hidden_size, cfg.intermediate_size
    return {
        "attention/wq/kernel": (d, d), "attention/wk/kernel": (d, d),
        "attention/wv/kernel": (d, d), "attention/wo/kernel": (d, d),
        "attention_norm/kernel": (d,), "ffn_norm/kernel": (d,),
        "feed_forward/w1/kernel": (d, f), "feed_forward/w2/kernel": (f, d),
        "feed_forward/w3/kernel": (d, f),
    }


def official_shapes(cfg: ElasticTokConfig) -> dict:
    """Flat official name -> shape for every parameter (same set as model.expected_shapes)."""
    d = cfg.hidden_size
    out = {
        "params/encoder/in_proj/kernel": (cfg.patch_dim, d),
        "params/encoder/is_kept_embed": (1, d),
        "params/encoder/is_masked_embed": (1, d),
    }
    for i in range(cfg.num_encoder_layers):
        for k, s in block_shapes(cfg).items():
            out[f"params/encoder/encoder_blocks/{i}/{k}"] = s
    out["params/encoder/ln_f/kernel"] = (d,)
    out["params/encoder/pre_quant/kernel"] = (d, cfg.pre_quant_dim)
    out["params/decoder/post_quant/kernel"] = (cfg.code_dim, d)
    for i in range(cfg.num_decoder_layers):
        for k, s in block_shapes(cfg).items():
            out[f"params/decoder/decoder_blocks/{i}/{k}"] = s
    out["params/decoder/ln_f/kernel"] = (d,)
    out["params/decoder/out_proj/kernel"] = (d, cfg.patch_dim)
    return out


# ----------------------------------------------------------------------- value bytes
def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    return (raw.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), round to nearest even; NaN stays NaN."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


_NP_DTYPES = {"float32": np.float32, "float16": np.float16, "float64": np.float64}


def _decode_ndarray(data: bytes, what: str) -> np.ndarray:
    try:
        shape, dtype_name, buf = msgpack.unpackb(data, raw=False)
    except Exception as e:
        raise CheckpointError(f"{what}: bad array encoding ({e})") from e
    if dtype_name == "bfloat16":
        arr = _bf16_to_f32(np.frombuffer(buf, dtype="<u2"))
    elif dtype_name in _NP_DTYPES:
        arr = np.frombuffer(buf, dtype=np.dtype(_NP_DTYPES[dtype_name]).newbyteorder("<"))
        arr = arr.astype(np.float32)
    else:
        raise CheckpointError(f"{what}: unsupported dtype {dtype_name!r}")
    shape = tuple(int(s) for s in shape)
    if arr.size != int(np.prod(shape, dtype=np.int64)):
        raise CheckpointError(f"{what}: {arr.size} values do not fill shape {shape}")
    return arr.reshape(shape)


def _ext_hook(code, data):
    if code in (1, 3):
        return ("__ndarray__", data)
    raise CheckpointError(f"unsupported msgpack extension type {code}")


def decode_value(value, what: str) -> np.ndarray:
    """The bytes of flax.serialization.to_bytes(array) -> float32 numpy array."""
    if not isinstance(value, (bytes, bytearray)):
        raise CheckpointError(f"{what}: value is {type(value).__name__}, expected bytes")
    try:
        obj = msgpack.unpackb(value, raw=False, ext_hook=_ext_hook, strict_map_key=False)
    except CheckpointError as e:
        raise CheckpointError(f"{what}: {e}") from e
    except Exception as e:
        raise CheckpointError(f"{what}: bad msgpack value ({e})") from e
    return _materialise(obj, what)


def _materialise(obj, what: str) -> np.ndarray:
    if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "__ndarray__":
        return _decode_ndarray(obj[1], what)
    if isinstance(obj, dict) and obj.get("__msgpack_chunked_array__"):
        try:
            shape = tuple(int(obj["shape"][str(i)]) for i in range(len(obj["shape"])))
            chunks = [_materialise(obj["chunks"][str(i)], what) for i in range(len(obj["chunks"]))]
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"{what}: bad chunked array ({e})") from e
        flat = np.concatenate([c.reshape(-1) for c in chunks]) if chunks else np.zeros(0, np.float32)
        if flat.size != int(np.prod(shape, dtype=np.int64)):
            raise CheckpointError(f"{what}: chunks do not fill shape {shape}")
        return flat.reshape(shape)
    raise CheckpointError(f"{what}: value is not an array")


def encode_value(arr: np.ndarray, dtype: str = "float32") -> bytes:
    """numpy array -> the bytes flax.serialization.to_bytes writes for it."""
    arr = np.asarray(arr, dtype=np.float32)
    if dtype == "bfloat16":
        raw = f32_to_bf16_bits(arr).astype("<u2").tobytes(order="C")
    else:
        raw = arr.astype(np.dtype(_NP_DTYPES[dtype]).newbyteorder("<")).tobytes(order="C")
    inner = msgpack.packb((tuple(arr.shape), dtype, raw), use_bin_type=True)
    return msgpack.packb(msgpack.ExtType(1, inner), use_bin_type=True)


# --------------------------------------------------------------------------- records
def iter_records(f: BinaryIO, path: str) -> Iterator[tuple]:
    """Yields (key tuple of str, value bytes) for each record of a streaming params file."""
    unpacker = msgpack.Unpacker(f, raw=False, max_buffer_size=0, strict_map_key=False)
    n = 0
    try:
        for rec in unpacker:
            n += 1
            if not (isinstance(rec, (list, tuple)) and len(rec) == 2):
                raise CheckpointError(f"{path}: record {n} is not a [key, value] pair")
            key, value = rec
            if not (isinstance(key, (list, tuple)) and key and all(isinstance(k, str) for k in key)):
                raise CheckpointError(f"{path}: record {n} key {key!r} is not a list of strings")
            yield tuple(key), value
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"{path}: not a msgpack stream after {n} records ({e})") from e
    if n == 0:
        raise CheckpointError(f"{path}: no records")


_STACK = re.compile(r"^(params/(?:encoder/encoder_blocks|decoder/decoder_blocks))/(scan_\w+)/(.+)$")


def read_checkpoint(path: str, cfg: ElasticTokConfig) -> dict:
    """Reads an official params file -> {official flat name: float32 array}, stacked layers split.
    Strict: unknown, missing, duplicate or misshapen tensors raise CheckpointError naming them."""
    want = official_shapes(cfg)
    layers = {"params/encoder/encoder_blocks": cfg.num_encoder_layers,
              "params/decoder/decoder_blocks": cfg.num_decoder_layers}
    out: dict = {}

    def put(name, arr):
        if name not in want:
            raise CheckpointError(f"{path}: unknown tensor {name}")
        if name in out:
            raise CheckpointError(f"{path}: tensor {name} appears twice")
        if tuple(arr.shape) != want[name]:
            raise CheckpointError(f"{path}: tensor {name} has shape {tuple(arr.shape)}, "
                                  f"expected {want[name]}")
        out[name] = arr

    try:
        f = open(path, "rb")
    except OSError as e:
        raise CheckpointError(f"{path}: cannot open ({e.strerror})") from e
    with f:
        for key, value in iter_records(f, path):
            if key[0] == "params":
                key = key[1:]
            name = "params/" + "/".join(key)
            arr = decode_value(value, f"{path}: tensor {name}")
            m = _STACK.match(name)
            if m:
                prefix, _, rest = m.groups()
                n = layers[prefix]
                if arr.ndim == 0 or arr.shape[0] != n:
                    raise CheckpointError(f"{path}: stacked tensor {name} has shape "
                                          f"{tuple(arr.shape)}, expected {n} layers on axis 0")
                for i in range(n):
                    put(f"{prefix}/{i}/{rest}", np.ascontiguousarray(arr[i]))
            else:
                put(name, arr)
    for name in want:
        if name not in out:
            raise CheckpointError(f"{path}: missing tensor {name}")
    return out


def write_checkpoint(path: str, flat: dict, cfg: ElasticTokConfig, layout: str = "per_layer",
                     dtype: str = "float32", extra: dict | None = None):
    """Writes {official flat name: array} as a tux streaming params file (for tests/fixtures).
    layout 'stacked' stacks each block parameter over layers under .../scan_decoder/...
    `extra` adds raw records {flat name: array} as they are (to build bad files in tests)."""
    records = []
    if layout == "per_layer":
        records = [(k, np.asarray(v)) for k, v in flat.items()]
    elif layout == "stacked":
        groups: dict = {}
        for k, v in flat.items():
            m = re.match(r"^(params/(?:encoder/encoder_blocks|decoder/decoder_blocks))/(\d+)/(.+)$", k)
            if m:
                groups.setdefault((m.group(1), m.group(3)), {})[int(m.group(2))] = np.asarray(v)
            else:
                records.append((k, np.asarray(v)))
        for (prefix, rest), per in groups.items():
            stacked = np.stack([per[i] for i in range(len(per))])
            records.append((f"{prefix}/scan_decoder/{rest}", stacked))
    else:
        raise ValueError(f"layout {layout!r}")
    records += list((extra or {}).items())
    packer = msgpack.Packer(use_bin_type=True)
    with open(path, "wb") as f:
        for name, arr in records:
            key = name.split("/")[1:]  # drop the leading "params"
            f.write(packer.pack((key, encode_value(arr, dtype))))


# ------------------------------------------------------------------ safetensors (numpy)
_ST_DTYPES = {"float32": ("F32", "<f4"), "float16": ("F16", "<f2"), "bfloat16": ("BF16", None)}


def write_safetensors(path: str, tensors: dict, metadata: dict, dtype: str = "float32"):
    """numpy-only safetensors writer (atomic): tensors sorted by name, header padded to 8."""
    if dtype not in _ST_DTYPES:
        raise ValueError(f"dtype {dtype!r}, expected one of {sorted(_ST_DTYPES)}")
    code, npdt = _ST_DTYPES[dtype]
    header: dict = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name], dtype=np.float32)
        raw = (f32_to_bf16_bits(a).astype("<u2") if npdt is None else a.astype(npdt)).tobytes("C")
        header[name] = {"dtype": code, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(hb)))
            f.write(hb)
            for b in blobs:
                f.write(b)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
