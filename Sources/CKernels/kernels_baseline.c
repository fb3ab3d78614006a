// Fast kernels compiled for the baseline instruction set (target "sse2"); the code is in simd_impl.h.
// Chosen at run time by dispatch.c only when the CPU supports it.
#define CK_TARGET "sse2"
#define CK_SUFFIX baseline
#define CK_NAME "baseline"
#include "simd_impl.h"
