"""Frame stacks <-> compact bytes, through the ffmpeg command line.

The training set holds tens of thousands of 128x128 RGB frames; raw they would be hundreds of
megabytes, so they are stored as one H.264 stream inside the dataset file:

* `encode(frames, lossless=False)`: libx264, yuv444p, CRF 6 (about 44-45 dB PSNR against the
  source on real footage, far above what the tokenizer reconstructs, so the training target is
  unchanged for practical purposes) at roughly 1/15 of the raw size.
* `encode(frames, lossless=True)`: libx264rgb at QP 0, bit-exact; used for the held-out file.
* `decode(data, n, h, w)`: back to uint8 (n, h, w, 3); checks the frame count.

Frames go through stdin/stdout of one ffmpeg process each way; nothing else is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np


class FrameCodecError(RuntimeError):
    """ffmpeg failed or returned the wrong amount of data; the message says which call."""


def encode(frames: np.ndarray, lossless: bool = False) -> bytes:
    """uint8 (N, H, W, 3) -> Matroska bytes holding one H.264 stream of the N frames."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise FrameCodecError(f"framecodec.encode: expected uint8 (N, H, W, 3), got "
                              f"{frames.dtype} {frames.shape}")
    n, h, w, _ = frames.shape
    if lossless:
        codec = ["-c:v", "libx264rgb", "-qp", "0", "-preset", "medium"]
    else:
        codec = ["-c:v", "libx264", "-pix_fmt", "yuv444p", "-crf", "6", "-preset", "medium"]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "frames.mkv")
        cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
               "-r", "25", "-i", "pipe:0", *codec, "-threads", "2", "-fps_mode", "passthrough", out]
        proc = subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(),
                              capture_output=True)
        if proc.returncode != 0:
            raise FrameCodecError(f"framecodec.encode: ffmpeg failed: "
                                  f"{proc.stderr.decode(errors='replace').strip()[:300]}")
        with open(out, "rb") as f:
            return f.read()


def decode(data: bytes, n: int, h: int, w: int) -> np.ndarray:
    """Matroska bytes from `encode` -> uint8 (n, h, w, 3); raises when the count differs.

    Uses the ffmpeg CLI; where there is none (the GPU machine), OpenCV's bundled FFmpeg."""
    if shutil.which("ffmpeg") is None:
        return _decode_cv2(data, n, h, w)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "frames.mkv")
        with open(src, "wb") as f:
            f.write(bytes(data))
        cmd = ["ffmpeg", "-v", "error", "-i", src, "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-fps_mode", "passthrough", "pipe:1"]
        proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        raise FrameCodecError(f"framecodec.decode: ffmpeg failed: "
                              f"{proc.stderr.decode(errors='replace').strip()[:300]}")
    want = n * h * w * 3
    if len(proc.stdout) != want:
        raise FrameCodecError(f"framecodec.decode: got {len(proc.stdout)} bytes, expected {want} "
                              f"({n} frames of {w}x{h})")
    return np.frombuffer(proc.stdout, dtype=np.uint8).reshape(n, h, w, 3).copy()


def _decode_cv2(data: bytes, n: int, h: int, w: int) -> np.ndarray:
    try:
        import cv2
    except ImportError as e:
        raise FrameCodecError("framecodec.decode: neither the ffmpeg CLI nor OpenCV is "
                              "available to decode the dataset") from e
    out = np.empty((n, h, w, 3), np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "frames.mkv")
        with open(src, "wb") as f:
            f.write(bytes(data))
        cap = cv2.VideoCapture(src)
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i >= n or frame.shape != (h, w, 3):
                raise FrameCodecError(f"framecodec.decode (OpenCV): frame {i} has shape "
                                      f"{frame.shape}, expected {n} frames of {(h, w, 3)}")
            out[i] = frame[:, :, ::-1]
            i += 1
        cap.release()
    if i != n:
        raise FrameCodecError(f"framecodec.decode (OpenCV): got {i} frames, expected {n}")
    return out
