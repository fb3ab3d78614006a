"""etok-tools make-random-official: an official-format checkpoint of a config's exact shapes, which
the converter accepts (so the 200M benchmark measures the path a user takes)."""

import json
import os

import numpy as np

from etok.tools import convert as convert_official
from etok.tools import make_random_official
from etok.tools.common import ROOT
from etok.tools.reference.config import ElasticTokConfig
from etok.tools.reference.official_format import official_shapes

CONFIGS = os.path.join(ROOT, "configs")


def test_official_configs_parse_to_the_papers_models():
    fsq = ElasticTokConfig.from_dict(json.load(open(os.path.join(CONFIGS, "ElasticTok-FSQ.json"))))
    vae = ElasticTokConfig.from_dict(json.load(open(os.path.join(CONFIGS, "ElasticTok-VAE.json"))))
    assert fsq.image_size == (256, 256) and fsq.context_blocks == 4 and fsq.max_toks == 4096
    assert vae.image_size == (256, 256) and vae.context_blocks == 4 and vae.code_dim == 8
    n = sum(int(np.prod(s)) for s in official_shapes(fsq).values())
    assert n == 210_165_760


def test_random_checkpoint_converts(tmp_path):
    cfg = ElasticTokConfig.etok_default()
    cfg_path = tmp_path / "c.json"
    cfg_path.write_text(json.dumps(cfg.to_dict()))
    ck, out = tmp_path / "p.msgpack", tmp_path / "m.safetensors"
    assert make_random_official.main([str(cfg_path), str(ck), "--seed", "3"]) == 0
    flat = convert_official.convert(str(ck), str(out), str(cfg_path), log=lambda *_: None)
    assert {k: tuple(v.shape) for k, v in flat.items()} == official_shapes(cfg)
    norm = flat["params/encoder/ln_f/kernel"]
    assert np.all(norm == 1)
    w = flat["params/encoder/in_proj/kernel"]
    assert 0.015 < float(np.std(w)) < 0.025
