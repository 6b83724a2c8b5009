/* mq_delta_core.c — the (gated) delta rule op with its backward pass, and the
 * DeltaNet / Gated DeltaNet layer on it. See mq_delta_core.h. */
#include "mq_delta_core.h"

#include <math.h>
#include <string.h>

#include "../mq_ops.h"
#include "mq_ssm_core.h"

#define DN_L2_EPS 1e-6   /* fla l2norm, impls/deltanet.c */
#define DN_NORM_EPS 1e-5 /* fla RMSNorm o_norm (norm_eps) */

/* ---- the op -------------------------------------------------------------------- */

typedef struct {
    double *qn, *kn, *rq, *rk, *al, *u, *r; /* per token (n·H rows) */
    double *ck;                              /* checkpoints [nchunks][H][K][V], or NULL */
    double *S;                               /* carried state [H][K][V] */
    double *Sb, *dS, *vec;                   /* backward scratch; vec: 6V + 4K */
} delta_bufs;

static int n_chunks(int L) { return (L + MQ_DELTA_CHUNK - 1) / MQ_DELTA_CHUNK; }

/* train = 1: the whole-sequence cache (checkpoints, backward scratch);
 * train = 0: a span of n tokens for inference (state carried in S). */
static size_t delta_carve(double *c, int n, int H, int K, int V, int train, delta_bufs *d)
{
    const size_t LH = (size_t)n * H, KV = (size_t)K * V;
    size_t o = 0;
#define TAKE(ptr, cnt)                    \
    do {                                  \
        (ptr) = c ? c + o : NULL;         \
        o += (cnt) + MQ_CARVE_PAD;                       \
    } while (0)
    /* S first: an inference span of fewer tokens finds the state in place */
    TAKE(d->S, (size_t)H * KV);
    TAKE(d->vec, 6 * (size_t)V + 4 * (size_t)K);
    TAKE(d->qn, LH * K);
    TAKE(d->kn, LH * K);
    TAKE(d->rq, LH);
    TAKE(d->rk, LH);
    TAKE(d->al, LH);
    TAKE(d->u, LH * V);
    TAKE(d->r, LH * V);
    if (train) {
        TAKE(d->ck, (size_t)n_chunks(n) * H * KV);
        TAKE(d->Sb, (size_t)MQ_DELTA_CHUNK * KV);
        TAKE(d->dS, KV);
    } else {
        d->ck = d->Sb = d->dS = NULL;
    }
#undef TAKE
    return o;
}

size_t mq_delta_cache_doubles(int L, int H, int K, int V)
{
    delta_bufs d;
    return delta_carve(NULL, L, H, K, V, 1, &d);
}

size_t mq_delta_span_doubles(int n, int H, int K, int V)
{
    delta_bufs d;
    return delta_carve(NULL, n, H, K, V, 0, &d);
}

static double l2n(double *y, const double *x, int n)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    const double r = 1.0 / sqrt(ss + DN_L2_EPS);
    for (int i = 0; i < n; i++)
        y[i] = x[i] * r;
    return r;
}

