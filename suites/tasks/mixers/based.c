/* based.c — trainable Based linear attention (Arora et al., "Simple linear
 * attention language models balance the recall-throughput tradeoff", ICML
 * 2024) for the task models (suites/tasks/mq.h): the Taylor-feature linear
 * attention layer of zoology's `Based` mixer (the layer-1 mixer of the Based
 * recipe; the sliding-window half of the hybrid is latbench's based_hybrid).
 *
 * The sequence op is latbench's `based` (impls/based.c, reference/based.c)
 * with its defaults: the compressed 2nd-order Taylor map of f = d′ inputs,
 *   φ(x) = [1, x_a/f^{1/4} (a), x_a²/(√2·√f) (a), x_a x_b/√f (a<b, row-major)],
 *   F = 1 + f + f(f+1)/2, so ⟨φ(q), φ(k)⟩ = 1 + s + s²/2 with s = ⟨q,k⟩/√f,
 *   S_t = S_{t−1} + φ(k_t)[v_t | 1]ᵀ, o_t = S_tᵀφ(q_t)[..V) / (S_tᵀφ(q_t)[V] + ε), ε = 1e-12,
 * run by the shared core (mq_gla_core: no decay, normalizer on), per head.
 * Around it (zoology Based: feature_dim f, num_heads H, num_key_value_heads
 * H): [q | k | v] = x W_inᵀ, q, k: D → H·f, v: D → D (head h takes columns
 * h·D/H ..), y = o W_oᵀ; no biases. Init: W_in ~ N(0, 0.02), W_o ~ N(0, 0.01)
 * (zoology _init_weights and its out_proj rescale 0.02/√(2·2 layers)).
 * Knob "feat" = f ∈ {8, 16} (B.6). State bytes = Zoology's Based formula
 * (B.2) 4·(D·F + F) at H = 1; in general 4·H·F·(D/H + 1).
 * Training path (forward with a cache, and backward): when cheaper (short L:
 * L·(f + V) < 4·F·(V + 1), i.e. L < 162 at f = 8 and < 497 at f = 16 for
 * D = 64), the exact
 * quadratic form of the same function, A_ts = [s ≤ t](1 + s_ts + s_ts²/2) with
 * s = QKᵀ/√f, o = A V / (A 1 + ε), by GEMMs (O(L²(f+V)) instead of the
 * recurrence's O(L·F·V)); otherwise BPTT over the recurrence in the core with
 * the Taylor map's Jacobian by hand. The cache-less (inference) forward is
 * always the recurrence, so the gradient check compares the two forms. */
#include "../mq.h"
#include "../mq_ops.h"
#include "mq_gla_core.h"

#include <math.h>
#include <string.h>

#define BASED_EPS 1e-12

typedef struct bs_dims { int D, H, f, dv, F, Hf, P; } bs_dims; /* P = 2Hf + D */

static bs_dims dims(const mq_cfg *c)
{
    bs_dims d;
    d.D = c->D, d.H = c->H, d.f = c->feat, d.dv = c->D / c->H;
    d.F = 1 + d.f + d.f * (d.f + 1) / 2;
    d.Hf = d.H * d.f;
    d.P = 2 * d.Hf + d.D;
    return d;
}

static mq_gla_spec spec(const bs_dims *d)
{
    mq_gla_spec s = { .K = d->F, .V = d->dv, .decay = MQ_GLA_NONE, .norm = 1, .eps = BASED_EPS };
    return s;
}

/* Taylor map of one f-vector (impls/based.c order) */
static void taylor(int f, const double *x, double *phi)
{
    const double r4 = pow((double)f, -0.25), r2 = 1.0 / sqrt((double)f), h = r2 * M_SQRT1_2;
    int n = 0;
    phi[n++] = 1.0;
    for (int a = 0; a < f; a++) phi[n++] = x[a] * r4;
    for (int a = 0; a < f; a++) phi[n++] = x[a] * x[a] * h;
    for (int a = 0; a < f; a++) {
        const double xa = x[a] * r2;
        for (int b = a + 1; b < f; b++) phi[n++] = xa * x[b];
    }
}

/* dx (overwritten) = J_φ(x)ᵀ dphi */
static void taylor_bwd(int f, const double *x, const double *dphi, double *dx)
{
    const double r4 = pow((double)f, -0.25), r2 = 1.0 / sqrt((double)f), h = r2 * M_SQRT1_2;
    for (int a = 0; a < f; a++) dx[a] = dphi[1 + a] * r4 + 2.0 * h * x[a] * dphi[1 + f + a];
    int n = 1 + 2 * f;
    for (int a = 0; a < f; a++)
        for (int b = a + 1; b < f; b++, n++) {
            dx[a] += dphi[n] * r2 * x[b];
            dx[b] += dphi[n] * r2 * x[a];
        }
}

