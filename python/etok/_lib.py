"""Finds and loads etok's C library (libetok_c, include/etok.h) and declares its functions.

The library is etok's Swift code behind a C ABI; nothing of the format or the model is
re-implemented in Python. Where it is looked for, in order:

1. ``ETOK_LIBRARY``: the library file, or the folder holding it;
2. a copy inside this package (``etok/libetok_c.so``, copied there before ``pip install``);
3. the SwiftPM build folders of the checkout this package sits in (``../.build/release``, then
   ``../.build/debug``), for working from the source tree.
"""
from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
import warnings
from ctypes import POINTER, byref, c_char_p, c_double, c_int32, c_int64, c_void_p

LIBRARY_NAME = "libetok_c.dylib" if sys.platform == "darwin" else "libetok_c.so"
_HERE = os.path.dirname(os.path.abspath(__file__))

BUILD_HINT = (
    "build it with `swift build -c release --product etok_c` in the etok checkout, then either set "
    "ETOK_LIBRARY=/path/to/etok/.build/release/" + LIBRARY_NAME + " or copy that file (and "
    ".build/release/etok_EtokTokenizer.resources/default.safetensors) into python/etok/ before "
    "`pip install ./python`"
)

# Status codes (include/etok.h).
OK, E_ARGUMENT, E_INPUT, E_DATA, E_OUTPUT, E_OTHER = range(6)


