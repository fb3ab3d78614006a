"""Runs the official ElasticTok JAX code (github.com/LargeWorldModel/ElasticTok with tux at 61c11e1)
on frames etok prepared, for the side-by-side in Tools/official/bench.sh. Our driver only: every
model computation is the official code's (elastic.model.ElasticTok, elastic.inference.
ElasticInference, tux.StreamingCheckpointer), imported through PYTHONPATH, set up as the
official scripts/inference.py sets it up (same config updates, mesh '!1,1,-1,1', fp32).

usage (in the JAX venv, PYTHONPATH=<etok>/python:ElasticTok:tux; Tools/official/bench.sh sets it):
  python -m etok.tools.official.run fixed  --config C.json --checkpoint P --frames F.npy --keep N --out DIR
      the official full forward (what ElasticInference._recon applies: ElasticTok.__call__) at N
      kept tokens per block (mask arange < N, as ElasticInference.encode), chunk by chunk;
      writes DIR/recon.npy (float32, L x patch_dim), DIR/codes.npy, DIR/recon_u8.npy (the
      official encode() then decode(), uint8 patches) and DIR/losses.npy (the cached
      _recon_with_mask per block, each block with its chunk's earlier blocks committed).
  python -m etok.tools.official.run search --config C.json --checkpoint P --frames F.npy --threshold T
                                          --alg official-binary|binary|fast --out R.json [--repeats K]
      official-binary: ElasticInference.inference_binary as is (the official search);
      binary / fast: etok's searches (etok.tools.official.search) driving the official cached forward
      (_recon_with_mask), committing the adopted pass's cache, then the official _recon for the
      chunk's tokens (as inference_binary ends). Writes per-block kept counts, per-chunk seconds
      (the first chunk twice: compile + run, then run), and a summary.
  python -m etok.tools.official.run pass   --config C.json --checkpoint P --context 0,3
      one encode+decode of a full block (all tokens kept) with K committed blocks of context,
      by the official _recon_with_mask (the cache filled by K commits first); seconds per pass,
      after one untimed run that compiles.
Frames F.npy: uint8 (T, H, W, 3) at the model's size, T a multiple of frames_per_block * blocks
per chunk (a short last chunk would compile again). Chunks: max_sequence_length / max_toks blocks.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
import types

import numpy as np

import jax
import jax.numpy as jnp
from tux import (JaxRNG, StreamingCheckpointer, make_shard_and_gather_fns,  # (official)
                 match_partition_rules, next_rng, set_random_seed)
from elastic.inference import ElasticInference  # (official)
from elastic.model import ElasticTok, ElasticTokConfig  # (official)

from .search import choose  # ours (stdlib only; the etok package's C library loads only when used)

# What scripts/run_inference_fsq.sh passes on top of the model's own fields.
SCRIPT_SETTINGS = dict(mask_type="elastic", use_flash_attention=True, scan_attention=True,
                       scan_query_chunk_size=512, scan_key_chunk_size=512, remat_attention="",
                       scan_mlp=True, scan_mlp_chunk_size=8192, remat_mlp="nothing_saveable",
                       remat_block="", scan_layers=True, param_scan_axis=0)
MESH_DIM = "!1,1,-1,1"
# The train-state shape the official checkpointer loads into (scripts/inference.py's State).
State = collections.namedtuple("State", ["params"])


class Official:
    """The official model, params and ElasticInference, set up as scripts/inference.py does."""

    def __init__(self, config_path: str, checkpoint: str, search_alg: str = "binary"):
        with open(config_path) as f:
            fields = {k: v for k, v in json.load(f).items() if not k.startswith("etok_")}
        set_random_seed(42)
        cfg = ElasticTokConfig(**{**fields, **SCRIPT_SETTINGS})
        cfg.update(dict(mesh_dim=MESH_DIM))
        self.cfg = cfg
        self.image_size = (json.load(open(config_path)).get("etok_image_size")
                           or [int(np.sqrt(cfg.max_toks // (cfg.frames_per_block // cfg.patch_size[0])))
                               * cfg.patch_size[1]] * 2)
        self.mesh = ElasticTokConfig.get_jax_mesh(MESH_DIM)
        node_info = ElasticTokConfig.get_ranks_and_size(self.mesh)
        self.model = model = ElasticTok(cfg, dtype=jnp.float32)
        L, pd = cfg.max_sequence_length, int(np.prod(cfg.patch_size)) * 3

        def init_fn(rng):
            return State(model.init(
                vision=jnp.zeros((1, L, pd), dtype=jnp.int32),
                encoding_mask=jnp.ones((1, L), dtype=bool),
                attention_mask=jnp.ones((1, L), dtype=bool),
                segment_ids=jnp.zeros((1, L), dtype=jnp.int32),
                position_ids=jnp.zeros((1, L), dtype=jnp.int32),
                rngs=JaxRNG(rng)(cfg.rng_keys())))

        shapes = jax.eval_shape(init_fn, next_rng())
        partition = match_partition_rules(
            ElasticTokConfig.get_partition_rules(cfg.scan_layers, cfg.param_scan_axis), shapes)
        shard_fns, _ = make_shard_and_gather_fns(partition, shapes)
        checkpointer = StreamingCheckpointer(StreamingCheckpointer.get_default_config(), None, enable=True)
        data_config = types.SimpleNamespace(elastic_config=cfg, resolution=self.image_size[0], fps=24)
        self.inference = ElasticInference(model, cfg, data_config, self.mesh, node_info,
                                          partition.params, search_alg)
        t = time.perf_counter()
        with self.mesh:
            self.params = checkpointer.load_trainstate_checkpoint(
                f"params::{checkpoint}", shapes, shard_fns)[1].unfreeze()
        self.load_s = time.perf_counter() - t
        self.block = cfg.max_toks
        self.chunk_blocks = cfg.max_sequence_length // cfg.max_toks

    # ------------------------------------------------------------------ data layout
    def blocks(self, frames: np.ndarray) -> list:
        """uint8 frames (T, H, W, 3) -> per block (max_toks, patch_dim) uint8, in the official
        token order (time patch, row, column; inside a patch t, y, x, channel)."""
        cfg = self.cfg
        fpb, (tp, hp, wp) = cfg.frames_per_block, cfg.patch_size
        T, H, W, C = frames.shape
        out = []
        for b in range(T // fpb):
            v = frames[b * fpb:(b + 1) * fpb].reshape(fpb // tp, tp, H // hp, hp, W // wp, wp, C)
            out.append(v.transpose(0, 2, 4, 1, 3, 5, 6).reshape(-1, tp * hp * wp * C))
        return out

    def batch(self, blocks: list) -> dict:
        """One chunk as scripts/inference.py's get_batch builds it."""
        n = len(blocks)
        b = dict(vision=np.concatenate(blocks, axis=0),
                 segment_ids=np.zeros((n * self.block,), np.int32),
                 attention_mask=np.ones((n * self.block,), bool),
                 position_ids=np.arange(n * self.block, dtype=np.int32))
        return {k: v[None] for k, v in b.items()}

    def chunks(self, frames: np.ndarray):
        bl = self.blocks(frames)
        for i in range(0, len(bl), self.chunk_blocks):
            yield self.batch(bl[i:i + self.chunk_blocks])

    def mask(self, kept: list) -> np.ndarray:
        """Encoding mask keeping the first kept[i] tokens of block i (ElasticInference.encode's rule)."""
        return np.concatenate([np.arange(self.block) < k for k in kept])[None]


