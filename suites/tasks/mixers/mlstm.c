/* mlstm.c — trainable mLSTM mixer (issue 7 task models): the xLSTM matrix
 * memory (Beck et al., NeurIPS 2024, arXiv 2405.04517) in the xLSTM-7B
 * mLSTM layer form (NX-AI/xlstm xlstm_large/model.py, weight_mode "single"),
 * fp64, with its hand-written backward pass.
 *
 * Cell: exactly impls/mlstm.c's stabilized recurrence (spec/recurrent.md
 * §9.4), per head, key-major C ∈ R^{K×V}, k̂ = k/√K, ε = 1e-6, m_0 = 0:
 *     log f_t = logsigmoid(f̃_t),  m_t = max(log f_t + m_{t−1}, ĩ_t)
 *     f'_t = e^{log f_t + m_{t−1} − m_t},  i'_t = e^{ĩ_t − m_t}
 *     C_t = f'_t C_{t−1} + i'_t k̂_t v_tᵀ,  n_t = f'_t n_{t−1} + i'_t k̂_t
 *     h̃_t = C_tᵀq_t / (max(|n_tᵀq_t|, e^{−m_t}) + ε)
 * (the unstabilized max(|nᵀq|, 1) denominator in stabilized units).
 * Layer (xLSTM-7B mLSTMLayer): q, k (H·K), v (D), o_pre (D) = x W (no bias);
 *   ĩ, f̃ = 15·tanh((x W_{i,f} + b_{i,f})/15) (gate soft cap 15); h̃ = cell;
 *   h = MultiHeadLayerNorm(h̃) (per head over V = D/H, weight [D], no bias,
 *   eps 1e-6); y = (σ(o_pre) ⊙ h) W_out. K = dk per head.
 * Init: q, k, v, o projections N(0, 0.02), W_out N(0, 0.01) (Zoology's
 *   Linear re-init and out_proj rescale with n_layers = 2); gate weights 0,
 *   input-gate bias N(0, 0.1), forget-gate bias linspace(3, 6) over the heads
 *   (3 for H = 1) — xlstm mLSTMCell's init; norm weight 1.
 * The stabilizer m. In exact arithmetic and with ε = 0, h̃ does not depend
 *   on m (C, n and the floor all carry the same factor e^{−m}), so the
 *   gradient through m vanishes; xlstm's autograd backends differentiate
 *   through it anyway (nothing is detached), fused kernels may treat m as a
 *   constant. With ε > 0, h̃ = C̃ᵀq/(max(|ñᵀq|, 1) + ε e^{m}) (ñ, C̃ the
 *   unstabilized memory) does depend on m, by O(ε e^{m}/max(|ñᵀq|, 1)) = O(ε)
 *   relative. This backward differentiates the implemented function exactly —
 *   through f', i', the floor e^{−m_t} and the max (the branch the forward
 *   took) — so the m-terms cancel to O(ε) as the math says; dropping them
 *   changed the gradients by ~1e-8 relative in the scratch checks (exact:
 *   ~1e-11 against a 4th-order finite difference).
 * State size: H·(K·V + K + 1) floats (C, n, m; impls/mlstm.c's count), fp32
 *   bytes (B.2 lists no formula for mLSTM).
 * Backward: BPTT, C checkpointed every 16 tokens and recomputed per chunk;
 *   per token one fused pass over the K×V adjoint dC.
 */
#include <math.h>
#include <string.h>

#include "../mq.h"
#include "../mq_ops.h"
#include "mq_ssm_core.h"

#define ML_EPS 1e-6
#define ML_CAP 15.0
#define ML_NORM_EPS 1e-6
#define ML_CHUNK 16
#define ML_TB 16

typedef struct {
    int D, H, K, V, HK, Pw;
} ml_dims;

static ml_dims dims(const mq_cfg *c)
{
    ml_dims d;
    d.D = c->D;
    d.H = c->H > 0 ? c->H : 1;
    d.K = c->dk;
    d.V = d.D / d.H;
    d.HK = d.H * d.K;
    d.Pw = 2 * d.HK + 2 * d.D + 2 * d.H;
    return d;
}

