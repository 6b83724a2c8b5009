/* mamba.c — trainable Mamba (S6) mixer (issue 7 task models): the selective
 * SSM block of mamba_simple.py (Gu & Dao 2023, arXiv 2312.00752), fp64, with
 * its hand-written backward pass through the scan.
 *
 * Sequence op: exactly impls/mamba.c's selective scan (spec/recurrent.md §5.3),
 * per channel d of E = expand·D and state n < N = n_state:
 *     δ_t[d]   = softplus(δ_raw_t[d] + dt_bias[d])   (PyTorch threshold 20)
 *     h_t[d,n] = exp(δ_t[d] A[d,n]) h_{t−1}[d,n] + δ_t[d] B_t[n] u_t[d]    (B̄ = δB)
 *     y_t[d]   = (Σ_n C_t[n] h_t[d,n] + D[d] u_t[d]) · silu(z_t[d]),  A = −exp(A_log)
 *
 * Block (mamba_simple.py, no biases but conv and dt_proj):
 *   [x | z] = in_proj(x) (D → 2E);  u = silu(conv1d_k4(x) + b) (depthwise, causal);
 *   [δ_low | B | C] = x_proj(u) (E → R + 2N, R = dt_rank = ceil(D/16));
 *   δ_raw + dt_bias = dt_proj(δ_low) (R → E, with bias); scan; out_proj (E → D).
 *   The conv1d (k = 4) is kept: it is part of the Mamba block and cheap (8·E
 *   MACs per token, a few % of the mixer's time); layer 0 of the B.6 model is
 *   a further short conv, as in Zoology's Based-recipe runs of Mamba. H is
 *   not used.
 * Init: in_proj, x_proj N(0, 0.02), out_proj N(0, 0.02/√(2·n_layers)) = 0.01
 *   (Zoology's _init_weights: Linear re-init, `out_proj` rescaled, n_layers =
 *   2); dt_proj weight U(±R^{−1/2}) and bias softplus⁻¹(dt), dt log-uniform in
 *   [1e-3, 0.1] floored at 1e-4 (mamba_simple dt_init "random", dt_scale 1;
 *   the bias is _no_reinit in Zoology); A_log = log(1..N) (S4D-Real);
 *   D = 1; conv weight and bias U(±1/2) (PyTorch Conv1d default, fan_in 4).
 * State size: Zoology's Mamba d_inner·d_state = E·N floats (2·D·N at expand
 *   2; B.2), fp32 bytes; the conv's 3·E taps are not counted (as Zoology).
 * Backward: BPTT over the scan. The forward keeps h every 8 tokens; the
 *   backward recomputes a chunk's h and exp(δA) and walks it backwards:
 *     dh += C_t g;  dC_t = h_t·g;  dδ += dh ⊙ (A e h_{t−1} + B u);  dB_t = Σ dh δ u;
 *     du += dh δ B;  dA += dh e h_{t−1} δ;  dh ← e ⊙ dh        (g = ∂ℓ/∂y_ssm)
 *   Vector math (exp, softplus, silu) by mq_ssm_core.h's branch-free fp64
 *   kernels (within a few ulp of libm) so the channel loops vectorize.
 */
#include <math.h>
#include <string.h>

#include "../mq.h"
#include "../mq_ops.h"
#include "mq_ssm_core.h"

#define MB_W 4      /* conv width (mamba_simple d_conv) */
#define MB_CHUNK 8 /* checkpoint interval of the scan state */
#define MB_TB 8     /* tokens per block of the cache-free forward */

typedef struct {
    int D, E, N, R, NX; /* NX = R + 2N (x_proj outputs) */
} mb_dims;

static mb_dims dims(const mq_cfg *c)
{
    mb_dims d;
    d.D = c->D;
    d.E = (c->expand > 0 ? c->expand : 2) * c->D;
    d.N = c->n_state;
    d.R = (c->D + 15) / 16;
    d.NX = d.R + 2 * d.N;
    return d;
}

