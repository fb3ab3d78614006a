"""Reading .etok streams: ``etok.open(path)``.

The C library reads the whole stream at open, with the reader ``etok export`` uses (so tokens,
times and the damage verdict are export's); the figures of every block and all tokens then come
over in three calls into numpy arrays, and each block's tokens are views into one array.
"""
from __future__ import annotations

import ctypes
import json
import os
import warnings
from ctypes import byref, c_int32, c_int64, c_void_p
from dataclasses import dataclass

import numpy as np

from . import _lib


@dataclass(frozen=True)
class Block:
    """One block (one frame with the default model) as stored."""
    position: int       #: its place among the readable blocks (0 .. len-1)
    index: int          #: its index in the stream (gaps where damage was skipped)
    chunk: int          #: its chunk, named by the chunk's first block: the model's context resets there
    time: float         #: start time in seconds, on the stream's clock
    frames: int         #: frames it stands for (frames_per_block; fewer for a last block)
    kept: int           #: kept tokens
    mse: float | None   #: reconstruction MSE the encoder measured; None when not measured (imported)
    tokens: np.ndarray  #: int32 FSQ indices (kept,) or float32 VAE latents (kept, dim); read-only view

    @property
    def repeat(self) -> bool:
        """A repeat block: kept 0 and no tokens (an empty array). It shows the previous block's last
        frame again (docs/etok-format.md §5); the model saw nothing for it. Only streams whose header
        has ``encoding.repeat_blocks`` (``EtokFile.repeat_blocks``) hold them."""
        return self.kept == 0


