// CBLAS shim: OpenBLAS's C interface (Debian: /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h,
// found through pkg-config `openblas`). Imported only by EtokTensor.
#pragma once
#include <cblas.h>
// Declared by OpenBLAS in cblas.h on 0.3.21; repeated here for older headers.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
