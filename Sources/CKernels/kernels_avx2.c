// Fast kernels compiled for the avx2 instruction set (target "avx2"); the code is in simd_impl.h.
// Chosen at run time by dispatch.c only when the CPU supports it.
#define CK_TARGET "avx2"
#define CK_SUFFIX avx2
#define CK_NAME "avx2"
#include "simd_impl.h"