/* io->L tokens from the state in b->S (updated in place) */
static void delta_fwd_span(const mq_delta_io *io, double *o, int ldo, const delta_bufs *b)
{
    const int L = io->L, H = io->H, K = io->K, V = io->V;
    const size_t KV = (size_t)K * V;
    const double s = 1.0 / sqrt((double)K);
    double *p = b->vec, *oacc = p + V;

    for (int t = 0; t < L; t++)
        for (int h = 0; h < H; h++) {
            const size_t th = (size_t)t * H + h;
            b->rq[th] = l2n(b->qn + th * K, io->q + (size_t)t * io->ldq + (size_t)h * K, K);
            b->rk[th] = l2n(b->kn + th * K, io->k + (size_t)t * io->ldk + (size_t)h * K, K);
            b->al[th] = io->a ? exp(io->a[(size_t)t * io->lda + h]) : 1.0;
        }

    for (int h = 0; h < H; h++) {
        double *S = b->S + (size_t)h * KV;
        /* p = S_{t−1}ᵀk̂_t for the first token of the span */
        memset(p, 0, sizeof(double) * V);
        for (int i = 0; i < K; i++) {
            const double ki = b->kn[(size_t)h * K + i];
            for (int j = 0; j < V; j++)
                p[j] += ki * S[(size_t)i * V + j];
        }
        for (int t = 0; t < L; t++) {
            const size_t th = (size_t)t * H + h;
            if (b->ck && t % MQ_DELTA_CHUNK == 0)
                memcpy(b->ck + ((size_t)(t / MQ_DELTA_CHUNK) * H + h) * KV, S, sizeof(double) * KV);
            const double al = b->al[th], bt = io->beta[(size_t)t * io->ldb + h];
            const double *vt = io->v + (size_t)t * io->ldv + (size_t)h * V;
            double *ut = b->u + th * V, *rt = b->r + th * V;
            /* p = S_{t−1}ᵀk̂_t from the previous pass; p̃ = α p */
            for (int j = 0; j < V; j++) {
                rt[j] = vt[j] - al * p[j];
                ut[j] = bt * rt[j];
            }
            const double *qn = b->qn + th * K, *kn = b->kn + th * K;
            const double *kn1 = t + 1 < L ? b->kn + (th + H) * K : NULL;
            memset(oacc, 0, sizeof(double) * V);
            memset(p, 0, sizeof(double) * V);
            /* one pass: S ← αS + k̂uᵀ, o = Sᵀq̂, next p = Sᵀk̂_{t+1}; rows in
             * fours so that the o, p accumulators are loaded/stored once per 4 rows */
            int i = 0;
            for (; i + 4 <= K; i += 4) {
                double *S0 = S + (size_t)i * V, *S1 = S0 + V, *S2 = S1 + V, *S3 = S2 + V;
                const double k0 = kn[i], k1 = kn[i + 1], k2 = kn[i + 2], k3 = kn[i + 3];
                const double q0 = qn[i], q1 = qn[i + 1], q2 = qn[i + 2], q3 = qn[i + 3];
                const double n0 = kn1 ? kn1[i] : 0.0, n1 = kn1 ? kn1[i + 1] : 0.0;
                const double n2 = kn1 ? kn1[i + 2] : 0.0, n3 = kn1 ? kn1[i + 3] : 0.0;
#pragma omp simd
                for (int j = 0; j < V; j++) {
                    const double s0 = fma(al, S0[j], k0 * ut[j]), s1 = fma(al, S1[j], k1 * ut[j]);
                    const double s2 = fma(al, S2[j], k2 * ut[j]), s3 = fma(al, S3[j], k3 * ut[j]);
                    S0[j] = s0;
                    S1[j] = s1;
                    S2[j] = s2;
                    S3[j] = s3;
                    oacc[j] += fma(q0, s0, q1 * s1) + fma(q2, s2, q3 * s3);
                    p[j] += fma(n0, s0, n1 * s1) + fma(n2, s2, n3 * s3);
                }
            }
            for (; i < K; i++) {
                double *Si = S + (size_t)i * V;
                const double ki = kn[i], qi = qn[i], k1 = kn1 ? kn1[i] : 0.0;
#pragma omp simd
                for (int j = 0; j < V; j++) {
                    const double sv = fma(al, Si[j], ki * ut[j]);
                    Si[j] = sv;
                    oacc[j] = fma(qi, sv, oacc[j]);
                    p[j] = fma(k1, sv, p[j]);
                }
            }
            double *ot = o + (size_t)t * ldo + (size_t)h * V;
            for (int j = 0; j < V; j++)
                ot[j] = s * oacc[j];
        }
    }
}

void mq_delta_fwd(const mq_delta_io *io, double *o, int ldo, double *cache)
{
    delta_bufs b;
    delta_carve(cache, io->L, io->H, io->K, io->V, 1, &b);
    memset(b.S, 0, sizeof(double) * io->H * (size_t)io->K * io->V);
    delta_fwd_span(io, o, ldo, &b);
}

void mq_delta_span(const mq_delta_io *io, double *o, int ldo, double *work, int first)
{
    delta_bufs b;
    delta_carve(work, io->L, io->H, io->K, io->V, 0, &b);
    if (first)
        memset(b.S, 0, sizeof(double) * io->H * (size_t)io->K * io->V);
    delta_fwd_span(io, o, ldo, &b);
}

