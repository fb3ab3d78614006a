"""Writes the golden parity fixtures for etok's Swift engine into Tests/EtokModelTests/Fixtures/.

usage (from the repository root):  etok-tools fixtures [--out DIR]

Deterministic: fixed seeds, fp32 reference computation; rerunning gives the same bytes.
Every parameter is randomised (norm weights and embeddings included), so a loader that drops or
swaps a tensor fails. The FSQ inputs are checked to stay at least FSQ_MARGIN away from a rounding
boundary, so an implementation that agrees to 1e-5 must produce identical indices.
See Fixtures/README.md (written by this script) for every file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch

from .common import ROOT
from .convert import convert
from .reference import fsq as fsq_ops
from .reference.model import (ElasticTok, ElasticTokConfig, patchify, rope_tables,
                             state_to_flat, flat_to_state)
from .reference.official_format import write_checkpoint
from .reference.safetensors_io import export, load

FSQ_MARGIN = 2e-4
SEED = 20241011
DEFAULT_OUT = os.path.join(ROOT, "Tests", "EtokModelTests", "Fixtures")


def fsq_config() -> ElasticTokConfig:
    return ElasticTokConfig(hidden_size=32, intermediate_size=48, num_encoder_layers=2,
                            num_decoder_layers=2, num_attention_heads=2, patch_size=(1, 4, 4),
                            frames_per_block=1, min_toks=2, max_toks=16, max_sequence_length=48,
                            rms_norm_eps=1e-6, bottleneck_type="fsq",
                            fsq_quant_levels=(8, 8, 8, 5, 5, 5), theta=10000.0)


def vae_config() -> ElasticTokConfig:
    # Temporal patches, a non-square frame and unequal layer counts, on purpose.
    return ElasticTokConfig(hidden_size=32, intermediate_size=40, num_encoder_layers=1,
                            num_decoder_layers=2, num_attention_heads=4, patch_size=(2, 4, 4),
                            frames_per_block=4, min_toks=1, max_toks=16, max_sequence_length=32,
                            rms_norm_eps=1e-5, bottleneck_type="vae", vae_bottleneck_dim=4,
                            theta=500.0, etok_image_size=(8, 16))


def randomise(model: ElasticTok, gen: torch.Generator):
    """Every parameter random: dense ~ N(0, 1/in), embeddings ~ N(0, 0.5^2), norms ~ U(0.5, 1.5)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("_embed"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            elif p.dim() == 1:
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / np.sqrt(p.shape[0]))


def save_npy(path: str, arr: np.ndarray):
    arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=(1, 0), allow_pickle=False)


def fsq_margin(z_pre: torch.Tensor, kept: torch.Tensor, levels) -> float:
    """Smallest distance of a kept token's bound value from a .5 rounding boundary."""
    b = fsq_ops.bound_values(z_pre, levels)
    d = (b - torch.floor(b) - 0.5).abs()
    return float(d[kept].min()) if bool(kept.any()) else 1.0


