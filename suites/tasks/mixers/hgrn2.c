/* hgrn2.c — trainable HGRN2 (Qin et al., "HGRN2: Gated Linear RNNs with
 * State Expansion", COLM 2024, arXiv 2404.07904) for the task models
 * (suites/tasks/mq.h).
 *
 * The sequence op is latbench's `hgrn2` (impls/hgrn2.c, reference/hgrn2.c):
 * the D channels of the layer split into D/n HGRN2 heads of n channels (n =
 * the expand ratio = knob "dk"), each with an n×n state,
 *     S_t = Diag(f_t) S_{t−1} + (1 − f_t) i_tᵀ,   o_t = s S_tᵀ q_t,   s = 1
 * (GLA with the key tied to the forget gate, scale 1 as the original code),
 * run by the shared core (mq_gla_core, per-key decay log f, key 1 − f), one
 * call per head. Layer (fla HGRN2Attention with num_heads = D/n,
 * spec/recurrent.md §4.2):
 *     q = swish(x W_q),  f = λ + (1 − λ) σ(x W_f),  k = 1 − f = (1 − λ) σ(−x W_f),
 *     i = x W_i  (all D → D, no biases),  y = o W_oᵀ
 * (fla's output RMSNorm is omitted, as in impls). When n does not divide D
 * (only the gradient check's odd shapes) the last head is narrower,
 * D − n·(⌈D/n⌉ − 1) channels; mq_cfg.H is not used (HGRN2's heads are set by n).
 * Lower bound: fla learns Γ [layers][D], λ_l = cumsum(softmax_l Γ) −
 * softmax(Γ)_0; the mixer is layer 1 of a 2-layer model, where that is
 * λ = softmax(Γ)_1 = σ(Γ_1 − Γ_0): parametrized as λ = σ(β), β [D] learned,
 * init 0 (Γ = 0 → λ = 0.5). Init: W_q, W_f, W_i ~ N(0, 0.02), W_o ~ N(0, 0.01)
 * (zoology init, 2-layer out_proj rescale).
 * State bytes: 4·Σ_heads n² = 4·D·n (impls: 4·B·H·K·n with K = D; = B.6's
 * d_k·d_v count with d_k = n, d_v = D).
 * Backward: BPTT in the core; f, log f and 1 − f by hand (1 − σ(z) = σ(−z),
 * no cancellation). */
#include "../mq.h"
#include "../mq_ops.h"
#include "mq_gla_core.h"

#include <math.h>
#include <string.h>

/* G heads of n channels (the last one nl ≤ n); q, f, i and β have D channels */
typedef struct hg_dims { int D, n, G, nl, P; } hg_dims; /* P = 3D */

static hg_dims dims(const mq_cfg *c)
{
    hg_dims d;
    d.D = c->D, d.n = c->dk < c->D ? c->dk : c->D;
    d.G = (d.D + d.n - 1) / d.n;
    d.nl = d.D - d.n * (d.G - 1);
    d.P = 3 * d.D;
    return d;
}

static int width(const hg_dims *d, int g) { return g == d->G - 1 ? d->nl : d->n; }

static mq_gla_spec spec(const hg_dims *d, int g)
{
    mq_gla_spec s = { .K = width(d, g), .V = width(d, g), .decay = MQ_GLA_KEY };
    return s;
}

/* parameters: W_in [P][D] (W_q | W_f | W_i), beta [D], W_o [D][D] */
static size_t hg_n_params(const mq_cfg *c)
{
    hg_dims d = dims(c);
    return (size_t)d.P * d.D + d.D + (size_t)d.D * d.D;
}

static void hg_init(const mq_cfg *c, double *p, uint64_t *rng)
{
    hg_dims d = dims(c);
    mq_fill_normal(p, (size_t)d.P * d.D, 0.02, rng);
    mq_fill_const(p + (size_t)d.P * d.D, d.D, 0.0);
    mq_fill_normal(p + (size_t)d.P * d.D + d.D, (size_t)d.D * d.D, 0.01, rng);
}

/* per-head offsets of the state, checkpoints and decay cache (head 0 is the widest) */
static size_t st_off(const hg_dims *d, int g) { mq_gla_spec s = spec(d, 0); return (size_t)g * mq_gla_state_len(&s); }
static size_t tb_off(const hg_dims *d, int n, int g) { mq_gla_spec s = spec(d, 0); return (size_t)g * mq_gla_train_len(&s, n); }


