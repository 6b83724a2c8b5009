/* performer.c — trainable Performer / FAVOR+ attention (Choromanski et al.,
 * "Rethinking Attention with Performers", ICLR 2021) for the task models
 * (suites/tasks/mq.h).
 *
 * The sequence op is latbench's `performer` (impls/performer.c,
 * reference/performer.c) at its defaults (positive features, ORF, ε_f = 1e-6,
 * δ = 1e-6, causal, running-max key offset): per head, with x′ = dk^{−1/4} x,
 * a_r(x) = ⟨ω_r, x′⟩, n(x) = ‖x′‖²/2 and M = knob "feat" features,
 *   φ_Q(q)_r = M^{−1/2}(e^{a_r(q) − n(q) − max_r a_r(q)} + ε_f)
 *   φ_K(k_j)_r = M^{−1/2}(e^{a_r(k_j) − n(k_j) − c_t} + ε_f),  c_t = max_{j≤t} max_r a_r(k_j)
 *   o_t = Σ_{j≤t}⟨φ_Q(q_t), φ_K(k_j)⟩ v_j / R_t,  R_t += 2δ if |R_t| ≤ δ.
 * Computed as impls does: U_t = e^{c_{t−1} − c_t} U_{t−1} + e^{a(k_t) − n(k_t) − c_t}[v_t | 1]ᵀ
 * (the running-max rescale IS a scalar decay: the shared core mq_gla_core
 * with scalar log-decay c_{t−1} − c_t ≤ 0 and value [v | 1], no normalizer),
 * then [Num | R] = f_Qᵀ U_t + ε_f (Σ_r f_Q,r) P_t with P_t = Σ_{j≤t} [v_j | 1]
 * (the 1/M cancels; δ is applied to R/M as impls does).
 * Around it: [q | k | v] = x W_inᵀ, q, k: D → H·dk (dk = knob "dk", default
 * 64 = D), v: D → D (head h takes columns h·D/H ..), y = o W_oᵀ; no biases.
 * Random features: W = [ω_r] ∈ R^{M×dk}, orthogonal blocks with chi row
 * norms (impls gen_w's ORF, ortho_scaling 0), shared by the heads, FIXED: not
 * parameters and not trained; a deterministic function of (M, dk) drawn from
 * a fixed seed (mq_cfg has no seed, so every training seed sees the same W;
 * redraws are off as at inference). The forward memoizes W at the start of
 * the cache (tagged with M, dk and a hash of W, regenerated whenever the tag
 * does not match) so training does not redraw it per sequence; the cache-less
 * (inference) forward draws it on the stack each call.
 * Gradients flow through both max offsets exactly (to the arg-max feature;
 * ties have measure zero): they cancel in the ratio except through ε_f.
 * Init: W_in ~ N(0, 0.02), W_o ~ N(0, 0.01) (zoology init, 2-layer out_proj
 * rescale). State bytes: impls' state, 4·H·(M·V + M + V + 2), V = D/H.
 * Training (forward with a cache, backward): the core's cheaper exact form
 * (mq_gla_train_*: the quadratic form, mask e^{c_s − c_t}, when
 * L·(M+V+1) < 5·M·(V+1), e.g. M ≥ 64 at L = 128, else BPTT over the
 * recurrence); features, offsets, ε_f term and ratio by hand. */
#include "../mq.h"
#include "../mq_ops.h"
#include "mq_gla_core.h"

#include <math.h>
#include <string.h>

#define PF_EPS 1e-6   /* ε_f (authors' code, impls default) */
#define PF_DELTA 1e-6 /* δ (google) */
#define PF_MAGIC 7.0710678118654752e+77

typedef struct pf_dims { int D, H, dk, dv, Hk, M, P, V1; } pf_dims;

static pf_dims dims(const mq_cfg *c)
{
    pf_dims d;
    d.D = c->D, d.H = c->H, d.dk = c->dk, d.dv = c->D / c->H, d.Hk = c->H * c->dk, d.M = c->feat;
    d.P = 2 * d.Hk + d.D;
    d.V1 = d.dv + 1;
    return d;
}

static mq_gla_spec spec(const pf_dims *d)
{
    mq_gla_spec s = { .K = d->M, .V = d->V1, .decay = MQ_GLA_SCALAR };
    return s;
}

