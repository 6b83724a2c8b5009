/* retnet.c — RetNet retention (Sun, Dong, Huang, Ma, Xia, Xue, Wang, Wei;
 * "Retentive Network: A Successor to Transformer for Large Language Models",
 * arXiv 2307.08621), forward core, fp32. Spec: spec/recurrent.md §1, §0.4.
 *
 * Recurrence (key-major state S ∈ R^{K×V}, per (b, h) slice):
 *     S_n = γ_h S_{n−1} + k_n v_nᵀ,    o_n = s · S_nᵀ q_n,    s = K^{−1/2}
 * with the fixed per-head decay γ_h = 1 − 2^{−5−h} (paper §2.2, torchscale,
 * fla). Equivalent parallel form O = ((s Q Kᵀ) ⊙ D) V, D_nm = γ^{n−m} (n ≥ m).
 * State [B][H][K][V] (lat_dims_bhkv), S0 = 0 when absent. Causal only.
 *
 * Decisions on open points of the spec
 *   γ is not an input: it is data-independent, so the forms compute log γ_h =
 *     log1p(−2^{−5−h}) in double (shared with the reference,
 *     ref_retnet_log_gamma) and round it once to fp32. Head h of a call is
 *     head h of the layer (a sweep with H heads uses γ_0 .. γ_{H−1}).
 *   xPos: knob variant = 0 (default) takes q, k as already rotated (§1.3: the
 *     rotation commutes with all three forms, so the kernels take random q, k);
 *     variant = 1 applies the torchscale rotation inside every form and the
 *     reference, at absolute positions pos + t (θ_j = 10000^{−j/(K/2−1)},
 *     interleaved pairs; needs K even). The cos/sin table is built in the
 *     workspace in fp64 and rounded once.
 *   torchscale's score normalizations (§1.7 (ii), (iii)) and the GroupNorm /
 *     swish-gate epilogue are omitted (not part of the retention core).
 *
 * Forms
 *   parallel   the quadratic form (§1.5), tiled by 64 query rows so that only
 *              a 64×T slab of scores exists at a time (workspace O(T), not
 *              O(T²)): A = s Q_I K_{≤I}ᵀ by GEMM, decay mask applied as
 *              γ^{n−m} = γ^{n−n0}·γ^{n0−m} (n0 = first row of the tile; both
 *              exponents ≤ 0) left of the diagonal block and element-wise on
 *              it, O_I = A V_{≤I} by GEMM (written straight into o). S0 enters
 *              as s(Q ⊙ γ^{n+1}) S0, the final state as γ^T S0 + Kᵀ(ζ ⊙ V),
 *              ζ_m = γ^{T−1−m}. Keys beyond the head's fp32 zero distance
 *              (γ^d is exactly 0 once d·log γ ≤ −87.4: 2753 tokens for γ_0,
 *              ≈ ×2 per head) are skipped: their masked scores are exact zeros,
 *              so the result is the dense form's. This only matters for the
 *              first heads at T in the thousands (6% of the work at T = 8192,
 *              H = 8; 8× less work in the T = 65536, H = 2 long check). Tiles
 *              of all slices are independent items (largest first).
 *              ≈ T²(K+V) FLOPs per slice (causal), counted as executed.
 *   recurrent  token by token: decay, rank-1 update and read-out fused per
 *              state row with the outputs in registers (lat_rec_step, α ≡ γ).
 *              5KV FLOPs/token. Also the decode step (T = 1, state in place).
 *   chunk      chunkwise (§1.6 = §0.4 with the scalar g = log γ) on the
 *              GLA-family engine (lat_chunk.c, LAT_DECAY_SCALAR): A = (Q Kᵀ) ∘
 *              e^{b_r − b_s}, O = (Q ⊙ e^{b}) S + A V, S ← e^{b_C} S + (K ⊙
 *              e^{b_C − b})ᵀ V, all GEMMs; chunk-local cumsums, exponents ≤ 0.
 *              2C(K+V) + 4KV FLOPs/token (dense blocks).
 * Memory: decode state K·V floats per slice (4·B·H·K·V bytes; RN2 at 7B,
 *   16 heads × 256 × 512 per layer, is independent of T). Workspace: parallel
 *   64·T + 64·(2K + 64) + T floats per thread (+ 2·B·T·H·K rotated copies of
 *   q, k with variant 1); recurrent 3K floats per thread + one K·V state per
 *   slice; chunk as lat_chunk_workspace; variant 1 adds a T·K-float table.
 * Parallel axis: (b, h) slices; the recurrent form splits value columns and
 *   the chunk form runs the engine's two-pass scheme when B·H does not keep
 *   the threads evenly busy; the parallel form's items are (slice, tile).
 * Defaults: chunk C = 64 (fla; torchscale's recurrent_chunk_size is 512),
 *   variant 0, s = K^{−1/2} (folded into q).
 * Accuracy: rel_rmse vs fp64 ≈ 2e-7 (all forms, T ≤ 1000); at T = 65536 with
 *   H = 8 (γ_7 = 1 − 2^{−12}, memory ≈ 4096 tokens) recurrent 1.3e-6, chunk
 *   4e-7, parallel (H = 2) 2e-7: tolerance 1e-5. Heads h ≥ 12 (memory ≥ 2^17
 *   tokens) exceed it at T = 65536 (H = 16: recurrent 1.8e-5, chunk 5.6e-6):
 *   the fp32 state's round-off random-walks over the memory (≈ √M · 2^{−24}),
 *   the spec's 1e-4 band for γ very close to 1; no suite runs H > 8.
 * Run: build/latbench run --method retnet --form chunk --B 1 --T 4096 --H 8 --D 64 --threads 2
 *      build/latbench check --methods retnet
 */
