// CPU feature detection for the BLAS kernel choice (see include/ck_cpu.h): cpuid leaves 0, 1,
// 7.0 and 7.1, and XCR0 through xgetbv (only when the OS enabled it, CPUID.1:ECX.OSXSAVE).
#include "ck_cpu.h"
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

ck_cpu_features ck_cpu_detect(void) {
    ck_cpu_features f;
    memset(&f, 0, sizeof f);
    unsigned int a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
    unsigned int max_leaf = a;
    char vendor[13];
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    vendor[12] = 0;
    if (strcmp(vendor, "GenuineIntel") == 0) f.vendor = CK_CPU_INTEL;
    else if (strcmp(vendor, "AuthenticAMD") == 0) f.vendor = CK_CPU_AMD;
    if (max_leaf < 1) return f;
    __get_cpuid(1, &a, &b, &c, &d);
    int base_family = (a >> 8) & 0xF, base_model = (a >> 4) & 0xF;
    f.family = base_family == 0xF ? base_family + ((a >> 20) & 0xFF) : base_family;
    f.model = (base_family == 0x6 || base_family == 0xF) ? base_model + (((a >> 16) & 0xF) << 4) : base_model;
    int osxsave = (c >> 27) & 1, has_avx = (c >> 28) & 1, has_fma = (c >> 12) & 1;
    unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
    int ymm = (xcr0 & 0x6) == 0x6;        // SSE and AVX state
    int zmm = (xcr0 & 0xE6) == 0xE6;      // plus opmask, ZMM_Hi256, Hi16_ZMM
    f.avx = has_avx && ymm;
    f.fma = has_fma && ymm;
    if (max_leaf < 7) return f;
    __get_cpuid_count(7, 0, &a, &b, &c, &d);
    unsigned int leaf7_subleaves = a;
    f.avx2 = ((b >> 5) & 1) && ymm;
    f.avx512f = ((b >> 16) & 1) && zmm;
    f.avx512dq = ((b >> 17) & 1) && zmm;
    f.avx512bw = ((b >> 30) & 1) && zmm;
    f.avx512vl = ((b >> 31) & 1) && zmm;
    if (leaf7_subleaves >= 1) {
        __get_cpuid_count(7, 1, &a, &b, &c, &d);
        f.avx512_bf16 = ((a >> 5) & 1) && zmm;
    }
    return f;
}

#else

ck_cpu_features ck_cpu_detect(void) {
    ck_cpu_features f;
    memset(&f, 0, sizeof f);
    return f;
}

#endif
