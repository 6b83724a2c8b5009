/* gla.c — Gated Linear Attention (Yang, Wang, Shen, Panda, Kim; ICML 2024,
 * arXiv 2312.06635), forward core, fp32. Spec: spec/recurrent.md §2 and §0.4.
 *
 * Recurrence (key-major state S ∈ R^{K×V}, per (b, h) slice):
 *     S_t = Diag(e^{g_t}) S_{t−1} + k_t v_tᵀ,    o_t = s · S_tᵀ q_t,   s = K^{−1/2}
 * with per-key log-gates g_t ≤ 0 (α_t = e^{g_t}; the layer makes them as
 * logsigmoid(z)/16). State [B][H][K][V] (lat_dims_bhkv), S0 = 0 when absent.
 * Causal only.
 *
 * Forms
 *   recurrent  token by token on the rescaled-state span engine
 *              (impls/common/lat_span.h): over a span of ≤ 32 tokens with the
 *              running per-key decay product P(t) (α = e^{g}, lat_vec_exp),
 *              S̃ += (k ⊘ P) vᵀ and o = (s·q ⊙ P)ᵀ S̃ — two FMAs per state
 *              element and token, an 8-row × 32-column tile of S̃ in registers
 *              across the span — and S = Diag(P(n)) S̃ once at its end. A span
 *              ends before any P_i drops below 2^−58; a token whose own α is
 *              below that (harsh gates) takes the plain fused decay → update
 *              → readout step (lat_rec_step). 5·K·V FLOPs/token counted (the
 *              recurrence's; executed ≈ 4KV + 5K) + K exps + K divisions.
 *              Also the decode step (T = 1, state in place).
 *   chunk      chunkwise form with secondary chunking (fla `chunk_gla`), run by
 *              the GLA-family engine (impls/common/lat_chunk.c): chunk-local
 *              inclusive cumsums b (kept in fp64, so every exponent is one
 *              rounded difference: its error scales with the exponent, not
 *              with the chunk's total log-decay); O = (sQ ⊙ e^{b}) S + A V by
 *              GEMM; A's off-diagonal c×c blocks by GEMM with the
 *              reference-row factorization (both exponents ≤ 0), its diagonal
 *              blocks element-wise in log space (variant 0, the default) or by
 *              running products of α = e^{g} ≤ 1 (variant 1: K exps per token
 *              instead of ≈ cK/2, same accuracy, ≈ 1.3× faster at D = 64);
 *              S ← Diag(e^{b_C}) S + (K ⊙ e^{b_C − b})ᵀ V by GEMM. Only
 *              non-positive numbers are exponentiated (rules R1–R4), so the
 *              harsh gates (chunk log-decays of −440) stay finite. A short last
 *              chunk is handled as is (no padding).
 *              2C(K+V) + 4KV FLOPs/token (dense blocks) + ≈ 13K exps/token.
 * Memory: state K·V floats per slice. Workspace: recurrent, 3K + 2·64·K
 *   floats per thread (α, s·q, P(n), span q̃ and k̃) + one K·V scratch state
 *   per slice (used when state_out is NULL);
 *   chunk, ≈ 7CK + 2CV + C² floats per thread + one K·V state per slice,
 *   plus 16 chunk states (16·K·V) per slice in the split mode below.
 * Parallel axis: (b, h) slices, statically split over the threads and walked
 *   chunk-major (token-block-major for the recurrent form) so that a time
 *   step's rows, H·K floats apart, are read together. When B·H does not keep
 *   the threads evenly busy, the recurrent form also splits the value columns
 *   (independent, §0.2; each block runs on a private cache-line-aligned copy)
 *   and the chunk form switches to a windowed two-pass scheme (chunks in
 *   parallel → chunk-state scan split over state rows → chunks in parallel).
 * Defaults: chunk C = 64, subchunk c = 16 (fla), variant 0; s = K^{−1/2}.
 * Deviations from fla: none in the math; fla's clamp_min on g is not applied.
 * Run: build/latbench run --method gla --form chunk --B 1 --T 4096 --H 8 --D 64 --threads 2
 *      build/latbench check --methods gla
 */
#include "common/lat_chunk.h"
#include "common/lat_span.h"

/* ---- shapes and models --------------------------------------------------- */

static double n_slices(const lat_shape *s) { return (double)s->B * s->H; }

static double flops_recurrent(const lat_shape *s)
{
    return n_slices(s) * s->T * 5.0 * s->K * s->V;
}

static double flops_chunk(const lat_shape *s)
{
    double C = s->chunk < s->T ? s->chunk : s->T;
    return n_slices(s) * s->T * (2.0 * C * (s->K + s->V) + 4.0 * s->K * s->V);
}

static double state_bytes(const lat_shape *s) { return 4.0 * n_slices(s) * s->K * s->V; }