typedef struct {
    const double *Win, *cw, *cb, *Wx, *Wdt, *bdt, *Alog, *Dsk, *Wout;
} mb_par;

static mb_par params(const mb_dims *d, const double *p)
{
    mb_par w;
    w.Win = p;
    w.cw = w.Win + (size_t)2 * d->E * d->D;
    w.cb = w.cw + (size_t)d->E * MB_W;
    w.Wx = w.cb + d->E;
    w.Wdt = w.Wx + (size_t)d->NX * d->E;
    w.bdt = w.Wdt + (size_t)d->E * d->R;
    w.Alog = w.bdt + d->E;
    w.Dsk = w.Alog + (size_t)d->E * d->N;
    w.Wout = w.Dsk + d->E;
    return w;
}

static size_t mb_n_params(const mq_cfg *c)
{
    mb_dims d = dims(c);
    return (size_t)2 * d.E * d.D + (size_t)d.E * MB_W + d.E + (size_t)d.NX * d.E +
           (size_t)d.E * d.R + d.E + (size_t)d.E * d.N + d.E + (size_t)d.D * d.E;
}

static void mb_init(const mq_cfg *c, double *p, uint64_t *rng)
{
    mb_dims d = dims(c);
    mb_par w = params(&d, p);
    mq_fill_normal((double *)w.Win, (size_t)2 * d.E * d.D, 0.02, rng);
    mq_fill_uniform((double *)w.cw, (size_t)d.E * MB_W, -0.5, 0.5, rng);
    mq_fill_uniform((double *)w.cb, (size_t)d.E, -0.5, 0.5, rng);
    mq_fill_normal((double *)w.Wx, (size_t)d.NX * d.E, 0.02, rng);
    const double r = 1.0 / sqrt((double)d.R);
    mq_fill_uniform((double *)w.Wdt, (size_t)d.E * d.R, -r, r, rng);
    for (int e = 0; e < d.E; e++) {
        double dt = exp(log(1e-3) + mq_rng_uniform(rng) * (log(0.1) - log(1e-3)));
        if (dt < 1e-4)
            dt = 1e-4;
        ((double *)w.bdt)[e] = dt + log(-expm1(-dt)); /* softplus⁻¹ */
        for (int n = 0; n < d.N; n++)
            ((double *)w.Alog)[(size_t)e * d.N + n] = log((double)(n + 1));
        ((double *)w.Dsk)[e] = 1.0;
    }
    mq_fill_normal((double *)w.Wout, (size_t)d.D * d.E, 0.01, rng);
}

/* ---- buffers ------------------------------------------------------------------- */

typedef struct {
    double *XZ, *Xh, *XC, *U, *XD, *DP, *DL, *YS, *YV; /* forward rows */
    double *AT, *h, *tmp, *cwT;                        /* A transposed [N][E], state [N][E], 2E,
                                                          conv taps transposed [W][E] */
    double *ck, *hb, *eb, *dh, *dAT;                   /* train: scan checkpoints / recompute */
    double *dYV, *dYS, *dU, *dDL, *dXD, *dXC, *dXZ;    /* train: gradients */
    double *dcwT;                                      /* train: conv tap gradient [W][E] */
} mb_buf;

static int n_chunks(int L) { return (L + MB_CHUNK - 1) / MB_CHUNK; }

/* train: the whole-sequence cache for n = L rows; else n-row blocks (Xh has
 * W − 1 rows of conv history in front) */
