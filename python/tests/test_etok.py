"""The Python package against the etok command: reading equals `etok export`, encoding and
decoding equal `etok encode` and `etok decode` bit for bit, and bad input is an EtokError."""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

import etok
from conftest import FSQ, VAE, export, run


def assert_same_as_export(f, exported):
    assert np.array_equal(f.lengths, exported["lengths"])
    assert f.tokens.dtype == exported["tokens"].dtype
    assert np.array_equal(f.tokens, exported["tokens"])
    assert np.array_equal(f.times, exported["pts"])
    assert np.array_equal(f.indices, exported["blocks"])
    assert np.array_equal(f.frames, exported["frames"])
    assert np.array_equal(f.chunks, exported["chunks"])
    # Per block, through indexing and iteration.
    split = np.split(exported["tokens"], np.cumsum(exported["lengths"])[:-1])
    for block, expected in zip(f, split):
        assert np.array_equal(block.tokens, expected)
    assert [b.kept for b in f[::2]] == list(exported["lengths"][::2])


@pytest.mark.parametrize("name", ["fsq", "fsq_fixed", "vae"])
def test_tokens_read_in_python_equal_etok_export(name, streams, tmp_path):
    f = etok.open(streams[name])
    assert_same_as_export(f, export(streams[name], tmp_path / "npy"))
    assert len(f) > 1
    model = VAE if name == "vae" else FSQ
    assert f.sha256 == hashlib.sha256(open(model, "rb").read()).hexdigest()
    assert f.model == os.path.splitext(os.path.basename(model))[0]
    assert f.bottleneck == ("vae" if name == "vae" else "fsq")
    assert f.frames_per_block == (4 if name == "vae" else 1)
    assert int(f.frames.sum()) == 12
    assert all(b.mse is not None and b.mse > 0 for b in f)
    if name == "vae":
        assert f.tokens.ndim == 2 and f.tokens.dtype == np.float32
    if name == "fsq":
        assert len(set(f.lengths.tolist())) > 1, "the adaptive stream should keep different counts"
        assert f.chunks.tolist() == [3 * (i // 3) for i in range(12)]


def test_seek_by_time_finds_the_block_showing_it(streams):
    f = etok.open(streams["fsq"])
    for k in range(len(f)):
        assert f.seek(f.times[k]) == k
        if k + 1 < len(f):
            assert f.seek((f.times[k] + f.times[k + 1]) / 2) == k
    assert f.seek(-5.0) == 0
    assert f.seek(1e9) == len(f) - 1
    assert f.at(f.times[4]).index == 4
    f.close()
    assert f.seek(f.times[4]) == 4  # answered from the arrays once closed


def damaged_copy(path, out):
    """A copy with one byte flipped inside the second chunk record (docs/etok-format.md: CHNK)."""
    data = bytearray(open(path, "rb").read())
    starts = [i for i in range(len(data) - 3) if data[i:i + 4] == b"CHNK"]
    assert len(starts) >= 3, "the test stream should have several chunks"
    data[(starts[1] + starts[2]) // 2] ^= 0xFF
    open(out, "wb").write(bytes(data))
    return str(out)


def test_damaged_stream_is_an_error_unless_skip_damaged_which_equals_export(streams, tmp_path):
    broken = damaged_copy(streams["fsq"], tmp_path / "broken.etok")
    with pytest.raises(etok.EtokError) as error:
        etok.open(broken)
    assert error.value.code == 3 and "broken.etok" in str(error.value) and "skip_damaged" in str(error.value)
    assert run("export", broken, "-o", tmp_path / "x", "-q", check=False).returncode == 65
    with pytest.warns(UserWarning, match="skipped"):
        f = etok.open(broken, skip_damaged=True)
    assert f.damage and 0 < len(f) < 12
    assert_same_as_export(f, export(broken, tmp_path / "npy", "--skip-damaged"))


def test_truncated_stream_with_skip_damaged_equals_export(streams, tmp_path):
    data = open(streams["fsq"], "rb").read()
    starts = [i for i in range(len(data) - 3) if data[i:i + 4] == b"CHNK"]
    cut = tmp_path / "cut.etok"
    cut.write_bytes(data[: (starts[-2] + starts[-1]) // 2])   # inside the next-to-last chunk
    with pytest.raises(etok.EtokError):
        etok.open(cut)
    with pytest.warns(UserWarning):
        f = etok.open(cut, skip_damaged=True)
    assert_same_as_export(f, export(cut, tmp_path / "npy", "--skip-damaged"))


def test_bad_input_is_an_etok_error_naming_the_file(tmp_path, clip):
    with pytest.raises(etok.EtokError) as missing:
        etok.open(tmp_path / "missing.etok")
    assert missing.value.code == 2 and "missing.etok" in str(missing.value)
    with pytest.raises(etok.EtokError) as junk:
        etok.open(clip)                       # a video, not an .etok
    assert junk.value.code == 3
    with pytest.raises(etok.EtokError) as both:
        etok.encode(clip, threshold=0.01, psnr=20, model=FSQ)
    assert both.value.code == 1 and "not both" in str(both.value)
    with pytest.raises(ValueError):
        etok.encode(np.zeros((2, 8, 8), np.uint8), model=FSQ)


@pytest.mark.parametrize("model,options", [(FSQ, dict(psnr=7.5, chunk=3)), (FSQ, dict(fixed=9)),
                                           (VAE, dict(psnr=8.2)), (VAE, dict(threshold=0.5))])
def test_encode_path_writes_the_clis_etok_and_decode_gives_its_frames(model, options, clip, tmp_path):
    flags = {"psnr": "--psnr", "chunk": "--chunk", "fixed": "--fixed", "threshold": "--threshold"}
    cli = tmp_path / "cli.etok"
    run("encode", clip, "-o", cli, "--model", model, "-q", *[a for k, v in options.items() for a in (flags[k], v)])
    ours = tmp_path / "python.etok"
    f = etok.encode(clip, model=model, output=ours, **options)
    assert ours.read_bytes() == cli.read_bytes()
    assert f.summary["frames"] == 12 and f.summary["tokens"] == int(f.lengths.sum())
    frames = etok.decode(ours, model=model)
    run("decode", cli, "-o", tmp_path / "cli.rgb", "--model", model, "-q")
    expected = np.fromfile(tmp_path / "cli.rgb", np.uint8)
    assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[0] == 12 and frames.shape[3] == 3
    assert np.array_equal(frames.reshape(-1), expected)


def test_encode_frames_equals_the_cli_on_the_same_raw_frames(clip, tmp_path):
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, size=(5, 24, 40, 3), dtype=np.uint8)
    frames[2:] = frames[1]                       # a static stretch: fewer tokens there
    raw = tmp_path / "frames.rgb"                # the name the header records, as for etok.encode(frames)
    frames.tofile(raw)
    cli = tmp_path / "cli.etok"
    run("encode", raw, "--input-format", "rawvideo", "--size", "40x24", "--rate", "10", "-o", cli,
        "--model", FSQ, "--psnr", "6", "-q")
    tokens = etok.encode(frames, rate=10, model=FSQ, psnr=6, output=tmp_path / "python.etok")
    assert (tmp_path / "python.etok").read_bytes() == cli.read_bytes()
    in_memory = etok.encode(frames, rate=10, model=FSQ, psnr=6)   # no output: a temporary file
    assert np.array_equal(in_memory.tokens, tokens.tokens) and in_memory.path is None
    assert np.allclose(tokens.times, np.arange(5) / 10)


def test_repeat_switch_equals_the_clis_default_and_no_repeat(tmp_path):
    rng = np.random.default_rng(8)
    frames = rng.integers(0, 256, size=(6, 24, 40, 3), dtype=np.uint8)
    frames[2:] = frames[1]                       # a static stretch: repeat blocks there by default
    raw = tmp_path / "frames.rgb"
    frames.tofile(raw)
    cli = {}
    for name, extra in {"default": [], "no_repeat": ["--no-repeat"]}.items():
        cli[name] = tmp_path / f"cli_{name}.etok"
        run("encode", raw, "--input-format", "rawvideo", "--size", "40x24", "--rate", "10", "-o", cli[name],
            "--model", FSQ, "--psnr", "6", "-q", *extra)
    on = etok.encode(frames, rate=10, model=FSQ, psnr=6, output=tmp_path / "on.etok")
    off = etok.encode(frames, rate=10, model=FSQ, psnr=6, repeat=False, output=tmp_path / "off.etok")
    assert (tmp_path / "on.etok").read_bytes() == cli["default"].read_bytes()
    assert (tmp_path / "off.etok").read_bytes() == cli["no_repeat"].read_bytes()
    assert (on.lengths == 0).sum() >= 3 and (off.lengths > 0).all()
    with etok.Model(FSQ) as m:                   # the same switch on an open model
        again = m.encode(frames, rate=10, psnr=6, repeat=False, output=tmp_path / "again.etok")
    assert (tmp_path / "again.etok").read_bytes() == cli["no_repeat"].read_bytes()
    assert np.array_equal(again.lengths, off.lengths)


def test_rate_control_equals_the_clis_and_bad_options_are_refused(tmp_path):
    rng = np.random.default_rng(9)
    frames = rng.integers(0, 256, size=(9, 24, 40, 3), dtype=np.uint8)
    frames[5:] = frames[4]                       # a static stretch: where repeats may pay
    raw = tmp_path / "frames.rgb"
    frames.tofile(raw)
    modes = {"rate": (["--tokens-per-second", "50"], dict(tokens_per_second=50)),
             "budget": (["--budget", "40", "--max-tokens-per-chunk", "20", "--rate-objective", "psnr"],
                        dict(budget=40, max_tokens_per_chunk=20, rate_objective="psnr")),
             "cap": (["--psnr", "60", "--max-tokens-per-chunk", "8", "--no-repeat"],
                     dict(psnr=60, max_tokens_per_chunk=8, repeat=False))}
    for name, (flags, options) in modes.items():
        cli = tmp_path / f"cli_{name}.etok"
        run("encode", raw, "--input-format", "rawvideo", "--size", "40x24", "--rate", "10", "-o", cli,
            "--model", FSQ, "-q", *flags)
        mine = etok.encode(frames, rate=10, model=FSQ, output=tmp_path / f"py_{name}.etok", **options)
        assert (tmp_path / f"py_{name}.etok").read_bytes() == cli.read_bytes(), name
        assert mine.rate_control is not None and mine.summary["rate_control"]["achieved"] > 0, name
    assert etok.open(tmp_path / "py_rate.etok").rate_control["target"] == 50
    assert int(etok.open(tmp_path / "py_budget.etok").lengths.sum()) == 40
    for bad, words in [(dict(tokens_per_second=50, budget=40), "not both"), (dict(fixed=4, budget=40), "fixed"),
                       (dict(rate_objective="best"), "rate_objective"), (dict(budget=-1), "budget"),
                       (dict(budget=0), "budget"), (dict(tokens_per_second=0), "tokens_per_second"),
                       (dict(max_tokens_per_chunk=0), "max_tokens_per_chunk"), (dict(budget=40.5), "whole number"),
                       (dict(budget=True), "budget"), (dict(tokens_per_second="50"), "tokens_per_second"),
                       (dict(tokens_per_second=float("nan")), "tokens_per_second")]:
        with pytest.raises(etok.ArgumentError, match=words):
            etok.encode(frames, rate=10, model=FSQ, **bad)


def test_decode_to_a_file_and_skip_damaged(streams, tmp_path):
    summary = etok.decode(streams["fsq"], model=FSQ, output=tmp_path / "out.rgb")
    assert summary["frames"] == 12
    run("decode", streams["fsq"], "-o", tmp_path / "cli.rgb", "--model", FSQ, "-q")
    assert (tmp_path / "out.rgb").read_bytes() == (tmp_path / "cli.rgb").read_bytes()
    broken = damaged_copy(streams["fsq"], tmp_path / "broken.etok")
    with pytest.raises(etok.EtokError):
        etok.decode(broken, model=FSQ)
    frames = etok.decode(broken, model=FSQ, skip_damaged=True)
    run("decode", broken, "-o", tmp_path / "skip.rgb", "--model", FSQ, "--skip-damaged", "-q")
    assert np.array_equal(frames.reshape(-1), np.fromfile(tmp_path / "skip.rgb", np.uint8))
    assert 0 < len(frames) < 12


def test_a_missing_library_says_how_to_build_it(tmp_path):
    code = ("import etok\ntry:\n    etok.open('x.etok')\nexcept etok.LibraryNotFound as e:\n    print(e)\n")
    env = dict(os.environ, ETOK_LIBRARY=str(tmp_path / "nowhere.so"))
    # A copy of the package away from the checkout, so that no build folder is found either.
    package = tmp_path / "etok"
    package.mkdir()
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "etok")
    for name in os.listdir(here):
        if name.endswith(".py"):
            (package / name).write_bytes(open(os.path.join(here, name), "rb").read())
    env["PYTHONPATH"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert "swift build -c release --product etok_c" in out.stdout and "ETOK_LIBRARY" in out.stdout, out.stderr


def test_the_c_abi_refuses_bad_arguments_without_crashing(streams):
    from ctypes import byref, c_int64, c_void_p
    from etok import _lib
    lib = _lib.lib()
    handle = c_void_p()
    assert lib.etok_reader_open(None, 0, byref(handle)) == _lib.E_ARGUMENT and handle.value is None
    assert b"path is NULL" in lib.etok_last_error()
    assert lib.etok_reader_open(streams["fsq"].encode(), 0, None) == _lib.E_ARGUMENT
    assert lib.etok_reader_seek(None, 1.0) == -1 and lib.etok_reader_header_json(None) is None
    lib.etok_reader_close(None)
    lib.etok_frames_free(None)
    assert lib.etok_reader_open(streams["fsq"].encode(), 0, byref(handle)) == _lib.OK
    info = _lib.BlockInfo()
    assert lib.etok_reader_block(handle, 12, byref(info)) == _lib.E_ARGUMENT
    assert lib.etok_reader_block(handle, -1, byref(info)) == _lib.E_ARGUMENT
    assert lib.etok_reader_block(handle, 1, byref(info)) == _lib.OK and info.index == 1
    assert info.kept == etok.open(streams["fsq"]).lengths[1]
    small = np.zeros(1, np.int32)
    assert lib.etok_reader_copy_tokens(handle, 0, 2, small.ctypes.data_as(c_void_p), 1) == _lib.E_ARGUMENT
    assert b"needed" in lib.etok_last_error() and small[0] == 0
    assert lib.etok_reader_copy_tokens(handle, 5, 8, small.ctypes.data_as(c_void_p), 1) == _lib.E_ARGUMENT
    blocks = c_int64()
    assert lib.etok_reader_shape(handle, byref(blocks), None, None, None) == _lib.OK and blocks.value == 12
    lib.etok_reader_close(handle)
    assert lib.etok_encode_file(None, streams["fsq"].encode(), b"x.etok", None, None) == _lib.E_ARGUMENT
    assert b"model is NULL" in lib.etok_last_error()
    assert lib.etok_model_open(None, None) == _lib.E_ARGUMENT
    model = etok.Model(FSQ)
    m = model._handle
    assert lib.etok_encode_file(m, None, b"x.etok", None, None) == _lib.E_ARGUMENT
    assert lib.etok_encode_frames(m, None, 1, 8, 8, 25.0, b"x.etok", None, None) == _lib.E_ARGUMENT
    assert lib.etok_encode_frames(m, None, 0, 8, 8, 25.0, b"x.etok", None, None) == _lib.E_ARGUMENT
    assert lib.etok_decode_frames(m, streams["fsq"].encode(), None, None) == _lib.E_ARGUMENT
    assert lib.etok_decode_frames(None, streams["fsq"].encode(), None, None) == _lib.E_ARGUMENT
    lib.etok_model_close(None)
    model.close()
    with pytest.raises(ValueError, match="closed"):
        model.encode(streams["fsq"])



def test_repeat_blocks_read_as_kept_zero_with_no_tokens(tmp_path):
    """A 1.2 stream with repeat blocks (the fuzz corpus seed, made by MakeCorpus.swift): a repeat
    block is kept 0 with an empty token array, flagged ``repeat``; reading equals `etok export`."""
    path = os.path.join(os.path.dirname(FSQ), "..", "..", "..", "Tools", "fuzz", "corpus", "fsq-repeat-complete.etok")
    f = etok.open(path)
    assert f.repeat_blocks
    assert f.lengths.tolist() == [3, 0, 2, 0, 4]
    assert [b.repeat for b in f] == [False, True, False, True, False]
    assert f[1].tokens.shape == (0,) and f[3].tokens.size == 0
    assert f[2].tokens.tolist() == [1, 10]
    assert_same_as_export(f, export(path, tmp_path / "npy"))
    # Flattened for a language model, a repeat block is a separator right after the previous one.
    from etok import clips
    flat = clips.flatten({"key": "r", "tokens": f.tokens, "lengths": f.lengths}, separator=-1)
    assert flat.tolist() == [1, 2, 199, -1, -1, 1, 10, -1, -1, 7, 8, 9, 10, -1]
