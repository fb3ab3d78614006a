#!/usr/bin/env python3
"""Measures candidate context models for the FSQ token coding of .etok (docs/etok-format.md §6).

For each token stream (a folder from make_streams.sh: lengths.npy, tokens.npy, info.json) and each
candidate model, prints the ideal adaptive code length in bits per token: the sum of -log2 p over
every coded symbol, p taken from the model's tables *before* the exact adaptive update, with every
table reset at the start of every chunk (chunk_blocks blocks), as a decoder that starts at any chunk
must. A range coder spends this plus well under 0.1 % (plus 5 flush bytes per chunk, added here).
Baselines: order-0 entropy of the indices, xz -9 and zstd -19 of the raw 16-bit little-endian
indices (whole stream, no chunking: an upper bound for what a general compressor gets).

    python3 Tools/coder_lab/coder_lab.py DIR… [--only "NAME;…"] [--json OUT.json]

Candidate families: frequency tables keyed by contexts (ctx_model; rc_fsq_1 is §6.1 exactly), a
token "same as the previous block's" flag before the digits (match_flag_model), binarised digits
(binarised), and binarised digits with several contexts averaged per decision (bin2; "rc-fsq-2"
is §6.3 exactly: its ideal length matches the Swift coder's real output, see actual_bytes.sh).
"""
import argparse
import json
import lzma
import math
import os
import subprocess
import sys

import numpy as np

LOG2 = [0.0] + [math.log2(i) for i in range(1, 1 << 17)]