#include "common/lat_chunk.h"

#define PAR_TILE 64 /* query rows per tile of the parallel form */

/* ---- shapes and models --------------------------------------------------- */

static double n_slices(const lat_shape *s) { return (double)s->B * s->H; }

/* Distance d from which γ_h^d is exactly 0 in fp32: lat_expf returns 0 for
 * arguments ≤ −87.3, and d·log γ ≤ −87.4 for every d ≥ this (capped at
 * T + 1 = never within the call). */
static int zero_distance(int h, int T)
{
    const double d = ceil(87.4 / -ref_retnet_log_gamma(h));
    return d > (double)T ? T + 1 : (int)d;
}

/* First key of query tile [n0, n0 + 64): keys m ≤ n0 − d0 have γ^{n0−m} = 0
 * exactly in fp32 (so γ^{n−m} = 0 for every row n of the tile). */
static int tile_first_key(int n0, int d0) { return n0 - d0 + 1 > 0 ? n0 - d0 + 1 : 0; }

/* Executed work: the two GEMMs of every tile over its key range (dense
 * tiles, the band beyond exact fp32 underflow skipped); ≈ T²(K+V) per slice
 * while T is below the head's zero distance (32·2^h·87.4 tokens). */
static double flops_parallel(const lat_shape *s)
{
    double keys = 0.0; /* Σ over heads and tiles of rows × keys */
    for (int h = 0; h < s->H; h++) {
        const int d0 = zero_distance(h, s->T);
        for (int n0 = 0; n0 < s->T; n0 += PAR_TILE) {
            const int n1 = n0 + PAR_TILE < s->T ? n0 + PAR_TILE : s->T;
            keys += (double)(n1 - n0) * (n1 - tile_first_key(n0, d0));
        }
    }
    return (double)s->B * keys * 2.0 * (s->K + s->V);
}

static double flops_recurrent(const lat_shape *s) { return n_slices(s) * s->T * 5.0 * s->K * s->V; }

static double flops_chunk(const lat_shape *s)
{
    double C = s->chunk < s->T ? s->chunk : s->T;
    return n_slices(s) * s->T * (2.0 * C * (s->K + s->V) + 4.0 * s->K * s->V);
}

static double state_bytes(const lat_shape *s) { return 4.0 * n_slices(s) * s->K * s->V; }

/* q, k, v read, o written, state read and written. */
static double bytes(const lat_shape *s)
{
    double tok = (double)s->B * s->T * s->H;
    return 4.0 * tok * (2.0 * s->K + 2.0 * s->V) + 2.0 * state_bytes(s);
}

static lat_status validate(const lat_shape *s, char *why, size_t len)
{
    if (s->variant == 1 && s->K % 2)
        return lat_unsupported(why, len, "variant=1 (xPos rotation) needs an even K (got K=%d)", s->K);
    return LAT_OK;
}

static float log_gamma(int h) { return (float)ref_retnet_log_gamma(h); }

/* ---- xPos rotation (variant 1) ------------------------------------------- */

/* Table [T][K/2] of cos and [T][K/2] of sin of (pos + t)·θ_j, fp64 → fp32,
 * rows [t0, t1) only (callers split the rows over threads). */
