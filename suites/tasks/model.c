/* model.c — the B.6 task model: forward, backward, gradient check (see model.h). */
#include "model.h"
#include "mq_ops.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mq_model_setup(mq_model *m, const mq_mixer *mix, const mq_cfg *c, int V)
{
    memset(m, 0, sizeof *m);
    if (!mix || c->D < 1 || V < 2)
        return -1;
    m->mix = mix;
    m->cfg = *c;
    m->V = V;
    const size_t D = (size_t)c->D;
    size_t o = 0;
    m->o_emb = o;  o += (size_t)V * D;
    m->o_ln0g = o; o += D;
    m->o_ln0b = o; o += D;
    m->o_cw = o;   o += D * MQ_CONV_K;
    m->o_cb = o;   o += D;
    m->o_pw = o;   o += D * D;
    m->o_pb = o;   o += D;
    m->o_ln1g = o; o += D;
    m->o_ln1b = o; o += D;
    m->o_lnfg = o; o += D;
    m->o_lnfb = o; o += D;
    m->o_mix = o;
    m->n_mix = mix->n_params(c);
    o += m->n_mix;
    m->n_params = o;
    return 0;
}

void mq_model_init(const mq_model *m, double *p, uint64_t *rng)
{
    const size_t D = (size_t)m->cfg.D;
    mq_fill_normal(p + m->o_emb, (size_t)m->V * D, 0.02, rng);
    mq_fill_const(p + m->o_ln0g, D, 1.0);
    mq_fill_const(p + m->o_ln0b, D, 0.0);
    const double bound = 1.0 / sqrt((double)MQ_CONV_K); /* PyTorch Conv1d default, fan-in 1·3 */
    mq_fill_uniform(p + m->o_cw, D * MQ_CONV_K, -bound, bound, rng);
    mq_fill_uniform(p + m->o_cb, D, -bound, bound, rng);
    mq_fill_normal(p + m->o_pw, D * D, 0.02, rng);
    mq_fill_const(p + m->o_pb, D, 0.0);
    mq_fill_const(p + m->o_ln1g, D, 1.0);
    mq_fill_const(p + m->o_ln1b, D, 0.0);
    mq_fill_const(p + m->o_lnfg, D, 1.0);
    mq_fill_const(p + m->o_lnfb, D, 0.0);
    m->mix->init(&m->cfg, p + m->o_mix, rng);
}

void mq_model_decay_mask(const mq_model *m, unsigned char *mask)
{
    const size_t D = (size_t)m->cfg.D;
    memset(mask, 0, m->n_params);
    memset(mask + m->o_emb, 1, (size_t)m->V * D);
    memset(mask + m->o_cw, 1, D * MQ_CONV_K);
    memset(mask + m->o_pw, 1, D * D);
    memset(mask + m->o_mix, 1, m->n_mix);
}

/* Workspace layout for (L, nq). */
typedef struct {
    double *x0, *h0, *xh0, *r0, *cv, *gp, *x1, *h1, *xh1, *r1, *y;
    double *zq, *xhf, *rf, *lg;
    double *dA, *dB, *dC, *dzq;
    double *cache;
} ws_t;

static size_t ws_layout(const mq_model *m, int L, int nq, double *base, ws_t *w)
{
    const size_t LD = (size_t)L * (size_t)m->cfg.D, QD = (size_t)nq * (size_t)m->cfg.D;
    size_t o = 0;
#define TAKE(ptr, n) do { if (w) w->ptr = base + o; o += (n); o = (o + 7) & ~(size_t)7; } while (0)
    TAKE(x0, LD); TAKE(h0, LD); TAKE(xh0, LD); TAKE(r0, (size_t)L); TAKE(cv, LD); TAKE(gp, LD);
    TAKE(x1, LD); TAKE(h1, LD); TAKE(xh1, LD); TAKE(r1, (size_t)L); TAKE(y, LD);
    TAKE(zq, QD); TAKE(xhf, QD); TAKE(rf, (size_t)nq); TAKE(lg, (size_t)nq * (size_t)m->V);
    TAKE(dA, LD); TAKE(dB, LD); TAKE(dC, LD); TAKE(dzq, QD);
    TAKE(cache, m->mix->cache_doubles(&m->cfg, L) + 1);
#undef TAKE
    return o;
}

