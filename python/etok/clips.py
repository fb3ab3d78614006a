"""Clips as plain numpy dicts, from .etok files or from the tar shards ``etok export`` writes; the
one place the datasets (``etok.torch``, ``etok.ray``) find and read their samples.

A clip is ``{"key", "tokens", "lengths", "times", "blocks", "frames", "chunks"}``: ``tokens`` are
all blocks' tokens concatenated (int32 FSQ indices (N,), or float32 VAE latents (N, dim));
``lengths`` the kept tokens per block (block k's tokens start at ``lengths[:k].sum()``), ``times``
each block's start in seconds, ``blocks`` its index in the stream, ``frames`` the frames it stands
for, ``chunks`` its chunk (the model's context resets where it changes) — the arrays of
``etok export --format npy``. Tar shards (WebDataset layout, docs/scale.md) hold exactly those
arrays per sample (``KEY.tokens.npy``, ...) and ``KEY.json``; ``index.json`` lists shards and keys.
"""
from __future__ import annotations

import glob
import io
import json
import os
import tarfile

import numpy as np

ARRAYS = ("lengths", "tokens", "pts", "blocks", "frames", "chunks")


def clip_from_etok(path, skip_damaged: bool = False) -> dict:
    """The clip in the .etok file at ``path`` (read through the C library)."""
    from .reader import EtokFile
    with EtokFile(path, skip_damaged=skip_damaged) as f:
        return {"key": os.fspath(path), "tokens": f.tokens, "lengths": f.lengths, "times": f.times,
                "blocks": f.indices, "frames": f.frames, "chunks": f.chunks,
                "vocabulary_size": f.vocabulary_size}


def clip_from_shard(shard, key: str, tar: tarfile.TarFile | None = None) -> dict:
    """The sample ``key`` of the tar shard ``shard``."""
    own = tar is None
    tar = tar or tarfile.open(shard)
    try:
        clip = {"key": key}
        for name in ARRAYS:
            data = tar.extractfile(f"{key}.{name}.npy").read()
            clip["times" if name == "pts" else name] = np.load(io.BytesIO(data), allow_pickle=False)
        member = f"{key}.json"
        try:
            clip["metadata"] = json.loads(tar.extractfile(member).read())
        except KeyError:
            clip["metadata"] = None
        clip["vocabulary_size"] = None
        return clip
    finally:
        if own:
            tar.close()


def shard_keys(shard) -> list[str]:
    """The sample keys in a tar shard, in order (a key is a member's name up to its first dot)."""
    keys: list[str] = []
    with tarfile.open(shard) as tar:
        for name in tar.getnames():
            key = os.path.basename(name).split(".", 1)[0]
            if not keys or keys[-1] != key:
                keys.append(key)
    return keys


def find(source) -> list[tuple]:
    """Every clip of ``source`` as a reference, in a stable order: ``("etok", path)`` or
    ``("tar", shard, key)``. ``source``: an .etok file, a tar shard, a folder (an export's folder
    with index.json: its shards; else every .etok and .tar under it, sorted), or a list of these."""
    if isinstance(source, (list, tuple)):
        return [ref for item in source for ref in find(item)]
    path = os.fspath(source)
    if os.path.isdir(path):
        index = os.path.join(path, "index.json")
        if os.path.isfile(index):
            with open(index) as f:
                shards = json.load(f)["shards"]
            return [("tar", os.path.join(path, s["file"]), key) for s in shards for key in s["keys"]]
        files = sorted(glob.glob(os.path.join(path, "**", "*.etok"), recursive=True)
                       + glob.glob(os.path.join(path, "**", "*.tar"), recursive=True))
        return find(files)
    if path.endswith(".tar"):
        return [("tar", path, key) for key in shard_keys(path)]
    return [("etok", path)]


def load(ref, skip_damaged: bool = False) -> dict:
    """The clip a reference from ``find`` names."""
    return clip_from_etok(ref[1], skip_damaged) if ref[0] == "etok" else clip_from_shard(ref[1], ref[2])


def flatten(clip: dict, separator: int) -> np.ndarray:
    """A clip's FSQ tokens as one int64 sequence with ``separator`` after each block (frame)."""
    if clip["tokens"].ndim != 1:
        raise ValueError(f"{clip['key']}: VAE latents cannot be flattened with separator tokens")
    lengths = clip["lengths"].astype(np.int64)
    out = np.empty(int(lengths.sum()) + len(lengths), np.int64)
    ends = np.cumsum(lengths + 1)              # one past each block's separator
    out[ends - 1] = separator
    mask = np.ones(len(out), bool)
    mask[ends - 1] = False
    out[mask] = clip["tokens"]
    return out
