/* masked_softmax.c — the fp64 oracle shared by the sparse / blockwise
 * softmax patterns (spec/attention.md §2: sliding_window, block_local,
 * sparse_strided, longformer) and the KV-ring helpers of their references.
 *
 * §2: "All patterns are softmax attention (§1) restricted to an allowed set
 * A(i). The fp64 reference is the dense masked softmax." For query row i and
 * every key j of the sequence, literally (§0.5):
 *   w_j = τ·<q_i, k_j>  if allowed(i, j),  −∞ otherwise          (τ = 1/√K)
 *   m   = max_j w_j;   p_j = exp(w_j − m) / Σ_j exp(w_j − m);   o_i = Σ_j p_j v_j
 * and o_i = 0 when A(i) is empty (§1, "fully masked rows must produce 0").
 * A method may also give `ranges`: disjoint intervals of j that contain
 * A(i). Keys outside them are −∞ by definition and are not visited, which
 * keeps the O(T·w) patterns affordable at T = 65536; the mask is still
 * tested on every key inside the intervals.
 *
 * ref_softmax_keys is the second (constructive) form used by the methods'
 * reference_alt: softmax over an explicitly enumerated key list.
 *
 * No BLAS, no fast math (-O2 -fno-fast-math -ffp-contract=off). OpenMP only
 * across independent (b, h) slices.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"

/* element (b, t, h, 0) of a [B][n][H][D] tensor */
static size_t ms_idx(int n, int H, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)n + (size_t)t) * (size_t)H + (size_t)h) * (size_t)D;
}

/* <x, y> with four partial sums (same fp64 dot, shorter dependency chain) */
static double ms_dot(const double *x, const double *y, int n)
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

#define MS_MAX_RANGES 8

/* one (b, h) slice; w holds nk doubles (the dense logit row) */
static void ms_slice(const lat_shape *s, const double *q, const double *k, const double *v, int nk,
                     const ref_mask *mask, int b, int h, double *w, double *out)
{
    const int K = s->K, V = s->V, H = s->H;
    const double scale = 1.0 / sqrt((double)K);
    for (int i = 0; i < s->T; i++) {
        const double *qi = q + ms_idx(s->T, H, b, i, h, K);
        double *o = out + ms_idx(s->T, H, b, i, h, V);
        int lo[MS_MAX_RANGES], hi[MS_MAX_RANGES], nr = 1;
        lo[0] = 0;
        hi[0] = nk;
        if (mask->ranges)
            nr = mask->ranges(mask->ctx, b, h, i, lo, hi);
        /* 1. logits with the mask applied: −∞ outside A(i) (entries outside
         *    the ranges are −∞ by definition and never read) */
        for (int r = 0; r < nr; r++) {
            lo[r] = lo[r] < 0 ? 0 : lo[r];
            hi[r] = hi[r] > nk ? nk : hi[r];
            for (int j = lo[r]; j < hi[r]; j++)
                w[j] = mask->allowed(mask->ctx, b, h, i, j)
                           ? scale * ms_dot(qi, k + ms_idx(nk, H, b, j, h, K), K)
                           : -INFINITY;
        }
        /* 2. max over allowed entries, exp, sum */
        double m = -INFINITY;
        for (int r = 0; r < nr; r++)
            for (int j = lo[r]; j < hi[r]; j++)
                if (w[j] > m)
                    m = w[j];
        for (int d = 0; d < V; d++)
            o[d] = 0.0;
        if (m == -INFINITY) /* empty A(i): o_i = 0 */
            continue;
        double sum = 0.0;
        for (int r = 0; r < nr; r++)
            for (int j = lo[r]; j < hi[r]; j++) {
                w[j] = (w[j] == -INFINITY) ? 0.0 : exp(w[j] - m);
                sum += w[j];
            }
        /* 3. o = Σ p_j v_j */
        for (int r = 0; r < nr; r++)
            for (int j = lo[r]; j < hi[r]; j++) {
                if (w[j] == 0.0)
                    continue;
                const double p = w[j] / sum;
                const double *vj = v + ms_idx(nk, H, b, j, h, V);
                for (int d = 0; d < V; d++)
                    o[d] += p * vj[d];
            }
    }
}