/* proj [n][3D] raw; [n][D]: qa = swish(q), sq = σ(q), kk = 1 − f, f, sz = σ(z) */
typedef struct hg_lay {
    double *proj, *qa, *sq, *kk, *f, *sz, *o, *S, *scr;
    double *tb, *dproj, *dqa, *dkk, *dlf, *dO; /* train only */
} hg_lay;

static size_t layout(const mq_cfg *c, int n, int train, double *base, hg_lay *ly)
{
    hg_dims d = dims(c);
    mq_gla_spec s = spec(&d, 0);
    mq_arena a = { base, 0 };
    const size_t nk = (size_t)n * d.D;
    ly->proj = mq_take(&a, (size_t)n * d.P);
    ly->qa = mq_take(&a, nk);
    ly->sq = mq_take(&a, nk);
    ly->kk = mq_take(&a, nk);
    ly->f = mq_take(&a, nk);
    ly->sz = mq_take(&a, nk);
    ly->o = mq_take(&a, (size_t)n * d.D);
    ly->S = train ? NULL : mq_take(&a, st_off(&d, d.G));
    size_t scr = mq_gla_fwd_scratch(&s);
    ly->tb = ly->dproj = ly->dqa = ly->dkk = ly->dlf = ly->dO = NULL;
    if (train) {
        scr = mq_max_sz(scr, mq_gla_train_scratch(&s, n));
        ly->tb = mq_take(&a, tb_off(&d, n, d.G));
        ly->dproj = mq_take(&a, (size_t)n * d.P);
        ly->dqa = mq_take(&a, nk);
        ly->dkk = mq_take(&a, nk);
        ly->dlf = mq_take(&a, nk);
        ly->dO = mq_take(&a, (size_t)n * d.D);
    }
    ly->scr = mq_take(&a, scr);
    return a.n;
}

static size_t hg_cache_doubles(const mq_cfg *c, int L)
{
    hg_lay ly;
    return layout(c, L, 1, NULL, &ly);
}

static mq_gla_io head_io(const hg_dims *d, const hg_lay *ly, int n, int g)
{
    const size_t off = (size_t)g * d->n;
    (void)n;
    mq_gla_io io = { .q = ly->qa + off, .k = ly->kk + off, .v = ly->proj + 2 * d->D + off,
                     .ldq = d->D, .ldk = d->D, .ldv = d->P, .o = ly->o + off, .ldo = d->D,
                     .a = ly->f + off, .a_given = 1, .ld_a = d->D };
    return io;
}

static void span(const mq_cfg *c, const double *p, int n, const double *x, double *y, const hg_lay *ly)
{
    hg_dims d = dims(c);
    const double *W_in = p, *beta = p + (size_t)d.P * d.D, *W_o = beta + d.D;
    mq_linear_fwd(n, d.D, d.P, x, d.D, W_in, NULL, ly->proj, d.P);
    double lam[d.D];
    mq_vsigmoid2(d.D, beta, lam, NULL);
    for (int t = 0; t < n; t++) {
        const double *r = ly->proj + (size_t)t * d.P;
        const size_t o = (size_t)t * d.D;
        double *qa = ly->qa + o, *sq = ly->sq + o, *kk = ly->kk + o, *f = ly->f + o, *sz = ly->sz + o;
        mq_vsigmoid2(d.D, r, sq, NULL);
        mq_vsigmoid2(d.D, r + d.D, sz, kk); /* kk = σ(−z) for now */
#pragma omp simd
        for (int i = 0; i < d.D; i++) {
            qa[i] = r[i] * sq[i];
            f[i] = lam[i] + (1.0 - lam[i]) * sz[i];
            kk[i] *= 1.0 - lam[i];
        }
    }
    for (int g = 0; g < d.G; g++) {
        mq_gla_spec s = spec(&d, g);
        mq_gla_io io = head_io(&d, ly, n, g);
        if (ly->tb)
            mq_gla_train_fwd(&s, n, &io, ly->tb + tb_off(&d, n, g), ly->scr);
        else
            mq_gla_fwd(&s, n, &io, ly->S + st_off(&d, g), NULL, ly->scr);
    }
    mq_linear_fwd(n, d.D, d.D, ly->o, d.D, W_o, NULL, y, d.D);
}

