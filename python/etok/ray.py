"""Ray Data (optional: needs ``ray[data]``): tokenize many videos and read token datasets on a Ray
cluster — the same code on a laptop (``ray.init()``) and on a cluster (docs/scale.md).

    import etok.ray
    results = etok.ray.encode(["a.mp4", "b.mp4"], "tokens/", psnr=28)   # a Ray Dataset of results
    clips = etok.ray.read("dataset/")        # .etok files or `etok export` tar shards → a Ray Dataset

Each encode is ``etok.encode`` in a Ray task, so every .etok file is the one ``etok encode`` writes.
"""
from __future__ import annotations

import os
import threading

try:
    import ray
    import ray.data
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("etok.ray needs Ray Data: pip install 'etok[ray]' (or pip install 'ray[data]')") from error

from . import clips


def output_path(path: str, output_dir: str) -> str:
    """Where the .etok of ``path`` goes: ``output_dir/NAME.etok`` (NAME: the video's file name)."""
    return os.path.join(os.fspath(output_dir), os.path.basename(os.fspath(path)) + ".etok")


# The models a Ray worker process has opened, by file: a worker encodes many rows, and a model is
# loaded once per process instead of once per row (a 200M model is 0.4-0.8 GB of weights).
_worker_models: dict = {}
_worker_models_lock = threading.Lock()


def worker_model(path):
    """The ``etok.Model`` of ``path`` (None: the bundled default) opened once in this process and
    kept for the rows that follow. The same file under another name is the same entry."""
    from .codec import Model, default_model
    if path is None:
        return default_model()
    key = os.path.realpath(os.fspath(path))
    with _worker_models_lock:
        model = _worker_models.get(key)
        if model is None:
            model = _worker_models[key] = Model(key)
        return model


def _encode_row(row: dict, output_dir: str, options: dict) -> dict:
    from .codec import encode, Model
    path = row["path"]
    out = row.get("output") or output_path(path, output_dir)
    result = {"path": path, "output": out, "frames": 0, "tokens": 0, "psnr": float("nan"), "error": None}
    try:
        if not isinstance(options.get("model"), Model):
            options = dict(options, model=worker_model(options.get("model")))
        encoded = encode(path, output=out, **options)
        summary = encoded.summary
        result.update(frames=summary["frames"], tokens=summary["tokens"], psnr=summary["mean_psnr"])
    except Exception as error:  # noqa: BLE001 - a failed input is a row, not a failed job
        result["error"] = str(error)
    return result


def encode(videos, output_dir, *, threads: int = 1, num_cpus: float = 1, **options) -> "ray.data.Dataset":
    """Encodes videos into ``output_dir`` (``output_path``), one Ray task per video. ``videos``: a
    list of paths, or a Ray Dataset with a ``path`` column (and optionally ``output``). Options
    are ``etok.encode``'s (threshold, psnr, fixed, model, ...). Returns a dataset of one row per
    video: path, output, frames, tokens, psnr (mean, dB), error (None, or why it failed).
    Lazy, as Ray datasets are: consume it (``.materialize()``, ``.take_all()``) to run it.
    """
    if isinstance(videos, ray.data.Dataset):
        dataset = videos
    else:
        paths = [os.fspath(v) for v in videos]
        outputs = [output_path(p, output_dir) for p in paths]
        if len(set(outputs)) != len(outputs):
            raise ValueError("two videos have the same file name; give a Ray Dataset with an 'output' column")
        dataset = ray.data.from_items([{"path": p, "output": o} for p, o in zip(paths, outputs)])
    os.makedirs(output_dir, exist_ok=True)
    options = dict(options, threads=threads, overwrite=options.get("overwrite", True))
    return dataset.map(_encode_row, fn_kwargs={"output_dir": os.fspath(output_dir), "options": options},
                       num_cpus=num_cpus)


def _read_refs(batch: dict) -> list[dict]:
    rows = []
    for kind, path, key in zip(batch["kind"], batch["path"], batch["key"]):
        clip = clips.load((kind, path) if kind == "etok" else (kind, path, key))
        clip.pop("metadata", None)
        clip["vocabulary_size"] = -1 if clip.get("vocabulary_size") is None else clip["vocabulary_size"]
        rows.append(clip)
    return rows


def _read_row(row: dict) -> list[dict]:
    return _read_refs({name: [value] for name, value in row.items()})


def read(source) -> "ray.data.Dataset":
    """A Ray Dataset with one row per clip of ``source`` (.etok files, tar shards, their folders:
    ``etok.clips.find``): key, tokens, lengths, times, blocks, frames, chunks, vocabulary_size (−1
    when unknown)."""
    refs = clips.find(source)
    items = [{"kind": r[0], "path": r[1], "key": r[2] if len(r) > 2 else ""} for r in refs]
    return ray.data.from_items(items).flat_map(_read_row)


__all__ = ["encode", "output_path", "read"]
