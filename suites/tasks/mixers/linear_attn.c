/* linear_attn.c — trainable vanilla linear attention (Katharopoulos et al.,
 * "Transformers are RNNs", ICML 2020) for the task models (suites/tasks/mq.h).
 *
 * The sequence op is latbench's `linear_attn` (impls/linear_attn.c,
 * reference/linear_attn.c): φ(x) = elu(x) + 1, no 1/√f, ε = 1e-6,
 *     S_t = S_{t−1} + φ(k_t) v_tᵀ,  z_t = z_{t−1} + φ(k_t),
 *     o_t = S_tᵀφ(q_t) / (⟨z_t, φ(q_t)⟩ + ε)          (current token included)
 * run by the shared core (mq_gla_core: no decay, normalizer on), per head.
 * Around it: [q | k | v] = x W_inᵀ with q, k: D → H·f (f = knob "feat", per
 * head) and v: D → D (head h takes columns h·D/H ..), y = o W_oᵀ. No biases,
 * no output norm or gate (the fast-transformers / fla layer without extras).
 * Init (zoology _init_weights): W_in ~ N(0, 0.02); W_o ~ N(0, 0.02/√(2·2)) =
 * N(0, 0.01) (zoology's out_proj rescale for 2 layers).
 * State bytes: not in Zoology's B.2 list, so the recurrent state's element
 * count × 4 = 4·H·f·(D/H + 1) (impls' state [H][f][V+1]: S and z; like
 * Based's D·F + F with F = f).
 * Training (forward with a cache, backward): the core's cheaper exact form
 * (mq_gla_train_*: the quadratic masked form when L·(f+V) < 5·f·V, e.g.
 * f = 64 at L = 128, else BPTT over the recurrence with checkpoints every 16
 * tokens); the cache-less forward is always the recurrence. φ′ = 1 where
 * φ > 1 and φ where φ ≤ 1, so φ overwrites the projections in place. */
#include "../mq.h"
#include "../mq_ops.h"
#include "mq_gla_core.h"

#include <string.h>

#define LA_EPS 1e-6

typedef struct la_dims { int D, H, f, dv, F, P; } la_dims; /* F = H·f, P = 2F + D */

static la_dims dims(const mq_cfg *c)
{
    la_dims d = { c->D, c->H, c->feat, c->D / c->H, c->H * c->feat, 2 * c->H * c->feat + c->D };
    return d;
}

static mq_gla_spec spec(const la_dims *d)
{
    mq_gla_spec s = { .K = d->f, .V = d->dv, .decay = MQ_GLA_NONE, .norm = 1, .eps = LA_EPS };
    return s;
}

/* parameters: W_in [P][D] (rows q | k | v), W_o [D][D] */
static size_t la_n_params(const mq_cfg *c)
{
    la_dims d = dims(c);
    return (size_t)d.P * d.D + (size_t)d.D * d.D;
}

static void la_init(const mq_cfg *c, double *p, uint64_t *rng)
{
    la_dims d = dims(c);
    mq_fill_normal(p, (size_t)d.P * d.D, 0.02, rng);
    mq_fill_normal(p + (size_t)d.P * d.D, (size_t)d.D * d.D, 0.01, rng);
}

/* cache: forward buffers for n rows (+ checkpoints, normalizers, gradients when train) */
typedef struct la_lay {
    double *proj, *o, *S, *scr;      /* proj [n][P]: φ(q) | φ(k) | v after the forward */
    double *den, *tb, *dproj, *dO; /* train only */
} la_lay;

static size_t layout(const mq_cfg *c, int n, int train, double *base, la_lay *ly)
{
    la_dims d = dims(c);
    mq_gla_spec s = spec(&d);
    mq_arena a = { base, 0 };
    ly->proj = mq_take(&a, (size_t)n * d.P);
    ly->o = mq_take(&a, (size_t)n * d.D);
    ly->S = train ? NULL : mq_take(&a, (size_t)d.H * mq_gla_state_len(&s));
    size_t scr = mq_gla_fwd_scratch(&s);
    ly->den = ly->tb = ly->dproj = ly->dO = NULL;
    if (train) {
        scr = mq_max_sz(scr, mq_gla_train_scratch(&s, n));
        ly->den = mq_take(&a, (size_t)d.H * n);
        ly->tb = mq_take(&a, (size_t)d.H * mq_gla_train_len(&s, n));
        ly->dproj = mq_take(&a, (size_t)n * d.P);
        ly->dO = mq_take(&a, (size_t)n * d.D);
    }
    ly->scr = mq_take(&a, scr);
    return a.n;
}

static size_t la_cache_doubles(const mq_cfg *c, int L)
{
    la_lay ly;
    return layout(c, L, 1, NULL, &ly);
}