lat_status ref_masked_softmax(const lat_shape *s, const double *q, const double *k, const double *v,
                              int nk, const ref_mask *mask, double *out)
{
    int failed = 0;
#pragma omp parallel
    {
        double *w = malloc((size_t)(nk > 0 ? nk : 1) * sizeof(double));
        if (w == NULL) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < s->B; b++)
            for (int h = 0; h < s->H; h++)
                if (w != NULL)
                    ms_slice(s, q, k, v, nk, mask, b, h, w, out);
        free(w);
    }
    return failed ? LAT_ENOMEM : LAT_OK;
}

void ref_softmax_keys(int K, int V, const double *q, const double *const *ks, const double *const *vs,
                      int n, double *w, double *o)
{
    const double scale = 1.0 / sqrt((double)K);
    for (int d = 0; d < V; d++)
        o[d] = 0.0;
    if (n <= 0)
        return;
    double m = -INFINITY;
    for (int c = 0; c < n; c++) {
        w[c] = scale * ms_dot(q, ks[c], K);
        m = w[c] > m ? w[c] : m;
    }
    double sum = 0.0;
    for (int c = 0; c < n; c++) {
        w[c] = exp(w[c] - m);
        sum += w[c];
    }
    for (int c = 0; c < n; c++) {
        const double p = w[c] / sum;
        for (int d = 0; d < V; d++)
            o[d] += p * vs[c][d];
    }
}

/* ---- KV ring: [B][H][R][K+V], position p in slot p mod R ------------------ */

static size_t ms_ring_row(const lat_shape *s, int R, int b, int h, int slot)
{
    return (((size_t)b * (size_t)s->H + (size_t)h) * (size_t)R + (size_t)slot) * (size_t)(s->K + s->V);
}

lat_status ref_kv_sequence(const lat_shape *s, const double *k, const double *v, const double *ring,
                           int R, double **kf, double **vf)
{
    const int K = s->K, V = s->V, H = s->H, n = s->pos + s->T;
    *kf = calloc((size_t)s->B * (size_t)n * (size_t)H * (size_t)K, sizeof(double));
    *vf = calloc((size_t)s->B * (size_t)n * (size_t)H * (size_t)V, sizeof(double));
    if (*kf == NULL || *vf == NULL) {
        free(*kf);
        free(*vf);
        *kf = *vf = NULL;
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < H; h++) {
            for (int p = s->pos - R > 0 ? s->pos - R : 0; ring != NULL && p < s->pos; p++) {
                const double *row = ring + ms_ring_row(s, R, b, h, p % R);
                memcpy(*kf + ms_idx(n, H, b, p, h, K), row, (size_t)K * sizeof(double));
                memcpy(*vf + ms_idx(n, H, b, p, h, V), row + K, (size_t)V * sizeof(double));
            }
            for (int t = 0; t < s->T; t++) {
                memcpy(*kf + ms_idx(n, H, b, s->pos + t, h, K), k + ms_idx(s->T, H, b, t, h, K),
                       (size_t)K * sizeof(double));
                memcpy(*vf + ms_idx(n, H, b, s->pos + t, h, V), v + ms_idx(s->T, H, b, t, h, V),
                       (size_t)V * sizeof(double));
            }
        }
    return LAT_OK;
}

void ref_kv_ring_write(const lat_shape *s, const double *k, const double *v, const double *state_in,
                       double *state_out, int R)
{
    const int K = s->K, V = s->V, W = K + V;
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            for (int slot = 0; slot < R; slot++) { /* the old ring (or zeros) */
                double *row = state_out + ms_ring_row(s, R, b, h, slot);
                if (state_in == NULL)
                    for (int d = 0; d < W; d++)
                        row[d] = 0.0;
                else if (state_in != state_out)
                    memcpy(row, state_in + ms_ring_row(s, R, b, h, slot), (size_t)W * sizeof(double));
            }
            for (int t = 0; t < s->T; t++) { /* token pos+t into slot (pos+t) mod R */
                double *row = state_out + ms_ring_row(s, R, b, h, (s->pos + t) % R);
                memcpy(row, k + ms_idx(s->T, s->H, b, t, h, K), (size_t)K * sizeof(double));
                memcpy(row + K, v + ms_idx(s->T, s->H, b, t, h, V), (size_t)V * sizeof(double));
            }
        }
}

lat_status ref_exact_softmax(const lat_shape *s, const double *const *in, int causal, double *out)
{
    if (s->pos != 0)
        return LAT_UNSUPPORTED; /* the exact target needs the whole prefix */
    lat_shape e = *s;
    e.causal = causal;
    e.ctx = 0;
    return ref_softmax(&e, in, NULL, out, NULL);
}
