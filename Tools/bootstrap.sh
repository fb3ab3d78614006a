#!/usr/bin/env bash
# Installs what etok needs on a Debian 12 machine, skipping what is already there. Idempotent.
#   Native: FFmpeg 5.1 (-dev libraries and the ffmpeg tool the tests use), OpenBLAS, pkg-config,
#   GNU time (the tests measure a child's peak memory with it).
#   Python (the package in python/ and its tools, etok-tools: reference model, training, converter,
#   their tests): torch (CPU), numpy, safetensors, msgpack, pytest. The etok binary never needs
#   Python. The package itself is not installed: `make test` finds it with PYTHONPATH=python.
set -euo pipefail

apt_pkgs=(libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libopenblas-dev pkg-config ffmpeg time)
missing=()
for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "bootstrap: installing ${missing[*]}" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v swift >/dev/null; then
    echo "bootstrap: Swift 6 is required (https://www.swift.org/install); 'swift' is not on PATH" >&2
    exit 1
fi

if [ "${ETOK_SKIP_PYTHON:-0}" != 1 ]; then
    py_missing=()
    python3 -c "import torch" 2>/dev/null || py_missing+=("torch==2.13.0+cpu")
    for m in numpy safetensors msgpack pytest; do
        python3 -c "import $m" 2>/dev/null || py_missing+=("$m")
    done
    if ((${#py_missing[@]})); then
        echo "bootstrap: pip installing ${py_missing[*]}" >&2
        # torch's CPU wheel comes from the machine's local wheel cache (PIP_FIND_LINKS), not the
        # 3 GB CUDA build from PyPI.
        python3 -m pip install -q --disable-pip-version-check "${py_missing[@]}"
    fi
    # Ray Data: an optional dependency of python/ (etok.ray), whose test runs on a local instance.
    # Optional here too: without it that one test is skipped.
    if ! python3 -c "import ray.data" 2>/dev/null; then
        echo "bootstrap: pip installing ray[data]" >&2
        python3 -m pip install -q --disable-pip-version-check "ray[data]==2.60.0" \
            || echo "bootstrap: ray[data] could not be installed; python/tests/test_ray.py will be skipped" >&2
    fi
fi
echo "bootstrap: ok" >&2
