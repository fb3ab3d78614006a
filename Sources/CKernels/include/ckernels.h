// CKernels: fp32 elementwise hot loops (RMSNorm, RoPE, SiLU·mul, softmax, tanh, FSQ) with
// runtime CPU dispatch (AVX-512 / AVX2 / baseline). Imported only by EtokTensor.
#pragma once
#include <stddef.h>
#include <stdint.h>

/// Name of the instruction set the dispatcher selected ("avx512", "avx2" or "baseline").
const char *ck_isa_name(void);
