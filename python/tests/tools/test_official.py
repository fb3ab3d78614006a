"""Tests of etok.tools.official, the side by side with the official JAX code (no JAX needed):

- search: etok's two searches in Python, on synthetic error curves, against a brute-force answer
  (the smallest passing count).
- `etok-tools official to-official` then `etok-tools convert`: the bundled model goes round the
  loop with bit-identical tensors, in both layouts, and `official same-tensors` agrees.
"""

from __future__ import annotations

import ast
import json
import math
import struct
from pathlib import Path

import pytest

from etok.tools.common import ROOT
from etok.tools.official import search

MODEL = ROOT / "Sources/EtokTokenizer/Resources/default.safetensors"
CURVES = [(a, s) for a in (0.5, 2.0, 8.0) for s in (-0.4, -0.8, -1.3)]


def curve(a, s):
    """A monotone falling MSE curve with the shape of the default model's (power law)."""
    return lambda n: a * n ** s


@pytest.mark.parametrize("a,s", CURVES)
@pytest.mark.parametrize("threshold", [0.004, 0.0166, 0.05])
def test_binary_finds_smallest_passing_count(a, s, threshold):
    f = curve(a, s)
    want = next((n for n in range(16, 257) if f(n) <= threshold), 256)
    got, passes = search.choose("binary", threshold, 16, 256, f)
    assert got == want
    assert passes <= math.ceil(math.log2(256 - 16 + 2)) + 1


@pytest.mark.parametrize("a,s", CURVES)
@pytest.mark.parametrize("threshold", [0.004, 0.0166, 0.05])
@pytest.mark.parametrize("hint", [None, 16, 100, 256])
def test_fast_stays_within_tolerance_above_the_answer(a, s, threshold, hint):
    f = curve(a, s)
    exact = next((n for n in range(16, 257) if f(n) <= threshold), None)
    got, _ = search.choose("fast", threshold, 16, 256, f, hint=hint)
    if exact is None:
        assert got == 256
    else:
        assert f(got) <= threshold
        assert exact <= got <= exact + math.floor(0.04 * got) + 1


def test_adopt_reports_the_answer_last():
    seen = []
    got, _ = search.choose("fast", 0.0166, 16, 256, curve(2.0, -0.8), adopt=seen.append, hint=64)
    assert seen and seen[-1] == got


def _safetensors_tensors(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    h = json.loads(blob[8:8 + n])
    h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], blob[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in h.items()}


@pytest.mark.parametrize("layout", ["stacked", "per_layer"])
def test_round_trip_is_bit_identical(tool, tmp_path, layout):
    ckpt, cfg, back = tmp_path / "m.params", tmp_path / "m.json", tmp_path / "back.safetensors"
    tool("official", "to-official", MODEL, ckpt, "--config-out", cfg, "--layout", layout, check=True)
    tool("convert", ckpt, back, "--config", cfg, "--dtype", "float16", check=True)
    a, b = _safetensors_tensors(MODEL), _safetensors_tensors(back)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k], k
    assert tool("official", "same-tensors", MODEL, back).returncode == 0
    # One changed byte in the last tensor's data: same-tensors must see it.
    blob = bytearray(back.read_bytes())
    blob[-1] ^= 1
    back.write_bytes(bytes(blob))
    r = tool("official", "same-tensors", MODEL, back)
    assert r.returncode == 1 and "differ" in r.stdout


def test_bad_model_file_is_one_line_and_exit_1(tool, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    r = tool("official", "to-official", bad, tmp_path / "o")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and str(bad) in r.stderr


def test_run_imports_of_etok_only_the_search():
    """run.py executes in the JAX venv: of etok it may import only .search (no C library, no torch)."""
    tree = ast.parse(Path(search.__file__).with_name("run.py").read_text())
    ours = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                ours.add(node.module)
            else:
                assert node.module.split(".")[0] not in ("etok", "torch"), node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] not in ("etok", "torch"), alias.name
    assert ours == {"search"}