class EtokError(Exception):
    """An etok call failed: ``code`` is the status (include/etok.h), the message names the file and
    the problem, as the etok command prints it. Raised as the subclass of its status (the library's
    error categories, coarser); EtokError itself for ETOK_E_OTHER."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


class ArgumentError(EtokError, ValueError):
    """ETOK_E_ARGUMENT: a bad argument or setting (the command's exit status 64)."""


class InputError(EtokError):
    """ETOK_E_INPUT: the input is missing or unreadable (exit status 66)."""


class DataError(EtokError):
    """ETOK_E_DATA: the input's data is unusable: not .etok or video, damaged, another model's
    stream, a model file that fails its checks (exit status 65)."""


class OutputError(EtokError):
    """ETOK_E_OUTPUT: the output cannot be created (it exists and overwrite is off, no folder, no
    rights) or written (exit statuses 73, 74, 141)."""


# The exception class of each status: the one table on the Python side.
ERRORS = {E_ARGUMENT: ArgumentError, E_INPUT: InputError, E_DATA: DataError, E_OUTPUT: OutputError}


class LibraryNotFound(ImportError):
    """The shared library could not be found or loaded."""


def candidates() -> list[str]:
    """Where the library is looked for, in order."""
    found = []
    env = os.environ.get("ETOK_LIBRARY")
    if env:
        found.append(os.path.join(env, LIBRARY_NAME) if os.path.isdir(env) else env)
    found.append(os.path.join(_HERE, LIBRARY_NAME))
    checkout = os.path.dirname(os.path.dirname(_HERE))
    for config in ("release", "debug"):
        found.append(os.path.join(checkout, ".build", config, LIBRARY_NAME))
    return found


class BlockInfo(ctypes.Structure):
    """etok_block_info."""
    _fields_ = [("index", c_int64), ("chunk", c_int64), ("pts", c_int64), ("seconds", c_double),
                ("mse", c_double), ("value_offset", c_int64), ("value_count", c_int64),
                ("kept", c_int32), ("frames", c_int32)]


class EncodeOptions(ctypes.Structure):
    """etok_encode_options: all zero is `etok encode`'s defaults."""
    _fields_ = [("search", c_char_p), ("fit", c_char_p), ("input_format", c_char_p),
                ("raw_pixel_format", c_char_p), ("threshold", c_double), ("psnr", c_double), ("fps", c_double),
                ("raw_rate", c_double), ("fixed", c_int32), ("chunk", c_int32), ("threads", c_int32),
                ("overwrite", c_int32), ("raw_width", c_int32), ("raw_height", c_int32),
                ("skip_damaged", c_int32), ("no_repeat", c_int32),
                ("tokens_per_second", c_double), ("budget", c_int64), ("max_tokens_per_chunk", c_int32),
                ("rate_objective", c_char_p)]


class DecodeOptions(ctypes.Structure):
    """etok_decode_options."""
    _fields_ = [("threads", c_int32), ("skip_damaged", c_int32), ("overwrite", c_int32),
                ("allow_model_mismatch", c_int32)]


_SIGNATURES = {
    "etok_version": (c_char_p, []),
    "etok_last_error": (c_char_p, []),
    "etok_string_free": (None, [c_void_p]),
    "etok_blas_kernels": (None, [POINTER(c_char_p), POINTER(c_char_p)]),
    "etok_reader_open": (c_int32, [c_char_p, c_int32, POINTER(c_void_p)]),
    "etok_reader_close": (None, [c_void_p]),
    "etok_reader_header_json": (c_char_p, [c_void_p]),
    "etok_reader_shape": (c_int32, [c_void_p, POINTER(c_int64), POINTER(c_int32), POINTER(c_int64), POINTER(c_int64)]),
    "etok_reader_block": (c_int32, [c_void_p, c_int64, POINTER(BlockInfo)]),
    "etok_reader_copy_tokens": (c_int32, [c_void_p, c_int64, c_int64, c_void_p, c_int64]),
    "etok_reader_copy_blocks": (c_int32, [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p]),
    "etok_reader_seek": (c_int64, [c_void_p, c_double]),
    "etok_model_open": (c_int32, [c_char_p, POINTER(c_void_p)]),
    "etok_model_info_json": (c_char_p, [c_void_p]),
    "etok_model_close": (None, [c_void_p]),
    "etok_encode_file": (c_int32, [c_void_p, c_char_p, c_char_p, POINTER(EncodeOptions), POINTER(c_void_p)]),
    "etok_encode_frames": (c_int32, [c_void_p, c_void_p, c_int64, c_int64, c_int64, c_double, c_char_p,
                                     POINTER(EncodeOptions), POINTER(c_void_p)]),
    "etok_decode_file": (c_int32, [c_void_p, c_char_p, c_char_p, POINTER(DecodeOptions), POINTER(c_void_p)]),
    "etok_decode_frames": (c_int32, [c_void_p, c_char_p, POINTER(DecodeOptions), POINTER(c_void_p)]),
    "etok_frames_shape": (None, [c_void_p, POINTER(c_int64), POINTER(c_int64), POINTER(c_int64)]),
    "etok_frames_data": (c_void_p, [c_void_p]),
    "etok_frames_summary": (c_char_p, [c_void_p]),
    "etok_frames_free": (None, [c_void_p]),
}

_lib = None
_lock = threading.Lock()


def lib():
    """The loaded library (loaded on first use), or LibraryNotFound saying how to build it."""
    global _lib
    with _lock:
        if _lib is None:
            _lib = _load()
        return _lib


def _load():
    env = os.environ.get("ETOK_LIBRARY")
    if env and not os.path.isfile(candidates()[0]):
        raise LibraryNotFound(f"etok: ETOK_LIBRARY={env} names no {LIBRARY_NAME}; {BUILD_HINT}")
    tried = []
    for path in candidates():
        if not os.path.isfile(path):
            tried.append(path)
            continue
        try:
            loaded = ctypes.CDLL(path)
        except OSError as error:
            raise LibraryNotFound(f"etok: cannot load {path}: {error}; {BUILD_HINT}") from error
        for name, (restype, argtypes) in _SIGNATURES.items():
            function = getattr(loaded, name)
            function.restype, function.argtypes = restype, argtypes
        loaded.path = path
        _check_kernels(loaded)
        return loaded
    raise LibraryNotFound(f"etok: the shared library {LIBRARY_NAME} was not found (looked in: "
                          + ", ".join(tried) + f"); {BUILD_HINT}")


def _check_kernels(loaded) -> None:
    """Warns when OpenBLAS runs other kernels than the etok command would choose: results could then
    differ from the command's in the last bits (set OPENBLAS_CORETYPE before importing etok)."""
    got, chosen = c_char_p(), c_char_p()
    loaded.etok_blas_kernels(byref(got), byref(chosen))
    got, chosen = (got.value or b"").decode(), (chosen.value or b"").decode()
    if chosen and got.lower() != chosen.lower() and "OPENBLAS_CORETYPE" not in os.environ:
        warnings.warn(f"etok: OpenBLAS loaded its {got} kernels; the etok command uses {chosen} on this CPU. "
                      f"For results identical to the command's, set OPENBLAS_CORETYPE={chosen} before importing etok.",
                      RuntimeWarning, stacklevel=3)


def check(status: int) -> None:
    """Raises the EtokError subclass of a failed call's status."""
    if status != OK:
        message = lib().etok_last_error()
        raise ERRORS.get(status, EtokError)(status, message.decode("utf-8", "replace") if message else f"etok: error {status}")


def take_string(pointer: c_void_p) -> str | None:
    """A string the library handed out through `char **`, freed here."""
    if not pointer.value:
        return None
    try:
        return ctypes.string_at(pointer.value).decode("utf-8")
    finally:
        lib().etok_string_free(pointer)


def take_json(pointer: c_void_p):
    text = take_string(pointer)
    return json.loads(text) if text else None


def path_bytes(path) -> bytes:
    return os.fsencode(os.fspath(path))