static void hg_forward(const mq_cfg *c, const double *p, int L, const double *x, double *y,
                       double *cache)
{
    hg_dims d = dims(c);
    hg_lay ly;
    if (cache) {
        layout(c, L, 1, cache, &ly);
        span(c, p, L, x, y, &ly);
        return;
    }
    double stk[layout(c, MQ_GLA_TB, 0, NULL, &ly)];
    layout(c, MQ_GLA_TB, 0, stk, &ly);
    memset(ly.S, 0, sizeof(double) * st_off(&d, d.G));
    for (int t0 = 0; t0 < L; t0 += MQ_GLA_TB) {
        const int n = L - t0 < MQ_GLA_TB ? L - t0 : MQ_GLA_TB;
        span(c, p, n, x + (size_t)t0 * d.D, y + (size_t)t0 * d.D, &ly);
    }
}

static void hg_backward(const mq_cfg *c, const double *p, int L, const double *x, double *cache,
                        const double *dy, double *dx, double *dp)
{
    hg_dims d = dims(c);
    const double *W_in = p, *beta = p + (size_t)d.P * d.D, *W_o = beta + d.D;
    double *dW_in = dp, *dbeta = dp + (size_t)d.P * d.D, *dW_o = dbeta + d.D;
    hg_lay ly;
    layout(c, L, 1, cache, &ly);
    memset(ly.dO, 0, sizeof(double) * (size_t)L * d.D);
    mq_linear_bwd(L, d.D, d.D, ly.o, d.D, W_o, dy, d.D, ly.dO, d.D, dW_o, NULL);
    for (int h = 0; h < d.G; h++) {
        const size_t off = (size_t)h * d.n;
        mq_gla_spec s = spec(&d, h);
        mq_gla_io io = head_io(&d, &ly, L, h);
        mq_gla_grad g = { .dout = ly.dO + off, .lddo = d.D, .dq = ly.dqa + off, .dk = ly.dkk + off,
                          .dv = ly.dproj + 2 * d.D + off, .dla = ly.dlf + off,
                          .lddq = d.D, .lddk = d.D, .lddv = d.P, .ldda = d.D };
        mq_gla_train_bwd(&s, L, &io, ly.tb + tb_off(&d, L, h), &g, ly.scr);
    }
    double lam[d.D];
    mq_vsigmoid2(d.D, beta, lam, NULL);
    for (int t = 0; t < L; t++) {
        const double *r = ly.proj + (size_t)t * d.P;
        const size_t o = (size_t)t * d.D;
        const double *sq = ly.sq + o, *f = ly.f + o, *sz = ly.sz + o;
        double *dr = ly.dproj + (size_t)t * d.P;
        for (int i = 0; i < d.D; i++) {
            const double snz = 1.0 - lam[i] > 0 ? ly.kk[o + i] / (1.0 - lam[i]) : 1.0 - sz[i]; /* σ(−z) */
            const double df = ly.dlf[o + i] / f[i] - ly.dkk[o + i]; /* ∂/∂f of log f and of 1 − f */
            dr[i] = ly.dqa[o + i] * sq[i] * (1.0 + r[i] * (1.0 - sq[i]));
            dr[d.D + i] = df * (1.0 - lam[i]) * sz[i] * snz;
            dbeta[i] += df * snz * lam[i] * (1.0 - lam[i]);
        }
    }
    memset(dx, 0, sizeof(double) * (size_t)L * d.D);
    mq_linear_bwd(L, d.D, d.P, x, d.D, W_in, ly.dproj, d.P, dx, d.D, dW_in, NULL);
}

static double hg_state_bytes(const mq_cfg *c, int L)
{
    (void)L;
    hg_dims d = dims(c);
    return 4.0 * ((d.G - 1.0) * d.n * d.n + (double)d.nl * d.nl);
}

const mq_mixer mq_mixer_hgrn2 = {
    .name = "hgrn2",
    .size_knob = "dk",
    .sizes = { 16, 32, 64, 0 },
    .doc = "HGRN2 as impls/hgrn2: D/dk heads of dk x dk (dk = expand ratio n), scale 1, k = 1-f; "
           "fla layer q = swish(xWq), f = lam+(1-lam)sigmoid(xWf), i = xWi (D->D each); layer-1 "
           "lower bound lam = sigmoid(beta) (softmax over 2 layers), beta=0 -> 0.5; no output norm; "
           "init N(0,0.02), out N(0,0.01); state = 4*D*dk bytes",
    .n_params = hg_n_params,
    .init = hg_init,
    .cache_doubles = hg_cache_doubles,
    .forward = hg_forward,
    .backward = hg_backward,
    .state_bytes = hg_state_bytes,
};
