"""Where the release build's `etok` binary is, for the Python tools (benchmarks, calibration)."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