/* W_in [Pw][D] rows q | k | v | o | ĩ | f̃ ; b_i [H] ; b_f [H] ; norm_w [D] ; W_out [D][D] */
typedef struct {
    const double *Win, *bi, *bf, *nw, *Wout;
} ml_par;

static ml_par params(const ml_dims *d, const double *p)
{
    ml_par w;
    w.Win = p;
    w.bi = w.Win + (size_t)d->Pw * d->D;
    w.bf = w.bi + d->H;
    w.nw = w.bf + d->H;
    w.Wout = w.nw + d->D;
    return w;
}

static size_t ml_n_params(const mq_cfg *c)
{
    ml_dims d = dims(c);
    return (size_t)d.Pw * d.D + 2 * (size_t)d.H + d.D + (size_t)d.D * d.D;
}

static void ml_init(const mq_cfg *c, double *p, uint64_t *rng)
{
    ml_dims d = dims(c);
    ml_par w = params(&d, p);
    const size_t nproj = (size_t)(2 * d.HK + 2 * d.D) * d.D;
    mq_fill_normal(p, nproj, 0.02, rng);
    mq_fill_const(p + nproj, (size_t)2 * d.H * d.D, 0.0);
    for (int h = 0; h < d.H; h++) {
        ((double *)w.bi)[h] = 0.1 * mq_rng_normal(rng);
        ((double *)w.bf)[h] = d.H > 1 ? 3.0 + 3.0 * h / (d.H - 1) : 3.0;
    }
    mq_fill_const((double *)w.nw, (size_t)d.D, 1.0);
    mq_fill_normal((double *)w.Wout, (size_t)d.D * d.D, 0.01, rng);
}

/* ---- the cell ------------------------------------------------------------------- */

enum { SC_LF, SC_M, SC_FP, SC_IP, SC_DEN, SC_DD, SC_N }; /* per-token scalars */

typedef struct {
    int L, H, K, V;
    const double *q, *k, *v, *ig, *fg; /* q, k, v: row stride ldx; ig, fg: stride ldg */
    int ldx, ldg;
} ml_io;

typedef struct {
    double *C, *nv, *m;                /* carried state: C [H][K][V], n [H][K], m [H] */
    double *vec;                       /* 4V + 3K */
    double *sc, *nt, *num;             /* per token: scalars [n][H][SC_N], n_t [n][H][K], num [n][H][V] */
    double *ck, *Cb, *dC;              /* train: checkpoints, chunk recompute, adjoint */
} ml_cell;

static int n_chunks(int L) { return (L + ML_CHUNK - 1) / ML_CHUNK; }

static size_t cell_carve(double *c, int n, int H, int K, int V, int train, ml_cell *b)
{
    const size_t KV = (size_t)K * V, nH = (size_t)n * H;
    size_t o = 0;
#define TAKE(ptr, cnt)                    \
    do {                                  \
        (ptr) = c ? c + o : NULL;         \
        o += (cnt) + MQ_CARVE_PAD;        \
    } while (0)
    TAKE(b->C, (size_t)H * KV);
    TAKE(b->nv, (size_t)H * K);
    TAKE(b->m, (size_t)H);
    TAKE(b->vec, 4 * (size_t)V + 3 * (size_t)K);
    TAKE(b->sc, nH * SC_N);
    TAKE(b->nt, nH * K);
    TAKE(b->num, nH * V);
    if (train) {
        TAKE(b->ck, (size_t)n_chunks(n) * H * KV);
        TAKE(b->Cb, (size_t)(ML_CHUNK + 1) * KV);
        TAKE(b->dC, KV);
    } else {
        b->ck = b->Cb = b->dC = NULL;
    }
#undef TAKE
    return o;
}