class EtokFile:
    """An opened .etok stream. ``len()`` is the number of readable blocks; indexing gives a ``Block``
    (a slice, a list of them), iteration goes through them in order, ``seek(t)`` finds the block
    showing time ``t``. Whole-stream arrays: ``tokens`` (all blocks' tokens concatenated, as
    ``etok export``'s tokens.npy), ``lengths``, ``times``, ``chunks``, ``indices``, ``frames``,
    ``mse`` (NaN: not measured). Thread-safe for reading. Close it (or use ``with``) to release the
    library's copy at once; the numpy arrays stay valid.
    """

    def __init__(self, path, skip_damaged: bool = False):
        lib = _lib.lib()
        self.path = os.fspath(path)
        handle = c_void_p()
        _lib.check(lib.etok_reader_open(_lib.path_bytes(path), 1 if skip_damaged else 0, byref(handle)))
        self._handle = handle
        self.header = json.loads(lib.etok_reader_header_json(handle).decode("utf-8"))
        blocks, kind, dim, values = c_int64(), c_int32(), c_int64(), c_int64()
        _lib.check(lib.etok_reader_shape(handle, byref(blocks), byref(kind), byref(dim), byref(values)))
        n, self.token_dim = blocks.value, dim.value
        self.bottleneck = "fsq" if kind.value == 0 else "vae"
        self.lengths = np.empty(n, np.int32)
        self.frames = np.empty(n, np.int32)
        self.indices = np.empty(n, np.int64)
        self.chunks = np.empty(n, np.int64)
        self.times = np.empty(n, np.float64)
        self.mse = np.empty(n, np.float64)
        pointer = lambda a: a.ctypes.data_as(c_void_p)  # noqa: E731
        _lib.check(lib.etok_reader_copy_blocks(handle, pointer(self.lengths), pointer(self.frames), pointer(self.indices),
                                               pointer(self.chunks), pointer(self.times), pointer(self.mse)))
        self.mse[self.mse < 0] = np.nan
        flat = np.empty(values.value, np.int32 if kind.value == 0 else np.float32)
        _lib.check(lib.etok_reader_copy_tokens(handle, 0, n, pointer(flat), flat.size))
        self.tokens = flat if kind.value == 0 else flat.reshape(-1, self.token_dim)
        self.tokens.flags.writeable = False
        self.offsets = np.zeros(n + 1, np.int64)  # block k's tokens: tokens[offsets[k]:offsets[k+1]]
        np.cumsum(self.lengths, out=self.offsets[1:])
        for r in self.damage:
            warnings.warn(f"etok: skipped {r['blocks']} of {self.path}: {r['reason']}", stacklevel=3)

    # Header figures.
    @property
    def model(self) -> str:
        return self.header["model"]["name"]

    @property
    def sha256(self) -> str:
        return self.header["model"]["sha256"]

    @property
    def threshold(self) -> float | None:
        return self.header["encoding"]["threshold"]

    @property
    def fps(self) -> float | None:
        """The encode's --fps, else the source's frame rate; None when neither is known."""
        fps = self.header["encoding"].get("fps")
        if fps is None and self.header["source"].get("fps"):
            num, den = self.header["source"]["fps"]
            fps = num / den if den else None
        return fps

    @property
    def repeat_blocks(self) -> bool:
        """Whether the stream may hold repeat blocks (kept 0, ``Block.repeat``; format 1.2)."""
        return bool(self.header["encoding"].get("repeat_blocks"))

    @property
    def frames_per_block(self) -> int:
        return self.header["model"]["frames_per_block"]

    @property
    def vocabulary_size(self) -> int | None:
        """FSQ: tokens are indices in 0 .. vocabulary_size-1; None for VAE."""
        return self.header["model"].get("vocabulary_size")

    @property
    def rate_control(self) -> dict | None:
        """Rate control (``encoding.rate_control``) as ``etok info`` reports it: ``mode``
        (tokens_per_second, budget, max_tokens_per_chunk), ``target``, ``achieved`` by the readable
        blocks, ``max_tokens_per_chunk``, ``largest_chunk``, ``media_seconds``, ``objective``; None
        for a stream encoded without rate control."""
        return self.header.get("rate_control")

    @property
    def damage(self) -> list[dict]:
        """The damaged ranges skipped (skip_damaged=True), each with ``blocks`` and ``reason``."""
        return self.header["health"]["damaged_ranges"]

    # Blocks.
    def __len__(self) -> int:
        return len(self.lengths)

    def block_tokens(self, position: int) -> np.ndarray:
        """The tokens of the block at ``position`` (a read-only view)."""
        return self.tokens[self.offsets[position]:self.offsets[position + 1]]

    def __getitem__(self, key):
        if isinstance(key, slice):
            return [self[k] for k in range(*key.indices(len(self)))]
        k = int(key)
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(f"block {key} is out of range for {len(self)} blocks")
        mse = float(self.mse[k])
        return Block(position=k, index=int(self.indices[k]), chunk=int(self.chunks[k]), time=float(self.times[k]),
                     frames=int(self.frames[k]), kept=int(self.lengths[k]), mse=None if np.isnan(mse) else mse,
                     tokens=self.block_tokens(k))

    def __iter__(self):
        return (self[k] for k in range(len(self)))

    def seek(self, seconds: float) -> int:
        """The position of the block showing time ``seconds`` (the last one starting at or before it;
        the first block for an earlier time). Raises ValueError when no block is readable."""
        if self._handle is None:
            position = int(np.searchsorted(self.times, seconds, side="right")) - 1
            position = max(0, position) if len(self) else -1
        else:
            position = _lib.lib().etok_reader_seek(self._handle, float(seconds))
        if position < 0:
            raise ValueError(f"{self.path}: no readable blocks")
        return position

    def at(self, seconds: float) -> Block:
        """The block showing time ``seconds``."""
        return self[self.seek(seconds)]

    def close(self) -> None:
        """Releases the library's copy of the stream (the arrays stay valid)."""
        if getattr(self, "_handle", None) is not None:
            _lib.lib().etok_reader_close(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: the library may be gone already
            pass

    def __repr__(self) -> str:
        return (f"<etok.EtokFile {self.path!r}: {len(self)} blocks, {int(self.lengths.sum())} {self.bottleneck} tokens, "
                f"model {self.model}>")


def open(path, skip_damaged: bool = False) -> EtokFile:  # noqa: A001 (etok.open, as the issue names it)
    """Reads the .etok stream at ``path`` (``"-"``: stdin). A damaged or truncated stream raises
    ``EtokError`` unless ``skip_damaged``, which keeps the readable blocks and warns once per
    damaged range, as ``etok export --skip-damaged`` does."""
    return EtokFile(path, skip_damaged=skip_damaged)


__all__ = ["Block", "EtokFile", "open"]