# ---------------------------------------------------------------------------- fixed
def cmd_fixed(o: Official, frames: np.ndarray, keep: int, out: str):
    model = o.model

    @jax.jit
    def forward(params, vision, mask, attn, seg, pos):
        # The body of ElasticInference._recon, keeping the float reconstruction.
        v = vision.astype(jnp.float32) / 127.5 - 1
        recon, _, z = model.apply(params, v, mask, attn, seg, pos, training=False, return_z=True)
        return jnp.clip(recon, -1, 1), z

    recons, codes, u8, losses = [], [], [], []
    with o.mesh:
        for batch in o.chunks(frames):
            n = batch["vision"].shape[1] // o.block
            m = o.mask([keep] * n)
            r, z = forward(o.params, batch["vision"], m, batch["attention_mask"], batch["segment_ids"],
                           batch["position_ids"])
            recons.append(np.asarray(r)[0])
            codes.append(np.asarray(z)[0].astype(np.int64))
            zs = o.inference.encode(o.params, batch, keep)
            u8.append(np.asarray(jax.device_get(o.inference.decode(o.params, zs)))[0])
            cache = o.inference._init_cache(1)
            for i in range(n):
                loss, cache = o.inference._recon_with_mask(o.params, batch, cache, o.mask([keep]), i * o.block)
                losses.append(float(np.asarray(loss)[0]))
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "recon.npy"), np.concatenate(recons).astype(np.float32))
    np.save(os.path.join(out, "codes.npy"), np.concatenate(codes))
    np.save(os.path.join(out, "recon_u8.npy"), np.concatenate(u8))
    np.save(os.path.join(out, "losses.npy"), np.asarray(losses, np.float32))
    print(json.dumps({"blocks": len(losses), "keep": keep, "load_s": round(o.load_s, 3)}))