/* parameters: W_in [P][D] (rows q | k | v), W_o [D][D] */
static size_t bs_n_params(const mq_cfg *c)
{
    bs_dims d = dims(c);
    return (size_t)d.P * d.D + (size_t)d.D * d.D;
}

static void bs_init(const mq_cfg *c, double *p, uint64_t *rng)
{
    bs_dims d = dims(c);
    mq_fill_normal(p, (size_t)d.P * d.D, 0.02, rng);
    mq_fill_normal(p + (size_t)d.P * d.D, (size_t)d.D * d.D, 0.01, rng);
}

typedef struct bs_lay {
    double *proj, *fq, *fk, *o, *S, *scr;        /* proj [n][P]; fq, fk [n][H·F] */
    double *den, *ckpt, *dfq, *dfk, *dproj, *dO; /* train only */
    double *Sm, *dA, *dnum;                      /* quadratic path: [H][n][n], [n][n], [n][dv] */
} bs_lay;

/* the quadratic form is the cheaper one (measured crossover on Zen4: L·(f+V) ≈ 4·F·(V+1),
 * i.e. L ≈ 180 at f = 8 and ≈ 500 at f = 16 for D = 64) */
static int use_quad(const bs_dims *d, int L) { return (double)L * (d->f + d->dv) < 4.0 * d->F * (d->dv + 1.0); }

static size_t layout(const mq_cfg *c, int n, int train, double *base, bs_lay *ly)
{
    bs_dims d = dims(c);
    mq_gla_spec s = spec(&d);
    mq_arena a = { base, 0 };
    ly->Sm = ly->dA = ly->dnum = NULL;
    if (train && use_quad(&d, n)) {
        ly->proj = mq_take(&a, (size_t)n * d.P);
        ly->o = mq_take(&a, (size_t)n * d.D);
        ly->den = mq_take(&a, (size_t)d.H * n);
        ly->Sm = mq_take(&a, (size_t)d.H * n * n);
        ly->dA = mq_take(&a, (size_t)n * n);
        ly->dnum = mq_take(&a, (size_t)n * d.dv);
        ly->dproj = mq_take(&a, (size_t)n * d.P);
        ly->dO = mq_take(&a, (size_t)n * d.D);
        ly->fq = ly->fk = ly->S = ly->scr = ly->ckpt = ly->dfq = ly->dfk = NULL;
        return a.n;
    }
    const size_t nHF = (size_t)n * d.H * d.F;
    ly->proj = mq_take(&a, (size_t)n * d.P);
    ly->fq = mq_take(&a, nHF);
    ly->fk = mq_take(&a, nHF);
    ly->o = mq_take(&a, (size_t)n * d.D);
    ly->S = mq_take(&a, (size_t)d.H * mq_gla_state_len(&s));
    size_t scr = mq_gla_fwd_scratch(&s);
    ly->den = ly->ckpt = ly->dfq = ly->dfk = ly->dproj = ly->dO = NULL;
    if (train) {
        scr = mq_max_sz(scr, mq_gla_bwd_scratch(&s));
        ly->den = mq_take(&a, (size_t)d.H * n);
        ly->ckpt = mq_take(&a, (size_t)d.H * mq_gla_ckpt_len(&s, n));
        ly->dfq = mq_take(&a, nHF);
        ly->dfk = mq_take(&a, nHF);
        ly->dproj = mq_take(&a, (size_t)n * d.P);
        ly->dO = mq_take(&a, (size_t)n * d.D);
    }
    ly->scr = mq_take(&a, scr);
    return a.n;
}

static size_t bs_cache_doubles(const mq_cfg *c, int L)
{
    bs_lay ly;
    return layout(c, L, 1, NULL, &ly);
}

static mq_gla_io head_io(const bs_dims *d, const bs_lay *ly, int n, int h)
{
    const int HF = d->H * d->F;
    mq_gla_io io = { .q = ly->fq + (size_t)h * d->F, .k = ly->fk + (size_t)h * d->F,
                     .v = ly->proj + 2 * d->Hf + (size_t)h * d->dv,
                     .ldq = HF, .ldk = HF, .ldv = d->P,
                     .o = ly->o + (size_t)h * d->dv, .ldo = d->D,
                     .den = ly->den ? ly->den + (size_t)h * n : NULL };
    return io;
}

