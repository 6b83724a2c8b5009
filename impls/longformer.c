/* longformer.c — Longformer attention: symmetric dilated sliding window
 * plus global tokens (Beltagy, Peters, Cohan 2020, arXiv 2004.05150;
 * allenai/longformer longformer.py, sliding_chunks.py; spec/attention.md
 * §2.2, §2.3, errata 3), forward core, fp32. Non-causal.
 *
 * Math, per (b, h), τ = 1/√K, G = the first g tokens (g = min(agents, T)):
 *   row i ∉ G:  softmax of τ⟨q_i, k_j⟩ over A(i) = G ∪ (W(i) \ G), values v_j,
 *               W(i) = { i + d·m : m ∈ [−w₁, w₁] } ∩ [0, T)
 *               (the local projections serve both the band and the global
 *               keys; the code drops G from the band and prepends the global
 *               keys, so each counts once)
 *   row i ∈ G:  softmax of τ⟨q_g,i, k_g,j⟩ over all j, values v_g,j (the
 *               separate global projections of §2.3), overwriting row i.
 * Decisions (spec open points, errata 3, Appendix C.4):
 *   - non-causal only (the official module never uses its autoregressive
 *     flag): no state, no decode (state_dims = decode_form = NULL), pos = 0;
 *   - w₁ = `window`, the ONE-SIDED window (allenai attention_window; 2w₁+1
 *     positions, 512 "total" = w₁ 256, the pretrained default);
 *   - dilation d = `stride` (default 1; the official CPU path supports only
 *     d = 1, d > 1 follows §2.2's index map as the TVM kernel does);
 *   - G = the first `agents` tokens (default 1: the [CLS] token of
 *     Longformer's classification setup; 0 = no global attention). No
 *     padding (every key is real).
 * |A| = Σ_{i∉G} (g + |W(i) \ G|) + g·T; FLOPs 2·|A|·(K+V) ≈ 2T(2w₁+1+2g)(K+V).
 *
 * Forms
 *   tiled     on the shared engine (impls/common/lat_attn_tiles.c): the
 *             local rows are tiled per residue class mod d (queries and keys
 *             i ≡ r: rows d·H·K floats apart, coordinate = index in the
 *             class — the permuted-sequence trick — so the dilated window is
 *             the band |Δ| ≤ w₁), each tile visiting a run of the g global
 *             keys (unmasked) and the class keys ≥ g under the band (only
 *             the edge tiles masked); the global rows are tiles of their own
 *             over all T keys of k_g, v_g. One engine call, the global tiles
 *             first (heaviest); threads over (b, h, tile), dynamic.
 *   parallel  textbook dense masked (lat_attn_dense): local rows against
 *             all T keys (scores by lat_sgemm, −∞ outside A(i), row
 *             softmax, P·V), then the global rows likewise with q_g, k_g, v_g.
 *             Quadratic; FLOPs counted as executed (2·T²·(K+V)); ≤ 2^26
 *             scores per thread at once.
 * Parallel axis: (b, h, tile). Memory: no state; workspace per thread as
 *   softmax's tiled form (tiled) or a block of scores (parallel).
 * Inputs: q, k, v, q_g, k_g, v_g ~ N(0,1); harsh: the q's and k's N(0,3²).
 * Defaults: window w₁ = 256, stride (dilation) 1, agents (g) 1, tile_q 64,
 *   tile_k 128 as upper bounds (lat_attn_band_tiles: without AVX-512,
 *   narrower bands get smaller tiles; the AVX-512 engine cuts band edges at
 *   16 × 16 granularity instead).
 * Run:  build/latbench run --method longformer --form tiled --B 1 --T 8192 --H 8 --D 64 --threads 2
 *       build/latbench run --method longformer --form tiled --window 128 --stride 2 --agents 16 ...
 *       build/latbench check --methods longformer
 */
#include "common/lat_attn_tiles.h"

// --------------------------------------------------------------------------
// Call context
// --------------------------------------------------------------------------

typedef struct {
    const lat_shape *s;
    const float *q, *k, *v, *qg, *kg, *vg;
    float *o;
    int g, w1, d, bq, bk;
    int tpc;      /* local tiles per residue class */
    long gitems;  /* global-row tiles (first)      */
} lf_call;