/* io->L tokens from the state in b (updated); writes h̃ to out [L][ldo] */
static void cell_fwd(const ml_io *io, double *out, int ldo, const ml_cell *b)
{
    const int L = io->L, H = io->H, K = io->K, V = io->V;
    const size_t KV = (size_t)K * V;
    const double ks = 1.0 / sqrt((double)K);
    double *kh = b->vec, *num = kh + K;
    for (int h = 0; h < H; h++) {
        double *C = b->C + (size_t)h * KV, *nv = b->nv + (size_t)h * K;
        double m = b->m[h];
        for (int t = 0; t < L; t++) {
            const size_t th = (size_t)t * H + h;
            if (b->ck && t % ML_CHUNK == 0)
                memcpy(b->ck + ((size_t)(t / ML_CHUNK) * H + h) * KV, C, sizeof(double) * KV);
            const double *qt = io->q + (size_t)t * io->ldx + (size_t)h * K;
            const double *kt = io->k + (size_t)t * io->ldx + (size_t)h * K;
            const double *vt = io->v + (size_t)t * io->ldx + (size_t)h * V;
            const double it = io->ig[(size_t)t * io->ldg + h], ft = io->fg[(size_t)t * io->ldg + h];
            const double lf = mq_logsigmoid(ft);
            const double mt = fmax(lf + m, it);
            const double fp = exp(lf + m - mt), ip = exp(it - mt);
            double *sc = b->sc + th * SC_N;
            double den = 0.0;
            for (int i = 0; i < K; i++) {
                kh[i] = ip * ks * kt[i];
                nv[i] = fma(fp, nv[i], kh[i]);
                den = fma(nv[i], qt[i], den);
            }
            memcpy(b->nt + th * K, nv, sizeof(double) * K);
            for (int j = 0; j < V; j++)
                num[j] = 0.0;
            int i = 0;
            for (; i + 4 <= K; i += 4) {
                double *C0 = C + (size_t)i * V, *C1 = C0 + V, *C2 = C1 + V, *C3 = C2 + V;
                const double k0 = kh[i], k1 = kh[i + 1], k2 = kh[i + 2], k3 = kh[i + 3];
                const double q0 = qt[i], q1 = qt[i + 1], q2 = qt[i + 2], q3 = qt[i + 3];
#pragma omp simd
                for (int j = 0; j < V; j++) {
                    const double c0 = fma(fp, C0[j], k0 * vt[j]), c1 = fma(fp, C1[j], k1 * vt[j]);
                    const double c2 = fma(fp, C2[j], k2 * vt[j]), c3 = fma(fp, C3[j], k3 * vt[j]);
                    C0[j] = c0;
                    C1[j] = c1;
                    C2[j] = c2;
                    C3[j] = c3;
                    num[j] += fma(q0, c0, q1 * c1) + fma(q2, c2, q3 * c3);
                }
            }
            for (; i < K; i++) {
                double *Ci = C + (size_t)i * V;
                const double ki = kh[i], qi = qt[i];
#pragma omp simd
                for (int j = 0; j < V; j++) {
                    const double cv = fma(fp, Ci[j], ki * vt[j]);
                    Ci[j] = cv;
                    num[j] = fma(qi, cv, num[j]);
                }
            }
            const double dd = fmax(fabs(den), exp(-mt)) + ML_EPS;
            double *ot = out + (size_t)t * ldo + (size_t)h * V;
            for (int j = 0; j < V; j++)
                ot[j] = num[j] / dd;
            memcpy(b->num + th * V, num, sizeof(double) * V);
            sc[SC_LF] = lf;
            sc[SC_M] = mt;
            sc[SC_FP] = fp;
            sc[SC_IP] = ip;
            sc[SC_DEN] = den;
            sc[SC_DD] = dd;
            m = mt;
        }
        b->m[h] = m;
    }
}

