/* linear_attn.c — fp64 references for vanilla linear attention (Katharopoulos
 * et al. 2020; spec/attention.md §3), φ(x) = elu(x) + 1, ε = 1e-6, no 1/√K.
 *
 * State [B][H][K][V+1]: row i = [S[i][0..V−1], z[i]] (z is the normalizer).
 *
 *   ref_linear_attn            quadratic form (§0.5 recipe): the explicit kernel
 *                              matrix a_ij = ⟨φ(q_i), φ(k_j)⟩, masked to j ≤ i
 *                              when causal (all j otherwise), plus the initial
 *                              state's terms φ(q_i)ᵀS0 and ⟨φ(q_i), z0⟩:
 *                                o_i = (Σ_j a_ij v_j + S0ᵀφ(q_i)) /
 *                                      (Σ_j a_ij + ⟨z0, φ(q_i)⟩ + ε)
 *                              final state directly: S0 + Σ_j φ(k_j) [v_j, 1]ᵀ.
 *   ref_linear_attn_recurrent  the literal recurrence (current token added
 *                              before the readout); non-causal: all tokens
 *                              first, then every readout.
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

#define LA_EPS 1e-6

static size_t at(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h) * (size_t)D;
}

/* element [r][c] of a row-major matrix with row length ld */
static size_t rc(int r, int ld, int c) { return (size_t)r * (size_t)ld + (size_t)c; }

static void phi(double *y, const double *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] = ref_elu1(x[i]);
}

lat_status ref_linear_attn(const lat_shape *s, const double *const *in, const double *state_in,
                           double *out, double *state_out)
{
    const int K = s->K, V = s->V, T = s->T, V1 = s->V + 1;
    const double *q = in[0], *k = in[1], *v = in[2];
    double *fk = malloc(sizeof(double) * (size_t)T * (size_t)K);
    double *fq = malloc(sizeof(double) * (size_t)K);
    double *num = malloc(sizeof(double) * (size_t)V);
    if (!fk || !fq || !num) {
        free(fk), free(fq), free(num);
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            const size_t st = ((size_t)b * (size_t)s->H + (size_t)h) * (size_t)K * (size_t)V1;
            const double *S0 = state_in ? state_in + st : NULL;
            for (int j = 0; j < T; j++)
                phi(fk + rc(j, K, 0), k + at(s, b, j, h, K), K);
            for (int i = 0; i < T; i++) {
                phi(fq, q + at(s, b, i, h, K), K);
                double den = 0.0;
                for (int x = 0; x < V; x++)
                    num[x] = 0.0;
                const int jmax = s->causal ? i : T - 1; /* mask: j ≤ i when causal */
                for (int j = 0; j <= jmax; j++) {
                    double a = 0.0;
                    for (int c = 0; c < K; c++)
                        a += fq[c] * fk[rc(j, K, c)];
                    const double *vj = v + at(s, b, j, h, V);
                    for (int x = 0; x < V; x++)
                        num[x] += a * vj[x];
                    den += a;
                }
                if (S0)
                    for (int c = 0; c < K; c++) {
                        for (int x = 0; x < V; x++)
                            num[x] += fq[c] * S0[rc(c, V1, x)];
                        den += fq[c] * S0[rc(c, V1, V)];
                    }
                double *oi = out + at(s, b, i, h, V);
                for (int x = 0; x < V; x++)
                    oi[x] = num[x] / (den + LA_EPS);
            }
            if (state_out)
                for (int c = 0; c < K; c++)
                    for (int x = 0; x <= V; x++) {
                        double acc = S0 ? S0[rc(c, V1, x)] : 0.0;
                        for (int j = 0; j < T; j++) { /* [v_j, 1] */
                            const double vx = x < V ? v[at(s, b, j, h, V) + (size_t)x] : 1.0;
                            acc += fk[rc(j, K, c)] * vx;
                        }
                        state_out[st + rc(c, V1, x)] = acc;
                    }
        }
    free(fk), free(fq), free(num);
    return LAT_OK;
}

/* S += φ(k_t) [v_t, 1]ᵀ */
static void rank1(double *S, const double *fk, const double *vt, int K, int V)
{
    for (int c = 0; c < K; c++) {
        for (int x = 0; x < V; x++)
            S[rc(c, V + 1, x)] += fk[c] * vt[x];
        S[rc(c, V + 1, V)] += fk[c];
    }
}

/* o = Sᵀφ(q) / (⟨z, φ(q)⟩ + ε) */
static void readout(const double *S, const double *fq, double *ot, int K, int V)
{
    double den = 0.0;
    for (int c = 0; c < K; c++)
        den += fq[c] * S[rc(c, V + 1, V)];
    for (int x = 0; x < V; x++) {
        double acc = 0.0;
        for (int c = 0; c < K; c++)
            acc += fq[c] * S[rc(c, V + 1, x)];
        ot[x] = acc / (den + LA_EPS);
    }
}

lat_status ref_linear_attn_recurrent(const lat_shape *s, const double *const *in,
                                     const double *state_in, double *out, double *state_out)
{
    const int K = s->K, V = s->V, T = s->T, V1 = s->V + 1;
    const double *q = in[0], *k = in[1], *v = in[2];
    const size_t n = (size_t)K * (size_t)V1;
    double *S = malloc(sizeof(double) * n);
    double *f = malloc(sizeof(double) * (size_t)K);
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
                    phi(f, k + at(s, b, t, h, K), K);
                    rank1(S, f, v + at(s, b, t, h, V), K, V);
                    phi(f, q + at(s, b, t, h, K), K);
                    readout(S, f, out + at(s, b, t, h, V), K, V);
                }
            } else {
                for (int t = 0; t < T; t++) {
                    phi(f, k + at(s, b, t, h, K), K);
                    rank1(S, f, v + at(s, b, t, h, V), K, V);
                }
                for (int t = 0; t < T; t++) {
                    phi(f, q + at(s, b, t, h, K), K);
                    readout(S, f, out + at(s, b, t, h, V), K, V);
                }
            }
            if (state_out)
                memcpy(state_out + st, S, sizeof(double) * n);
        }
    free(S), free(f);
    return LAT_OK;
}
