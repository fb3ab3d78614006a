"""Encoding and decoding: ``etok.Model`` (weights loaded once, ``etok_model``), and ``etok.encode``
and ``etok.decode`` through a cached default model.

Both run the library code of ``etok encode`` and ``etok decode`` (EncodeRun, DecodeRun), so the
.etok bytes and the frames are the command's, bit for bit. A frame array goes to the library as
raw RGB24 (``etok encode frames.rgb --input-format rawvideo --size WxH --rate R``).
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import tempfile
import threading
from ctypes import byref, c_int64, c_void_p

import numpy as np

from . import _lib
from .reader import EtokFile


def _encode_options(threshold, psnr, fixed, search, chunk, fps, fit, threads, overwrite, skip_damaged,
                    repeat, keep, tokens_per_second=None, budget=None, max_tokens_per_chunk=None,
                    rate_objective=None) -> _lib.EncodeOptions:
    o = _lib.EncodeOptions()
    def text(value):
        if value is None:
            return None
        keep.append(_lib.path_bytes(value))
        return keep[-1]
    o.search, o.fit = text(search), text(fit)
    o.threshold = float(threshold or 0)
    o.psnr = float(psnr or 0)
    o.fixed = int(fixed or 0)
    o.chunk = int(chunk or 0)
    o.fps = float(fps or 0)
    o.threads = int(threads or 0)
    o.overwrite = 1 if overwrite else 0
    o.skip_damaged = 1 if skip_damaged else 0
    o.no_repeat = 0 if repeat else 1
    o.tokens_per_second = _positive("tokens_per_second", tokens_per_second, integer=False)
    o.budget = _positive("budget", budget, integer=True)
    o.max_tokens_per_chunk = _positive("max_tokens_per_chunk", max_tokens_per_chunk, integer=True)
    o.rate_objective = text(rate_objective)
    return o


def _positive(name, value, integer):
    """A rate-control option as the C struct holds it (0: unset): None, or a positive number (an
    int where it counts tokens); anything else is an ArgumentError, as ``etok encode`` refuses it."""
    if value is None:
        return 0
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kinds) or not (0 < value < float("inf")):
        what = "a positive whole number of tokens" if integer else "a positive rate in tokens per second"
        raise _lib.ArgumentError(1, f"{name} must be {what}, not {value!r}")
    return int(value) if integer else float(value)


def _decode_options(threads, skip_damaged, overwrite, allow_model_mismatch) -> _lib.DecodeOptions:
    o = _lib.DecodeOptions()
    o.threads = int(threads or 0)
    o.skip_damaged = 1 if skip_damaged else 0
    o.overwrite = 1 if overwrite else 0
    o.allow_model_mismatch = 1 if allow_model_mismatch else 0
    return o


class Model:
    """A model loaded once (``etok_model``): every ``encode`` and ``decode`` through it reuses the
    weights, from any thread. ``path``: a .safetensors file; None: the bundled default model.
    ``info`` describes it (name, path, sha256, image_size, frames_per_block, max_toks, ...).
    Close it with ``close()`` or a ``with`` block (else when it is garbage-collected)."""

    def __init__(self, path=None):
        lib = _lib.lib()
        handle = c_void_p()
        _lib.check(lib.etok_model_open(None if path is None else _lib.path_bytes(path), byref(handle)))
        self._handle = handle
        self.info = json.loads(lib.etok_model_info_json(handle))

    @property
    def name(self) -> str:
        return self.info["name"]

    @property
    def path(self) -> str:
        return self.info["path"]

    @property
    def sha256(self) -> str:
        return self.info["sha256"]

    def _open_handle(self) -> c_void_p:
        if self._handle is None:
            raise ValueError("this etok.Model is closed")
        return self._handle

    def close(self) -> None:
        """Releases the weights (after every call through this model has returned)."""
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is not None:
            _lib.lib().etok_model_close(handle)

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit the library may be gone already
            pass

    def __repr__(self) -> str:
        return f"<etok.Model {self.name} {self.sha256[:12]}{' closed' if self._handle is None else ''}>"

    def encode(self, source, *, threshold: float | None = None, psnr: float | None = None, fixed: int | None = None,
               output=None, rate: float = 25.0, fps: float | None = None, search: str | None = None,
               chunk: int | None = None, fit: str | None = None, threads: int = 0, overwrite: bool = False,
               skip_damaged: bool = False, repeat: bool = True, tokens_per_second: float | None = None,
               budget: int | None = None, max_tokens_per_chunk: int | None = None,
               rate_objective: str | None = None) -> EtokFile:
        """Encodes a video into adaptive tokens and returns them read back (an ``EtokFile``, whose
        ``summary`` holds the encode's statistics, ``etok encode --stats``).

        ``source``: a video path (anything FFmpeg reads), or frames as a (T, H, W, 3) uint8 array at
        ``rate`` frames per second (fitted to the model like any video: ``fit`` crop, pad or stretch).
        ``threshold`` (MSE on the [-1, 1] scale) or ``psnr`` (dB) sets the quality; by default the
        model's calibrated threshold. ``fixed=N`` keeps N tokens per block instead. ``output``: also
        write the .etok file there (else a temporary file is used and removed). ``repeat=False``:
        no repeat blocks (``etok encode --no-repeat``), so every block keeps tokens, for a consumer
        that has no meaning for a 0-token frame (``Block.repeat``). Rate control instead of the
        threshold: ``tokens_per_second=R`` (a mean rate over the media time; for frames, at ``rate``
        frames per second), ``budget=N`` (N tokens for the whole input), ``max_tokens_per_chunk=C``
        (a cap, alone or with either), ``rate_objective`` "balanced" (default), "psnr" or "mse";
        ``summary["rate_control"]`` and the result's ``rate_control`` give target and achieved. The
        options mean what ``etok encode``'s do.
        """
        lib = _lib.lib()
        handle = self._open_handle()
        keep: list[bytes] = []
        options = _encode_options(threshold, psnr, fixed, search, chunk, fps, fit, threads, overwrite,
                                  skip_damaged, repeat, keep, tokens_per_second, budget, max_tokens_per_chunk,
                                  rate_objective)
        folder = None if output is not None else tempfile.mkdtemp(prefix="etok-")
        target = os.fspath(output) if output is not None else os.path.join(folder, "encoded.etok")
        try:
            summary = c_void_p()
            if isinstance(source, (str, bytes, os.PathLike)):
                status = lib.etok_encode_file(handle, _lib.path_bytes(source), _lib.path_bytes(target), byref(options),
                                              byref(summary))
            else:
                frames = np.asarray(source)
                if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
                    raise ValueError(f"frames must be a (T, H, W, 3) uint8 array, not {frames.dtype} {frames.shape}")
                frames = np.ascontiguousarray(frames)
                t, h, w, _ = frames.shape
                status = lib.etok_encode_frames(handle, frames.ctypes.data_as(c_void_p), t, h, w, float(rate),
                                                _lib.path_bytes(target), byref(options), byref(summary))
            _lib.check(status)
            stats = _lib.take_json(summary)
            result = EtokFile(target)
            result.summary = stats
            if output is None:
                result.path = None
            return result
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def decode(self, source, *, output=None, skip_damaged: bool = False, threads: int = 0,
               overwrite: bool = False, allow_model_mismatch: bool = False):
        """Decodes an .etok stream (a path, or an ``EtokFile`` written to disk) back to frames.

        Returns the frames as a (T, H, W, 3) uint8 array at the model's resolution — the bytes
        ``etok decode x.etok -o x.rgb`` writes — or, with ``output`` (.mp4, .y4m, .rgb, .png, a %05d
        PNG pattern), writes that file as ``etok decode`` does and returns its summary. Damage is a
        ``DataError`` unless ``skip_damaged``.
        """
        if isinstance(source, EtokFile):
            if source.path is None:
                raise ValueError("this EtokFile was encoded without output=: encode with output= to decode it")
            source = source.path
        lib = _lib.lib()
        handle = self._open_handle()
        options = _decode_options(threads, skip_damaged, overwrite, allow_model_mismatch)
        if output is not None:
            summary = c_void_p()
            _lib.check(lib.etok_decode_file(handle, _lib.path_bytes(source), _lib.path_bytes(output), byref(options),
                                            byref(summary)))
            return _lib.take_json(summary)
        frames_handle = c_void_p()
        _lib.check(lib.etok_decode_frames(handle, _lib.path_bytes(source), byref(options), byref(frames_handle)))
        try:
            count, height, width = c_int64(), c_int64(), c_int64()
            lib.etok_frames_shape(frames_handle, byref(count), byref(height), byref(width))
            frames = np.empty((count.value, height.value, width.value, 3), np.uint8)
            ctypes.memmove(frames.ctypes.data, lib.etok_frames_data(frames_handle), frames.nbytes)
            return frames
        finally:
            lib.etok_frames_free(frames_handle)


_default: Model | None = None
_default_lock = threading.Lock()


def default_model() -> Model:
    """The bundled default model, loaded on first use and kept for the process."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Model()
        return _default


def _call(model, method: str, source, options: dict):
    """Runs Model.METHOD on ``model``: None is the cached default, an ``etok.Model`` itself, a path
    a model opened for this one call."""
    if model is None:
        return getattr(default_model(), method)(source, **options)
    if isinstance(model, Model):
        return getattr(model, method)(source, **options)
    with Model(model) as opened:
        return getattr(opened, method)(source, **options)


def encode(source, *, model=None, **options) -> EtokFile:
    """``Model.encode`` (see there for ``source`` and the options) with ``model``: None for the
    bundled default (loaded once per process), an ``etok.Model``, or a .safetensors path (loaded
    for this call; open an ``etok.Model`` to encode many clips with it)."""
    return _call(model, "encode", source, options)


def decode(source, *, model=None, **options):
    """``Model.decode`` (see there) with ``model`` as for ``encode``."""
    return _call(model, "decode", source, options)
