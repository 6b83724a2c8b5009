/* mamba2.c — trainable Mamba-2 / SSD layer (Dao & Gu, "Transformers are
 * SSMs", ICML 2024, arXiv 2405.21060) for the task models (suites/tasks/mq.h).
 *
 * The sequence op is latbench's `mamba2` (impls/mamba2.c, reference/mamba2.c):
 *     dt_t = softplus(dt_raw_t + dt_bias_h),  A_h = −exp(A_log_h),
 *     h_t = exp(dt_t A_h) h_{t−1} + (dt_t x_t) B_tᵀ  (P×N),   y_t = h_t C_t + D_h x_t
 * with one B, C group (G = 1), D per head, no z gate and no gated RMSNorm
 * (impls' decisions), run by the shared core (mq_gla_core, scalar decay):
 * q = C, k = B, v = dt·x, log-decay dt·A, state S = hᵀ [N][P] per head.
 * Layer (mamba2.py in_proj, expand 2, heads H = mq_cfg.H, head dim P = E/H,
 * E = expand·D, N = knob "n_state"):
 *     [x | B | C | dt_raw] = u W_inᵀ   (D → E + 2N + H, no bias)
 *     x, B, C ← silu(x), silu(B), silu(C)    y = (SSD + D·x) W_oᵀ   (E → D)
 * DECISIONS: no causal conv1d before the silu (the task models' layer 0 is
 * already a short causal conv; the silu that follows mamba2's conv is kept);
 * no z gate and no gated RMSNorm (impls/mamba2.c excludes them; the brief
 * makes the gate optional); one head at the default H = 1 (P = 2D = 128):
 * the state E·N is the same for any H.
 * Init (mamba2.py): dt = exp(U(log 1e-3, log 0.1)) clamped ≥ 1e-4,
 * dt_bias = softplus⁻¹(dt); A_log = log U(1, 16); D = 1; W_in ~ N(0, 0.02),
 * W_o ~ N(0, 0.01) (zoology init and 2-layer out_proj rescale).
 * State bytes: 4·E·N = Zoology's Mamba-2 formula 2·D·N × 4 (B.2) at expand 2.
 * Training (forward with a cache, backward): the core's cheaper exact form
 * (mq_gla_train_*: the quadratic 1-semiseparable-mask form when
 * L·(N+P) < 5·N·P, e.g. N = 64 at L = 128, P = 128, else BPTT over the
 * recurrence with checkpoints every 16 tokens); softplus′ = σ, silu′ from the
 * saved σ. */
#include "../mq.h"
#include "../mq_ops.h"
#include "mq_gla_core.h"

#include <math.h>
#include <string.h>

typedef struct m2_dims { int D, H, E, Pd, N, Pw, Na; } m2_dims; /* Pw = E + 2N + H, Na = E + 2N */

static m2_dims dims(const mq_cfg *c)
{
    m2_dims d;
    d.D = c->D, d.H = c->H, d.E = c->expand * c->D, d.Pd = d.E / d.H, d.N = c->n_state;
    d.Na = d.E + 2 * d.N;
    d.Pw = d.Na + d.H;
    return d;
}

static mq_gla_spec spec(const m2_dims *d)
{
    mq_gla_spec s = { .K = d->N, .V = d->Pd, .decay = MQ_GLA_SCALAR };
    return s;
}

/* parameters: W_in [Pw][D], dt_bias [H], A_log [H], Dsk [H], W_o [D][E] */
typedef struct m2_par { const double *W_in, *dtb, *Alog, *Dsk, *W_o; } m2_par;
static m2_par params(const m2_dims *d, const double *p)
{
    m2_par w;
    w.W_in = p;
    w.dtb = w.W_in + (size_t)d->Pw * d->D;
    w.Alog = w.dtb + d->H;
    w.Dsk = w.Alog + d->H;
    w.W_o = w.Dsk + d->H;
    return w;
}