static size_t carve(const mb_dims *d, int n, int train, double *c, mb_buf *b)
{
    const size_t nE = (size_t)n * d->E, NE = (size_t)d->N * d->E;
    size_t o = 0;
#define TAKE(ptr, cnt)            \
    do {                          \
        (ptr) = c ? c + o : NULL; \
        o += (cnt) + MQ_CARVE_PAD;               \
    } while (0)
    /* carried state first (its place does not depend on n) */
    TAKE(b->h, NE);
    TAKE(b->AT, NE);
    TAKE(b->tmp, 2 * (size_t)d->E);
    TAKE(b->cwT, (size_t)MB_W * d->E);
    TAKE(b->XZ, 2 * nE);
    TAKE(b->Xh, train ? 0 : (size_t)(n + MB_W - 1) * d->E);
    TAKE(b->XC, nE);
    TAKE(b->U, nE);
    TAKE(b->XD, (size_t)n * d->NX);
    TAKE(b->DP, nE);
    TAKE(b->DL, nE);
    TAKE(b->YS, nE);
    TAKE(b->YV, nE);
    if (train) {
        TAKE(b->ck, (size_t)n_chunks(n) * NE);
        TAKE(b->hb, (size_t)(MB_CHUNK + 1) * NE);
        TAKE(b->eb, (size_t)MB_CHUNK * NE);
        TAKE(b->dh, NE);
        TAKE(b->dAT, NE);
        TAKE(b->dYV, nE);
        TAKE(b->dYS, nE);
        TAKE(b->dU, nE);
        TAKE(b->dDL, nE);
        TAKE(b->dXD, (size_t)n * d->NX);
        TAKE(b->dXC, nE);
        TAKE(b->dXZ, 2 * nE);
        TAKE(b->dcwT, (size_t)MB_W * d->E);
    } else {
        b->ck = b->hb = b->eb = b->dh = b->dAT = NULL;
        b->dYV = b->dYS = b->dU = b->dDL = b->dXD = b->dXC = b->dXZ = b->dcwT = NULL;
    }
#undef TAKE
    return o;
}

static size_t mb_cache_doubles(const mq_cfg *c, int L)
{
    mb_dims d = dims(c);
    mb_buf b;
    return carve(&d, L, 1, NULL, &b);
}

/* ---- forward ----------------------------------------------------------------------- */

/* the scan over n tokens from the state b->h (in place); checkpoints if b->ck */
static void scan_fwd(const mb_dims *d, int n, const mb_par *w, const mb_buf *b)
{
    const int E = d->E, N = d->N;
    double *du = b->tmp;
    for (int t = 0; t < n; t++) {
        if (b->ck && t % MB_CHUNK == 0)
            memcpy(b->ck + (size_t)(t / MB_CHUNK) * N * E, b->h, sizeof(double) * N * E);
        const double *dl = b->DL + (size_t)t * E, *u = b->U + (size_t)t * E;
        const double *Bt = b->XD + (size_t)t * d->NX + d->R, *Ct = Bt + N;
        double *y = b->YS + (size_t)t * E;
#pragma omp simd
        for (int e = 0; e < E; e++) {
            du[e] = dl[e] * u[e];
            y[e] = w->Dsk[e] * u[e];
        }
        for (int k = 0; k < N; k++) {
            const double *a = b->AT + (size_t)k * E;
            double *hk = b->h + (size_t)k * E;
            const double bk = Bt[k], ck = Ct[k];
#pragma omp simd
            for (int e = 0; e < E; e++) {
                const double hv = fma(mq_exp(dl[e] * a[e]), hk[e], du[e] * bk);
                hk[e] = hv;
                y[e] = fma(ck, hv, y[e]);
            }
        }
    }
}

