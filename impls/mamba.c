/* mamba.c — Mamba-1 selective scan S6 (Gu & Dao 2023, arXiv 2312.00752;
 * COLM 2024), the scan kernel with its D skip and z gate, fp32.
 * Spec: spec/recurrent.md §5.
 *
 * Recurrence (Dm = H·V channels, N = n_state, G = groups; channel d reads
 * group d / (Dm/G) of B and C):
 *     δ_t[d]   = softplus(δ_raw_t[d] + δ_bias[d])   (threshold 20),  A = −exp(A_log)
 *     h_t[d,n] = exp(δ_t[d] A[d,n]) h_{t−1}[d,n] + δ_t[d] B_t[n] u_t[d]
 *     y_t[d]   = (Σ_n C_t[n] h_t[d,n] + D[d] u_t[d]) · silu(z_t[d])
 * B̄ = δ·B (Euler), as selective_scan_ref, the CUDA kernel and ggml (§5.3).
 * Inputs: u, δ_raw, z [B][T][Dm]; δ_bias [Dm], A_log [Dm][N], D [Dm]
 *   (parameters, passed whole); B, C [B][T][G][N].
 * State h [B][Dm][N] (mamba / ggml layout); h0 = 0 when absent.
 *
 * Forms
 *   recurrent  the sequential scan, vectorized over channels (16 lanes): for
 *              each token and block of ≤ 64 channels, δ = softplus(·) (vector
 *              exp + a log1p series) and δu; then per 16-channel slab and
 *              state n: e = exp(δ A[·, n]) (one 16-lane lat_vec_exp),
 *              h = e ⊙ h + δu·B_n, y += C_n·h, with the state block
 *              transposed to [N][W] in the workspace (channel lanes
 *              contiguous) and y in registers; out = (y + D u)·silu(z). A is
 *              −exp(A_log) once per call (as mamba_simple's forward and step).
 *              6·Dm·N FLOPs (§5.3) + Dm·(N + 2) exps per token. Bound: the
 *              exp — ≈ 19 vector instructions per 16 decays against the 4 of
 *              the update (≈ 12–15 GFLOP/s per core on the 6 counted FLOPs,
 *              a 16-lane decay every ≈ 25 cycles). Also the decode step
 *              (T = 1, state in place).
 *   No chunked or parallel-scan form: per channel S6 is GLA with K = N and
 *   V = 1 (§5.6), so a chunk form has no matmul reuse; measured with the
 *   GLA-family engine (per-key decay, K = 16, Vx = 1, C = 64, c = 16) it ran
 *   ≈ 27× slower than this scan at B=1 T=8192 H=8 D=64, one thread (897
 *   against 33 ms CPU time), and it would not remove a single exp. The
 *   blocked two-pass scan of §5.5 only pays when B·Dm/16 < threads, which
 *   the channel blocks below already avoid down to 16 channels per thread.
 * Memory: state Dm·N floats per batch element. Workspace: per (b, channel
 *   block) the transposed state and A (2·N·W floats), per thread N + 5W
 *   floats.
 * Parallel axis: (b, channel block) items, statically split; each thread
 *   walks its items token-block-major so that a token's rows are read
 *   together. Blocks are cut to ≤ 64 channels inside a group, smaller (≥ 16)
 *   when there are fewer items than threads.
 * Defaults: N = 16 (mamba_simple d_state), G = 1; dt_bias = softplus⁻¹(dt),
 *   dt log-uniform in [1e-3, 0.1] floored at 1e-4; A_log = log(1..N)
 *   (S4D-Real init, A[d,n] = −(n+1)); δ_raw ~ 0.5·N(0,1); u, B, C, z ~
 *   N(0,1) (spec §5.4 test data).
 * Decisions: the sweep's D maps to channels Dm = H·D (DESIGN §2; V = D is the
 *   channels per "head", K is not used); the kernel takes A_log, not A
 *   (task brief; mamba_ssm computes A = −exp(A_log) right before the scan);
 *   the causal conv, x_proj and dt_proj of the block are outside the kernel
 *   (as in selective_scan_fn), so the state holds h only, no conv taps; the
 *   test D skip is N(1, 0.5²) instead of the constant 1 so that a channel
 *   indexing error shows; harsh inputs: δ_raw ~ 3·N(0,1) (δ from ~1e-7 to
 *   ~7) and A_log ~ U(−3, 4) (A from −0.05 to −55), i.e. decays from 1 − 1e-9
 *   to e^{−380}.
 * Run: build/latbench run --method mamba --form recurrent --B 1 --T 4096 --H 8 --D 64 --threads 2
 *      build/latbench check --methods mamba
 */