static void rot_table_rows(const lat_shape *s, float *cs, int t0, int t1)
{
    const int half = s->K / 2;
    float *sn = cs + (size_t)s->T * half;
    for (int t = t0; t < t1; t++)
        for (int j = 0; j < half; j++) {
            const double theta = half > 1 ? pow(10000.0, -(double)j / (double)(half - 1)) : 1.0;
            const double ang = (double)(s->pos + t) * theta;
            cs[(size_t)t * half + j] = (float)cos(ang);
            sn[(size_t)t * half + j] = (float)sin(ang);
        }
}

static size_t rot_table_bytes(const lat_shape *s)
{
    return s->variant == 1 ? lat_align64(sizeof(float) * (size_t)s->T * (size_t)(s->K / 2) * 2) : 0;
}

/* y = scale · rot_t(x) (pairs (2j, 2j+1)), or scale · x without a table. */
static inline void rotate_row(float *restrict y, const float *restrict x, const float *cs, const lat_shape *s,
                              int t, float scale)
{
    const int K = s->K;
    if (!cs) {
        for (int i = 0; i < K; i++)
            y[i] = scale * x[i];
        return;
    }
    const int half = K / 2;
    const float *c = cs + (size_t)t * half, *sn = cs + (size_t)s->T * half + (size_t)t * half;
    for (int j = 0; j < half; j++) {
        const float x0 = x[2 * j], x1 = x[2 * j + 1];
        y[2 * j] = scale * (x0 * c[j] - x1 * sn[j]);
        y[2 * j + 1] = scale * (x1 * c[j] + x0 * sn[j]);
    }
}

/* ---- parallel form ------------------------------------------------------- */

typedef struct par_plan {
    int nt, nblk, items, rparts; /* threads, tiles per slice, BH·nblk, state row parts */
    size_t slice;                /* bytes of one thread's scratch                */
    size_t rot;                  /* bytes of the rotated q, k copies (variant 1)  */
} par_plan;

static par_plan plan_parallel(const lat_shape *s, int nthreads)
{
    par_plan p;
    const int BH = s->B * s->H;
    p.nblk = (s->T + PAR_TILE - 1) / PAR_TILE;
    p.items = BH * p.nblk;
    p.nt = lat_useful_threads((double)BH * s->T * (s->T + PAR_TILE) * (s->K + s->V) / 8.0, nthreads);
    if (p.nt > p.items)
        p.nt = p.items;
    p.rparts = BH >= p.nt ? 1 : (p.nt + BH - 1) / BH;
    if (p.rparts > s->K)
        p.rparts = s->K;
    const size_t C = PAR_TILE;
    p.slice = lat_align64(sizeof(float) * C * (size_t)s->T) +   /* A: scores of a tile */
              lat_align64(sizeof(float) * C * (size_t)s->K) +   /* Qt / Kt            */
              lat_align64(sizeof(float) * C * C) +              /* diagonal decay     */
              lat_align64(sizeof(float) * (size_t)s->T) +       /* column factors     */
              lat_align64(sizeof(float) * C);                   /* row factors        */
    p.rot = s->variant == 1 ? 2 * lat_align64(sizeof(float) * (size_t)s->B * s->T * s->H * s->K) : 0;
    return p;
}

static size_t ws_parallel(const lat_shape *s, int nthreads)
{
    par_plan p = plan_parallel(s, nthreads);
    return p.slice * (size_t)p.nt + p.rot + rot_table_bytes(s);
}

typedef struct par_bufs {
    float *A, *Qt, *Dg, *colf, *rowf;
} par_bufs;

static par_bufs par_carve(const lat_args *a, const par_plan *p, int tid)
{
    const lat_shape *s = a->shape;
    const size_t C = PAR_TILE;
    par_bufs b;
    char *base = (char *)a->work + p->slice * (size_t)tid;
    b.A = (float *)base;
    base += lat_align64(sizeof(float) * C * (size_t)s->T);
    b.Qt = (float *)base;
    base += lat_align64(sizeof(float) * C * (size_t)s->K);
    b.Dg = (float *)base;
    base += lat_align64(sizeof(float) * C * C);
    b.colf = (float *)base;
    base += lat_align64(sizeof(float) * (size_t)s->T);
    b.rowf = (float *)base;
    return b;
}

