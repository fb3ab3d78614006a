// Plain reference versions of the kernels: straightforward loops in double precision with libm.
// They are the independent oracle the tests compare every fast path against (dav1d's checkasm
// idea). Not used by the engine. Layout and semantics as documented in include/ckernels.h.
#include <math.h>
#include "ckernels.h"

static void ref_rmsnorm_rows(const float *x, size_t ldx, float *y, size_t ldy, size_t rows, size_t n,
                             const float *weight, float eps) {
    for (size_t r = 0; r < rows; r++) {
        double sum = 0;
        for (size_t j = 0; j < n; j++) sum += (double)x[r * ldx + j] * x[r * ldx + j];
        double scale = 1.0 / sqrt(sum / (double)n + (double)eps);
        for (size_t j = 0; j < n; j++) y[r * ldy + j] = (float)(x[r * ldx + j] * scale * weight[j]);
    }
}

static void ref_rope_rows(float *x, size_t ldx, size_t rows, size_t heads, size_t head_dim,
                          const float *cos2, const float *sin2, size_t ldt) {
    for (size_t r = 0; r < rows; r++) {
        for (size_t h = 0; h < heads; h++) {
            float *p = x + r * ldx + h * head_dim;
            for (size_t j = 0; j + 1 < head_dim; j += 2) {
                double c = cos2[r * ldt + j], s = sin2[r * ldt + j + 1];  // sin2[j+1] = +sin
                double x0 = p[j], x1 = p[j + 1];
                p[j] = (float)(x0 * c - x1 * s);
                p[j + 1] = (float)(x0 * s + x1 * c);
            }
        }
    }
}

static void ref_silu_mul_rows(const float *gate, const float *up, size_t ldin, float *y, size_t ldy,
                              size_t rows, size_t n) {
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < n; j++) {
            double g = gate[r * ldin + j];
            y[r * ldy + j] = (float)(g / (1.0 + exp(-g)) * up[r * ldin + j]);
        }
}

// The logits are scaled and shifted in float32, as the model defines them (logits / sqrt(d) is a
// float32 operation, and so is x - max): the rounding of x - max is part of the definition, and
// it alone moves exp by up to |x - max| * 2^-24 relative. Everything after is in double.
static void ref_softmax_rows(float *x, size_t ldx, size_t rows, size_t n, float divisor) {
    for (size_t r = 0; r < rows; r++) {
        float *p = x + r * ldx;
        float m = -INFINITY;
        double sum = 0;
        for (size_t j = 0; j < n; j++) { p[j] = p[j] / divisor; m = p[j] > m ? p[j] : m; }
        for (size_t j = 0; j < n; j++) sum += exp((double)(p[j] - m));
        for (size_t j = 0; j < n; j++) p[j] = (float)(exp((double)(p[j] - m)) / sum);
    }
}

static void ref_tanh(const float *x, float *y, size_t n) {
    for (size_t j = 0; j < n; j++) y[j] = (float)tanh((double)x[j]);
}

static void ref_add(float *dst, const float *src, size_t n) {
    for (size_t j = 0; j < n; j++) dst[j] += src[j];
}

static void ref_fsq(const float *z, size_t ldz, size_t rows, size_t dim, const ck_fsq_level *levels,
                    float *codes, size_t ldc, int32_t *indices) {
    for (size_t r = 0; r < rows; r++) {
        int32_t index = 0;
        for (size_t d = 0; d < dim; d++) {
            double bounded = tanh((double)z[r * ldz + d] + levels[d].shift) * levels[d].half_l
                - levels[d].offset;
            double rounded = nearbyint(bounded);  // default rounding mode: ties to even
            codes[r * ldc + d] = (float)(rounded / levels[d].half_width);
            index += ((int32_t)rounded + levels[d].half_width) * levels[d].basis;
        }
        indices[r] = index;
    }
}

static const ck_kernels reference_table = {
    .name = "reference",
    .rmsnorm_rows = ref_rmsnorm_rows,
    .rope_rows = ref_rope_rows,
    .silu_mul_rows = ref_silu_mul_rows,
    .softmax_rows = ref_softmax_rows,
    .tanh = ref_tanh,
    .add = ref_add,
    .fsq = ref_fsq,
};

const ck_kernels *ck_kernels_reference(void) { return &reference_table; }