# --------------------------------------------------------------------------- search
def search_chunk_etok(o: Official, batch: dict, threshold: float, alg: str):
    """etok's search (binary or fast) over the official cached forward; the chunk's tokens by
    the official _recon at the chosen counts. -> (kept per block, passes per block)."""
    inf, params = o.inference, o.params
    n = batch["vision"].shape[1] // o.block
    cache = inf._init_cache(1)
    kept, passes, hint = [], [], None
    thr = float(np.float32(threshold))
    for i in range(n):
        caches = {}

        def evaluate(k):
            loss, c = inf._recon_with_mask(params, batch, cache, o.mask([k]), i * o.block)
            caches[k] = c
            return float(np.float32(np.asarray(loss)[0]))

        k, p = choose(alg, thr, o.cfg.min_toks, o.cfg.max_toks, evaluate, hint=hint)
        cache = caches[k]          # committed from the pass that measured it, as etok does
        kept.append(int(k))
        passes.append(p)
        hint = k
    recon, loss, z = inf._recon(params, batch, o.mask(kept))
    jax.block_until_ready(recon)
    return kept, passes


def search_chunk_official(o: Official, batch: dict, threshold: float):
    """ElasticInference.inference_binary as is. It counts ntok with the mask arange <= ntok
    (MaskSampler), so ntok + 1 tokens are kept (all of them at ntok >= max_toks - 1)."""
    _, loss, ntoks, _ = o.inference.inference_binary(o.params, batch, threshold)
    ntoks = np.asarray(jax.device_get(ntoks))[0]
    return [int(min(t + 1, o.block)) for t in ntoks], [int(t) for t in ntoks], \
        [float(x) for x in np.asarray(jax.device_get(loss))[0]]