/* The backward pass, per head, one fused pass over the rows of dS per token t:
 * the "B" half of token t (needs S_{t−1}: dS̃ = dS + k̂ dpᵀ, ⟨dS̃, S_{t−1}⟩,
 * S_{t−1}dp, S_{t−1}(s do), dS ← α dS̃) and the "A" half of token t − 1
 * (dS += q̂ (s do)ᵀ, du = dSᵀk̂, dk̂ = dS u), rows in blocks of 4 so that the
 * row dot products run as independent accumulator chains. */

/* A half alone (the last token): dS += q̂ sdoᵀ; du = dSᵀk̂; dkn = dS u */
static void bwd_rows_A(int K, int V, double *dS, const double *qn, const double *kn,
                       const double *sdo, const double *ut, double *du, double *dkn)
{
    memset(du, 0, sizeof(double) * V);
    for (int i = 0; i < K; i++) {
        double *dSi = dS + (size_t)i * V;
        const double qi = qn[i], ki = kn[i];
        double acc = 0.0;
#pragma omp simd reduction(+ : acc)
        for (int j = 0; j < V; j++) {
            const double g = fma(qi, sdo[j], dSi[j]);
            dSi[j] = g;
            du[j] = fma(ki, g, du[j]);
            acc = fma(g, ut[j], acc);
        }
        dkn[i] = acc;
    }
}

typedef struct {
    double al;                           /* α_t */
    const double *kn, *Sp, *dp, *sdo;    /* token t: k̂, S_{t−1}, dp, s·do */
    const double *qn1, *kn1, *sdo1, *u1; /* token t − 1 (NULL at t = 0) */
    double *du1;                         /* du of t − 1 (accumulated, zeroed by caller) */
    double *dkn, *dqn, *dkn1;            /* outputs: dkn_t += α S dp, dqn_t = α S sdo, dkn_{t−1} */
} bwd_tok;

/* rows [i0, i0 + R), R ≤ 4; returns Σ ⟨dS̃_i, S_{t−1,i}⟩ over the rows */
static inline double bwd_rows_BA(int V, int i0, int R, double *dS, const bwd_tok *b, int gated)
{
    double a1[4] = { 0, 0, 0, 0 }, a2[4] = { 0, 0, 0, 0 }, a3[4] = { 0, 0, 0, 0 },
           a4[4] = { 0, 0, 0, 0 };
    const double al = b->al;
    for (int r = 0; r < R; r++) {
        const int i = i0 + r;
        double *dSi = dS + (size_t)i * V;
        const double *Spi = b->Sp + (size_t)i * V;
        const double ki = b->kn[i];
        const double q1 = b->qn1 ? b->qn1[i] : 0.0, k1 = b->kn1 ? b->kn1[i] : 0.0;
        const double *sdo1 = b->sdo1 ? b->sdo1 : b->sdo, *u1 = b->u1 ? b->u1 : b->sdo;
        double s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0;
        if (gated) {
#pragma omp simd reduction(+ : s1, s2, s3, s4)
            for (int j = 0; j < V; j++) {
                const double g = fma(ki, b->dp[j], dSi[j]);
                s1 = fma(g, Spi[j], s1);
                s2 = fma(Spi[j], b->dp[j], s2);
                s3 = fma(Spi[j], b->sdo[j], s3);
                const double nd = fma(al, g, q1 * sdo1[j]);
                dSi[j] = nd;
                b->du1[j] = fma(k1, nd, b->du1[j]);
                s4 = fma(nd, u1[j], s4);
            }
        } else {
#pragma omp simd reduction(+ : s2, s3, s4)
            for (int j = 0; j < V; j++) {
                const double g = fma(ki, b->dp[j], dSi[j]);
                s2 = fma(Spi[j], b->dp[j], s2);
                s3 = fma(Spi[j], b->sdo[j], s3);
                const double nd = fma(q1, sdo1[j], g);
                dSi[j] = nd;
                b->du1[j] = fma(k1, nd, b->du1[j]);
                s4 = fma(nd, u1[j], s4);
            }
        }
        a1[r] = s1;
        a2[r] = s2;
        a3[r] = s3;
        a4[r] = s4;
    }
    double dal = 0.0;
    for (int r = 0; r < R; r++) {
        const int i = i0 + r;
        dal += a1[r];
        b->dkn[i] += al * a2[r];
        b->dqn[i] = al * a3[r];
        b->dkn1[i] = a4[r];
    }
    return dal;
}