/* n rows of x → y. Inference blocks: b->Xh holds W − 1 rows of conv history. */
static void span(const mb_dims *d, const mb_par *w, int n, const double *x, double *y,
                 const mb_buf *b, int train)
{
    const int E = d->E;
    const size_t nE = (size_t)n * E;
    mq_linear_fwd(n, d->D, 2 * E, x, d->D, w->Win, NULL, b->XZ, 2 * E);
    if (train) {
        mq_dconv_fwd(n, E, MB_W, b->XZ, 2 * E, b->cwT, w->cb, b->XC, E);
    } else {
        double *Xn = b->Xh + (size_t)(MB_W - 1) * E;
        for (int t = 0; t < n; t++)
            memcpy(Xn + (size_t)t * E, b->XZ + (size_t)t * 2 * E, sizeof(double) * E);
        /* outputs for rows W−1 … of [history | block]; the first W−1 are dropped */
        for (int t = 0; t < n; t++) {
            double *yt = b->XC + (size_t)t * E;
            for (int e = 0; e < E; e++) {
                double s = w->cb[e];
                for (int j = 0; j < MB_W; j++)
                    s += b->cwT[(size_t)j * E + e] * b->Xh[(size_t)(t + j) * E + e];
                yt[e] = s;
            }
        }
        /* keep the last W − 1 rows as the next block's history */
        memmove(b->Xh, b->Xh + (size_t)n * E, sizeof(double) * (MB_W - 1) * E);
    }
    mq_arr_silu(nE, b->XC, b->U);
    mq_linear_fwd(n, E, d->NX, b->U, E, w->Wx, NULL, b->XD, d->NX);
    mq_linear_fwd(n, d->R, E, b->XD, d->NX, w->Wdt, w->bdt, b->DP, E);
#pragma omp simd
    for (size_t i = 0; i < nE; i++)
        b->DL[i] = mq_vsoftplus20(b->DP[i]);
    scan_fwd(d, n, w, b);
    for (int t = 0; t < n; t++) {
        const double *z = b->XZ + (size_t)t * 2 * E + E, *ys = b->YS + (size_t)t * E;
        double *yv = b->YV + (size_t)t * E;
#pragma omp simd
        for (int e = 0; e < E; e++)
            yv[e] = ys[e] * mq_vsilu(z[e]);
    }
    mq_linear_fwd(n, E, d->D, b->YV, E, w->Wout, NULL, y, d->D);
}

/* per-call parameter layouts: A = −exp(A_log) transposed [N][E], conv taps [W][E] */
static void set_AT(const mb_dims *d, const mb_par *w, const mb_buf *b)
{
    for (int e = 0; e < d->E; e++) {
        for (int k = 0; k < d->N; k++)
            b->AT[(size_t)k * d->E + e] = -exp(w->Alog[(size_t)e * d->N + k]);
        for (int j = 0; j < MB_W; j++)
            b->cwT[(size_t)j * d->E + e] = w->cw[(size_t)e * MB_W + j];
    }
}

static void mb_forward(const mq_cfg *c, const double *p, int L, const double *x, double *y,
                       double *cache)
{
    mb_dims d = dims(c);
    mb_par w = params(&d, p);
    mb_buf b;
    if (cache) {
        carve(&d, L, 1, cache, &b);
        set_AT(&d, &w, &b);
        memset(b.h, 0, sizeof(double) * d.N * d.E);
        span(&d, &w, L, x, y, &b, 1);
        return;
    }
    double work[carve(&d, MB_TB, 0, NULL, &b)];
    carve(&d, MB_TB, 0, work, &b);
    set_AT(&d, &w, &b);
    memset(b.h, 0, sizeof(double) * d.N * d.E);
    memset(b.Xh, 0, sizeof(double) * (MB_W - 1) * d.E);
    for (int t0 = 0; t0 < L; t0 += MB_TB) {
        const int n = L - t0 < MB_TB ? L - t0 : MB_TB;
        span(&d, &w, n, x + (size_t)t0 * d.D, y + (size_t)t0 * d.D, &b, 0);
    }
}

/* ---- backward ---------------------------------------------------------------------- */

/* the scan's backward: g = dYS rows (∂ℓ/∂y_ssm); accumulates dU, writes dDL
 * and the B, C columns of dXD, accumulates dAT */