/* ---- the fixed random features --------------------------------------------- */

/* n N(0,1) draws, Marsaglia's polar method (two per log + sqrt) */
static void normals(uint64_t *rng, double *out, size_t n)
{
    size_t i = 0;
    while (i < n) {
        double u, v, r2;
        do {
            u = 2.0 * mq_rng_uniform(rng) - 1.0;
            v = 2.0 * mq_rng_uniform(rng) - 1.0;
            r2 = u * u + v * v;
        } while (r2 >= 1.0 || r2 == 0.0);
        const double f = sqrt(-2.0 * log(r2) / r2);
        out[i++] = u * f;
        if (i < n) out[i++] = v * f;
    }
}

/* W [M][K]: blocks of K orthonormal rows (Gram–Schmidt twice, classical), each row
 * scaled by the norm of a fresh N(0, I_K) draw (impls gen_w's ORF, ortho_scaling 0) */
static void gen_rf(int M, int K, double *W)
{
    uint64_t rng = 0x5EED0FA7F00DULL ^ ((uint64_t)M << 24) ^ (uint64_t)K;
    normals(&rng, W, (size_t)M * K);
    for (int r0 = 0; r0 < M; r0 += K) {
        const int r1 = r0 + K < M ? r0 + K : M;
        for (int r = r0; r < r1; r++) {
            double *xr = W + (size_t)r * K, cf[K];
            for (int pass = 0; pass < 2; pass++) { /* classical Gram–Schmidt, twice (CGS2) */
                for (int u = r0; u < r; u++) cf[u - r0] = mq_vdot(K, xr, W + (size_t)u * K);
                for (int u = r0; u < r; u++) {
                    const double *xu = W + (size_t)u * K, dd = cf[u - r0];
#pragma omp simd
                    for (int c = 0; c < K; c++) xr[c] -= dd * xu[c];
                }
            }
            double nn = 0;
            for (int c = 0; c < K; c++) nn += xr[c] * xr[c];
            nn = 1.0 / sqrt(nn);
            for (int c = 0; c < K; c++) xr[c] *= nn;
        }
    }
    double z[K];
    for (int r = 0; r < M; r++) { /* chi-distributed row norms */
        normals(&rng, z, (size_t)K);
        double g = 0;
        for (int c = 0; c < K; c++) g += z[c] * z[c];
        g = sqrt(g);
        for (int c = 0; c < K; c++) W[(size_t)r * K + c] *= g;
    }
}

static double rf_hash(const double *W, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        uint64_t b;
        memcpy(&b, W + i, sizeof b);
        h = (h ^ b) * 1099511628211ULL;
        h ^= h >> 29;
    }
    return (double)(h >> 11);
}

/* memo = [magic, M, dk, hash, W[M][dk]]: (re)draw W unless the tag matches */
static const double *rf_get(const pf_dims *d, double *memo)
{
    double *W = memo + 4;
    const size_t n = (size_t)d->M * d->dk;
    if (memo[0] == PF_MAGIC && memo[1] == d->M && memo[2] == d->dk && memo[3] == rf_hash(W, n)) return W;
    gen_rf(d->M, d->dk, W);
    memo[0] = PF_MAGIC, memo[1] = d->M, memo[2] = d->dk, memo[3] = rf_hash(W, n);
    return W;
}

/* ---- parameters and cache --------------------------------------------------- */

static size_t pf_n_params(const mq_cfg *c)
{
    pf_dims d = dims(c);
    return (size_t)d.P * d.D + (size_t)d.D * d.D;
}

static void pf_init(const mq_cfg *c, double *p, uint64_t *rng)
{
    pf_dims d = dims(c);
    mq_fill_normal(p, (size_t)d.P * d.D, 0.02, rng);
    mq_fill_normal(p + (size_t)d.P * d.D, (size_t)d.D * d.D, 0.01, rng);
}

/* Per head h, arrays [H][n][·]: eq, ek (e^{a−n−offset}, ek is the core's key),
 * fq = eq + ε_f (the core's query), va = [v | 1], r (core output), Pc (P_t);
 * [H][n]: la (log-decay), sfq (Σ f_q), c (running max), ell (key max),
 * iq, ik (arg-max features), R (normalizer after δ). Carry: state, c, P. */