#include "common/lat_chunk.h"

/* ---- shapes and models --------------------------------------------------- */

static int mb_channels(const lat_shape *s) { return s->H * s->V; }

static int mb_dims_btd(const lat_shape *s, size_t d[8]) /* u, δ_raw, z, y */
{
    d[0] = (size_t)s->B, d[1] = (size_t)s->T, d[2] = (size_t)mb_channels(s);
    return 3;
}

static int mb_dims_d(const lat_shape *s, size_t d[8]) /* δ_bias, D */
{
    d[0] = (size_t)mb_channels(s);
    return 1;
}

static int mb_dims_dn(const lat_shape *s, size_t d[8]) /* A_log */
{
    d[0] = (size_t)mb_channels(s), d[1] = (size_t)s->n_state;
    return 2;
}

static int mb_dims_bc(const lat_shape *s, size_t d[8]) /* B, C */
{
    d[0] = (size_t)s->B, d[1] = (size_t)s->T, d[2] = (size_t)s->groups, d[3] = (size_t)s->n_state;
    return 4;
}

static int mb_dims_state(const lat_shape *s, size_t d[8]) /* h [B][Dm][N] */
{
    d[0] = (size_t)s->B, d[1] = (size_t)mb_channels(s), d[2] = (size_t)s->n_state;
    return 3;
}

static double flops_recurrent(const lat_shape *s)
{
    return (double)s->B * s->T * mb_channels(s) * 6.0 * s->n_state;
}

static double state_bytes(const lat_shape *s) { return 4.0 * s->B * mb_channels(s) * (double)s->n_state; }

/* u, δ_raw, z read, y written, B and C read, state read and written. */
static double bytes(const lat_shape *s)
{
    double tok = (double)s->B * s->T;
    return 4.0 * tok * (4.0 * mb_channels(s) + 2.0 * s->groups * s->n_state) + 2.0 * state_bytes(s);
}

static lat_status mb_validate(const lat_shape *s, char *why, size_t len)
{
    if (s->groups < 1 || mb_channels(s) % s->groups != 0)
        return lat_unsupported(why, len, "groups=%d must divide the channels H*V=%d", s->groups, mb_channels(s));
    return LAT_OK;
}

/* ---- vector helpers (plain C loops the compiler vectorizes + lat_vec_exp) -- */

/* y = softplus(x) = x > 20 ? x : max(x, 0) + log1p(e^{−|x|}); log1p(e) for
 * e ∈ (0, 1] as 2·atanh(s), s = e/(2+e) ≤ 1/3, by its odd series (truncation
 * < 2e-9 relative). tmp: n floats. */
static void softplus_vec(float *restrict y, const float *restrict x, int n, float *restrict tmp)
{
    for (int i = 0; i < n; i++)
        tmp[i] = x[i] < 0.0f ? x[i] : -x[i];
    lat_vec_exp(tmp, tmp, (size_t)n);
    for (int i = 0; i < n; i++) {
        const float e = tmp[i], sv = e / (2.0f + e), s2 = sv * sv;
        float p = 1.0f / 15.0f;
        p = p * s2 + 1.0f / 13.0f;
        p = p * s2 + 1.0f / 11.0f;
        p = p * s2 + 1.0f / 9.0f;
        p = p * s2 + 1.0f / 7.0f;
        p = p * s2 + 1.0f / 5.0f;
        p = p * s2 + 1.0f / 3.0f;
        p = p * s2 + 1.0f;
        const float pos = x[i] > 0.0f ? x[i] : 0.0f;
        y[i] = x[i] > 20.0f ? x[i] : pos + 2.0f * sv * p;
    }
}

/* ---- recurrent form ------------------------------------------------------ */

#define MB_W 64 /* channels per block (multiple of 16) */

typedef struct rec_plan {
    int nt;      /* threads                                         */
    int W, nbg;  /* block width (multiple of 16), blocks per group  */
    int items;   /* B·G·nbg                                         */
    size_t item_floats, thread_floats;
} rec_plan;

static rec_plan plan_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p;
    const int Dm = mb_channels(s), G = s->groups, per_g = Dm / G, N = s->n_state;
    const int n16 = (per_g + 15) / 16;
    p.nt = lat_useful_threads((double)s->B * Dm * N * s->T, nthreads);
    int nb = (per_g + MB_W - 1) / MB_W;
    if ((long)s->B * G * nb < p.nt) { /* too few items: narrower blocks, ≥ 16 channels */
        int want = (p.nt + s->B * G - 1) / (s->B * G);
        nb = want < n16 ? want : n16;
    }
    p.W = 16 * ((n16 + nb - 1) / nb);
    p.nbg = (per_g + p.W - 1) / p.W;
    p.items = s->B * G * p.nbg;
    p.item_floats = lat_align64(sizeof(float) * 2 * (size_t)N * p.W) / sizeof(float);
    p.thread_floats = lat_align64(sizeof(float) * ((size_t)N + 5 * (size_t)p.W)) / sizeof(float);
    return p;
}

