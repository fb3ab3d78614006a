// Runtime CPU dispatch: picks one kernel table per process from what the CPU supports, as dav1d
// does (feature test once, then plain function pointers). The tables themselves are generated
// from simd_impl.h by kernels_{avx512,avx2,baseline}.c.
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "ckernels.h"

extern const ck_kernels ck_table_avx512;
extern const ck_kernels ck_table_avx2;
extern const ck_kernels ck_table_baseline;

static int cpu_supports(ck_isa isa) {
    __builtin_cpu_init();
    switch (isa) {
    case CK_ISA_AVX512: return __builtin_cpu_supports("avx512f");
    case CK_ISA_AVX2: return __builtin_cpu_supports("avx2");
    case CK_ISA_BASELINE: return 1;
    }
    return 0;
}

const ck_kernels *ck_kernels_for(ck_isa isa) {
    if (!cpu_supports(isa)) return NULL;
    switch (isa) {
    case CK_ISA_AVX512: return &ck_table_avx512;
    case CK_ISA_AVX2: return &ck_table_avx2;
    case CK_ISA_BASELINE: return &ck_table_baseline;
    }
    return NULL;
}

static const ck_kernels *select_best(void) {
    ck_isa cap = CK_ISA_AVX512;
    const char *env = getenv("ETOK_CKERNELS_ISA");
    if (env && strcmp(env, "baseline") == 0) cap = CK_ISA_BASELINE;
    else if (env && strcmp(env, "avx2") == 0) cap = CK_ISA_AVX2;
    for (int isa = (int)cap; isa >= 0; isa--) {
        const ck_kernels *k = ck_kernels_for((ck_isa)isa);
        if (k) return k;
    }
    return &ck_table_baseline;
}

static _Atomic(const ck_kernels *) chosen = NULL;

const ck_kernels *ck_kernels_best(void) {
    const ck_kernels *k = atomic_load_explicit(&chosen, memory_order_acquire);
    if (k) return k;
    // Racing first calls compute the same answer; the store is idempotent.
    k = select_best();
    atomic_store_explicit(&chosen, k, memory_order_release);
    return k;
}

const char *ck_isa_name(void) { return ck_kernels_best()->name; }