/* 4 rows interleaved in one j loop (16 independent reductions) */
static inline double bwd_rows_BA4(int V, int i0, double *dS, const bwd_tok *b, int gated)
{
    const double al = b->al;
    double *d0 = dS + (size_t)i0 * V, *d1 = d0 + V, *d2 = d1 + V, *d3 = d2 + V;
    const double *p0 = b->Sp + (size_t)i0 * V, *p1 = p0 + V, *p2 = p1 + V, *p3 = p2 + V;
    const double k0 = b->kn[i0], k1 = b->kn[i0 + 1], k2 = b->kn[i0 + 2], k3 = b->kn[i0 + 3];
    double q10 = 0, q11 = 0, q12 = 0, q13 = 0, k10 = 0, k11 = 0, k12 = 0, k13 = 0;
    if (b->qn1) {
        q10 = b->qn1[i0], q11 = b->qn1[i0 + 1], q12 = b->qn1[i0 + 2], q13 = b->qn1[i0 + 3];
        k10 = b->kn1[i0], k11 = b->kn1[i0 + 1], k12 = b->kn1[i0 + 2], k13 = b->kn1[i0 + 3];
    }
    const double *sdo1 = b->sdo1 ? b->sdo1 : b->sdo, *u1 = b->u1 ? b->u1 : b->sdo;
    const double *dp = b->dp, *sdo = b->sdo;
    double *du1 = b->du1;
    const double ag = gated ? al : 1.0;
    double s1 = 0, x0 = 0, x1 = 0, x2 = 0, x3 = 0, y0 = 0, y1 = 0, y2 = 0, y3 = 0;
    double z0 = 0, z1 = 0, z2 = 0, z3 = 0;
#pragma omp simd reduction(+ : s1, x0, x1, x2, x3, y0, y1, y2, y3, z0, z1, z2, z3)
    for (int j = 0; j < V; j++) {
        const double g0 = fma(k0, dp[j], d0[j]), g1 = fma(k1, dp[j], d1[j]);
        const double g2 = fma(k2, dp[j], d2[j]), g3 = fma(k3, dp[j], d3[j]);
        s1 += g0 * p0[j] + g1 * p1[j] + g2 * p2[j] + g3 * p3[j];
        x0 = fma(p0[j], dp[j], x0);
        x1 = fma(p1[j], dp[j], x1);
        x2 = fma(p2[j], dp[j], x2);
        x3 = fma(p3[j], dp[j], x3);
        y0 = fma(p0[j], sdo[j], y0);
        y1 = fma(p1[j], sdo[j], y1);
        y2 = fma(p2[j], sdo[j], y2);
        y3 = fma(p3[j], sdo[j], y3);
        const double n0 = fma(ag, g0, q10 * sdo1[j]), n1 = fma(ag, g1, q11 * sdo1[j]);
        const double n2 = fma(ag, g2, q12 * sdo1[j]), n3 = fma(ag, g3, q13 * sdo1[j]);
        d0[j] = n0;
        d1[j] = n1;
        d2[j] = n2;
        d3[j] = n3;
        du1[j] += k10 * n0 + k11 * n1 + k12 * n2 + k13 * n3;
        z0 = fma(n0, u1[j], z0);
        z1 = fma(n1, u1[j], z1);
        z2 = fma(n2, u1[j], z2);
        z3 = fma(n3, u1[j], z3);
    }
    b->dkn[i0] += al * x0;
    b->dkn[i0 + 1] += al * x1;
    b->dkn[i0 + 2] += al * x2;
    b->dkn[i0 + 3] += al * x3;
    b->dqn[i0] = al * y0;
    b->dqn[i0 + 1] = al * y1;
    b->dqn[i0 + 2] = al * y2;
    b->dqn[i0 + 3] = al * y3;
    b->dkn1[i0] = z0;
    b->dkn1[i0 + 1] = z1;
    b->dkn1[i0 + 2] = z2;
    b->dkn1[i0 + 3] = z3;
    return gated ? s1 : 0.0;
}

