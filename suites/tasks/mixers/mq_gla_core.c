/* mq_gla_core.c — see mq_gla_core.h.
 *
 * Forward, per token t (state rows i):
 *   standard  S[i] = a_i S[i] + k_i v ;  r += q_i S[i]          (fused per row)
 *   bonus     r += q_i S[i] ;  S[i] = a_i S[i] + k_i v ;  r += (Σ q u k) v
 *   norm      z = a ⊙ z + k ;  d = q·z + eps
 * Backward, per token t in reverse, with G = ∂loss/∂S_t from the later tokens
 * (G' below), d̂ = ∂loss/∂r_t (norm: [do/d, −(do·o)/d], the last entry for z)
 * and Sp = S_{t−1} (v̂ = [v | 1] when norm):
 *   standard  (S_t = a⊙Sp + k v̂ᵀ, r = S_tᵀ q; G_t = G' + q d̂ᵀ)
 *               dq = a⊙(Sp d̂) + k (v̂·d̂)      dk = G' v̂ + q (v̂·d̂)
 *               dv̂ = G'ᵀ k + d̂ (q·k)          dla_i = a_i (G'_i·Sp_i + q_i Sp_i·d̂)
 *               G ← Diag(a) (G' + q d̂ᵀ)
 *   bonus     (r = Spᵀ q + (q·(u⊙k)) v; γ = v·do, β = q·(u⊙k))
 *               dq = Sp do + u⊙k γ            dk = G' v + u⊙q γ
 *               dv = G'ᵀ k + β do              dla_i = a_i G'_i·Sp_i     du += q⊙k γ
 *               G ← Diag(a) G' + q doᵀ
 * Only S_{t−1} is needed, recomputed per chunk from the checkpoint.
 * The quadratic form (end of file) differentiates o = A V̂ (/ den) with
 * A = (Q Kᵀ) ∘ E, E_ts = [s ≤ t] e^{g_t − g_s}: dA = d̂ V̂ᵀ, dV = Aᵀ d̂,
 * dQ = (dA ∘ E) K, dK = (dA ∘ E)ᵀ Q, dg_t = Σ_s (dA∘A)_ts − Σ_t′ (dA∘A)_t′t,
 * d la_u = Σ_{t ≥ u} dg_t.
 *
 * Layout and speed: state rows are padded to Vp = 8⌈V/8⌉ columns (the
 * padding stays 0), z is a separate K-vector. The hot loops run on 8-double
 * vectors (GCC/Clang vector extensions; AVX-512 with -march=native) over
 * groups of up to 8 vectors (64 columns) with the column accumulators (read-out
 * r, dv̂) and the token's v̂, d̂ in registers while the rows stream by; the row
 * dot products are reduced once per (row, group). */
#include "mq_gla_core.h"

#include <math.h>
#include <string.h>

#include "../mq_ops.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi" /* 64-byte vectors in static helpers only */
#endif

typedef double v8d __attribute__((vector_size(64)));
typedef double v4d __attribute__((vector_size(32)));
typedef double v2d __attribute__((vector_size(16)));

