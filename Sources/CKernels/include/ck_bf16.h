// ck_bf16: bfloat16 storage and the AVX512-BF16 GEMM (bf16_gemm.c). Debian's OpenBLAS 0.3.21 has
// no sbgemm, so etok's bf16 path multiplies with this kernel.
//
// bf16 is the top half of an IEEE binary32: 1 sign, 8 exponent, 7 fraction bits. Conversion from
// float32 rounds to nearest, ties to even, on the bits (integer arithmetic, so subnormals round
// like any value and the result is the same on every CPU); NaN stays a quiet NaN with its sign,
// +-Inf stays Inf, and finite values beyond the largest bf16 round to Inf.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// float32 -> bf16, nearest-even (see above).
uint16_t ck_bf16_from_f32(float x);
/// bf16 -> float32 (exact).
float ck_f32_from_bf16(uint16_t b);
/// y[i] = bf16(x[i]) for n values (vectorised where AVX-512 runs; same bits as the scalar one).
void ck_bf16_round_n(const float *x, uint16_t *y, size_t n);
/// y[i] = float32(x[i]) for n values.
void ck_f32_from_bf16_n(const uint16_t *x, float *y, size_t n);

/// 1 when this CPU (and OS) runs the bf16 GEMM: AVX512-BF16 with AVX-512 F, BW and VL, and the
/// environment variable ETOK_CKERNELS_ISA (baseline, avx2 or avx512: each lowers the choice
/// below "avx512bf16") does not forbid it. Cheap after the first call; thread-safe.
int ck_bf16_gemm_available(void);

/// uint16 elements of W[k x n] packed for ck_bf16_gemm: panels of 32 columns, k rounded up to
/// pairs (ceil(n/32) * ceil(k/2) * 64).
size_t ck_bf16_packed_count(size_t k, size_t n);

/// Packs float32 W[k x n] (row stride ldw) into `packed` (ck_bf16_packed_count elements), bf16
/// nearest-even. Layout: for panel p (columns 32p..32p+31) and k-pair q, 64 values at
/// (p * ceil(k/2) + q) * 64: value 2j+e is W[2q+e][32p+j]; zeros beyond k and n.
void ck_bf16_pack_b(const float *w, size_t ldw, size_t k, size_t n, uint16_t *packed);

/// Packing from bf16 rows (bf16_attention.c), for attention's products. Both write into a buffer of
/// ck_bf16_packed_count(k, n) elements in ck_bf16_pack_b's layout and touch only their own values:
/// ck_bf16_pack_bt_rows: rows 0..count-1 of src (k values each, stride ld) become columns
///   first..first+count-1 of W = srcᵀ [k x n] (keys -> Kᵀ for the logits); pads row k of an odd k.
void ck_bf16_pack_bt_rows(const uint16_t *src, size_t ld, size_t count, size_t first, size_t k, uint16_t *packed);
/// ck_bf16_pack_b_rows: rows 0..count-1 of src (n values each, stride ld) become rows
///   first..first+count-1 of W [k x n] (values -> V for P·V).
void ck_bf16_pack_b_rows(const uint16_t *src, size_t ld, size_t count, size_t first, size_t k, size_t n,
                         uint16_t *packed);
/// Zeroes what neither writes: columns n.. of the last panel and row k of an odd k.
void ck_bf16_pack_pad(size_t k, size_t n, uint16_t *packed);

/// C[m x n] = bf16(A[m x k]) . W (+ C when accumulate), W packed by ck_bf16_pack_b, products of
/// bf16 values accumulated in float32 over k in ascending pairs (vdpbf16ps). Each C value's
/// summation order depends only on k: never on m, on the row's position or on n, so a row gives
/// the same bits whatever rows run beside it. One thread; the caller splits work.
/// Only call when ck_bf16_gemm_available() is 1.
void ck_bf16_gemm(size_t m, size_t n, size_t k, const float *a, size_t lda, const uint16_t *packed,
                  float *c, size_t ldc, int accumulate);

#ifdef __cplusplus
}
#endif