/* dq, dk, dv [L][lddx]; dig, dfg [L][lddg] (gradients of the cell inputs, overwritten) */
static void cell_bwd(const ml_io *io, const double *dout, int lddo, double *dq, double *dk,
                     double *dv, int lddx, double *dig, double *dfg, int lddg, const ml_cell *b)
{
    const int L = io->L, H = io->H, K = io->K, V = io->V;
    const size_t KV = (size_t)K * V;
    const double ks = 1.0 / sqrt((double)K);
    double *dnum = b->vec, *dvacc = dnum + V, *kh = dvacc + V, *dn = kh + K, *g = dn + K;
    double *dC = b->dC;
    for (int h = 0; h < H; h++) {
        memset(dC, 0, sizeof(double) * KV);
        memset(dn, 0, sizeof(double) * K);
        double dmc = 0.0; /* ∂ℓ/∂m_t from the tokens after t */
        for (int ch = n_chunks(L) - 1; ch >= 0; ch--) {
            const int t0 = ch * ML_CHUNK, t1 = t0 + ML_CHUNK < L ? t0 + ML_CHUNK : L;
            /* Cb[j] = C_{t0+j−1} */
            memcpy(b->Cb, b->ck + ((size_t)ch * H + h) * KV, sizeof(double) * KV);
            for (int t = t0; t + 1 < t1; t++) {
                const size_t th = (size_t)t * H + h;
                const double *sc = b->sc + th * SC_N;
                const double fp = sc[SC_FP], ipk = sc[SC_IP] * ks;
                const double *kt = io->k + (size_t)t * io->ldx + (size_t)h * K;
                const double *vt = io->v + (size_t)t * io->ldx + (size_t)h * V;
                const double *Cp = b->Cb + (size_t)(t - t0) * KV;
                double *Cn = b->Cb + (size_t)(t - t0 + 1) * KV;
                for (int i = 0; i < K; i++) {
                    const double ki = ipk * kt[i];
#pragma omp simd
                    for (int j = 0; j < V; j++)
                        Cn[(size_t)i * V + j] = fma(fp, Cp[(size_t)i * V + j], ki * vt[j]);
                }
            }
            for (int t = t1 - 1; t >= t0; t--) {
                const size_t th = (size_t)t * H + h;
                const double *sc = b->sc + th * SC_N;
                const double lf = sc[SC_LF], mt = sc[SC_M], fp = sc[SC_FP], ip = sc[SC_IP];
                const double den = sc[SC_DEN], dd = sc[SC_DD];
                const double mprev = t > 0 ? b->sc[(th - H) * SC_N + SC_M] : 0.0;
                const double *qt = io->q + (size_t)t * io->ldx + (size_t)h * K;
                const double *kt = io->k + (size_t)t * io->ldx + (size_t)h * K;
                const double *vt = io->v + (size_t)t * io->ldx + (size_t)h * V;
                const double it = io->ig[(size_t)t * io->ldg + h];
                const double *num = b->num + th * V, *nt = b->nt + th * K;
                const double *np = t > 0 ? b->nt + (th - H) * K : NULL;
                const double *Cp = b->Cb + (size_t)(t - t0) * KV;
                const double *dot_ = dout + (size_t)t * lddo + (size_t)h * V;
                /* h̃ = num / dd, dd = max(|den|, e^{−m}) + ε */
                double hd = 0.0;
                for (int j = 0; j < V; j++) {
                    dnum[j] = dot_[j] / dd;
                    hd += dot_[j] * num[j];
                }
                const double ddd = -hd / (dd * dd);
                double dm = dmc, dden = 0.0;
                if (fabs(den) >= exp(-mt))
                    dden = den >= 0 ? ddd : -ddd;
                else
                    dm -= ddd * exp(-mt);
                double vdn = 0.0;
                for (int j = 0; j < V; j++) {
                    vdn += vt[j] * dnum[j];
                    dvacc[j] = 0.0;
                }
                for (int i = 0; i < K; i++) {
                    kh[i] = ks * kt[i];
                    dn[i] = fma(qt[i], dden, dn[i]);
                }
                /* fused pass over dC (adjoint of C_t → C_{t−1}) */
                double dfp = 0.0;
                double *dqt = dq + (size_t)t * lddx + (size_t)h * K;
                int i = 0;
                for (; i + 4 <= K; i += 4) { /* 4 rows per pass: 12 independent dot chains */
                    double *d0 = dC + (size_t)i * V, *d1 = d0 + V, *d2 = d1 + V, *d3 = d2 + V;
                    const double *p0 = Cp + (size_t)i * V, *p1 = p0 + V, *p2 = p1 + V, *p3 = p2 + V;
                    const double q0 = qt[i], q1 = qt[i + 1], q2 = qt[i + 2], q3 = qt[i + 3];
                    const double k0 = kh[i], k1 = kh[i + 1], k2 = kh[i + 2], k3 = kh[i + 3];
                    double a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
                    double c0 = 0, c1 = 0, c2 = 0, c3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3)
                    for (int j = 0; j < V; j++) {
                        const double g0 = fma(q0, dnum[j], d0[j]), g1 = fma(q1, dnum[j], d1[j]);
                        const double g2 = fma(q2, dnum[j], d2[j]), g3 = fma(q3, dnum[j], d3[j]);
                        a0 = fma(g0, vt[j], a0);
                        a1 = fma(g1, vt[j], a1);
                        a2 = fma(g2, vt[j], a2);
                        a3 = fma(g3, vt[j], a3);
                        dvacc[j] += fma(k0, g0, k1 * g1) + fma(k2, g2, k3 * g3);
                        b0 = fma(g0, p0[j], b0);
                        b1 = fma(g1, p1[j], b1);
                        b2 = fma(g2, p2[j], b2);
                        b3 = fma(g3, p3[j], b3);
                        c0 = fma(p0[j], dnum[j], c0);
                        c1 = fma(p1[j], dnum[j], c1);
                        c2 = fma(p2[j], dnum[j], c2);
                        c3 = fma(p3[j], dnum[j], c3);
                        d0[j] = fp * g0;
                        d1[j] = fp * g1;
                        d2[j] = fp * g2;
                        d3[j] = fp * g3;
                    }
                    const double sa[4] = { a0, a1, a2, a3 }, sb[4] = { b0, b1, b2, b3 };
                    const double sc4[4] = { c0, c1, c2, c3 };
                    for (int r = 0; r < 4; r++) {
                        g[i + r] = sa[r] + dn[i + r];
                        dfp += sb[r];
                        dqt[i + r] = fp * sc4[r] + ip * kh[i + r] * vdn + nt[i + r] * dden;
                    }
                }
                for (; i < K; i++) {
                    double *dCi = dC + (size_t)i * V;
                    const double *Cpi = Cp + (size_t)i * V;
                    const double qi = qt[i], ki = kh[i];
                    double s_cv = 0.0, s_cc = 0.0, s_pn = 0.0;
#pragma omp simd reduction(+ : s_cv, s_cc, s_pn)
                    for (int j = 0; j < V; j++) {
                        const double gc = fma(qi, dnum[j], dCi[j]);
                        s_cv = fma(gc, vt[j], s_cv);
                        dvacc[j] = fma(ki, gc, dvacc[j]);
                        s_cc = fma(gc, Cpi[j], s_cc);
                        s_pn = fma(Cpi[j], dnum[j], s_pn);
                        dCi[j] = fp * gc;
                    }
                    g[i] = s_cv + dn[i];
                    dfp += s_cc;
                    /* dq = C_t dnum + n_t dden, C_t dnum = f' C_{t−1} dnum + i' k̂ (v·dnum) */
                    dqt[i] = fp * s_pn + ip * ki * vdn + nt[i] * dden;
                }
                double dip = 0.0;
                double *dkt = dk + (size_t)t * lddx + (size_t)h * K;
                for (int r = 0; r < K; r++) {
                    dip += kh[r] * g[r];
                    dkt[r] = ip * g[r] * ks;
                    if (np)
                        dfp += dn[r] * np[r];
                    dn[r] *= fp;
                }
                double *dvt = dv + (size_t)t * lddx + (size_t)h * V;
                for (int j = 0; j < V; j++)
                    dvt[j] = ip * dvacc[j];
                /* f' = e^{lf + m_{t−1} − m_t}, i' = e^{ĩ − m_t}, m_t = max(lf + m_{t−1}, ĩ) */
                const double gf = dfp * fp, gi = dip * ip;
                double dlf = gf, dit = gi, dmp = gf;
                dm -= gf + gi;
                if (lf + mprev >= it) {
                    dlf += dm;
                    dmp += dm;
                } else {
                    dit += dm;
                }
                dmc = dmp;
                dig[(size_t)t * lddg + h] = dit;
                dfg[(size_t)t * lddg + h] = dlf * mq_sigmoid(-io->fg[(size_t)t * io->ldg + h]);
            }
        }
    }
}