static size_t ws_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p = plan_recurrent(s, nthreads);
    return sizeof(float) * (p.item_floats * (size_t)p.items + p.thread_floats * (size_t)p.nt);
}

typedef struct rec_item {
    int b, g, d0, w; /* batch, group, first channel, channels (≤ W) */
    float *hT, *AT;  /* [N][W] transposed state and A (pads zero)   */
} rec_item;

static rec_item rec_item_at(const lat_args *a, const rec_plan *p, int it)
{
    const lat_shape *s = a->shape;
    const int per_g = mb_channels(s) / s->groups, blk = it % p->nbg;
    rec_item r;
    r.b = it / (s->groups * p->nbg);
    r.g = (it / p->nbg) % s->groups;
    r.d0 = r.g * per_g + blk * p->W;
    r.w = per_g - blk * p->W < p->W ? per_g - blk * p->W : p->W;
    r.hT = (float *)a->work + p->item_floats * (size_t)it;
    r.AT = r.hT + (size_t)s->n_state * p->W;
    return r;
}

typedef struct rec_scratch {
    float *arow;                 /* [N] one row of A while loading        */
    float *delta, *du, *y, *tmp; /* [W] each (+ [W] spare for tmp)      */
} rec_scratch;

#define PREFETCH_AHEAD 16
#define TOKEN_BLOCK 32

static inline void prefetch_floats(const float *x, int n)
{
    for (int i = 0; i < n; i += 16)
        __builtin_prefetch(x + i);
}

/* Load A (as −exp(A_log)) and h0 of an item, transposed to [N][W]. */
static void item_load(const lat_args *a, const rec_plan *p, const rec_item *r, float *restrict tmp)
{
    const lat_shape *s = a->shape;
    const int N = s->n_state, W = p->W, Dm = mb_channels(s);
    memset(r->hT, 0, sizeof(float) * 2 * (size_t)N * W);
    for (int j = 0; j < r->w; j++) {
        lat_vec_exp(tmp, a->in[3] + (size_t)(r->d0 + j) * N, (size_t)N);
        for (int n = 0; n < N; n++)
            r->AT[(size_t)n * W + j] = -tmp[n];
        if (a->state_in) {
            const float *h0 = a->state_in + ((size_t)r->b * Dm + r->d0 + j) * N;
            for (int n = 0; n < N; n++)
                r->hT[(size_t)n * W + j] = h0[n];
        }
    }
}

static void item_store(const lat_args *a, const rec_item *r, int W)
{
    const lat_shape *s = a->shape;
    const int N = s->n_state, Dm = mb_channels(s);
    for (int j = 0; j < r->w; j++) {
        float *h = a->state_out + ((size_t)r->b * Dm + r->d0 + j) * N;
        for (int n = 0; n < N; n++)
            h[n] = r->hT[(size_t)n * W + j];
    }
}

