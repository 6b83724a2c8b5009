/* performer.c — fp64 references for Performer / FAVOR+ (Choromanski et al.,
 * ICLR 2021; spec/attention.md §4.1, Errata 1), written from the spec.
 *
 * Inputs q, k [B][T][H][K], v [B][T][H][V], W [M][K] (random rows ω_r, shared
 * by all heads; M = features). x′ = K^{-1/4} x, a_r(x) = ⟨ω_r, x′⟩,
 * n(x) = ‖x′‖²/2. Variant bits (impls/performer.c): bit 1 trig features,
 * bit 2 ε_f = 1e-4 (lucidrains) instead of 1e-6 (authors). Bit 0 (iid vs
 * orthogonal) only changes how W is drawn.
 *
 * Positive (default):  φ_Q(q)_r = M^{-1/2}(e^{a_r(q) − n(q) − max_r a_r(q)} + ε_f)
 *                      φ_K(k_j)_r = M^{-1/2}(e^{a_r(k_j) − n(k_j) − c_t} + ε_f)
 * Trig (bit 1):        M/2 frequencies, φ(x) = (M/2)^{-1/2}[sin a(x); cos a(x)]
 *                      (blocks), query factor e^{n(q)} dropped (a per-row
 *                      constant that cancels exactly), key factor e^{n(k_j) − c_t}.
 * Key offset c_t (the causal stabilizer, decision of spec §4.1 option (a)):
 * the RUNNING max over the keys j ≤ t (and over the initial state's c) of
 * ℓ_j = max_r a_r(k_j) (positive) or n(k_j) (trig). It never reads the future;
 * at t = T−1 it equals the reference codes' global c^K. Non-causal: c = c_{T−1}.
 *   Num_t = Σ_{j≤t} ⟨φ_Q(q_t), φ_K^{(c_t)}(k_j)⟩ v_j,  R_t likewise with 1,
 *   R_t += 2δ if |R_t| ≤ δ (δ = 1e-6, Google), o_t = Num_t / R_t.
 * State per slice (flat, (M+1)(V+1)+1 = M·V + M + V + 2 floats, spec §4.1):
 *   [M][V+1]  U = Σ_j e^{ℓ-shifted key feature − c} [v_j | 1]  (no ε_f, no M^{-1/2})
 *   [V+1]     P = Σ_j [v_j | 1]       (carries the ε_f part; P[V] = count)
 *   [1]       c = running key offset
 *   ref_performer           literal recurrence with the running-max rescale;
 *   ref_performer_parallel  explicit weight matrix w_tj from the feature
 *                           vectors built with c_t directly (quadratic).
 */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"

#define PF_DELTA 1e-6

static size_t at(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h) * (size_t)D;
}

static double pf_eps(const lat_shape *s) { return (s->variant & 4) ? 1e-4 : 1e-6; }
static int pf_trig(const lat_shape *s) { return (s->variant & 2) != 0; }

/* a_r(x) for r < nf (nf = M, or M/2 for trig); returns n(x). */
static double proj(const lat_shape *s, const double *W, const double *x, double *a, int nf)
{
    const int K = s->K;
    const double sc = pow((double)K, -0.25);
    double n2 = 0;
    for (int c = 0; c < K; c++)
        n2 += (x[c] * sc) * (x[c] * sc);
    for (int r = 0; r < nf; r++) {
        double acc = 0;
        for (int c = 0; c < K; c++)
            acc += W[(size_t)r * (size_t)K + (size_t)c] * (x[c] * sc);
        a[r] = acc;
    }
    return 0.5 * n2;
}

/* key log-shift ℓ and unshifted-exponent features: feat_r·e^{base} with
 * feat/base such that the key feature at offset c is e^{base − c}·feat_r
 * (positive: base = 0, feat carried inside exps → return the exps directly). */
static double key_shift(const lat_shape *s, const double *a, double n)
{
    const int M = s->features;
    if (pf_trig(s))
        return n;
    double mx = -DBL_MAX;
    for (int r = 0; r < M; r++)
        mx = a[r] > mx ? a[r] : mx;
    return mx;
}

/* key feature (no ε_f, no scale) at offset c */
static void key_feat(const lat_shape *s, const double *a, double n, double c, double *f)
{
    const int M = s->features;
    if (pf_trig(s)) {
        const int m2 = M / 2;
        const double w = exp(n - c);
        for (int r = 0; r < m2; r++) {
            f[r] = w * sin(a[r]);
            f[m2 + r] = w * cos(a[r]);
        }
    } else {
        for (int r = 0; r < M; r++)
            f[r] = exp(a[r] - n - c);
    }
}