/* Output rows [n0, n1) of slice (b, h). Q, Kin rows are ldq = H·K apart. */
static void par_tile(const lat_args *a, const float *Qin, const float *Kin, int bh, int blk, par_bufs *w)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, T = s->T, b = bh / s->H, h = bh % s->H;
    const int n0 = blk * PAR_TILE, n1 = n0 + PAR_TILE < T ? n0 + PAR_TILE : T, nr = n1 - n0;
    const int ldq = s->H * K, ldv = s->H * V, ldA = T;
    const double lg = ref_retnet_log_gamma(h);
    const float scale = 1.0f / sqrtf((float)K);
    const float *Q = Qin + lat_idx_bthd(s, b, n0, h, K), *Kb = Kin + lat_idx_bthd(s, b, 0, h, K);
    const float *Vb = a->in[2] + lat_idx_bthd(s, b, 0, h, V);
    float *O = a->out + lat_idx_bthd(s, b, n0, h, V);

    /* keys m0 .. n1−1: below m0 the decay γ^{n−m} is exactly 0 in fp32
     * (rowf·colf = 0 there), so those terms are exact zeros and skipped */
    const int m0 = tile_first_key(n0, zero_distance(h, T)), nk = n1 - m0, nl = n0 - m0;
    lat_sgemm('N', 'T', nr, nk, K, scale, Q, ldq, Kb + (size_t)m0 * ldq, ldq, 0.0f, w->A, ldA);
    /* decay mask: left of the tile γ^{r}·γ^{n0−m}; on it γ^{r−c} (c ≤ r), 0 above */
    for (int m = 0; m < nl; m++)
        w->colf[m] = (float)((double)(nl - m) * lg);
    lat_vec_exp(w->colf, w->colf, (size_t)nl);
    for (int r = 0; r < nr; r++)
        w->rowf[r] = (float)((double)r * lg);
    lat_vec_exp(w->rowf, w->rowf, (size_t)nr);
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nr; c++)
            w->Dg[(size_t)r * PAR_TILE + c] = c <= r ? (float)((double)(r - c) * lg) : 0.0f;
    lat_vec_exp(w->Dg, w->Dg, (size_t)nr * PAR_TILE);
    for (int r = 0; r < nr; r++) {
        float *Ar = w->A + (size_t)r * ldA;
        const float rf = w->rowf[r];
        const float *cf = w->colf, *dg = w->Dg + (size_t)r * PAR_TILE;
        for (int m = 0; m < nl; m++)
            Ar[m] *= rf * cf[m];
        for (int c = 0; c < nr; c++)
            Ar[nl + c] = c <= r ? Ar[nl + c] * dg[c] : 0.0f;
    }
    lat_sgemm('N', 'N', nr, V, nk, 1.0f, w->A, ldA, Vb + (size_t)m0 * ldv, ldv, 0.0f, O, ldv);
    if (a->state_in) { /* + s (Q ⊙ γ^{n+1}) S0 */
        const float *S0 = a->state_in + (size_t)bh * K * V;
        for (int r = 0; r < nr; r++)
            w->rowf[r] = (float)((double)(n0 + r + 1) * lg);
        lat_vec_exp(w->rowf, w->rowf, (size_t)nr);
        for (int r = 0; r < nr; r++)
            for (int i = 0; i < K; i++)
                w->Qt[(size_t)r * K + i] = scale * w->rowf[r] * Q[(size_t)r * ldq + i];
        lat_sgemm('N', 'N', nr, V, K, 1.0f, w->Qt, K, S0, V, 1.0f, O, ldv);
    }
}

/* Final state rows [i0, i1) of slice bh: γ^T S0 + Σ_m γ^{T−1−m} k_m v_mᵀ. */
static void par_state(const lat_args *a, const float *Kin, int bh, int i0, int i1, par_bufs *w)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, T = s->T, b = bh / s->H, h = bh % s->H, ni = i1 - i0;
    const int ldq = s->H * K, ldv = s->H * V;
    const double lg = ref_retnet_log_gamma(h);
    float *S = a->state_out + (size_t)bh * K * V + (size_t)i0 * V;
    const float *S0 = a->state_in ? a->state_in + (size_t)bh * K * V + (size_t)i0 * V : NULL;
    if (S0) {
        const float gT = lat_expf((float)((double)T * lg));
        for (size_t e = 0; e < (size_t)ni * V; e++)
            S[e] = gT * S0[e];
    } else {
        memset(S, 0, sizeof(float) * (size_t)ni * V);
    }
    for (int m0 = 0; m0 < T; m0 += PAR_TILE) {
        const int nm = T - m0 < PAR_TILE ? T - m0 : PAR_TILE;
        for (int r = 0; r < nm; r++)
            w->rowf[r] = (float)((double)(T - 1 - m0 - r) * lg);
        lat_vec_exp(w->rowf, w->rowf, (size_t)nm);
        const float *Km = Kin + lat_idx_bthd(s, b, m0, h, K) + i0;
        for (int r = 0; r < nm; r++)
            for (int i = 0; i < ni; i++)
                w->Qt[(size_t)r * ni + i] = w->rowf[r] * Km[(size_t)r * ldq + i];
        lat_sgemm('T', 'N', ni, V, nm, 1.0f, w->Qt, ni, a->in[2] + lat_idx_bthd(s, b, m0, h, V), ldv, 1.0f, S,
                  V);
    }
}