static size_t m2_n_params(const mq_cfg *c)
{
    m2_dims d = dims(c);
    return (size_t)d.Pw * d.D + 3 * (size_t)d.H + (size_t)d.D * d.E;
}

static void m2_init(const mq_cfg *c, double *p, uint64_t *rng)
{
    m2_dims d = dims(c);
    double *W_in = p, *dtb = W_in + (size_t)d.Pw * d.D, *Alog = dtb + d.H, *Dsk = Alog + d.H,
           *W_o = Dsk + d.H;
    mq_fill_normal(W_in, (size_t)d.Pw * d.D, 0.02, rng);
    for (int h = 0; h < d.H; h++) {
        double dt = exp(log(1e-3) + mq_rng_uniform(rng) * (log(0.1) - log(1e-3)));
        if (dt < 1e-4) dt = 1e-4;
        dtb[h] = dt + log(-expm1(-dt)); /* softplus⁻¹ */
        Alog[h] = log(1.0 + 15.0 * mq_rng_uniform(rng));
        Dsk[h] = 1.0;
    }
    mq_fill_normal(W_o, (size_t)d.D * d.E, 0.01, rng);
}

/* proj [n][Pw] raw; act [n][Na] = silu(x | B | C); sg [n][Na] = σ of the raw
 * x | B | C (train); dt [n][H]; la [n][H] = dt·A; vb [n][E] = dt·x; yc [n][E] */
typedef struct m2_lay {
    double *proj, *act, *dt, *la, *vb, *yc, *S, *scr;
    double *sg, *tb, *a, *dY, *dact, *dvb, *dla, *dqk, *dproj; /* train only */
} m2_lay;

static size_t layout(const mq_cfg *c, int n, int train, double *base, m2_lay *ly)
{
    m2_dims d = dims(c);
    mq_gla_spec s = spec(&d);
    mq_arena a = { base, 0 };
    ly->proj = mq_take(&a, (size_t)n * d.Pw);
    ly->act = mq_take(&a, (size_t)n * d.Na);
    ly->dt = mq_take(&a, (size_t)n * d.H);
    ly->la = mq_take(&a, (size_t)n * d.H);
    ly->vb = mq_take(&a, (size_t)n * d.E);
    ly->yc = mq_take(&a, (size_t)n * d.E);
    ly->S = train ? NULL : mq_take(&a, (size_t)d.H * mq_gla_state_len(&s));
    size_t scr = mq_gla_fwd_scratch(&s);
    ly->sg = ly->tb = ly->a = ly->dY = ly->dact = ly->dvb = ly->dla = ly->dqk = ly->dproj = NULL;
    if (train) {
        scr = mq_max_sz(scr, mq_gla_train_scratch(&s, n));
        ly->sg = mq_take(&a, (size_t)n * d.Na);
        ly->tb = mq_take(&a, (size_t)d.H * mq_gla_train_len(&s, n));
        ly->a = mq_take(&a, (size_t)d.H * mq_gla_a_len(&s, n));
        ly->dY = mq_take(&a, (size_t)n * d.E);
        ly->dact = mq_take(&a, (size_t)n * d.Na);
        ly->dvb = mq_take(&a, (size_t)n * d.E);
        ly->dla = mq_take(&a, (size_t)n * d.H);
        ly->dqk = mq_take(&a, 2 * (size_t)n * d.N);
        ly->dproj = mq_take(&a, (size_t)n * d.Pw);
    }
    ly->scr = mq_take(&a, scr);
    return a.n;
}

static size_t m2_cache_doubles(const mq_cfg *c, int L)
{
    m2_lay ly;
    return layout(c, L, 1, NULL, &ly);
}