/* ---- the layer ------------------------------------------------------------------- */

typedef struct {
    double *P, *ig, *fg, *Hc, *Xh, *rs, *Hn, *Gt;  /* forward rows */
    double *dP, *dig, *dfg, *dHc, *dHn, *dGt;      /* train */
    ml_cell cell;
} ml_buf;

static size_t carve(const ml_dims *d, int n, int train, double *c, ml_buf *b)
{
    const size_t nH = (size_t)n * d->H, nD = (size_t)n * d->D;
    /* the cell (with the carried state) first */
    size_t o = cell_carve(c, n, d->H, d->K, d->V, train, &b->cell);
#define TAKE(ptr, cnt)            \
    do {                          \
        (ptr) = c ? c + o : NULL; \
        o += (cnt) + MQ_CARVE_PAD; \
    } while (0)
    TAKE(b->P, (size_t)n * d->Pw);
    TAKE(b->ig, nH);
    TAKE(b->fg, nH);
    TAKE(b->Hc, nD);
    TAKE(b->Xh, nD);
    TAKE(b->rs, nH);
    TAKE(b->Hn, nD);
    TAKE(b->Gt, nD);
    if (train) {
        TAKE(b->dP, (size_t)n * d->Pw);
        TAKE(b->dig, nH);
        TAKE(b->dfg, nH);
        TAKE(b->dHc, nD);
        TAKE(b->dHn, nD);
        TAKE(b->dGt, nD);
    } else {
        b->dP = b->dig = b->dfg = b->dHc = b->dHn = b->dGt = NULL;
    }
#undef TAKE
    return o;
}

