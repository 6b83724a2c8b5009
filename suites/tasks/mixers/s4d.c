/* s4d.c — trainable S4D mixer (issue 7 task models): the diagonal LTI
 * state-space layer of state-spaces/s4 `models/s4/s4d.py` (Gu, Gupta, Goel,
 * Ré, NeurIPS 2022, arXiv 2206.11893), fp64, with its hand-written backward —
 * the input-independent (LTI) baseline of the selectivity claims (G3, B.3).
 *
 * Sequence op: exactly impls/s4d.c's function (spec/recurrent.md §8), per
 * channel d of the D model channels (H = D, no input projection, as s4d.py)
 * with M = N/2 complex modes (N = n_state real states as conjugate pairs):
 *     dt = exp(log_dt),  A = −exp(log_A_real) + i·A_imag,  Ā = exp(dt A),
 *     B̄ = (exp(dt A) − 1)/A  (ZOH, B = 1 absorbed in C),
 *     x_t = Ā ⊙ x_{t−1} + B̄ u_t,   y_t = 2 Re Σ_n C_n x_t,n + D u_t
 * (the convolution y = K ∗ u + D u with K_l = 2 Re Σ C B̄ Ā^l, run here as the
 * recurrence; exp(dtA) − 1 formed without cancellation as in impls/s4d.c).
 * Layer (s4d.py S4D): y → GELU (exact, erf) → output_linear = Conv1d(D, 2D,
 *   k = 1) + GLU: out = a ⊙ σ(b), [a | b] = W y + bias. No dropout.
 *   impls/s4d.c is the kernel with its D skip (no activation); GELU and the
 *   GLU projection are s4d.py's layer around it.
 * Init (s4d.py): S4D-Lin A_n = −1/2 + iπn (log_A_real = log ½, A_imag = πn),
 *   log_dt ~ U(log 1e-3, log 1e-1), C complex normal with total variance 1
 *   (re, im ~ N(0, ½)), D ~ N(0, 1), output Conv1d PyTorch default
 *   U(±1/√D) for weight and bias (Zoology's re-init touches nn.Linear only).
 *   s4d.py trains log_dt, A with lr 1e-3 and no weight decay: that is the
 *   trainer's optimizer setting, not applied here.
 * n_state: N real states per channel, M = N/2 complex modes (N odd: ⌊N/2⌋,
 *   at least 1). H is not used. State size: D·N floats, fp32 bytes (the
 *   recurrent state; B.2 lists no formula for S4D).
 * Backward: BPTT over the complex recurrence (gradients as ∂/∂Re + i∂/∂Im):
 *     g_x += 2 g_y conj(C);  g_C += 2 g_y conj(x_t);  g_Ā += g_x conj(x_{t−1});
 *     g_B̄ += g_x u_t;  g_u += Re(g_x conj(B̄));  g_x ← conj(Ā) g_x,
 *   then through ZOH: g_z = conj(Ā) g_Ā + conj(Ā/A) g_B̄ (z = dt A),
 *   g_A = dt g_z − conj(B̄/A) g_B̄,  g_dt = Re(conj(g_z) A). The states are
 *   checkpointed every 32 tokens and recomputed per chunk.
 */
#include <math.h>
#include <string.h>

#include "../mq.h"
#include "../mq_ops.h"
#include "mq_ssm_core.h"

#define S4_CHUNK 32
#define S4_TB 16 /* tokens per block of the cache-free forward */

typedef struct {
    int D, M;
} s4_dims;

static s4_dims dims(const mq_cfg *c)
{
    s4_dims d;
    d.D = c->D;
    d.M = c->n_state / 2 > 0 ? c->n_state / 2 : 1;
    return d;
}

/* parameters: log_dt [D] | log_A_real [D][M] | A_imag [D][M] | C_re [D][M] |
 * C_im [D][M] | Dskip [D] | W [2D][D] | bias [2D] */
typedef struct {
    const double *ldt, *lar, *aim, *cre, *cim, *Dsk, *W, *b;
} s4_par;

static s4_par params(const s4_dims *d, const double *p)
{
    s4_par w;
    const size_t DM = (size_t)d->D * d->M;
    w.ldt = p;
    w.lar = w.ldt + d->D;
    w.aim = w.lar + DM;
    w.cre = w.aim + DM;
    w.cim = w.cre + DM;
    w.Dsk = w.cim + DM;
    w.W = w.Dsk + d->D;
    w.b = w.W + (size_t)2 * d->D * d->D;
    return w;
}

