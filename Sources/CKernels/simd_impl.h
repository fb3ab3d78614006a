// simd_impl.h: the fast kernels, written once and compiled once per instruction set.
//
// Include this after defining
//   CK_TARGET   the target attribute string ("avx512f", "avx2", or "sse2" for the baseline)
//   CK_SUFFIX   the name suffix of the generated functions and table (avx512, avx2, baseline)
//
// Layout: every kernel walks rows of contiguous float32 in chunks of 16 lanes (`vf`, a 64-byte
// vector: one zmm register with AVX-512, two ymm with AVX2, four xmm on the baseline), with the
// last partial chunk zero-padded (or -inf padded for the max) through a stack copy.
//
// Why the paths are bit-identical: the source is the same, the vector operations are lane-wise
// IEEE-754 (correctly rounded, so lane width does not matter), floating-point contraction is off
// (no FMA), rounding to integers uses the 1.5*2^23 trick (plain adds), exp and tanh are the same
// polynomials, and reductions always use 2 accumulators of 16 lanes (element i goes to lane
// i mod 32) followed by the same fixed pairwise tree. The max reduction is exact in any order.
//
// Cost: all kernels are memory-bound single passes except softmax (3 passes over a row that
// fits L1/L2) and rmsnorm (2 passes). exp costs ~12 vector ops per 16 values; tanh ~20.
#include <math.h>
#include <string.h>
#include "ckernels.h"

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)
// The 64-byte vector helpers below are always inlined, so the ABI of passing them by value
// (which -Wpsabi warns about for the AVX2 and SSE2 builds) never arises.
#pragma clang diagnostic ignored "-Wpsabi"

#define CK_CAT2(a, b) a##_##b
#define CK_CAT(a, b) CK_CAT2(a, b)
#define CK_FN(name) CK_CAT(name, CK_SUFFIX)
#define CK_ATTR __attribute__((target(CK_TARGET)))
#define CK_INLINE static inline __attribute__((always_inline, target(CK_TARGET)))

typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
#define CK_W 16

CK_INLINE vf vload(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
CK_INLINE void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }

/// Loads m < 16 values, filling the other lanes with `pad`.
CK_INLINE vf vload_part(const float *p, size_t m, float pad) {
    float tmp[CK_W];
    for (size_t i = 0; i < CK_W; i++) tmp[i] = i < m ? p[i] : pad;
    return vload(tmp);
}

CK_INLINE void vstore_part(float *p, vf v, size_t m) {
    float tmp[CK_W];
    vstore(tmp, v);
    for (size_t i = 0; i < m; i++) p[i] = tmp[i];
}

CK_INLINE vf vsplat(float s) { return (vf){0} + s; }

/// Lane-wise select: m ? a : b, with m a compare result (all ones or all zeros per lane).
CK_INLINE vf vselect(vi m, vf a, vf b) { return (vf)((m & (vi)a) | (~m & (vi)b)); }

