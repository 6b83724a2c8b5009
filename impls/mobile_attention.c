/* mobile_attention.c — Mobile Attention (Yao, Wang, Wu, Wang, Long; ICML 2024,
 * PMLR 235:56914–56926), forward core, fp32. Spec: spec/attention.md §10.1,
 * Appendix B, Appendix C.11. Source: thuml/MobileAttention Mobile_Attention.py
 * (the "core code"; experiments in thuml/Flowformer).
 *
 * Flowformer's flow conservation with the flow sums over HEADS (the
 * head-competition mechanism), φ = sigmoid, ε = 1e-6, no 1/√K. Per token i,
 * head h (vectors in R^K; the heads of one token are coupled):
 *     q̃ = σ(q), k̃ = σ(k);   Q̄_i = Σ_h q̃_{h,i},  K̄_i = Σ_h k̃_{h,i}
 *     I_{h,i} = 1/⟨q̃_{h,i} + ε, K̄_i + ε⟩                     incoming
 *     O_{h,i} = 1/⟨k̃_{h,i} + ε, Q̄_i + ε⟩                     outgoing
 *     Î_{h,i} = ⟨q̃_{h,i} + ε, Σ_h' O_{h',i} k̃_{h',i} + ε⟩     conserved sink
 *     Ô_{h,i} = clamp(⟨k̃_{h,i} + ε, Σ_h' I_{h',i} q̃_{h',i} + ε⟩, −1, 1)
 *     alloc = σ(Î·T/S) = σ(Î),  comp_{h,j} = T·softmax_j(Ô_{h,·})  (over the sequence)
 *     o_{h,i} = alloc_{h,i} I_{h,i} · q̃_{h,i}ᵀ Σ_j k̃_{h,j} (comp_{h,j} v_{h,j})ᵀ
 * Non-causal only (the competition softmax spans the whole sequence), self-
 * attention only (L = S = T: the head sums pair query i with key i), no
 * state, no decode.
 *
 * Form
 *   parallel   pass A, over blocks of TB = 64 tokens (all heads of a token
 *              together; blocks split over the threads): σ of the token's
 *              H·K q and k values (lat_vec_exp of −|x|: only non-positive
 *              exponents), head sums, the four flows by K-vector dots; the
 *              query row q̃·(alloc·I) goes to a head-major workspace
 *              [B·H][T][K], the key row k̃·e^{Ô−1} to the thread's block
 *              buffer, Σ e^{Ô−1} (the softmax denominator; Ô ≤ 1 after the
 *              clamp, so the shift by the bound 1 replaces the max) into a
 *              per-thread fp64 sum. At the end of a block, per head, one GEMM
 *              S_h += (k̃ e)ᵀ V_block (v read in place, row stride H·V; the
 *              block's v rows are adjacent in memory) into the thread's
 *              partial state — the key rows never leave the cache.
 *              pass B: S = Σ_threads partial S, Z likewise (fixed order).
 *              pass C, over token blocks, per head one GEMM
 *              o = (T/Z)·(q̃ alloc I) S written in place (row stride H·V).
 *              4·K·V + 16·K FLOPs per token and head (the two GEMMs + flows;
 *              the 2·H·K sigmoids per token are special ops, not counted).
 * Memory: no state. Workspace: B·H·T·K floats (scaled query rows), per thread
 *   H·TB·K + 2H·K + 4K + 4H floats and a partial state per slice (B·H·K·V)
 *   + B·H doubles.
 * Parallel axis: pass A over token blocks (the heads of a token are coupled
 *   by the flows); pass B over slices; pass C over token blocks too (≤ 256
 *   tokens, all H heads of a block on one thread, ≥ 4 blocks per thread
 *   when T allows), so each thread writes whole H·V output rows.
 * Performance bound (D = 64): the sigmoids and flows of pass A are ~40% of
 *   the time and are not FMA work the model counts; the GEMMs are small in
 *   two dimensions (K = V = 64).
 * Numerics: all flows are reciprocals of sums of (σ + ε) terms (> 0); the
 *   softmax has exponents in [−2, 0]; Σ e in fp64. Measured at T = 65536 with
 *   harsh (6·N(0,1)) q, k: rel_rmse 2e-7.
 * Decisions: the fold of comp into the key rows (k̃_j e_j, then T/Z on the
 *   output) and of alloc·I into the query rows is exact algebra of the code's
 *   einsum order; the softmax uses the clamp bound 1 as its shift (≡ max
 *   subtraction up to rounding, values in [e^{−2}, 1]). T/S = 1 (self-attention).
 * Defaults: none (no knobs). The paper's point is a small head dim on mobile
 *   devices; the sweeps use K = V = D.
 * Run: build/latbench run --method mobile_attention --form parallel --B 1 --T 4096 --H 8 --D 64 --threads 2
 *      build/latbench check --methods mobile_attention
 */