static lat_status retnet_parallel(const lat_args *a)
{
    const lat_shape *s = a->shape;
    const par_plan p = plan_parallel(s, a->nthreads);
    if (a->work_bytes < ws_parallel(s, a->nthreads))
        return LAT_ENOMEM;
    const int BH = s->B * s->H, K = s->K;
    const float *Qin = a->in[0], *Kin = a->in[1];
    float *qr = NULL, *kr = NULL, *cs = NULL;
    if (s->variant == 1) {
        qr = (float *)((char *)a->work + p.slice * (size_t)p.nt);
        kr = (float *)((char *)qr + p.rot / 2);
        cs = (float *)((char *)qr + p.rot);
        Qin = qr;
        Kin = kr;
    }
    const long rows = (long)s->B * s->T; /* (b, t) rows of H·K floats */

#pragma omp parallel num_threads(p.nt) if (p.nt > 1)
    {
        const int tid = lat_thread_id();
        par_bufs w = par_carve(a, &p, tid);
        if (cs) { /* rotation table, then rotated copies of q and k */
            long lo, hi;
            lat_split(s->T, tid, p.nt, &lo, &hi);
            rot_table_rows(s, cs, (int)lo, (int)hi);
#pragma omp barrier
            lat_split(rows, tid, p.nt, &lo, &hi);
            for (long bt = lo; bt < hi; bt++) {
                const int t = (int)(bt % s->T);
                for (int h = 0; h < s->H; h++) {
                    const size_t off = ((size_t)bt * s->H + h) * K;
                    rotate_row(qr + off, a->in[0] + off, cs, s, t, 1.0f);
                    rotate_row(kr + off, a->in[1] + off, cs, s, t, 1.0f);
                }
            }
#pragma omp barrier
        }
        /* output tiles, largest (last) first */
#pragma omp for schedule(dynamic, 1)
        for (int it = 0; it < p.items; it++)
            par_tile(a, Qin, Kin, it % BH, p.nblk - 1 - it / BH, &w);
        /* final state after every output has read S0 (state_in may alias) */
        if (a->state_out) {
#pragma omp for schedule(dynamic, 1)
            for (int it = 0; it < BH * p.rparts; it++) {
                long i0, i1;
                lat_split(K, it % p.rparts, p.rparts, &i0, &i1);
                if (i1 > i0)
                    par_state(a, Kin, it / p.rparts, (int)i0, (int)i1, &w);
            }
        }
    }
    return LAT_OK;
}

/* ---- recurrent form ------------------------------------------------------ */

typedef struct rec_plan {
    int nt, nvb, items; /* threads, value-column blocks per slice, BH·nvb */
    int wpad;           /* row stride of a private column block (nvb > 1) */
    size_t slice;       /* bytes of one thread's scratch: α, s·q, k       */
} rec_plan;

static rec_plan plan_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p;
    int BH = s->B * s->H;
    p.nt = lat_useful_threads((double)BH * s->T * s->K * s->V, nthreads);
    p.nvb = lat_rec_col_blocks(BH, s->V, p.nt);
    p.items = BH * p.nvb;
    p.wpad = 16 * (((s->V + 15) / 16 + p.nvb - 1) / p.nvb);
    p.slice = 3 * lat_align64(sizeof(float) * (size_t)s->K);
    return p;
}

/* Layout: [thread slices][scratch state per slice, used when state_out is
 * NULL][private column blocks, nvb > 1 only][rotation table, variant 1]. */
static size_t ws_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p = plan_recurrent(s, nthreads);
    size_t priv = p.nvb > 1 ? (size_t)p.items * lat_align64(sizeof(float) * (size_t)s->K * (size_t)p.wpad) : 0;
    return p.slice * (size_t)p.nt +
           (size_t)s->B * (size_t)s->H * lat_align64(sizeof(float) * (size_t)s->K * (size_t)s->V) + priv +
           rot_table_bytes(s);
}

