"""Tests of Tools/official's own code (no JAX needed): python3 -m pytest -q Tools/official

- budget_search: etok's two searches in Python, on synthetic error curves, against a brute-force
  answer (the smallest passing count).
- to_official + Tools/convert_official.py (run as a command; CONVERT overrides its path): the
  bundled model goes round the loop with bit-identical tensors, in both layouts.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import budget_search  # noqa: E402

CURVES = [(a, s) for a in (0.5, 2.0, 8.0) for s in (-0.4, -0.8, -1.3)]


def curve(a, s):
    """A monotone falling MSE curve with the shape of the default model's (power law)."""
    return lambda n: a * n ** s


@pytest.mark.parametrize("a,s", CURVES)
@pytest.mark.parametrize("threshold", [0.004, 0.0166, 0.05])
def test_binary_finds_smallest_passing_count(a, s, threshold):
    f = curve(a, s)
    want = next((n for n in range(16, 257) if f(n) <= threshold), 256)
    got, passes = budget_search.choose("binary", threshold, 16, 256, f)
    assert got == want
    assert passes <= math.ceil(math.log2(256 - 16 + 2)) + 1


@pytest.mark.parametrize("a,s", CURVES)
@pytest.mark.parametrize("threshold", [0.004, 0.0166, 0.05])
@pytest.mark.parametrize("hint", [None, 16, 100, 256])
def test_fast_stays_within_tolerance_above_the_answer(a, s, threshold, hint):
    f = curve(a, s)
    exact = next((n for n in range(16, 257) if f(n) <= threshold), None)
    got, _ = budget_search.choose("fast", threshold, 16, 256, f, hint=hint)
    if exact is None:
        assert got == 256
    else:
        assert f(got) <= threshold
        assert exact <= got <= exact + math.floor(0.04 * got) + 1


def test_adopt_reports_the_answer_last():
    seen = []
    got, _ = budget_search.choose("fast", 0.0166, 16, 256, curve(2.0, -0.8), adopt=seen.append, hint=64)
    assert seen and seen[-1] == got


def _safetensors_tensors(path):
    import json
    import struct
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    h = json.loads(blob[8:8 + n])
    h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], blob[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in h.items()}


@pytest.mark.parametrize("layout", ["stacked", "per_layer"])
def test_round_trip_is_bit_identical(tmp_path, layout):
    model = os.path.join(ROOT, "Sources/EtokTokenizer/Resources/default.safetensors")
    convert = os.environ.get("CONVERT", os.path.join(ROOT, "Tools/convert_official.py"))
    if not os.path.exists(convert):
        pytest.skip(f"{convert} missing (set CONVERT)")
    ckpt, cfg, back = tmp_path / "m.params", tmp_path / "m.json", tmp_path / "back.safetensors"
    subprocess.run([sys.executable, os.path.join(HERE, "to_official.py"), model, str(ckpt),
                    "--config-out", str(cfg), "--layout", layout], check=True, capture_output=True)
    subprocess.run([sys.executable, convert, str(ckpt), str(back), "--config", str(cfg),
                    "--dtype", "float16"], check=True, capture_output=True)
    a, b = _safetensors_tensors(model), _safetensors_tensors(str(back))
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k], k


def test_bad_model_file_is_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    r = subprocess.run([sys.executable, os.path.join(HERE, "to_official.py"), str(bad), str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and str(bad) in r.stderr
