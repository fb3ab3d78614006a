"""PyTorch datasets of etok clips (optional: needs ``torch``).

    from etok.torch import EtokDataset, collate
    data = EtokDataset("tokens/")                      # .etok files, or the shards of `etok export`
    loader = torch.utils.data.DataLoader(data, batch_size=8, num_workers=2, collate_fn=collate)

One sample per clip (``etok.clips``): ``tokens`` (int64 FSQ indices, or float32 VAE latents
(N, dim)), ``lengths`` (kept tokens per block), ``offsets`` (block k is tokens[offsets[k]:
offsets[k+1]]: the frame boundaries), ``times``, ``blocks``, ``frames``, ``chunks``, ``key``.
``flatten=True`` gives language-model input instead: the blocks' tokens in one sequence with a
``separator`` token after each block (default: the codebook size, the first unused id).
A repeat block (kept 0: the previous frame shown again, docs/etok-format.md §5) has no tokens: its
``lengths`` entry is 0, its offsets are equal, and flattened it is a separator right after the
previous one (a frame that costs nothing); encode with ``etok encode --no-repeat`` for streams
where every frame has tokens.

Sharding: every clip is read exactly once per epoch across all DataLoader workers of all
distributed ranks — clip i goes to worker slot i mod (world_size × num_workers). ``shuffle=True``
permutes the clips first, the same way in every process (``seed`` + the epoch of ``set_epoch``).
"""
from __future__ import annotations

import os

import numpy as np

try:
    import torch
    from torch.utils.data import IterableDataset, get_worker_info
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("etok.torch needs PyTorch: pip install 'etok[torch]' (or pip install torch)") from error

from . import clips


def _distributed() -> tuple[int, int]:
    """(rank, world_size) from torch.distributed when initialised, else RANK/WORLD_SIZE, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class EtokDataset(IterableDataset):
    """Clips of .etok files or tar shards (``etok.clips.find`` says which sources work)."""

    def __init__(self, source, *, flatten: bool = False, separator: int | None = None, shuffle: bool = False,
                 seed: int = 0, skip_damaged: bool = False, rank: int | None = None, world_size: int | None = None):
        super().__init__()
        self.refs = clips.find(source)
        self.flatten, self.separator = flatten, separator
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.skip_damaged = skip_damaged
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        """Reshuffles (with ``shuffle=True``) for the next epoch; call it in every process."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Clips in the whole dataset (all ranks together)."""
        return len(self.refs)

    def assigned(self) -> list[tuple]:
        """The clips this process reads this epoch (this rank's, this DataLoader worker's)."""
        rank, world = _distributed()
        rank = self.rank if self.rank is not None else rank
        world = self.world_size if self.world_size is not None else world
        worker = get_worker_info()
        worker_id, workers = (worker.id, worker.num_workers) if worker else (0, 1)
        order = np.arange(len(self.refs))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.refs))
        slot, slots = rank * workers + worker_id, world * workers
        return [self.refs[i] for i in order[slot::slots]]

    def sample(self, clip: dict) -> dict:
        """A clip as tensors (flattened when asked)."""
        lengths = torch.from_numpy(clip["lengths"].astype(np.int64))
        out = {"key": clip["key"], "lengths": lengths,
               "offsets": torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(lengths, 0)]),
               "times": torch.from_numpy(np.asarray(clip["times"], np.float64)),
               "blocks": torch.from_numpy(np.asarray(clip["blocks"], np.int64)),
               "frames": torch.from_numpy(np.asarray(clip["frames"], np.int64)),
               "chunks": torch.from_numpy(np.asarray(clip["chunks"], np.int64))}
        tokens = clip["tokens"]
        if self.flatten:
            separator = self.separator if self.separator is not None else clip.get("vocabulary_size")
            if separator is None:
                raise ValueError(f"{clip['key']}: give separator= (the shard does not record the codebook size)")
            out["tokens"] = torch.from_numpy(clips.flatten(clip, separator))
        else:
            out["tokens"] = torch.from_numpy(tokens.astype(np.int64) if tokens.ndim == 1 else np.array(tokens))
        return out

    def __iter__(self):
        for ref in self.assigned():
            yield self.sample(clips.load(ref, self.skip_damaged))


def collate(batch: list[dict], pad_value: int | float = 0) -> dict:
    """Pads a list of samples into a batch: ``tokens`` (B, L) or (B, L, dim) with ``mask`` (B, L)
    True on real tokens; ``lengths``, ``times``, ``blocks``, ``frames``, ``chunks`` (B, K) with
    ``block_mask`` (B, K) True on real blocks; ``offsets`` (B, K+1), padded with the last offset;
    ``keys`` the clips' keys."""
    if not batch:
        raise ValueError("collate: empty batch")
    tokens = [s["tokens"] for s in batch]
    longest = max(len(t) for t in tokens)
    padded = tokens[0].new_full((len(batch), longest) + tuple(tokens[0].shape[1:]), pad_value)
    mask = torch.zeros(len(batch), longest, dtype=torch.bool)
    for i, t in enumerate(tokens):
        padded[i, :len(t)] = t
        mask[i, :len(t)] = True
    blocks = max(len(s["lengths"]) for s in batch)
    out = {"keys": [s["key"] for s in batch], "tokens": padded, "mask": mask,
           "block_mask": torch.zeros(len(batch), blocks, dtype=torch.bool)}
    for name in ("lengths", "times", "blocks", "frames", "chunks"):
        column = batch[0][name].new_zeros(len(batch), blocks)
        for i, s in enumerate(batch):
            column[i, :len(s[name])] = s[name]
        out[name] = column
    out["offsets"] = torch.zeros(len(batch), blocks + 1, dtype=torch.int64)
    for i, s in enumerate(batch):
        out["block_mask"][i, :len(s["lengths"])] = True
        out["offsets"][i, :len(s["offsets"])] = s["offsets"]
        out["offsets"][i, len(s["offsets"]):] = s["offsets"][-1]
    return out


__all__ = ["EtokDataset", "collate"]