size_t mq_model_ws_doubles(const mq_model *m, int L_max, int nq_max)
{
    /* cache_doubles need not be monotone in L: take the largest over L ≤ L_max */
    size_t best = 0;
    for (int L = 1; L <= L_max; L++) {
        size_t s = ws_layout(m, L, nq_max, NULL, NULL);
        if (s > best)
            best = s;
    }
    return best + 8;
}

double mq_model_example(const mq_model *m, const double *p, const mq_example *x, double scale, double *dp,
                        double *ws, int *correct)
{
    const int L = x->L, nq = x->nq, D = m->cfg.D, V = m->V;
    const size_t LD = (size_t)L * D;
    ws_t w;
    ws_layout(m, L, nq, ws, &w);
    const double *E = p + m->o_emb, *cw = p + m->o_cw, *cb = p + m->o_cb;

    /* ---- forward ---- */
    for (int t = 0; t < L; t++)
        memcpy(w.x0 + (size_t)t * D, E + (size_t)x->tok[t] * D, sizeof(double) * (size_t)D);
    mq_layernorm_fwd(L, D, w.x0, p + m->o_ln0g, p + m->o_ln0b, w.h0, w.xh0, w.r0);
    for (int t = 0; t < L; t++) { /* causal depthwise conv, taps j = 0, 1, 2 on u_{t−2}, u_{t−1}, u_t */
        double *c = w.cv + (size_t)t * D;
        for (int d = 0; d < D; d++)
            c[d] = cb[d];
        for (int j = 0; j < MQ_CONV_K; j++) {
            int s = t - (MQ_CONV_K - 1) + j;
            if (s < 0)
                continue;
            const double *u = w.h0 + (size_t)s * D;
            for (int d = 0; d < D; d++)
                c[d] += cw[d * MQ_CONV_K + j] * u[d];
        }
    }
    mq_linear_fwd(L, D, D, w.h0, D, p + m->o_pw, p + m->o_pb, w.gp, D);
    for (size_t i = 0; i < LD; i++)
        w.x1[i] = w.x0[i] + w.cv[i] * w.gp[i] + w.h0[i];
    mq_layernorm_fwd(L, D, w.x1, p + m->o_ln1g, p + m->o_ln1b, w.h1, w.xh1, w.r1);
    m->mix->forward(&m->cfg, p + m->o_mix, L, w.h1, w.y, w.cache); /* cache also at eval: the fast path */
    /* x2 only at the labelled rows (dA as scratch) */
    for (int q = 0; q < nq; q++) {
        size_t r = (size_t)x->pos[q] * D;
        for (int d = 0; d < D; d++)
            w.dA[(size_t)q * D + d] = w.x1[r + d] + w.y[r + d];
    }
    mq_layernorm_fwd(nq, D, w.dA, p + m->o_lnfg, p + m->o_lnfb, w.zq, w.xhf, w.rf);
    mq_gemm(0, 1, nq, V, D, 1.0, w.zq, D, E, D, 0.0, w.lg, V);

    double loss = 0;
    int ok = 0;
    for (int q = 0; q < nq; q++) {
        double *l = w.lg + (size_t)q * V;
        int am = 0;
        double mx = l[0];
        for (int v = 1; v < V; v++)
            if (l[v] > mx) {
                mx = l[v];
                am = v;
            }
        ok += am == x->tgt[q];
        double s = 0;
        for (int v = 0; v < V; v++)
            s += exp(l[v] - mx);
        double lse = mx + log(s);
        loss += lse - l[x->tgt[q]];
        if (dp) { /* dlogits = scale · (softmax − onehot), in place */
            double inv = 1.0 / s;
            for (int v = 0; v < V; v++)
                l[v] = scale * exp(l[v] - mx) * inv;
            l[x->tgt[q]] -= scale;
        }
    }
    if (correct)
        *correct = ok;
    if (!dp)
        return loss;

    /* ---- backward ---- */
    double *dE = dp + m->o_emb;
    mq_gemm(1, 0, V, D, nq, 1.0, w.lg, V, w.zq, D, 1.0, dE, D);     /* head: dE += dlgᵀ z */
    mq_gemm(0, 0, nq, D, V, 1.0, w.lg, V, E, D, 0.0, w.dzq, D);     /* dz = dlg E */
    /* final LN at the labelled rows → dx2 rows (into dC as [nq][D]) */
    mq_layernorm_bwd(nq, D, w.xhf, w.rf, p + m->o_lnfg, w.dzq, w.dC, dp + m->o_lnfg, dp + m->o_lnfb);
    double *dx2 = w.dA; /* [L][D], zero except labelled rows */
    memset(dx2, 0, sizeof(double) * LD);
    for (int q = 0; q < nq; q++)
        memcpy(dx2 + (size_t)x->pos[q] * D, w.dC + (size_t)q * D, sizeof(double) * (size_t)D);
    /* mixer: dh1 into dB */
    double *dh1 = w.dB;
    m->mix->backward(&m->cfg, p + m->o_mix, L, w.h1, w.cache, dx2, dh1, dp + m->o_mix);
    /* LN1: dx1 = dx2 + LN1ᵀ(dh1); LN bwd overwrites, so into dC then add */
    mq_layernorm_bwd(L, D, w.xh1, w.r1, p + m->o_ln1g, dh1, w.dC, dp + m->o_ln1g, dp + m->o_ln1b);
    double *dx1 = w.dA;
    for (size_t i = 0; i < LD; i++)
        dx1[i] += w.dC[i];
    /* BaseConv: out = cv ⊙ gp + h0 → d(cv) = dx1 ⊙ gp (in dB), d(gp) = dx1 ⊙ cv (in dC) */
    double *dcv = w.dB, *dgp = w.dC;
    for (size_t i = 0; i < LD; i++) {
        dcv[i] = dx1[i] * w.gp[i];
        dgp[i] = dx1[i] * w.cv[i];
    }
    /* dh0 accumulates in the spare buffer: start from the +h0 path */
    double *dh0 = w.cv; /* cv is no longer needed */
    memcpy(dh0, dx1, sizeof(double) * LD);
    mq_linear_bwd(L, D, D, w.h0, D, p + m->o_pw, dgp, D, dh0, D, dp + m->o_pw, dp + m->o_pb);
    double *dcw = dp + m->o_cw, *dcb = dp + m->o_cb;
    for (int t = 0; t < L; t++) {
        const double *g = dcv + (size_t)t * D;
        for (int d = 0; d < D; d++)
            dcb[d] += g[d];
        for (int j = 0; j < MQ_CONV_K; j++) {
            int s = t - (MQ_CONV_K - 1) + j;
            if (s < 0)
                continue;
            const double *u = w.h0 + (size_t)s * D;
            double *du = dh0 + (size_t)s * D;
            for (int d = 0; d < D; d++) {
                dcw[d * MQ_CONV_K + j] += g[d] * u[d];
                du[d] += cw[d * MQ_CONV_K + j] * g[d];
            }
        }
    }
    /* LN0: dx0 = dx1 + LN0ᵀ(dh0) (into dC) */
    mq_layernorm_bwd(L, D, w.xh0, w.r0, p + m->o_ln0g, dh0, w.dC, dp + m->o_ln0g, dp + m->o_ln0b);
    for (int t = 0; t < L; t++) {
        double *de = dE + (size_t)x->tok[t] * D;
        const double *a = dx1 + (size_t)t * D, *b = w.dC + (size_t)t * D;
        for (int d = 0; d < D; d++)
            de[d] += a[d] + b[d];
    }
    return loss;
}

