/* retnet.c — trainable RetNet retention (Sun et al., "Retentive Network",
 * arXiv 2307.08621) for the task models (suites/tasks/mq.h).
 *
 * The sequence op is latbench's `retnet` (impls/retnet.c, reference/retnet.c)
 * at its defaults: per head h the fixed decay γ_h = 1 − 2^{−5−h} (log γ_h =
 * log1p(−2^{−5−h})), score scale s = dk^{−1/2} (folded into q),
 *     S_n = γ_h S_{n−1} + k_n v_nᵀ,   o_n = s S_nᵀ q_n,
 * no xPos rotation (impls variant 0 takes q, k as given) and none of
 * torchscale's score normalizations; run by the shared core (mq_gla_core,
 * constant decay). impls/retnet.c omits the GroupNorm / swish-gate epilogue
 * ("not part of the retention core"), so this mixer omits it too: y = o W_oᵀ
 * right after retention.
 * Around it: [q | k | v] = x W_inᵀ, q, k: D → H·dk (dk = knob "dk"), v: D → D
 * (head h takes columns h·D/H ..), no biases. Init: W_in ~ N(0, 0.02),
 * W_o ~ N(0, 0.01) (zoology's init and 2-layer out_proj rescale); γ is fixed.
 * State bytes: 4·H·dk·(D/H) (B.2's key_dim·value_dim; = 4·dk·D).
 * Training (forward with a cache, backward): the core's cheaper exact form
 * (mq_gla_train_*: the quadratic form with the γ^{n−m} mask when
 * L·(dk+V) < 5·dk·V, e.g. dk = 64 at L = 128, else BPTT over the recurrence
 * with checkpoints every 16 tokens); the cache-less forward is the recurrence. */
#include "../mq.h"
#include "../mq_ops.h"
#include "mq_gla_core.h"

#include <math.h>
#include <string.h>

typedef struct rn_dims { int D, H, dk, dv, Hk, P; } rn_dims; /* P = 2·H·dk + D */

static rn_dims dims(const mq_cfg *c)
{
    rn_dims d = { c->D, c->H, c->dk, c->D / c->H, c->H * c->dk, 2 * c->H * c->dk + c->D };
    return d;
}

static mq_gla_spec spec(const rn_dims *d, int h)
{
    mq_gla_spec s = { .K = d->dk, .V = d->dv, .decay = MQ_GLA_CONST,
                      .log_a = log1p(-ldexp(1.0, -5 - h)) };
    return s;
}

static size_t rn_n_params(const mq_cfg *c)
{
    rn_dims d = dims(c);
    return (size_t)d.P * d.D + (size_t)d.D * d.D;
}

static void rn_init(const mq_cfg *c, double *p, uint64_t *rng)
{
    rn_dims d = dims(c);
    mq_fill_normal(p, (size_t)d.P * d.D, 0.02, rng);
    mq_fill_normal(p + (size_t)d.P * d.D, (size_t)d.D * d.D, 0.01, rng);
}

typedef struct rn_lay {
    double *proj, *o, *S, *scr;      /* proj [n][P]: s·q | k | v */
    double *tb, *dproj, *dO;       /* train only */
} rn_lay;

static size_t layout(const mq_cfg *c, int n, int train, double *base, rn_lay *ly)
{
    rn_dims d = dims(c);
    mq_gla_spec s = spec(&d, 0);
    mq_arena a = { base, 0 };
    ly->proj = mq_take(&a, (size_t)n * d.P);
    ly->o = mq_take(&a, (size_t)n * d.D);
    ly->S = train ? NULL : mq_take(&a, (size_t)d.H * mq_gla_state_len(&s));
    size_t scr = mq_gla_fwd_scratch(&s);
    ly->tb = ly->dproj = ly->dO = NULL;
    if (train) {
        scr = mq_max_sz(scr, mq_gla_train_scratch(&s, n));
        ly->tb = mq_take(&a, (size_t)d.H * mq_gla_train_len(&s, n));
        ly->dproj = mq_take(&a, (size_t)n * d.P);
        ly->dO = mq_take(&a, (size_t)n * d.D);
    }
    ly->scr = mq_take(&a, scr);
    return a.n;
}

static size_t rn_cache_doubles(const mq_cfg *c, int L)
{
    rn_lay ly;
    return layout(c, L, 1, NULL, &ly);
}

