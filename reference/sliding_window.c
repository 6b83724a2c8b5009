/* sliding_window.c — fp64 oracles for causal sliding-window softmax
 * attention (spec/attention.md §2.1, Appendix C.1).
 *
 * w = number of keys including the query itself (FLA convention):
 *   A(i) = { j : i − w < j ≤ i } = [max(0, i−w+1), i]     (absolute positions)
 * softmax over A(i) with τ = 1/√K (§1).
 *
 * State: the rolling buffer of the last w tokens, [B][H][w][K+V], token p in
 * slot p mod w (K key values then V values); never-written slots are 0.
 *
 *   ref_sliding_window       dense masked softmax over the whole sequence
 *                            (prefix rebuilt from the ring) — the oracle.
 *   ref_sliding_window_ring  the literal rolling-buffer decode (Mistral):
 *                            token by token, write (k_t, v_t) into slot
 *                            t mod w, attend over the slots holding
 *                            positions max(0, t−w+1)..t — reference_alt.
 *   ref_sliding_window_target exact causal softmax on the same q, k, v.
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

typedef struct {
    int pos, w;
} sw_ctx;

static int sw_allowed(const void *ctx, int b, int h, int i, int j)
{
    const sw_ctx *c = ctx;
    (void)b, (void)h;
    const int a = c->pos + i; /* absolute position of the query */
    return j <= a && a - j < c->w;
}

static int sw_ranges(const void *ctx, int b, int h, int i, int *lo, int *hi)
{
    const sw_ctx *c = ctx;
    (void)b, (void)h;
    const int a = c->pos + i;
    lo[0] = a - c->w + 1;
    hi[0] = a + 1;
    return 1;
}

lat_status ref_sliding_window(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out)
{
    if (s->pos > 0 && state_in == NULL)
        return LAT_EINVAL;
    const int w = s->window;
    double *kf, *vf;
    lat_status st = ref_kv_sequence(s, in[1], in[2], state_in, w, &kf, &vf);
    if (st != LAT_OK)
        return st;
    const sw_ctx c = {s->pos, w};
    const ref_mask mask = {sw_allowed, sw_ranges, &c};
    st = ref_masked_softmax(s, in[0], kf, vf, s->pos + s->T, &mask, out);
    free(kf);
    free(vf);
    /* after the attention: state_out may alias state_in (decode in place) */
    if (st == LAT_OK && state_out != NULL)
        ref_kv_ring_write(s, in[1], in[2], state_in, state_out, w);
    return st;
}

/* element (b, t, h, 0) of a [B][T][H][D] tensor */
static size_t sw_idx(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h) * (size_t)D;
}

lat_status ref_sliding_window_ring(const lat_shape *s, const double *const *in,
                                   const double *state_in, double *out, double *state_out)
{
    if (s->pos > 0 && state_in == NULL)
        return LAT_EINVAL;
    const int w = s->window, K = s->K, V = s->V, W = K + V;
    const size_t ring_n = (size_t)s->B * (size_t)s->H * (size_t)w * (size_t)W;
    double *ring = malloc(ring_n * sizeof(double));
    const double **ks = malloc((size_t)w * sizeof(double *));
    const double **vs = malloc((size_t)w * sizeof(double *));
    double *sc = malloc((size_t)w * sizeof(double));
    if (!ring || !ks || !vs || !sc) {
        free(ring), free(ks), free(vs), free(sc);
        return LAT_ENOMEM;
    }
    if (state_in)
        memcpy(ring, state_in, ring_n * sizeof(double));
    else
        memset(ring, 0, ring_n * sizeof(double));
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            double *rb = ring + ((size_t)b * (size_t)s->H + (size_t)h) * (size_t)w * (size_t)W;
            for (int t = 0; t < s->T; t++) {
                const int p = s->pos + t;
                double *slot = rb + (size_t)(p % w) * (size_t)W; /* overwrites position p − w */
                memcpy(slot, in[1] + sw_idx(s, b, t, h, K), (size_t)K * sizeof(double));
                memcpy(slot + K, in[2] + sw_idx(s, b, t, h, V), (size_t)V * sizeof(double));
                int n = 0;
                for (int j = p - w + 1 > 0 ? p - w + 1 : 0; j <= p; j++, n++) {
                    ks[n] = rb + (size_t)(j % w) * (size_t)W;
                    vs[n] = ks[n] + K;
                }
                ref_softmax_keys(K, V, in[0] + sw_idx(s, b, t, h, K), ks, vs, n, sc,
                                 out + sw_idx(s, b, t, h, V));
            }
        }
    if (state_out)
        memcpy(state_out, ring, ring_n * sizeof(double));
    free(ring), free(ks), free(vs), free(sc);
    return LAT_OK;
}

lat_status ref_sliding_window_target(const lat_shape *s, const double *const *in,
                                     const double *state_in, double *out, double *state_out)
{
    (void)state_in, (void)state_out;
    return ref_exact_softmax(s, in, 1, out);
}
