// bf16_attention.c: packing one head's bf16 keys and values for ck_bf16_gemm, so that attention's
// two products (logits Q·Kᵀ and P·V) run on the AVX512-BF16 kernel of bf16_gemm.c (ck_bf16.h).
//
// Keys: W = Kᵀ [hd × keys]. In the packed layout (panels of 32 columns, k-pairs interleaved) the
// 32-bit pair (K[j][2q], K[j][2q+1]) of key j goes to column j of pair q: one 32-bit copy per pair
// (a transpose of 32-bit elements). Values: W = V [keys × hd]; pair q holds keys 2q and 2q+1, so
// two key rows interleave. Cost: one copy per bf16 value (keys·hd for each), against
// 4·rows·keys·hd flops of the two products that read them (rows = the query rows of a tile).
// Reads the rows once in order (row strides ld), writes the packed buffer in 64-value groups.
#include <string.h>
#include "ckernels.h"

void ck_bf16_pack_bt_rows(const uint16_t *src, size_t ld, size_t count, size_t first, size_t k, uint16_t *packed) {
    size_t kp = (k + 1) / 2;
    for (size_t i = 0; i < count; i++) {
        size_t col = first + i, p = col / 32, j = col % 32;
        const uint16_t *row = src + i * ld;
        uint16_t *dst = packed + p * kp * 64 + 2 * j;
        for (size_t q = 0; q < k / 2; q++) {
            dst[q * 64] = row[2 * q];
            dst[q * 64 + 1] = row[2 * q + 1];
        }
        if (k & 1) {
            dst[(kp - 1) * 64] = row[k - 1];
            dst[(kp - 1) * 64 + 1] = 0;
        }
    }
}

void ck_bf16_pack_b_rows(const uint16_t *src, size_t ld, size_t count, size_t first, size_t k, size_t n,
                         uint16_t *packed) {
    size_t kp = (k + 1) / 2, panels = (n + 31) / 32;
    for (size_t i = 0; i < count; i++) {
        size_t row = first + i, q = row / 2, e = row % 2;
        const uint16_t *s = src + i * ld;
        for (size_t p = 0; p < panels; p++) {
            uint16_t *dst = packed + (p * kp + q) * 64 + e;
            size_t cols = n - p * 32 < 32 ? n - p * 32 : 32;
            for (size_t j = 0; j < cols; j++) dst[2 * j] = s[p * 32 + j];
        }
    }
}

void ck_bf16_pack_pad(size_t k, size_t n, uint16_t *packed) {
    size_t kp = (k + 1) / 2, panels = (n + 31) / 32;
    for (size_t p = 0; p < panels; p++) {
        // Columns n.. of the last panel, every pair.
        size_t cols = n - p * 32 < 32 ? n - p * 32 : 32;
        if (cols < 32)
            for (size_t q = 0; q < kp; q++) memset(packed + (p * kp + q) * 64 + 2 * cols, 0, (32 - cols) * 2 * sizeof(uint16_t));
        // Row k of an odd k: the second half of the last pair (the kernel multiplies A's zero by it).
        if (k & 1)
            for (size_t j = 0; j < 32; j++) packed[(p * kp + kp - 1) * 64 + 2 * j + 1] = 0;
    }
}