/* q, k, g and v read, o written, state read and written. */
static double bytes(const lat_shape *s)
{
    double tok = (double)s->B * s->T * s->H;
    return 4.0 * tok * (3.0 * s->K + 2.0 * s->V) + 2.0 * state_bytes(s);
}

/* ---- recurrent form ------------------------------------------------------ */

/* Tokens are walked in blocks, every item of the thread per block, so that
 * a time step's rows are consumed together (1.2× at T = 8192, H = 8). */
#define TOKEN_BLOCK 32 /* also the longest span (≤ LAT_SPAN_MAX; 16 and 64 measured no faster) */

typedef struct rec_plan {
    int nt, nvb, items; /* threads, value-column blocks per slice, BH·nvb */
    int wpad;           /* row stride of a private column block (nvb > 1) */
    size_t slice;       /* bytes of one thread's scratch: α, s·q          */
} rec_plan;

static rec_plan plan_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p;
    int BH = s->B * s->H;
    p.nt = lat_useful_threads((double)BH * s->T * s->K * s->V, nthreads);
    p.nvb = lat_rec_col_blocks(BH, s->V, p.nt);
    p.items = BH * p.nvb;
    p.wpad = 16 * (((s->V + 15) / 16 + p.nvb - 1) / p.nvb);
    /* α, s·q, P(n) [K], span Qt, Kt [LAT_SPAN_MAX][K] */
    p.slice = 3 * lat_align64(sizeof(float) * (size_t)s->K) +
              2 * lat_align64(sizeof(float) * (size_t)LAT_SPAN_MAX * (size_t)s->K);
    return p;
}

/* Floats of n elements, rounded up to whole cache lines (64 B = 16 floats). */
static size_t lines(size_t n) { return lat_align64(n * sizeof(float)) / sizeof(float); }

/* Layout (floats): [thread slices][scratch state per slice, used when
 * state_out is NULL][private column blocks, nvb > 1 only]. */
static size_t ws_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p = plan_recurrent(s, nthreads);
    size_t K = (size_t)s->K, BH = (size_t)s->B * (size_t)s->H;
    size_t priv = p.nvb > 1 ? (size_t)p.items * lines(K * (size_t)p.wpad) : 0;
    return p.slice * (size_t)p.nt + sizeof(float) * (BH * lines(K * (size_t)s->V) + priv);
}


/* One work item: value columns [j0, j1) of slice (b, h). S is its working
 * state (row stride lds, column j0 first): the slice's state itself when
 * the slice is not split, else a private copy (items of one slice would
 * otherwise write the same cache lines every token). */
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
        r.S = priv + (size_t)it * lines((size_t)s->K * (size_t)p->wpad);
        r.lds = (size_t)p->wpad;
    } else {
        r.S = (a->state_out ? a->state_out : slots) + (size_t)bh * KV;
    }
    return r;
}

/* One thread's scratch (see plan_recurrent). */
typedef struct rec_bufs {
    float *alpha; /* [K] α = e^{g} and s·q of a token left to the plain step */
    float *qs;
    float *Qt, *Kt, *Pn;
} rec_bufs;

static rec_bufs rec_bufs_at(const lat_args *a, const rec_plan *p, int tid)
{
    const size_t K = (size_t)a->shape->K;
    rec_bufs b;
    b.alpha = lat_work_slice(a, p->slice, tid);
    b.qs = b.alpha + lines(K);
    b.Pn = b.qs + lines(K);
    b.Qt = b.Pn + lines(K);
    b.Kt = b.Qt + lines((size_t)LAT_SPAN_MAX * K);
    return b;
}

/* Tokens [t0, t1) of one item: spans of the rescaled-state engine
 * (lat_span.h; α = e^{g} inside its preparation); a token whose own decay is
 * below the span bound takes the plain fused step. While a span runs, the
 * engine prefetches the same tokens' rows of the next item nx (from token
 * nt0) into L2: rows of one head are H·K floats apart, a stride the hardware
 * prefetchers do not follow, and the engine spreads the lines over its
 * register-resident work (the next item rather than the next block: 1.06×,
 * the lines arrive shortly before use and do not crowd L2). */
