"""Training batches for ElasticTok: sequences of K frames sampled from the clips of a dataset file.

`ClipSampler` draws, per sequence: a clip (a kind by KIND_WEIGHTS, then a source uniformly within
the kind, then a clip of that source by sqrt(length); so the long static vtest.avi does not crowd
out the rest), a frame stride in 1..4 that fits (several frame rates from native-rate clips), a start,
and with some probability time reversal and a horizontal flip. All randomness comes from one
numpy Generator whose state `state()`/`set_state()` expose, so a checkpoint resumes the exact
batch sequence.
"""

from __future__ import annotations

import queue
import threading

import numpy as np

# Share of sequences drawn from each clip kind (0 real exact, 1 real zoomed crops, 2 synthetic).
KIND_WEIGHTS = {0: 0.35, 1: 0.25, 2: 0.40}


class ClipSampler:
    """Owns the frames (uint8 (N, H, W, 3), read-only) and the sampling RNG."""

    def __init__(self, frames: np.ndarray, clip_start, clip_len, clip_kind, seq_len: int,
                 seed: int = 0, max_stride: int = 4, p_reverse: float = 0.2, p_flip: float = 0.5,
                 clip_source=None):
        self.frames = frames
        self.start = np.asarray(clip_start, np.int64)
        self.length = np.asarray(clip_len, np.int64)
        kind = np.asarray(clip_kind, np.int64)
        self.seq_len = seq_len
        self.max_stride = max_stride
        self.p_reverse, self.p_flip = p_reverse, p_flip
        usable = self.length >= seq_len
        if not usable.any():
            raise ValueError(f"no clip has {seq_len} frames")
        w = np.zeros(len(self.length))
        present = [k for k in KIND_WEIGHTS if (usable & (kind == k)).any()]
        source = (np.arange(len(kind)) if clip_source is None
                  else np.asarray(clip_source, np.int64))
        total = sum(KIND_WEIGHTS[j] for j in present)
        for k in present:
            sel = usable & (kind == k)
            srcs = np.unique(source[sel])
            for sid in srcs:
                one = sel & (source == sid)
                sw = np.sqrt(self.length[one].astype(np.float64))
                w[one] = KIND_WEIGHTS[k] / total / len(srcs) * sw / sw.sum()
        self.weights = w / w.sum()
        self.rng = np.random.default_rng(seed)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict):
        self.rng.bit_generator.state = state

    def batch(self, b: int) -> np.ndarray:
        """uint8 (b, seq_len, H, W, 3)."""
        rng, k = self.rng, self.seq_len
        clips = rng.choice(len(self.weights), size=b, p=self.weights)
        out = np.empty((b, k) + self.frames.shape[1:], np.uint8)
        for i, c in enumerate(clips):
            n = int(self.length[c])
            max_s = max(1, min(self.max_stride, (n - 1) // max(k - 1, 1)))
            s = int(rng.integers(1, max_s + 1))
            first = int(rng.integers(0, n - (k - 1) * s))
            idx = self.start[c] + first + s * np.arange(k)
            if rng.random() < self.p_reverse:
                idx = idx[::-1]
            seq = self.frames[idx]
            if rng.random() < self.p_flip:
                seq = seq[:, :, ::-1]
            out[i] = seq
        return out


class PrefetchSampler:
    """Draws the next batches of a ClipSampler on a background thread while the GPU trains.

    Same interface as ClipSampler (`batch`, `state`, `set_state`) and the same batches in the same
    order: one producer thread draws them in sequence. `state()` is the sampler state *before the
    oldest batch not yet handed out*, so a checkpoint taken between steps resumes exactly the batch
    sequence an unprefetched run would see (batches drawn ahead and lost with the process are drawn
    again). Measured need: the H200 run spent ~26 ms of each 160 ms step in the sampler; numpy's
    copies release the GIL, and the training thread waits on the GPU with the GIL released.
    The thread starts at the first `batch()` call; `set_state` is only allowed before that.
    """

    def __init__(self, sampler: ClipSampler, depth: int = 2):
        self.sampler = sampler
        self._lock = threading.Lock()
        self._pending = []  # sampler states before each drawn-ahead batch, oldest first
        self._queue = queue.Queue(maxsize=depth)
        self._thread = None
        self._b = None

    def _produce(self):
        while True:
            with self._lock:
                self._pending.append(self.sampler.state())
            try:
                item = self.sampler.batch(self._b)
            except BaseException as e:  # hand the failure to the consumer instead of dying silently
                item = e
            self._queue.put(item)
            if isinstance(item, BaseException):
                return

    def batch(self, b: int) -> np.ndarray:
        if self._thread is None:
            self._b = b
            self._thread = threading.Thread(target=self._produce, name="prefetch", daemon=True)
            self._thread.start()
        elif b != self._b:
            raise ValueError(f"PrefetchSampler: batch size {b} after {self._b}")
        item = self._queue.get()
        with self._lock:
            self._pending.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def state(self) -> dict:
        with self._lock:
            # An empty list means the producer is not drawing (it records the state first).
            return self._pending[0] if self._pending else self.sampler.state()

    def set_state(self, state: dict):
        if self._thread is not None:
            raise RuntimeError("PrefetchSampler.set_state after the first batch")
        self.sampler.set_state(state)