static void scan_bwd(const mb_dims *d, int L, const mb_buf *b)
{
    const int E = d->E, N = d->N;
    const size_t NE = (size_t)N * E;
    memset(b->dh, 0, sizeof(double) * NE);
    memset(b->dAT, 0, sizeof(double) * NE);
    for (int ch = n_chunks(L) - 1; ch >= 0; ch--) {
        const int t0 = ch * MB_CHUNK, t1 = t0 + MB_CHUNK < L ? t0 + MB_CHUNK : L;
        /* recompute: hb[j] = h_{t0+j−1}, eb[j] = exp(δ_{t0+j} A) */
        memcpy(b->hb, b->ck + (size_t)ch * NE, sizeof(double) * NE);
        for (int t = t0; t < t1; t++) {
            const int j = t - t0;
            const double *dl = b->DL + (size_t)t * E, *u = b->U + (size_t)t * E;
            const double *Bt = b->XD + (size_t)t * d->NX + d->R;
            for (int k = 0; k < N; k++) {
                const double *a = b->AT + (size_t)k * E, *hp = b->hb + (size_t)j * NE + (size_t)k * E;
                double *hn = b->hb + (size_t)(j + 1) * NE + (size_t)k * E;
                double *ek = b->eb + (size_t)j * NE + (size_t)k * E;
                const double bk = Bt[k];
#pragma omp simd
                for (int e = 0; e < E; e++) {
                    const double ex = mq_exp(dl[e] * a[e]);
                    ek[e] = ex;
                    hn[e] = fma(ex, hp[e], dl[e] * u[e] * bk);
                }
            }
        }
        for (int t = t1 - 1; t >= t0; t--) {
            const int j = t - t0;
            const double *dl = b->DL + (size_t)t * E, *u = b->U + (size_t)t * E;
            const double *Bt = b->XD + (size_t)t * d->NX + d->R, *Ct = Bt + N;
            const double *g = b->dYS + (size_t)t * E;
            double *dBt = b->dXD + (size_t)t * d->NX + d->R, *dCt = dBt + N;
            double *du = b->dU + (size_t)t * E, *ddl = b->dDL + (size_t)t * E;
            for (int e = 0; e < E; e++)
                ddl[e] = 0.0;
            for (int k = 0; k < N; k++) {
                const double *a = b->AT + (size_t)k * E;
                const double *hc = b->hb + (size_t)(j + 1) * NE + (size_t)k * E;
                const double *hp = b->hb + (size_t)j * NE + (size_t)k * E;
                const double *ek = b->eb + (size_t)j * NE + (size_t)k * E;
                double *dhk = b->dh + (size_t)k * E, *dak = b->dAT + (size_t)k * E;
                const double ck = Ct[k], bk = Bt[k];
                double sc = 0.0, sb = 0.0;
#pragma omp simd reduction(+ : sc, sb)
                for (int e = 0; e < E; e++) {
                    sc = fma(hc[e], g[e], sc);
                    const double dhv = fma(ck, g[e], dhk[e]);
                    const double eh = ek[e] * hp[e];
                    ddl[e] = fma(dhv, fma(a[e], eh, bk * u[e]), ddl[e]);
                    const double dlu = dl[e] * u[e];
                    sb = fma(dhv, dlu, sb);
                    du[e] = fma(dhv, dl[e] * bk, du[e]);
                    dak[e] = fma(dhv, eh * dl[e], dak[e]);
                    dhk[e] = dhv * ek[e];
                }
                dCt[k] = sc;
                dBt[k] = sb;
            }
        }
    }
}