/// The fixed reduction tree: lane0 = ((l0+l8)+(l4+l12)) + ... always in this order.
CK_INLINE float vhsum(vf a) {
    a = a + __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    a = a + __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
    a = a + __builtin_shufflevector(a, a, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    a = a + __builtin_shufflevector(a, a, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    return a[0];
}

CK_INLINE float vhmax(vf a) {
    float m = a[0];
    for (int i = 1; i < CK_W; i++) m = a[i] > m ? a[i] : m;
    return m;
}

/// Round to nearest, ties to even, for |x| < 2^22 (adds only: identical on every path).
CK_INLINE vf vround_even(vf x) {
    const float magic = 12582912.0f;  // 1.5 * 2^23
    return (x + magic) - magic;
}

/// exp(x) for float32: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, degree-7 Taylor
/// polynomial in Horner form (truncation error < 6e-9 relative), scale by 2^n in two steps so
/// that subnormal results and overflow to +inf come out right. Inputs are clamped to
/// [-104, 89]: below, the result is 0; above, +inf. About 2 ulp.
CK_INLINE vf vexp(vf x) {
    x = __builtin_elementwise_max(x, vsplat(-104.0f));
    x = __builtin_elementwise_min(x, vsplat(89.0f));
    vf n = vround_even(x * 1.44269504088896341f);
    vf r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    vf p = r * (1.0f / 5040.0f) + (1.0f / 720.0f);
    p = p * r + (1.0f / 120.0f);
    p = p * r + (1.0f / 24.0f);
    p = p * r + (1.0f / 6.0f);
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    vi ni = __builtin_convertvector(n, vi);
    vi n1 = ni >> 1;
    vi n2 = ni - n1;
    vf s1 = (vf)((n1 + 127) << 23);
    vf s2 = (vf)((n2 + 127) << 23);
    return (p * s1) * s2;
}

/// tanh(x): for |x| < 0.625 an odd polynomial x + x^3 q(x^2) (degree-6 q, least-squares fit of
/// the relative error, max 8e-8 relative in float); otherwise 1 - 2/(exp(2|x|) + 1) with the
/// sign restored (no cancellation problem there: tanh >= 0.55). About 2 ulp.
CK_INLINE vf vtanh(vf x) {
    const vi signmask = (vi){0} + (int32_t)0x80000000;
    vi sign = (vi)x & signmask;
    vf ax = (vf)((vi)x & ~signmask);
    vf s = ax * ax;
    vf q = s * 0.002142959972843528f + -0.008177395910024643f;
    q = q * s + 0.021700702607631683f;
    q = q * s + -0.05394676327705383f;
    q = q * s + 0.1333320587873459f;
    q = q * s + -0.3333333134651184f;
    vf small = ax + (ax * s) * q;
    vf e = vexp(ax + ax);
    vf large = 1.0f - 2.0f / (e + 1.0f);
    vf t = vselect(ax < 0.625f, small, large);
    return (vf)((vi)t | sign);
}

CK_ATTR static void CK_FN(rmsnorm_rows)(const float *x, size_t ldx, float *y, size_t ldy,
                                       size_t rows, size_t n, const float *weight, float eps) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        float *yr = y + r * ldy;
        vf acc0 = {0}, acc1 = {0};
        size_t i = 0;
        for (; i + 2 * CK_W <= n; i += 2 * CK_W) {
            vf a = vload(xr + i), b = vload(xr + i + CK_W);
            acc0 = acc0 + a * a;
            acc1 = acc1 + b * b;
        }
        if (i + CK_W <= n) {
            vf a = vload(xr + i);
            acc0 = acc0 + a * a;
            i += CK_W;
            if (i < n) { vf b = vload_part(xr + i, n - i, 0.0f); acc1 = acc1 + b * b; }
        } else if (i < n) {
            vf a = vload_part(xr + i, n - i, 0.0f);
            acc0 = acc0 + a * a;
        }
        float mean = vhsum(acc0 + acc1) / (float)n;
        float scale = 1.0f / sqrtf(mean + eps);
        size_t j = 0;
        for (; j + CK_W <= n; j += CK_W) vstore(yr + j, (vload(xr + j) * scale) * vload(weight + j));
        if (j < n) {
            vf v = (vload_part(xr + j, n - j, 0.0f) * scale) * vload_part(weight + j, n - j, 0.0f);
            vstore_part(yr + j, v, n - j);
        }
    }
}

CK_ATTR static void CK_FN(rope_rows)(float *x, size_t ldx, size_t rows, size_t heads, size_t head_dim,
                                    const float *cos2, const float *sin2, size_t ldt) {
    for (size_t r = 0; r < rows; r++) {
        const float *c = cos2 + r * ldt;
        const float *s = sin2 + r * ldt;
        for (size_t h = 0; h < heads; h++) {
            float *xh = x + r * ldx + h * head_dim;
            size_t j = 0;
            for (; j + CK_W <= head_dim; j += CK_W) {
                vf v = vload(xh + j);
                vf sw = __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
                vstore(xh + j, v * vload(c + j) + sw * vload(s + j));
            }
            for (; j + 1 < head_dim; j += 2) {
                float x0 = xh[j], x1 = xh[j + 1];
                xh[j] = x0 * c[j] + x1 * s[j];
                xh[j + 1] = x1 * c[j + 1] + x0 * s[j + 1];
            }
        }
    }
}

CK_ATTR static void CK_FN(silu_mul_rows)(const float *gate, const float *up, size_t ldin, float *y,
                                        size_t ldy, size_t rows, size_t n) {
    for (size_t r = 0; r < rows; r++) {
        const float *g = gate + r * ldin, *u = up + r * ldin;
        float *yr = y + r * ldy;
        size_t j = 0;
        for (; j + CK_W <= n; j += CK_W) {
            vf gv = vload(g + j);
            vstore(yr + j, (gv / (1.0f + vexp(-gv))) * vload(u + j));
        }
        if (j < n) {
            vf gv = vload_part(g + j, n - j, 0.0f);
            vstore_part(yr + j, (gv / (1.0f + vexp(-gv))) * vload_part(u + j, n - j, 0.0f), n - j);
        }
    }
}

/// x / divisor, as a multiplication when the divisor is a normal power of two (then x * (1/d)
/// is the same correctly rounded value as x / d, and much cheaper: sqrt(head_dim) is 8 for the
/// usual head size 64).
CK_INLINE vf vscale(vf v, float divisor, float reciprocal, int exact) {
    return exact ? v * reciprocal : v / divisor;
}