static lf_call lf_make(const lat_shape *s, const lat_args *a)
{
    lf_call c = {.s = s, .g = s->agents < s->T ? s->agents : s->T, .w1 = s->window,
                 .d = s->stride > 0 ? s->stride : 1};
    lat_attn_band_tiles(2 * c.w1 + 1, s->tile_q > 0 ? s->tile_q : 64, s->tile_k > 0 ? s->tile_k : 128, &c.bq,
                        &c.bk);
    c.bq = c.bq < s->T ? c.bq : s->T;
    const int per_class = (s->T + c.d - 1) / c.d;
    c.tpc = (per_class + c.bq - 1) / c.bq;
    c.gitems = (long)s->B * s->H * ((c.g + c.bq - 1) / c.bq);
    if (a) {
        c.q = a->in[0], c.k = a->in[1], c.v = a->in[2];
        c.qg = a->in[3], c.kg = a->in[4], c.vg = a->in[5], c.o = a->out;
    }
    return c;
}

/* first class index t with r + d·t ≥ p */
static inline int lf_cls(int p, int r, int d) { return p > r ? (p - r + d - 1) / d : 0; }

// --------------------------------------------------------------------------
// tiled
// --------------------------------------------------------------------------

static int lf_tile(const void *ctx, long it, lat_qtile *t, lat_kv_run *runs)
{
    const lf_call *c = ctx;
    const lat_shape *s = c->s;
    const int K = s->K, V = s->V, H = s->H, T = s->T;
    if (it < c->gitems) { /* global rows [0, g): q_g against all k_g, v_g */
        const int nt = (c->g + c->bq - 1) / c->bq, gt = (int)(it % nt);
        const long bh = it / nt;
        const int b = (int)(bh / H), h = (int)(bh % H), i0 = gt * c->bq;
        t->nr = c->g - i0 < c->bq ? c->g - i0 : c->bq;
        t->q = c->qg + lat_idx_bthd(s, b, i0, h, K);
        t->ldq = H * K;
        t->o = c->o + lat_idx_bthd(s, b, i0, h, V);
        t->ldo = H * V;
        t->pos = i0;
        runs[0] = lat_kv_call_run(s, c->kg, c->vg, b, h, 0, T, 1, 0, -LAT_BAND_OPEN, LAT_BAND_OPEN);
        return 1;
    }
    it -= c->gitems; /* local rows of residue class r, class indices [ta, tb) */
    const int d = c->d, kt = (int)(it % c->tpc);
    const long rest = it / c->tpc;
    const int r = (int)(rest % d);
    const long bh = rest / d;
    const int b = (int)(bh / H), h = (int)(bh % H);
    const int tg = lf_cls(c->g, r, d), tend = lf_cls(T, r, d); /* class rows ≥ g */
    const int ta = tg + kt * c->bq, tb = ta + c->bq < tend ? ta + c->bq : tend;
    t->nr = tb - ta;
    if (t->nr <= 0)
        return 0;
    const int i0 = r + d * ta;
    t->q = c->q + lat_idx_bthd(s, b, i0, h, K);
    t->ldq = d * H * K;
    t->o = c->o + lat_idx_bthd(s, b, i0, h, V);
    t->ldo = d * H * V;
    t->pos = ta;
    int n = 0;
    if (c->g > 0)
        runs[n++] = lat_kv_call_run(s, c->k, c->v, b, h, 0, c->g, 1, 0, -LAT_BAND_OPEN, LAT_BAND_OPEN);
    runs[n++] = lat_kv_call_run(s, c->k, c->v, b, h, r + d * tg, tend - tg, d, tg, -c->w1, c->w1);
    return n;
}

static lat_attn_desc lf_tiled_desc(const lf_call *c)
{
    const lat_shape *s = c->s;
    lat_attn_desc d = {
        .K = s->K, .V = s->V, .bq = c->bq, .bk = c->bk < s->T ? c->bk : s->T,
        .items = c->gitems + (long)s->B * s->H * c->d * c->tpc, .max_runs = 2,
        .split_keys = (long)c->g + 2L * c->w1 + 1, .scale = 1.0f / sqrtf((float)s->K), .tile = lf_tile,
        .ctx = c,
    };
    return d;
}

static size_t lf_tiled_workspace(const lat_shape *s, int nthreads)
{
    const lf_call c = lf_make(s, NULL);
    const lat_attn_desc d = lf_tiled_desc(&c);
    return lat_attn_tiled_workspace(&d, nthreads);
}

