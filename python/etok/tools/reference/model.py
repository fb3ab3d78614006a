"""ElasticTok in PyTorch: the reference etok's Swift engine must match, and the model etok-tools train trains.

Written from the architecture as issue 3 describes the official JAX code (our own code):

* Patchify per block: tokens in order (frame-in-block / Tp, patch row, patch column), row-major;
  inside a patch the values go (tp, py, px, channel), channel fastest. Pixels x = uint8/127.5 - 1.
* No biases. Dense kernels are stored (in, out): y = x @ W.
* Encoder: h = x @ in_proj + (is_kept_embed if kept else is_masked_embed); pre-norm blocks
  h += Attn(RMSNorm(h)); h += MLP(RMSNorm(h)); RMSNorm ln_f; z = h @ pre_quant; bottleneck;
  z = 0 where the token is not kept.
* Decoder: h = z @ post_quant; same blocks; RMSNorm ln_f; out = tanh(h @ out_proj).
* RMSNorm: x * rsqrt(mean(x^2) + eps) * w (in fp32). SwiGLU: w2(silu(x w1) * (x w3)).
* Attention: RoPE on interleaved pairs (x[2i], x[2i+1]) rotated by pos * theta^(-2i/head_dim),
  positions 0..L-1 over the whole sequence (= b * max_toks + t); logits / sqrt(head_dim) in fp32;
  masked logits = float32 most-negative finite; block-causal mask (query in block b sees keys in
  blocks <= b, both ways inside its block). Unkept tokens still attend and are attended to.

RoPE numerics (pinned so other implementations can match bit for bit up to libm):
  freq_i  = float32(theta ** (-2i / head_dim))          computed in float64, rounded once
  angle   = float32(pos * freq_i)                       exact product, rounded once
  cos/sin = float32(cos/sin(float64(angle)))
FSQ numerics: see fsq.py.

Parameters are named so that `state_to_flat` yields the official flax paths joined by '/'.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ConfigError, ElasticTokConfig
from . import fsq as fsq_ops

__all__ = [
    "ElasticTokConfig", "ConfigError", "ElasticTok", "EncodeOutput", "patchify", "patchify_pixels",
    "unpatchify", "keep_to_mask", "block_causal_mask", "rope_tables", "state_to_flat",
    "flat_to_state", "expected_shapes", "init_weights",
]

F32_MIN = torch.finfo(torch.float32).min


# ---------------------------------------------------------------------------------- patchify
def patchify_pixels(pixels: torch.Tensor, cfg: ElasticTokConfig) -> torch.Tensor:
    """(B, T, H, W, 3) float pixels -> (B, T/Tp * H/Hp * W/Wp, patch_dim), no scaling."""
    if pixels.dim() != 5 or pixels.shape[-1] != 3:
        raise ValueError(f"patchify: expected (B, T, H, W, 3), got {tuple(pixels.shape)}")
    b, t, h, w, _ = pixels.shape
    tp, hp, wp = cfg.patch_size
    if t % tp or h % hp or w % wp:
        raise ValueError(f"patchify: frames {(t, h, w)} not divisible by patch {cfg.patch_size}")
    x = pixels.reshape(b, t // tp, tp, h // hp, hp, w // wp, wp, 3)
    x = x.permute(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(b, (t // tp) * (h // hp) * (w // wp), tp * hp * wp * 3)


def patchify(frames: torch.Tensor, cfg: ElasticTokConfig) -> torch.Tensor:
    """uint8 frames (B, T, H, W, 3) -> float32 (B, L, patch_dim) in [-1, 1] (x / 127.5 - 1)."""
    if frames.dtype != torch.uint8:
        raise ValueError(f"patchify: expected uint8 frames, got {frames.dtype}")
    return patchify_pixels(frames.to(torch.float32) / 127.5 - 1.0, cfg)


def unpatchify(vision: torch.Tensor, cfg: ElasticTokConfig, image_size: Optional[tuple] = None
               ) -> torch.Tensor:
    """(B, L, patch_dim) -> (B, T, H, W, 3), the inverse of `patchify_pixels` (no scaling)."""
    b, length, pd = vision.shape
    tp, hp, wp = cfg.patch_size
    h, w = image_size or cfg.image_size
    nh, nw = h // hp, w // wp
    if pd != cfg.patch_dim or length % (nh * nw):
        raise ValueError(f"unpatchify: shape {tuple(vision.shape)} does not fit {(h, w)} frames")
    nt = length // (nh * nw)
    x = vision.reshape(b, nt, nh, nw, tp, hp, wp, 3).permute(0, 1, 4, 2, 5, 3, 6, 7)
    return x.reshape(b, nt * tp, h, w, 3)


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """[-1, 1] pixels -> uint8 (round half to even of (x + 1) * 127.5, clamped)."""
    return torch.round((pixels.float() + 1.0) * 127.5).clamp(0, 255).to(torch.uint8)


# ------------------------------------------------------------------------------ masks, rope
def keep_to_mask(keep, num_blocks: int, max_toks: int, device=None) -> torch.Tensor:
    """keep (B, num_blocks) exact kept counts -> bool (B, num_blocks * max_toks), True = kept."""
    keep = torch.as_tensor(keep, device=device)
    if keep.dim() == 1:
        keep = keep.unsqueeze(0)
    if keep.dim() != 2 or keep.shape[1] != num_blocks:
        raise ValueError(f"keep: expected (B, {num_blocks}), got {tuple(keep.shape)}")
    if bool((keep < 0).any()) or bool((keep > max_toks).any()):
        raise ValueError(f"keep: counts must be in [0, {max_toks}], got {keep.tolist()}")
    t = torch.arange(max_toks, device=keep.device)
    return (t[None, None, :] < keep[:, :, None]).reshape(keep.shape[0], num_blocks * max_toks)


def block_causal_mask(length: int, max_toks: int, device=None) -> torch.Tensor:
    """bool (L, L): [i, j] True where query i may see key j (block(j) <= block(i))."""
    blk = torch.arange(length, device=device) // max_toks
    return blk[None, :] <= blk[:, None]


def rope_tables(length: int, head_dim: int, theta: float, device=None):
    """(cos, sin), each float32 (L, head_dim/2), pinned as the module docstring says."""
    i = torch.arange(head_dim // 2, dtype=torch.float64)
    freq = (float(theta) ** (-2.0 * i / head_dim)).to(torch.float32)
    pos = torch.arange(length, dtype=torch.float64)
    angle = (pos[:, None] * freq.to(torch.float64)[None, :]).to(torch.float32).to(torch.float64)
    return (torch.cos(angle).to(torch.float32).to(device),
            torch.sin(angle).to(torch.float32).to(device))


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, L, H, D) float32; rotates pairs (x[2i], x[2i+1]) by the angle of (pos, i)."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    out = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1)
    return out.flatten(-2)


# ----------------------------------------------------------------------------------- layers
class Dense(nn.Module):
    """Bias-free linear layer whose `kernel` is (in, out): y = x @ kernel."""

    def __init__(self, din: int, dout: int):
        super().__init__()
        self.kernel = nn.Parameter(torch.empty(din, dout))

    def forward(self, x):
        return torch.matmul(x, self.kernel)


class RMSNorm(nn.Module):
    """x * rsqrt(mean(x^2) + eps) * kernel, computed in float32."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.kernel = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x = x.float()
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.kernel.float()