/* Token rows of one head are H·K floats apart: prefetch a few tokens ahead
 * and walk tokens in blocks over every item of the thread (see gla.c). */
#define PREFETCH_AHEAD 16
#define TOKEN_BLOCK 32

static inline void prefetch_floats(const float *x, int n)
{
    for (int i = 0; i < n; i += 16)
        __builtin_prefetch(x + i);
}

/* Value columns [j0, j1) of slice (b, h); S its working state (row stride
 * lds, column j0 first): the slice's own state, or a private copy when the
 * slice is split over threads (no false sharing). */
typedef struct rec_item {
    int b, h, j0, j1;
    float *S;
    size_t lds;
} rec_item;

static rec_item rec_item_at(const lat_args *a, const rec_plan *p, int it, float *slots, float *priv)
{
    const lat_shape *s = a->shape;
    const size_t KV = (size_t)s->K * (size_t)s->V;
    const int bh = it / p->nvb;
    rec_item r = {bh / s->H, bh % s->H, 0, 0, NULL, (size_t)s->V};
    lat_rec_col_range(s->V, p->nvb, it % p->nvb, &r.j0, &r.j1);
    if (p->nvb > 1) {
        r.S = priv + (size_t)it * (lat_align64(sizeof(float) * (size_t)s->K * (size_t)p->wpad) / sizeof(float));
        r.lds = (size_t)p->wpad;
    } else {
        r.S = (a->state_out ? a->state_out : slots) + (size_t)bh * KV;
    }
    return r;
}

static void rec_tokens(const lat_args *a, const rec_item *r, int t0, int t1, float *restrict alpha,
                       float *restrict qs, float *restrict kr, const float *cs)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, w = r->j1 - r->j0;
    const float *q = a->in[0], *k = a->in[1], *v = a->in[2];
    const float scale = 1.0f / sqrtf((float)K), gamma = lat_expf(log_gamma(r->h));
    for (int i = 0; i < K; i++)
        alpha[i] = gamma;
    for (int t = t0; t < t1; t++) {
        const size_t ik = lat_idx_bthd(s, r->b, t, r->h, K), iv = lat_idx_bthd(s, r->b, t, r->h, V);
        if (t + PREFETCH_AHEAD < s->T) {
            const size_t pk = lat_idx_bthd(s, r->b, t + PREFETCH_AHEAD, r->h, K);
            const size_t pv = lat_idx_bthd(s, r->b, t + PREFETCH_AHEAD, r->h, V) + (size_t)r->j0;
            prefetch_floats(q + pk, K), prefetch_floats(k + pk, K), prefetch_floats(v + pv, w);
        }
        rotate_row(qs, q + ik, cs, s, t, scale);
        const float *kt = k + ik;
        if (cs) {
            rotate_row(kr, k + ik, cs, s, t, 1.0f);
            kt = kr;
        }
        lat_rec_step(K, w, r->S, r->lds, alpha, kt, v + iv + r->j0, qs, a->out + iv + r->j0);
    }
}

static lat_status retnet_recurrent(const lat_args *a)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, T = s->T;
    const rec_plan p = plan_recurrent(s, a->nthreads);
    if (a->work_bytes < ws_recurrent(s, a->nthreads))
        return LAT_ENOMEM;
    const size_t KV = (size_t)K * (size_t)V;
    float *slots = (float *)((char *)a->work + p.slice * (size_t)p.nt);
    float *priv = slots + (size_t)s->B * (size_t)s->H * (lat_align64(sizeof(float) * KV) / sizeof(float));
    float *cs = NULL;
    if (s->variant == 1)
        cs = (float *)((char *)a->work + ws_recurrent(s, a->nthreads) - rot_table_bytes(s));

