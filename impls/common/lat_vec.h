/* lat_vec.h — small fp32 vector helpers shared by all kernels (ggml's vec.h
 * idea): dot, axpy (y += a·x), scale, max, sum and a vector exp. One AVX-512
 * path, one AVX2+FMA path and a portable C path, chosen at build time from
 * the compiler's target macros (-march=native). Kernels call these and never
 * intrinsics directly, so the portable path always compiles.
 *
 * lat_expf: Cody–Waite range reduction x = n·ln2 + r, |r| ≤ ln2/2, a degree-6
 * polynomial for e^r and 2^n built in the exponent bits. Max relative error
 * ≈ 2 ulp over [-87, 88]; returns 0 below -87.3 (underflow is harmless, R4 of
 * spec/recurrent.md) and +inf above 88.72. -inf → 0, NaN → NaN.
 */
#ifndef LAT_VEC_H
#define LAT_VEC_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

/* ---- scalar exp with the same algorithm as the vector paths ------------- */
static inline float lat_expf(float x)
{
    if (!(x > -87.3f)) /* also catches -inf; NaN falls through below */
        return (x != x) ? x : 0.0f;
    if (x > 88.72f)
        return INFINITY;
    const float n = nearbyintf(x * 1.44269504088896341f);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float two_n;
    if (n < -126.0f) { /* gradual underflow: scale in two steps */
        int32_t e2 = ((int32_t)n + 127 + 64) << 23;
        memcpy(&two_n, &e2, 4);
        return p * two_n * 5.42101086e-20f; /* 2^-64 */
    }
    memcpy(&two_n, &e, 4);
    return p * two_n;
}

#if defined(__AVX512F__)
#define LAT_VEC_WIDTH 16
static inline __m512 lat_exp16(__m512 x)
{
    const __m512 lo = _mm512_set1_ps(-87.3f), hi = _mm512_set1_ps(88.72f);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_NGT_UQ) &
                      _mm512_cmp_ps_mask(x, x, _CMP_ORD_Q);
    __mmask16 over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
    __m512 xc = _mm512_max_ps(_mm512_min_ps(x, hi), _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512 res = _mm512_scalef_ps(p, n);
    res = _mm512_mask_mov_ps(res, under, _mm512_setzero_ps());
    res = _mm512_mask_mov_ps(res, over, _mm512_set1_ps(INFINITY));
    return res;
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
static inline __m256 lat_exp8(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.72f);
    __m256 under = _mm256_and_ps(_mm256_cmp_ps(x, lo, _CMP_NGT_UQ),
                                 _mm256_cmp_ps(x, x, _CMP_ORD_Q));
    __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 xc = _mm256_max_ps(_mm256_min_ps(x, hi), _mm256_set1_ps(-87.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n: n in [-126, 128] after the clamp to -87 (n ≥ -126) */
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 res = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    res = _mm256_andnot_ps(under, res);
    res = _mm256_blendv_ps(res, _mm256_set1_ps(INFINITY), over);
    return res;
}
#endif

/* y[i] = exp(x[i]); x and y may alias. */
static inline void lat_vec_exp(float *y, const float *x, size_t n)
{
    size_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, lat_exp16(_mm512_loadu_ps(x + i)));
#elif defined(__AVX2__) && defined(__FMA__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, lat_exp8(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++)
        y[i] = lat_expf(x[i]);
}

/* Σ x[i]·y[i] */
static inline float lat_vec_dot(const float *restrict x, const float *restrict y, size_t n)
{
    size_t i = 0;
    float s = 0.0f;
#if defined(__AVX512F__)
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
    }
    for (; i + 16 <= n; i += 16)
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    a0 = _mm256_add_ps(a0, a1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a0), _mm256_extractf128_ps(a0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    s = _mm_cvtss_f32(h);
#endif
    for (; i < n; i++)
        s += x[i] * y[i];
    return s;
}

/* y[i] += a·x[i] */
static inline void lat_vec_axpy(float *restrict y, float a, const float *restrict x, size_t n)
{
    size_t i = 0;
#if defined(__AVX512F__)
    __m512 va = _mm512_set1_ps(a);
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 va = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* y[i] *= a */
static inline void lat_vec_scale(float *y, float a, size_t n)
{
    size_t i = 0;
#if defined(__AVX512F__)
    __m512 va = _mm512_set1_ps(a);
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_mul_ps(va, _mm512_loadu_ps(y + i)));
#elif defined(__AVX2__)
    __m256 va = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
#endif
    for (; i < n; i++)
        y[i] *= a;
}

/* max_i x[i] (n ≥ 1) */
static inline float lat_vec_max(const float *x, size_t n)
{
    size_t i = 0;
    float m = -INFINITY;
#if defined(__AVX512F__)
    __m512 vm = _mm512_set1_ps(-INFINITY);
    for (; i + 16 <= n; i += 16)
        vm = _mm512_max_ps(vm, _mm512_loadu_ps(x + i));
    m = _mm512_reduce_max_ps(vm);
#endif
    for (; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static inline float lat_vec_sum(const float *x, size_t n)
{
    size_t i = 0;
    float s = 0.0f;
#if defined(__AVX512F__)
    __m512 a = _mm512_setzero_ps();
    for (; i + 16 <= n; i += 16)
        a = _mm512_add_ps(a, _mm512_loadu_ps(x + i));
    s = _mm512_reduce_add_ps(a);
#endif
    for (; i < n; i++)
        s += x[i];
    return s;
}

#endif