static size_t s4_n_params(const mq_cfg *c)
{
    s4_dims d = dims(c);
    return (size_t)d.D * (2 + 4 * (size_t)d.M) + (size_t)2 * d.D * d.D + 2 * (size_t)d.D;
}

static void s4_init(const mq_cfg *c, double *p, uint64_t *rng)
{
    s4_dims d = dims(c);
    s4_par w = params(&d, p);
    for (int ch = 0; ch < d.D; ch++) {
        ((double *)w.ldt)[ch] = log(1e-3) + mq_rng_uniform(rng) * (log(1e-1) - log(1e-3));
        for (int n = 0; n < d.M; n++) {
            const size_t i = (size_t)ch * d.M + n;
            ((double *)w.lar)[i] = log(0.5);
            ((double *)w.aim)[i] = M_PI * n;
            ((double *)w.cre)[i] = sqrt(0.5) * mq_rng_normal(rng);
            ((double *)w.cim)[i] = sqrt(0.5) * mq_rng_normal(rng);
        }
        ((double *)w.Dsk)[ch] = mq_rng_normal(rng);
    }
    const double bound = 1.0 / sqrt((double)d.D);
    mq_fill_uniform((double *)w.W, (size_t)2 * d.D * d.D, -bound, bound, rng);
    mq_fill_uniform((double *)w.b, (size_t)2 * d.D, -bound, bound, rng);
}

/* ---- discretization, mode-major [M][D] arrays so that channel loops vectorize --- */

typedef struct {
    double *abr, *abi, *bbr, *bbi, *cr, *ci; /* Ā, B̄, C  [M][D] each */
} s4_modes;

static void discretize(const s4_dims *d, const s4_par *w, const s4_modes *m)
{
    for (int ch = 0; ch < d->D; ch++) {
        const double dt = exp(w->ldt[ch]);
        for (int n = 0; n < d->M; n++) {
            const size_t i = (size_t)ch * d->M + n, o = (size_t)n * d->D + ch;
            const double ar = -exp(w->lar[i]), ai = w->aim[i];
            const double a = dt * ar, bb = dt * ai, sh = sin(0.5 * bb), ea = exp(a);
            const double abr = ea * cos(bb), abi = ea * sin(bb);
            /* exp(dtA) − 1 = expm1(a) cos b − 2 sin²(b/2) + i e^a sin b */
            const double er = expm1(a) * cos(bb) - 2.0 * sh * sh, ei = abi;
            const double den = ar * ar + ai * ai; /* (er + i ei)/(ar + i ai) */
            m->abr[o] = abr;
            m->abi[o] = abi;
            m->bbr[o] = (er * ar + ei * ai) / den;
            m->bbi[o] = (ei * ar - er * ai) / den;
            m->cr[o] = w->cre[i];
            m->ci[o] = w->cim[i];
        }
    }
}

/* ---- buffers ---------------------------------------------------------------------- */

typedef struct {
    s4_modes md;
    double *xr, *xi;        /* state [M][D] (re, im) */
    double *Y, *Phi, *G, *Z; /* rows: y (pre-GELU), Φ(y), gelu(y), [a | b] (2D) */
    double *ck, *hr, *hi;   /* train: checkpoints [nc][2][M][D], chunk states [C+1][M][D] re/im */
    double *gxr, *gxi, *gAr, *gAi, *gBr, *gBi, *gCr, *gCi; /* train: [M][D] each */
    double *dZ, *dG, *dY;   /* train: rows */
} s4_buf;

static int n_chunks(int L) { return (L + S4_CHUNK - 1) / S4_CHUNK; }

static size_t carve(const s4_dims *d, int n, int train, double *c, s4_buf *b)
{
    const size_t MD = (size_t)d->M * d->D, nD = (size_t)n * d->D;
    size_t o = 0;
#define TAKE(ptr, cnt)            \
    do {                          \
        (ptr) = c ? c + o : NULL; \
        o += (cnt) + MQ_CARVE_PAD;               \
    } while (0)
    TAKE(b->xr, MD);
    TAKE(b->xi, MD);
    TAKE(b->md.abr, MD);
    TAKE(b->md.abi, MD);
    TAKE(b->md.bbr, MD);
    TAKE(b->md.bbi, MD);
    TAKE(b->md.cr, MD);
    TAKE(b->md.ci, MD);
    TAKE(b->Y, nD);
    TAKE(b->Phi, nD);
    TAKE(b->G, nD);
    TAKE(b->Z, 2 * nD);
    if (train) {
        TAKE(b->ck, (size_t)n_chunks(n) * 2 * MD);
        TAKE(b->hr, (size_t)(S4_CHUNK + 1) * MD);
        TAKE(b->hi, (size_t)(S4_CHUNK + 1) * MD);
        TAKE(b->gxr, MD);
        TAKE(b->gxi, MD);
        TAKE(b->gAr, MD);
        TAKE(b->gAi, MD);
        TAKE(b->gBr, MD);
        TAKE(b->gBi, MD);
        TAKE(b->gCr, MD);
        TAKE(b->gCi, MD);
        TAKE(b->dZ, 2 * nD);
        TAKE(b->dG, nD);
        TAKE(b->dY, nD);
    } else {
        b->ck = b->hr = b->hi = NULL;
        b->gxr = b->gxi = b->gAr = b->gAi = b->gBr = b->gBi = b->gCr = b->gCi = NULL;
        b->dZ = b->dG = b->dY = NULL;
    }
#undef TAKE
    return o;
}

