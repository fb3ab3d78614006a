"""What several tools share: where the etok checkout is, its release `etok` binary, the shipped
model, frames as `etok encode` sees them and one `etok encode --stats` run. numpy only (no torch),
so the light tools and the dispatcher stay light."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def repo_root() -> Path:
    """The etok checkout the tools work in: $ETOK_REPO; else the checkout this package sits in
    (python/etok/tools/ in it, as with `pip install -e ./python` or PYTHONPATH=python); else the
    nearest folder above the working directory with etok's Package.swift and Samples/."""
    if os.environ.get("ETOK_REPO"):
        return Path(os.environ["ETOK_REPO"]).resolve()
    here = Path(__file__).resolve()
    for folder in [here.parents[3], *Path.cwd().resolve().parents, Path.cwd().resolve()]:
        if (folder / "Package.swift").is_file() and (folder / "Sources" / "EtokTokenizer").is_dir():
            return folder
    return here.parents[3]


ROOT = repo_root()
SHIPPED = ROOT / "Sources" / "EtokTokenizer" / "Resources" / "default.safetensors"
SAMPLES = (ROOT / "Samples" / "bikes.mp4", ROOT / "Samples" / "carphone_pristine.mp4")


def release_etok(build: bool = False) -> Path | None:
    """`swift build -c release --show-bin-path`/etok; with `build`, builds the product first (and
    raises CalledProcessError if that fails). None when it is not built or swift is missing."""
    run = dict(cwd=ROOT, check=True, capture_output=True, text=True)
    try:
        if build:
            subprocess.run(["swift", "build", "-c", "release", "--product", "etok"], **run)
        bin_dir = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], **run).stdout.strip()
    except OSError:
        return None
    except subprocess.CalledProcessError:
        if build:
            raise
        return None
    path = Path(bin_dir) / "etok"
    return path if path.exists() else None


def etok_binary() -> str | None:
    """The release build's etok, if it has been built (its preprocessing is the one to calibrate on)."""
    path = release_etok()
    return str(path) if path else None


def frames_of(clip: str, size: int, etok: str | None = None) -> np.ndarray:
    """uint8 (T, size, size, 3) as `etok encode` sees them: `etok preview` (sample aspect ratio,
    colour matrix and range honoured, shortest side scaled to `size`, centre crop). Without an etok
    binary: the same chain in ffmpeg (its colour conversion differs by a few levels)."""
    if etok:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "frames.rgb"  # raw RGB24, exactly the encoder's input
            subprocess.run([etok, "preview", clip, "--model-size", f"{size}x{size}", "-q", "-o", str(out)],
                           check=True, capture_output=True)
            raw = out.read_bytes()
    else:
        vf = (f"scale=iw*sar:ih,setsar=1,scale={size}:{size}:force_original_aspect_ratio=increase:"
              f"flags=bicubic,crop={size}:{size}")
        raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", clip, "-vf", vf, "-fps_mode", "passthrough",
                              "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, size, size, 3)


def encode_stats(etok: str, clip: str, tmp: Path, args: list) -> dict:
    """One `etok encode CLIP ARGS --stats` into `tmp`; its --stats JSON."""
    stats = tmp / "stats.json"
    subprocess.run([etok, "encode", clip, "-o", str(tmp / "out.etok"), "-y", "-q", "--stats", str(stats)] + args,
                   check=True)
    return json.loads(stats.read_text())


def main(argv=None) -> int:
    """`etok-tools release [--build]`: prints the release etok binary's path (building it first
    with --build); exit 1 when there is none."""
    ap = argparse.ArgumentParser(prog="etok-tools release", description=main.__doc__)
    ap.add_argument("--build", action="store_true", help="swift build -c release --product etok first")
    args = ap.parse_args(argv)
    path = release_etok(build=args.build)
    if path is None:
        print(f"etok-tools release: no release etok under {ROOT} (run with --build, or swift build -c release)",
              file=sys.stderr)
        return 1
    print(path)
    return 0