static void rec_tokens(const lat_args *a, const rec_item *r, int t0, int t1, const rec_bufs *wb,
                       const rec_item *nx, int nt0)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, w = r->j1 - r->j0;
    const float *q = a->in[0], *k = a->in[1], *v = a->in[2], *g = a->in[3];
    const float scale = 1.0f / sqrtf((float)K);
    const size_t ldk = (size_t)s->H * (size_t)K, ldv = (size_t)s->H * (size_t)V; /* token strides */
    for (int t = t0; t < t1;) {
        const size_t ik = lat_idx_bthd(s, r->b, t, r->h, K), iv = lat_idx_bthd(s, r->b, t, r->h, V) + (size_t)r->j0;
        const int n = lat_span_prep_key(K, t1 - t, g + ik, ldk, q + ik, ldk, scale, k + ik, ldk, wb->Qt, wb->Kt,
                                        wb->Pn);
        if (n > 0) {
            const float *kin[3] = {g, k, q};
            const lat_span_pf pf =
                lat_span_pf_item(s, nx->b, nx->h, nx->j0, nx->j1, nt0 + (t - t0), n, 3, kin, v, a->out);
            lat_span_run(K, w, n, r->S, r->lds, wb->Qt, wb->Kt, (size_t)K, v + iv, ldv, a->out + iv, ldv, wb->Pn,
                         &pf);
            t += n;
        } else {
            lat_vec_exp(wb->alpha, g + ik, (size_t)K);
            for (int i = 0; i < K; i++)
                wb->qs[i] = scale * q[ik + (size_t)i];
            lat_rec_step(K, w, r->S, r->lds, wb->alpha, k + ik, v + iv, wb->qs, a->out + iv);
            t += 1;
        }
    }
}

static lat_status gla_recurrent(const lat_args *a)
{
    const lat_shape *s = a->shape;
    const int K = s->K, V = s->V, T = s->T;
    const rec_plan p = plan_recurrent(s, a->nthreads);
    if (a->work_bytes < ws_recurrent(s, a->nthreads))
        return LAT_ENOMEM;
    const size_t KV = (size_t)K * (size_t)V;
    float *slots = (float *)((char *)a->work + p.slice * (size_t)p.nt);
    float *priv = slots + (size_t)s->B * (size_t)s->H * lines(KV);

#pragma omp parallel num_threads(p.nt) if (p.nt > 1)
    {
        const int tid = lat_thread_id();
        const rec_bufs wb = rec_bufs_at(a, &p, tid);
        long lo, hi; /* this thread's items */
        lat_split(p.items, tid, p.nt, &lo, &hi);
        for (long it = lo; it < hi; it++) { /* initial state (S0 = 0 when absent) */
            rec_item r = rec_item_at(a, &p, (int)it, slots, priv);
            const size_t at = (size_t)(it / p.nvb) * KV + (size_t)r.j0;
            const float *S0 = a->state_in ? a->state_in + at : NULL;
            if (S0 != r.S)
                lat_copy_block(r.S, r.lds, S0, (size_t)V, K, r.j1 - r.j0);
        }
        for (int t0 = 0; t0 < T; t0 += TOKEN_BLOCK) {
            const int t1 = t0 + TOKEN_BLOCK < T ? t0 + TOKEN_BLOCK : T;
            for (long it = lo; it < hi; it++) {
                rec_item r = rec_item_at(a, &p, (int)it, slots, priv);
                /* rows to prefetch meanwhile: the next item's, this block or the next */
                const int last = it + 1 == hi;
                const rec_item nx = rec_item_at(a, &p, (int)(last ? lo : it + 1), slots, priv);
                rec_tokens(a, &r, t0, t1, &wb, &nx, last ? t1 : t0);
            }
        }
        if (p.nvb > 1 && a->state_out) /* private column blocks back into place */
            for (long it = lo; it < hi; it++) {
                rec_item r = rec_item_at(a, &p, (int)it, slots, priv);
                const size_t at = (size_t)(it / p.nvb) * KV + (size_t)r.j0;
                lat_copy_block(a->state_out + at, (size_t)V, r.S, r.lds, K, r.j1 - r.j0);
            }
    }
    return LAT_OK;
}

/* ---- chunk form ---------------------------------------------------------- */

typedef struct chunk_ctx {
    const lat_shape *s;
    const float *q, *k, *v, *g;
    float *out;
    float scale;
} chunk_ctx;

static void gla_pack(const void *vctx, int bh, int t0, int n, float *restrict Q,
                     float *restrict Kc, float *restrict Vc, float *restrict G)
{
    const chunk_ctx *x = vctx;
    const lat_shape *s = x->s;
    const int K = s->K, V = s->V, b = bh / s->H, h = bh % s->H;
    for (int r = 0; r < n; r++) {
        const size_t ik = lat_idx_bthd(s, b, t0 + r, h, K), iv = lat_idx_bthd(s, b, t0 + r, h, V);
        for (int i = 0; i < K; i++)
            Q[(size_t)r * (size_t)K + (size_t)i] = x->scale * x->q[ik + (size_t)i];
        memcpy(Kc + (size_t)r * (size_t)K, x->k + ik, sizeof(float) * (size_t)K);
        memcpy(G + (size_t)r * (size_t)K, x->g + ik, sizeof(float) * (size_t)K);
        memcpy(Vc + (size_t)r * (size_t)V, x->v + iv, sizeof(float) * (size_t)V);
    }
}