static lat_status lf_tiled(const lat_args *a)
{
    if (a->shape->pos != 0)
        return LAT_UNSUPPORTED;
    const lf_call c = lf_make(a->shape, a);
    const lat_attn_desc d = lf_tiled_desc(&c);
    return lat_attn_tiled(&d, a->work, a->work_bytes, a->nthreads);
}

// --------------------------------------------------------------------------
// parallel (dense masked)
// --------------------------------------------------------------------------

#define LF_DENSE_SCORES ((size_t)1 << 26) /* scores per thread at once */

typedef struct {
    const lf_call *c;
    int global; /* 1: the k_g, v_g pass */
} lf_dense_ctx;

static int lf_segs(const void *ctx, int b, int h, lat_kv_run *segs)
{
    const lf_dense_ctx *x = ctx;
    const lf_call *c = x->c;
    segs[0] = lat_kv_call_run(c->s, x->global ? c->kg : c->k, x->global ? c->vg : c->v, b, h, 0, c->s->T, 1,
                              0, 0, 0);
    return 1;
}

/* local row i: keys [0, g) and the dilated band from g on; the rest −∞ */
static void lf_mask_row(const void *ctx, int b, int h, int i, float *restrict row, int S, int *lo, int *hi)
{
    const lf_dense_ctx *x = ctx;
    const lf_call *c = x->c;
    (void)b, (void)h;
    *lo = 0;
    *hi = S;
    if (x->global)
        return;
    const int reach = c->d * c->w1;
    const int b0 = i - reach > c->g ? i - reach : c->g; /* first band candidate */
    *hi = i + reach + 1 < S ? i + reach + 1 : S;
    for (int j = c->g; j < b0; j++)
        row[j] = -INFINITY;
    if (c->d > 1)
        for (int j = b0; j < *hi; j++)
            if ((j > i ? j - i : i - j) % c->d != 0)
                row[j] = -INFINITY;
}

static lat_attn_dense_desc lf_dense_desc(const lat_shape *s, const lf_dense_ctx *x, int i0, int i1,
                                         const float *q)
{
    const size_t rows = LF_DENSE_SCORES / (size_t)s->T;
    lat_attn_dense_desc d = {
        .B = s->B, .H = s->H, .K = s->K, .V = s->V, .i0 = i0, .i1 = i1,
        .rows = rows >= (size_t)s->T ? s->T : (rows > 0 ? (int)rows : 1), .S = s->T, .max_segs = 1,
        .scale = 1.0f / sqrtf((float)s->K), .q = q, .o = x ? x->c->o : NULL, .T = s->T, .segs = lf_segs,
        .mask = lf_mask_row, .ctx = x,
    };
    return d;
}

static size_t lf_parallel_workspace(const lat_shape *s, int nthreads)
{
    const lat_attn_dense_desc d = lf_dense_desc(s, NULL, 0, s->T, NULL);
    return lat_attn_dense_workspace(&d, nthreads);
}

static lat_status lf_parallel(const lat_args *a)
{
    const lat_shape *s = a->shape;
    if (s->pos != 0)
        return LAT_UNSUPPORTED;
    const lf_call c = lf_make(s, a);
    const lf_dense_ctx xl = {&c, 0}, xg = {&c, 1};
    const lat_attn_dense_desc dl = lf_dense_desc(s, &xl, c.g, s->T, c.q);
    lat_status st = lat_attn_dense(&dl, a->work, a->work_bytes, a->nthreads);
    if (st == LAT_OK && c.g > 0) {
        const lat_attn_dense_desc dg = lf_dense_desc(s, &xg, 0, c.g, c.qg);
        st = lat_attn_dense(&dg, a->work, a->work_bytes, a->nthreads);
    }
    return st;
}

// --------------------------------------------------------------------------
// Descriptor
// --------------------------------------------------------------------------

static inline long lf_ceil_div(long a, long d) { return a >= 0 ? (a + d - 1) / d : -((-a) / d); }
static inline long lf_floor_div(long a, long d) { return a >= 0 ? a / d : -((-a + d - 1) / d); }

/* |A| per (b, h) */
static double lf_pairs(const lat_shape *s)
{
    const lf_call c = lf_make(s, NULL);
    double n = (double)c.g * s->T;
    for (long i = c.g; i < s->T; i++) {
        long m0 = lf_ceil_div(c.g - i, c.d), m1 = lf_floor_div(s->T - 1 - i, c.d);
        m0 = m0 > -c.w1 ? m0 : -c.w1;
        m1 = m1 < c.w1 ? m1 : c.w1;
        n += c.g + (m1 >= m0 ? (double)(m1 - m0 + 1) : 0.0);
    }
    return n;
}