def load(folder):
    """Blocks of digits, grouped by chunk: [[np.array (kept, D)] per block] per chunk."""
    info = json.load(open(os.path.join(folder, "info.json")))
    levels = info["model"].get("fsq_quant_levels") or [8, 8, 8, 5, 5, 5]
    cb = info["encoding"]["chunk_blocks"]
    lengths = np.load(os.path.join(folder, "lengths.npy"))
    tokens = np.load(os.path.join(folder, "tokens.npy")).astype(np.int64)
    basis = np.cumprod([1] + levels[:-1])
    blocks = np.split(tokens, lengths.cumsum()[:-1])
    digits = [((b[:, None] // basis) % levels).tolist() for b in blocks]
    chunks = [digits[i:i + cb] for i in range(0, len(digits), cb)]
    chunk_tokens = [np.concatenate(blocks[i:i + cb]) for i in range(0, len(blocks), cb)]
    return levels, chunks, tokens, chunk_tokens, info


# ---------------------------------------------------------------------------------------------
# Models. Each returns the total ideal code length in bits of a whole stream.

class FreqTables:
    """Adaptive frequency tables keyed by any hashable context (rc-fsq-1's update rule)."""

    def __init__(self, init=4, inc=32, limit=65536 - 32, prior=None):
        self.init, self.inc, self.limit, self.prior = init, inc, limit, prior
        self.tables = {}

    def cost(self, key, n, s, hint=None):
        t = self.tables.get(key)
        if t is None:
            t = self.prior(n, hint) if self.prior else [self.init] * n
            t.append(sum(t))
            self.tables[key] = t
        bits = LOG2[t[-1]] - LOG2[t[s]]
        t[s] += self.inc
        t[-1] += self.inc
        if t[-1] > self.limit:
            for i in range(n):
                t[i] = (t[i] + 1) >> 1
            t[-1] = sum(t[:n])
        return bits


class BitProbs:
    """LZMA-style adaptive binary probabilities: 12-bit p(0), p += (4096 - p) >> shift on a 0."""

    def __init__(self, shift=4, init=2048):
        self.shift, self.init = shift, init
        self.p = {}

    def cost(self, key, bit, init=None):
        p = self.p.get(key, self.init if init is None else init)
        if bit:
            bits = -math.log2((4096 - p) / 4096)
            p -= p >> self.shift
        else:
            bits = -math.log2(p / 4096)
            p += (4096 - p) >> self.shift
        self.p[key] = p
        return bits


def rc_fsq_1(levels, chunks, **kw):
    """§6.1 exactly: table per (d, prev digit or none)."""
    return ctx_model(levels, chunks, lambda c: (c.d, c.prev), **kw)


class Ctx:
    """What a context function may look at while digit d of token t of block k is coded."""
    __slots__ = ("d", "t", "k", "prev", "prevtok", "prev2", "left", "lower", "msf", "block", "n")


def ctx_model(levels, chunks, key, init=4, inc=32, prior=None, limit=65536 - 32):
    """Digits coded one by one, table chosen by key(Ctx)."""
    total = 0.0
    D = len(levels)
    c = Ctx()
    for chunk in chunks:
        ft = FreqTables(init, inc, limit, prior)
        for k, block in enumerate(chunk):
            pb = chunk[k - 1] if k > 0 else []
            pb2 = chunk[k - 2] if k > 1 else []
            c.k, c.block = k, block
            for t, tok in enumerate(block):
                pt = pb[t] if t < len(pb) else None
                p2 = pb2[t] if t < len(pb2) else None
                lt = block[t - 1] if t > 0 else None
                c.t, c.prevtok = t, pt
                msf = 1
                for d in range(D):
                    c.d = d
                    c.prev = pt[d] if pt is not None else levels[d]
                    c.prev2 = p2[d] if p2 is not None else levels[d]
                    c.left = lt[d] if lt is not None else levels[d]
                    c.lower = tok[d - 1] if d > 0 else 0
                    c.msf = msf if pt is not None else 2
                    total += ft.cost(key(c), levels[d], tok[d], c)
                    if pt is not None and tok[d] != pt[d]:
                        msf = 0
        total += 40  # 5 flush bytes per chunk
    return total


def prior_near_prev(weight_eq, weight_pm1, base=1):
    """A fixed initial table: base everywhere, weight_eq at prev, weight_pm1 at prev +- 1."""
    def make(n, c):
        t = [base] * n
        p = c.prev
        if p < n:
            t[p] = weight_eq
            if p > 0:
                t[p - 1] = weight_pm1
            if p + 1 < n:
                t[p + 1] = weight_pm1
        return t
    return make


def bin_digit(bp, key, s, n, bits_tree=3):
    """Codes symbol s < n as a binary tree of bits_tree bits (LZMA bit tree), impossible
    branches (>= n) skipped: a node whose right subtree is empty costs nothing."""
    total = 0.0
    node = 1
    for depth in range(bits_tree):
        i = bits_tree - 1 - depth
        bit = (s >> i) & 1
        prefix = node - (1 << depth)
        if ((2 * prefix + 1) << i) < n:  # right child non-empty: a real choice
            total += bp.cost((key, node), bit)
        node = (node << 1) | bit
    return total


def match_flag_model(levels, chunks, flag_ctx, digit_key, shift=4, digit_shift=None, use_bits=True,
                     init=4, inc=32, prior=None, exclude=False):
    """Per token with a previous-block token at t: a binary flag "same token as prev" (context
    flag_ctx(state)); on a mismatch (or with no prev) the digits follow, by digit_key(Ctx), either
    through bit trees (use_bits) or frequency tables."""
    total = 0.0
    D = len(levels)
    c = Ctx()
    for chunk in chunks:
        flags = BitProbs(shift)
        bp = BitProbs(digit_shift or shift)
        ft = FreqTables(init, inc, prior=prior)
        for k, block in enumerate(chunk):
            pb = chunk[k - 1] if k > 0 else []
            pflags = None
            cur_flags = []
            c.k, c.block = k, block
            for t, tok in enumerate(block):
                pt = pb[t] if t < len(pb) else None
                lt = block[t - 1] if t > 0 else None
                c.t, c.prevtok = t, pt
                if pt is not None:
                    same = tok == pt
                    left_same = cur_flags[t - 1] if t > 0 else 2
                    total += flags.cost(flag_ctx(c, left_same, cur_flags), int(not same))
                    cur_flags.append(int(same) if True else 0)
                    if same:
                        continue
                else:
                    cur_flags.append(2)
                msf = 1
                for d in range(D):
                    c.d = d
                    c.prev = pt[d] if pt is not None else levels[d]
                    c.left = lt[d] if lt is not None else levels[d]
                    c.lower = tok[d - 1] if d > 0 else 0
                    c.msf = msf if pt is not None else 2
                    c.prev2 = levels[d]
                    if exclude and pt is not None and msf and d == D - 1:
                        # all earlier digits matched and the token differs: the last digit is not prev
                        n = levels[d] - 1
                        s = tok[d] if tok[d] < pt[d] else tok[d] - 1
                        if n > 1:
                            total += ft.cost(("x",) + tuple(digit_key(c)), n, s, None)
                    elif use_bits:
                        total += bin_digit(bp, digit_key(c), tok[d], levels[d])
                    else:
                        total += ft.cost(digit_key(c), levels[d], tok[d], c)
                    if pt is not None and tok[d] != pt[d]:
                        msf = 0
        total += 40
    return total


# ---------------------------------------------------------------------------------------------

def zstd(raw):
    try:
        return len(subprocess.run(["zstd", "-19", "-c", "-q"], input=raw, capture_output=True,
                                  check=True).stdout)
    except (OSError, subprocess.CalledProcessError):
        return None


def baselines(tokens, chunk_tokens):
    """Order-0 entropy; xz -9e and zstd -19 of the raw u16 indices, whole stream and per chunk
    (each chunk compressed on its own: the random-access constraint .etok has)."""
    raw = tokens.astype("<u2").tobytes()
    n = len(tokens)
    vals, counts = np.unique(tokens, return_counts=True)
    p = counts / n
    out = {"order0": float(-(p * np.log2(p)).sum()),
           "xz-9": 8 * len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME)) / n}
    z = zstd(raw)
    if z is not None:
        out["zstd-19"] = 8 * z / n
    parts = [c.astype("<u2").tobytes() for c in chunk_tokens]
    out["xz-9/chunk"] = 8 * sum(len(lzma.compress(c, preset=9 | lzma.PRESET_EXTREME)) for c in parts) / n
    zs = [zstd(c) for c in parts]
    if None not in zs:
        out["zstd-19/chunk"] = 8 * sum(zs) / n
    return out


def candidates(levels):
    D = len(levels)
    near = prior_near_prev
    C = {
        "rc-fsq-1": lambda L, ch: rc_fsq_1(L, ch),
        # frequency-table variants
        "prev init1": lambda L, ch: rc_fsq_1(L, ch, init=1),
        "prev init2": lambda L, ch: rc_fsq_1(L, ch, init=2),
        "prev+msf": lambda L, ch: ctx_model(L, ch, lambda c: (c.d, c.prev, c.msf)),
        "prev+msf init2": lambda L, ch: ctx_model(L, ch, lambda c: (c.d, c.prev, c.msf), init=2),
        "prev+msf+left(no prev)": lambda L, ch: ctx_model(
            L, ch, lambda c: (c.d, c.prev, c.msf, c.left if c.msf == 2 else -1), init=2),
        "prev+msf+lower": lambda L, ch: ctx_model(L, ch, lambda c: (c.d, c.prev, c.msf, c.lower), init=2),
        "prev+msf+pos4": lambda L, ch: ctx_model(L, ch, lambda c: (c.d, c.prev, c.msf, min(c.t // 64, 3)), init=2),
        "prev+msf+prev2": lambda L, ch: ctx_model(L, ch, lambda c: (c.d, c.prev, c.msf, c.prev2), init=2),
        "prev+msf+k": lambda L, ch: ctx_model(L, ch, lambda c: (c.d, c.prev, c.msf, min(c.k, 2)), init=2),
        "prev+msf prior": lambda L, ch: ctx_model(L, ch, lambda c: (c.d, c.prev, c.msf),
                                                  prior=near(12, 4, 2)),
        "prev+msf prior2": lambda L, ch: ctx_model(L, ch, lambda c: (c.d, c.prev, c.msf),
                                                   prior=near(24, 6, 2)),
        # token match flag + digits
        "flag+bits": lambda L, ch: match_flag_model(
            L, ch, lambda c, ls, f: ls, lambda c: (c.d, c.prev, c.msf)),
        "flag+bits s5": lambda L, ch: match_flag_model(
            L, ch, lambda c, ls, f: ls, lambda c: (c.d, c.prev, c.msf), shift=5),
        "flag+bits+left": lambda L, ch: match_flag_model(
            L, ch, lambda c, ls, f: ls, lambda c: (c.d, c.prev, c.msf, c.left if c.msf == 2 else -1)),
        "flag+freq": lambda L, ch: match_flag_model(
            L, ch, lambda c, ls, f: ls, lambda c: (c.d, c.prev, c.msf), use_bits=False, init=2),
        "flag+freq+excl": lambda L, ch: match_flag_model(
            L, ch, lambda c, ls, f: ls, lambda c: (c.d, c.prev, c.msf), use_bits=False, init=2,
            exclude=True),
        "flag+freq prior": lambda L, ch: match_flag_model(
            L, ch, lambda c, ls, f: ls, lambda c: (c.d, c.prev, c.msf), use_bits=False,
            prior=near(12, 4, 2)),
    }
    return C


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--only", default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    results = {}
    for folder in a.dirs:
        levels, chunks, tokens, chunk_tokens, info = load(folder)
        n = len(tokens)
        name = os.path.basename(folder.rstrip("/"))
        res = baselines(tokens, chunk_tokens)
        cands = candidates(levels)
        names = a.only.split(";") if a.only else list(cands)
        for cname in names:
            res[cname] = cands[cname](levels, chunks) / n
        results[name] = res
        print(f"{name} ({n} tokens, {len(chunks)} chunks): " +
              ", ".join(f"{k} {v:.2f}" for k, v in res.items()), flush=True)
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)



# ---------------------------------------------------------------------------------------------
# Binarised digit model ("rc-fsq-2" candidates): per digit with a previous-block digit p, a bit
# "equal to p", then "off by one", then the side, then (rarely) the value among the rest; digits
# without p through frequency tables per dimension as in rc-fsq-1.

class AdaptiveBit:
    """Binary probability p0 in 1/4096 with a count-based rate: shift = min(max_shift,
    floor(log2(count + 2))), so it averages like 1/(n + 2) at first and forgets like LZMA later."""

    def __init__(self, max_shift=5, init=2048, fixed=None):
        self.max_shift, self.init, self.fixed = max_shift, init, fixed
        self.s = {}

    def cost(self, key, bit, init=None):
        p, n = self.s.get(key, (self.init if init is None else init, 0))
        shift = self.fixed if self.fixed else min(self.max_shift, (n + 2).bit_length() - 1)
        if bit:
            bits = LOG2[4096] - LOG2[4096 - p]
            p -= p >> shift
        else:
            bits = LOG2[4096] - LOG2[p]
            p += (4096 - p) >> shift
        self.s[key] = (p, n + 1)
        return bits


def binarised(levels, chunks, width=16, eq_ctx="nmis+nbr", max_shift=5, fixed=None, eq_init=2048,
              far="uniform", noprev="freq", sign_ctx="d", one_ctx="d", init=4, inc=32):
    total = 0.0
    D = len(levels)
    for chunk in chunks:
        ab = AdaptiveBit(max_shift, 2048, fixed)
        ft = FreqTables(init, inc)
        for k, block in enumerate(chunk):
            pb = chunk[k - 1] if k > 0 else []
            eqs = []  # per token: list of per-digit eq flags (or None without prev)
            for t, tok in enumerate(block):
                pt = pb[t] if t < len(pb) else None
                if pt is None:
                    eqs.append(None)
                    for d in range(D):
                        if noprev == "freq":
                            total += ft.cost((d,), levels[d], tok[d])
                        elif noprev == "freq-left":
                            lt = block[t - 1][d] if t > 0 else levels[d]
                            total += ft.cost((d, lt), levels[d], tok[d])
                        elif noprev == "bits":
                            total += bin_digit(ab, ("np", d), tok[d], levels[d])
                    continue
                le = eqs[t - 1] if t > 0 else None
                ue = eqs[t - width] if t >= width else None
                row = []
                nmis = 0
                for d in range(D):
                    p = pt[d]
                    s = tok[d]
                    L = levels[d]
                    if eq_ctx == "d":
                        key = (d,)
                    elif eq_ctx == "nmis":
                        key = (d, min(nmis, 2))
                    elif eq_ctx == "nmis+nbr":
                        nb = (le[d] if le is not None else 2) + 3 * (ue[d] if ue is not None else 2)
                        key = (d, min(nmis, 2), nb)
                    elif eq_ctx == "nmis+nbrsum":
                        nb = (le[d] if le is not None else 0) + (ue[d] if ue is not None else 0)
                        key = (d, min(nmis, 2), nb)
                    elif eq_ctx == "nmis+nbrtok":
                        lt_ = (min(le) if le is not None else 2)
                        ut_ = (min(ue) if ue is not None else 2)
                        key = (d, min(nmis, 2), lt_ + 3 * ut_)
                    elif eq_ctx == "nmis+nbr+p":
                        nb = (le[d] if le is not None else 0) + (ue[d] if ue is not None else 0)
                        key = (d, min(nmis, 2), nb, p)
                    total += ab.cost(("eq",) + key, int(s != p), eq_init)
                    row.append(int(s == p))
                    if s == p:
                        continue
                    nmis += 1
                    cands1 = [x for x in (p - 1, p + 1) if 0 <= x < L]
                    rest = L - 1 - len(cands1)
                    if rest > 0:
                        total += ab.cost(("one", d) if one_ctx == "d" else ("one", d, min(nmis, 2)), int(abs(s - p) != 1))
                    if abs(s - p) == 1:
                        if len(cands1) == 2:
                            sk = ("sign", d) if sign_ctx == "d" else ("sign", d, p)
                            total += ab.cost(sk, int(s > p))
                    else:
                        if far == "uniform":
                            total += LOG2[rest]
                        elif far == "tree":
                            total += bin_digit(ab, ("far", d), s, L)
                        elif far == "dist":
                            # |s - p| - 2 in unary-ish: bit "distance 2" then uniform
                            far_c = [x for x in range(L) if abs(x - p) >= 2]
                            two = [x for x in far_c if abs(x - p) == 2]
                            if len(two) < len(far_c):
                                total += ab.cost(("far2", d), int(abs(s - p) != 2))
                            if abs(s - p) == 2:
                                total += LOG2[len(two)]
                            else:
                                total += LOG2[len(far_c) - len(two)]
                eqs.append(row)
        total += 40
    return total


def candidates2():
    return {
        "bin d": lambda L, ch: binarised(L, ch, eq_ctx="d"),
        "bin nmis": lambda L, ch: binarised(L, ch, eq_ctx="nmis"),
        "bin nmis+nbr": lambda L, ch: binarised(L, ch, eq_ctx="nmis+nbr"),
        "bin nmis+nbrsum": lambda L, ch: binarised(L, ch, eq_ctx="nmis+nbrsum"),
        "bin nmis+nbrtok": lambda L, ch: binarised(L, ch, eq_ctx="nmis+nbrtok"),
        "bin nmis+nbr+p": lambda L, ch: binarised(L, ch, eq_ctx="nmis+nbr+p"),
        "bin nbrsum s4": lambda L, ch: binarised(L, ch, eq_ctx="nmis+nbrsum", max_shift=4),
        "bin nbrsum s6": lambda L, ch: binarised(L, ch, eq_ctx="nmis+nbrsum", max_shift=6),
        "bin nbrsum fixed5": lambda L, ch: binarised(L, ch, eq_ctx="nmis+nbrsum", fixed=5),
        "bin nbrsum fixed4": lambda L, ch: binarised(L, ch, eq_ctx="nmis+nbrsum", fixed=4),
        "bin nbrsum eq-init": lambda L, ch: binarised(L, ch, eq_ctx="nmis+nbrsum", eq_init=3277),
        "bin nbrsum far-tree": lambda L, ch: binarised(L, ch, eq_ctx="nmis+nbrsum", far="tree"),
        "bin nbrsum far-dist": lambda L, ch: binarised(L, ch, eq_ctx="nmis+nbrsum", far="dist"),
        "bin nbrsum sign-p": lambda L, ch: binarised(L, ch, eq_ctx="nmis+nbrsum", sign_ctx="p"),
        "bin nbrsum np-bits": lambda L, ch: binarised(L, ch, eq_ctx="nmis+nbrsum", noprev="bits"),
        "bin nbrsum np-left": lambda L, ch: binarised(L, ch, eq_ctx="nmis+nbrsum", noprev="freq-left"),
        "bin nbrsum np-init1": lambda L, ch: binarised(L, ch, eq_ctx="nmis+nbrsum", init=1),
    }


class MixBit(AdaptiveBit):
    """Averages the probabilities of several AdaptiveBit contexts: p = (p_1 + … + p_m) // m; each
    context then adapts on its own."""

    def cost(self, keys, bit, init=None):
        if not isinstance(keys, list):
            keys = [keys]
        states = [self.s.get(k, (self.init, 0)) for k in keys]
        p = sum(st[0] for st in states) // len(states)
        bits = LOG2[4096] - (LOG2[4096 - p] if bit else LOG2[p])
        for k, (q, n) in zip(keys, states):
            shift = self.fixed if self.fixed else min(self.max_shift, (n + 2).bit_length() - 1)
            q = q - (q >> shift) if bit else q + ((4096 - q) >> shift)
            self.s[k] = (q, n + 1)
        return bits


def tree_mix(mb, keyfn, s, n, bits_tree=3):
    """bin_digit with a list of contexts per node: keyfn(node) -> [keys]."""
    total = 0.0
    node = 1
    for depth in range(bits_tree):
        i = bits_tree - 1 - depth
        bit = (s >> i) & 1
        prefix = node - (1 << depth)
        if ((2 * prefix + 1) << i) < n:
            total += mb.cost(keyfn(node), bit)
        node = (node << 1) | bit
    return total


def bin2(levels, chunks, width=16, eq_keys=None, np_keys=None, max_shift=5,
         side_keys=lambda what, d, p: [(what, d)]):
    """Binarised model with context mixing: eq_keys(d, nmis, le, ue, p) and np_keys(d, node, left,
    up, lower) give lists of contexts whose probabilities are averaged."""
    total = 0.0
    D = len(levels)
    for chunk in chunks:
        mb = MixBit(max_shift)
        for k, block in enumerate(chunk):
            pb = chunk[k - 1] if k > 0 else []
            eqs = []
            for t, tok in enumerate(block):
                pt = pb[t] if t < len(pb) else None
                if pt is None:
                    eqs.append(None)
                    for d in range(D):
                        left = block[t - 1][d] if t > 0 else levels[d]
                        up = block[t - width][d] if t >= width else levels[d]
                        lower = tok[d - 1] if d > 0 else 0
                        total += tree_mix(mb, lambda node: np_keys(d, node, left, up, lower), tok[d], levels[d])
                    continue
                le = eqs[t - 1] if t > 0 else None
                ue = eqs[t - width] if t >= width else None
                row = []
                nmis = 0
                for d in range(D):
                    p, s, L = pt[d], tok[d], levels[d]
                    total += mb.cost(eq_keys(d, min(nmis, 2), le[d] if le else 2, ue[d] if ue else 2, p),
                                     int(s != p))
                    row.append(int(s == p))
                    if s == p:
                        continue
                    nmis += 1
                    cands1 = [x for x in (p - 1, p + 1) if 0 <= x < L]
                    rest = L - 1 - len(cands1)
                    if rest > 0:
                        total += mb.cost(side_keys("one", d, p), int(abs(s - p) != 1))
                    if abs(s - p) == 1:
                        if len(cands1) == 2:
                            total += mb.cost(side_keys("sign", d, p), int(s > p))
                    else:
                        total += LOG2[rest]
                eqs.append(row)
        total += 40
    return total


def candidates3():
    E = lambda d, nm, le, ue, p: [("eq", d, nm)]
    NP = lambda d, node, left, up, lower: [("np", d, node)]
    EQ3 = lambda d, nm, le, ue, p: [("eq", d, nm), ("eqn", d, nm, le, ue), ("eqp", d, nm, p)]
    EQ2P = lambda d, nm, le, ue, p: [("eq", d, nm), ("eqp", d, p)]
    NP4 = lambda d, node, left, up, lower: [("np", d, node), ("npl", d, node, left), ("npu", d, node, up), ("npo", d, node, lower)]
    NP3 = lambda d, node, left, up, lower: [("np", d, node), ("npl", d, node, left), ("npu", d, node, up)]
    SIDE = lambda what, d, p: [(what, d), (what, d, p)]
    return {
        "b2 base": lambda L, ch: bin2(L, ch, eq_keys=E, np_keys=NP),
        "b2 eq mix nbr": lambda L, ch: bin2(L, ch, eq_keys=lambda d, nm, le, ue, p: [("eq", d, nm), ("eqn", d, nm, le, ue)], np_keys=NP),
        "b2 eq mix nbr,p": lambda L, ch: bin2(L, ch, eq_keys=lambda d, nm, le, ue, p: [("eq", d, nm), ("eqn", d, nm, le, ue), ("eqp", d, nm, p)], np_keys=NP),
        "b2 eq mix p": lambda L, ch: bin2(L, ch, eq_keys=lambda d, nm, le, ue, p: [("eq", d, nm), ("eqp", d, p)], np_keys=NP),
        "b2 np mix left": lambda L, ch: bin2(L, ch, eq_keys=E, np_keys=lambda d, node, left, up, lower: [("np", d, node), ("npl", d, node, left)]),
        "b2 np mix left,up": lambda L, ch: bin2(L, ch, eq_keys=E, np_keys=lambda d, node, left, up, lower: [("np", d, node), ("npl", d, node, left), ("npu", d, node, up)]),
        "b2 np mix lower": lambda L, ch: bin2(L, ch, eq_keys=E, np_keys=lambda d, node, left, up, lower: [("np", d, node), ("npo", d, node, lower)]),
        "b2 np mix all": lambda L, ch: bin2(L, ch, eq_keys=E, np_keys=lambda d, node, left, up, lower: [("np", d, node), ("npl", d, node, left), ("npu", d, node, up), ("npo", d, node, lower)]),
        "C eq3 np4": lambda L, ch: bin2(L, ch, eq_keys=EQ3, np_keys=NP4),
        "rc-fsq-2": lambda L, ch: bin2(L, ch, eq_keys=EQ3, np_keys=NP4),  # the chosen one, §6.3
        "C eq3 np3": lambda L, ch: bin2(L, ch, eq_keys=EQ3, np_keys=NP3),
        "C eq2p np3": lambda L, ch: bin2(L, ch, eq_keys=EQ2P, np_keys=NP3),
        "C eq3 np3 side": lambda L, ch: bin2(L, ch, eq_keys=EQ3, np_keys=NP3, side_keys=SIDE),
        "C eq3 np4 side": lambda L, ch: bin2(L, ch, eq_keys=EQ3, np_keys=NP4, side_keys=SIDE),
        "C eq3 np4 side s6": lambda L, ch: bin2(L, ch, eq_keys=EQ3, np_keys=NP4, side_keys=SIDE, max_shift=6),
        "b2 s6": lambda L, ch: bin2(L, ch, eq_keys=E, np_keys=NP, max_shift=6),
        "b2 s4": lambda L, ch: bin2(L, ch, eq_keys=E, np_keys=NP, max_shift=4),
    }


_orig_candidates = candidates


def candidates(levels):  # noqa: F811 (both families)
    c = _orig_candidates(levels)
    c.update(candidates2())
    c.update(candidates3())
    return c


if __name__ == "__main__":
    main()