#include "common/lat_chunk.h" /* lat_useful_threads */

#define MOB_EPS 1e-6f

// ---------------------------------------------------------------------------
// shapes and models
// ---------------------------------------------------------------------------

static double n_tok_heads(const lat_shape *s) { return (double)s->B * s->T * s->H; }

static double flops_parallel(const lat_shape *s)
{
    return n_tok_heads(s) * (4.0 * s->K * s->V + 16.0 * s->K);
}

/* q, k, v read, o written. */
static double bytes(const lat_shape *s) { return 4.0 * n_tok_heads(s) * (2.0 * s->K + 2.0 * s->V); }

static size_t lines(size_t n) { return lat_align64(n * sizeof(float)) / sizeof(float); }

// ---------------------------------------------------------------------------
// parallel form
// ---------------------------------------------------------------------------

#define TB 64      /* tokens per block of pass A */
#define CB_MAX 256 /* tokens per block of pass C */

typedef struct plan {
    int nt;           /* threads                                          */
    int cb;           /* pass C: tokens per block (all heads)             */
    long cb_per_b, ncb; /* pass C: blocks per batch, B · cb_per_b          */
    long nblk;        /* pass A: token blocks (B · ceil(T/TB))             */
    size_t slice;     /* per-thread scratch (bytes)                        */
    size_t rows;      /* floats of the [B·H][T][K] query-row workspace     */
    size_t kv;        /* floats of one K×V state, whole cache lines         */
} plan;

static size_t fl(size_t n) { return lat_align64(n * sizeof(float)); }

static plan make_plan(const lat_shape *s, int nthreads)
{
    plan p;
    const int BH = s->B * s->H, H = s->H, K = s->K;
    p.nt = lat_useful_threads((double)BH * s->T * s->K * s->V, nthreads);
    /* pass C blocks: CB_MAX tokens, fewer when that leaves < 4 blocks per thread */
    const int want = (4 * p.nt + s->B - 1) / s->B;
    p.cb = (s->T + want - 1) / want;
    p.cb = p.cb > CB_MAX ? CB_MAX : (p.cb < 16 ? 16 : p.cb);
    p.cb_per_b = ((long)s->T + p.cb - 1) / p.cb;
    p.ncb = (long)s->B * p.cb_per_b;
    p.nblk = (long)s->B * (((long)s->T + TB - 1) / TB);
    /* fq, fk of one token (H·K each), 4 K-vectors, 4 H-vectors, the block's
     * scaled key rows [H][TB][K] */
    p.slice = 2 * fl((size_t)H * (size_t)K) + 4 * fl((size_t)K) + 4 * fl((size_t)H) +
              fl((size_t)H * TB * (size_t)K);
    p.rows = lines((size_t)BH * (size_t)s->T * (size_t)K);
    p.kv = lines((size_t)K * (size_t)s->V);
    return p;
}

/* [thread slices][Qw rows][per-thread partial S: nt × BH × kv]
 * [per-thread partial Z: nt × BH doubles] */
static size_t ws_parallel(const lat_shape *s, int nthreads)
{
    plan p = make_plan(s, nthreads);
    size_t BH = (size_t)s->B * (size_t)s->H;
    return p.slice * (size_t)p.nt + sizeof(float) * (p.rows + (size_t)p.nt * BH * p.kv) +
           lat_align64(sizeof(double) * (size_t)p.nt * BH);
}

