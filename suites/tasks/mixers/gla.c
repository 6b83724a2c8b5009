/* gla.c — trainable Gated Linear Attention (Yang et al., ICML 2024,
 * arXiv 2312.06635) for the task models (suites/tasks/mq.h).
 *
 * The sequence op is latbench's `gla` (impls/gla.c, reference/gla.c):
 *     S_t = Diag(e^{g_t}) S_{t−1} + k_t v_tᵀ,   o_t = s S_tᵀ q_t,   s = dk^{−1/2}
 * with per-key log-gates g_t ≤ 0, run by the shared core (mq_gla_core,
 * per-key decay). The gate is the fla layer's (spec/recurrent.md §2.2):
 *     z = (x W_1) W_2ᵀ + b_2   (W_1: D → 16 = gate_low_rank_dim, no bias;
 *                               W_2: 16 → H·dk with bias),
 *     g = logsigmoid(z) / 16   (gate_logit_normalizer τ = 16: α = σ(z)^{1/16}).
 * Around it: [q | k | v | x W_1] = x W_inᵀ, q, k: D → H·dk (dk = knob "dk"),
 * v: D → D (head h takes columns h·D/H ..); y = o W_oᵀ. The fla layer's
 * output RMSNorm and swish gate are not part of impls/gla.c and are omitted.
 * Init (zoology _init_weights over the fla layer): every weight N(0, 0.02),
 * b_2 = 0 (so α ≈ σ(0)^{1/16} = 0.958 at init), W_o ~ N(0, 0.01) (2-layer
 * out_proj rescale). State bytes: 4·H·dk·(D/H) (B.2: key_dim·value_dim).
 * Computed as α = σ(z)^{1/16} by four square roots (the core takes the decays
 * directly, so no log/exp pair per gate).
 * Backward: BPTT over the recurrence in the core (per-key decay: no quadratic
 * form), checkpoints every 16 tokens; d z = (d log α / 16)·σ(−z). */
#include "../mq.h"
#include "../mq_ops.h"
#include "mq_gla_core.h"

#include <math.h>
#include <string.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#define GLA_RANK 16
#define GLA_TAU 16.0

typedef struct gl_dims { int D, H, dk, dv, Hk, R, P, gcol; } gl_dims; /* P = 2Hk + D + R */

static gl_dims dims(const mq_cfg *c)
{
    gl_dims d;
    d.D = c->D, d.H = c->H, d.dk = c->dk, d.dv = c->D / c->H, d.Hk = c->H * c->dk, d.R = GLA_RANK;
    d.gcol = 2 * d.Hk + d.D;
    d.P = d.gcol + d.R;
    return d;
}

/* x ← x^{1/16} (x ∈ [0, 1]) by four square roots, vectorized explicitly (a plain
 * loop stays scalar: libm's sqrt may set errno) */
static void root16(int n, double *x)
{
    int i = 0;
#if defined(__AVX512F__)
    for (; i + 8 <= n; i += 8)
        _mm512_storeu_pd(x + i, _mm512_sqrt_pd(_mm512_sqrt_pd(_mm512_sqrt_pd(_mm512_sqrt_pd(_mm512_loadu_pd(x + i))))));
#elif defined(__AVX__)
    for (; i + 4 <= n; i += 4)
        _mm256_storeu_pd(x + i, _mm256_sqrt_pd(_mm256_sqrt_pd(_mm256_sqrt_pd(_mm256_sqrt_pd(_mm256_loadu_pd(x + i))))));
#endif
    for (; i < n; i++) x[i] = sqrt(sqrt(sqrt(sqrt(x[i]))));
}

static mq_gla_spec spec(const gl_dims *d)
{
    mq_gla_spec s = { .K = d->dk, .V = d->dv, .decay = MQ_GLA_KEY };
    return s;
}

/* parameters: W_in [P][D] (q | k | v | W_1ᵀ), W_2 [Hk][R], b_2 [Hk], W_o [D][D] */
typedef struct gl_par { const double *W_in, *W2, *b2, *W_o; } gl_par;
static gl_par params(const gl_dims *d, const double *p)
{
    gl_par w;
    w.W_in = p;
    w.W2 = w.W_in + (size_t)d->P * d->D;
    w.b2 = w.W2 + (size_t)d->Hk * d->R;
    w.W_o = w.b2 + d->Hk;
    return w;
}

static size_t gl_n_params(const mq_cfg *c)
{
    gl_dims d = dims(c);
    return (size_t)d.P * d.D + (size_t)d.Hk * d.R + d.Hk + (size_t)d.D * d.D;
}

