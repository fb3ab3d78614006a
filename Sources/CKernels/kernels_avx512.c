// Fast kernels compiled for the avx512 instruction set (target "avx512f"); the code is in simd_impl.h.
// Chosen at run time by dispatch.c only when the CPU supports it.
#define CK_TARGET "avx512f"
#define CK_SUFFIX avx512
#define CK_NAME "avx512"
#include "simd_impl.h"
