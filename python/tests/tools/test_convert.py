"""Tests of etok-tools convert and the official checkpoint format (reference/official_format).

Checkpoints are written by our own writer in the byte format flax/tux use; one test pins those
bytes against a hand-assembled msgpack encoding so the writer and reader cannot drift together.

Run: python3 -m pytest python/tests/tools -q
"""

import json
import os

import msgpack
import numpy as np
import pytest
import torch

from etok.tools import convert as convert_official
from etok.tools.reference.config import ConfigError, ElasticTokConfig
from etok.tools.reference.model import ElasticTok, state_to_flat
from etok.tools.reference.official_format import (CheckpointError, decode_value, encode_value,
                                       f32_to_bf16_bits, official_shapes, read_checkpoint,
                                       write_checkpoint)
from etok.tools.common import ROOT
from etok.tools.reference.safetensors_io import load, load_flat

FIXTURES = ROOT / "Tests" / "EtokModelTests" / "Fixtures"


def tiny_cfg(**kw):
    d = dict(hidden_size=16, intermediate_size=24, num_encoder_layers=2, num_decoder_layers=3,
             num_attention_heads=2, patch_size=(1, 4, 4), frames_per_block=1, min_toks=2,
             max_toks=4, max_sequence_length=8, etok_image_size=(8, 8))
    d.update(kw)
    return ElasticTokConfig(**d)