static mq_gla_io head_io(const la_dims *d, const la_lay *ly, int n, int h)
{
    mq_gla_io io = { .q = ly->proj + (size_t)h * d->f, .k = ly->proj + d->F + (size_t)h * d->f,
                     .v = ly->proj + 2 * d->F + (size_t)h * d->dv,
                     .ldq = d->P, .ldk = d->P, .ldv = d->P,
                     .o = ly->o + (size_t)h * d->dv, .ldo = d->D,
                     .den = ly->den ? ly->den + (size_t)h * n : NULL };
    return io;
}

/* rows [0, n) of x → y, state ly->S carried */
static void span(const mq_cfg *c, const double *p, int n, const double *x, double *y, const la_lay *ly)
{
    la_dims d = dims(c);
    mq_gla_spec s = spec(&d);
    const double *W_in = p, *W_o = p + (size_t)d.P * d.D;
    mq_linear_fwd(n, d.D, d.P, x, d.D, W_in, NULL, ly->proj, d.P);
    for (int t = 0; t < n; t++) {
        double *r = ly->proj + (size_t)t * d.P;
#pragma omp simd
        for (int i = 0; i < 2 * d.F; i++) { /* elu + 1 */
            const double xi = r[i], e = mq_exp_kernel(xi < 0.0 ? xi : 0.0);
            r[i] = xi > 0.0 ? xi + 1.0 : e;
        }
    }
    for (int h = 0; h < d.H; h++) {
        mq_gla_io io = head_io(&d, ly, n, h);
        if (ly->tb)
            mq_gla_train_fwd(&s, n, &io, ly->tb + (size_t)h * mq_gla_train_len(&s, n), ly->scr);
        else
            mq_gla_fwd(&s, n, &io, ly->S + (size_t)h * mq_gla_state_len(&s), NULL, ly->scr);
    }
    mq_linear_fwd(n, d.D, d.D, ly->o, d.D, W_o, NULL, y, d.D);
}

static void la_forward(const mq_cfg *c, const double *p, int L, const double *x, double *y,
                       double *cache)
{
    la_dims d = dims(c);
    mq_gla_spec s = spec(&d);
    la_lay ly;
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

static void la_backward(const mq_cfg *c, const double *p, int L, const double *x, double *cache,
                        const double *dy, double *dx, double *dp)
{
    la_dims d = dims(c);
    mq_gla_spec s = spec(&d);
    const double *W_in = p, *W_o = p + (size_t)d.P * d.D;
    double *dW_in = dp, *dW_o = dp + (size_t)d.P * d.D;
    la_lay ly;
    layout(c, L, 1, cache, &ly);
    memset(ly.dO, 0, sizeof(double) * (size_t)L * d.D);
    mq_linear_bwd(L, d.D, d.D, ly.o, d.D, W_o, dy, d.D, ly.dO, d.D, dW_o, NULL);
    for (int h = 0; h < d.H; h++) {
        mq_gla_io io = head_io(&d, &ly, L, h);
        mq_gla_grad g = { .dout = ly.dO + (size_t)h * d.dv, .lddo = d.D,
                          .dq = ly.dproj + (size_t)h * d.f, .dk = ly.dproj + d.F + (size_t)h * d.f,
                          .dv = ly.dproj + 2 * d.F + (size_t)h * d.dv,
                          .lddq = d.P, .lddk = d.P, .lddv = d.P };
        mq_gla_train_bwd(&s, L, &io, ly.tb + (size_t)h * mq_gla_train_len(&s, L), &g, ly.scr);
    }
    /* φ′ from φ: 1 where φ > 1 (x > 0), φ = eˣ otherwise */
    for (int t = 0; t < L; t++) {
        const double *f = ly.proj + (size_t)t * d.P;
        double *g = ly.dproj + (size_t)t * d.P;
        for (int i = 0; i < 2 * d.F; i++) g[i] *= f[i] > 1.0 ? 1.0 : f[i];
    }
    memset(dx, 0, sizeof(double) * (size_t)L * d.D);
    mq_linear_bwd(L, d.D, d.P, x, d.D, W_in, ly.dproj, d.P, dx, d.D, dW_in, NULL);
}

static double la_state_bytes(const mq_cfg *c, int L)
{
    (void)L;
    la_dims d = dims(c);
    return 4.0 * d.H * d.f * (d.dv + 1.0);
}

const mq_mixer mq_mixer_linear_attn = {
    .name = "linear_attn",
    .size_knob = "feat",
    .sizes = { 16, 32, 64, 0 },
    .doc = "elu+1 linear attention as impls/linear_attn (eps 1e-6, current token included, no scale) "
           "on learned q,k: D->H*feat, v: D->D, out D->D; no bias/norm/gate; init N(0,0.02), "
           "out N(0,0.01); state = 4*H*feat*(D/H+1) bytes (S and z; not in B.2)",
    .n_params = la_n_params,
    .init = la_init,
    .cache_doubles = la_cache_doubles,
    .forward = la_forward,
    .backward = la_backward,
    .state_bytes = la_state_bytes,
};