static mq_gla_io head_io(const m2_dims *d, const m2_lay *ly, int n, int h)
{
    mq_gla_spec s = spec(d);
    mq_gla_io io = { .q = ly->act + d->E + d->N, .k = ly->act + d->E, .v = ly->vb + (size_t)h * d->Pd,
                     .la = ly->la + h, .ldq = d->Na, .ldk = d->Na, .ldv = d->E, .lda = d->H,
                     .o = ly->yc + (size_t)h * d->Pd, .ldo = d->E,
                     .a = ly->a ? ly->a + (size_t)h * mq_gla_a_len(&s, n) : NULL };
    return io;
}

static void span(const mq_cfg *c, const double *p, int n, const double *u, double *y, const m2_lay *ly)
{
    m2_dims d = dims(c);
    m2_par w = params(&d, p);
    mq_gla_spec s = spec(&d);
    mq_linear_fwd(n, d.D, d.Pw, u, d.D, w.W_in, NULL, ly->proj, d.Pw);
    double A[d.H];
    for (int h = 0; h < d.H; h++) A[h] = -exp(w.Alog[h]);
    for (int t = 0; t < n; t++) {
        const double *r = ly->proj + (size_t)t * d.Pw;
        double *act = ly->act + (size_t)t * d.Na, *sg = ly->sg ? ly->sg + (size_t)t * d.Na : act;
        mq_vsigmoid2(d.Na, r, sg, NULL);
#pragma omp simd
        for (int i = 0; i < d.Na; i++) act[i] = r[i] * sg[i];
        for (int h = 0; h < d.H; h++) {
            const double dt = mq_softplus(r[d.Na + h] + w.dtb[h]);
            ly->dt[(size_t)t * d.H + h] = dt;
            ly->la[(size_t)t * d.H + h] = dt * A[h];
            const double *xa = act + (size_t)h * d.Pd;
            double *vb = ly->vb + (size_t)t * d.E + (size_t)h * d.Pd;
            for (int j = 0; j < d.Pd; j++) vb[j] = dt * xa[j];
        }
    }
    for (int h = 0; h < d.H; h++) {
        mq_gla_io io = head_io(&d, ly, n, h);
        if (ly->tb)
            mq_gla_train_fwd(&s, n, &io, ly->tb + (size_t)h * mq_gla_train_len(&s, n), ly->scr);
        else
            mq_gla_fwd(&s, n, &io, ly->S + (size_t)h * mq_gla_state_len(&s), NULL, ly->scr);
    }
    for (int t = 0; t < n; t++) { /* D skip */
        double *yc = ly->yc + (size_t)t * d.E;
        const double *xa = ly->act + (size_t)t * d.Na;
        for (int h = 0; h < d.H; h++)
            for (int j = 0; j < d.Pd; j++) yc[h * d.Pd + j] += w.Dsk[h] * xa[h * d.Pd + j];
    }
    mq_linear_fwd(n, d.E, d.D, ly->yc, d.E, w.W_o, NULL, y, d.D);
}