@pytest.fixture()
def setup(tmp_path):
    cfg = tiny_cfg()
    g = torch.Generator().manual_seed(0)
    m = ElasticTok(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    flat = {k: v.numpy().copy() for k, v in state_to_flat(m).items()}
    cfg_path = tmp_path / "config.json"
    # Official fields only: what a user writes for an official checkpoint.
    cfg_path.write_text(json.dumps({k: v for k, v in cfg.to_dict().items()
                                    if not k.startswith("etok_")} | {"etok_image_size": [8, 8]}))
    return cfg, flat, str(cfg_path), tmp_path


def test_value_bytes_are_flax_to_bytes_layout():
    a = np.array([[1.0, -2.0]], dtype=np.float32)
    raw = a.tobytes()
    # fixarray(3) [ fixarray(2) [1, 2], fixstr "float32", bin8 len 8 raw ]
    inner = b"\x93" + b"\x92\x01\x02" + b"\xa7float32" + b"\xc4\x08" + raw
    expect = b"\xc7" + bytes([len(inner)]) + b"\x01" + inner  # ext8, type 1
    assert encode_value(a) == expect
    assert np.array_equal(decode_value(expect, "t"), a)


def test_decodes_npscalar_chunked_and_bfloat16_values():
    inner = msgpack.packb(((), "float32", np.float32(2.5).tobytes()), use_bin_type=True)
    assert decode_value(msgpack.packb(msgpack.ExtType(3, inner)), "s") == np.float32(2.5)
    a = np.arange(10, dtype=np.float32).reshape(2, 5)

    def ext(x):
        return msgpack.ExtType(1, msgpack.packb((x.shape, "float32", x.tobytes()), use_bin_type=True))

    chunked = {"__msgpack_chunked_array__": True, "shape": {"0": 2, "1": 5},
               "chunks": {"0": ext(a.reshape(-1)[:7]), "1": ext(a.reshape(-1)[7:])}}
    assert np.array_equal(decode_value(msgpack.packb(chunked, use_bin_type=True), "c"), a)
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    got = decode_value(encode_value(x, "bfloat16"), "b")
    assert np.array_equal(got, torch.from_numpy(x).bfloat16().float().numpy())
    assert np.array_equal(f32_to_bf16_bits(x), torch.from_numpy(x).bfloat16().view(torch.int16)
                          .numpy().view(np.uint16))


@pytest.mark.parametrize("layout", ["per_layer", "stacked"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_converts_both_layouts_exactly(setup, layout, dtype, tool):
    cfg, flat, cfg_path, tmp = setup
    ck, out = str(tmp / "ck"), str(tmp / "out.safetensors")
    write_checkpoint(ck, flat, cfg, layout)
    r = tool("convert", ck, out, "--config", cfg_path, "--dtype", dtype)
    assert r.returncode == 0, r.stderr
    for name in official_shapes(cfg):
        assert name in r.stdout  # every tensor written is printed
    cfg2, got, meta = load_flat(out)
    assert cfg2 == cfg and meta["format"] == "etok-elastictok"
    for k, v in flat.items():
        want = torch.from_numpy(v).to(getattr(torch, dtype))
        assert got[k].dtype == want.dtype and torch.equal(got[k], want), k
    load(out)  # the reference model accepts it


def test_stacked_file_really_is_stacked(setup):
    cfg, flat, _, tmp = setup
    ck = str(tmp / "ck")
    write_checkpoint(ck, flat, cfg, "stacked")
    with open(ck, "rb") as f:
        keys = {tuple(k): v for k, v in msgpack.Unpacker(f, raw=False)}
    key = ("decoder", "decoder_blocks", "scan_decoder", "feed_forward", "w2", "kernel")
    assert key in keys and decode_value(keys[key], "k").shape == (3, 24, 16)
    assert not any(k[:2] == ("decoder", "decoder_blocks") and k[2].isdigit() for k in keys)
    per_layer = read_checkpoint(ck, cfg)
    for i in range(3):
        name = f"params/decoder/decoder_blocks/{i}/feed_forward/w2/kernel"
        assert np.array_equal(per_layer[name], flat[name])


def _convert_error(ck, out, cfg_path):
    with pytest.raises((CheckpointError, ConfigError)) as e:
        convert_official.convert(ck, out, cfg_path, log=lambda *_: None)
    assert not os.path.exists(out)  # nothing half-written
    return str(e.value)


def test_unknown_missing_duplicate_and_misshapen_tensors_are_named(setup):
    cfg, flat, cfg_path, tmp = setup
    ck, out = str(tmp / "ck"), str(tmp / "out.safetensors")
    write_checkpoint(ck, flat, cfg, extra={"params/encoder/bogus/kernel": np.zeros(3, np.float32)})
    assert "unknown tensor params/encoder/bogus/kernel" in _convert_error(ck, out, cfg_path)
    write_checkpoint(ck, {k: v for k, v in flat.items() if k != "params/decoder/ln_f/kernel"}, cfg)
    assert "missing tensor params/decoder/ln_f/kernel" in _convert_error(ck, out, cfg_path)
    name = "params/encoder/encoder_blocks/1/attention/wq/kernel"
    write_checkpoint(ck, {**flat, name: np.zeros((16, 8), np.float32)}, cfg)
    msg = _convert_error(ck, out, cfg_path)
    assert name in msg and "(16, 8)" in msg
    write_checkpoint(ck, flat, cfg, extra={name: flat[name]})
    assert f"{name} appears twice" in _convert_error(ck, out, cfg_path)


def test_stacked_layer_count_mismatch_is_an_error(setup):
    cfg, flat, cfg_path, tmp = setup
    ck, out = str(tmp / "ck"), str(tmp / "out.safetensors")
    write_checkpoint(ck, flat, cfg, "stacked")
    wrong = tmp / "wrong.json"
    d = json.loads(open(cfg_path).read())
    d["num_decoder_layers"] = 2
    wrong.write_text(json.dumps(d))
    msg = _convert_error(ck, out, str(wrong))
    assert "params/decoder/decoder_blocks/scan_decoder/" in msg and "2 layers" in msg


def test_bad_files_and_configs_are_one_line_errors(setup):
    cfg, flat, cfg_path, tmp = setup
    out = str(tmp / "out.safetensors")
    empty = tmp / "empty"
    empty.write_bytes(b"")
    assert "no records" in _convert_error(str(empty), out, cfg_path)
    junk = tmp / "junk"
    junk.write_bytes(b"\x92\xc1\xc1")  # 0xc1 is never valid msgpack
    assert "junk" in _convert_error(str(junk), out, cfg_path)
    notrec = tmp / "notrec"
    notrec.write_bytes(msgpack.packb({"a": 1}))
    assert "not a [key, value] pair" in _convert_error(str(notrec), out, cfg_path)
    ck = str(tmp / "ck")
    write_checkpoint(ck, flat, cfg)
    badcfg = tmp / "bad.json"
    badcfg.write_text("{")
    assert "not JSON" in _convert_error(ck, out, str(badcfg))
    d = json.loads(open(cfg_path).read())
    del d["hidden_size"]
    badcfg.write_text(json.dumps(d))
    assert "hidden_size" in _convert_error(ck, out, str(badcfg))
    assert "cannot open" in _convert_error(str(tmp / "nope"), out, cfg_path)


def test_cli_exit_codes(setup, tool):
    cfg, flat, cfg_path, tmp = setup
    ck, out = str(tmp / "ck"), str(tmp / "out.safetensors")
    write_checkpoint(ck, {k: v for k, v in flat.items() if "ln_f" not in k}, cfg)
    r = tool("convert", ck, out, "--config", cfg_path)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "missing tensor" in r.stderr
    r = tool("convert", ck)
    assert r.returncode == 2 and "usage: etok-tools convert" in r.stderr


def test_committed_official_fixtures_convert_to_the_fixture_model():
    fix = str(FIXTURES)
    cfg_path = os.path.join(fix, "official_tiny_config.json")
    _, ref = load(os.path.join(fix, "fsq_tiny_f32.safetensors"))
    cfg = ElasticTokConfig.from_json(open(cfg_path).read())
    want = {k: v.numpy() for k, v in state_to_flat(ref).items()}
    for f in ("official_tiny_per_layer.msgpack", "official_tiny_stacked.msgpack"):
        got = read_checkpoint(os.path.join(fix, f), cfg)
        assert got.keys() == want.keys()
        assert all(np.array_equal(got[k], want[k]) for k in want), f