/* Tokens [t0, t1) of one item. */
static void item_tokens(const lat_args *a, const rec_plan *p, const rec_item *r, int t0, int t1,
                        const rec_scratch *x)
{
    const lat_shape *s = a->shape;
    const int N = s->n_state, W = p->W, w = r->w, Dm = mb_channels(s), G = s->groups;
    const float *u = a->in[0], *dtr = a->in[1], *dtb = a->in[2] + r->d0, *Bm = a->in[4], *Cm = a->in[5];
    const float *Dsk = a->in[6] + r->d0, *z = a->in[7];
    float *restrict delta = x->delta, *restrict du = x->du, *restrict y = x->y;
    float *restrict hT = r->hT;
    const float *restrict AT = r->AT;
    for (int t = t0; t < t1; t++) {
        const size_t ic = ((size_t)r->b * s->T + t) * Dm + r->d0;
        const size_t ig = (((size_t)r->b * s->T + t) * G + r->g) * (size_t)N;
        if (t + PREFETCH_AHEAD < s->T) {
            const size_t pc = ic + (size_t)PREFETCH_AHEAD * Dm, pg = ig + (size_t)PREFETCH_AHEAD * G * N;
            prefetch_floats(u + pc, w), prefetch_floats(dtr + pc, w), prefetch_floats(z + pc, w);
            prefetch_floats(Bm + pg, N), prefetch_floats(Cm + pg, N);
        }
        /* δ = softplus(δ_raw + bias) (pads: δ = 0), δu */
        for (int j = 0; j < w; j++)
            y[j] = dtr[ic + j] + dtb[j];
        softplus_vec(delta, y, w, x->tmp);
        for (int j = w; j < W; j++)
            delta[j] = 0.0f;
        for (int j = 0; j < w; j++)
            du[j] = delta[j] * u[ic + j];
        for (int j = w; j < W; j++)
            du[j] = 0.0f;
        /* per 16-channel slab and state n: e = exp(δ A[·, n]), h = e ⊙ h + δu·B_n,
         * y = Σ_n C_n h with y in registers */
        const float *restrict Bt = Bm + ig, *restrict Ct = Cm + ig;
        for (int j0 = 0; j0 < W; j0 += 16) {
            float acc[16] = {0};
            for (int n = 0; n < N; n++) {
                const float bn = Bt[n], cn = Ct[n];
                float *restrict hp = hT + (size_t)n * W + j0;
                const float *restrict ap = AT + (size_t)n * W + j0;
                float ev[16];
                for (int l = 0; l < 16; l++)
                    ev[l] = delta[j0 + l] * ap[l];
                lat_vec_exp(ev, ev, 16);
#pragma omp simd
                for (int l = 0; l < 16; l++) {
                    const float h = fmaf(ev[l], hp[l], du[j0 + l] * bn);
                    hp[l] = h;
                    acc[l] = fmaf(cn, h, acc[l]);
                }
            }
            for (int l = 0; l < 16; l++)
                y[j0 + l] = acc[l];
        }
        /* out = (y + D u) · silu(z),  silu(z) = z / (1 + e^{−z}) */
        for (int j = 0; j < w; j++)
            x->tmp[j] = -z[ic + j];
        lat_vec_exp(x->tmp, x->tmp, (size_t)w);
        float *o = a->out + ic;
        for (int j = 0; j < w; j++)
            o[j] = (y[j] + Dsk[j] * u[ic + j]) * (z[ic + j] / (1.0f + x->tmp[j]));
    }
}

static lat_status mb_recurrent(const lat_args *a)
{
    const lat_shape *s = a->shape;
    const rec_plan p = plan_recurrent(s, a->nthreads);
    if (a->work_bytes < ws_recurrent(s, a->nthreads))
        return LAT_ENOMEM;
    const int T = s->T, N = s->n_state;
    float *tbase = (float *)a->work + p.item_floats * (size_t)p.items;

#pragma omp parallel num_threads(p.nt) if (p.nt > 1)
    {
        const int tid = lat_thread_id();
        rec_scratch x;
        x.arow = tbase + p.thread_floats * (size_t)tid;
        x.delta = x.arow + N;
        x.du = x.delta + p.W;
        x.y = x.du + p.W;
        x.tmp = x.y + p.W; /* 2W floats (softplus, gate) or N (A) */
        float *atmp = x.arow;
        long lo, hi;
        lat_split(p.items, tid, p.nt, &lo, &hi);
        for (long it = lo; it < hi; it++) {
            rec_item r = rec_item_at(a, &p, (int)it);
            item_load(a, &p, &r, atmp);
        }
        for (int t0 = 0; t0 < T; t0 += TOKEN_BLOCK) {
            const int t1 = t0 + TOKEN_BLOCK < T ? t0 + TOKEN_BLOCK : T;
            for (long it = lo; it < hi; it++) {
                rec_item r = rec_item_at(a, &p, (int)it);
                item_tokens(a, &p, &r, t0, t1, &x);
            }
        }
        if (a->state_out)
            for (long it = lo; it < hi; it++) {
                rec_item r = rec_item_at(a, &p, (int)it);
                item_store(a, &r, p.W);
            }
    }
    return LAT_OK;
}

/* ---- descriptor ---------------------------------------------------------- */

/* The harness's RNG (suites/harness/rng.c), for the custom generators. */

/* δ_bias = softplus⁻¹(dt), dt log-uniform in [1e-3, 1e-1] floored at 1e-4
 * (mamba_simple dt_init). */
static void gen_dt_bias(double *x, size_t count, const lat_shape *s, struct lat_rng *rng, int harsh)
{
    for (size_t i = 0; i < count; i++) {
        double dt = exp(log(1e-3) + (log(1e-1) - log(1e-3)) * lat_rng_uniform(rng));
        dt = dt < 1e-4 ? 1e-4 : dt;
        x[i] = dt + log(-expm1(-dt));
    }
}

