"""etok-tools calibrate: the threshold lands in the metadata, is the requested quantile of the
full-budget errors, and leaves every tensor as it was."""
import json
import shutil
import struct

import numpy as np
import pytest

from etok.tools import calibrate
from etok.tools.common import ROOT, etok_binary, frames_of
from etok.tools.reference.safetensors_io import load, load_flat

FIXTURES = ROOT / "Tests" / "EtokModelTests" / "Fixtures"

FIXTURE = FIXTURES / "fsq_tiny_f16.safetensors"


def metadata(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))["__metadata__"]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg tool")
def test_calibration_writes_the_quantile_and_keeps_the_weights(tmp_path, tool):

    model_path = tmp_path / "m.safetensors"
    shutil.copy(FIXTURE, model_path)
    clip = str(ROOT / "Samples/carphone_pristine.mp4")
    tool("calibrate", model_path, "--clips", clip, "--quantile", "0.8", "--fraction", "0.5", check=True)
    threshold = float(metadata(model_path)["etok_threshold"])

    cfg, model = load(str(FIXTURE))
    frames = frames_of(clip, cfg.image_size[0], etok_binary())  # as calibrate does
    errors = calibrate.full_budget_errors(model, cfg, frames)
    assert len(errors) == 120
    partial = calibrate.full_budget_errors(model, cfg, frames, kept=cfg.max_toks // 2)
    # The larger of: the 0.8 quantile at full budget, the median at half the budget.
    expected = max(np.quantile(errors, 0.8), np.median(partial))
    assert threshold == pytest.approx(expected, rel=1e-5)
    assert np.mean(errors <= threshold * (1 + 1e-5)) >= 0.8

    _, before, _ = load_flat(str(FIXTURE))
    _, after, _ = load_flat(str(model_path))
    assert before.keys() == after.keys()
    for k in before:
        assert before[k].dtype == after[k].dtype and bool((before[k] == after[k]).all()), k


def test_held_out_clip_is_refused(tmp_path, tool):
    r = tool("calibrate", FIXTURE, "--clips", ROOT / "Samples/bikes.mp4")
    assert r.returncode == 2 and "held-out" in r.stderr


def test_spread_takes_evenly_spaced_whole_chunks():
    frames = np.arange(100)[:, None, None, None].repeat(2, 1)
    out = calibrate.spread(frames, 4, 40)
    assert len(out) == 40
    firsts = out[::4, 0, 0, 0]
    assert firsts[0] == 0 and firsts[-1] == 96  # first and last chunk
    assert all(f % 4 == 0 for f in firsts)      # whole chunks, chunk-aligned
    assert all((out[i:i + 4, 0, 0, 0] == np.arange(firsts[i // 4], firsts[i // 4] + 4)).all()
               for i in range(0, 40, 4))
    assert len(calibrate.spread(frames[:20], 4, 40)) == 20  # short clips stay whole
