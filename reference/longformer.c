/* longformer.c — fp64 oracles for Longformer attention (Beltagy, Peters,
 * Cohan 2020; allenai/longformer longformer.py, sliding_chunks.py;
 * spec/attention.md §2.2, §2.3, errata 3). Non-causal, one sequence of T
 * tokens (no state), τ = 1/√K.
 *
 * Inputs: q, k, v (local projections) and q_g, k_g, v_g (global ones), all
 * [B][T][H][K|V]. Global set G = the first g tokens (g = min(agents, T)).
 *   local row i ∉ G:   A(i) = G ∪ (W(i) \ G),
 *                      W(i) = { i + d·m : m ∈ [−w₁, w₁] } ∩ [0, T),
 *                      softmax of τ⟨q_i, k_j⟩ over A(i), values v_j (the local
 *                      projections serve the window and the global keys;
 *                      each global key counted once)
 *   global row i ∈ G:  full attention over all j with q_g,i, k_g,j, v_g,j;
 *                      it overwrites the local result of row i.
 * w₁ = `window` (one-sided), d = `stride` (dilation), g = `agents`.
 *
 *   ref_longformer         dense masked softmax (the oracle): local rows
 *                          with the mask above, global rows with all keys
 *   ref_longformer_listed  the code's construction, enumerated: global keys
 *                          prepended, then the band with G removed (alt)
 *   ref_longformer_target  exact non-causal softmax on the local q, k, v
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

typedef struct {
    int g, w1, d, T;
} lf_ctx;

static int lf_allowed_local(const void *ctx, int b, int h, int i, int j)
{
    const lf_ctx *c = ctx;
    (void)b, (void)h;
    if (i < c->g) /* a global row: computed by the global pass */
        return 0;
    if (j < c->g)
        return 1;
    const int dist = j > i ? j - i : i - j;
    return dist <= c->d * c->w1 && dist % c->d == 0;
}

static int lf_ranges_local(const void *ctx, int b, int h, int i, int *lo, int *hi)
{
    const lf_ctx *c = ctx;
    (void)b, (void)h;
    if (i < c->g)
        return 0;
    lo[0] = 0;
    hi[0] = c->g;
    lo[1] = i - c->d * c->w1 > c->g ? i - c->d * c->w1 : c->g;
    hi[1] = i + c->d * c->w1 + 1;
    return 2;
}

static int lf_allowed_global(const void *ctx, int b, int h, int i, int j)
{
    const lf_ctx *c = ctx;
    (void)b, (void)h, (void)j;
    return i < c->g;
}

static int lf_ranges_global(const void *ctx, int b, int h, int i, int *lo, int *hi)
{
    const lf_ctx *c = ctx;
    (void)b, (void)h;
    lo[0] = 0;
    hi[0] = c->T;
    return i < c->g ? 1 : 0;
}

static lf_ctx lf_make(const lat_shape *s)
{
    lf_ctx c = {s->agents < s->T ? s->agents : s->T, s->window, s->stride > 0 ? s->stride : 1, s->T};
    return c;
}

/* element (b, t, h, 0) of a [B][T][H][D] tensor */
static size_t lf_idx(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h) * (size_t)D;
}

lat_status ref_longformer(const lat_shape *s, const double *const *in, const double *state_in,
                          double *out, double *state_out)
{
    (void)state_in, (void)state_out;
    if (s->pos != 0)
        return LAT_UNSUPPORTED;
    const lf_ctx c = lf_make(s);
    const ref_mask local = {lf_allowed_local, lf_ranges_local, &c};
    lat_status st = ref_masked_softmax(s, in[0], in[1], in[2], s->T, &local, out);
    if (st != LAT_OK || c.g == 0)
        return st;
    const size_t n = (size_t)s->B * (size_t)s->T * (size_t)s->H * (size_t)s->V;
    double *glob = malloc(n * sizeof(double));
    if (glob == NULL)
        return LAT_ENOMEM;
    const ref_mask global = {lf_allowed_global, lf_ranges_global, &c};
    st = ref_masked_softmax(s, in[3], in[4], in[5], s->T, &global, glob);
    for (int b = 0; b < s->B && st == LAT_OK; b++) /* global rows overwrite */
        for (int i = 0; i < c.g; i++)
            for (int h = 0; h < s->H; h++)
                memcpy(out + lf_idx(s, b, i, h, s->V), glob + lf_idx(s, b, i, h, s->V),
                       (size_t)s->V * sizeof(double));
    free(glob);
    return st;
}

lat_status ref_longformer_listed(const lat_shape *s, const double *const *in, const double *state_in,
                                 double *out, double *state_out)
{
    (void)state_in, (void)state_out;
    if (s->pos != 0)
        return LAT_UNSUPPORTED;
    const lf_ctx c = lf_make(s);
    const int T = s->T, K = s->K, V = s->V;
    const double **ks = malloc((size_t)T * sizeof(double *));
    const double **vs = malloc((size_t)T * sizeof(double *));
    double *w = malloc((size_t)T * sizeof(double));
    if (!ks || !vs || !w) {
        free(ks), free(vs), free(w);
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++)
            for (int i = 0; i < T; i++) {
                const int glob = i < c.g; /* global rows: q_g, k_g, v_g, all keys */
                const double *kk = in[glob ? 4 : 1], *vv = in[glob ? 5 : 2];
                int n = 0;
                if (glob) {
                    for (int j = 0; j < T; j++, n++) {
                        ks[n] = kk + lf_idx(s, b, j, h, K);
                        vs[n] = vv + lf_idx(s, b, j, h, V);
                    }
                } else {
                    for (int j = 0; j < c.g; j++, n++) { /* global keys first */
                        ks[n] = kk + lf_idx(s, b, j, h, K);
                        vs[n] = vv + lf_idx(s, b, j, h, V);
                    }
                    for (int m = -c.w1; m <= c.w1; m++) { /* the band, G removed */
                        const int j = i + c.d * m;
                        if (j < c.g || j >= T)
                            continue;
                        ks[n] = kk + lf_idx(s, b, j, h, K);
                        vs[n++] = vv + lf_idx(s, b, j, h, V);
                    }
                }
                ref_softmax_keys(K, V, in[glob ? 3 : 0] + lf_idx(s, b, i, h, K), ks, vs, n, w,
                                 out + lf_idx(s, b, i, h, V));
            }
    free(ks), free(vs), free(w);
    return LAT_OK;
}

lat_status ref_longformer_target(const lat_shape *s, const double *const *in, const double *state_in,
                                 double *out, double *state_out)
{
    (void)state_in, (void)state_out;
    return ref_exact_softmax(s, in, 0, out);
}
