"""Benchmarks etok's Swift engine against the PyTorch reference, in one run, same weights.

usage (from the repository root, after a release build):
  swift build -c release --product etok
  etok-tools bench engine [--etok PATH] [--threads 2]      (default: the release build's etok)
                                [--repeats 10] [--compile] [--coretypes Haswell,unset]

What it measures, at the default model's config (128x128, patch (1,8,8), 256 tokens per block,
hidden 256, MLP 512, 4+4 layers, 4 heads, FSQ; random weights), per timed block (encode +
decode of one block at full kept count) with 0, 1 and 3 committed blocks of context:
  - etok: `etok model bench` (median of --repeats), its model FLOPs, and MFU = FLOPs / (time x
    the sgemm peak etok measures in the same process, a 1024^3 product on the same threads);
    also with 4 candidates per call (the search's batched case), and that process's peak RSS.
  - PyTorch eager with the same weights and thread count: the reference model's modules driven
    block by block with a KV cache (the same work as etok; checked against the reference's
    full forward), and the reference's own full forward over all k+1 blocks (what the
    cache-less reference costs to produce the same block). Optionally torch.compile.
Each OpenBLAS kernel choice in --coretypes is a separate etok run (OPENBLAS_CORETYPE=Haswell
is what CI uses; "unset" lets OpenBLAS 0.3.21 pick, AVX-512 Cooperlake kernels here).
Prints a Markdown table and the raw JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from ..common import release_etok
from ..reference import fsq as fsq_ops
from ..reference.model import ElasticTok, ElasticTokConfig, apply_rope, rope_tables
from ..reference.safetensors_io import export

CONTEXTS = (0, 1, 3)


def block_flops(cfg: ElasticTokConfig, context_blocks: int) -> float:
    """Matrix-product FLOPs of encode + decode of one block (the same count etok reports)."""
    t, d, f = cfg.max_toks, cfg.hidden_size, cfg.intermediate_size
    keys = (context_blocks + 1) * t

    def stack(layers):
        return layers * (2 * t * d * (3 * d + d + 3 * f) + 4 * t * keys * d)

    enc = 2 * t * cfg.patch_dim * d + stack(cfg.num_encoder_layers) + 2 * t * d * cfg.pre_quant_dim
    dec = 2 * t * cfg.code_dim * d + stack(cfg.num_decoder_layers) + 2 * t * d * cfg.patch_dim
    return float(enc + dec)


# ------------------------------------------------------------------- cached PyTorch pass
def cached_stack(blocks, h, cache, cos, sin):
    """Runs reference blocks on the new block's rows h (1, T, D), attending to cache[l] = (k, v)
    of the committed tokens plus the block's own; returns h and the block's (k, v) per layer."""
    new_kv = []
    for blk, (ck, cv) in zip(blocks, cache):
        att = blk.attention
        x = blk.attention_norm(h)
        b, t, _ = x.shape
        q = att.wq(x).reshape(b, t, att.heads, att.head_dim)
        k = att.wk(x).reshape(b, t, att.heads, att.head_dim)
        v = att.wv(x).reshape(b, t, att.heads, att.head_dim)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        kk, vv = torch.cat([ck, k], 1), torch.cat([cv, v], 1)
        logits = torch.einsum("bqhd,bkhd->bhqk", q, kk) / math.sqrt(att.head_dim)
        o = torch.einsum("bhqk,bkhd->bqhd", torch.softmax(logits, -1), vv)
        h = h + att.wo(o.reshape(b, t, -1))
        h = h + blk.feed_forward(blk.ffn_norm(h))
        new_kv.append((k, v))
    return h, new_kv


def cached_block(model: ElasticTok, x, keep: int, enc_cache, dec_cache, position: int):
    """Encode + decode of one block with committed caches (PyTorch, the same work as etok)."""
    cfg = model.cfg
    t = cfg.max_toks
    cos, sin = rope_tables(position + t, cfg.head_dim, cfg.theta)
    cos, sin = cos[position:], sin[position:]
    kept = (torch.arange(t) < keep)[None, :]
    enc = model.encoder
    h = enc.in_proj(x) + torch.where(kept[..., None], enc.is_kept_embed, enc.is_masked_embed)
    h, enc_kv = cached_stack(enc.encoder_blocks, h, enc_cache, cos, sin)
    pre = enc.pre_quant(enc.ln_f(h))
    z, _ = fsq_ops.quantize(pre, cfg.fsq_quant_levels)
    z = z * kept[..., None].float()
    dec = model.decoder
    h, dec_kv = cached_stack(dec.decoder_blocks, dec.post_quant(z), dec_cache, cos, sin)
    return torch.tanh(dec.out_proj(dec.ln_f(h))), enc_kv, dec_kv


def torch_caches(model, xs, context):
    """The committed caches after `context` blocks at full kept count (built with cached_block)."""
    cfg = model.cfg
    empty = lambda layers: [(torch.zeros(1, 0, cfg.num_attention_heads, cfg.head_dim),) * 2
                            for _ in range(layers)]
    enc_cache, dec_cache = empty(cfg.num_encoder_layers), empty(cfg.num_decoder_layers)
    for b in range(context):
        _, ek, dk = cached_block(model, xs[b], cfg.max_toks, enc_cache, dec_cache, b * cfg.max_toks)
        enc_cache = [(torch.cat([c[0], n[0]], 1), torch.cat([c[1], n[1]], 1)) for c, n in zip(enc_cache, ek)]
        dec_cache = [(torch.cat([c[0], n[0]], 1), torch.cat([c[1], n[1]], 1)) for c, n in zip(dec_cache, dk)]
    return enc_cache, dec_cache


def median_time(fn, repeats):
    """(median, min) seconds over `repeats` calls after a warm-up. On a shared machine the min is
    the less disturbed figure; both are reported."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def bench_torch(model, cfg, repeats, compile_it):
    torch.manual_seed(5)
    xs = [torch.rand(1, cfg.max_toks, cfg.patch_dim) * 2 - 1 for _ in range(max(CONTEXTS) + 1)]
    out = {}
    with torch.no_grad():
        # Check the cached pass against the reference's own full forward first.
        k = max(CONTEXTS)
        enc_cache, dec_cache = torch_caches(model, xs, k)
        recon, _, _ = cached_block(model, xs[k], cfg.max_toks, enc_cache, dec_cache, k * cfg.max_toks)
        full, _, _ = model(torch.cat(xs[:k + 1], 1), torch.full((1, k + 1), cfg.max_toks))
        err = (recon - full[:, k * cfg.max_toks:]).abs().max().item()
        assert err < 1e-4, f"cached torch pass disagrees with the reference forward: {err}"
        step = cached_block
        if compile_it:
            try:
                step = torch.compile(cached_block, dynamic=True)
            except Exception as e:  # noqa: BLE001
                out["compile_error"] = str(e)
                step = None
        for k in CONTEXTS:
            enc_cache, dec_cache = torch_caches(model, xs, k)
            row = {
                "cached_eager": median_time(lambda: cached_block(model, xs[k], cfg.max_toks, enc_cache, dec_cache,
                                                                 k * cfg.max_toks), repeats),
                "full_forward_eager": median_time(
                    lambda: model(torch.cat(xs[:k + 1], 1), torch.full((1, k + 1), cfg.max_toks)), repeats),
            }
            if compile_it and step is not None:
                try:
                    row["cached_compiled"] = median_time(
                        lambda: step(model, xs[k], cfg.max_toks, enc_cache, dec_cache, k * cfg.max_toks), repeats)
                except Exception as e:  # noqa: BLE001
                    out["compile_error"] = str(e)
            out[k] = row
    return out