/* query feature (with ε_f, no scale) */
static void query_feat(const lat_shape *s, const double *a, double n, double *f)
{
    const int M = s->features;
    if (pf_trig(s)) {
        const int m2 = M / 2;
        for (int r = 0; r < m2; r++) {
            f[r] = sin(a[r]);
            f[m2 + r] = cos(a[r]);
        }
    } else {
        double mx = -DBL_MAX;
        for (int r = 0; r < M; r++)
            mx = a[r] > mx ? a[r] : mx;
        for (int r = 0; r < M; r++)
            f[r] = exp(a[r] - n - mx) + pf_eps(s);
    }
}

static double inv_m(const lat_shape *s) { return (pf_trig(s) ? 2.0 : 1.0) / (double)s->features; }
static double epsk(const lat_shape *s) { return pf_trig(s) ? 0.0 : pf_eps(s); }

static double fix_r(double R) { return fabs(R) <= PF_DELTA ? R + 2 * PF_DELTA : R; }

/* o = (fᵀU + ε Σf P) · inv_m, normalized by column V */
static void readout(const lat_shape *s, const double *U, const double *P, const double *f, double *o)
{
    const int M = s->features, V = s->V, V1 = V + 1;
    double sf = 0;
    for (int r = 0; r < M; r++)
        sf += f[r];
    double R = 0;
    for (int r = 0; r < M; r++)
        R += f[r] * U[(size_t)r * V1 + V];
    R = fix_r((R + epsk(s) * sf * P[V]) * inv_m(s));
    for (int x = 0; x < V; x++) {
        double acc = 0;
        for (int r = 0; r < M; r++)
            acc += f[r] * U[(size_t)r * V1 + x];
        o[x] = (acc + epsk(s) * sf * P[x]) * inv_m(s) / R;
    }
}

size_t ref_performer_state_len(const lat_shape *s)
{
    return (size_t)(s->features + 1) * (size_t)(s->V + 1) + 1;
}

lat_status ref_performer(const lat_shape *s, const double *const *in, const double *state_in,
                         double *out, double *state_out)
{
    const int M = s->features, V = s->V, V1 = V + 1, T = s->T, K = s->K;
    const double *q = in[0], *k = in[1], *v = in[2], *W = in[3];
    const size_t L = ref_performer_state_len(s), MV1 = (size_t)M * V1;
    double *st = malloc(sizeof(double) * L);
    double *a = malloc(sizeof(double) * (size_t)M);
    double *f = malloc(sizeof(double) * (size_t)M);
    if (!st || !a || !f) {
        free(st), free(a), free(f);
        return LAT_ENOMEM;
    }
    (void)K;
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            const size_t so = ((size_t)b * s->H + h) * L;
            double *U = st, *P = st + MV1, *c = st + L - 1;
            int have = state_in != NULL;
            if (state_in)
                memcpy(st, state_in + so, sizeof(double) * L);
            else
                memset(st, 0, sizeof(double) * L);
            const int nf = pf_trig(s) ? M / 2 : M;
            for (int t = 0; t < T; t++) {
                const double n = proj(s, W, k + at(s, b, t, h, K), a, nf);
                const double l = key_shift(s, a, n);
                if (!have || l > *c) {
                    const double sc = have ? exp(*c - l) : 0.0;
                    for (size_t e = 0; e < MV1; e++)
                        U[e] *= sc;
                    *c = l;
                    have = 1;
                }
                key_feat(s, a, n, *c, f);
                const double *vt = v + at(s, b, t, h, V);
                for (int r = 0; r < M; r++) {
                    for (int x = 0; x < V; x++)
                        U[(size_t)r * V1 + x] += f[r] * vt[x];
                    U[(size_t)r * V1 + V] += f[r];
                }
                for (int x = 0; x < V; x++)
                    P[x] += vt[x];
                P[V] += 1.0;
                if (s->causal) {
                    const double nq = proj(s, W, q + at(s, b, t, h, K), a, nf);
                    query_feat(s, a, nq, f);
                    readout(s, U, P, f, out + at(s, b, t, h, V));
                }
            }
            if (!s->causal)
                for (int t = 0; t < T; t++) {
                    const double nq = proj(s, W, q + at(s, b, t, h, K), a, nf);
                    query_feat(s, a, nq, f);
                    readout(s, U, P, f, out + at(s, b, t, h, V));
                }
            if (state_out)
                memcpy(state_out + so, st, sizeof(double) * L);
        }
    free(st), free(a), free(f);
    return LAT_OK;
}