static mq_gla_io head_io(const rn_dims *d, const rn_lay *ly, int h)
{
    mq_gla_io io = { .q = ly->proj + (size_t)h * d->dk, .k = ly->proj + d->Hk + (size_t)h * d->dk,
                     .v = ly->proj + 2 * d->Hk + (size_t)h * d->dv,
                     .ldq = d->P, .ldk = d->P, .ldv = d->P,
                     .o = ly->o + (size_t)h * d->dv, .ldo = d->D };
    return io;
}

static void span(const mq_cfg *c, const double *p, int n, const double *x, double *y, const rn_lay *ly)
{
    rn_dims d = dims(c);
    const double *W_in = p, *W_o = p + (size_t)d.P * d.D;
    const double sc = 1.0 / sqrt((double)d.dk);
    mq_linear_fwd(n, d.D, d.P, x, d.D, W_in, NULL, ly->proj, d.P);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < d.Hk; i++) ly->proj[(size_t)t * d.P + i] *= sc;
    for (int h = 0; h < d.H; h++) {
        mq_gla_spec s = spec(&d, h);
        mq_gla_io io = head_io(&d, ly, h);
        if (ly->tb)
            mq_gla_train_fwd(&s, n, &io, ly->tb + (size_t)h * mq_gla_train_len(&s, n), ly->scr);
        else
            mq_gla_fwd(&s, n, &io, ly->S + (size_t)h * mq_gla_state_len(&s), NULL, ly->scr);
    }
    mq_linear_fwd(n, d.D, d.D, ly->o, d.D, W_o, NULL, y, d.D);
}

static void rn_forward(const mq_cfg *c, const double *p, int L, const double *x, double *y,
                       double *cache)
{
    rn_dims d = dims(c);
    mq_gla_spec s = spec(&d, 0);
    rn_lay ly;
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

static void rn_backward(const mq_cfg *c, const double *p, int L, const double *x, double *cache,
                        const double *dy, double *dx, double *dp)
{
    rn_dims d = dims(c);
    const double *W_in = p, *W_o = p + (size_t)d.P * d.D;
    double *dW_in = dp, *dW_o = dp + (size_t)d.P * d.D;
    const double sc = 1.0 / sqrt((double)d.dk);
    rn_lay ly;
    layout(c, L, 1, cache, &ly);
    memset(ly.dO, 0, sizeof(double) * (size_t)L * d.D);
    mq_linear_bwd(L, d.D, d.D, ly.o, d.D, W_o, dy, d.D, ly.dO, d.D, dW_o, NULL);
    for (int h = 0; h < d.H; h++) {
        mq_gla_spec s = spec(&d, h);
        mq_gla_io io = head_io(&d, &ly, h);
        mq_gla_grad g = { .dout = ly.dO + (size_t)h * d.dv, .lddo = d.D,
                          .dq = ly.dproj + (size_t)h * d.dk, .dk = ly.dproj + d.Hk + (size_t)h * d.dk,
                          .dv = ly.dproj + 2 * d.Hk + (size_t)h * d.dv,
                          .lddq = d.P, .lddk = d.P, .lddv = d.P };
        mq_gla_train_bwd(&s, L, &io, ly.tb + (size_t)h * mq_gla_train_len(&s, L), &g, ly.scr);
    }
    for (int t = 0; t < L; t++)
        for (int i = 0; i < d.Hk; i++) ly.dproj[(size_t)t * d.P + i] *= sc;
    memset(dx, 0, sizeof(double) * (size_t)L * d.D);
    mq_linear_bwd(L, d.D, d.P, x, d.D, W_in, ly.dproj, d.P, dx, d.D, dW_in, NULL);
}

static double rn_state_bytes(const mq_cfg *c, int L)
{
    (void)L;
    rn_dims d = dims(c);
    return 4.0 * d.H * d.dk * d.dv;
}

const mq_mixer mq_mixer_retnet = {
    .name = "retnet",
    .size_knob = "dk",
    .sizes = { 16, 32, 64, 0 },
    .doc = "retention as impls/retnet (fixed gamma_h = 1-2^(-5-h), scale dk^-1/2, no xPos, no "
           "GroupNorm/swish gate: impls omits the epilogue) on learned q,k: D->H*dk, v: D->D, "
           "out D->D, no bias; init N(0,0.02), out N(0,0.01); state = 4*H*dk*(D/H) bytes",
    .n_params = rn_n_params,
    .init = rn_init,
    .cache_doubles = rn_cache_doubles,
    .forward = rn_forward,
    .backward = rn_backward,
    .state_bytes = rn_state_bytes,
};