#pragma omp parallel num_threads(p.nt) if (p.nt > 1)
    {
        const int tid = lat_thread_id();
        float *alpha = lat_work_slice(a, p.slice, tid);
        float *qs = alpha + lat_align64(sizeof(float) * (size_t)K) / sizeof(float);
        float *kr = qs + lat_align64(sizeof(float) * (size_t)K) / sizeof(float);
        long lo, hi; /* this thread's items */
        lat_split(p.items, tid, p.nt, &lo, &hi);
        if (cs) {
            long r0, r1;
            lat_split(T, tid, p.nt, &r0, &r1);
            rot_table_rows(s, cs, (int)r0, (int)r1);
        }
        for (long it = lo; it < hi; it++) { /* initial state (S0 = 0 when absent) */
            rec_item r = rec_item_at(a, &p, (int)it, slots, priv);
            const float *S0 = a->state_in ? a->state_in + (size_t)(it / p.nvb) * KV + r.j0 : NULL;
            if (S0 != r.S)
                lat_copy_block(r.S, r.lds, S0, (size_t)V, K, r.j1 - r.j0);
        }
        if (cs) {
#pragma omp barrier
        }
        for (int t0 = 0; t0 < T; t0 += TOKEN_BLOCK) {
            const int t1 = t0 + TOKEN_BLOCK < T ? t0 + TOKEN_BLOCK : T;
            for (long it = lo; it < hi; it++) {
                rec_item r = rec_item_at(a, &p, (int)it, slots, priv);
                rec_tokens(a, &r, t0, t1, alpha, qs, kr, cs);
            }
        }
        if (p.nvb > 1 && a->state_out) /* private column blocks back into place */
            for (long it = lo; it < hi; it++) {
                rec_item r = rec_item_at(a, &p, (int)it, slots, priv);
                lat_copy_block(a->state_out + (size_t)(it / p.nvb) * KV + r.j0, (size_t)V, r.S, r.lds, K,
                               r.j1 - r.j0);
            }
    }
    return LAT_OK;
}

/* ---- chunk form ---------------------------------------------------------- */

typedef struct chunk_ctx {
    const lat_shape *s;
    const float *q, *k, *v, *cs;
    float *out;
    float scale;
} chunk_ctx;

static void prefetch_row(const chunk_ctx *x, size_t ik, size_t iv)
{
    const int K = x->s->K, V = x->s->V;
    for (int i = 0; i < K; i += 16) {
        __builtin_prefetch(x->q + ik + i);
        __builtin_prefetch(x->k + ik + i);
    }
    for (int j = 0; j < V; j += 16)
        __builtin_prefetch(x->v + iv + j);
}

/* Q = s·rot(q), Kc = rot(k), Vc = v, g = log γ_h per row. */
static void retnet_pack(const void *vctx, int bh, int t0, int n, float *restrict Q, float *restrict Kc,
                        float *restrict Vc, float *restrict G)
{
    const chunk_ctx *x = vctx;
    const lat_shape *s = x->s;
    const int K = s->K, V = s->V, b = bh / s->H, h = bh % s->H;
    const float lg = log_gamma(h);
    for (int r = 0; r < n; r++) {
        const size_t ik = lat_idx_bthd(s, b, t0 + r, h, K), iv = lat_idx_bthd(s, b, t0 + r, h, V);
        if (t0 + n + r < s->T) /* rows are H·K apart: start the next chunk's loads */
            prefetch_row(x, lat_idx_bthd(s, b, t0 + n + r, h, K), lat_idx_bthd(s, b, t0 + n + r, h, V));
        rotate_row(Q + (size_t)r * K, x->q + ik, x->cs, s, t0 + r, x->scale);
        if (x->cs)
            rotate_row(Kc + (size_t)r * K, x->k + ik, x->cs, s, t0 + r, 1.0f);
        else
            memcpy(Kc + (size_t)r * K, x->k + ik, sizeof(float) * (size_t)K);
        memcpy(Vc + (size_t)r * V, x->v + iv, sizeof(float) * (size_t)V);
        G[r] = lg;
    }
}

static void retnet_emit(const void *vctx, int bh, int t0, int n, const float *restrict O)
{
    const chunk_ctx *x = vctx;
    const lat_shape *s = x->s;
    const int V = s->V, b = bh / s->H, h = bh % s->H;
    for (int r = 0; r < n; r++)
        memcpy(x->out + lat_idx_bthd(s, b, t0 + r, h, V), O + (size_t)r * V, sizeof(float) * (size_t)V);
}

static lat_chunk_problem chunk_problem(const lat_shape *s, const lat_args *a, chunk_ctx *x)
{
    lat_chunk_problem p;
    memset(&p, 0, sizeof p);
    p.BH = s->B * s->H;
    p.T = s->T;
    p.K = s->K;
    p.Vx = s->V;
    p.C = s->chunk;
    p.c = s->chunk;
    p.decay = LAT_DECAY_SCALAR;
    p.causal = 1;
    p.pack = retnet_pack;
    p.emit = retnet_emit;
    p.ctx = x;
    if (a) {
        p.state_in = a->state_in;
        p.state_out = a->state_out;
    }
    return p;
}

