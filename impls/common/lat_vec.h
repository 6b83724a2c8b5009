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
    /* 2^n as 2^n1 · 2^n2 (n1 = ⌊n/2⌋): both factors stay normal for every
     * n in [-126, 128], so neither the top nor the bottom of the range is lost */
    int32_t ni = (int32_t)n, n1 = ni >> 1, n2 = ni - n1;
    int32_t e1 = (n1 + 127) << 23, e2 = (n2 + 127) << 23;
    float f1, f2;
    memcpy(&f1, &e1, 4);
    memcpy(&f2, &e2, 4);
    return p * f1 * f2;
}

#if defined(__AVX512F__)
#define LAT_VEC_WIDTH 16
/* The shared reduction and polynomial of the AVX-512 exps: x = n·ln2 + r
 * (Cody–Waite, |r| ≤ ln2/2, r = x exactly for |x| < ln2/2), returns p(r)·r
 * with e^r = 1 + r + (p(r)·r)·r; the callers finish with one FMA (e^r, or
 * e^r − 1 for expm1-style uses) and the scaling by 2^n. */
static inline __m512 lat_exp16_poly(__m512 xc, __m512 *n_out, __m512 *r_out)
{
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
    *n_out = n;
    *r_out = r;
    return _mm512_mul_ps(p, r);
}

/* e^{xc} for xc already clamped to [−87, 88.72] (Cody–Waite reduction by
 * ln 2, degree-6 polynomial, 2^n by scalef), 0 in the lanes not in keep:
 * the core lat_exp16 and the tile engine's exp of x ≤ 0 share */
static inline __m512 lat_exp16_core(__m512 xc, __mmask16 keep)
{
    __m512 n, r;
    const __m512 pr = lat_exp16_poly(xc, &n, &r);
    const __m512 p = _mm512_fmadd_ps(pr, r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_scalef_ps(keep, p, n);
}

static inline __m512 lat_exp16(__m512 x)
{
    const __m512 lo = _mm512_set1_ps(-87.3f), hi = _mm512_set1_ps(88.72f);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_NGT_UQ) &
                      _mm512_cmp_ps_mask(x, x, _CMP_ORD_Q);
    __mmask16 over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
    __m512 xc = _mm512_max_ps(_mm512_min_ps(x, hi), _mm512_set1_ps(-87.0f));
    __m512 res = lat_exp16_core(xc, (__mmask16)~under);
    return _mm512_mask_mov_ps(res, over, _mm512_set1_ps(INFINITY));
}

/* lat_exp16 for x ≤ 0 or −∞ (shifted scores, log-decays): the same clamp,
 * polynomial and scaling, so the same values, without the overflow and NaN
 * lanes that cannot occur there (x ≤ −87.3 → 0) */
static inline __m512 lat_exp16_neg(__m512 x)
{
    const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GT_OQ);
    return lat_exp16_core(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), keep);
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
    /* 2^n = 2^n1 · 2^n2 with n1 = ⌊n/2⌋: normal factors for n in [-126, 128] */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256i e1 = _mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23);
    __m256i e2 = _mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23);
    __m256 res = _mm256_mul_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e1)), _mm256_castsi256_ps(e2));
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


/* dst[c·ldd + r] = src[r·lds + c] for r < rows, c < cols (out of place):
 * 8×8 blocks transposed in registers (AVX2/AVX-512 builds), scalar edges. */
static inline void lat_transpose(float *restrict dst, size_t ldd, const float *restrict src, size_t lds,
                                 int rows, int cols)
{
    int r = 0;
#if defined(__AVX2__) || defined(__AVX512F__)
    for (; r + 8 <= rows; r += 8) {
        const float *s0 = src + (size_t)r * lds;
        int c = 0;
        for (; c + 8 <= cols; c += 8) {
            const __m256 r0 = _mm256_loadu_ps(s0 + c), r1 = _mm256_loadu_ps(s0 + lds + c);
            const __m256 r2 = _mm256_loadu_ps(s0 + 2 * lds + c), r3 = _mm256_loadu_ps(s0 + 3 * lds + c);
            const __m256 r4 = _mm256_loadu_ps(s0 + 4 * lds + c), r5 = _mm256_loadu_ps(s0 + 5 * lds + c);
            const __m256 r6 = _mm256_loadu_ps(s0 + 6 * lds + c), r7 = _mm256_loadu_ps(s0 + 7 * lds + c);
            const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *d = dst + (size_t)c * ldd + (size_t)r;
            _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (; c < cols; c++)
            for (int q = r; q < r + 8; q++)
                dst[(size_t)c * ldd + (size_t)q] = src[(size_t)q * lds + (size_t)c];
    }
#endif
    for (; r < rows; r++)
        for (int c = 0; c < cols; c++)
            dst[(size_t)c * ldd + (size_t)r] = src[(size_t)r * lds + (size_t)c];
}

#endif
