/* mla.c — fp64 references for MLA's cosFormer mechanism (Agostinelli & Chen,
 * "Modular linearized attention", arXiv 2304.08453; spec/attention.md §10.2,
 * Errata 6, Appendix B), straight from OSU-STARLAB/Modular-Linearized-
 * Attention `cosformer_attn_*` (φ = ReLU, no 1/√D, denominator clamp ≥ 0.1).
 *
 * Positions are 1-based and absolute: token t of this call is i = pos + t + 1.
 * θ_i = (π/2)·i/M with M = ref_mla_length(s) (knob `window` when > 0, else
 * ctx = pos + T, the whole sequence). Features (variant 0, cosFormer):
 *   φ(x, i) = [ReLU(x)·sin θ_i ; ReLU(x)·cos θ_i]        (2K)
 * variant 1 ("simple" ReLU linear attention): φ(x, i) = ReLU(x)      (K).
 * Causal: S_t = S_{t−1} + φ(k_t)[v_t | 1]ᵀ,
 *         o_t = S_tᵀφ(q_t)[0..V) / max(S_tᵀφ(q_t)[V], 0.1).
 * Non-causal: every query reads S after all T tokens.
 * State [B][H][F][V+1], F = 2K (rows 0..K−1 the sin part, K..2K−1 the cos
 * part) or K; column V is the normalizer z = Σ φ(k).
 *
 *   ref_mla           the literal recurrence (O(T));
 *   ref_mla_parallel  quadratic: the pair weight computed directly as the
 *                     kernel ⟨ReLU q_i, ReLU k_j⟩·cos(π(i−j)/(2M)) (checks the
 *                     sin/cos algebra), masked j ≤ i when causal, plus the
 *                     initial state's terms φ(q_i)ᵀS0 and ⟨φ(q_i), z0⟩.
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

#define MLA_CLAMP 0.1

static size_t at(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h) * (size_t)D;
}

/* element [r][c] of a row-major matrix with row length ld */
static size_t rc(int r, int ld, int c) { return (size_t)r * (size_t)ld + (size_t)c; }

int ref_mla_length(const lat_shape *s) { return s->window > 0 ? s->window : lat_shape_ctx(s); }

int ref_mla_nfeat(const lat_shape *s) { return s->variant == 1 ? s->K : 2 * s->K; }

static double relu(double x) { return x > 0.0 ? x : 0.0; }

/* θ of token t of this call */
static double theta(const lat_shape *s, int t)
{
    return (M_PI / 2.0) * (double)(s->pos + t + 1) / (double)ref_mla_length(s);
}

/* f = φ(x) of token t */
static void phi(const lat_shape *s, const double *x, int t, double *f)
{
    const int K = s->K;
    if (s->variant == 1) {
        for (int i = 0; i < K; i++)
            f[i] = relu(x[i]);
        return;
    }
    const double sn = sin(theta(s, t)), cs = cos(theta(s, t));
    for (int i = 0; i < K; i++) {
        f[i] = relu(x[i]) * sn;
        f[K + i] = relu(x[i]) * cs;
    }
}

/* S += φ(k) [v, 1]ᵀ */
static void rank1(double *S, const double *fk, const double *vt, int F, int V)
{
    for (int c = 0; c < F; c++) {
        for (int x = 0; x < V; x++)
            S[rc(c, V + 1, x)] += fk[c] * vt[x];
        S[rc(c, V + 1, V)] += fk[c];
    }
}

/* o = Sᵀφ(q) / max(⟨z, φ(q)⟩, 0.1) */
static void readout(const double *S, const double *fq, double *ot, int F, int V)
{
    double den = 0.0;
    for (int c = 0; c < F; c++)
        den += fq[c] * S[rc(c, V + 1, V)];
    den = den > MLA_CLAMP ? den : MLA_CLAMP;
    for (int x = 0; x < V; x++) {
        double acc = 0.0;
        for (int c = 0; c < F; c++)
            acc += fq[c] * S[rc(c, V + 1, x)];
        ot[x] = acc / den;
    }
}