static size_t ws_chunk(const lat_shape *s, int nthreads)
{
    lat_chunk_problem p = chunk_problem(s, NULL, NULL);
    return lat_align64(lat_chunk_workspace(&p, nthreads)) + rot_table_bytes(s);
}

static lat_status retnet_chunk(const lat_args *a)
{
    const lat_shape *s = a->shape;
    chunk_ctx x = {s, a->in[0], a->in[1], a->in[2], NULL, a->out, 1.0f / sqrtf((float)s->K)};
    lat_chunk_problem p = chunk_problem(s, a, &x);
    if (a->work_bytes < ws_chunk(s, a->nthreads))
        return LAT_ENOMEM;
    const size_t eng = lat_align64(lat_chunk_workspace(&p, a->nthreads));
    if (s->variant == 1) {
        float *cs = (float *)((char *)a->work + eng);
        const int nt = lat_useful_threads((double)s->T * s->K * 64.0, a->nthreads);
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
            long lo, hi;
            lat_split(s->T, lat_thread_id(), nt, &lo, &hi);
            rot_table_rows(s, cs, (int)lo, (int)hi);
        }
        x.cs = cs;
    }
    return lat_chunk_run(&p, a->work, eng, a->nthreads);
}

/* ---- descriptor ---------------------------------------------------------- */

static const lat_input retnet_inputs[] = {
    {.name = "q", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "queries [B][T][H][K], N(0,1) (already xPos-rotated unless variant=1)", .sharpen = 1},
    {.name = "k", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "keys [B][T][H][K], N(0,1) (already xPos-rotated unless variant=1)", .sharpen = 1},
    {.name = "v", .dims = lat_dims_bthv, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "values [B][T][H][V], N(0,1)"},
};

static const lat_knob retnet_knobs[] = {
    LAT_KNOB(causal, 1, 1, 1, "causal only (declared so that the harness treats the method as causal)"),
    LAT_KNOB(chunk, 64, 1, 4096, "chunk length C of the chunk form (fla: 64; torchscale: 512)"),
    LAT_KNOB(variant, 0, 0, 1,
             "xPos rotation: 0 q,k taken as already rotated (default); 1 torchscale rotation "
             "(theta_j = 10000^(-j/(K/2-1)), interleaved pairs, positions pos+t) inside forms and reference"),
};

static const lat_form retnet_forms[] = {
    {"parallel", retnet_parallel, ws_parallel, flops_parallel,
     "quadratic: (s Q K^T ⊙ D) V with the decay mask D, 64-row query tiles by GEMM (paper §2.1)"},
    {"recurrent", retnet_recurrent, ws_recurrent, flops_recurrent,
     "token by token, fused decay/update/readout, SIMD over V (torchscale recurrent_forward)"},
    {"chunk", retnet_chunk, ws_chunk, flops_chunk,
     "chunkwise recurrent, scalar decay, GEMMs via OpenBLAS (paper §2.1; fla chunk_retention)"},
};

const lat_method lat_method_retnet = {
    .name = "retnet",
    .family = "gated-linear",
    .paper = "Sun et al., Retentive Network: A Successor to Transformer for Large Language Models, "
             "2023 (arXiv 2307.08621)",
    .summary = "retention: linear attention with a fixed per-head decay gamma_h = 1 - 2^(-5-h)",
    .dim_map = "K = V = D; gamma_h from the head index h",
    .inputs = retnet_inputs,
    .n_inputs = (int)(sizeof retnet_inputs / sizeof retnet_inputs[0]),
    .knobs = retnet_knobs,
    .n_knobs = (int)(sizeof retnet_knobs / sizeof retnet_knobs[0]),
    .forms = retnet_forms,
    .n_forms = (int)(sizeof retnet_forms / sizeof retnet_forms[0]),
    .out_dims = lat_dims_bthv,
    .state_dims = lat_dims_bhkv,
    .decode_form = "recurrent",
    .map_dim = NULL,
    .validate = validate,
    .bytes = bytes,
    .state_bytes = state_bytes,
    .reference = ref_retnet,
    .reference_alt = ref_retnet_parallel,
    /* 1e-5: see "Accuracy" in the header (holds for H ≤ 8 up to T = 65536). */
    .tol_out = 1e-5,
    .tol_state = 1e-5,
    .approximates_softmax = 0,
    .quadratic = 0,
    .tol_note = NULL,
};