CK_ATTR static void CK_FN(softmax_rows)(float *x, size_t ldx, size_t rows, size_t n, float divisor) {
    if (n == 0) return;
    uint32_t bits;
    memcpy(&bits, &divisor, sizeof bits);
    uint32_t exponent = (bits >> 23) & 0xFF;
    const int exact = (bits & 0x807FFFFFu) == 0 && exponent > 1 && exponent < 253;
    const float reciprocal = 1.0f / divisor;
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ldx;
        vf vmax = vsplat(-INFINITY);
        size_t j = 0;
        for (; j + CK_W <= n; j += CK_W) {
            vf v = vscale(vload(xr + j), divisor, reciprocal, exact);
            vstore(xr + j, v);
            vmax = __builtin_elementwise_max(vmax, v);
        }
        if (j < n) {
            vf v = vscale(vload_part(xr + j, n - j, -INFINITY), divisor, reciprocal, exact);
            vstore_part(xr + j, v, n - j);
            vmax = __builtin_elementwise_max(vmax, v);
        }
        vf m = vsplat(vhmax(vmax));
        vf acc0 = {0}, acc1 = {0};
        j = 0;
        for (; j + 2 * CK_W <= n; j += 2 * CK_W) {
            vf a = vexp(vload(xr + j) - m), b = vexp(vload(xr + j + CK_W) - m);
            vstore(xr + j, a);
            vstore(xr + j + CK_W, b);
            acc0 = acc0 + a;
            acc1 = acc1 + b;
        }
        for (int half = 0; half < 2 && j < n; half++) {
            size_t m_left = n - j < CK_W ? n - j : CK_W;
            vf a = vexp(vload_part(xr + j, m_left, -INFINITY) - m);
            vstore_part(xr + j, a, m_left);
            if (half == 0) acc0 = acc0 + a; else acc1 = acc1 + a;
            j += m_left;
        }
        float sum = vhsum(acc0 + acc1);
        vf vs = vsplat(sum);
        j = 0;
        for (; j + CK_W <= n; j += CK_W) vstore(xr + j, vload(xr + j) / vs);
        if (j < n) vstore_part(xr + j, vload_part(xr + j, n - j, 0.0f) / vs, n - j);
    }
}

CK_ATTR static void CK_FN(tanh)(const float *x, float *y, size_t n) {
    size_t j = 0;
    for (; j + CK_W <= n; j += CK_W) vstore(y + j, vtanh(vload(x + j)));
    if (j < n) vstore_part(y + j, vtanh(vload_part(x + j, n - j, 0.0f)), n - j);
}

CK_ATTR static void CK_FN(add)(float *dst, const float *src, size_t n) {
    size_t j = 0;
    for (; j + CK_W <= n; j += CK_W) vstore(dst + j, vload(dst + j) + vload(src + j));
    for (; j < n; j++) dst[j] = dst[j] + src[j];
}

CK_ATTR static void CK_FN(fsq)(const float *z, size_t ldz, size_t rows, size_t dim,
                              const ck_fsq_level *levels, float *codes, size_t ldc, int32_t *indices) {
    // Rows are gathered 64 values at a time into a contiguous buffer so that tanh runs on full
    // vectors; the rest (tiny: dim is ~6) is scalar and uses the same correctly rounded ops.
    float buf[4 * CK_W];
    size_t total = rows * dim, done = 0;
    while (done < total) {
        size_t count = total - done < 4 * CK_W ? total - done : 4 * CK_W;
        for (size_t k = 0; k < count; k++) {
            size_t r = (done + k) / dim, d = (done + k) % dim;
            buf[k] = z[r * ldz + d] + levels[d].shift;
        }
        for (size_t k = 0; k < count; k += CK_W) {
            size_t m = count - k < CK_W ? count - k : CK_W;
            vf t = vtanh(vload_part(buf + k, m, 0.0f));
            vstore_part(buf + k, t, m);
        }
        for (size_t k = 0; k < count; k++) {
            size_t r = (done + k) / dim, d = (done + k) % dim;
            float bounded = buf[k] * levels[d].half_l - levels[d].offset;
            float rounded = (bounded + 12582912.0f) - 12582912.0f;
            codes[r * ldc + d] = rounded / (float)levels[d].half_width;
            if (d == 0) indices[r] = 0;
            indices[r] += ((int32_t)rounded + levels[d].half_width) * levels[d].basis;
        }
        done += count;
    }
}

const ck_kernels CK_FN(ck_table) = {
    .name = CK_NAME,
    .rmsnorm_rows = CK_FN(rmsnorm_rows),
    .rope_rows = CK_FN(rope_rows),
    .silu_mul_rows = CK_FN(silu_mul_rows),
    .softmax_rows = CK_FN(softmax_rows),
    .tanh = CK_FN(tanh),
    .add = CK_FN(add),
    .fsq = CK_FN(fsq),
};