class Writer:
    """Collects files and manifest entries."""

    def __init__(self, out: str):
        self.out = out
        self.files: list[tuple] = []  # (relative path, shape/dtype text, meaning)

    def npy(self, rel: str, arr: np.ndarray, meaning: str):
        path = os.path.join(self.out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        save_npy(path, arr)
        self.files.append((rel, f"{arr.dtype.name} {tuple(arr.shape)}", meaning))
        return rel

    def note(self, rel: str, what: str, meaning: str):
        self.files.append((rel, what, meaning))
        return rel


def run_model(model: ElasticTok, vision: np.ndarray, keep: list):
    x = torch.from_numpy(vision)[None]
    with torch.no_grad():
        enc = model.encode(x, torch.tensor([keep]))
        recon = model.decode(enc.z)
        pre = model.encoder(x, _kept(model, keep), *model._context(x.shape[1], x.device)).float()
    codes = None if enc.codes is None else enc.codes[0].to(torch.int32).numpy()
    return recon[0].numpy(), enc.z[0].numpy(), codes, pre[0]


def _kept(model, keep):
    from .reference.model import keep_to_mask
    return keep_to_mask(torch.tensor([keep]), len(keep), model.cfg.max_toks)


def write_cases(w: Writer, model, model_file, cfg, vision_rel, vision, cases, prefix, manifest,
                margin_check=True):
    for name, keep in cases:
        nblk = len(keep)
        v = vision[: nblk * cfg.max_toks]
        recon, z, codes, pre = run_model(model, v, keep)
        if margin_check and codes is not None:
            m = fsq_margin(pre, _kept(model, keep)[0], cfg.fsq_quant_levels)
            if m < FSQ_MARGIN:
                raise SystemExit(f"case {prefix}{name}: FSQ margin {m:.2e} < {FSQ_MARGIN}; "
                                 f"change SEED")
        d = f"cases/{prefix}{name}"
        entry = {"name": prefix + name, "model": model_file, "vision": vision_rel,
                 "blocks": nblk, "tokens": nblk * cfg.max_toks, "keep": keep,
                 "recon": w.npy(f"{d}/recon.npy", recon, f"reconstruction, keep {keep}"),
                 "z": w.npy(f"{d}/z.npy", z, "z (zero where not kept)"),
                 "codes": None if codes is None else w.npy(f"{d}/codes.npy", codes, "FSQ indices"),
                 "pre_quant": w.npy(f"{d}/pre_quant.npy", pre.numpy(),
                                    "encoder output before the bottleneck (debugging aid)"),
                 "tolerance": 1e-5}
        manifest["cases"].append(entry)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = args.out
    for sub in ("cases", "incremental", "candidates", "kernels"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    w = Writer(out)
    gen = torch.Generator().manual_seed(SEED)
    manifest = {"version": 1, "generator": "etok-tools fixtures", "seed": SEED,
                "fsq_margin": FSQ_MARGIN, "models": {}, "inputs": {}, "cases": [],
                "incremental": [], "candidates": [], "kernels": {}, "official": {}}

    # ---------------------------------------------------------------- FSQ model, 3 dtypes
    cfg = fsq_config()
    model = ElasticTok(cfg).eval()
    randomise(model, gen)
    flat32 = {k: v.clone() for k, v in state_to_flat(model).items()}
    export(model, cfg, os.path.join(out, "fsq_tiny_f32.safetensors"), "float32", name="fsq_tiny")
    export(model, cfg, os.path.join(out, "fsq_tiny_f16.safetensors"), "float16", name="fsq_tiny_f16")
    export(model, cfg, os.path.join(out, "fsq_tiny_bf16.safetensors"), "bfloat16",
           name="fsq_tiny_bf16")
    for f, dt in (("fsq_tiny_f32.safetensors", "float32"), ("fsq_tiny_f16.safetensors", "float16"),
                  ("fsq_tiny_bf16.safetensors", "bfloat16")):
        manifest["models"][f] = {"storage": dt, "bottleneck": "fsq", "config": cfg.to_dict()}
        w.note(f, f"safetensors {dt}", "tiny random FSQ model (the same weights, rounded)")

    frames = torch.randint(0, 256, (3, 16, 16, 3), generator=gen, dtype=torch.uint8)
    vision = patchify(frames[None], cfg)[0].numpy()
    w.npy("frames.npy", frames.numpy(), "uint8 frames (T, H, W, 3) of the FSQ input")
    w.npy("vision.npy", vision, "patchify(frames): float32 (L, patch_dim) in [-1, 1]")
    manifest["inputs"]["vision.npy"] = {"frames": "frames.npy", "config": "fsq_tiny"}

    fsq_cases = [("keep_max", [16, 16, 16]), ("keep_min", [2, 2, 2]),
                 ("keep_mixed", [3, 16, 7]), ("keep_zero_edge", [0, 5, 16]),
                 ("one_block", [9]), ("two_blocks", [16, 1])]
    write_cases(w, model, "fsq_tiny_f32.safetensors", cfg, "vision.npy", vision, fsq_cases,
                "fsq_f32_", manifest)

    # fp16 / bf16: outputs in fp32 from the rounded weights (what the file holds).
    for tag, file, dt in (("fsq_f16_", "fsq_tiny_f16.safetensors", torch.float16),
                          ("fsq_bf16_", "fsq_tiny_bf16.safetensors", torch.bfloat16)):
        _, m_low = load(os.path.join(out, file))
        ref = {k: v.to(dt).float() for k, v in flat32.items()}
        got = state_to_flat(m_low)
        assert all(torch.equal(got[k], ref[k]) for k in ref), f"{file}: rounding mismatch"
        write_cases(w, m_low, file, cfg, "vision.npy", vision,
                    [("keep_mixed", [3, 16, 7]), ("keep_max", [16, 16, 16])], tag, manifest)

    # Incremental: block k run with blocks < k as committed context; equals the full forward.
    keep = [3, 16, 7]
    full_recon, full_z, full_codes, _ = run_model(model, vision, keep)
    steps = []
    for k in range(len(keep)):
        r, z, c, _ = run_model(model, vision[: (k + 1) * 16], keep[: k + 1])
        sl = slice(k * 16, (k + 1) * 16)
        assert np.abs(r[sl] - full_recon[sl]).max() < 1e-6 and np.array_equal(c[sl], full_codes[sl])
        d = f"incremental/fsq_f32_keep_mixed/step{k}"
        steps.append({"block": k, "context_blocks": k, "keep_context": keep[:k], "keep": keep[k],
                      "recon": w.npy(f"{d}_recon.npy", r[sl], f"block {k} reconstruction"),
                      "z": w.npy(f"{d}_z.npy", z[sl], f"block {k} z"),
                      "codes": w.npy(f"{d}_codes.npy", c[sl], f"block {k} FSQ indices")})
    manifest["incremental"].append({"name": "fsq_f32_keep_mixed", "model": "fsq_tiny_f32.safetensors",
                                    "vision": "vision.npy", "keep": keep,
                                    "full_case": "fsq_f32_keep_mixed", "steps": steps,
                                    "tolerance": 1e-5})

    # Candidates: block 2 for several kept counts with blocks 0-1 committed as keep [3, 16].
    cand = [2, 5, 11, 16, 0]
    recs, mses, zs, codes_l = [], [], [], []
    for n in cand:
        r, z, c, _ = run_model(model, vision, [3, 16, n])
        blk = slice(32, 48)
        recs.append(r[blk]); zs.append(z[blk]); codes_l.append(c[blk])
        mses.append(np.float32(np.mean((r[blk].astype(np.float64) - vision[blk]) ** 2)))
    d = "candidates/fsq_f32_block2"
    manifest["candidates"].append({
        "name": "fsq_f32_block2", "model": "fsq_tiny_f32.safetensors", "vision": "vision.npy",
        "context_keep": [3, 16], "block": 2, "keeps": cand,
        "recon": w.npy(f"{d}_recon.npy", np.stack(recs), "(candidate, token, patch_dim)"),
        "z": w.npy(f"{d}_z.npy", np.stack(zs), "(candidate, token, code_dim)"),
        "codes": w.npy(f"{d}_codes.npy", np.stack(codes_l), "(candidate, token) int32"),
        "mse": w.npy(f"{d}_mse.npy", np.asarray(mses, np.float32),
                     "mean over the block of (recon - vision)^2 in [-1, 1] units"),
        "tolerance": 1e-5})

    # ---------------------------------------------------------------------- VAE model
    vcfg = vae_config()
    vmodel = ElasticTok(vcfg).eval()
    randomise(vmodel, gen)
    export(vmodel, vcfg, os.path.join(out, "vae_tiny_f32.safetensors"), "float32", name="vae_tiny")
    manifest["models"]["vae_tiny_f32.safetensors"] = {"storage": "float32", "bottleneck": "vae",
                                                      "config": vcfg.to_dict()}
    w.note("vae_tiny_f32.safetensors", "safetensors float32",
           "tiny random VAE model: patch (2,4,4), 4 frames per block, 8x16 frames, 1+2 layers")
    vframes = torch.randint(0, 256, (8, 8, 16, 3), generator=gen, dtype=torch.uint8)
    vvision = patchify(vframes[None], vcfg)[0].numpy()
    w.npy("vae_frames.npy", vframes.numpy(), "uint8 frames (T, H, W, 3) of the VAE input")
    w.npy("vae_vision.npy", vvision, "patchify(vae_frames): float32 (L, patch_dim)")
    manifest["inputs"]["vae_vision.npy"] = {"frames": "vae_frames.npy", "config": "vae_tiny"}
    write_cases(w, vmodel, "vae_tiny_f32.safetensors", vcfg, "vae_vision.npy", vvision,
                [("keep_mixed", [5, 12]), ("keep_max", [16, 16]), ("keep_min", [1, 1])],
                "vae_f32_", manifest)

    # ------------------------------------------------------------------ kernel tables
    cos, sin = rope_tables(cfg.max_sequence_length, cfg.head_dim, cfg.theta)
    manifest["kernels"]["rope"] = {
        "theta": cfg.theta, "head_dim": cfg.head_dim, "positions": cfg.max_sequence_length,
        "cos": w.npy("kernels/rope_cos.npy", cos.numpy(), "cos table (position, pair)"),
        "sin": w.npy("kernels/rope_sin.npy", sin.numpy(), "sin table (position, pair)")}
    zf = torch.randn(512, 6, generator=gen) * 1.5
    zf[0] = 0.0
    b = fsq_ops.bound_values(zf, cfg.fsq_quant_levels)
    ok = ((b - torch.floor(b) - 0.5).abs() >= FSQ_MARGIN).all(-1)
    zf = zf[ok][:256]
    fcodes, fidx = fsq_ops.quantize(zf, cfg.fsq_quant_levels)
    manifest["kernels"]["fsq"] = {
        "levels": list(cfg.fsq_quant_levels), "masked_index": fsq_ops.masked_index(cfg.fsq_quant_levels),
        "z": w.npy("kernels/fsq_z.npy", zf.numpy(), "FSQ input rows (row 0 is all zero)"),
        "codes": w.npy("kernels/fsq_codes.npy", fcodes.detach().numpy(), "FSQ codes in [-1, 1]"),
        "indices": w.npy("kernels/fsq_indices.npy", fidx.to(torch.int32).numpy(), "FSQ indices")}

    # -------------------------------------------------------- official-format checkpoint
    off_cfg = {k: v for k, v in cfg.to_dict().items() if not k.startswith("etok_")}
    with open(os.path.join(out, "official_tiny_config.json"), "w") as f:
        json.dump(off_cfg, f, indent=1, sort_keys=True)
        f.write("\n")
    w.note("official_tiny_config.json", "JSON", "config of the tiny FSQ model, official fields only")
    flat_np = {k: v.numpy() for k, v in flat32.items()}
    write_checkpoint(os.path.join(out, "official_tiny_per_layer.msgpack"), flat_np, cfg, "per_layer")
    write_checkpoint(os.path.join(out, "official_tiny_stacked.msgpack"), flat_np, cfg, "stacked")
    w.note("official_tiny_per_layer.msgpack", "tux params stream, float32",
           "fsq_tiny weights, per-layer keys (encoder_blocks/0/...)")
    w.note("official_tiny_stacked.msgpack", "tux params stream, float32",
           "fsq_tiny weights, stacked keys (encoder_blocks/scan_decoder/..., layer on axis 0)")
    convert(os.path.join(out, "official_tiny_stacked.msgpack"),
            os.path.join(out, "official_tiny_converted.safetensors"),
            os.path.join(out, "official_tiny_config.json"), "float32", name="official_tiny",
            log=lambda *_: None)
    _, conv = load(os.path.join(out, "official_tiny_converted.safetensors"))
    assert all(torch.equal(a, b) for a, b in zip(state_to_flat(conv).values(), flat32.values()))
    w.note("official_tiny_converted.safetensors", "safetensors float32",
           "`etok-tools convert` output for official_tiny_stacked.msgpack: tensors equal "
           "fsq_tiny_f32's")
    manifest["official"] = {"config": "official_tiny_config.json",
                            "per_layer": "official_tiny_per_layer.msgpack",
                            "stacked": "official_tiny_stacked.msgpack",
                            "converted": "official_tiny_converted.safetensors",
                            "same_weights_as": "fsq_tiny_f32.safetensors"}

    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    write_readme(out, w.files)
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(out) for fn in fns)
    print(f"wrote {len(w.files) + 2} files, {total / 1e6:.2f} MB, into {out}")
    if total > 2e6:
        raise SystemExit(f"fixtures are {total / 1e6:.2f} MB, over the 2 MB budget")


README_HEAD = """# EtokModelTests fixtures (generated; do not edit)

Written by `etok-tools fixtures` (PyTorch reference in python/etok/tools/reference/,
seed fixed, deterministic). Regenerate after changing the reference; commit the result.

Conventions
- Arrays are .npy v1.0, little-endian, C order. float32 unless stated; codes are int32.
- Models are etok safetensors: tensor names are the official flax paths
  (`params/encoder/in_proj/kernel`, ...), the config JSON is in the header metadata under
  "config" (official field names + `etok_` fields), "format" is "etok-elastictok".
- All reference outputs are computed in float32. The f16/bf16 models' outputs are computed in
  float32 from the rounded weights the file holds, so they are held to the same tolerance.
- Tolerances: recon and z within 1e-5 max abs; FSQ indices identical. Every kept token's FSQ
  bound value is at least `fsq_margin` (cases.json) from a rounding boundary.
- `keep` is the exact number of leading tokens kept in each block. Positions run 0..L-1 over
  the whole sequence given (block b, token t -> b * max_toks + t).
- RoPE numerics (kernels/rope_*.npy): freq_i = float32(theta^(-2i/head_dim)) (in float64,
  rounded once); angle = float32(pos * freq_i); cos/sin computed in float64 of that angle, rounded.
- FSQ constants are computed in float64 and rounded to float32 once: half_l = (L-1)(1-1e-3)/2,
  offset = 0.5 (L even) or 0, shift = tan(offset / half_l); bound = tanh(z + shift) * half_l -
  offset in float32; code = round_half_even(bound) / (L div 2).

cases.json
- `models`: file -> storage dtype, bottleneck, config.
- `cases`: one full forward each: `model`, `vision` (input .npy), `blocks`, `keep`, outputs
  `recon` (L, patch_dim), `z` (L, code_dim), `codes` (L,) int32 or null (VAE), `pre_quant`
  (the encoder output before the bottleneck: (L, code_dim) for FSQ, (L, 2*dim) for VAE: mean
  then log-variance). A case with fewer blocks than its vision file uses its first
  `tokens` rows. The layout is exactly `etok model run`'s outputs.
- `incremental`: block k run with blocks < k committed as context (kept counts
  `keep_context`), outputs for block k only; they equal rows [16k, 16k+16) of `full_case`.
- `candidates`: block `block` evaluated for each count in `keeps`, with blocks before it
  committed with `context_keep`: recon (C, 16, patch_dim), z, codes (C, 16), mse (C,) = mean
  over the block of (recon - vision)^2 in [-1, 1] units.
- `kernels`: RoPE tables and an FSQ table (z rows, codes, indices; row 0 is z = 0).
- `official`: a tiny official-format checkpoint (tux streaming msgpack params, both layouts),
  its official-only config, and the converter's output (tensors equal fsq_tiny_f32's).

Files
"""


def write_readme(out: str, files: list):
    lines = [README_HEAD, "| file | shape / dtype | meaning |", "|---|---|---|"]
    for rel, what, meaning in files + [("cases.json", "JSON", "manifest (see above)"),
                                       ("README.md", "Markdown", "this file")]:
        lines.append(f"| `{rel}` | {what} | {meaning} |")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