typedef struct pf_lay {
    double *memo, *proj, *eq, *ek, *fq, *va, *r, *Pc, *la, *sfq, *c, *ell, *iq, *ik, *R, *o;
    double *S, *cc, *Pr, *scr;
    double *tb, *a, *dO, *dr, *dfq, *dek, *dva, *dla, *dc, *dn, *dproj; /* train only */
} pf_lay;

static size_t layout(const mq_cfg *c, int n, int train, double *base, pf_lay *ly)
{
    pf_dims d = dims(c);
    mq_gla_spec s = spec(&d);
    mq_arena a = { base, 0 };
    const size_t nHM = (size_t)d.H * n * d.M, nHV = (size_t)d.H * n * d.V1, nH = (size_t)d.H * n;
    ly->memo = mq_take(&a, 4 + (size_t)d.M * d.dk);
    ly->proj = mq_take(&a, (size_t)n * d.P);
    ly->eq = mq_take(&a, nHM);
    ly->ek = mq_take(&a, nHM);
    ly->fq = mq_take(&a, nHM);
    ly->va = mq_take(&a, nHV);
    ly->r = mq_take(&a, nHV);
    ly->Pc = mq_take(&a, nHV);
    ly->la = mq_take(&a, nH);
    ly->sfq = mq_take(&a, nH);
    ly->c = mq_take(&a, nH);
    ly->ell = mq_take(&a, nH);
    ly->iq = mq_take(&a, nH);
    ly->ik = mq_take(&a, nH);
    ly->R = mq_take(&a, nH);
    ly->o = mq_take(&a, (size_t)n * d.D);
    ly->S = train ? NULL : mq_take(&a, (size_t)d.H * mq_gla_state_len(&s));
    ly->cc = mq_take(&a, d.H);
    ly->Pr = mq_take(&a, (size_t)d.H * d.V1);
    size_t scr = mq_gla_fwd_scratch(&s);
    ly->tb = ly->a = ly->dO = ly->dr = ly->dfq = ly->dek = ly->dva = ly->dla = ly->dc = ly->dn = ly->dproj = NULL;
    if (train) {
        scr = mq_max_sz(scr, mq_gla_train_scratch(&s, n));
        ly->tb = mq_take(&a, (size_t)d.H * mq_gla_train_len(&s, n));
        ly->a = mq_take(&a, (size_t)d.H * mq_gla_a_len(&s, n));
        ly->dO = mq_take(&a, (size_t)n * d.D);
        ly->dr = mq_take(&a, nHV);
        ly->dfq = mq_take(&a, nHM);
        ly->dek = mq_take(&a, nHM);
        ly->dva = mq_take(&a, nHV);
        ly->dla = mq_take(&a, nH);
        ly->dc = mq_take(&a, nH);
        ly->dn = mq_take(&a, 2 * (size_t)n + (size_t)d.dv);
        ly->dproj = mq_take(&a, (size_t)n * d.P);
    }
    ly->scr = mq_take(&a, scr);
    return a.n;
}

static size_t pf_cache_doubles(const mq_cfg *c, int L)
{
    pf_lay ly;
    return layout(c, L, 1, NULL, &ly);
}

static mq_gla_io head_io(const pf_dims *d, const pf_lay *ly, int n, int h)
{
    mq_gla_spec s = spec(d);
    const size_t hm = (size_t)h * n * d->M, hv = (size_t)h * n * d->V1;
    mq_gla_io io = { .q = ly->fq + hm, .k = ly->ek + hm, .v = ly->va + hv, .la = ly->la + (size_t)h * n,
                     .ldq = d->M, .ldk = d->M, .ldv = d->V1, .lda = 1,
                     .o = ly->r + hv, .ldo = d->V1,
                     .a = ly->a ? ly->a + (size_t)h * mq_gla_a_len(&s, n) : NULL };
    return io;
}

