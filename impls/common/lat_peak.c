/* lat_peak.c — the machine's own ceilings, compiled like the kernels
 * (-O3 -march=native) so they measure what the kernels can reach:
 *   lat_fma_loop   independent FMA chains in vector registers (FMA issue peak)
 *   lat_triad      STREAM triad a = b + s·c (bandwidth; 12 bytes per element)
 * The harness (suites/harness/roofline.c) times them per thread count. */
#include "lat_kernel.h"

/* Runs `iters` rounds of 12 independent FMA chains; returns a value the caller
 * must consume (keeps the loop alive). FLOPs = iters · 12 · width · 2. */
float lat_fma_loop(long iters, float seed, int *width);
float lat_fma_loop(long iters, float seed, int *width)
{
#if defined(__AVX512F__)
    *width = 16;
    __m512 a[12];
    for (int i = 0; i < 12; i++)
        a[i] = _mm512_set1_ps(seed + (float)i * 1e-3f);
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++)
            a[i] = _mm512_fmadd_ps(a[i], m, c);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++)
        s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
#elif defined(__AVX2__) && defined(__FMA__)
    *width = 8;
    __m256 a[12];
    for (int i = 0; i < 12; i++)
        a[i] = _mm256_set1_ps(seed + (float)i * 1e-3f);
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++)
            a[i] = _mm256_fmadd_ps(a[i], m, c);
    __m256 s = a[0];
    for (int i = 1; i < 12; i++)
        s = _mm256_add_ps(s, a[i]);
    float t[8];
    _mm256_storeu_ps(t, s);
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
#else
    *width = 1;
    float a[12];
    for (int i = 0; i < 12; i++)
        a[i] = seed + (float)i * 1e-3f;
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++)
            a[i] = a[i] * 0.999999f + 1e-7f;
    float s = 0;
    for (int i = 0; i < 12; i++)
        s += a[i];
    return s;
#endif
}

void lat_triad(float *restrict a, const float *restrict b, const float *restrict c, float s, long n, int nthreads);
void lat_triad(float *restrict a, const float *restrict b, const float *restrict c, float s, long n, int nthreads)
{
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (long i = 0; i < n; i++)
        a[i] = b[i] + s * c[i];
}
