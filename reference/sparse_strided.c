/* sparse_strided.c — fp64 oracles for the Sparse Transformer patterns
 * (Child et al. 2019, Sec. 4.2–4.3; openai/sparse_attention attention.py;
 * spec/attention.md §2.5). Causal, absolute positions a = pos + i:
 *
 *   variant 0, strided (merged head, A1 ∪ A2):
 *     A1(a) = { j : a − l < j ≤ a }               (code's `local`: l keys incl. self)
 *     A2(a) = { j ≤ a : (a − j) mod l = 0 }
 *   variant 1, fixed (merged head, F1 ∪ F2):
 *     F1(a) = { j ≤ a : ⌊j/l⌋ = ⌊a/l⌋ }
 *     F2(a) = { j ≤ a : (j mod l) ≥ l − c }
 * softmax (§1, τ = 1/√K) over the union (a set: each key once).
 * l = the `stride` knob, 0 → ⌈√n⌉ with n = the sequence length, taken as the
 * KV capacity ctx (= pos + T when ctx is 0) so that the pattern is the same
 * for a prefill and for the decode steps that continue it. c = the `window`
 * knob (summary width), clamped to l.
 *
 * State: the full KV cache [B][H][ctx][K+V] (A2 reaches every earlier
 * residue; the spec's decode note), as softmax's.
 *
 *   ref_sparse_strided         dense masked softmax (the oracle)
 *   ref_sparse_strided_sets    the sets enumerated as the paper writes them:
 *                              A1 then A2 \ A1 (= a − l, a − 2l, …), or F1
 *                              then the summary keys of earlier blocks (alt)
 *   ref_sparse_strided_target  exact causal softmax
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"

int ref_sparse_strided_stride(const lat_shape *s)
{
    if (s->stride > 0)
        return s->stride;
    const long n = lat_shape_ctx(s);
    long l = (long)ceil(sqrt((double)n));
    while (l > 1 && (l - 1) * (l - 1) >= n)
        l--;
    while (l * l < n)
        l++;
    return (int)(l > 0 ? l : 1);
}

int ref_sparse_strided_summary(const lat_shape *s)
{
    const int l = ref_sparse_strided_stride(s);
    return s->window < l ? s->window : l;
}

typedef struct {
    int pos, l, c, variant;
} ss_ctx;

static int ss_allowed(const void *ctx, int b, int h, int i, int j)
{
    const ss_ctx *c = ctx;
    (void)b, (void)h;
    const int a = c->pos + i;
    if (j > a)
        return 0;
    if (c->variant == 0)
        return a - j < c->l || (a - j) % c->l == 0;
    return j / c->l == a / c->l || j % c->l >= c->l - c->c;
}

static int ss_ranges(const void *ctx, int b, int h, int i, int *lo, int *hi)
{
    const ss_ctx *c = ctx;
    (void)b, (void)h;
    lo[0] = 0;
    hi[0] = c->pos + i + 1;
    return 1;
}

lat_status ref_sparse_strided(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out)
{
    const int ctx = lat_shape_ctx(s);
    if (s->pos > 0 && state_in == NULL)
        return LAT_EINVAL;
    double *kf, *vf;
    lat_status st = ref_kv_sequence(s, in[1], in[2], state_in, ctx, &kf, &vf);
    if (st != LAT_OK)
        return st;
    const ss_ctx c = {s->pos, ref_sparse_strided_stride(s), ref_sparse_strided_summary(s), s->variant};
    const ref_mask mask = {ss_allowed, ss_ranges, &c};
    st = ref_masked_softmax(s, in[0], kf, vf, s->pos + s->T, &mask, out);
    free(kf);
    free(vf);
    if (st == LAT_OK && state_out != NULL) /* after: may alias state_in */
        ref_kv_ring_write(s, in[1], in[2], state_in, state_out, ctx);
    return st;
}

/* element (b, t, h, 0) of a [B][n][H][D] tensor */
static size_t ss_idx(int n, int H, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)n + (size_t)t) * (size_t)H + (size_t)h) * (size_t)D;
}

lat_status ref_sparse_strided_sets(const lat_shape *s, const double *const *in,
                                   const double *state_in, double *out, double *state_out)
{
    const int ctx = lat_shape_ctx(s), n = s->pos + s->T, K = s->K, V = s->V, H = s->H;
    if (s->pos > 0 && state_in == NULL)
        return LAT_EINVAL;
    const int l = ref_sparse_strided_stride(s), c = ref_sparse_strided_summary(s);
    double *kf, *vf;
    lat_status st = ref_kv_sequence(s, in[1], in[2], state_in, ctx, &kf, &vf);
    if (st != LAT_OK)
        return st;
    const double **ks = malloc((size_t)n * sizeof(double *));
    const double **vs = malloc((size_t)n * sizeof(double *));
    double *w = malloc((size_t)n * sizeof(double));
    int *js = malloc((size_t)n * sizeof(int));
    if (!ks || !vs || !w || !js) {
        free(kf), free(vf), free(ks), free(vs), free(w), free(js);
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < s->T; i++) {
                const int a = s->pos + i;
                int cnt = 0;
                if (s->variant == 0) {
                    for (int j = a - l + 1 > 0 ? a - l + 1 : 0; j <= a; j++) /* A1 */
                        js[cnt++] = j;
                    for (int j = a - l; j >= 0; j -= l) /* A2 \ A1 */
                        js[cnt++] = j;
                } else {
                    const int blk = a / l;
                    for (int j = blk * l; j <= a; j++) /* F1 */
                        js[cnt++] = j;
                    for (int kb = 0; kb < blk; kb++) /* F2 \ F1 */
                        for (int j = kb * l + l - c; j < kb * l + l; j++)
                            js[cnt++] = j;
                }
                for (int x = 0; x < cnt; x++) {
                    ks[x] = kf + ss_idx(n, H, b, js[x], h, K);
                    vs[x] = vf + ss_idx(n, H, b, js[x], h, V);
                }
                ref_softmax_keys(K, V, in[0] + ss_idx(s->T, H, b, i, h, K), ks, vs, cnt, w,
                                 out + ss_idx(s->T, H, b, i, h, V));
            }
    free(kf), free(vf), free(ks), free(vs), free(w), free(js);
    if (state_out != NULL)
        ref_kv_ring_write(s, in[1], in[2], state_in, state_out, ctx);
    return LAT_OK;
}

lat_status ref_sparse_strided_target(const lat_shape *s, const double *const *in,
                                     const double *state_in, double *out, double *state_out)
{
    (void)state_in, (void)state_out;
    return ref_exact_softmax(s, in, 1, out);
}