void mq_delta_bwd(const mq_delta_io *io, const double *do_, int lddo, double *dq, double *dk,
                  int lddqk, double *dv, int lddv, double *dbeta, double *da, int lddg,
                  double *cache)
{
    const int L = io->L, H = io->H, K = io->K, V = io->V, gated = io->a != NULL;
    const size_t KV = (size_t)K * V;
    const double s = 1.0 / sqrt((double)K);
    delta_bufs c;
    delta_carve(cache, L, H, K, V, 1, &c);
    double *sdo = c.vec, *sdo1 = sdo + V, *du = sdo1 + V, *du1 = du + V, *dpv = du1 + V;
    double *dqn = dpv + V, *dkn = dqn + K, *dkn1 = dkn + K;
    double *dS = c.dS;
    if (L <= 0)
        return;

    for (int h = 0; h < H; h++) {
        memset(dS, 0, sizeof(double) * KV);
        {   /* A half of the last token */
            const int t = L - 1;
            const size_t th = (size_t)t * H + h;
            const double *dot_ = do_ + (size_t)t * lddo + (size_t)h * V;
            for (int j = 0; j < V; j++)
                sdo[j] = s * dot_[j];
            bwd_rows_A(K, V, dS, c.qn + th * K, c.kn + th * K, sdo, c.u + th * V, du, dkn);
        }
        for (int ch = n_chunks(L) - 1; ch >= 0; ch--) {
            const int t0 = ch * MQ_DELTA_CHUNK;
            const int t1 = t0 + MQ_DELTA_CHUNK < L ? t0 + MQ_DELTA_CHUNK : L;
            /* recompute S_{t−1} for t in [t0, t1): Sb[t − t0] */
            memcpy(c.Sb, c.ck + ((size_t)ch * H + h) * KV, sizeof(double) * KV);
            for (int t = t0; t + 1 < t1; t++) {
                const size_t th = (size_t)t * H + h;
                const double al = c.al[th], *kn = c.kn + th * K, *ut = c.u + th * V;
                const double *Sp = c.Sb + (size_t)(t - t0) * KV;
                double *Sn = c.Sb + (size_t)(t - t0 + 1) * KV;
                for (int i = 0; i < K; i++) {
                    const double ki = kn[i];
                    const double *Spi = Sp + (size_t)i * V;
                    double *Sni = Sn + (size_t)i * V;
#pragma omp simd
                    for (int j = 0; j < V; j++)
                        Sni[j] = fma(al, Spi[j], ki * ut[j]);
                }
            }
            for (int t = t1 - 1; t >= t0; t--) {
                const size_t th = (size_t)t * H + h;
                const double al = c.al[th], bt = io->beta[(size_t)t * io->ldb + h];
                const double *qn = c.qn + th * K, *kn = c.kn + th * K;
                const double *ut = c.u + th * V, *rt = c.r + th * V;
                /* du (complete) → dv, dβ, dp */
                double dbt = 0.0, udo = 0.0;
                double *dvt = dv + (size_t)t * lddv + (size_t)h * V;
                for (int j = 0; j < V; j++) {
                    dvt[j] = bt * du[j];
                    dbt += du[j] * rt[j];
                    dpv[j] = -bt * du[j];
                    udo += ut[j] * sdo[j];
                }
                dbeta[(size_t)t * lddg + h] = dbt;
                bwd_tok b;
                b.al = gated ? al : 1.0;
                b.kn = kn;
                b.Sp = c.Sb + (size_t)(t - t0) * KV;
                b.dp = dpv;
                b.sdo = sdo;
                b.dkn = dkn;
                b.dqn = dqn;
                b.dkn1 = dkn1;
                b.du1 = du1;
                memset(du1, 0, sizeof(double) * V);
                if (t > 0) {
                    const size_t th1 = th - H;
                    const double *dot1 = do_ + (size_t)(t - 1) * lddo + (size_t)h * V;
                    for (int j = 0; j < V; j++)
                        sdo1[j] = s * dot1[j];
                    b.qn1 = c.qn + th1 * K;
                    b.kn1 = c.kn + th1 * K;
                    b.sdo1 = sdo1;
                    b.u1 = c.u + th1 * V;
                } else {
                    b.qn1 = b.kn1 = b.sdo1 = b.u1 = NULL;
                }
                double dal = 0.0;
                int i = 0;
                for (; i + 4 <= K; i += 4)
                    dal += bwd_rows_BA4(V, i, dS, &b, gated);
                if (i < K)
                    dal += bwd_rows_BA(V, i, K - i, dS, &b, gated);
                if (gated)
                    da[(size_t)t * lddg + h] = al * dal;
                /* dq̂ += s (u·do) k̂; through the l2norms */
                double cq = 0.0, ck = 0.0;
                for (int r = 0; r < K; r++) {
                    dqn[r] += udo * kn[r];
                    cq += qn[r] * dqn[r];
                    ck += kn[r] * dkn[r];
                }
                const double rq = c.rq[th], rk = c.rk[th];
                double *dqt = dq + (size_t)t * lddqk + (size_t)h * K;
                double *dkt = dk + (size_t)t * lddqk + (size_t)h * K;
                for (int r = 0; r < K; r++) {
                    dqt[r] = rq * (dqn[r] - qn[r] * cq);
                    dkt[r] = rk * (dkn[r] - kn[r] * ck);
                }
                /* token t − 1 becomes current */
                double *tmp = du;
                du = du1;
                du1 = tmp;
                tmp = sdo;
                sdo = sdo1;
                sdo1 = tmp;
                tmp = dkn;
                dkn = dkn1;
                dkn1 = tmp;
            }
        }
    }
}