/* ---- whole-model finite-difference check ----------------------------------- */
static double batch_loss(const mq_model *m, const double *p, const mq_dataset *ds, double *ws)
{
    double s = 0;
    for (int i = 0; i < ds->n; i++)
        s += mq_model_example(m, p, &ds->ex[i], 1.0, NULL, ws, NULL);
    return s;
}

double mq_model_gradcheck(const mq_mixer *mix, uint64_t seed, int max_params, char *why, size_t len)
{
    mq_cfg c = mq_cfg_default();
    c.D = 8; c.dk = 4; c.feat = 4; c.window = 3; c.n_state = 3; c.expand = 2; c.H = 1;
    mq_model m;
    mq_dataset ds;
    if (mq_model_setup(&m, mix, &c, 16) != 0 || mq_dataset_init(&ds, 16, 2, 256) != 0) {
        snprintf(why, len, "setup failed");
        return INFINITY;
    }
    if (mq_mqar_append(&ds, 12, 2, 2, 0.01, 1, seed) != 0) {
        snprintf(why, len, "data generation failed");
        mq_dataset_free(&ds);
        return INFINITY;
    }
    size_t np = m.n_params, nws = mq_model_ws_doubles(&m, 12, 2);
    double *p = calloc(np, sizeof *p), *g = calloc(np, sizeof *g), *ws = malloc(nws * sizeof *ws);
    if (!p || !g || !ws) {
        snprintf(why, len, "out of memory");
        free(p); free(g); free(ws);
        mq_dataset_free(&ds);
        return INFINITY;
    }
    uint64_t rng = seed ^ 0x5DEECE66Dull;
    mq_model_init(&m, p, &rng);
    for (size_t i = 0; i < np; i++) /* away from the near-linear init point */
        p[i] += 0.1 * mq_rng_normal(&rng);
    for (int i = 0; i < ds.n; i++)
        mq_model_example(&m, p, &ds.ex[i], 1.0, g, ws, NULL);

    static const char *const names[] = {"embedding", "ln0", "conv", "proj", "ln1", "lnf", "mixer"};
    size_t lo[7] = {m.o_emb, m.o_ln0g, m.o_cw, m.o_pw, m.o_ln1g, m.o_lnfg, m.o_mix};
    size_t hi[7] = {m.o_ln0g, m.o_cw, m.o_pw, m.o_ln1g, m.o_lnfg, m.o_mix, np};
    double worst = 0;
    int wt = 0;
    const double h = 1e-4; /* 4th-order central difference (as mq_gradcheck_mixer): truncation O(h⁴) */
    size_t checked = 0;
    for (int b = 0; b < 7; b++) {
        size_t n = hi[b] - lo[b];
        size_t nc = (max_params > 0 && n > (size_t)max_params) ? (size_t)max_params : n;
        double num = 0, den = 0;
        for (size_t j = 0; j < nc; j++) {
            size_t i = lo[b] + (nc == n ? j : (size_t)(mq_rng_next(&rng) % n));
            double save = p[i];
            p[i] = save + h;
            double lp = batch_loss(&m, p, &ds, ws);
            p[i] = save - h;
            double lm = batch_loss(&m, p, &ds, ws);
            p[i] = save + 2 * h;
            double lp2 = batch_loss(&m, p, &ds, ws);
            p[i] = save - 2 * h;
            double lm2 = batch_loss(&m, p, &ds, ws);
            p[i] = save;
            double fd = (8 * (lp - lm) - (lp2 - lm2)) / (12 * h);
            num = fmax(num, fabs(fd - g[i]));
            den = fmax(den, fabs(fd));
            checked++;
        }
        double e = n ? num / (den > 1e-8 ? den : 1e-8) : 0;
        if (e > worst) {
            worst = e;
            wt = b;
        }
    }
    snprintf(why, len, "%zu parameters (checked %zu): worst rel err %.2e (%s)", np, checked, worst, names[wt]);
    free(p); free(g); free(ws);
    mq_dataset_free(&ds);
    return worst;
}