static void gl_init(const mq_cfg *c, double *p, uint64_t *rng)
{
    gl_dims d = dims(c);
    mq_fill_normal(p, (size_t)d.P * d.D + (size_t)d.Hk * d.R, 0.02, rng);
    mq_fill_const(p + (size_t)d.P * d.D + (size_t)d.Hk * d.R, d.Hk, 0.0);
    mq_fill_normal(p + (size_t)d.P * d.D + (size_t)d.Hk * d.R + d.Hk, (size_t)d.D * d.D, 0.01, rng);
}

typedef struct gl_lay {
    double *proj, *g, *a, *o, *S, *scr;      /* proj [n][P] (s·q | k | v | xW_1); g [n][Hk]:
                                                z, then σ(−z); a [n][Hk] = σ(z)^{1/16} */
    double *tb, *dproj, *dg, *dO;          /* train only */
} gl_lay;

static size_t layout(const mq_cfg *c, int n, int train, double *base, gl_lay *ly)
{
    gl_dims d = dims(c);
    mq_gla_spec s = spec(&d);
    mq_arena a = { base, 0 };
    ly->proj = mq_take(&a, (size_t)n * d.P);
    ly->g = mq_take(&a, (size_t)n * d.Hk);
    ly->a = mq_take(&a, (size_t)n * d.Hk);
    ly->o = mq_take(&a, (size_t)n * d.D);
    ly->S = train ? NULL : mq_take(&a, (size_t)d.H * mq_gla_state_len(&s));
    size_t scr = mq_gla_fwd_scratch(&s);
    ly->tb = ly->dproj = ly->dg = ly->dO = NULL;
    if (train) {
        scr = mq_max_sz(scr, mq_gla_train_scratch(&s, n));
        ly->tb = mq_take(&a, (size_t)d.H * mq_gla_train_len(&s, n));
        ly->dproj = mq_take(&a, (size_t)n * d.P);
        ly->dg = mq_take(&a, (size_t)n * d.Hk);
        ly->dO = mq_take(&a, (size_t)n * d.D);
    }
    ly->scr = mq_take(&a, scr);
    return a.n;
}

static size_t gl_cache_doubles(const mq_cfg *c, int L)
{
    gl_lay ly;
    return layout(c, L, 1, NULL, &ly);
}

static mq_gla_io head_io(const gl_dims *d, const gl_lay *ly, int h)
{
    mq_gla_io io = { .q = ly->proj + (size_t)h * d->dk, .k = ly->proj + d->Hk + (size_t)h * d->dk,
                     .v = ly->proj + 2 * d->Hk + (size_t)h * d->dv,
                     .ldq = d->P, .ldk = d->P, .ldv = d->P,
                     .o = ly->o + (size_t)h * d->dv, .ldo = d->D,
                     .a = ly->a + (size_t)h * d->dk, .a_given = 1, .ld_a = d->Hk };
    return io;
}

static void span(const mq_cfg *c, const double *p, int n, const double *x, double *y, const gl_lay *ly)
{
    gl_dims d = dims(c);
    gl_par w = params(&d, p);
    mq_gla_spec s = spec(&d);
    const double sc = 1.0 / sqrt((double)d.dk);
    mq_linear_fwd(n, d.D, d.P, x, d.D, w.W_in, NULL, ly->proj, d.P);
    mq_linear_fwd(n, d.R, d.Hk, ly->proj + d.gcol, d.P, w.W2, w.b2, ly->g, d.Hk);
    for (int t = 0; t < n; t++) {
        double *r = ly->proj + (size_t)t * d.P, *g = ly->g + (size_t)t * d.Hk, *al = ly->a + (size_t)t * d.Hk;
        for (int i = 0; i < d.Hk; i++) r[i] *= sc;
        mq_vsigmoid2(d.Hk, g, al, g); /* al = σ(z), g = σ(−z) */
        root16(d.Hk, al);             /* σ^{1/16} */
    }
    for (int h = 0; h < d.H; h++) {
        mq_gla_io io = head_io(&d, ly, h);
        if (ly->tb)
            mq_gla_train_fwd(&s, n, &io, ly->tb + (size_t)h * mq_gla_train_len(&s, n), ly->scr);
        else
            mq_gla_fwd(&s, n, &io, ly->S + (size_t)h * mq_gla_state_len(&s), NULL, ly->scr);
    }
    mq_linear_fwd(n, d.D, d.D, ly->o, d.D, w.W_o, NULL, y, d.D);
}