/* ---- the layer --------------------------------------------------------------------
 *
 * Parameters (H heads, K = c->dk per head, V = D/H per head):
 *   W_in [Pw][D], rows: q (H·K) | k (H·K) | v (D) | β (H) | a (H, gated only)
 *   A_log [H], dt_bias [H]              (gated only)
 *   norm_w [V]                          (RMSNorm weight, shared by the heads)
 *   W_o [D][D]
 * Forward: P = x W_inᵀ; q, k, v = silu(P_q, P_k, P_v); β = σ(P_β);
 *   a = −exp(A_log)·softplus(P_a + dt_bias);  o = op(q, k, v, β, a);
 *   y = RMSNorm_head(o)·norm_w W_oᵀ.                                         */

typedef struct {
    int D, H, K, V, HK, NA, Pw, G;   /* NA: activated columns 2HK + D; G: gated */
} dl_dims;

static dl_dims dl_dims_of(const mq_cfg *c, int gated)
{
    dl_dims d;
    d.D = c->D;
    d.H = c->H > 0 ? c->H : 1;
    d.K = c->dk;
    d.V = d.D / d.H;
    d.HK = d.H * d.K;
    d.NA = 2 * d.HK + d.D;
    d.G = gated ? 1 : 0;
    d.Pw = d.NA + d.H + (gated ? d.H : 0);
    return d;
}

typedef struct {
    const double *Win, *Alog, *dtb, *nw, *Wo;
} dl_params;

static dl_params dl_params_of(const dl_dims *d, const double *p)
{
    dl_params q;
    q.Win = p;
    q.Alog = q.Win + (size_t)d->Pw * d->D;
    q.dtb = q.Alog + (d->G ? d->H : 0);
    q.nw = q.dtb + (d->G ? d->H : 0);
    q.Wo = q.nw + d->V;
    return q;
}

size_t mq_deltalayer_n_params(const mq_cfg *c, int gated)
{
    dl_dims d = dl_dims_of(c, gated);
    return (size_t)d.Pw * d.D + (gated ? 2 * (size_t)d.H : 0) + (size_t)d.V + (size_t)d.D * d.D;
}