def run_etok(etok, model_path, threads, repeats, coretype, candidates):
    env = dict(os.environ)
    if coretype == "unset":
        env.pop("OPENBLAS_CORETYPE", None)
    else:
        env["OPENBLAS_CORETYPE"] = coretype
    cmd = [etok, "model", "bench", "--model", model_path, "--threads", str(threads), "--repeats", str(repeats),
           "--context", ",".join(map(str, CONTEXTS)), "--candidates", str(candidates)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--etok", default=None, help="etok binary (default: swift build -c release "
                    "--show-bin-path)/etok")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    ap.add_argument("--coretypes", default="Haswell,unset")
    args = ap.parse_args(argv)
    if args.etok is None:
        args.etok = str(release_etok() or "(release build of etok)")
    if not os.path.exists(args.etok):
        sys.exit(f"etok-tools bench engine: {args.etok} not found: build it with `swift build -c release --product etok`")

    torch.set_num_threads(args.threads)
    cfg = ElasticTokConfig.etok_default()
    torch.manual_seed(0)
    model = ElasticTok(cfg).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.safetensors")
        export(model, cfg, path)
        etok = {}
        for ct in args.coretypes.split(","):
            etok[ct] = {c: run_etok(args.etok, path, args.threads, args.repeats, ct, c) for c in (1, 4)}
    torch_times = bench_torch(model, cfg, args.repeats, args.compile)

    print(f"threads {args.threads}, torch {torch.__version__}, {cfg.max_toks} tokens/block, "
          f"params {sum(p.numel() for p in model.parameters())}")
    print()
    print("Times in ms per block, median (min) of the repeats; MFU and speed-ups from the mins.")
    print()
    print("| context blocks | GFLOP/block | OpenBLAS | sgemm peak GFLOP/s | etok ms | etok MFU | "
          "etok ms/candidate, 4 candidates | torch cached eager ms | torch full forward ms | etok vs torch cached |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    fmt = lambda pair: f"{pair[0] * 1e3:.1f} ({pair[1] * 1e3:.1f})"
    for ct, runs in etok.items():
        one, four = runs[1], runs[4]
        for r1, r4 in zip(one["results"], four["results"]):
            k = r1["context_blocks"]
            tt = torch_times[k]
            mfu = r1["flops"] / r1["seconds_min"] / 1e9 / one["sgemm_peak_gflops"]
            print(f"| {k} | {block_flops(cfg, k) / 1e9:.2f} | {ct} | {one['sgemm_peak_gflops']:.0f} | "
                  f"{fmt((r1['seconds'], r1['seconds_min']))} | {mfu * 100:.0f}% | "
                  f"{fmt((r4['seconds'] / 4, r4['seconds_min'] / 4))} | {fmt(tt['cached_eager'])} | "
                  f"{fmt(tt['full_forward_eager'])} | {tt['cached_eager'][1] / r1['seconds_min']:.2f}x |")
    print()
    for ct, runs in etok.items():
        print(f"etok peak RSS ({ct}): {runs[1]['peak_rss_mib']:.0f} MiB with 1 candidate, "
              f"{runs[4]['peak_rss_mib']:.0f} MiB with 4 (whole process: runtime, libraries, model, caches)")
    if args.compile:
        print()
        for k in CONTEXTS:
            if "cached_compiled" in torch_times[k]:
                print(f"torch.compile cached, context {k}: {fmt(torch_times[k]['cached_compiled'])} ms")
        if "compile_error" in torch_times:
            print("torch.compile failed:", torch_times["compile_error"][:200])
    print()
    print(json.dumps({"etok": etok, "torch": {str(k): v for k, v in torch_times.items()}}, indent=1, default=str))