lat_status ref_mla(const lat_shape *s, const double *const *in, const double *state_in, double *out,
                   double *state_out)
{
    const int K = s->K, V = s->V, T = s->T, F = ref_mla_nfeat(s);
    const double *q = in[0], *k = in[1], *v = in[2];
    const size_t n = (size_t)F * (size_t)(V + 1);
    double *S = malloc(sizeof(double) * n);
    double *f = malloc(sizeof(double) * (size_t)F);
    if (!S || !f) {
        free(S), free(f);
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            const size_t st = ((size_t)b * (size_t)s->H + (size_t)h) * n;
            for (size_t e = 0; e < n; e++)
                S[e] = state_in ? state_in[st + e] : 0.0;
            if (s->causal) {
                for (int t = 0; t < T; t++) {
                    phi(s, k + at(s, b, t, h, K), t, f);
                    rank1(S, f, v + at(s, b, t, h, V), F, V);
                    phi(s, q + at(s, b, t, h, K), t, f);
                    readout(S, f, out + at(s, b, t, h, V), F, V);
                }
            } else {
                for (int t = 0; t < T; t++) {
                    phi(s, k + at(s, b, t, h, K), t, f);
                    rank1(S, f, v + at(s, b, t, h, V), F, V);
                }
                for (int t = 0; t < T; t++) {
                    phi(s, q + at(s, b, t, h, K), t, f);
                    readout(S, f, out + at(s, b, t, h, V), F, V);
                }
            }
            if (state_out)
                memcpy(state_out + st, S, sizeof(double) * n);
        }
    free(S), free(f);
    return LAT_OK;
}

lat_status ref_mla_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                            double *out, double *state_out)
{
    const int K = s->K, V = s->V, T = s->T, V1 = s->V + 1, F = ref_mla_nfeat(s);
    const double *q = in[0], *k = in[1], *v = in[2];
    const double M = (double)ref_mla_length(s);
    double *rk = malloc(sizeof(double) * (size_t)T * (size_t)K); /* ReLU(k_j) */
    double *rq = malloc(sizeof(double) * (size_t)K);
    double *fq = malloc(sizeof(double) * (size_t)F);
    double *fk = malloc(sizeof(double) * (size_t)F);
    double *num = malloc(sizeof(double) * (size_t)V);
    if (!rk || !rq || !fq || !fk || !num) {
        free(rk), free(rq), free(fq), free(fk), free(num);
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            const size_t st = ((size_t)b * (size_t)s->H + (size_t)h) * (size_t)F * (size_t)V1;
            const double *S0 = state_in ? state_in + st : NULL;
            for (int j = 0; j < T; j++)
                for (int c = 0; c < K; c++)
                    rk[rc(j, K, c)] = relu(k[at(s, b, j, h, K) + (size_t)c]);
            for (int i = 0; i < T; i++) {
                const double *qi = q + at(s, b, i, h, K);
                for (int c = 0; c < K; c++)
                    rq[c] = relu(qi[c]);
                double den = 0.0;
                for (int x = 0; x < V; x++)
                    num[x] = 0.0;
                const int jmax = s->causal ? i : T - 1; /* mask: j ≤ i when causal */
                for (int j = 0; j <= jmax; j++) {
                    double a = 0.0;
                    for (int c = 0; c < K; c++)
                        a += rq[c] * rk[rc(j, K, c)];
                    if (s->variant != 1) /* positions differ by i − j in any frame */
                        a *= cos((M_PI / 2.0) * (double)(i - j) / M);
                    const double *vj = v + at(s, b, j, h, V);
                    for (int x = 0; x < V; x++)
                        num[x] += a * vj[x];
                    den += a;
                }
                if (S0) {
                    phi(s, qi, i, fq);
                    for (int c = 0; c < F; c++) {
                        for (int x = 0; x < V; x++)
                            num[x] += fq[c] * S0[rc(c, V1, x)];
                        den += fq[c] * S0[rc(c, V1, V)];
                    }
                }
                den = den > MLA_CLAMP ? den : MLA_CLAMP;
                double *oi = out + at(s, b, i, h, V);
                for (int x = 0; x < V; x++)
                    oi[x] = num[x] / den;
            }
            if (state_out) {
                for (int c = 0; c < F; c++)
                    for (int x = 0; x <= V; x++)
                        state_out[st + rc(c, V1, x)] = S0 ? S0[rc(c, V1, x)] : 0.0;
                for (int j = 0; j < T; j++) {
                    phi(s, k + at(s, b, j, h, K), j, fk);
                    for (int c = 0; c < F; c++)
                        for (int x = 0; x <= V; x++) { /* [v_j, 1] */
                            const double vx = x < V ? v[at(s, b, j, h, V) + (size_t)x] : 1.0;
                            state_out[st + rc(c, V1, x)] += fk[c] * vx;
                        }
                }
            }
        }
    free(rk), free(rq), free(fq), free(fk), free(num);
    return LAT_OK;
}
