/* block_local.c — fp64 oracles for block-local softmax attention and
 * BlockBERT (spec/attention.md §2.4).
 *
 * Blocks of b consecutive positions, block(j) = ⌊j/b⌋, query at absolute
 * position a = pos + i, softmax (§1, τ = 1/√K) over:
 *   variant 0  block-local:       A(a) = { j : block(j) = block(a) }
 *   variant 1  + previous block (local-attention, look_backward = 1):
 *                                 A(a) = { j : block(a)−1 ≤ block(j) ≤ block(a) }
 *              non-causal adds the next block (look_forward = 1):
 *                                 A(a) = { j : |block(j) − block(a)| ≤ 1 }
 *   causal = 1 intersects with j ≤ a (variants 0, 1).
 *   variants 2, 3  BlockBERT with n_blk = 2, 3 blocks of b = ⌈T/n_blk⌉
 *              (non-causal, whole sequence): head h attends
 *              A_h(a) = { j : block(j) = π_h(block(a)) },
 *              π_h(x) = (x + h mod n_blk) mod n_blk — the paper's shifting
 *              permutations (1,2)/(2,1), (1,2,3)/(2,3,1)/(3,1,2), cycled over
 *              the heads. A key block past the end is empty (o = 0).
 * b = the `window` knob for variants 0, 1.
 *
 * State: ring of the last R tokens, [B][H][R][K+V], token p in slot p mod R,
 * R = b (variant 0), 2b (variant 1: the previous block too), `window`
 * (BlockBERT: written, never read, since it needs pos = 0).
 *
 *   ref_block_local        dense masked softmax (the oracle)
 *   ref_block_local_blocks per query, its key block(s) enumerated (alt)
 *   ref_block_local_target exact softmax, causal per the knob
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

int ref_block_local_size(const lat_shape *s)
{
    if (s->variant >= 2) {
        const int n = s->pos + s->T;
        return (n + s->variant - 1) / s->variant;
    }
    return s->window;
}

int ref_block_local_ring(const lat_shape *s)
{
    return s->variant == 1 ? 2 * s->window : s->window;
}

typedef struct {
    const lat_shape *s;
    int b; /* block size */
} bl_ctx;

static int bl_allowed(const void *ctx, int b, int h, int i, int j)
{
    const bl_ctx *c = ctx;
    const lat_shape *s = c->s;
    (void)b;
    const int a = s->pos + i, qb = a / c->b, kb = j / c->b;
    switch (s->variant) {
    case 0:
        return kb == qb && (!s->causal || j <= a);
    case 1:
        if (s->causal)
            return j <= a && kb >= qb - 1 && kb <= qb;
        return kb >= qb - 1 && kb <= qb + 1;
    default: /* BlockBERT */
        return kb == (qb + h % s->variant) % s->variant;
    }
}

/* a superset of A(a): the blocks around the query (all keys for BlockBERT) */
static int bl_ranges(const void *ctx, int b, int h, int i, int *lo, int *hi)
{
    const bl_ctx *c = ctx;
    const lat_shape *s = c->s;
    (void)b, (void)h;
    const int qb = (s->pos + i) / c->b;
    lo[0] = s->variant >= 2 ? 0 : (qb - 1) * c->b;
    hi[0] = s->variant >= 2 ? s->pos + s->T : (qb + 2) * c->b;
    return 1;
}

static lat_status bl_check(const lat_shape *s, const double *state_in)
{
    if (s->pos > 0 && state_in == NULL)
        return LAT_EINVAL;
    if (s->variant >= 2 && (s->causal || s->pos > 0))
        return LAT_UNSUPPORTED;
    return LAT_OK;
}

lat_status ref_block_local(const lat_shape *s, const double *const *in, const double *state_in,
                           double *out, double *state_out)
{
    lat_status st = bl_check(s, state_in);
    if (st != LAT_OK)
        return st;
    const int R = ref_block_local_ring(s);
    double *kf, *vf;
    st = ref_kv_sequence(s, in[1], in[2], state_in, R, &kf, &vf);
    if (st != LAT_OK)
        return st;
    const bl_ctx c = {s, ref_block_local_size(s)};
    const ref_mask mask = {bl_allowed, bl_ranges, &c};
    st = ref_masked_softmax(s, in[0], kf, vf, s->pos + s->T, &mask, out);
    free(kf);
    free(vf);
    if (st == LAT_OK && state_out != NULL) /* after: state_out may alias state_in */
        ref_kv_ring_write(s, in[1], in[2], state_in, state_out, R);
    return st;
}

/* element (b, t, h, 0) of a [B][n][H][D] tensor */
static size_t bl_idx(int n, int H, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)n + (size_t)t) * (size_t)H + (size_t)h) * (size_t)D;
}

lat_status ref_block_local_blocks(const lat_shape *s, const double *const *in,
                                  const double *state_in, double *out, double *state_out)
{
    lat_status st = bl_check(s, state_in);
    if (st != LAT_OK)
        return st;
    const int R = ref_block_local_ring(s), bs = ref_block_local_size(s), n = s->pos + s->T;
    const int K = s->K, V = s->V, H = s->H;
    double *kf, *vf;
    st = ref_kv_sequence(s, in[1], in[2], state_in, R, &kf, &vf);
    if (st != LAT_OK)
        return st;
    const double **ks = malloc((size_t)n * sizeof(double *));
    const double **vs = malloc((size_t)n * sizeof(double *));
    double *w = malloc((size_t)n * sizeof(double));
    if (!ks || !vs || !w) {
        free(kf), free(vf), free(ks), free(vs), free(w);
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < s->T; i++) {
                const int a = s->pos + i, qb = a / bs;
                /* the key blocks [kb0, kb1] of this query, enumerated */
                int kb0 = qb, kb1 = qb;
                if (s->variant == 1) {
                    kb0 = qb - 1;
                    kb1 = s->causal ? qb : qb + 1;
                } else if (s->variant >= 2) {
                    kb0 = kb1 = (qb + h % s->variant) % s->variant;
                }
                int cnt = 0;
                for (int kb = kb0 < 0 ? 0 : kb0; kb <= kb1; kb++)
                    for (int j = kb * bs; j < (kb + 1) * bs && j < n; j++) {
                        if (s->causal && j > a)
                            break;
                        ks[cnt] = kf + bl_idx(n, H, b, j, h, K);
                        vs[cnt++] = vf + bl_idx(n, H, b, j, h, V);
                    }
                ref_softmax_keys(K, V, in[0] + bl_idx(s->T, H, b, i, h, K), ks, vs, cnt, w,
                                 out + bl_idx(s->T, H, b, i, h, V));
            }
    free(kf), free(vf), free(ks), free(vs), free(w);
    if (state_out != NULL)
        ref_kv_ring_write(s, in[1], in[2], state_in, state_out, R);
    return LAT_OK;
}

lat_status ref_block_local_target(const lat_shape *s, const double *const *in,
                                  const double *state_in, double *out, double *state_out)
{
    (void)state_in, (void)state_out;
    return ref_exact_softmax(s, in, s->causal, out);
}