static void span(const mq_cfg *c, const double *p, int n, const double *x, double *y, const bs_lay *ly)
{
    bs_dims d = dims(c);
    mq_gla_spec s = spec(&d);
    const double *W_in = p, *W_o = p + (size_t)d.P * d.D;
    const size_t HF = (size_t)d.H * d.F;
    mq_linear_fwd(n, d.D, d.P, x, d.D, W_in, NULL, ly->proj, d.P);
    for (int t = 0; t < n; t++) {
        const double *r = ly->proj + (size_t)t * d.P;
        for (int h = 0; h < d.H; h++) {
            taylor(d.f, r + (size_t)h * d.f, ly->fq + t * HF + (size_t)h * d.F);
            taylor(d.f, r + d.Hf + (size_t)h * d.f, ly->fk + t * HF + (size_t)h * d.F);
        }
    }
    for (int h = 0; h < d.H; h++) {
        mq_gla_io io = head_io(&d, ly, n, h);
        mq_gla_fwd(&s, n, &io, ly->S + (size_t)h * mq_gla_state_len(&s),
                   ly->ckpt ? ly->ckpt + (size_t)h * mq_gla_ckpt_len(&s, n) : NULL, ly->scr);
    }
    mq_linear_fwd(n, d.D, d.D, ly->o, d.D, W_o, NULL, y, d.D);
}

/* the quadratic form over the whole sequence (training path) */
static void quad_fwd(const bs_dims *d, const double *p, int L, const double *x, double *y, const bs_lay *ly)
{
    const double *W_in = p, *W_o = p + (size_t)d->P * d->D, is = 1.0 / sqrt((double)d->f);
    mq_linear_fwd(L, d->D, d->P, x, d->D, W_in, NULL, ly->proj, d->P);
    for (int h = 0; h < d->H; h++) {
        const double *Q = ly->proj + (size_t)h * d->f, *K = Q + d->Hf, *V = ly->proj + 2 * d->Hf + (size_t)h * d->dv;
        double *Sm = ly->Sm + (size_t)h * L * L, *A = ly->dA, *den = ly->den + (size_t)h * L;
        double *o = ly->o + (size_t)h * d->dv;
        mq_gemm(0, 1, L, L, d->f, is, Q, d->P, K, d->P, 0.0, Sm, L);
        for (int t = 0; t < L; t++) {
            const double *st = Sm + (size_t)t * L;
            double *at = A + (size_t)t * L, sum = BASED_EPS;
            for (int u = 0; u <= t; u++) {
                at[u] = 1.0 + st[u] + 0.5 * st[u] * st[u];
                sum += at[u];
            }
            for (int u = t + 1; u < L; u++) at[u] = 0.0;
            den[t] = sum;
        }
        mq_gemm(0, 0, L, d->dv, L, 1.0, A, L, V, d->P, 0.0, o, d->D);
        for (int t = 0; t < L; t++)
            for (int j = 0; j < d->dv; j++) o[(size_t)t * d->D + j] /= den[t];
    }
    mq_linear_fwd(L, d->D, d->D, ly->o, d->D, W_o, NULL, y, d->D);
}

static void quad_bwd(const bs_dims *d, const double *p, int L, const double *x, const bs_lay *ly,
                     const double *dy, double *dx, double *dp)
{
    const double *W_in = p, *W_o = p + (size_t)d->P * d->D, is = 1.0 / sqrt((double)d->f);
    double *dW_in = dp, *dW_o = dp + (size_t)d->P * d->D;
    memset(ly->dO, 0, sizeof(double) * (size_t)L * d->D);
    mq_linear_bwd(L, d->D, d->D, ly->o, d->D, W_o, dy, d->D, ly->dO, d->D, dW_o, NULL);
    for (int h = 0; h < d->H; h++) {
        const double *Q = ly->proj + (size_t)h * d->f, *K = Q + d->Hf, *V = ly->proj + 2 * d->Hf + (size_t)h * d->dv;
        const double *den = ly->den + (size_t)h * L, *o = ly->o + (size_t)h * d->dv, *dO = ly->dO + (size_t)h * d->dv;
        double *Sm = ly->Sm + (size_t)h * L * L, *dA = ly->dA, *dnum = ly->dnum;
        double *dQ = ly->dproj + (size_t)h * d->f, *dK = dQ + d->Hf, *dV = ly->dproj + 2 * d->Hf + (size_t)h * d->dv;
        for (int t = 0; t < L; t++)
            for (int j = 0; j < d->dv; j++) dnum[(size_t)t * d->dv + j] = dO[(size_t)t * d->D + j] / den[t];
        mq_gemm(0, 1, L, L, d->dv, 1.0, dnum, d->dv, V, d->P, 0.0, dA, L);
        for (int t = 0; t < L; t++) {
            double od = 0;
            for (int j = 0; j < d->dv; j++) od += dO[(size_t)t * d->D + j] * o[(size_t)t * d->D + j];
            const double dden = -od / den[t];
            double *st = Sm + (size_t)t * L, *dat = dA + (size_t)t * L;
            for (int u = 0; u <= t; u++) { /* dA → dS in place, S → A in place */
                const double sv = st[u], g = dat[u] + dden;
                dat[u] = g * (1.0 + sv);
                st[u] = 1.0 + sv + 0.5 * sv * sv;
            }
            for (int u = t + 1; u < L; u++) dat[u] = st[u] = 0.0;
        }
        mq_gemm(1, 0, L, d->dv, L, 1.0, Sm, L, dnum, d->dv, 0.0, dV, d->P);
        mq_gemm(0, 0, L, d->f, L, is, dA, L, K, d->P, 0.0, dQ, d->P);
        mq_gemm(1, 0, L, d->f, L, is, dA, L, Q, d->P, 0.0, dK, d->P);
    }
    memset(dx, 0, sizeof(double) * (size_t)L * d->D);
    mq_linear_bwd(L, d->D, d->P, x, d->D, W_in, ly->dproj, d->P, dx, d->D, dW_in, NULL);
}