void mq_deltalayer_init(const mq_cfg *c, int gated, double *p, uint64_t *rng)
{
    dl_dims d = dl_dims_of(c, gated);
    dl_params q = dl_params_of(&d, p);
    mq_fill_normal(p, (size_t)d.Pw * d.D, 0.02, rng);
    if (gated)
        for (int h = 0; h < d.H; h++) {
            /* A ~ U(0, 16], A_log = log A; dt log-uniform in [1e-3, 0.1] floored
             * at 1e-4, dt_bias = softplus⁻¹(dt) (fla GatedDeltaNet / official code) */
            double A = 16.0 * (1.0 - mq_rng_uniform(rng));
            ((double *)q.Alog)[h] = log(A);
            double dt = exp(log(1e-3) + mq_rng_uniform(rng) * (log(0.1) - log(1e-3)));
            if (dt < 1e-4)
                dt = 1e-4;
            ((double *)q.dtb)[h] = dt + log(-expm1(-dt));
        }
    mq_fill_const((double *)q.nw, (size_t)d.V, 1.0);
    mq_fill_normal((double *)q.Wo, (size_t)d.D * d.D, 0.02, rng);
}

typedef struct {
    double *P, *A, *bet, *aa, *O, *Xh, *rs, *On;   /* forward, n rows */
    double *dP, *dA, *dbet, *daa, *dO, *dOn;       /* backward (train only) */
    double *core;
} dl_cache;

#define DL_TB 16 /* tokens per block of the cache-free (inference) forward */

static size_t dl_carve(const dl_dims *d, int n, int train, double *c, dl_cache *k)
{
    const size_t LH = (size_t)n * d->H, LD = (size_t)n * d->D;
    size_t o = 0;
#define TAKE(ptr, cnt)            \
    do {                          \
        (ptr) = c ? c + o : NULL; \
        o += (cnt) + MQ_CARVE_PAD;               \
    } while (0)
    TAKE(k->P, (size_t)n * d->Pw);
    TAKE(k->A, (size_t)n * d->NA);
    TAKE(k->bet, LH);
    TAKE(k->aa, LH);
    TAKE(k->O, LD);
    TAKE(k->Xh, LD);
    TAKE(k->rs, LH);
    TAKE(k->On, LD);
    if (train) {
        TAKE(k->dP, (size_t)n * d->Pw);
        TAKE(k->dA, (size_t)n * d->NA);
        TAKE(k->dbet, LH);
        TAKE(k->daa, LH);
        TAKE(k->dO, LD);
        TAKE(k->dOn, LD);
        TAKE(k->core, mq_delta_cache_doubles(n, d->H, d->K, d->V));
    } else {
        k->dP = k->dA = k->dbet = k->daa = k->dO = k->dOn = NULL;
        TAKE(k->core, mq_delta_span_doubles(n, d->H, d->K, d->V));
    }
#undef TAKE
    return o;
}

size_t mq_deltalayer_cache_doubles(const mq_cfg *c, int gated, int L)
{
    dl_dims d = dl_dims_of(c, gated);
    dl_cache k;
    return dl_carve(&d, L, 1, NULL, &k);
}

static mq_delta_io dl_io(const dl_dims *d, int L, const dl_cache *k)
{
    mq_delta_io io;
    io.L = L;
    io.H = d->H;
    io.K = d->K;
    io.V = d->V;
    io.q = k->A;
    io.k = k->A + d->HK;
    io.v = k->A + 2 * d->HK;
    io.ldq = io.ldk = io.ldv = d->NA;
    io.beta = k->bet;
    io.ldb = d->H;
    io.a = d->G ? k->aa : NULL;
    io.lda = d->H;
    return io;
}

/* n rows of x → y; train: the whole sequence into the cache, else a block
 * continuing the state kept in k->core (first: from zero). */
static void dl_span(const dl_dims *d, const dl_params *w, int n, const double *x, double *y,
                    const dl_cache *k, int train, int first)
{
    mq_linear_fwd(n, d->D, d->Pw, x, d->D, w->Win, NULL, k->P, d->Pw);
    for (int t = 0; t < n; t++) {
        const double *Pt = k->P + (size_t)t * d->Pw;
        double *At = k->A + (size_t)t * d->NA;
#pragma omp simd
        for (int j = 0; j < d->NA; j++)
            At[j] = mq_vsilu(Pt[j]);
        for (int h = 0; h < d->H; h++) {
            k->bet[(size_t)t * d->H + h] = mq_sigmoid(Pt[d->NA + h]);
            if (d->G)
                k->aa[(size_t)t * d->H + h] =
                    -exp(w->Alog[h]) * mq_vsoftplus20(Pt[d->NA + d->H + h] + w->dtb[h]);
        }
    }
    mq_delta_io io = dl_io(d, n, k);
    if (train)
        mq_delta_fwd(&io, k->O, d->D, k->core);
    else
        mq_delta_span(&io, k->O, d->D, k->core, first);
    mq_headnorm_fwd(n, d->D, d->H, 0, DN_NORM_EPS, k->O, w->nw, 0, k->On, k->Xh, k->rs);
    mq_linear_fwd(n, d->D, d->D, k->On, d->D, w->Wo, NULL, y, d->D);
}