static size_t ml_cache_doubles(const mq_cfg *c, int L)
{
    ml_dims d = dims(c);
    ml_buf b;
    return carve(&d, L, 1, NULL, &b);
}

static ml_io cell_io(const ml_dims *d, int n, const ml_buf *b)
{
    ml_io io;
    io.L = n;
    io.H = d->H;
    io.K = d->K;
    io.V = d->V;
    io.q = b->P;
    io.k = b->P + d->HK;
    io.v = b->P + 2 * d->HK;
    io.ldx = d->Pw;
    io.ig = b->ig;
    io.fg = b->fg;
    io.ldg = d->H;
    return io;
}

static void span(const ml_dims *d, const ml_par *w, int n, const double *x, double *y, const ml_buf *b)
{
    const int D = d->D, H = d->H, Pw = d->Pw;
    const int oo = 2 * d->HK + D, oi = oo + D, of = oi + H; /* column offsets of o, ĩ, f̃ */
    mq_linear_fwd(n, D, Pw, x, D, w->Win, NULL, b->P, Pw);
    for (int t = 0; t < n; t++)
        for (int h = 0; h < H; h++) {
            const double *Pt = b->P + (size_t)t * Pw;
            b->ig[(size_t)t * H + h] = ML_CAP * tanh((Pt[oi + h] + w->bi[h]) / ML_CAP);
            b->fg[(size_t)t * H + h] = ML_CAP * tanh((Pt[of + h] + w->bf[h]) / ML_CAP);
        }
    ml_io io = cell_io(d, n, b);
    cell_fwd(&io, b->Hc, D, &b->cell);
    mq_headnorm_fwd(n, D, H, 1, ML_NORM_EPS, b->Hc, w->nw, 1, b->Hn, b->Xh, b->rs);
    for (int t = 0; t < n; t++) {
        const double *o = b->P + (size_t)t * Pw + oo, *hn = b->Hn + (size_t)t * D;
        double *gt = b->Gt + (size_t)t * D;
#pragma omp simd
        for (int j = 0; j < D; j++)
            gt[j] = mq_vsigmoid(o[j]) * hn[j];
    }
    mq_linear_fwd(n, D, D, b->Gt, D, w->Wout, NULL, y, D);
}

static void reset_state(const ml_dims *d, const ml_buf *b)
{
    memset(b->cell.C, 0, sizeof(double) * d->H * (size_t)d->K * d->V);
    memset(b->cell.nv, 0, sizeof(double) * d->H * (size_t)d->K);
    memset(b->cell.m, 0, sizeof(double) * d->H);
}