static void m2_forward(const mq_cfg *c, const double *p, int L, const double *x, double *y,
                       double *cache)
{
    m2_dims d = dims(c);
    mq_gla_spec s = spec(&d);
    m2_lay ly;
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

static void m2_backward(const mq_cfg *c, const double *p, int L, const double *x, double *cache,
                        const double *dy, double *dx, double *dp)
{
    m2_dims d = dims(c);
    m2_par w = params(&d, p);
    mq_gla_spec s = spec(&d);
    double *dW_in = dp, *ddtb = dW_in + (size_t)d.Pw * d.D, *dAlog = ddtb + d.H, *dDsk = dAlog + d.H,
           *dW_o = dDsk + d.H;
    m2_lay ly;
    layout(c, L, 1, cache, &ly);
    memset(ly.dY, 0, sizeof(double) * (size_t)L * d.E);
    /* yc includes the D skip; the out projection's input gradient dY */
    mq_linear_bwd(L, d.E, d.D, ly.yc, d.E, w.W_o, dy, d.D, ly.dY, d.E, dW_o, NULL);
    memset(ly.dact, 0, sizeof(double) * (size_t)L * d.Na);
    double *dC = ly.dqk, *dB = ly.dqk + (size_t)L * d.N;
    for (int h = 0; h < d.H; h++) {
        mq_gla_io io = head_io(&d, &ly, L, h);
        mq_gla_grad g = { .dout = ly.dY + (size_t)h * d.Pd, .lddo = d.E, .dq = dC, .dk = dB,
                          .dv = ly.dvb + (size_t)h * d.Pd, .dla = ly.dla + h,
                          .lddq = d.N, .lddk = d.N, .lddv = d.E, .ldda = d.H };
        mq_gla_train_bwd(&s, L, &io, ly.tb + (size_t)h * mq_gla_train_len(&s, L), &g, ly.scr);
        for (int t = 0; t < L; t++) { /* B, C are shared by the heads */
            double *da = ly.dact + (size_t)t * d.Na;
            for (int i = 0; i < d.N; i++) {
                da[d.E + i] += dB[(size_t)t * d.N + i];
                da[d.E + d.N + i] += dC[(size_t)t * d.N + i];
            }
        }
    }
    for (int t = 0; t < L; t++) {
        const double *r = ly.proj + (size_t)t * d.Pw, *xa = ly.act + (size_t)t * d.Na;
        const double *dYt = ly.dY + (size_t)t * d.E, *dvb = ly.dvb + (size_t)t * d.E;
        double *da = ly.dact + (size_t)t * d.Na, *dr = ly.dproj + (size_t)t * d.Pw;
        for (int h = 0; h < d.H; h++) {
            const double dt = ly.dt[(size_t)t * d.H + h], A = -exp(w.Alog[h]);
            const double dla = ly.dla[(size_t)t * d.H + h];
            double ddt = A * dla, dD = 0;
            for (int j = h * d.Pd; j < (h + 1) * d.Pd; j++) {
                da[j] += w.Dsk[h] * dYt[j] + dt * dvb[j];
                dD += dYt[j] * xa[j];
                ddt += xa[j] * dvb[j];
            }
            dDsk[h] += dD;
            dAlog[h] += dt * dla * A; /* ∂(dt·A)/∂A_log = dt·A */
            const double dz = ddt * mq_sigmoid(r[d.Na + h] + w.dtb[h]);
            ddtb[h] += dz;
            dr[d.Na + h] = dz;
        }
        const double *sg = ly.sg + (size_t)t * d.Na;
        for (int i = 0; i < d.Na; i++) dr[i] = da[i] * sg[i] * (1.0 + r[i] * (1.0 - sg[i]));
    }
    memset(dx, 0, sizeof(double) * (size_t)L * d.D);
    mq_linear_bwd(L, d.D, d.Pw, x, d.D, w.W_in, ly.dproj, d.Pw, dx, d.D, dW_in, NULL);
}

static double m2_state_bytes(const mq_cfg *c, int L)
{
    (void)L;
    m2_dims d = dims(c);
    return 4.0 * d.E * d.N;
}

const mq_mixer mq_mixer_mamba2 = {
    .name = "mamba2",
    .size_knob = "n_state",
    .sizes = { 16, 32, 64, 0 },
    .doc = "Mamba-2 SSD as impls/mamba2 (scalar A per head, dt = softplus(.+bias), G=1, D skip, no z "
           "gate/norm) with in_proj D->[x E|B N|C N|dt H], silu on x,B,C, NO conv1d (layer 0 is the "
           "short conv), E = expand*D, head dim E/H; mamba2.py init (dt in [1e-3,0.1], A in [1,16], "
           "D=1), W N(0,0.02), out N(0,0.01); state = 4*E*N bytes (B.2: 2*D*N*4)",
    .n_params = m2_n_params,
    .init = m2_init,
    .cache_doubles = m2_cache_doubles,
    .forward = m2_forward,
    .backward = m2_backward,
    .state_bytes = m2_state_bytes,
};
