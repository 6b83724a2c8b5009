/* lat_step.c — lat_rec_step_pre (see lat_step.h): the read-out-before-update
 * recurrent step. Same structure as lat_rec_step in lat_chunk.c: blocks of up
 * to 64 value columns, the block's v and output accumulators in registers,
 * one pass over the K state rows (load, accumulate q_i·S_i, decay, rank-1
 * update, store). */
#include "lat_step.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
/* Columns [0, 16·NV), the last vector masked by mlast; NV and HA (alpha
 * present) are compile-time constants after inlining. v and the output
 * accumulators are named registers: with __m512 arrays gcc 12 spilled one
 * accumulator to the stack (a store-forwarding chain per row, 1.5× slower). */
static inline __attribute__((always_inline)) void
pre_kernel(int K, float *restrict S, size_t lds, const float *restrict alpha, const float *restrict k,
           const float *restrict v, const float *restrict q, float cv, float *restrict o, __mmask16 mlast,
           const int NV, const int HA)
{
    const __mmask16 m0 = NV == 1 ? mlast : 0xFFFF, m1 = NV == 2 ? mlast : 0xFFFF;
    const __mmask16 m2 = NV == 3 ? mlast : 0xFFFF, m3 = mlast;
    const __m512 c = _mm512_set1_ps(cv), zero = _mm512_setzero_ps();
    const __m512 v0 = _mm512_maskz_loadu_ps(m0, v);
    const __m512 v1 = NV >= 2 ? _mm512_maskz_loadu_ps(m1, v + 16) : zero;
    const __m512 v2 = NV >= 3 ? _mm512_maskz_loadu_ps(m2, v + 32) : zero;
    const __m512 v3 = NV >= 4 ? _mm512_maskz_loadu_ps(m3, v + 48) : zero;
    __m512 a0 = _mm512_mul_ps(c, v0), a1 = _mm512_mul_ps(c, v1);
    __m512 a2 = _mm512_mul_ps(c, v2), a3 = _mm512_mul_ps(c, v3);
    for (int i = 0; i < K; i++) {
        float *Si = S + (size_t)i * lds;
        const __m512 ki = _mm512_set1_ps(k[i]), qi = _mm512_set1_ps(q[i]);
        const __m512 ai = _mm512_set1_ps(HA ? alpha[i] : 1.0f);
        __m512 s0 = _mm512_maskz_loadu_ps(m0, Si);
        a0 = _mm512_fmadd_ps(qi, s0, a0);
        s0 = _mm512_fmadd_ps(ki, v0, HA ? _mm512_mul_ps(ai, s0) : s0);
        _mm512_mask_storeu_ps(Si, m0, s0);
        if (NV >= 2) {
            __m512 s1 = _mm512_maskz_loadu_ps(m1, Si + 16);
            a1 = _mm512_fmadd_ps(qi, s1, a1);
            s1 = _mm512_fmadd_ps(ki, v1, HA ? _mm512_mul_ps(ai, s1) : s1);
            _mm512_mask_storeu_ps(Si + 16, m1, s1);
        }
        if (NV >= 3) {
            __m512 s2 = _mm512_maskz_loadu_ps(m2, Si + 32);
            a2 = _mm512_fmadd_ps(qi, s2, a2);
            s2 = _mm512_fmadd_ps(ki, v2, HA ? _mm512_mul_ps(ai, s2) : s2);
            _mm512_mask_storeu_ps(Si + 32, m2, s2);
        }
        if (NV >= 4) {
            __m512 s3 = _mm512_maskz_loadu_ps(m3, Si + 48);
            a3 = _mm512_fmadd_ps(qi, s3, a3);
            s3 = _mm512_fmadd_ps(ki, v3, HA ? _mm512_mul_ps(ai, s3) : s3);
            _mm512_mask_storeu_ps(Si + 48, m3, s3);
        }
    }
    _mm512_mask_storeu_ps(o, m0, a0);
    if (NV >= 2)
        _mm512_mask_storeu_ps(o + 16, m1, a1);
    if (NV >= 3)
        _mm512_mask_storeu_ps(o + 32, m2, a2);
    if (NV >= 4)
        _mm512_mask_storeu_ps(o + 48, m3, a3);
}

