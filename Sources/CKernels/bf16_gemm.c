// bf16_gemm.c: bfloat16 conversion and the AVX512-BF16 GEMM of etok's bf16 path (ck_bf16.h).
//
// Kernel: C[m x n] = bf16(A) . W, W packed once (ck_bf16_pack_b) in panels of 32 columns whose
// k-pairs are interleaved, so one vdpbf16ps multiplies a broadcast pair (A[r][2q], A[r][2q+1]) by
// 16 columns' pairs and adds both products into 16 float32 accumulators.
//
// Micro-kernel: 8 rows x 32 columns = 16 zmm accumulators; per k-pair 2 loads of W (128 bytes), 8
// broadcasts of A and 16 vdpbf16ps (1,024 flops). Blocking: A is converted to bf16 once per block of
// MC rows (row-major, pairs adjacent; at most 256 KB, L2), then every 32-column panel of W
// (ceil(k/2) * 128 bytes) runs over all of that block's 8-row groups while it sits in L2.
// Conversion of A costs k operations per row per call against 2 * k * n flops of product.
//
// Determinism: every C value is one accumulator lane that adds the k-pairs in ascending order,
// starting from 0 (then + C when accumulating): the bits do not depend on m, on the row's
// position in its block, on n or on the blocking. Rows beyond m and columns beyond n are padded
// with zeros and never stored. vdpbf16ps treats subnormal inputs as zero and flushes subnormal
// results (DAZ/FTZ); Intel and AMD may differ in the last bit of the pair sum, so bits are
// reproducible on one kind of CPU, as OpenBLAS's are.
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ckernels.h"

#define BF16_ATTR __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl")))
#define AVX512_ATTR __attribute__((target("avx512f,avx512bw")))
#define MR 8

uint16_t ck_bf16_from_f32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u);  // quiet NaN, sign kept
    u += 0x7FFFu + ((u >> 16) & 1u);                                            // nearest, ties to even
    return (uint16_t)(u >> 16);
}

float ck_f32_from_bf16(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/// 16 floats -> 16 bf16, the same integer rounding as ck_bf16_from_f32.
AVX512_ATTR static inline __m256i round16(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)),
                                            _mm512_set1_epi32(0x7F800000));
    __m512i q = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(r, nan, q));
}

AVX512_ATTR static void round_n_avx512(const float *x, uint16_t *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm256_storeu_si256((__m256i *)(y + i), round16(_mm512_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = ck_bf16_from_f32(x[i]);
}

AVX512_ATTR static void widen_n_avx512(const uint16_t *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(x + i)));
        _mm512_storeu_ps(y + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
    for (; i < n; i++) y[i] = ck_f32_from_bf16(x[i]);
}

static int has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

void ck_bf16_round_n(const float *x, uint16_t *y, size_t n) {
    if (has_avx512()) { round_n_avx512(x, y, n); return; }
    for (size_t i = 0; i < n; i++) y[i] = ck_bf16_from_f32(x[i]);
}

void ck_f32_from_bf16_n(const uint16_t *x, float *y, size_t n) {
    if (has_avx512()) { widen_n_avx512(x, y, n); return; }
    for (size_t i = 0; i < n; i++) y[i] = ck_f32_from_bf16(x[i]);
}

int ck_bf16_gemm_available(void) {
    ck_cpu_features f = ck_cpu_detect();
    if (!(f.avx512_bf16 && f.avx512f && f.avx512bw && f.avx512vl)) return 0;
    const char *env = getenv("ETOK_CKERNELS_ISA");
    if (env && (strcmp(env, "baseline") == 0 || strcmp(env, "avx2") == 0 || strcmp(env, "avx512") == 0)) return 0;
    return 1;
}

size_t ck_bf16_packed_count(size_t k, size_t n) { return ((n + 31) / 32) * ((k + 1) / 2) * 64; }

void ck_bf16_pack_b(const float *w, size_t ldw, size_t k, size_t n, uint16_t *packed) {
    size_t kp = (k + 1) / 2, panels = (n + 31) / 32;
    for (size_t p = 0; p < panels; p++) {
        for (size_t q = 0; q < kp; q++) {
            uint16_t *dst = packed + (p * kp + q) * 64;
            for (size_t j = 0; j < 32; j++) {
                size_t col = p * 32 + j;
                for (size_t e = 0; e < 2; e++) {
                    size_t row = 2 * q + e;
                    dst[2 * j + e] = (row < k && col < n) ? ck_bf16_from_f32(w[row * ldw + col]) : 0;
                }
            }
        }
    }
}

/// 8 rows (apk: row r at apk + r * 2kp, bf16 pairs) x one 32-column panel (bp) -> C.
BF16_ATTR static void kernel_8x32(const uint16_t *apk, size_t kp, const uint16_t *bp, float *c, size_t ldc,
                                  size_t rows, size_t cols, int accumulate) {
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    const uint32_t *a32 = (const uint32_t *)apk;
    for (size_t q = 0; q < kp; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)(bp + q * 64));
        __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(bp + q * 64 + 32));
        for (int r = 0; r < MR; r++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a32[r * kp + q]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
        }
    }
    __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
    __mmask16 m1 = cols >= 32 ? 0xFFFF : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1) : 0;
    for (size_t r = 0; r < rows; r++) {
        float *cr = c + r * ldc;
        __m512 v0 = acc[r][0], v1 = acc[r][1];
        if (accumulate) {
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), v0);
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr + 16), v1);
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