/* y = σ(x) = 1/(1 + e^{−x}) (x ≥ 0), e^{x}/(1 + e^{x}) (x < 0): one exp of −|x|. */
static void sigmoid(float *restrict y, const float *restrict x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] = -fabsf(x[i]);
    lat_vec_exp(y, y, (size_t)n);
    for (int i = 0; i < n; i++) {
        const float e = y[i], r = 1.0f / (1.0f + e);
        y[i] = x[i] >= 0.0f ? r : e * r;
    }
}

static float sum_plus_eps(float *restrict y, int n) /* y += ε, returns Σ y */
{
    float acc = 0.0f;
    for (int i = 0; i < n; i++) {
        y[i] += MOB_EPS;
        acc += y[i];
    }
    return acc;
}

static inline void prefetch_floats(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i += 16)
        __builtin_prefetch(x + i);
}

/* Flows of token t of batch b, all heads: the query row q̃·(alloc·I) into Qw,
 * the key row k̃·e^{Ô−1} into Kb[h][r] (row r of the thread's block), and
 * Σ e into Z[h]. */
static void token_flows(const lat_shape *s, const float *q, const float *k, int b, int t, int r,
                        float *scr, float *Qw, double *Z)
{
    const int H = s->H, K = s->K;
    const size_t HK = fl((size_t)H * (size_t)K) / sizeof(float), Kl = fl((size_t)K) / sizeof(float);
    const size_t Hl = fl((size_t)H) / sizeof(float);
    float *fq = scr, *fk = fq + HK;
    float *Qb = fk + HK, *Kb = Qb + Kl, *Ok = Kb + Kl, *Iq = Ok + Kl;
    float *I = Iq + Kl, *O = I + Hl, *alloc = O + Hl, *e = alloc + Hl;
    float *Kw = e + Hl; /* [H][TB][K] */
    const size_t i0 = lat_idx_bthd(s, b, t, 0, K); /* the token's H·K row */
    if (t + 2 < s->T) { /* two tokens ahead */
        prefetch_floats(q + i0 + 2 * (size_t)H * (size_t)K, (size_t)H * (size_t)K);
        prefetch_floats(k + i0 + 2 * (size_t)H * (size_t)K, (size_t)H * (size_t)K);
    }
    sigmoid(fq, q + i0, H * K);
    sigmoid(fk, k + i0, H * K);
    /* head sums (+ε): Q̄ + ε, K̄ + ε */
    memcpy(Qb, fq, sizeof(float) * (size_t)K);
    memcpy(Kb, fk, sizeof(float) * (size_t)K);
    for (int h = 1; h < H; h++) {
        lat_vec_axpy(Qb, 1.0f, fq + (size_t)h * (size_t)K, (size_t)K);
        lat_vec_axpy(Kb, 1.0f, fk + (size_t)h * (size_t)K, (size_t)K);
    }
    const float sQb = sum_plus_eps(Qb, K), sKb = sum_plus_eps(Kb, K);
    /* ⟨x + ε, y⟩ = ⟨x, y⟩ + ε Σ y */
    for (int h = 0; h < H; h++) {
        I[h] = 1.0f / (lat_vec_dot(fq + (size_t)h * (size_t)K, Kb, (size_t)K) + MOB_EPS * sKb);
        O[h] = 1.0f / (lat_vec_dot(fk + (size_t)h * (size_t)K, Qb, (size_t)K) + MOB_EPS * sQb);
    }
    /* Σ_h O_h k̃_h + ε, Σ_h I_h q̃_h + ε */
    memset(Ok, 0, sizeof(float) * (size_t)K);
    memset(Iq, 0, sizeof(float) * (size_t)K);
    for (int h = 0; h < H; h++) {
        lat_vec_axpy(Ok, O[h], fk + (size_t)h * (size_t)K, (size_t)K);
        lat_vec_axpy(Iq, I[h], fq + (size_t)h * (size_t)K, (size_t)K);
    }
    const float sOk = sum_plus_eps(Ok, K), sIq = sum_plus_eps(Iq, K);
    for (int h = 0; h < H; h++) {
        const float ci = lat_vec_dot(fq + (size_t)h * (size_t)K, Ok, (size_t)K) + MOB_EPS * sOk;
        float co = lat_vec_dot(fk + (size_t)h * (size_t)K, Iq, (size_t)K) + MOB_EPS * sIq;
        co = co < -1.0f ? -1.0f : (co > 1.0f ? 1.0f : co);
        alloc[h] = -ci;   /* Î > 0: σ(Î) = 1/(1 + e^{−Î}) */
        e[h] = co - 1.0f; /* ≤ 0 */
    }
    lat_vec_exp(alloc, alloc, (size_t)H);
    lat_vec_exp(e, e, (size_t)H);
    for (int h = 0; h < H; h++) {
        const size_t bh = (size_t)b * (size_t)H + (size_t)h;
        float *qrow = Qw + (bh * (size_t)s->T + (size_t)t) * (size_t)K;
        float *krow = Kw + ((size_t)h * TB + (size_t)r) * (size_t)K;
        const float wq = I[h] / (1.0f + alloc[h]), wk = e[h];
        const float *fqh = fq + (size_t)h * (size_t)K, *fkh = fk + (size_t)h * (size_t)K;
        for (int i = 0; i < K; i++) {
            qrow[i] = fqh[i] * wq;
            krow[i] = fkh[i] * wk;
        }
        Z[h] += (double)e[h];
    }
}