static inline v8d ld8(const double *p)
{
    v8d v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void st8(double *p, v8d v) { memcpy(p, &v, sizeof v); }
static inline double hsum8(v8d x)
{
    const v4d a = __builtin_shufflevector(x, x, 0, 1, 2, 3) + __builtin_shufflevector(x, x, 4, 5, 6, 7);
    const v2d b = __builtin_shufflevector(a, a, 0, 1) + __builtin_shufflevector(a, a, 2, 3);
    return b[0] + b[1];
}

static inline int vpad(int V) { return (V + 7) & ~7; }

size_t mq_gla_state_len(const mq_gla_spec *s)
{
    return (size_t)s->K * (size_t)vpad(s->V) + (s->norm ? (size_t)s->K : 0);
}

size_t mq_gla_ckpt_len(const mq_gla_spec *s, int L)
{
    const int C = mq_gla_chunk(s);
    return (size_t)((L + C - 1) / C) * mq_gla_state_len(s);
}

/* a [K], v̂ [Vp], r [Vp] */
size_t mq_gla_fwd_scratch(const mq_gla_spec *s) { return (size_t)s->K + 2 * (size_t)vpad(s->V); }

/* chunk states C·st, G st, a [K], x1 x2 x3 [K], v̂ d̂ dv̂ [Vp] */
size_t mq_gla_bwd_scratch(const mq_gla_spec *s)
{
    const size_t st = mq_gla_state_len(s);
    return (size_t)mq_gla_chunk(s) * st + st + 4 * (size_t)s->K + 3 * (size_t)vpad(s->V);
}

/* decay row of token t: a[i] = e^{la}; from io->a when `cached` */
static void decay_row(const mq_gla_spec *s, const mq_gla_io *io, int t, int cached, int write,
                      double *restrict a)
{
    const int K = s->K;
    switch (s->decay) {
    case MQ_GLA_KEY: {
        const size_t lda = io->ld_a > 0 ? (size_t)io->ld_a : (size_t)K;
        if (cached) {
            memcpy(a, io->a + (size_t)t * lda, sizeof(double) * (size_t)K);
        } else {
            mq_vexp(K, io->la + (size_t)t * io->lda, a);
            if (write) memcpy(io->a + (size_t)t * lda, a, sizeof(double) * (size_t)K);
        }
        break;
    }
    case MQ_GLA_SCALAR: {
        double e;
        if (cached) {
            e = io->a[t];
        } else {
            e = exp(io->la[(size_t)t * io->lda]);
            if (write) io->a[t] = e;
        }
        for (int i = 0; i < K; i++) a[i] = e;
        break;
    }
    case MQ_GLA_CONST: {
        const double e = exp(s->log_a);
        for (int i = 0; i < K; i++) a[i] = e;
        break;
    }
    default:
        for (int i = 0; i < K; i++) a[i] = 1.0;
    }
}

/* padded copy of a V-row */
static void load_pad(int V, int Vp, const double *src, double *restrict dst)
{
    memcpy(dst, src, sizeof(double) * (size_t)V);
    for (int j = V; j < Vp; j++) dst[j] = 0.0;
}

/* ---- forward ---------------------------------------------------------------- */

/* one group of NV vectors (columns g·8 .. g·8+8NV) over all K rows:
 * S ← Diag(a) S + k vᵀ and r += Sᵀq (after the update, or before when bonus) */
static inline __attribute__((always_inline)) void fwd_group(const int NV, int K, int Vp, double *S,
                                                            const double *a, const double *k,
                                                            const double *q, const double *vh,
                                                            double *r, int bonus)
{
    v8d vv[8], rr[8];
    for (int u = 0; u < NV; u++) {
        vv[u] = ld8(vh + 8 * u);
        rr[u] = (v8d){ 0 };
    }
    for (int i = 0; i < K; i++) {
        double *row = S + (size_t)i * Vp;
        const double ai = a[i], ki = k[i], qi = q[i];
        for (int u = 0; u < NV; u++) {
            v8d x = ld8(row + 8 * u);
            if (bonus) rr[u] += qi * x;
            x = ai * x + ki * vv[u];
            st8(row + 8 * u, x);
            if (!bonus) rr[u] += qi * x;
        }
    }
    for (int u = 0; u < NV; u++) st8(r + 8 * u, rr[u]);
}

static void fwd_token(int K, int Vp, double *S, const double *a, const double *k, const double *q,
                      const double *vh, double *r, int bonus)
{
    for (int c0 = 0; c0 < Vp; c0 += 64) {
        const int nv = (Vp - c0) / 8 < 8 ? (Vp - c0) / 8 : 8;
        double *Sg = S + c0;
#define FW(n, bo) fwd_group(n, K, Vp, Sg, a, k, q, vh + c0, r + c0, bo)
#define FWN(bo)                                                                                    \
    switch (nv) {                                                                                  \
    case 8: FW(8, bo); break;                                                                      \
    case 7: FW(7, bo); break;                                                                      \
    case 6: FW(6, bo); break;                                                                      \
    case 5: FW(5, bo); break;                                                                      \
    case 4: FW(4, bo); break;                                                                      \
    case 3: FW(3, bo); break;                                                                      \
    case 2: FW(2, bo); break;                                                                      \
    default: FW(1, bo); break;                                                                     \
    }
        FWN(bonus)
#undef FWN
#undef FW
    }
}

/* dst ← Diag(a) src + k vᵀ (+ z) : the backward's recomputation */
static void update_to(int K, int Vp, int norm, const double *src, double *dst, const double *a,
                      const double *k, const double *vh)
{
    for (int i = 0; i < K; i++) {
        const double *s = src + (size_t)i * Vp;
        double *d = dst + (size_t)i * Vp;
        const double ai = a[i], ki = k[i];
        for (int c = 0; c < Vp; c += 8) st8(d + c, ai * ld8(s + c) + ki * ld8(vh + c));
    }
    if (norm) {
        const double *zs = src + (size_t)K * Vp;
        double *zd = dst + (size_t)K * Vp;
        for (int i = 0; i < K; i++) zd[i] = a[i] * zs[i] + k[i];
    }
}

void mq_gla_fwd(const mq_gla_spec *s, int L, const mq_gla_io *io, double *S, double *ckpt,
                double *scratch)
{
    const int K = s->K, V = s->V, Vp = vpad(V), C = mq_gla_chunk(s);
    const size_t st = mq_gla_state_len(s);
    double *a = scratch, *vh = a + K, *r = vh + Vp;
    double *z = S + (size_t)K * Vp;
    for (int t = 0; t < L; t++) {
        if (ckpt && t % C == 0) memcpy(ckpt + (size_t)(t / C) * st, S, sizeof(double) * st);
        const double *q = io->q + (size_t)t * io->ldq, *k = io->k + (size_t)t * io->ldk;
        decay_row(s, io, t, io->a_given, io->a != NULL && !io->a_given, a);
        load_pad(V, Vp, io->v + (size_t)t * io->ldv, vh);
        fwd_token(K, Vp, S, a, k, q, vh, r, s->bonus);
        if (s->bonus) {
            double beta = 0.0;
            for (int i = 0; i < K; i++) beta += q[i] * io->u[i] * k[i];
            for (int j = 0; j < V; j++) r[j] += beta * vh[j];
        }
        double *o = io->o + (size_t)t * io->ldo;
        if (s->norm) {
            double d = s->eps;
            for (int i = 0; i < K; i++) {
                z[i] = a[i] * z[i] + k[i];
                d += q[i] * z[i];
            }
            if (fabs(d) <= s->delta) d += 2.0 * s->delta;
            if (io->den) io->den[t] = d;
            const double inv = 1.0 / d;
            for (int j = 0; j < V; j++) o[j] = r[j] * inv;
        } else {
            memcpy(o, r, sizeof(double) * (size_t)V);
        }
    }
}

/* ---- backward --------------------------------------------------------------- */

/* one group of NV vectors over all K rows: row dots x1 += Sp·d̂, x2 += G·v̂,
 * x3 += G·Sp (if want3); dv̂ = Gᵀk (this group's columns); then
 * G ← a (G + q d̂ᵀ) (standard) or a G + q d̂ᵀ (bonus). */
static inline __attribute__((always_inline)) void bwd_group(const int NV, int K, int Vp,
                                                            const double *Sp, double *G,
                                                            const double *a, const double *k,
                                                            const double *q, const double *vh,
                                                            const double *dh, double *dvh,
                                                            double *x1, double *x2, double *x3,
                                                            int want3, int bonus)
{
    v8d vv[8], dd[8], acc[8];
    for (int u = 0; u < NV; u++) {
        vv[u] = ld8(vh + 8 * u);
        dd[u] = ld8(dh + 8 * u);
        acc[u] = (v8d){ 0 };
    }
    for (int i = 0; i < K; i++) {
        const double *sp = Sp + (size_t)i * Vp;
        double *g = G + (size_t)i * Vp;
        const double ai = a[i], ki = k[i], qi = q[i];
        v8d y1 = { 0 }, y2 = { 0 }, y3 = { 0 };
        for (int u = 0; u < NV; u++) {
            const v8d sv = ld8(sp + 8 * u);
            v8d gv = ld8(g + 8 * u);
            y1 += sv * dd[u];
            y2 += gv * vv[u];
            if (want3) y3 += gv * sv;
            acc[u] += ki * gv;
            gv = bonus ? ai * gv + qi * dd[u] : ai * (gv + qi * dd[u]);
            st8(g + 8 * u, gv);
        }
        x1[i] += hsum8(y1);
        x2[i] += hsum8(y2);
        if (want3) x3[i] += hsum8(y3);
    }
    for (int u = 0; u < NV; u++) st8(dvh + 8 * u, acc[u]);
}

static void bwd_token(int K, int Vp, const double *Sp, double *G, const double *a, const double *k,
                      const double *q, const double *vh, const double *dh, double *dvh, double *x1,
                      double *x2, double *x3, int want3, int bonus)
{
    for (int c0 = 0; c0 < Vp; c0 += 64) {
        const int nv = (Vp - c0) / 8 < 8 ? (Vp - c0) / 8 : 8;
        const double *S0 = Sp + c0;
        double *G0 = G + c0;
        /* (making want3/bonus compile-time constants here measured 20% slower) */
#define BW(n, w3, bo)                                                                              \
    bwd_group(n, K, Vp, S0, G0, a, k, q, vh + c0, dh + c0, dvh + c0, x1, x2, x3, w3, bo)
#define BWN(w3, bo)                                                                                \
    switch (nv) {                                                                                  \
    case 8: BW(8, w3, bo); break;                                                                  \
    case 7: BW(7, w3, bo); break;                                                                  \
    case 6: BW(6, w3, bo); break;                                                                  \
    case 5: BW(5, w3, bo); break;                                                                  \
    case 4: BW(4, w3, bo); break;                                                                  \
    case 3: BW(3, w3, bo); break;                                                                  \
    case 2: BW(2, w3, bo); break;                                                                  \
    default: BW(1, w3, bo); break;                                                                 \
    }
        BWN(want3, bonus)
#undef BWN
#undef BW
    }
}

void mq_gla_bwd(const mq_gla_spec *s, int L, const mq_gla_io *io, const double *ckpt,
                const mq_gla_grad *g, double *scratch)
{
    const int K = s->K, V = s->V, Vp = vpad(V), C = mq_gla_chunk(s);
    const size_t st = mq_gla_state_len(s), zo = (size_t)K * Vp;
    const int want3 = s->decay == MQ_GLA_KEY || s->decay == MQ_GLA_SCALAR;
    const int cached = io->a != NULL;
    double *buf = scratch, *G = buf + (size_t)C * st, *a = G + st, *x1 = a + K, *x2 = x1 + K,
           *x3 = x2 + K, *vh = x3 + K, *dh = vh + Vp, *dvh = dh + Vp;
    memset(G, 0, sizeof(double) * st);
    const int nc = (L + C - 1) / C;
    for (int c = nc - 1; c >= 0; c--) {
        const int c0 = c * C, n = L - c0 < C ? L - c0 : C;
        /* buf[j] = S_{c0+j−1}, j = 0..n−1 */
        memcpy(buf, ckpt + (size_t)c * st, sizeof(double) * st);
        for (int j = 0; j + 1 < n; j++) {
            const int t = c0 + j;
            decay_row(s, io, t, cached, 0, a);
            load_pad(V, Vp, io->v + (size_t)t * io->ldv, vh);
            update_to(K, Vp, s->norm, buf + (size_t)j * st, buf + (size_t)(j + 1) * st, a,
                      io->k + (size_t)t * io->ldk, vh);
        }
        for (int t = c0 + n - 1; t >= c0; t--) {
            const double *Sp = buf + (size_t)(t - c0) * st;
            const double *q = io->q + (size_t)t * io->ldq, *k = io->k + (size_t)t * io->ldk;
            const double *dout = g->dout + (size_t)t * g->lddo;
            double *dq = g->dq + (size_t)t * g->lddq, *dk = g->dk + (size_t)t * g->lddk;
            double *dv = g->dv + (size_t)t * g->lddv;
            decay_row(s, io, t, cached, 0, a);
            load_pad(V, Vp, io->v + (size_t)t * io->ldv, vh);
            for (int i = 0; i < K; i++) x1[i] = x2[i] = x3[i] = 0.0;
            double dhz = 0.0; /* d̂ of the z column (norm) */
            if (s->norm) {
                const double *o = io->o + (size_t)t * io->ldo;
                const double inv = 1.0 / io->den[t];
                double od = 0.0;
                for (int j = 0; j < V; j++) {
                    dh[j] = dout[j] * inv;
                    od += dout[j] * o[j];
                }
                for (int j = V; j < Vp; j++) dh[j] = 0.0;
                dhz = -od * inv;
            } else {
                load_pad(V, Vp, dout, dh);
            }
            double *dla = s->decay == MQ_GLA_KEY ? g->dla + (size_t)t * g->ldda : NULL;
            double dla_sum = 0.0;
            if (s->norm) { /* the z column: v̂ entry 1, d̂ entry dhz */
                const double *zp = Sp + zo;
                double *gz = G + zo;
                for (int i = 0; i < K; i++) {
                    x1[i] = zp[i] * dhz;
                    x2[i] = gz[i];
                    x3[i] = gz[i] * zp[i];
                    gz[i] = a[i] * (gz[i] + q[i] * dhz);
                }
            }
            bwd_token(K, Vp, Sp, G, a, k, q, vh, dh, dvh, x1, x2, x3, want3, s->bonus);
            if (s->bonus) {
                double gam = 0.0, beta = 0.0;
                for (int j = 0; j < V; j++) gam += vh[j] * dout[j];
                for (int i = 0; i < K; i++) beta += q[i] * io->u[i] * k[i];
                for (int i = 0; i < K; i++) {
                    const double ui = io->u[i];
                    dq[i] = x1[i] + ui * k[i] * gam;
                    dk[i] = x2[i] + ui * q[i] * gam;
                    const double d = a[i] * x3[i];
                    if (dla) dla[i] = d;
                    dla_sum += d;
                    g->du[i] += q[i] * k[i] * gam;
                }
                for (int j = 0; j < V; j++) dv[j] = dvh[j] + beta * dout[j];
            } else {
                double vd = dhz, qk = 0.0;
                for (int j = 0; j < V; j++) vd += vh[j] * dh[j];
                for (int i = 0; i < K; i++) qk += q[i] * k[i];
                for (int i = 0; i < K; i++) {
                    dq[i] = a[i] * x1[i] + k[i] * vd;
                    dk[i] = x2[i] + q[i] * vd;
                    const double d = a[i] * (x3[i] + q[i] * x1[i]);
                    if (dla) dla[i] = d;
                    dla_sum += d;
                }
                for (int j = 0; j < V; j++) dv[j] = dvh[j] + dh[j] * qk;
            }
            if (s->decay == MQ_GLA_SCALAR) g->dla[(size_t)t * g->ldda] = dla_sum;
        }
    }
}

/* ---- the quadratic form and the training entry points ------------------------ */

int mq_gla_use_quad(const mq_gla_spec *s, int L)
{
    if (s->bonus || s->decay == MQ_GLA_KEY || s->form == 1) return 0;
    if (s->form == 2) return 1;
    const double Vw = s->V + (s->norm ? 1.0 : 0.0);
    return (double)L * (s->K + Vw) < 5.0 * s->K * vpad(s->V); /* measured crossover ≈ 5 (Zen4) */
}

size_t mq_gla_train_len(const mq_gla_spec *s, int L)
{
    if (mq_gla_use_quad(s, L)) return 2 * (size_t)L * L + (size_t)L; /* A, E, g */
    return mq_gla_state_len(s) + mq_gla_ckpt_len(s, L);
}

size_t mq_gla_train_scratch(const mq_gla_spec *s, int L)
{
    if (mq_gla_use_quad(s, L)) return (size_t)L * L + (size_t)L * s->V + 3 * (size_t)L; /* dA, d̂, sums */
    return mq_max_sz(mq_gla_fwd_scratch(s), mq_gla_bwd_scratch(s));
}

/* g_t: inclusive cumulative log-decay */
static void cum_decay(const mq_gla_spec *s, int L, const mq_gla_io *io, double *g)
{
    double acc = 0.0;
    for (int t = 0; t < L; t++) {
        acc += s->decay == MQ_GLA_SCALAR ? io->la[(size_t)t * io->lda] : s->decay == MQ_GLA_CONST ? s->log_a : 0.0;
        g[t] = acc;
    }
}

static void quad_fwd(const mq_gla_spec *s, int L, const mq_gla_io *io, double *tb)
{
    const int K = s->K, V = s->V;
    double *A = tb, *E = A + (size_t)L * L, *g = E + (size_t)L * L;
    cum_decay(s, L, io, g);
    mq_gemm(0, 1, L, L, K, 1.0, io->q, io->ldq, io->k, io->ldk, 0.0, A, L);
    for (int t = 0; t < L; t++) {
        double *At = A + (size_t)t * L, *Et = E + (size_t)t * L;
        if (s->decay == MQ_GLA_NONE) {
            for (int u = 0; u <= t; u++) Et[u] = 1.0;
        } else {
            for (int u = 0; u <= t; u++) Et[u] = g[t] - g[u];
            mq_vexp(t + 1, Et, Et);
        }
        double den = s->eps;
        for (int u = 0; u <= t; u++) {
            At[u] *= Et[u];
            den += At[u];
        }
        for (int u = t + 1; u < L; u++) At[u] = Et[u] = 0.0;
        if (s->norm) {
            if (fabs(den) <= s->delta) den += 2.0 * s->delta;
            io->den[t] = den;
        }
    }
    mq_gemm(0, 0, L, V, L, 1.0, A, L, io->v, io->ldv, 0.0, io->o, io->ldo);
    if (s->norm)
        for (int t = 0; t < L; t++) {
            const double inv = 1.0 / io->den[t];
            double *o = io->o + (size_t)t * io->ldo;
            for (int j = 0; j < V; j++) o[j] *= inv;
        }
}

static void quad_bwd(const mq_gla_spec *s, int L, const mq_gla_io *io, double *tb, const mq_gla_grad *g,
                     double *scratch)
{
    const int K = s->K, V = s->V;
    double *A = tb, *E = A + (size_t)L * L;
    double *dA = scratch, *dh = dA + (size_t)L * L, *rs = dh + (size_t)L * V, *cs = rs + L, *dg = cs + L;
    for (int t = 0; t < L; t++) {
        const double *dout = g->dout + (size_t)t * g->lddo;
        const double inv = s->norm ? 1.0 / io->den[t] : 1.0;
        for (int j = 0; j < V; j++) dh[(size_t)t * V + j] = dout[j] * inv;
    }
    mq_gemm(0, 1, L, L, V, 1.0, dh, V, io->v, io->ldv, 0.0, dA, L);
    for (int t = 0; t < L; t++) cs[t] = 0.0;
    for (int t = 0; t < L; t++) {
        double dden = 0.0; /* norm: −(do·o)/den, added to every A_ts of the row */
        if (s->norm) {
            const double *o = io->o + (size_t)t * io->ldo, *dout = g->dout + (size_t)t * g->lddo;
            for (int j = 0; j < V; j++) dden -= dout[j] * o[j];
            dden /= io->den[t];
        }
        double *dAt = dA + (size_t)t * L;
        const double *At = A + (size_t)t * L, *Et = E + (size_t)t * L;
        double r = 0.0;
        for (int u = 0; u <= t; u++) {
            const double d = dAt[u] + dden, w = d * At[u];
            r += w;
            cs[u] += w;
            dAt[u] = d * Et[u]; /* dB */
        }
        for (int u = t + 1; u < L; u++) dAt[u] = 0.0;
        rs[t] = r;
    }
    mq_gemm(1, 0, L, V, L, 1.0, A, L, dh, V, 0.0, g->dv, g->lddv);
    mq_gemm(0, 0, L, K, L, 1.0, dA, L, io->k, io->ldk, 0.0, g->dq, g->lddq);
    mq_gemm(1, 0, L, K, L, 1.0, dA, L, io->q, io->ldq, 0.0, g->dk, g->lddk);
    if (s->decay == MQ_GLA_SCALAR) { /* dg_t = Σ_s w_ts − Σ_t' w_t't; dla_u = Σ_{t ≥ u} dg_t */
        double acc = 0.0;
        for (int t = L - 1; t >= 0; t--) {
            dg[t] = rs[t] - cs[t];
            acc += dg[t];
            g->dla[(size_t)t * g->ldda] = acc;
        }
    }
}

void mq_gla_train_fwd(const mq_gla_spec *s, int L, const mq_gla_io *io, double *tb, double *scratch)
{
    if (mq_gla_use_quad(s, L)) {
        quad_fwd(s, L, io, tb);
        return;
    }
    memset(tb, 0, sizeof(double) * mq_gla_state_len(s));
    mq_gla_fwd(s, L, io, tb, tb + mq_gla_state_len(s), scratch);
}

void mq_gla_train_bwd(const mq_gla_spec *s, int L, const mq_gla_io *io, double *tb,
                      const mq_gla_grad *g, double *scratch)
{
    if (mq_gla_use_quad(s, L)) {
        quad_bwd(s, L, io, tb, g, scratch);
        return;
    }
    mq_gla_bwd(s, L, io, tb + mq_gla_state_len(s), g, scratch);
}
