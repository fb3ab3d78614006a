#!/usr/bin/env python3
"""An independent .etok reader written from docs/etok-format.md alone (no code shared with the Swift
reader), used by EtokFormatTests to check that the Swift writer follows the spec. Decodes the token
codings rc-fsq-2 (§6.3, over the §6.1 range decoder) and f16-1 (§6.2).

Usage: spec_reader.py FILE.etok  ->  JSON on stdout: {"header": {...}, "version": [major, minor],
"chunks": [{"first_block", "blocks": [[kept, frames, pts, mse]], "tokens": [[...] per block]}]}
Reads front to back; stops with an error message (exit 1) at the first problem.
"""
import json
import math
import struct
import sys
import zlib

SIGNATURE = b"\x89ETK\r\n\x1a\n"


def fail(msg):
    sys.exit(f"spec_reader: {msg}")


def check_kept(header, first, kept):
    """§5: kept is min_toks ... max_toks, or 0 (a repeat block) where the header declares
    encoding.repeat_blocks, at any chunk position but not as the stream's block 0."""
    model = header["model"]
    repeats = header["encoding"].get("repeat_blocks") is True
    for k, n in enumerate(kept):
        if n == 0 and repeats:
            if first + k == 0:
                fail("block 0 keeps 0 tokens (a repeat block), but nothing precedes it")
        elif not model["min_toks"] <= n <= model["max_toks"]:
            fail(f"block {first + k} keeps {n} tokens, outside min_toks ... max_toks"
                 + ("" if n else " (the header does not declare repeat blocks)"))


def records(data, pos):
    """Yields (offset, type, payload) for every record (§3), checking CRCs."""
    while pos < len(data):
        if pos + 8 > len(data):
            fail(f"truncated record header at {pos}")
        rtype = data[pos:pos + 4]
        (length,) = struct.unpack_from("<I", data, pos + 4)
        end = pos + 8 + length
        if length > 1 << 30 or end + 4 > len(data):
            fail(f"record at {pos} runs past the end")
        (crc,) = struct.unpack_from("<I", data, end)
        if zlib.crc32(data[pos:end]) != crc:
            fail(f"bad CRC at {pos}")
        yield pos, rtype, data[pos + 8:end]
        pos = end + 4