static size_t s4_cache_doubles(const mq_cfg *c, int L)
{
    s4_dims d = dims(c);
    s4_buf b;
    return carve(&d, L, 1, NULL, &b);
}

/* ---- forward --------------------------------------------------------------------------- */

static void span(const s4_dims *d, const s4_par *w, int n, const double *x, double *y, const s4_buf *b)
{
    const int D = d->D, M = d->M;
    const s4_modes *m = &b->md;
    for (int t = 0; t < n; t++) {
        if (b->ck && t % S4_CHUNK == 0) {
            double *c = b->ck + (size_t)(t / S4_CHUNK) * 2 * M * D;
            memcpy(c, b->xr, sizeof(double) * M * D);
            memcpy(c + (size_t)M * D, b->xi, sizeof(double) * M * D);
        }
        const double *u = x + (size_t)t * D;
        double *yt = b->Y + (size_t)t * D;
        for (int ch = 0; ch < D; ch++)
            yt[ch] = w->Dsk[ch] * u[ch];
        for (int k = 0; k < M; k++) {
            const size_t o = (size_t)k * D;
            double *xr = b->xr + o, *xi = b->xi + o;
            const double *ar = m->abr + o, *ai = m->abi + o, *br = m->bbr + o, *bi = m->bbi + o;
            const double *cr = m->cr + o, *ci = m->ci + o;
#pragma omp simd
            for (int ch = 0; ch < D; ch++) {
                const double nr = fma(ar[ch], xr[ch], fma(-ai[ch], xi[ch], br[ch] * u[ch]));
                const double ni = fma(ar[ch], xi[ch], fma(ai[ch], xr[ch], bi[ch] * u[ch]));
                xr[ch] = nr;
                xi[ch] = ni;
                yt[ch] += 2.0 * (cr[ch] * nr - ci[ch] * ni);
            }
        }
    }
    /* GELU (erf), output Conv1d(D, 2D, 1) + GLU */
    const size_t nD = (size_t)n * D;
    for (size_t i = 0; i < nD; i++) {
        const double v = b->Y[i], ph = 0.5 * (1.0 + erf(v * M_SQRT1_2));
        b->Phi[i] = ph;
        b->G[i] = v * ph;
    }
    mq_linear_fwd(n, D, 2 * D, b->G, D, w->W, w->b, b->Z, 2 * D);
    for (int t = 0; t < n; t++) {
        const double *z = b->Z + (size_t)t * 2 * D;
        double *yt = y + (size_t)t * D;
#pragma omp simd
        for (int ch = 0; ch < D; ch++)
            yt[ch] = z[ch] * mq_vsigmoid(z[D + ch]);
    }
}

static void s4_forward(const mq_cfg *c, const double *p, int L, const double *x, double *y,
                       double *cache)
{
    s4_dims d = dims(c);
    s4_par w = params(&d, p);
    s4_buf b;
    const size_t MD = (size_t)d.M * d.D;
    if (cache) {
        carve(&d, L, 1, cache, &b);
        discretize(&d, &w, &b.md);
        memset(b.xr, 0, sizeof(double) * MD);
        memset(b.xi, 0, sizeof(double) * MD);
        span(&d, &w, L, x, y, &b);
        return;
    }
    double work[carve(&d, S4_TB, 0, NULL, &b)];
    carve(&d, S4_TB, 0, work, &b);
    discretize(&d, &w, &b.md);
    memset(b.xr, 0, sizeof(double) * MD);
    memset(b.xi, 0, sizeof(double) * MD);
    for (int t0 = 0; t0 < L; t0 += S4_TB) {
        const int n = L - t0 < S4_TB ? L - t0 : S4_TB;
        span(&d, &w, n, x + (size_t)t0 * d.D, y + (size_t)t0 * d.D, &b);
    }
}

/* ---- backward ---------------------------------------------------------------------------- */

