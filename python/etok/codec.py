"""Encoding and decoding: ``etok.encode`` and ``etok.decode``.

Both run the library code of ``etok encode`` and ``etok decode`` (EncodeRun, DecodeRun), so the
.etok bytes and the frames are the command's, bit for bit. A frame array goes to the library as
raw RGB24 (``etok encode frames.rgb --input-format rawvideo --size WxH --rate R``).
"""
from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
from ctypes import byref, c_int64, c_void_p

import numpy as np

from . import _lib
from .reader import EtokFile


def _encode_options(threshold, psnr, fixed, model, search, chunk, fps, fit, threads, overwrite, skip_damaged,
                    keep) -> _lib.EncodeOptions:
    o = _lib.EncodeOptions()
    def text(value):
        if value is None:
            return None
        keep.append(_lib.path_bytes(value))
        return keep[-1]
    o.model, o.search, o.fit = text(model), text(search), text(fit)
    o.threshold = float(threshold or 0)
    o.psnr = float(psnr or 0)
    o.fixed = int(fixed or 0)
    o.chunk = int(chunk or 0)
    o.fps = float(fps or 0)
    o.threads = int(threads or 0)
    o.overwrite = 1 if overwrite else 0
    o.skip_damaged = 1 if skip_damaged else 0
    return o


def encode(source, *, threshold: float | None = None, psnr: float | None = None, fixed: int | None = None,
           model=None, output=None, rate: float = 25.0, fps: float | None = None, search: str | None = None,
           chunk: int | None = None, fit: str | None = None, threads: int = 0, overwrite: bool = False,
           skip_damaged: bool = False) -> EtokFile:
    """Encodes a video into adaptive tokens and returns them read back (an ``EtokFile``, whose
    ``summary`` holds the encode's statistics, ``etok encode --stats``).

    ``source``: a video path (anything FFmpeg reads), or frames as a (T, H, W, 3) uint8 array at
    ``rate`` frames per second (fitted to the model like any video: ``fit`` crop, pad or stretch).
    ``threshold`` (MSE on the [-1, 1] scale) or ``psnr`` (dB) sets the quality; by default the
    model's calibrated threshold. ``fixed=N`` keeps N tokens per block instead. ``model``: a
    .safetensors file (default: the bundled model). ``output``: also write the .etok file there
    (else a temporary file is used and removed). The options mean what ``etok encode``'s do.
    """
    lib = _lib.lib()
    keep: list[bytes] = []
    options = _encode_options(threshold, psnr, fixed, model, search, chunk, fps, fit, threads, overwrite,
                              skip_damaged, keep)
    folder = None if output is not None else tempfile.mkdtemp(prefix="etok-")
    target = os.fspath(output) if output is not None else os.path.join(folder, "encoded.etok")
    try:
        summary = c_void_p()
        if isinstance(source, (str, bytes, os.PathLike)):
            status = lib.etok_encode_file(_lib.path_bytes(source), _lib.path_bytes(target), byref(options),
                                          byref(summary))
        else:
            frames = np.asarray(source)
            if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
                raise ValueError(f"frames must be a (T, H, W, 3) uint8 array, not {frames.dtype} {frames.shape}")
            frames = np.ascontiguousarray(frames)
            t, h, w, _ = frames.shape
            status = lib.etok_encode_frames(frames.ctypes.data_as(c_void_p), t, h, w, float(rate),
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


def _decode_options(model, threads, skip_damaged, overwrite, allow_model_mismatch, keep) -> _lib.DecodeOptions:
    o = _lib.DecodeOptions()
    if model is not None:
        keep.append(_lib.path_bytes(model))
        o.model = keep[-1]
    o.threads = int(threads or 0)
    o.skip_damaged = 1 if skip_damaged else 0
    o.overwrite = 1 if overwrite else 0
    o.allow_model_mismatch = 1 if allow_model_mismatch else 0
    return o


def decode(source, *, model=None, output=None, skip_damaged: bool = False, threads: int = 0,
           overwrite: bool = False, allow_model_mismatch: bool = False):
    """Decodes an .etok stream (a path, or an ``EtokFile`` written to disk) back to frames.

    Returns the frames as a (T, H, W, 3) uint8 array at the model's resolution — the bytes
    ``etok decode x.etok -o x.rgb`` writes — or, with ``output`` (.mp4, .y4m, .rgb, .png, a %05d
    PNG pattern), writes that file as ``etok decode`` does and returns its summary. Damage is an
    ``EtokError`` unless ``skip_damaged``.
    """
    if isinstance(source, EtokFile):
        if source.path is None:
            raise ValueError("this EtokFile was encoded without output=: encode with output= to decode it")
        source = source.path
    lib = _lib.lib()
    keep: list[bytes] = []
    options = _decode_options(model, threads, skip_damaged, overwrite, allow_model_mismatch, keep)
    if output is not None:
        summary = c_void_p()
        _lib.check(lib.etok_decode_file(_lib.path_bytes(source), _lib.path_bytes(output), byref(options), byref(summary)))
        return _lib.take_json(summary)
    handle = c_void_p()
    _lib.check(lib.etok_decode_frames(_lib.path_bytes(source), byref(options), byref(handle)))
    try:
        count, height, width = c_int64(), c_int64(), c_int64()
        lib.etok_frames_shape(handle, byref(count), byref(height), byref(width))
        frames = np.empty((count.value, height.value, width.value, 3), np.uint8)
        ctypes.memmove(frames.ctypes.data, lib.etok_frames_data(handle), frames.nbytes)
        return frames
    finally:
        lib.etok_frames_free(handle)