static int argmax(const double *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* rows [0, n): carried state S, running max cc, running sum Pr */
static void span(const mq_cfg *c, const double *p, const double *W, int n, const double *x, double *y,
                 const pf_lay *ly)
{
    pf_dims d = dims(c);
    mq_gla_spec s = spec(&d);
    const double *W_in = p, *W_o = p + (size_t)d.P * d.D;
    const double s4 = pow((double)d.dk, -0.25), s2 = s4 * s4, dM = PF_DELTA * d.M;
    const int M = d.M, V = d.dv, V1 = d.V1;
    mq_linear_fwd(n, d.D, d.P, x, d.D, W_in, NULL, ly->proj, d.P);
    for (int h = 0; h < d.H; h++) {
        const size_t hm = (size_t)h * n * M, hv = (size_t)h * n * V1, hn = (size_t)h * n;
        double *eq = ly->eq + hm, *ek = ly->ek + hm, *fq = ly->fq + hm;
        mq_gemm(0, 1, n, M, d.dk, s4, ly->proj + (size_t)h * d.dk, d.P, W, d.dk, 0.0, eq, M);
        mq_gemm(0, 1, n, M, d.dk, s4, ly->proj + d.Hk + (size_t)h * d.dk, d.P, W, d.dk, 0.0, ek, M);
        double *Pr = ly->Pr + (size_t)h * V1;
        for (int t = 0; t < n; t++) {
            const double *qr = ly->proj + (size_t)t * d.P + (size_t)h * d.dk;
            const double *kr = qr + d.Hk, *vr = ly->proj + (size_t)t * d.P + 2 * d.Hk + (size_t)h * V;
            double nq = 0, nk = 0;
            for (int i = 0; i < d.dk; i++) {
                nq += qr[i] * qr[i];
                nk += kr[i] * kr[i];
            }
            nq *= 0.5 * s2, nk *= 0.5 * s2;
            double *eqt = eq + (size_t)t * M, *ekt = ek + (size_t)t * M, *fqt = fq + (size_t)t * M;
            const int iq = argmax(eqt, M), ik = argmax(ekt, M);
            const double offq = nq + eqt[iq], ell = ekt[ik], cprev = ly->cc[h];
            const double ct = (isinf(cprev) || ell > cprev) ? ell : cprev;
            const double offk = nk + ct;
            for (int r = 0; r < M; r++) {
                eqt[r] -= offq;
                ekt[r] -= offk;
            }
            mq_vexp(M, eqt, eqt);
            mq_vexp(M, ekt, ekt);
            double sf = 0;
            for (int r = 0; r < M; r++) {
                fqt[r] = eqt[r] + PF_EPS;
                sf += fqt[r];
            }
            ly->la[hn + t] = isinf(cprev) ? 0.0 : cprev - ct;
            ly->cc[h] = ct;
            ly->c[hn + t] = ct, ly->ell[hn + t] = ell, ly->sfq[hn + t] = sf;
            ly->iq[hn + t] = iq, ly->ik[hn + t] = ik;
            double *va = ly->va + hv + (size_t)t * V1, *Pc = ly->Pc + hv + (size_t)t * V1;
            memcpy(va, vr, sizeof(double) * V);
            va[V] = 1.0;
            for (int j = 0; j < V1; j++) Pc[j] = Pr[j] += va[j];
        }
        mq_gla_io io = head_io(&d, ly, n, h);
        if (ly->tb)
            mq_gla_train_fwd(&s, n, &io, ly->tb + (size_t)h * mq_gla_train_len(&s, n), ly->scr);
        else
            mq_gla_fwd(&s, n, &io, ly->S + (size_t)h * mq_gla_state_len(&s), NULL, ly->scr);
        for (int t = 0; t < n; t++) {
            const double *rt = ly->r + hv + (size_t)t * V1, *Pc = ly->Pc + hv + (size_t)t * V1;
            const double e = PF_EPS * ly->sfq[hn + t];
            double R = rt[V] + e * Pc[V];
            if (fabs(R) <= dM) R += 2.0 * dM;
            ly->R[hn + t] = R;
            double *ot = ly->o + (size_t)t * d.D + (size_t)h * V;
            for (int j = 0; j < V; j++) ot[j] = (rt[j] + e * Pc[j]) / R;
        }
    }
    mq_linear_fwd(n, d.D, d.D, ly->o, d.D, W_o, NULL, y, d.D);
}

static void reset_carry(const pf_dims *d, const pf_lay *ly)
{
    mq_gla_spec s = spec(d);
    if (ly->S) memset(ly->S, 0, sizeof(double) * d->H * mq_gla_state_len(&s));
    memset(ly->Pr, 0, sizeof(double) * d->H * d->V1);
    for (int h = 0; h < d->H; h++) ly->cc[h] = -INFINITY;
}

static void pf_forward(const mq_cfg *c, const double *p, int L, const double *x, double *y,
                       double *cache)
{
    pf_dims d = dims(c);
    pf_lay ly;
    if (cache) {
        layout(c, L, 1, cache, &ly);
        const double *W = rf_get(&d, ly.memo);
        reset_carry(&d, &ly);
        span(c, p, W, L, x, y, &ly);
        return;
    }
    double stk[layout(c, MQ_GLA_TB, 0, NULL, &ly)];
    layout(c, MQ_GLA_TB, 0, stk, &ly);
    ly.memo[0] = 0.0;
    const double *W = rf_get(&d, ly.memo);
    reset_carry(&d, &ly);
    for (int t0 = 0; t0 < L; t0 += MQ_GLA_TB) {
        const int n = L - t0 < MQ_GLA_TB ? L - t0 : MQ_GLA_TB;
        span(c, p, W, n, x + (size_t)t0 * d.D, y + (size_t)t0 * d.D, &ly);
    }
}

static void pf_backward(const mq_cfg *c, const double *p, int L, const double *x, double *cache,
                        const double *dy, double *dx, double *dp)
{
    pf_dims d = dims(c);
    mq_gla_spec s = spec(&d);
    const double *W_in = p, *W_o = p + (size_t)d.P * d.D;
    double *dW_in = dp, *dW_o = dp + (size_t)d.P * d.D;
    const double s4 = pow((double)d.dk, -0.25), s2 = s4 * s4;
    const int M = d.M, V = d.dv, V1 = d.V1;
    pf_lay ly;
    layout(c, L, 1, cache, &ly);
    const double *W = ly.memo + 4; /* drawn by the forward */
    memset(ly.dO, 0, sizeof(double) * (size_t)L * d.D);
    mq_linear_bwd(L, d.D, d.D, ly.o, d.D, W_o, dy, d.D, ly.dO, d.D, dW_o, NULL);
    for (int h = 0; h < d.H; h++) {
        const size_t hm = (size_t)h * L * M, hv = (size_t)h * L * V1, hn = (size_t)h * L;
        double *dr = ly.dr + hv, *dfq = ly.dfq + hm, *dek = ly.dek + hm, *dva = ly.dva + hv;
        double *dla = ly.dla + hn, *dc = ly.dc + hn;
        double *dsf = ly.dc + hn; /* reuse dc as dΣf_q until the core is done (then dc) */
        /* ratio and ε_f term: dr, dΣf_q; dP handled by a reverse running sum below */
        for (int t = 0; t < L; t++) {
            const double *dOt = ly.dO + (size_t)t * d.D + (size_t)h * V;
            const double *ot = ly.o + (size_t)t * d.D + (size_t)h * V;
            const double *Pc = ly.Pc + hv + (size_t)t * V1;
            const double R = ly.R[hn + t];
            double od = 0;
            for (int j = 0; j < V; j++) od += dOt[j] * ot[j];
            double *drt = dr + (size_t)t * V1;
            double acc = 0;
            for (int j = 0; j < V; j++) {
                drt[j] = dOt[j] / R;
                acc += drt[j] * Pc[j];
            }
            drt[V] = -od / R;
            acc += drt[V] * Pc[V];
            dsf[t] = PF_EPS * acc;
        }
        mq_gla_io io = head_io(&d, &ly, L, h);
        mq_gla_grad g = { .dout = dr, .lddo = V1, .dq = dfq, .dk = dek, .dv = dva, .dla = dla,
                          .lddq = M, .lddk = M, .lddv = V1, .ldda = 1 };
        mq_gla_train_bwd(&s, L, &io, ly.tb + (size_t)h * mq_gla_train_len(&s, L), &g, ly.scr);
        /* dv = core's dv + Σ_{t ≥ s} ε_f Σf_q,t dnum_t (P_t = Σ_{s ≤ t} v_s) */
        double *dPacc = ly.dn + 2 * (size_t)L; /* V doubles */
        for (int j = 0; j < V; j++) dPacc[j] = 0;
        for (int t = L - 1; t >= 0; t--) {
            const double e = PF_EPS * ly.sfq[hn + t];
            const double *drt = dr + (size_t)t * V1;
            double *dvt = ly.dproj + (size_t)t * d.P + 2 * d.Hk + (size_t)h * V;
            for (int j = 0; j < V; j++) {
                dPacc[j] += e * drt[j];
                dvt[j] = dva[(size_t)t * V1 + j] + dPacc[j];
            }
        }
        /* features: da (in dfq / dek), dn, offsets */
        double *dnq = ly.dn, *dnk = ly.dn + L;
        for (int t = 0; t < L; t++) {
            double *dfqt = dfq + (size_t)t * M, *dekt = dek + (size_t)t * M;
            const double *eqt = ly.eq + hm + (size_t)t * M, *ekt = ly.ek + hm + (size_t)t * M;
            const double ds = dsf[t];
            double Dq = 0, E = 0;
            for (int r = 0; r < M; r++) {
                dfqt[r] = (dfqt[r] + ds) * eqt[r]; /* now d a_q */
                Dq += dfqt[r];
                dekt[r] *= ekt[r]; /* now d a_k */
                E += dekt[r];
            }
            dfqt[(int)ly.iq[hn + t]] -= Dq;
            dnq[t] = -Dq;
            dnk[t] = -E;
            dc[t] = -E; /* overwrites dsf[t], no longer needed */
        }
        for (int t = 1; t < L; t++) { /* la_t = c_{t−1} − c_t */
            dc[t - 1] += dla[t];
            dc[t] -= dla[t];
        }
        for (int t = L - 1; t >= 0; t--) { /* c_t = max(c_{t−1}, ℓ_t) */
            if (t == 0 || ly.ell[hn + t] > ly.c[hn + t - 1])
                dek[(size_t)t * M + (int)ly.ik[hn + t]] += dc[t];
            else
                dc[t - 1] += dc[t];
        }
        /* d q = s4 · (d a_q) W + dn_q · s4² q, same for k */
        double *dq = ly.dproj + (size_t)h * d.dk, *dkp = ly.dproj + d.Hk + (size_t)h * d.dk;
        mq_gemm(0, 0, L, d.dk, M, s4, dfq, M, W, d.dk, 0.0, dq, d.P);
        mq_gemm(0, 0, L, d.dk, M, s4, dek, M, W, d.dk, 0.0, dkp, d.P);
        for (int t = 0; t < L; t++) {
            const double *qr = ly.proj + (size_t)t * d.P + (size_t)h * d.dk, *kr = qr + d.Hk;
            double *dqt = dq + (size_t)t * d.P, *dkt = dkp + (size_t)t * d.P;
            for (int i = 0; i < d.dk; i++) {
                dqt[i] += dnq[t] * s2 * qr[i];
                dkt[i] += dnk[t] * s2 * kr[i];
            }
        }
    }
    memset(dx, 0, sizeof(double) * (size_t)L * d.D);
    mq_linear_bwd(L, d.D, d.P, x, d.D, W_in, ly.dproj, d.P, dx, d.D, dW_in, NULL);
}

static double pf_state_bytes(const mq_cfg *c, int L)
{
    (void)L;
    pf_dims d = dims(c);
    return 4.0 * d.H * ((double)d.M * d.dv + d.M + d.dv + 2.0);
}

const mq_mixer mq_mixer_performer = {
    .name = "performer",
    .size_knob = "feat",
    .sizes = { 32, 64, 128, 0 },
    .doc = "FAVOR+ as impls/performer (positive ORF features, eps_f 1e-6, delta 1e-6, running-max "
           "key offset) on learned q,k: D->H*dk, v: D->D, out D->D; random features FIXED "
           "(not params): deterministic ORF of (feat, dk), memoized in the cache; init N(0,0.02), "
           "out N(0,0.01); state = 4*H*(M*V+M+V+2) bytes (impls)",
    .n_params = pf_n_params,
    .init = pf_init,
    .cache_doubles = pf_cache_doubles,
    .forward = pf_forward,
    .backward = pf_backward,
    .state_bytes = pf_state_bytes,
};
