"""ElasticTok configuration: the official field names plus etok's own `etok_` fields.

`ElasticTokConfig.from_dict` accepts a dict holding only the official fields (as the
official code's config has them); fields etok adds are prefixed `etok_` and optional.
Unknown official-looking keys (training knobs such as dropout rates) are ignored;
unknown `etok_` keys are an error, since they can only be a typo or a newer etok.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional


class ConfigError(ValueError):
    """A config that is malformed or inconsistent; the message names the field."""


@dataclass
class ElasticTokConfig:
    """Architecture of one ElasticTok model (official field names)."""

    hidden_size: int
    intermediate_size: int
    num_encoder_layers: int
    num_decoder_layers: int
    num_attention_heads: int
    patch_size: tuple  # (Tp, Hp, Wp)
    frames_per_block: int
    min_toks: int
    max_toks: int
    max_sequence_length: int
    rms_norm_eps: float = 1e-6
    bottleneck_type: str = "fsq"
    fsq_quant_levels: tuple = (8, 8, 8, 5, 5, 5)
    vae_bottleneck_dim: Optional[int] = None
    theta: float = 10000.0
    # etok's own fields (optional).
    etok_image_size: Optional[tuple] = None  # (H, W); absent: square, derived

    OFFICIAL_REQUIRED = (
        "hidden_size", "intermediate_size", "num_encoder_layers", "num_decoder_layers",
        "num_attention_heads", "patch_size", "frames_per_block", "min_toks", "max_toks",
        "max_sequence_length",
    )

    def __post_init__(self):
        self.patch_size = tuple(int(v) for v in self.patch_size)
        self.fsq_quant_levels = tuple(int(v) for v in self.fsq_quant_levels)
        if self.etok_image_size is not None:
            self.etok_image_size = tuple(int(v) for v in self.etok_image_size)
        self.validate()

    # ----------------------------------------------------------------- derived
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def patch_dim(self) -> int:
        tp, hp, wp = self.patch_size
        return tp * hp * wp * 3

    @property
    def code_dim(self) -> int:
        """Width of z (the decoder's input): len(levels) for FSQ, vae_bottleneck_dim for VAE."""
        if self.bottleneck_type == "fsq":
            return len(self.fsq_quant_levels)
        return int(self.vae_bottleneck_dim)

    @property
    def pre_quant_dim(self) -> int:
        return self.code_dim if self.bottleneck_type == "fsq" else 2 * self.code_dim

    @property
    def context_blocks(self) -> int:
        return self.max_sequence_length // self.max_toks

    @property
    def image_size(self) -> tuple:
        """(H, W) of a frame: etok_image_size, or the square size max_toks implies."""
        if self.etok_image_size is not None:
            return self.etok_image_size
        tp, hp, wp = self.patch_size
        spatial = self.max_toks // (self.frames_per_block // tp)
        side = math.isqrt(spatial)
        return (side * hp, side * wp)

    @property
    def grid(self) -> tuple:
        """(frames-in-block / Tp, H / Hp, W / Wp): the token grid of one block."""
        tp, hp, wp = self.patch_size
        h, w = self.image_size
        return (self.frames_per_block // tp, h // hp, w // wp)

    @property
    def num_codes(self) -> int:
        return int(math.prod(self.fsq_quant_levels))

    # -------------------------------------------------------------- validation
    def validate(self):
        def need(cond, name, msg):
            if not cond:
                raise ConfigError(f"config field {name}: {msg}")

        for name in ("hidden_size", "intermediate_size", "num_attention_heads", "frames_per_block",
                     "max_toks", "max_sequence_length"):
            need(int(getattr(self, name)) > 0, name, "must be positive")
        need(self.num_encoder_layers >= 0, "num_encoder_layers", "must be >= 0")
        need(self.num_decoder_layers >= 0, "num_decoder_layers", "must be >= 0")
        need(self.hidden_size % self.num_attention_heads == 0, "num_attention_heads",
             f"must divide hidden_size {self.hidden_size}")
        need(self.head_dim % 2 == 0, "num_attention_heads", "head size must be even for RoPE")
        need(len(self.patch_size) == 3 and all(v > 0 for v in self.patch_size), "patch_size",
             "must be three positive integers (Tp, Hp, Wp)")
        need(self.frames_per_block % self.patch_size[0] == 0, "frames_per_block",
             f"must be a multiple of patch_size[0] = {self.patch_size[0]}")
        need(0 <= self.min_toks <= self.max_toks, "min_toks", "must be in [0, max_toks]")
        need(self.max_sequence_length % self.max_toks == 0, "max_sequence_length",
             f"must be a whole number of blocks of max_toks = {self.max_toks}")
        need(self.rms_norm_eps > 0, "rms_norm_eps", "must be positive")
        need(self.theta > 0, "theta", "must be positive")
        need(self.bottleneck_type in ("fsq", "vae"), "bottleneck_type", "must be 'fsq' or 'vae'")
        if self.bottleneck_type == "fsq":
            need(len(self.fsq_quant_levels) > 0 and all(l >= 2 for l in self.fsq_quant_levels),
                 "fsq_quant_levels", "must be a non-empty list of levels >= 2")
            need(math.prod(self.fsq_quant_levels) <= 2**31 - 1, "fsq_quant_levels",
                 "codebook must fit in int32")
        else:
            need(self.vae_bottleneck_dim is not None and int(self.vae_bottleneck_dim) > 0,
                 "vae_bottleneck_dim", "must be positive for bottleneck_type 'vae'")
        tp, hp, wp = self.patch_size
        per_frame = self.max_toks // (self.frames_per_block // tp)
        need(self.max_toks % (self.frames_per_block // tp) == 0, "max_toks",
             "must be a multiple of frames_per_block / patch_size[0]")
        if self.etok_image_size is None:
            side = math.isqrt(per_frame)
            need(side * side == per_frame, "max_toks",
                 "gives a non-square token grid; set etok_image_size")
        else:
            need(len(self.etok_image_size) == 2, "etok_image_size", "must be [H, W]")
            h, w = self.etok_image_size
            need(h % hp == 0 and w % wp == 0, "etok_image_size",
                 f"must be multiples of the patch ({hp}, {wp})")
            need((h // hp) * (w // wp) * (self.frames_per_block // tp) == self.max_toks,
                 "etok_image_size", f"gives {(h // hp) * (w // wp)} tokens per frame, max_toks wants "
                 f"{per_frame}")

    # ------------------------------------------------------------ dict / json
    @classmethod
    def from_dict(cls, d: dict) -> "ElasticTokConfig":
        if not isinstance(d, dict):
            raise ConfigError("config: expected a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [k for k in cls.OFFICIAL_REQUIRED if k not in d]
        if missing:
            raise ConfigError(f"config field {missing[0]}: missing")
        unknown_etok = [k for k in d if k.startswith("etok_") and k not in names]
        if unknown_etok:
            raise ConfigError(f"config field {unknown_etok[0]}: unknown etok field")
        kwargs = {k: v for k, v in d.items() if k in names}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(f"config: {e}") from e

    def to_dict(self) -> dict:
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = list(v)
            if v is None:  # unset optional fields (vae_bottleneck_dim of FSQ, etok_*) are omitted
                continue
            d[f.name] = v
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, s: str) -> "ElasticTokConfig":
        try:
            d = json.loads(s)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config: not JSON ({e})") from e
        return cls.from_dict(d)

    # ---------------------------------------------------------------- presets
    @classmethod
    def etok_default(cls) -> "ElasticTokConfig":
        """The default model etok ships: 128x128 frames, 8x8 patches, 256 tokens per frame."""
        return cls(hidden_size=256, intermediate_size=512, num_encoder_layers=4,
                   num_decoder_layers=4, num_attention_heads=4, patch_size=(1, 8, 8),
                   frames_per_block=1, min_toks=16, max_toks=256, max_sequence_length=1024,
                   rms_norm_eps=1e-6, bottleneck_type="fsq", fsq_quant_levels=(8, 8, 8, 5, 5, 5),
                   theta=10000.0, etok_image_size=(128, 128))
