/* softmax.c — fp64 oracle for exact softmax attention (spec/attention.md §1).
 *
 * Straight from the equations, per (b, h) and per query i, in double:
 *   s_ij = <q_i, k_j> / sqrt(K)          j ∈ A(i)
 *   p_ij = exp(s_ij − max_j s_ij) / Σ_j exp(s_ij − max_j s_ij)
 *   o_i  = Σ_j p_ij v_j
 * Keys j are absolute positions: cache[0..pos) from state_in, then this
 * call's k at pos..pos+T-1. Causal: A(i) = {j ≤ pos + i}; non-causal: all
 * pos + T keys. Masked logits are −∞ (exp → exactly 0); a row with no
 * allowed key (impossible here) gives o_i = 0.
 *
 * State = KV cache [B][H][ctx][K+V]: a row per token, K key floats then V
 * value floats. state_out gets this call's k, v at slots pos..pos+T-1, the
 * prefix copied from state_in, and the tail copied from state_in (or zeroed
 * when state_in is NULL).
 *
 * No BLAS, no fast math (-O2 -fno-fast-math -ffp-contract=off). The only
 * OpenMP is across independent (b, h) slices, which does not change numerics.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"

/* element (b, t, h, 0) of a [B][T][H][D] tensor */
static size_t ref_idx(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h) * (size_t)D;
}

/* row `slot` of the (b, h) cache: K key values then V value values */
static size_t ref_cache_row(const lat_shape *s, int ctx, int b, int h, int slot)
{
    return (((size_t)b * (size_t)s->H + (size_t)h) * (size_t)ctx + (size_t)slot) *
           (size_t)(s->K + s->V);
}

/* key / value vector of absolute position j for slice (b, h) */
static const double *ref_key(const lat_shape *s, const double *const *in, const double *cache,
                             int ctx, int b, int h, int j)
{
    if (j < s->pos)
        return cache + ref_cache_row(s, ctx, b, h, j);
    return in[1] + ref_idx(s, b, j - s->pos, h, s->K);
}

static const double *ref_value(const lat_shape *s, const double *const *in, const double *cache,
                               int ctx, int b, int h, int j)
{
    if (j < s->pos)
        return cache + ref_cache_row(s, ctx, b, h, j) + s->K;
    return in[2] + ref_idx(s, b, j - s->pos, h, s->V);
}

/* <x, y> with four partial sums: the same fp64 dot product with a 4x
 * shorter dependency chain (the reference runs at T = 8192). */
static double ref_dot(const double *x, const double *y, int n)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int d = 0;
    for (; d + 4 <= n; d += 4) {
        s0 += x[d] * y[d];
        s1 += x[d + 1] * y[d + 1];
        s2 += x[d + 2] * y[d + 2];
        s3 += x[d + 3] * y[d + 3];
    }
    for (; d < n; d++)
        s0 += x[d] * y[d];
    return (s0 + s1) + (s2 + s3);
}

/* one (b, h) slice; w holds pos + T doubles (the dense score row) */
static void ref_slice(const lat_shape *s, const double *const *in, const double *cache, int ctx,
                      int b, int h, double *w, double *out)
{
    const int K = s->K, V = s->V, S = s->pos + s->T;
    const double scale = 1.0 / sqrt((double)K);
    for (int i = 0; i < s->T; i++) {
        const double *q = in[0] + ref_idx(s, b, i, h, K);
        double *o = out + ref_idx(s, b, i, h, V);
        /* 1. dense logits with the mask applied: −∞ outside A(i) */
        for (int j = 0; j < S; j++) {
            if (s->causal && j > s->pos + i) {
                w[j] = -INFINITY;
                continue;
            }
            w[j] = scale * ref_dot(q, ref_key(s, in, cache, ctx, b, h, j), K);
        }
        /* 2. max over allowed entries, exp, sum */
        double m = -INFINITY;
        for (int j = 0; j < S; j++)
            if (w[j] > m)
                m = w[j];
        for (int d = 0; d < V; d++)
            o[d] = 0.0;
        if (m == -INFINITY) /* empty A(i): o_i = 0 */
            continue;
        double sum = 0.0;
        for (int j = 0; j < S; j++) {
            w[j] = (w[j] == -INFINITY) ? 0.0 : exp(w[j] - m);
            sum += w[j];
        }
        /* 3. p = w / sum, o = Σ p_j v_j */
        for (int j = 0; j < S; j++) {
            if (w[j] == 0.0)
                continue;
            const double p = w[j] / sum;
            const double *v = ref_value(s, in, cache, ctx, b, h, j);
            for (int d = 0; d < V; d++)
                o[d] += p * v[d];
        }
    }
}

/* state_out: prefix from state_in, this call's k, v appended, tail kept */
static void ref_write_cache(const lat_shape *s, const double *const *in, const double *state_in,
                            double *state_out, int ctx)
{
    const int K = s->K, V = s->V, R = K + V;
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            double *dst = state_out + ref_cache_row(s, ctx, b, h, 0);
            const double *src = state_in ? state_in + ref_cache_row(s, ctx, b, h, 0) : NULL;
            for (int j = 0; j < ctx; j++) {
                double *row = dst + (size_t)j * (size_t)R;
                if (j >= s->pos && j < s->pos + s->T) {
                    const int t = j - s->pos;
                    memcpy(row, in[1] + ref_idx(s, b, t, h, K), (size_t)K * sizeof(double));
                    memcpy(row + K, in[2] + ref_idx(s, b, t, h, V), (size_t)V * sizeof(double));
                } else if (src == NULL) {
                    for (int d = 0; d < R; d++)
                        row[d] = 0.0;
                } else if (src != state_out) {
                    memcpy(row, src + (size_t)j * (size_t)R, (size_t)R * sizeof(double));
                }
            }
        }
}

lat_status ref_softmax(const lat_shape *s, const double *const *in, const double *state_in,
                       double *out, double *state_out)
{
    const int ctx = lat_shape_ctx(s), S = s->pos + s->T;
    if (s->pos > 0 && state_in == NULL)
        return LAT_EINVAL;
    if (ctx < S)
        return LAT_UNSUPPORTED;

    int failed = 0;
#pragma omp parallel
    {
        double *w = malloc((size_t)S * sizeof(double));
        if (w == NULL) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < s->B; b++)
            for (int h = 0; h < s->H; h++)
                if (w != NULL)
                    ref_slice(s, in, state_in, ctx, b, h, w, out);
        free(w);
    }
    if (failed)
        return LAT_ENOMEM;
    /* after the attention: state_out may alias state_in (decode in place) */
    if (state_out != NULL)
        ref_write_cache(s, in, state_in, state_out, ctx);
    return LAT_OK;
}