static lat_status mob_parallel(const lat_args *a)
{
    const lat_shape *s = a->shape;
    if (a->work_bytes < ws_parallel(s, a->nthreads))
        return LAT_ENOMEM;
    const plan p = make_plan(s, a->nthreads);
    const int K = s->K, V = s->V, T = s->T, H = s->H, HV = H * V, BH = s->B * H;
    const float *q = a->in[0], *k = a->in[1], *v = a->in[2];
    float *Qw = (float *)((char *)a->work + p.slice * (size_t)p.nt);
    float *Spart = Qw + p.rows;                               /* [nt][BH][kv] */
    double *Zpart = (double *)(Spart + (size_t)p.nt * (size_t)BH * p.kv); /* [nt][BH] */
    const long per_b = ((long)T + TB - 1) / TB;

#pragma omp parallel num_threads(p.nt) if (p.nt > 1)
    {
        const int tid = lat_thread_id();
        float *scr = lat_work_slice(a, p.slice, tid);
        float *Kw = scr + (2 * fl((size_t)H * (size_t)K) + 4 * fl((size_t)K) + 4 * fl((size_t)H)) / sizeof(float);
        float *S = Spart + (size_t)tid * (size_t)BH * p.kv;
        double *Z = Zpart + (size_t)tid * (size_t)BH;
        memset(S, 0, sizeof(float) * (size_t)BH * p.kv);
        memset(Z, 0, sizeof(double) * (size_t)BH);
        /* pass A: token blocks (all heads of a token together): flows, then
         * S_h += (k̃ e)ᵀ V of the block for every head (v rows of the block
         * are adjacent: H·V floats per token) */
        long lo, hi;
        lat_split(p.nblk, tid, p.nt, &lo, &hi);
        for (long blk = lo; blk < hi; blk++) {
            const int b = (int)(blk / per_b), t0 = (int)(blk % per_b) * TB;
            const int n = T - t0 < TB ? T - t0 : TB;
            for (int r = 0; r < n; r++)
                token_flows(s, q, k, b, t0 + r, r, scr, Qw, Z + (size_t)b * (size_t)H);
            for (int h = 0; h < H; h++)
                lat_sgemm('T', 'N', K, V, n, 1.0f, Kw + (size_t)h * TB * (size_t)K, K,
                          v + lat_idx_bthd(s, b, t0, h, V), HV, 1.0f, S + ((size_t)b * (size_t)H + (size_t)h) * p.kv,
                          V);
        }
#pragma omp barrier
        /* pass B: S = Σ_threads S_part, Z likewise, in thread order (into
         * thread 0's partials) */
#pragma omp for schedule(static)
        for (int bh = 0; bh < BH; bh++) {
            float *S0 = Spart + (size_t)bh * p.kv;
            for (int th = 1; th < p.nt; th++) {
                lat_vec_axpy(S0, 1.0f, Spart + ((size_t)th * (size_t)BH + (size_t)bh) * p.kv, (size_t)K * (size_t)V);
                Zpart[bh] += Zpart[(size_t)th * (size_t)BH + (size_t)bh];
            }
        }
        /* pass C: o = (T/Z) (q̃ alloc I) S in place, token-major: blocks of
         * CB tokens with all H heads on one thread, one contiguous run of
         * blocks per thread, so each thread writes whole output rows (all
         * H·V channels of its tokens: no cache line of o written by, or
         * prefetched into, two cores) */
        lat_split(p.ncb, tid, p.nt, &lo, &hi);
        for (long u = lo; u < hi; u++) {
            const int b = (int)(u / p.cb_per_b), t0 = (int)(u % p.cb_per_b) * p.cb;
            const int n = T - t0 < p.cb ? T - t0 : p.cb;
            for (int h = 0; h < H; h++) {
                const size_t bh = (size_t)b * (size_t)H + (size_t)h;
                lat_sgemm('N', 'N', n, V, K, (float)((double)T / Zpart[bh]),
                          Qw + (bh * (size_t)T + (size_t)t0) * (size_t)K, K, Spart + bh * p.kv, V, 0.0f,
                          a->out + lat_idx_bthd(s, b, t0, h, V), HV);
            }
        }
    }
    return LAT_OK;
}