class RangeDecoder:
    """§6.1 range decoder, transcribed."""

    def __init__(self, data):
        self.data, self.pos = data, 0
        self.range, self.code = 0xFFFFFFFF, 0
        for _ in range(5):
            self.code = ((self.code << 8) | self.next_byte()) & 0xFFFFFFFF

    def next_byte(self):
        if self.pos >= len(self.data):
            fail("range decoder read past token_bytes")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def decode_symbol(self, freq):
        """§6.1 decode: the symbol whose interval of freq holds the target."""
        total = sum(freq)
        r = self.range // total
        v = min(self.code // r, total - 1)
        s, cum = 0, 0
        while not (cum <= v < cum + freq[s]):
            cum += freq[s]
            s += 1
        self.code = (self.code - r * cum) & 0xFFFFFFFF
        self.range = r * freq[s]
        while self.range < 1 << 24:
            self.range = (self.range << 8) & 0xFFFFFFFF
            self.code = ((self.code << 8) | self.next_byte()) & 0xFFFFFFFF
        return s


class Contexts:
    """§6.3 contexts: name -> [p, c], created fresh (2048, 0) on first use."""

    def __init__(self):
        self.state = {}

    def bit(self, rc, names):
        ctx = [self.state.setdefault(n, [2048, 0]) for n in names]
        p0 = sum(x[0] for x in ctx) // len(ctx)
        bit = rc.decode_symbol([p0, 4096 - p0])
        for x in ctx:
            shift = min(5, (x[1] + 2).bit_length() - 1)  # floor(log2(c + 2))
            if bit == 0:
                x[0] += (4096 - x[0]) >> shift
            else:
                x[0] -= x[0] >> shift
            x[1] = min(x[1] + 1, 30)
        return bit


def fsq2_tokens(data, kept, levels, width, repeats):
    """§6.3: binary decisions with mixed contexts, one coder and fresh contexts per chunk.
    repeats: the header declares repeat blocks (§4), so a block keeping 0 tokens is a repeat
    block (§5), which codes nothing and leaves prev at the chunk's last coded block."""
    ctx = Contexts()
    rc = RangeDecoder(data)
    basis = [1]
    for level in levels[:-1]:
        basis.append(basis[-1] * level)
    blocks, prev = [], []  # prev: digits of the previous coded block's tokens
    for n in kept:
        if repeats and n == 0:
            blocks.append([])
            continue
        digits_block, same_block, tokens = [], [], []
        for t in range(n):
            digits, same = [], []
            has_prev = t < len(prev)
            m = 0
            for d, L in enumerate(levels):
                if has_prev:
                    p = prev[t][d]
                    le = same_block[t - 1][d] if t >= 1 else 2
                    ue = same_block[t - width][d] if t >= width else 2
                    if ctx.bit(rc, [("eqA", d, m), ("eqN", d, m, le, ue), ("eqP", d, m, p)]) == 0:
                        digits.append(p)
                        same.append(1)
                        continue
                    same.append(0)
                    m = min(m + 1, 2)
                    near = [x for x in (p - 1, p + 1) if 0 <= x < L]
                    rest = L - 1 - len(near)
                    far = ctx.bit(rc, [("one", d)]) if rest > 0 else 0
                    if far == 0:
                        if len(near) == 2:
                            s = p + 1 if ctx.bit(rc, [("side", d)]) else p - 1
                        else:
                            s = near[0]
                    else:
                        far_values = [x for x in range(L) if abs(x - p) >= 2]
                        s = far_values[rc.decode_symbol([1] * rest)]
                    digits.append(s)
                else:
                    B = 0
                    while (1 << B) < L:
                        B += 1
                    left = digits_block[t - 1][d] if t >= 1 else L
                    up = digits_block[t - width][d] if t >= width else L
                    lower = digits[d - 1] if d > 0 else 0
                    prefix = 0
                    for i in range(B - 1, -1, -1):
                        node = (1 << (B - 1 - i)) + prefix
                        bit = 0
                        if (2 * prefix + 1) * (1 << i) < L:
                            bit = ctx.bit(rc, [("npA", d, node), ("npL", d, left, node),
                                               ("npU", d, up, node), ("npO", d, lower, node)])
                        prefix = 2 * prefix + bit
                    digits.append(prefix)
                    same.append(2)
            digits_block.append(digits)
            same_block.append(same)
            tokens.append(sum(g * b for g, b in zip(digits, basis)))
        blocks.append(tokens)
        prev = digits_block
    if rc.pos != len(data):
        fail("token bytes left over")
    return blocks


def main(path):
    data = open(path, "rb").read()
    if data[:8] != SIGNATURE:
        fail("bad signature")
    major, minor = struct.unpack_from("<HH", data, 8)
    if major != 1:
        fail(f"unknown major version {major}")
    header, chunks = None, []
    for offset, rtype, payload in records(data, 12):
        if rtype == b"HEAD":
            header = json.loads(payload.decode("utf-8"))
        elif rtype == b"CHNK":
            first, count = struct.unpack_from("<QI", payload, 0)
            table = [struct.unpack_from("<HHqf", payload, 12 + 16 * k) for k in range(count)]
            at = 12 + 16 * count
            (token_bytes,) = struct.unpack_from("<I", payload, at)
            tokens_data = payload[at + 4:]
            if len(tokens_data) != token_bytes:
                fail(f"chunk at {offset}: token_bytes mismatch")
            kept = [row[0] for row in table]
            check_kept(header, first, kept)
            coding = header["encoding"]["token_coding"]
            if coding == "rc-fsq-2":
                model = header["model"]
                width = max(1, model["image_size"][1] // model["patch_size"][2])
                repeats = header["encoding"].get("repeat_blocks") is True
                tokens = fsq2_tokens(tokens_data, kept, model["fsq_quant_levels"], width, repeats)
            elif coding == "f16-1":
                dim = header["model"]["vae_bottleneck_dim"]
                values = list(struct.unpack(f"<{token_bytes // 2}e", tokens_data))
                if not all(math.isfinite(v) for v in values):
                    fail(f"chunk at {offset}: a latent is not finite")
                tokens, i = [], 0
                for n in kept:
                    tokens.append(values[i:i + n * dim])
                    i += n * dim
            else:
                fail(f"unknown token coding {coding!r}")
            chunks.append({"first_block": first, "blocks": [list(row) for row in table], "tokens": tokens})
    json.dump({"header": header, "version": [major, minor], "chunks": chunks}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