void mq_deltalayer_forward(const mq_cfg *c, int gated, const double *p, int L, const double *x,
                           double *y, double *cache)
{
    dl_dims d = dl_dims_of(c, gated);
    dl_params w = dl_params_of(&d, p);
    dl_cache k;
    if (cache) {
        dl_carve(&d, L, 1, cache, &k);
        dl_span(&d, &w, L, x, y, &k, 1, 1);
        return;
    }
    /* inference (cache == NULL): blocks of DL_TB tokens, scratch on the stack */
    double work[dl_carve(&d, DL_TB, 0, NULL, &k)];
    dl_carve(&d, DL_TB, 0, work, &k);
    for (int t0 = 0; t0 < L; t0 += DL_TB) {
        const int n = L - t0 < DL_TB ? L - t0 : DL_TB;
        dl_span(&d, &w, n, x + (size_t)t0 * d.D, y + (size_t)t0 * d.D, &k, 0, t0 == 0);
    }
}

void mq_deltalayer_backward(const mq_cfg *c, int gated, const double *p, int L, const double *x,
                            double *cache, const double *dy, double *dx, double *dp)
{
    dl_dims d = dl_dims_of(c, gated);
    dl_params w = dl_params_of(&d, p);
    dl_params g = dl_params_of(&d, dp);
    dl_cache k;
    dl_carve(&d, L, 1, cache, &k);
    const size_t LD = (size_t)L * d.D;

    memset(k.dOn, 0, sizeof(double) * LD);
    mq_linear_bwd(L, d.D, d.D, k.On, d.D, w.Wo, dy, d.D, k.dOn, d.D, (double *)g.Wo, NULL);
    mq_headnorm_bwd(L, d.D, d.H, 0, k.Xh, k.rs, w.nw, 0, k.dOn, k.dO, (double *)g.nw);
    mq_delta_io io = dl_io(&d, L, &k);
    mq_delta_bwd(&io, k.dO, d.D, k.dA, k.dA + d.HK, d.NA, k.dA + 2 * d.HK, d.NA, k.dbet,
                 gated ? k.daa : NULL, d.H, k.core);
    for (int t = 0; t < L; t++) {
        const double *Pt = k.P + (size_t)t * d.Pw, *dAt = k.dA + (size_t)t * d.NA;
        double *dPt = k.dP + (size_t)t * d.Pw;
#pragma omp simd
        for (int j = 0; j < d.NA; j++)
            dPt[j] = dAt[j] * mq_vdsilu(Pt[j]);
        for (int h = 0; h < d.H; h++) {
            const size_t th = (size_t)t * d.H + h;
            const double b = k.bet[th];
            dPt[d.NA + h] = k.dbet[th] * b * (1.0 - b);
            if (gated) {
                const double z = Pt[d.NA + d.H + h] + w.dtb[h], A = exp(w.Alog[h]);
                const double dz = -k.daa[th] * A * mq_vdsoftplus20(z);
                ((double *)g.Alog)[h] += k.daa[th] * k.aa[th];
                ((double *)g.dtb)[h] += dz;
                dPt[d.NA + d.H + h] = dz;
            }
        }
    }
    memset(dx, 0, sizeof(double) * LD);
    mq_linear_bwd(L, d.D, d.Pw, x, d.D, w.Win, k.dP, d.Pw, dx, d.D, (double *)g.Win, NULL);
}

/* Zoology's DeltaNet / GatedDeltaNet state_size: H·d_k·d_v floats (fp32 bytes). */
double mq_deltalayer_state_bytes(const mq_cfg *c, int L)
{
    (void)L;
    const int H = c->H > 0 ? c->H : 1;
    return 4.0 * H * (double)c->dk * (double)(c->D / H);
}