/* Quadratic form: explicit w_tj = inv_m·⟨f_Q(q_t), f_K^{(c_t)}(k_j) + ε⟩ with the
 * key features rebuilt for each query at that query's offset c_t. */
lat_status ref_performer_parallel(const lat_shape *s, const double *const *in,
                                  const double *state_in, double *out, double *state_out)
{
    const int M = s->features, V = s->V, V1 = V + 1, T = s->T, K = s->K;
    const double *q = in[0], *k = in[1], *v = in[2], *W = in[3];
    const size_t L = ref_performer_state_len(s), MV1 = (size_t)M * V1;
    const int nf = pf_trig(s) ? M / 2 : M;
    double *ak = malloc(sizeof(double) * (size_t)T * M), *nk = malloc(sizeof(double) * (size_t)T);
    double *ct = malloc(sizeof(double) * (size_t)T), *a = malloc(sizeof(double) * M);
    double *fq = malloc(sizeof(double) * M), *fk = malloc(sizeof(double) * M);
    double *num = malloc(sizeof(double) * V1);
    if (!ak || !nk || !ct || !a || !fq || !fk || !num) {
        free(ak), free(nk), free(ct), free(a), free(fq), free(fk), free(num);
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            const size_t so = ((size_t)b * s->H + h) * L;
            const double *S0 = state_in ? state_in + so : NULL;
            double c = S0 ? S0[L - 1] : -DBL_MAX;
            for (int j = 0; j < T; j++) {
                nk[j] = proj(s, W, k + at(s, b, j, h, K), ak + (size_t)j * M, nf);
                const double l = key_shift(s, ak + (size_t)j * M, nk[j]);
                c = l > c ? l : c;
                ct[j] = c;
            }
            for (int t = 0; t < T; t++) {
                const double nq = proj(s, W, q + at(s, b, t, h, K), a, nf);
                query_feat(s, a, nq, fq);
                const double cq = s->causal ? ct[t] : ct[T - 1];
                const int jmax = s->causal ? t : T - 1;
                for (int x = 0; x < V1; x++)
                    num[x] = 0;
                for (int j = 0; j <= jmax; j++) {
                    key_feat(s, ak + (size_t)j * M, nk[j], cq, fk);
                    double w = 0;
                    for (int r = 0; r < M; r++)
                        w += fq[r] * (fk[r] + epsk(s));
                    w *= inv_m(s);
                    const double *vj = v + at(s, b, j, h, V);
                    for (int x = 0; x < V; x++)
                        num[x] += w * vj[x];
                    num[V] += w;
                }
                if (S0) { /* initial state: U0 at offset c0 → e^{c0 − cq}; P0 */
                    const double sc = exp(S0[L - 1] - cq);
                    double sf = 0;
                    for (int r = 0; r < M; r++)
                        sf += fq[r];
                    for (int x = 0; x < V1; x++) {
                        double acc = 0;
                        for (int r = 0; r < M; r++)
                            acc += fq[r] * S0[(size_t)r * V1 + x];
                        num[x] += (acc * sc + epsk(s) * sf * S0[MV1 + x]) * inv_m(s);
                    }
                }
                const double R = fix_r(num[V]);
                for (int x = 0; x < V; x++)
                    out[at(s, b, t, h, V) + x] = num[x] / R;
            }
            if (state_out) {
                double *U = state_out + so, *P = U + MV1;
                const double cT = ct[T - 1];
                for (size_t e = 0; e < MV1; e++)
                    U[e] = S0 ? S0[e] * exp(S0[L - 1] - cT) : 0.0;
                for (int x = 0; x < V1; x++)
                    P[x] = S0 ? S0[MV1 + x] : 0.0;
                for (int j = 0; j < T; j++) {
                    key_feat(s, ak + (size_t)j * M, nk[j], cT, fk);
                    const double *vj = v + at(s, b, j, h, V);
                    for (int r = 0; r < M; r++) {
                        for (int x = 0; x < V; x++)
                            U[(size_t)r * V1 + x] += fk[r] * vj[x];
                        U[(size_t)r * V1 + V] += fk[r];
                    }
                    for (int x = 0; x < V; x++)
                        P[x] += vj[x];
                    P[V] += 1.0;
                }
                U[L - 1] = cT;
            }
        }
    free(ak), free(nk), free(ct), free(a), free(fq), free(fk), free(num);
    return LAT_OK;
}