/* A_log [Dm][N]: typical log(n + 1) (A[d,n] = −(n+1), the S4D-Real init of
 * mamba_simple); harsh U(−3, 4). */
static void gen_a_log(double *x, size_t count, const lat_shape *s, struct lat_rng *rng, int harsh)
{
    const size_t N = (size_t)s->n_state;
    for (size_t i = 0; i < count; i++)
        x[i] = harsh ? -3.0 + 7.0 * lat_rng_uniform(rng) : log((double)(i % N) + 1.0);
}

static const lat_input mb_inputs[] = {
    {.name = "u", .dims = mb_dims_btd, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "scan input u [B][T][Dm] (the conv output), N(0,1)"},
    {.name = "dt", .dims = mb_dims_btd, .dist = LAT_DIST_NORMAL, .a = 0.5, .b = 0.0,
     .harsh_dist = LAT_DIST_NORMAL, .ha = 3.0, .hb = 0.0,
     .doc = "delta_raw [B][T][Dm], 0.5*N(0,1); delta = softplus(delta_raw + dt_bias); harsh 3*N(0,1)"},
    {.name = "dt_bias", .dims = mb_dims_d, .dist = LAT_DIST_CUSTOM, .custom = gen_dt_bias, .whole = 1,
     .doc = "dt_bias [Dm] = softplus^-1(dt), dt log-uniform in [1e-3, 0.1] (mamba_simple init)"},
    {.name = "A_log", .dims = mb_dims_dn, .dist = LAT_DIST_CUSTOM, .custom = gen_a_log, .whole = 1,
     .doc = "A_log [Dm][N], A = -exp(A_log): log(1..N) (init, A = -(n+1)); harsh U(-3, 4)"},
    {.name = "B", .dims = mb_dims_bc, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "B [B][T][G][N], N(0,1)", .sharpen = 1},
    {.name = "C", .dims = mb_dims_bc, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "C [B][T][G][N], N(0,1)", .sharpen = 1},
    {.name = "D", .dims = mb_dims_d, .dist = LAT_DIST_NORMAL, .a = 0.5, .b = 1.0, .whole = 1,
     .doc = "D skip [Dm], N(1, 0.5^2) (init 1)"},
    {.name = "z", .dims = mb_dims_btd, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "gate z [B][T][Dm], N(0,1); y *= silu(z)"},
};

static const lat_knob mb_knobs[] = {
    LAT_KNOB(causal, 1, 1, 1, "causal only (declared so that the harness treats the method as causal)"),
    LAT_KNOB(n_state, 16, 1, 1024, "SSM state size N (d_state; mamba_simple 16)"),
    LAT_KNOB(groups, 1, 1, 4096, "B/C groups G (channel d reads group d/(Dm/G)); must divide H*V"),
};

static const lat_form mb_forms[] = {
    {"recurrent", mb_recurrent, ws_recurrent, flops_recurrent,
     "sequential selective scan, vectorized over channels, vector exp of the N x W decays per token"},
};

const lat_method lat_method_mamba = {
    .name = "mamba",
    .family = "ssm",
    .paper = "Gu & Dao, Mamba: Linear-Time Sequence Modeling with Selective State Spaces, "
             "arXiv 2312.00752 (COLM 2024)",
    .summary = "selective SSM (S6) scan with softplus dt, D skip and silu(z) gate (N = 16)",
    .dim_map = "channels Dm = H*D (V = D per head), N = n_state (16); K is not used",
    .inputs = mb_inputs,
    .n_inputs = (int)(sizeof mb_inputs / sizeof mb_inputs[0]),
    .knobs = mb_knobs,
    .n_knobs = (int)(sizeof mb_knobs / sizeof mb_knobs[0]),
    .forms = mb_forms,
    .n_forms = (int)(sizeof mb_forms / sizeof mb_forms[0]),
    .out_dims = mb_dims_btd,
    .state_dims = mb_dims_state,
    .decode_form = "recurrent",
    .map_dim = NULL,
    .validate = mb_validate,
    .bytes = bytes,
    .state_bytes = state_bytes,
    .reference = ref_mamba,
    .reference_alt = ref_mamba_parallel,
    /* Measured rel_rmse vs fp64 (seed 42): ≤ 2.6e-7 (output and state),
     * typical or harsh, T up to 65536 (check --long): dA = exp(δA) changes
     * every token, so its fp32 rounding does not add up coherently. */
    .tol_out = 1e-5,
    .tol_state = 1e-5,
    .approximates_softmax = 0,
    .tol_note = NULL,
};
