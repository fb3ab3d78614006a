"""etok in Python: ElasticTok's adaptive video tokens as numpy arrays.

    import etok
    f = etok.open("clip.etok")             # header, len(f), f[i].tokens, f.seek(seconds), ...
    tokens = etok.encode("clip.mp4", psnr=28, output="clip.etok")
    frames = etok.decode("clip.etok")      # (T, H, W, 3) uint8
    model = etok.Model("m.safetensors")    # weights loaded once: model.encode(...), model.decode(...)

Everything runs etok's own Swift code through its C library (include/etok.h), loaded with ctypes:
results equal the ``etok`` command's bit for bit. Optional: ``etok.torch`` (PyTorch datasets) and
``etok.ray`` (Ray Data).
"""
from ._lib import ArgumentError, DataError, EtokError, InputError, LibraryNotFound, OutputError
from .codec import Model, decode, encode
from .reader import Block, EtokFile, open  # noqa: A004

__version__ = "0.1.0"


def library_version() -> str:
    """The loaded C library's version."""
    from . import _lib
    return _lib.lib().etok_version().decode()


__all__ = ["ArgumentError", "Block", "DataError", "EtokError", "EtokFile", "InputError", "LibraryNotFound", "Model", "OutputError",
           "decode", "encode", "library_version", "open"]