class Attention(nn.Module):
    """Multi-head attention with RoPE and a block-causal mask; wq, wk, wv, wo (no biases)."""

    def __init__(self, cfg: ElasticTokConfig):
        super().__init__()
        d = cfg.hidden_size
        self.heads, self.head_dim = cfg.num_attention_heads, cfg.head_dim
        self.wq, self.wk, self.wv, self.wo = Dense(d, d), Dense(d, d), Dense(d, d), Dense(d, d)
        self.block = cfg.max_toks
        # "exact" (fp32 logits, explicit), "sdpa" (torch's fused attention with the mask), or
        # "blockwise" (one unmasked fused call per query block over the keys up to it: the same
        # block-causal attention without a mask, ~1.3x faster training steps on the CPU).
        self.impl = "exact"
        # Analysis hook (etok-tools context-gain): called with the "exact" path's probabilities
        # (B, heads, L, L) after each forward; None in normal use.
        self.observe_probs = None

    def forward(self, x, cos, sin, allowed):
        b, length, _ = x.shape
        q = self.wq(x).reshape(b, length, self.heads, self.head_dim)
        k = self.wk(x).reshape(b, length, self.heads, self.head_dim)
        v = self.wv(x).reshape(b, length, self.heads, self.head_dim)
        q, k = apply_rope(q.float(), cos, sin), apply_rope(k.float(), cos, sin)
        if self.impl == "blockwise":
            qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.float().transpose(1, 2)
            parts = [F.scaled_dot_product_attention(qh[:, :, s:s + self.block], kh[:, :, :s + self.block],
                                                    vh[:, :, :s + self.block])
                     for s in range(0, length, self.block)]
            o = torch.cat(parts, dim=2).transpose(1, 2)
        elif self.impl == "sdpa":
            o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                               v.float().transpose(1, 2), attn_mask=allowed)
            o = o.transpose(1, 2)
        else:
            with torch.autocast(device_type=x.device.type, enabled=False):
                logits = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.head_dim)
                logits = torch.where(allowed[None, None], logits,
                                     torch.tensor(F32_MIN, dtype=torch.float32, device=x.device))
                probs = torch.softmax(logits, dim=-1)
            if self.observe_probs is not None:
                self.observe_probs(probs)
            o = torch.einsum("bhqk,bkhd->bqhd", probs.to(v.dtype), v)
        return self.wo(o.reshape(b, length, self.heads * self.head_dim))