#define PRE_BLOCK(NV)                                                                            \
    static void pre_block##NV(int K, float *restrict S, size_t lds, const float *restrict alpha, \
                              const float *restrict k, const float *restrict v,                 \
                              const float *restrict q, float cv, float *restrict o,             \
                              __mmask16 mlast)                                                  \
    {                                                                                            \
        if (alpha)                                                                               \
            pre_kernel(K, S, lds, alpha, k, v, q, cv, o, mlast, NV, 1);                          \
        else                                                                                     \
            pre_kernel(K, S, lds, alpha, k, v, q, cv, o, mlast, NV, 0);                          \
    }
PRE_BLOCK(1)
PRE_BLOCK(2)
PRE_BLOCK(3)
PRE_BLOCK(4)
#undef PRE_BLOCK

void lat_rec_step_pre(int K, int w, float *restrict S, size_t lds, const float *restrict alpha,
                      const float *restrict k, const float *restrict v, const float *restrict q,
                      float cv, float *restrict o)
{
    for (int j0 = 0; j0 < w; j0 += 64) {
        int rem = w - j0 < 64 ? w - j0 : 64;
        int nv = (rem + 15) / 16;
        __mmask16 mlast = (__mmask16)((1u << (rem - 16 * (nv - 1))) - 1u);
        switch (nv) {
        case 1: pre_block1(K, S + j0, lds, alpha, k, v + j0, q, cv, o + j0, mlast); break;
        case 2: pre_block2(K, S + j0, lds, alpha, k, v + j0, q, cv, o + j0, mlast); break;
        case 3: pre_block3(K, S + j0, lds, alpha, k, v + j0, q, cv, o + j0, mlast); break;
        default: pre_block4(K, S + j0, lds, alpha, k, v + j0, q, cv, o + j0, mlast); break;
        }
    }
}

#elif defined(__AVX2__) && defined(__FMA__)
static inline __m256i tail_mask8(int r) /* first r (0..8) lanes set */
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), idx);
}

void lat_rec_step_pre(int K, int w, float *restrict S, size_t lds, const float *restrict alpha,
                      const float *restrict k, const float *restrict v, const float *restrict q,
                      float cv, float *restrict o)
{
    const __m256 c = _mm256_set1_ps(cv);
    for (int j0 = 0; j0 < w; j0 += 32) {
        __m256i m[4];
        __m256 vv[4], acc[4];
        for (int u = 0; u < 4; u++) {
            int r = w - j0 - 8 * u;
            m[u] = tail_mask8(r < 0 ? 0 : r > 8 ? 8 : r);
            vv[u] = _mm256_maskload_ps(v + j0 + 8 * u, m[u]);
            acc[u] = _mm256_mul_ps(c, vv[u]);
        }
        for (int i = 0; i < K; i++) {
            float *Si = S + (size_t)i * lds + j0;
            const __m256 ki = _mm256_set1_ps(k[i]), qi = _mm256_set1_ps(q[i]);
            const __m256 ai = _mm256_set1_ps(alpha ? alpha[i] : 1.0f);
            for (int u = 0; u < 4; u++) {
                __m256 s = _mm256_maskload_ps(Si + 8 * u, m[u]);
                acc[u] = _mm256_fmadd_ps(qi, s, acc[u]);
                s = _mm256_fmadd_ps(ki, vv[u], alpha ? _mm256_mul_ps(ai, s) : s);
                _mm256_maskstore_ps(Si + 8 * u, m[u], s);
            }
        }
        for (int u = 0; u < 4; u++)
            _mm256_maskstore_ps(o + j0 + 8 * u, m[u], acc[u]);
    }
}

#else
void lat_rec_step_pre(int K, int w, float *restrict S, size_t lds, const float *restrict alpha,
                      const float *restrict k, const float *restrict v, const float *restrict q,
                      float cv, float *restrict o)
{
    for (int j = 0; j < w; j++)
        o[j] = cv * v[j];
    for (int i = 0; i < K; i++) {
        float *Si = S + (size_t)i * lds;
        const float a = alpha ? alpha[i] : 1.0f, ki = k[i], qi = q[i];
        for (int j = 0; j < w; j++) {
            o[j] += qi * Si[j];
            Si[j] = a * Si[j] + ki * v[j];
        }
    }
}
#endif