static void s4_backward(const mq_cfg *c, const double *p, int L, const double *x, double *cache,
                        const double *dy, double *dx, double *dp)
{
    s4_dims d = dims(c);
    s4_par w = params(&d, p);
    s4_par g = params(&d, dp);
    s4_buf b;
    carve(&d, L, 1, cache, &b);
    const int D = d.D, M = d.M;
    const size_t MD = (size_t)M * D, nD = (size_t)L * D;
    const s4_modes *m = &b.md;

    /* GLU and the output projection */
    for (int t = 0; t < L; t++) {
        const double *z = b.Z + (size_t)t * 2 * D, *dyt = dy + (size_t)t * D;
        double *dz = b.dZ + (size_t)t * 2 * D;
#pragma omp simd
        for (int ch = 0; ch < D; ch++) {
            const double s = mq_vsigmoid(z[D + ch]);
            dz[ch] = dyt[ch] * s;
            dz[D + ch] = dyt[ch] * z[ch] * s * (1.0 - s);
        }
    }
    memset(b.dG, 0, sizeof(double) * nD);
    mq_linear_bwd(L, D, 2 * D, b.G, D, w.W, b.dZ, 2 * D, b.dG, D, (double *)g.W, (double *)g.b);
    /* GELU: d/dy [y Φ(y)] = Φ(y) + y φ(y) */
#pragma omp simd
    for (size_t i = 0; i < nD; i++) {
        const double v = b.Y[i];
        b.dY[i] = b.dG[i] * (b.Phi[i] + v * 0.3989422804014327 * mq_exp(-0.5 * v * v));
    }
    /* D skip */
    double *dDsk = (double *)g.Dsk;
    for (int t = 0; t < L; t++)
        for (int ch = 0; ch < D; ch++) {
            dDsk[ch] += b.dY[(size_t)t * D + ch] * x[(size_t)t * D + ch];
            dx[(size_t)t * D + ch] = w.Dsk[ch] * b.dY[(size_t)t * D + ch];
        }
    /* the recurrence, backwards with per-chunk recompute */
    memset(b.gxr, 0, sizeof(double) * MD);
    memset(b.gxi, 0, sizeof(double) * MD);
    memset(b.gAr, 0, sizeof(double) * MD);
    memset(b.gAi, 0, sizeof(double) * MD);
    memset(b.gBr, 0, sizeof(double) * MD);
    memset(b.gBi, 0, sizeof(double) * MD);
    memset(b.gCr, 0, sizeof(double) * MD);
    memset(b.gCi, 0, sizeof(double) * MD);
    for (int ch0 = n_chunks(L) - 1; ch0 >= 0; ch0--) {
        const int t0 = ch0 * S4_CHUNK, t1 = t0 + S4_CHUNK < L ? t0 + S4_CHUNK : L;
        const double *ck = b.ck + (size_t)ch0 * 2 * MD;
        memcpy(b.hr, ck, sizeof(double) * MD);
        memcpy(b.hi, ck + MD, sizeof(double) * MD);
        for (int t = t0; t < t1; t++) { /* hr[j + 1] = x_{t0 + j} */
            const int j = t - t0;
            const double *u = x + (size_t)t * D;
            for (int k = 0; k < M; k++) {
                const size_t o = (size_t)k * D;
                const double *pr = b.hr + (size_t)j * MD + o, *pi = b.hi + (size_t)j * MD + o;
                double *qr = b.hr + (size_t)(j + 1) * MD + o, *qi = b.hi + (size_t)(j + 1) * MD + o;
                const double *ar = m->abr + o, *ai = m->abi + o, *br = m->bbr + o, *bi = m->bbi + o;
#pragma omp simd
                for (int ch = 0; ch < D; ch++) {
                    qr[ch] = fma(ar[ch], pr[ch], fma(-ai[ch], pi[ch], br[ch] * u[ch]));
                    qi[ch] = fma(ar[ch], pi[ch], fma(ai[ch], pr[ch], bi[ch] * u[ch]));
                }
            }
        }
        for (int t = t1 - 1; t >= t0; t--) {
            const int j = t - t0;
            const double *u = x + (size_t)t * D, *gy = b.dY + (size_t)t * D;
            double *du = dx + (size_t)t * D;
            for (int k = 0; k < M; k++) {
                const size_t o = (size_t)k * D;
                const double *cr = b.hr + (size_t)(j + 1) * MD + o, *ci = b.hi + (size_t)(j + 1) * MD + o;
                const double *pr = b.hr + (size_t)j * MD + o, *pi = b.hi + (size_t)j * MD + o;
                const double *ar = m->abr + o, *ai = m->abi + o, *br = m->bbr + o, *bi = m->bbi + o;
                const double *Cr = m->cr + o, *Ci = m->ci + o;
                double *gxr = b.gxr + o, *gxi = b.gxi + o, *gAr = b.gAr + o, *gAi = b.gAi + o;
                double *gBr = b.gBr + o, *gBi = b.gBi + o, *gCr = b.gCr + o, *gCi = b.gCi + o;
#pragma omp simd
                for (int ch = 0; ch < D; ch++) {
                    /* y = 2 Re(C x): g_x += 2 g conj(C), g_C += 2 g conj(x) */
                    const double g2 = 2.0 * gy[ch];
                    const double xr = gxr[ch] + g2 * Cr[ch], xi = gxi[ch] - g2 * Ci[ch];
                    gCr[ch] += g2 * cr[ch];
                    gCi[ch] -= g2 * ci[ch];
                    /* x_t = Ā x_{t−1} + B̄ u */
                    gAr[ch] += xr * pr[ch] + xi * pi[ch]; /* g_x conj(x_{t−1}) */
                    gAi[ch] += xi * pr[ch] - xr * pi[ch];
                    gBr[ch] += xr * u[ch];
                    gBi[ch] += xi * u[ch];
                    du[ch] += xr * br[ch] + xi * bi[ch];
                    gxr[ch] = ar[ch] * xr + ai[ch] * xi; /* conj(Ā) g_x */
                    gxi[ch] = ar[ch] * xi - ai[ch] * xr;
                }
            }
        }
    }
    /* through the ZOH discretization to the parameters */
    double *gldt = (double *)g.ldt, *glar = (double *)g.lar, *gaim = (double *)g.aim;
    double *gcre = (double *)g.cre, *gcim = (double *)g.cim;
    for (int ch = 0; ch < D; ch++) {
        const double dt = exp(w.ldt[ch]);
        double gdt = 0.0;
        for (int n = 0; n < M; n++) {
            const size_t i = (size_t)ch * M + n, o = (size_t)n * D + ch;
            gcre[i] += b.gCr[o];
            gcim[i] += b.gCi[o];
            const double Ar = -exp(w.lar[i]), Ai = w.aim[i];
            const double abr = m->abr[o], abi = m->abi[o], bbr = m->bbr[o], bbi = m->bbi[o];
            const double gar = b.gAr[o], gai = b.gAi[o], gbr = b.gBr[o], gbi = b.gBi[o];
            const double den = Ar * Ar + Ai * Ai;
            /* Ā/A and B̄/A */
            const double qr = (abr * Ar + abi * Ai) / den, qi = (abi * Ar - abr * Ai) / den;
            const double sr = (bbr * Ar + bbi * Ai) / den, si = (bbi * Ar - bbr * Ai) / den;
            /* g_z = conj(Ā) g_Ā + conj(Ā/A) g_B̄ */
            const double gzr = abr * gar + abi * gai + qr * gbr + qi * gbi;
            const double gzi = abr * gai - abi * gar + qr * gbi - qi * gbr;
            /* g_A = dt g_z − conj(B̄/A) g_B̄ */
            const double gAr_ = dt * gzr - (sr * gbr + si * gbi);
            const double gAi_ = dt * gzi - (sr * gbi - si * gbr);
            gdt += gzr * Ar + gzi * Ai; /* Re(conj(g_z) A) */
            glar[i] += gAr_ * Ar;       /* ∂Re A/∂log_A_real = Re A */
            gaim[i] += gAi_;
        }
        gldt[ch] += gdt * dt;
    }
}

/* the recurrent state: D·N floats (N real = N/2 complex per channel), fp32 */
static double s4_state_bytes(const mq_cfg *c, int L)
{
    (void)L;
    s4_dims d = dims(c);
    return 4.0 * d.D * 2.0 * d.M;
}

const mq_mixer mq_mixer_s4d = {
    .name = "s4d",
    .size_knob = "n_state",
    .sizes = { 4, 8, 16, 0 },
    .doc = "s4d.py S4D layer: impls/s4d.c's diagonal LTI SSM per channel (N/2 complex modes, ZOH, "
           "S4D-Lin init, dt log-U[1e-3,0.1], D skip), GELU, Conv1d(D,2D)+GLU; no input proj; "
           "state 4*D*N bytes (recurrent state)",
    .n_params = s4_n_params,
    .init = s4_init,
    .cache_doubles = s4_cache_doubles,
    .forward = s4_forward,
    .backward = s4_backward,
    .state_bytes = s4_state_bytes,
};
