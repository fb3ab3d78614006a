// CKernels: the fp32 elementwise hot loops of the ElasticTok engine (RMSNorm, RoPE, SiLU·mul,
// row softmax, tanh, FSQ, add) with runtime CPU dispatch between AVX-512, AVX2 and a baseline
// (SSE2) path, in the manner of dav1d: one function table per instruction set, chosen once.
// Imported only by EtokTensor.
//
// Every kernel exists twice:
//   - the fast version (ck_kernels_for(isa) / ck_kernels_best()), written once in simd_impl.h with
//     16-lane vector types and compiled once per instruction set;
//   - a plain reference version (ck_kernels_reference()), straightforward loops in double
//     precision with libm, used by the tests as the independent oracle.
//
// Determinism guarantee (see simd_impl.h for the why): the fast versions use only IEEE-754
// operations that are correctly rounded (+, -, *, /, sqrt, compare, bit operations), never FMA
// (contraction is disabled in the source), never libm, and the same 16-lane order for every
// reduction on every path. Their results are therefore BIT-IDENTICAL across the AVX-512, AVX2
// and baseline paths and across machines, for the same inputs. They agree with the reference
// versions within a few float ulps (tests allow 1e-6 relative; exp/tanh are polynomial
// approximations accurate to about 2 ulp).
//
// Layout conventions: matrices are row-major float32; `ld*` arguments are row strides in
// elements (>= the row length); `rows` counts rows; `n` is the row length. Output may alias
// input only where a kernel says "in place".
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "ck_cpu.h"  // CPU features for EtokTensor's BLAS kernel choice (this header is the umbrella)
#include "ck_bf16.h"  // bf16 storage and the AVX512-BF16 GEMM

#ifdef __cplusplus
extern "C" {
#endif

/// The instruction sets a kernel table can be compiled for.
typedef enum ck_isa {
    CK_ISA_BASELINE = 0,  ///< x86-64 baseline (SSE2): always available.
    CK_ISA_AVX2 = 1,      ///< AVX2 (256-bit).
    CK_ISA_AVX512 = 2,    ///< AVX-512F (512-bit).
} ck_isa;

/// Per-dimension constants of finite scalar quantisation (FSQ), computed once by the caller from
/// the level count L: half_l = (L-1)(1-1e-3)/2, offset = 0.5 if L is even else 0,
/// shift = tan(offset/half_l), half_width = L div 2, basis = product of the earlier levels.
typedef struct ck_fsq_level {
    float half_l;
    float offset;
    float shift;
    int32_t half_width;
    int32_t basis;
} ck_fsq_level;

/// One table of kernels. All function pointers are non-null.
typedef struct ck_kernels {
    /// Instruction set name: "avx512", "avx2", "baseline" or "reference".
    const char *name;

    /// y[r] = x[r] * (1 / sqrt(mean(x[r]^2) + eps)) * weight, for `rows` rows of length n.
    /// May run in place (y == x with ldy == ldx). Cost: 2 reads + 1 write per element.
    void (*rmsnorm_rows)(const float *x, size_t ldx, float *y, size_t ldy, size_t rows, size_t n,
                         const float *weight, float eps);

    /// Rotary embedding, in place, on interleaved pairs (x[2i], x[2i+1]) of each head.
    /// Row r (width = heads * head_dim) uses table row r: cos2[j] = cos(angle_{j/2}) and
    /// sin2[j] = -sin(angle_{j/2}) for even j, +sin(angle_{j/2}) for odd j (head_dim entries,
    /// table stride ldt). Result: (x0 c - x1 s, x0 s + x1 c) per pair. head_dim must be even.
    void (*rope_rows)(float *x, size_t ldx, size_t rows, size_t heads, size_t head_dim,
                      const float *cos2, const float *sin2, size_t ldt);

    /// y[r][j] = silu(gate[r][j]) * up[r][j] with silu(g) = g / (1 + exp(-g)).
    /// gate and up share the stride ldin (they may be the two halves of one fused GEMM output).
    void (*silu_mul_rows)(const float *gate, const float *up, size_t ldin, float *y, size_t ldy,
                          size_t rows, size_t n);

    /// In place, per row of length n: x = softmax(x / divisor) (divide, subtract the row max,
    /// exp, divide by the sum). Callers pass only the visible prefix of a masked row: keys
    /// beyond it would get exp(-FLT_MAX - max) = 0 exactly, so skipping them is equivalent.
    void (*softmax_rows)(float *x, size_t ldx, size_t rows, size_t n, float divisor);

    /// y = tanh(x) elementwise over n values; may run in place.
    void (*tanh)(const float *x, float *y, size_t n);

    /// dst += src elementwise over n values.
    void (*add)(float *dst, const float *src, size_t n);

    /// FSQ of `rows` rows of dim values: codes[r][d] = round_half_even(tanh(z + shift) * half_l
    /// - offset) / half_width and indices[r] = sum_d (rounded + half_width) * basis.
    void (*fsq)(const float *z, size_t ldz, size_t rows, size_t dim, const ck_fsq_level *levels,
                float *codes, size_t ldc, int32_t *indices);
} ck_kernels;

/// The table for `isa`, or NULL when this CPU cannot run it. Thread-safe.
const ck_kernels *ck_kernels_for(ck_isa isa);

/// The best table this CPU supports, chosen once (thread-safe). The environment variable
/// ETOK_CKERNELS_ISA=baseline|avx2|avx512 lowers the choice (for checks; never raises it).
const ck_kernels *ck_kernels_best(void);

/// The plain reference versions (double precision, libm). Slow; for tests.
const ck_kernels *ck_kernels_reference(void);

/// Name of the instruction set the dispatcher selected ("avx512", "avx2" or "baseline").
const char *ck_isa_name(void);

#ifdef __cplusplus
}
#endif
