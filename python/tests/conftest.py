"""Shared fixtures: the etok command (built by `make test-python`), the tiny test models of
Tests/EtokModelTests/Fixtures, and short clips. Everything here runs the CLI, the reference the
Python package must equal bit for bit."""
import os
import shutil
import subprocess

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "Tests", "EtokModelTests", "Fixtures")
FSQ = os.path.join(FIXTURES, "fsq_tiny_f32.safetensors")
VAE = os.path.join(FIXTURES, "vae_tiny_f32.safetensors")
SAMPLE = os.path.join(ROOT, "Samples", "bikes.mp4")

# Same OpenBLAS kernels in this process and in the etok command (the Makefile sets it too).
os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")


def cli_path() -> str:
    """The etok command: ETOK_CLI, else the build folder the library comes from, else release/debug."""
    if os.environ.get("ETOK_CLI"):
        return os.environ["ETOK_CLI"]
    for config in ("release", "debug"):
        path = os.path.join(ROOT, ".build", config, "etok")
        if os.path.isfile(path):
            return path
    pytest.fail("the etok command is not built: run `make test-python` (or swift build --product etok)")


def run(*args, check=True):
    """Runs `etok ARGS` quietly; returns the CompletedProcess."""
    result = subprocess.run([cli_path(), *map(str, args)], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"etok {' '.join(map(str, args))} exited {result.returncode}: {result.stderr}")
    return result


def export(path, folder, *extra) -> dict:
    """`etok export PATH --format npy` read back as arrays."""
    run("export", path, "--format", "npy", "-o", folder, "-q", "-y", *extra)
    return {name: np.load(os.path.join(folder, name + ".npy")) for name in
            ("lengths", "tokens", "pts", "blocks", "frames", "chunks")}


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("etok")


@pytest.fixture(scope="session")
def clip(work) -> str:
    """A 12-frame lossless clip of the bundled sample."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    path = str(work / "clip.mkv")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", SAMPLE, "-frames:v", "12", "-c:v", "ffv1", path], check=True)
    return path


@pytest.fixture(scope="session")
def streams(work, clip) -> dict:
    """Test streams made by the CLI: FSQ (adaptive, chunks of 3), FSQ fixed, VAE (4 frames a block)."""
    out = {}
    for name, args in {"fsq": ["--model", FSQ, "--psnr", "7.5", "--chunk", "3"],
                       "fsq_fixed": ["--model", FSQ, "--fixed", "9"],
                       "vae": ["--model", VAE, "--psnr", "8.2"]}.items():
        path = str(work / f"{name}.etok")
        run("encode", clip, "-o", path, "-q", "-y", *args)
        out[name] = path
    return out