static void gla_emit(const void *vctx, int bh, int t0, int n, const float *restrict O)
{
    const chunk_ctx *x = vctx;
    const lat_shape *s = x->s;
    const int V = s->V, b = bh / s->H, h = bh % s->H;
    for (int r = 0; r < n; r++)
        memcpy(x->out + lat_idx_bthd(s, b, t0 + r, h, V), O + (size_t)r * (size_t)V,
               sizeof(float) * (size_t)V);
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
    p.c = s->subchunk;
    p.decay = LAT_DECAY_KEY;
    p.diag_prod = s->variant == 1;
    p.causal = 1;
    p.pack = gla_pack;
    p.emit = gla_emit;
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
    return lat_chunk_workspace(&p, nthreads);
}

static lat_status gla_chunk(const lat_args *a)
{
    const lat_shape *s = a->shape;
    chunk_ctx x = {s, a->in[0], a->in[1], a->in[2], a->in[3], a->out, 1.0f / sqrtf((float)s->K)};
    lat_chunk_problem p = chunk_problem(s, a, &x);
    return lat_chunk_run(&p, a->work, a->work_bytes, a->nthreads);
}

/* ---- descriptor ---------------------------------------------------------- */

static const lat_input gla_inputs[] = {
    {.name = "q", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "queries [B][T][H][K], N(0,1)", .sharpen = 1},
    {.name = "k", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "keys [B][T][H][K], N(0,1)", .sharpen = 1},
    {.name = "v", .dims = lat_dims_bthv, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "values [B][T][H][V], N(0,1)"},
    {.name = "g", .dims = lat_dims_bthk, .dist = LAT_DIST_LOGSIGMOID, .a = 1.0, .b = 0.0, .c = 16.0,
     .harsh_dist = LAT_DIST_LOGSIGMOID, .ha = 4.0, .hb = -6.0, .hc = 1.0,
     .doc = "log forget gates [B][T][H][K]: logsigmoid(N(0,1))/16 (gate_logit_normalizer 16); "
     "harsh: logsigmoid(4·N(0,1) − 6), alpha down to ~1e-5"},
};

static const lat_knob gla_knobs[] = {
    LAT_KNOB(chunk, 64, 1, 4096, "chunk length C of the chunk form (fla BT = 64)"),
    LAT_KNOB(subchunk, 16, 1, 4096,
             "secondary chunk c for the intra-chunk scores (fla BC = 16; clamped to C)"),
    LAT_KNOB(variant, 0, 0, 1,
             "chunk form, diagonal sub-blocks: 0 exps of cumsum differences (fla, log space); "
             "1 running products of alpha = e^g <= 1 (K exps/token instead of ~cK/2)"),
};

static const lat_form gla_forms[] = {
    {"recurrent", gla_recurrent, ws_recurrent, flops_recurrent,
     "token by token, fused decay/update/readout, SIMD over V (fla fused_recurrent, ggml gla)"},
    {"chunk", gla_chunk, ws_chunk, flops_chunk,
     "chunkwise with secondary chunking, GEMMs via OpenBLAS (fla chunk_gla)"},
};

const lat_method lat_method_gla = {
    .name = "gla",
    .family = "gated-linear",
    .paper = "Yang et al., Gated Linear Attention Transformers with Hardware-Efficient Training, "
             "ICML 2024 (arXiv 2312.06635)",
    .summary = "linear attention with a data-dependent per-key forget gate",
    .dim_map = "K = V = D",
    .inputs = gla_inputs,
    .n_inputs = (int)(sizeof gla_inputs / sizeof gla_inputs[0]),
    .knobs = gla_knobs,
    .n_knobs = (int)(sizeof gla_knobs / sizeof gla_knobs[0]),
    .forms = gla_forms,
    .n_forms = (int)(sizeof gla_forms / sizeof gla_forms[0]),
    .out_dims = lat_dims_bthv,
    .state_dims = lat_dims_bhkv,
    .decode_form = "recurrent",
    .map_dim = NULL,
    .validate = NULL,
    .bytes = bytes,
    .state_bytes = state_bytes,
    .reference = ref_gla,
    .reference_alt = ref_gla_parallel,
    /* Measured rel_rmse vs fp64 (this machine, seed 42): recurrent ≈ 2e-7,
     * chunk ≈ 1.4e-7 (output) and ≤ 1.5e-7 (state) for T up to 65536, with
     * typical or harsh gates and q, k scaled by 3 or 1e-3; 1e-5 keeps a
     * ≥ 50× margin. */
    .tol_out = 1e-5,
    .tol_state = 1e-5,
    .approximates_softmax = 0,
    .tol_note = NULL,
};
