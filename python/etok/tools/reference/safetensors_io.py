"""etok model files: safetensors with the config in the header metadata.

Header metadata (all strings, as safetensors requires):
  "format": "etok-elastictok"
  "config": JSON of ElasticTokConfig (official field names + etok_ fields)
  "name":   a free-form model name
Tensor names are the official flax paths joined by '/' (params/encoder/in_proj/kernel, ...).
Storage dtype float32, float16 or bfloat16; the model computes in float32.
"""

from __future__ import annotations

import json
import os
from typing import Optional, Union

import torch
from safetensors import safe_open

from .config import ConfigError, ElasticTokConfig
from .model import ElasticTok, expected_shapes, flat_to_state, state_to_flat
from .official_format import write_safetensors

FORMAT = "etok-elastictok"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class ModelFileError(ValueError):
    """A model file that cannot be used; the message names the file and the problem."""


def export(model_or_flat: Union[ElasticTok, dict], config: ElasticTokConfig, path: str,
           dtype: str = "float32", name: str = "") -> dict:
    """Writes `path` (atomically: a temporary file renamed into place). Checks every tensor's
    name and shape against the config first. Returns the flat dict as written."""
    if dtype not in DTYPES:
        raise ValueError(f"export: dtype {dtype!r}, expected one of {sorted(DTYPES)}")
    flat = state_to_flat(model_or_flat) if isinstance(model_or_flat, ElasticTok) else model_or_flat
    want = expected_shapes(config)
    for k in flat:
        if k not in want:
            raise ModelFileError(f"{path}: unknown tensor {k}")
    for k, shape in want.items():
        if k not in flat:
            raise ModelFileError(f"{path}: missing tensor {k}")
        if tuple(flat[k].shape) != shape:
            raise ModelFileError(f"{path}: tensor {k} has shape {tuple(flat[k].shape)}, "
                                 f"expected {shape}")
    out = {k: torch.as_tensor(v).detach().to(DTYPES[dtype]).contiguous() for k, v in flat.items()}
    meta = {"format": FORMAT, "config": config.to_json(), "name": name}
    # Our own writer: byte-deterministic (safetensors' Rust writer orders metadata at random).
    write_safetensors(path, {k: v.float().numpy() for k, v in out.items()}, meta, dtype)
    return out


def load_flat(path: str):
    """-> (config, flat dict of tensors in their stored dtype, metadata). Strict about the header,
    the names, the shapes and the dtypes."""
    try:
        f = safe_open(path, framework="pt")
    except Exception as e:  # safetensors raises its own error types
        raise ModelFileError(f"{path}: not a safetensors file ({e})") from e
    with f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ModelFileError(f"{path}: header format is {meta.get('format')!r}, "
                                 f"expected {FORMAT!r}")
        if "config" not in meta:
            raise ModelFileError(f"{path}: header has no config")
        try:
            config = ElasticTokConfig.from_json(meta["config"])
        except ConfigError as e:
            raise ModelFileError(f"{path}: {e}") from e
        flat = {k: f.get_tensor(k) for k in f.keys()}
    want = expected_shapes(config)
    for k, t in flat.items():
        if k not in want:
            raise ModelFileError(f"{path}: unknown tensor {k}")
        if t.dtype not in DTYPES.values():
            raise ModelFileError(f"{path}: tensor {k} has dtype {t.dtype}, expected float32, "
                                 f"float16 or bfloat16")
        if tuple(t.shape) != want[k]:
            raise ModelFileError(f"{path}: tensor {k} has shape {tuple(t.shape)}, "
                                 f"expected {want[k]}")
    for k in want:
        if k not in flat:
            raise ModelFileError(f"{path}: missing tensor {k}")
    return config, flat, meta


def load(path: str):
    """-> (config, ElasticTok in float32, eval mode)."""
    config, flat, _ = load_flat(path)
    model = ElasticTok(config)
    flat_to_state(model, {k: v.float() for k, v in flat.items()})
    return config, model.eval()