static double lf_flops_tiled(const lat_shape *s)
{
    return 2.0 * lf_pairs(s) * (s->K + s->V) * s->B * s->H;
}

static double lf_flops_parallel(const lat_shape *s)
{
    return 2.0 * (double)s->T * s->T * (s->K + s->V) * s->B * s->H;
}

/* both projections read, o written */
static double lf_bytes(const lat_shape *s)
{
    return 4.0 * s->B * s->H * (double)s->T * (4.0 * s->K + 3.0 * s->V);
}

static lat_status lf_validate(const lat_shape *s, char *why, size_t len)
{
    if (s->pos != 0)
        return lat_unsupported(why, len, "longformer is non-causal: no state, pos must be 0");
    return LAT_OK;
}

static const lat_input lf_inputs[] = {
    {.name = "q", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 3.0, .hb = 0.0, .sharpen = 1,
     .doc = "local queries [B][T][H][K], N(0,1); harsh N(0,3^2)"},
    {.name = "k", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 3.0, .hb = 0.0, .sharpen = 1,
     .doc = "local keys [B][T][H][K] (band and global keys of local rows), N(0,1); harsh N(0,3^2)"},
    {.name = "v", .dims = lat_dims_bthv, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "local values [B][T][H][V], N(0,1)"},
    {.name = "q_g", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 3.0, .hb = 0.0, .sharpen = 1,
     .doc = "global queries [B][T][H][K] (rows of G used), N(0,1); harsh N(0,3^2)"},
    {.name = "k_g", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 3.0, .hb = 0.0, .sharpen = 1,
     .doc = "global keys [B][T][H][K] (all keys of the global rows), N(0,1); harsh N(0,3^2)"},
    {.name = "v_g", .dims = lat_dims_bthv, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "global values [B][T][H][V], N(0,1)"},
};

static const lat_knob lf_knobs[] = {
    LAT_KNOB(window, 256, 0, 1 << 20, "one-sided window w1 (allenai attention_window; 2*w1+1 positions)"),
    LAT_KNOB(stride, 1, 1, 1 << 16, "dilation d: band keys i + d*m, |m| <= w1"),
    LAT_KNOB(agents, 1, 0, 1 << 20, "global tokens: the first g positions (1 = [CLS]; 0 = none)"),
    LAT_KNOB(tile_q, 64, 1, 4096, "tiled: most query rows per tile (fewer when 2*w1+1 < 128)"),
    LAT_KNOB(tile_k, 128, 1, 4096, "tiled: most key columns per tile"),
};

static const lat_form lf_forms[] = {
    {.name = "tiled", .run = lf_tiled, .workspace = lf_tiled_workspace, .flops = lf_flops_tiled,
     .doc = "FlashAttention-2 over the band (per residue class mod d) + global keys; global rows full"},
    {.name = "parallel", .run = lf_parallel, .workspace = lf_parallel_workspace, .flops = lf_flops_parallel,
     .doc = "textbook dense masked: all T x T scores by sgemm, band/global mask, P·V (O(T²))"},
};

const lat_method lat_method_longformer = {
    .name = "longformer",
    .family = "sparse-softmax",
    .paper = "Beltagy, Peters, Cohan 2020, Longformer: The Long-Document Transformer (arXiv 2004.05150); "
             "allenai/longformer",
    .summary = "non-causal dilated sliding window (one-sided w1) + global tokens with their own projections",
    .dim_map = "K = V = D",
    .inputs = lf_inputs,
    .n_inputs = (int)(sizeof lf_inputs / sizeof lf_inputs[0]),
    .knobs = lf_knobs,
    .n_knobs = (int)(sizeof lf_knobs / sizeof lf_knobs[0]),
    .forms = lf_forms,
    .n_forms = (int)(sizeof lf_forms / sizeof lf_forms[0]),
    .out_dims = lat_dims_bthv,
    .state_dims = NULL,
    .decode_form = NULL,
    .map_dim = NULL,
    .validate = lf_validate,
    .bytes = lf_bytes,
    .state_bytes = NULL,
    .reference = ref_longformer,
    .reference_alt = ref_longformer_listed,
    .tol_out = 1e-5,
    .tol_state = 1e-6, /* no state */
    .approximates_softmax = 1,
    .softmax_target = ref_longformer_target,
    .quadratic = 0,
    .tol_note = NULL,
};
