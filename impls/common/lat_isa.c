/* lat_isa.c — which vector path the optimized kernels were compiled for
 * (recorded in meta.json beside every result). */
#include "lat_kernel.h"

const char *lat_impl_isa(void);
const char *lat_impl_isa(void)
{
#if defined(__AVX512F__)
    return "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
    return "avx2+fma";
#else
    return "portable-c";
#endif
}