static void gl_forward(const mq_cfg *c, const double *p, int L, const double *x, double *y,
                       double *cache)
{
    gl_dims d = dims(c);
    mq_gla_spec s = spec(&d);
    gl_lay ly;
    if (cache) {
        layout(c, L, 1, cache, &ly);
        span(c, p, L, x, y, &ly);
        return;
    }
    double stk[layout(c, MQ_GLA_TB, 0, NULL, &ly)];
    layout(c, MQ_GLA_TB, 0, stk, &ly);
    memset(ly.S, 0, sizeof(double) * d.H * mq_gla_state_len(&s));
    for (int t0 = 0; t0 < L; t0 += MQ_GLA_TB) {
        const int n = L - t0 < MQ_GLA_TB ? L - t0 : MQ_GLA_TB;
        span(c, p, n, x + (size_t)t0 * d.D, y + (size_t)t0 * d.D, &ly);
    }
}

static void gl_backward(const mq_cfg *c, const double *p, int L, const double *x, double *cache,
                        const double *dy, double *dx, double *dp)
{
    gl_dims d = dims(c);
    gl_par w = params(&d, p);
    mq_gla_spec s = spec(&d);
    double *dW_in = dp, *dW2 = dW_in + (size_t)d.P * d.D, *db2 = dW2 + (size_t)d.Hk * d.R,
           *dW_o = db2 + d.Hk;
    const double sc = 1.0 / sqrt((double)d.dk);
    gl_lay ly;
    layout(c, L, 1, cache, &ly);
    memset(ly.dO, 0, sizeof(double) * (size_t)L * d.D);
    mq_linear_bwd(L, d.D, d.D, ly.o, d.D, w.W_o, dy, d.D, ly.dO, d.D, dW_o, NULL);
    for (int h = 0; h < d.H; h++) {
        mq_gla_io io = head_io(&d, &ly, h);
        mq_gla_grad g = { .dout = ly.dO + (size_t)h * d.dv, .lddo = d.D,
                          .dq = ly.dproj + (size_t)h * d.dk, .dk = ly.dproj + d.Hk + (size_t)h * d.dk,
                          .dv = ly.dproj + 2 * d.Hk + (size_t)h * d.dv, .dla = ly.dg + (size_t)h * d.dk,
                          .lddq = d.P, .lddk = d.P, .lddv = d.P, .ldda = d.Hk };
        mq_gla_train_bwd(&s, L, &io, ly.tb + (size_t)h * mq_gla_train_len(&s, L), &g, ly.scr);
    }
    for (int t = 0; t < L; t++) {
        double *dr = ly.dproj + (size_t)t * d.P, *dg = ly.dg + (size_t)t * d.Hk;
        const double *g = ly.g + (size_t)t * d.Hk;
        for (int i = 0; i < d.Hk; i++) {
            dr[i] *= sc;
            dg[i] *= g[i] / GLA_TAU; /* dz = d log α / τ · σ(−z) */
        }
        for (int i = 0; i < d.R; i++) dr[d.gcol + i] = 0.0;
    }
    mq_linear_bwd(L, d.R, d.Hk, ly.proj + d.gcol, d.P, w.W2, ly.dg, d.Hk, ly.dproj + d.gcol, d.P,
                  dW2, db2);
    memset(dx, 0, sizeof(double) * (size_t)L * d.D);
    mq_linear_bwd(L, d.D, d.P, x, d.D, w.W_in, ly.dproj, d.P, dx, d.D, dW_in, NULL);
}

static double gl_state_bytes(const mq_cfg *c, int L)
{
    (void)L;
    gl_dims d = dims(c);
    return 4.0 * d.H * d.dk * d.dv;
}

const mq_mixer mq_mixer_gla = {
    .name = "gla",
    .size_knob = "dk",
    .sizes = { 16, 32, 64, 0 },
    .doc = "GLA as impls/gla (per-key gate g = logsigmoid((xW1)W2+b)/16, W1 rank 16, scale "
           "dk^-1/2) on learned q,k: D->H*dk, v: D->D, out D->D; fla output norm/swish gate "
           "omitted; init N(0,0.02), b=0 (alpha~0.958), out N(0,0.01); state = 4*H*dk*(D/H) bytes",
    .n_params = gl_n_params,
    .init = gl_init,
    .cache_doubles = gl_cache_doubles,
    .forward = gl_forward,
    .backward = gl_backward,
    .state_bytes = gl_state_bytes,
};