class FeedForward(nn.Module):
    """SwiGLU MLP: w2(silu(x @ w1) * (x @ w3))."""

    def __init__(self, cfg: ElasticTokConfig):
        super().__init__()
        d, f = cfg.hidden_size, cfg.intermediate_size
        self.w1, self.w2, self.w3 = Dense(d, f), Dense(f, d), Dense(d, f)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    """Pre-norm transformer block: h += attn(norm(h)); h += ffn(norm(h))."""

    def __init__(self, cfg: ElasticTokConfig):
        super().__init__()
        self.attention = Attention(cfg)
        self.attention_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.ffn_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.feed_forward = FeedForward(cfg)

    def forward(self, h, cos, sin, allowed):
        h = h + self.attention(self.attention_norm(h), cos, sin, allowed)
        return h + self.feed_forward(self.ffn_norm(h))


class Encoder(nn.Module):
    """Patches -> z: in_proj, kept/masked embeddings, blocks, ln_f, pre_quant."""

    def __init__(self, cfg: ElasticTokConfig):
        super().__init__()
        d = cfg.hidden_size
        self.in_proj = Dense(cfg.patch_dim, d)
        self.is_kept_embed = nn.Parameter(torch.zeros(1, d))
        self.is_masked_embed = nn.Parameter(torch.zeros(1, d))
        self.encoder_blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.num_encoder_layers)])
        self.ln_f = RMSNorm(d, cfg.rms_norm_eps)
        self.pre_quant = Dense(d, cfg.pre_quant_dim)

    def forward(self, x, kept, cos, sin, allowed):
        h = self.in_proj(x)
        h = h + torch.where(kept[..., None], self.is_kept_embed, self.is_masked_embed)
        for blk in self.encoder_blocks:
            h = blk(h, cos, sin, allowed)
        return self.pre_quant(self.ln_f(h))


class Decoder(nn.Module):
    """z -> patches: post_quant, blocks, ln_f, tanh(out_proj)."""

    def __init__(self, cfg: ElasticTokConfig):
        super().__init__()
        d = cfg.hidden_size
        self.post_quant = Dense(cfg.code_dim, d)
        self.decoder_blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.num_decoder_layers)])
        self.ln_f = RMSNorm(d, cfg.rms_norm_eps)
        self.out_proj = Dense(d, cfg.patch_dim)

    def forward(self, z, cos, sin, allowed):
        h = self.post_quant(z)
        for blk in self.decoder_blocks:
            h = blk(h, cos, sin, allowed)
        return torch.tanh(self.out_proj(self.ln_f(h)).float())