def cmd_search(o: Official, frames: np.ndarray, threshold: float, alg: str, out: str, repeats: int):
    chunks = list(o.chunks(frames))
    result = {"alg": alg, "threshold": threshold, "frames": int(frames.shape[0]),
              "blocks": int(frames.shape[0] // o.cfg.frames_per_block), "load_s": round(o.load_s, 3)}
    with o.mesh:
        def run(batch):
            t = time.perf_counter()
            if alg == "official-binary":
                kept, ntoks, losses = search_chunk_official(o, batch, threshold)
                extra = {"ntok": ntoks, "final_loss": losses}
            else:
                kept, passes = search_chunk_etok(o, batch, threshold, alg)
                extra = {"passes": passes}
            return time.perf_counter() - t, kept, extra

        first_s, _, _ = run(chunks[0])          # compiles every function the search calls
        runs = []
        for _ in range(repeats):
            secs, kept, extra = [], [], {}
            for batch in chunks:
                s, k, e = run(batch)
                secs.append(s)
                kept += k
                for key, v in e.items():
                    extra.setdefault(key, []).extend(v)
            runs.append(sum(secs))
        result.update(kept=kept, **extra, chunk_seconds=[round(s, 4) for s in secs])
        result["compile_and_first_chunk_s"] = round(first_s, 3)
        result["first_chunk_again_s"] = round(secs[0], 3)
        result["compile_s_estimate"] = round(first_s - secs[0], 3)
        result["run_seconds"] = [round(s, 3) for s in runs]
        result["seconds_per_frame"] = round(float(np.median(runs)) / frames.shape[0], 5)
    with open(out, "w") as f:
        json.dump(result, f)
    print(json.dumps({k: v for k, v in result.items() if k not in ("kept", "ntok", "passes", "final_loss", "chunk_seconds")}))


# ----------------------------------------------------------------------------- pass
def cmd_pass(o: Official, contexts: list, repeats: int):
    inf, params = o.inference, o.params
    rng = np.random.default_rng(0)
    n = max(contexts) + 1
    vision = rng.integers(0, 256, size=(1, n * o.block, int(np.prod(o.cfg.patch_size)) * 3), dtype=np.uint8)
    batch = {"vision": vision, "segment_ids": np.zeros((1, n * o.block), np.int32),
             "attention_mask": np.ones((1, n * o.block), bool),
             "position_ids": np.arange(n * o.block, dtype=np.int32)[None]}
    full = o.mask([o.block])
    out = {}
    with o.mesh:
        cache = inf._init_cache(1)
        t = time.perf_counter()
        loss, _ = inf._recon_with_mask(params, batch, cache, full, 0)
        jax.block_until_ready(loss)
        out["compile_and_first_pass_s"] = round(time.perf_counter() - t, 3)
        committed = 0
        for k in sorted(contexts):
            while committed < k:
                _, cache = inf._recon_with_mask(params, batch, cache, full, committed * o.block)
                committed += 1
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                loss, _ = inf._recon_with_mask(params, batch, cache, full, k * o.block)
                jax.block_until_ready(loss)
                times.append(time.perf_counter() - t)
            out[f"context_{k}_s"] = round(float(np.median(times)), 3)
    print(json.dumps(out))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m etok.tools.official.run", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("fixed", "search", "pass"):
        s = sub.add_parser(name)
        s.add_argument("--config", required=True)
        s.add_argument("--checkpoint", required=True)
        if name != "pass":
            s.add_argument("--frames", required=True)
            s.add_argument("--out", required=True)
    sub.choices["fixed"].add_argument("--keep", type=int, required=True)
    sub.choices["search"].add_argument("--threshold", type=float, required=True)
    sub.choices["search"].add_argument("--alg", required=True, choices=["official-binary", "binary", "fast"])
    sub.choices["search"].add_argument("--repeats", type=int, default=1)
    sub.choices["pass"].add_argument("--context", default="0,3")
    sub.choices["pass"].add_argument("--repeats", type=int, default=1)
    a = p.parse_args(argv)
    o = Official(a.config, a.checkpoint)
    if a.cmd == "pass":
        cmd_pass(o, [int(x) for x in a.context.split(",")], a.repeats)
        return 0
    frames = np.load(a.frames)
    per_chunk = o.cfg.frames_per_block * o.chunk_blocks
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] % per_chunk:
        print(f"etok.tools.official.run: error: {a.frames}: need uint8 (T, H, W, 3) with T a multiple of "
              f"{per_chunk}, got {frames.dtype} {frames.shape}", file=sys.stderr)
        return 2
    if a.cmd == "fixed":
        cmd_fixed(o, frames, a.keep, a.out)
    else:
        cmd_search(o, frames, a.threshold, a.alg, a.out, a.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