static void mb_backward(const mq_cfg *c, const double *p, int L, const double *x, double *cache,
                        const double *dy, double *dx, double *dp)
{
    mb_dims d = dims(c);
    mb_par w = params(&d, p);
    mb_par g = params(&d, dp);
    mb_buf b;
    carve(&d, L, 1, cache, &b);
    const int E = d.E;
    const size_t nE = (size_t)L * E;

    /* out_proj */
    memset(b.dYV, 0, sizeof(double) * nE);
    mq_linear_bwd(L, E, d.D, b.YV, E, w.Wout, dy, d.D, b.dYV, E, (double *)g.Wout, NULL);
    /* gate and D skip: yv = ys ⊙ silu(z), ys = y_ssm + D u */
    double *dDsk = (double *)g.Dsk;
    for (int t = 0; t < L; t++) {
        const double *z = b.XZ + (size_t)t * 2 * E + E, *ys = b.YS + (size_t)t * E;
        const double *dyv = b.dYV + (size_t)t * E, *u = b.U + (size_t)t * E;
        double *dys = b.dYS + (size_t)t * E, *dz = b.dXZ + (size_t)t * 2 * E + E;
        double *du = b.dU + (size_t)t * E;
#pragma omp simd
        for (int e = 0; e < E; e++) {
            dys[e] = dyv[e] * mq_vsilu(z[e]);
            dz[e] = dyv[e] * ys[e] * mq_vdsilu(z[e]);
            du[e] = w.Dsk[e] * dys[e];
            dDsk[e] += dys[e] * u[e];
        }
    }
    /* the scan */
    memset(b.dXD, 0, sizeof(double) * (size_t)L * d.NX);
    scan_bwd(&d, L, &b);
    double *dAlog = (double *)g.Alog;
    for (int e = 0; e < E; e++)
        for (int k = 0; k < d.N; k++)
            dAlog[(size_t)e * d.N + k] += b.dAT[(size_t)k * E + e] * b.AT[(size_t)k * E + e];
    /* δ = softplus(dt_proj(δ_low)) */
    double *dDP = b.dDL; /* in place */
#pragma omp simd
    for (size_t i = 0; i < nE; i++)
        dDP[i] = b.dDL[i] * mq_vdsoftplus20(b.DP[i]);
    mq_linear_bwd(L, d.R, E, b.XD, d.NX, w.Wdt, dDP, E, b.dXD, d.NX, (double *)g.Wdt, (double *)g.bdt);
    /* x_proj */
    mq_linear_bwd(L, E, d.NX, b.U, E, w.Wx, b.dXD, d.NX, b.dU, E, (double *)g.Wx, NULL);
    /* u = silu(conv) */
#pragma omp simd
    for (size_t i = 0; i < nE; i++)
        b.dXC[i] = b.dU[i] * mq_vdsilu(b.XC[i]);
    for (int t = 0; t < L; t++)
        memset(b.dXZ + (size_t)t * 2 * E, 0, sizeof(double) * E);
    memset(b.dcwT, 0, sizeof(double) * MB_W * E);
    mq_dconv_bwd(L, E, MB_W, b.XZ, 2 * E, b.cwT, b.dXC, E, b.dXZ, 2 * E, b.dcwT, (double *)g.cb);
    for (int e = 0; e < E; e++)
        for (int j = 0; j < MB_W; j++)
            ((double *)g.cw)[(size_t)e * MB_W + j] += b.dcwT[(size_t)j * E + e];
    /* in_proj */
    memset(dx, 0, sizeof(double) * (size_t)L * d.D);
    mq_linear_bwd(L, d.D, 2 * E, x, d.D, w.Win, b.dXZ, 2 * E, dx, d.D, (double *)g.Win, NULL);
}

/* Zoology: d_inner · d_state floats (= 2·D·N at expand 2), fp32 bytes */
static double mb_state_bytes(const mq_cfg *c, int L)
{
    (void)L;
    mb_dims d = dims(c);
    return 4.0 * d.E * (double)d.N;
}

const mq_mixer mq_mixer_mamba = {
    .name = "mamba",
    .size_knob = "n_state",
    .sizes = { 4, 8, 16, 0 },
    .doc = "mamba_simple block (expand 2, conv1d k4 kept, dt_rank ceil(D/16)) around impls/mamba.c's "
           "S6 scan; A_log=log(1..N), dt log-U[1e-3,0.1], D=1, Linear N(0,0.02), out_proj 0.01; "
           "state 4*E*N bytes (Zoology 2*D*N)",
    .n_params = mb_n_params,
    .init = mb_init,
    .cache_doubles = mb_cache_doubles,
    .forward = mb_forward,
    .backward = mb_backward,
    .state_bytes = mb_state_bytes,
};