class EncodeOutput(NamedTuple):
    """z (B, L, code_dim) float32, zero where not kept; codes (B, L) int64 FSQ indices or None;
    kl: scalar VAE KL (mean over kept tokens) when sampling, else None."""
    z: torch.Tensor
    codes: Optional[torch.Tensor]
    kl: Optional[torch.Tensor]


class ElasticTok(nn.Module):
    """The ElasticTok autoencoder. `forward(vision, keep) -> (recon, z, codes_or_None)`.

    vision: (B, L, patch_dim) in [-1, 1], L a whole number of blocks <= max_sequence_length.
    keep:   (B, L / max_toks) ints, the exact number of leading tokens kept in each block.
    """

    def __init__(self, cfg: ElasticTokConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.last_kl: Optional[torch.Tensor] = None
        init_weights(self)

    def set_attention_impl(self, impl: str):
        """'exact' (default; the parity path), 'sdpa' (torch's fused attention with the mask) or
        'blockwise' (fused, one unmasked call per query block: for training)."""
        if impl not in ("exact", "sdpa", "blockwise"):
            raise ValueError(f"attention impl: {impl!r}")
        for m in self.modules():
            if isinstance(m, Attention):
                m.impl = impl

    def _check(self, x: torch.Tensor) -> int:
        cfg = self.cfg
        if x.dim() != 3:
            raise ValueError(f"expected (B, L, {cfg.patch_dim or cfg.code_dim}), got {tuple(x.shape)}")
        length = x.shape[1]
        if length == 0 or length % cfg.max_toks or length > cfg.max_sequence_length:
            raise ValueError(f"sequence of {length} tokens: must be 1..{cfg.context_blocks} whole "
                             f"blocks of {cfg.max_toks}")
        return length

    def _context(self, length: int, device):
        cos, sin = rope_tables(length, self.cfg.head_dim, self.cfg.theta, device)
        return cos, sin, block_causal_mask(length, self.cfg.max_toks, device)

    def encode(self, vision: torch.Tensor, keep, sample: bool = False) -> EncodeOutput:
        """Patches + kept counts -> z (zeroed where not kept), FSQ codes, VAE KL when sampling."""
        cfg = self.cfg
        length = self._check(vision)
        if vision.shape[-1] != cfg.patch_dim:
            raise ValueError(f"vision: last dim {vision.shape[-1]} != patch_dim {cfg.patch_dim}")
        kept = keep_to_mask(keep, length // cfg.max_toks, cfg.max_toks, vision.device)
        if kept.shape[0] != vision.shape[0]:
            raise ValueError(f"keep: batch {kept.shape[0]} != vision batch {vision.shape[0]}")
        cos, sin, allowed = self._context(length, vision.device)
        pre = self.encoder(vision, kept, cos, sin, allowed).float()
        keepf = kept[..., None].to(torch.float32)
        kl = None
        if cfg.bottleneck_type == "fsq":
            z, codes = fsq_ops.quantize(pre, cfg.fsq_quant_levels)
            z = z * keepf
            codes = torch.where(kept, codes, torch.full_like(codes, fsq_ops.masked_index(
                cfg.fsq_quant_levels)))
        else:
            mean, logvar = pre[..., :cfg.code_dim], pre[..., cfg.code_dim:]
            codes = None
            if sample:
                z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
                kl_tok = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
                kl = (kl_tok * kept).sum() / kept.sum().clamp(min=1)
            else:
                z = mean
            z = z * keepf
        return EncodeOutput(z, codes, kl)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, L, code_dim) -> recon (B, L, patch_dim) in [-1, 1]."""
        length = self._check(z)
        if z.shape[-1] != self.cfg.code_dim:
            raise ValueError(f"z: last dim {z.shape[-1]} != code_dim {self.cfg.code_dim}")
        cos, sin, allowed = self._context(length, z.device)
        return self.decoder(z, cos, sin, allowed)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """FSQ indices (B, L) -> recon; the masked index decodes as z = 0."""
        if self.cfg.bottleneck_type != "fsq":
            raise ValueError("decode_codes: not an FSQ model")
        return self.decode(fsq_ops.indices_to_codes(codes, self.cfg.fsq_quant_levels))

    def forward(self, vision: torch.Tensor, keep, sample: bool = False):
        enc = self.encode(vision, keep, sample=sample)
        self.last_kl = enc.kl
        return self.decode(enc.z), enc.z, enc.codes


# ------------------------------------------------------------------------------ parameters
def init_weights(model: ElasticTok, std: float = 0.02, generator: Optional[torch.Generator] = None):
    """Training init: dense kernels and embeddings ~ N(0, std), norm weights 1."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if isinstance(_owner(model, name), RMSNorm):
                p.fill_(1.0)
            else:
                p.normal_(0.0, std, generator=generator)


def _owner(model: nn.Module, name: str) -> nn.Module:
    mod = model
    for part in name.split(".")[:-1]:
        mod = getattr(mod, part) if not part.isdigit() else mod[int(part)]
    return mod


def flat_name(torch_name: str) -> str:
    return "params/" + torch_name.replace(".", "/")


def expected_shapes(cfg: ElasticTokConfig) -> dict:
    """Official flat name -> shape, for every parameter of a model with this config."""
    with torch.device("meta"):
        m = ElasticTok(cfg)
    return {flat_name(n): tuple(p.shape) for n, p in m.named_parameters()}


def state_to_flat(model: ElasticTok) -> dict:
    """Official flat names ('params/encoder/in_proj/kernel', ...) -> detached tensors."""
    return {flat_name(n): p.detach() for n, p in model.named_parameters()}


def flat_to_state(model: ElasticTok, flat: dict, strict: bool = True):
    """Loads official flat names into `model` (copying, converting dtype). Strict: unknown,
    missing or misshapen tensors raise KeyError/ValueError naming the tensor."""
    params = dict(model.named_parameters())
    want = {flat_name(n): n for n in params}
    if strict:
        for k in flat:
            if k not in want:
                raise KeyError(f"unknown tensor {k}")
        for k in want:
            if k not in flat:
                raise KeyError(f"missing tensor {k}")
    with torch.no_grad():
        for k, n in want.items():
            if k not in flat:
                continue
            t = torch.as_tensor(flat[k])
            p = params[n]
            if tuple(t.shape) != tuple(p.shape):
                raise ValueError(f"tensor {k}: shape {tuple(t.shape)}, expected {tuple(p.shape)}")
            p.copy_(t.to(p.dtype))
    return model


def _selfcheck():
    """Quick checks: `python3 -m etok.tools.reference.model`."""
    torch.manual_seed(0)
    cfg = ElasticTokConfig.etok_default()
    m = ElasticTok(cfg).eval()
    nparam = sum(p.numel() for p in m.parameters())
    assert fsq_ops.masked_index(cfg.fsq_quant_levels) == 32036
    frames = torch.randint(0, 256, (2, 2, 128, 128, 3), dtype=torch.uint8)
    x = patchify(frames, cfg)
    assert torch.equal(to_uint8(unpatchify(x, cfg)), frames)
    keep = torch.tensor([[16, 256], [100, 3]])
    with torch.no_grad():
        recon, z, codes = m(x, keep)
        assert recon.shape == x.shape and z.shape == (2, 512, 6) and codes.shape == (2, 512)
        assert bool((z[0, 16:256] == 0).all()) and bool((codes[0, 16:256] == 32036).all())
        r0, _, _ = m(x[:, :256], keep[:, :1])
        assert torch.allclose(r0, recon[:, :256], atol=1e-5), "block-causal"
        with torch.autocast("cpu", dtype=torch.bfloat16):
            rb = m.decode(z)  # bf16 may flip a few FSQ codes, so compare the decoder alone
        assert rb.dtype == torch.float32 and (rb - recon).abs().max() < 0.1
    flat = state_to_flat(m)
    assert flat.keys() == expected_shapes(cfg).keys()
    print(f"ok: {nparam} parameters, {len(flat)} tensors")


if __name__ == "__main__":
    _selfcheck()