BF16_ATTR static void gemm_avx512bf16(size_t m, size_t n, size_t k, const float *a, size_t lda,
                                      const uint16_t *packed, float *c, size_t ldc, int accumulate) {
    size_t kp = (k + 1) / 2, panels = (n + 31) / 32;
    // Rows per converted block of A: at most 256 KB of bf16, at least one 8-row group.
    size_t mc = (256 * 1024) / (4 * kp);
    mc = mc < MR ? MR : mc - mc % MR;
    if (mc > 256) mc = 256;
    size_t mblock = m < mc ? ((m + MR - 1) / MR) * MR : mc;
    uint16_t *apk = aligned_alloc(64, ((mblock * 2 * kp * sizeof(uint16_t)) + 63) / 64 * 64);
    if (!apk) abort();
    for (size_t i0 = 0; i0 < m; i0 += mblock) {
        size_t rows = m - i0 < mblock ? m - i0 : mblock;
        size_t groups = (rows + MR - 1) / MR;
        for (size_t r = 0; r < groups * MR; r++) {
            uint16_t *dst = apk + r * 2 * kp;
            if (r < rows) {
                round_n_avx512(a + (i0 + r) * lda, dst, k);
                if (k & 1) dst[k] = 0;
            } else {
                memset(dst, 0, 2 * kp * sizeof(uint16_t));
            }
        }
        for (size_t p = 0; p < panels; p++) {
            size_t cols = n - p * 32 < 32 ? n - p * 32 : 32;
            for (size_t g = 0; g < groups; g++) {
                size_t grows = rows - g * MR < MR ? rows - g * MR : MR;
                kernel_8x32(apk + g * MR * 2 * kp, kp, packed + p * kp * 64, c + (i0 + g * MR) * ldc + p * 32, ldc,
                            grows, cols, accumulate);
            }
        }
    }
    free(apk);
}

/// 1 when the CPU runs the kernel (cached; the environment is not consulted here).
static int cpu_runs_bf16(void) {
    static _Atomic int known = -1;
    int v = known;
    if (v < 0) {
        ck_cpu_features f = ck_cpu_detect();
        v = f.avx512_bf16 && f.avx512f && f.avx512bw && f.avx512vl;
        known = v;
    }
    return v;
}

void ck_bf16_gemm(size_t m, size_t n, size_t k, const float *a, size_t lda, const uint16_t *packed,
                  float *c, size_t ldc, int accumulate) {
    if (m == 0 || n == 0) return;
    if (!cpu_runs_bf16()) {
        // Callers check ck_bf16_gemm_available() first; never die of SIGILL instead.
        fputs("etok: internal error: the bf16 GEMM was called on a CPU without AVX512-BF16\n", stderr);
        abort();
    }
    if (k == 0) {
        if (!accumulate) for (size_t r = 0; r < m; r++) memset(c + r * ldc, 0, n * sizeof(float));
        return;
    }
    gemm_avx512bf16(m, n, k, a, lda, packed, c, ldc, accumulate);
}