static void bs_forward(const mq_cfg *c, const double *p, int L, const double *x, double *y,
                       double *cache)
{
    bs_dims d = dims(c);
    mq_gla_spec s = spec(&d);
    bs_lay ly;
    if (cache && use_quad(&d, L)) {
        layout(c, L, 1, cache, &ly);
        quad_fwd(&d, p, L, x, y, &ly);
        return;
    }
    if (cache) {
        layout(c, L, 1, cache, &ly);
        memset(ly.S, 0, sizeof(double) * d.H * mq_gla_state_len(&s));
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

static void bs_backward(const mq_cfg *c, const double *p, int L, const double *x, double *cache,
                        const double *dy, double *dx, double *dp)
{
    bs_dims d = dims(c);
    mq_gla_spec s = spec(&d);
    const double *W_in = p, *W_o = p + (size_t)d.P * d.D;
    double *dW_in = dp, *dW_o = dp + (size_t)d.P * d.D;
    const size_t HF = (size_t)d.H * d.F;
    bs_lay ly;
    layout(c, L, 1, cache, &ly);
    if (use_quad(&d, L)) {
        quad_bwd(&d, p, L, x, &ly, dy, dx, dp);
        return;
    }
    memset(ly.dO, 0, sizeof(double) * (size_t)L * d.D);
    mq_linear_bwd(L, d.D, d.D, ly.o, d.D, W_o, dy, d.D, ly.dO, d.D, dW_o, NULL);
    for (int h = 0; h < d.H; h++) {
        mq_gla_io io = head_io(&d, &ly, L, h);
        mq_gla_grad g = { .dout = ly.dO + (size_t)h * d.dv, .lddo = d.D,
                          .dq = ly.dfq + (size_t)h * d.F, .dk = ly.dfk + (size_t)h * d.F,
                          .dv = ly.dproj + 2 * d.Hf + (size_t)h * d.dv,
                          .lddq = (int)HF, .lddk = (int)HF, .lddv = d.P };
        mq_gla_bwd(&s, L, &io, ly.ckpt + (size_t)h * mq_gla_ckpt_len(&s, L), &g, ly.scr);
    }
    for (int t = 0; t < L; t++) {
        const double *r = ly.proj + (size_t)t * d.P;
        double *g = ly.dproj + (size_t)t * d.P;
        for (int h = 0; h < d.H; h++) {
            taylor_bwd(d.f, r + (size_t)h * d.f, ly.dfq + t * HF + (size_t)h * d.F, g + (size_t)h * d.f);
            taylor_bwd(d.f, r + d.Hf + (size_t)h * d.f, ly.dfk + t * HF + (size_t)h * d.F,
                       g + d.Hf + (size_t)h * d.f);
        }
    }
    memset(dx, 0, sizeof(double) * (size_t)L * d.D);
    mq_linear_bwd(L, d.D, d.P, x, d.D, W_in, ly.dproj, d.P, dx, d.D, dW_in, NULL);
}

static double bs_state_bytes(const mq_cfg *c, int L)
{
    (void)L;
    bs_dims d = dims(c);
    return 4.0 * d.H * d.F * (d.dv + 1.0);
}

const mq_mixer mq_mixer_based = {
    .name = "based",
    .size_knob = "feat",
    .sizes = { 8, 16, 0 },
    .doc = "Based Taylor linear attention as impls/based (compressed 2nd-order map, F=1+f+f(f+1)/2, "
           "s=q.k/sqrt(f), eps 1e-12) on learned q,k: D->H*feat, v: D->D, out D->D (zoology Based, "
           "no bias); init N(0,0.02), out N(0,0.01); state = 4*(D*F+F) bytes (B.2) at H=1",
    .n_params = bs_n_params,
    .init = bs_init,
    .cache_doubles = bs_cache_doubles,
    .forward = bs_forward,
    .backward = bs_backward,
    .state_bytes = bs_state_bytes,
};