// ---------------------------------------------------------------------------
// descriptor
// ---------------------------------------------------------------------------

static const lat_input mob_inputs[] = {
    {.name = "q", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 6.0, .hb = 0.0,
     .doc = "queries [B][T][H][K], N(0,1); harsh 6·N(0,1) (sigmoid saturated: values down to ~1e-8, "
            "below eps)",
     .sharpen = 1},
    {.name = "k", .dims = lat_dims_bthk, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 6.0, .hb = 0.0, .doc = "keys [B][T][H][K], N(0,1); harsh 6·N(0,1)",
     .sharpen = 1},
    {.name = "v", .dims = lat_dims_bthv, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "values [B][T][H][V], N(0,1)"},
};

static const lat_form mob_forms[] = {
    {"parallel", mob_parallel, ws_parallel, flops_parallel,
     "linear-time: per-token head flows, then (k e)^T V and (q alloc I) S as whole-sequence GEMMs"},
};

const lat_method lat_method_mobile_attention = {
    .name = "mobile_attention",
    .family = "linear",
    .paper = "Yao, Wang, Wu, Wang, Long, Mobile Attention: Mobile-Friendly Linear-Attention for "
             "Vision Transformers, ICML 2024 (PMLR 235:56914-56926)",
    .summary = "Flowformer flow conservation with head competition (flows summed over heads), sigmoid",
    .dim_map = "K = V = D (flows couple the H heads of a token)",
    .inputs = mob_inputs,
    .n_inputs = (int)(sizeof mob_inputs / sizeof mob_inputs[0]),
    .knobs = NULL,
    .n_knobs = 0,
    .forms = mob_forms,
    .n_forms = (int)(sizeof mob_forms / sizeof mob_forms[0]),
    .out_dims = lat_dims_bthv,
    .state_dims = NULL,
    .decode_form = NULL,
    .map_dim = NULL,
    .validate = NULL,
    .bytes = bytes,
    .state_bytes = NULL,
    .reference = ref_mobile_attention,
    .reference_alt = ref_mobile_attention_quadratic,
    .tol_out = 1e-5,
    .tol_state = 1e-5,
    .approximates_softmax = 0,
    .tol_note = NULL,
};