static void ml_forward(const mq_cfg *c, const double *p, int L, const double *x, double *y,
                       double *cache)
{
    ml_dims d = dims(c);
    ml_par w = params(&d, p);
    ml_buf b;
    if (cache) {
        carve(&d, L, 1, cache, &b);
        reset_state(&d, &b);
        span(&d, &w, L, x, y, &b);
        return;
    }
    double work[carve(&d, ML_TB, 0, NULL, &b)];
    carve(&d, ML_TB, 0, work, &b);
    reset_state(&d, &b);
    for (int t0 = 0; t0 < L; t0 += ML_TB) {
        const int n = L - t0 < ML_TB ? L - t0 : ML_TB;
        span(&d, &w, n, x + (size_t)t0 * d.D, y + (size_t)t0 * d.D, &b);
    }
}

static void ml_backward(const mq_cfg *c, const double *p, int L, const double *x, double *cache,
                        const double *dy, double *dx, double *dp)
{
    ml_dims d = dims(c);
    ml_par w = params(&d, p);
    ml_par g = params(&d, dp);
    ml_buf b;
    carve(&d, L, 1, cache, &b);
    const int D = d.D, H = d.H, Pw = d.Pw;
    const int oo = 2 * d.HK + D, oi = oo + D, of = oi + H;
    const size_t nD = (size_t)L * D;

    memset(b.dGt, 0, sizeof(double) * nD);
    mq_linear_bwd(L, D, D, b.Gt, D, w.Wout, dy, D, b.dGt, D, (double *)g.Wout, NULL);
    for (int t = 0; t < L; t++) {
        const double *o = b.P + (size_t)t * Pw + oo, *hn = b.Hn + (size_t)t * D;
        const double *dgt = b.dGt + (size_t)t * D;
        double *dhn = b.dHn + (size_t)t * D, *dpo = b.dP + (size_t)t * Pw + oo;
#pragma omp simd
        for (int j = 0; j < D; j++) {
            const double s = mq_vsigmoid(o[j]);
            dhn[j] = dgt[j] * s;
            dpo[j] = dgt[j] * hn[j] * s * (1.0 - s);
        }
    }
    mq_headnorm_bwd(L, D, H, 1, b.Xh, b.rs, w.nw, 1, b.dHn, b.dHc, (double *)g.nw);
    ml_io io = cell_io(&d, L, &b);
    cell_bwd(&io, b.dHc, D, b.dP, b.dP + d.HK, b.dP + 2 * d.HK, Pw, b.dig, b.dfg, H, &b.cell);
    double *gbi = (double *)g.bi, *gbf = (double *)g.bf;
    for (int t = 0; t < L; t++)
        for (int h = 0; h < H; h++) {
            const size_t th = (size_t)t * H + h;
            const double ci = b.ig[th] / ML_CAP, cf = b.fg[th] / ML_CAP;
            const double zi = b.dig[th] * (1.0 - ci * ci), zf = b.dfg[th] * (1.0 - cf * cf);
            b.dP[(size_t)t * Pw + oi + h] = zi;
            b.dP[(size_t)t * Pw + of + h] = zf;
            gbi[h] += zi;
            gbf[h] += zf;
        }
    memset(dx, 0, sizeof(double) * nD);
    mq_linear_bwd(L, D, Pw, x, D, w.Win, b.dP, Pw, dx, D, (double *)g.Win, NULL);
}

/* H·(K·V + K + 1) floats (C, n, m per head; impls/mlstm.c), fp32 bytes */
static double ml_state_bytes(const mq_cfg *c, int L)
{
    (void)L;
    ml_dims d = dims(c);
    return 4.0 * d.H * ((double)d.K * d.V + d.K + 1);
}

const mq_mixer mq_mixer_mlstm = {
    .name = "mlstm",
    .size_knob = "dk",
    .sizes = { 16, 32, 64, 0 },
    .doc = "xLSTM-7B mLSTM layer: q,k,v,o=xW, gates 15*tanh(xW+b)/15 (b_i~N(0,.1), b_f=linspace(3,6)), "
           "impls/mlstm.c's stabilized cell (exact grad through m), per-head LN, sigmoid(o) gate, "
           "W_out; state 4*H*(dk*dv+dk+1) bytes",
    .n_params = ml_n_params,
    .init = ml_init,
    .cache_doubles = ml_cache_doubles,
    .forward = ml_forward,
    .backward = ml_backward,
    .state_bytes = ml_state_bytes,
};
