// ck_cpu: what the CPU (and the OS, for the wide registers) supports, read with cpuid and xgetbv,
// for choosing OpenBLAS's kernels (EtokTensor's BLASKernels). Separate from the kernel tables'
// own dispatch (dispatch.c), which only needs __builtin_cpu_supports.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

/// Vendors the choice distinguishes.
typedef enum ck_cpu_vendor {
    CK_CPU_OTHER = 0,
    CK_CPU_INTEL = 1,
    CK_CPU_AMD = 2,
} ck_cpu_vendor;

/// CPU facts. Each feature flag is 1 only when the CPU has it AND the OS saves the registers it
/// needs (XCR0: YMM state for AVX/AVX2/FMA, opmask and ZMM state for AVX-512), so a flag means
/// "usable here". family and model are the display values (base + extended, as /proc/cpuinfo).
typedef struct ck_cpu_features {
    ck_cpu_vendor vendor;
    int family;
    int model;
    int avx;
    int avx2;
    int fma;
    int avx512f;
    int avx512bw;
    int avx512dq;
    int avx512vl;
    int avx512_bf16;
} ck_cpu_features;

/// Reads the features of the CPU this runs on (all zero on a non-x86 build). Cheap; thread-safe.
ck_cpu_features ck_cpu_detect(void);

#ifdef __cplusplus
}
#endif
