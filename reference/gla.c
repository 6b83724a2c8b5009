/* gla.c — fp64 references for Gated Linear Attention (spec/recurrent.md §2).
 *
 *   ref_gla           the literal recurrence (§2.3):
 *                       S_t = Diag(e^{g_t}) S_{t−1} + k_t v_tᵀ,  o_t = s S_tᵀ q_t
 *   ref_gla_parallel  the quadratic form with the global cumsum G_t = Σ_{u≤t} g_u
 *                     (§2.4, reference only — fp64 keeps the global cumsum exact
 *                     enough):
 *                       o_t = s Σ_{j≤t} (Σ_i q_ti k_ji e^{G_ti − G_ji}) v_j
 *                             + s Σ_i q_ti e^{G_ti} S0[i][:]
 *                       S_T = Diag(e^{G_T}) S0 + Σ_j (k_j ⊙ e^{G_T − G_j}) v_jᵀ
 * s = K^{−1/2}; state [B][H][K][V]; state_in NULL → zeros. No BLAS, no OpenMP.
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

static size_t at(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h) * (size_t)D;
}

/* element [r][c] of a row-major matrix with row length ld */
static size_t rc(int r, int ld, int c) { return (size_t)r * (size_t)ld + (size_t)c; }

lat_status ref_gla(const lat_shape *s, const double *const *in, const double *state_in,
                   double *out, double *state_out)
{
    const int K = s->K, V = s->V;
    const double *q = in[0], *k = in[1], *v = in[2], *g = in[3];
    const double scale = 1.0 / sqrt((double)K);
    double *S = malloc(sizeof(double) * (size_t)K * (size_t)V);
    if (!S)
        return LAT_ENOMEM;
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            const size_t st = ((size_t)b * (size_t)s->H + (size_t)h) * (size_t)K * (size_t)V;
            for (size_t e = 0; e < (size_t)K * (size_t)V; e++)
                S[e] = state_in ? state_in[st + e] : 0.0;
            for (int t = 0; t < s->T; t++) {
                const double *qt = q + at(s, b, t, h, K), *kt = k + at(s, b, t, h, K);
                const double *gt = g + at(s, b, t, h, K), *vt = v + at(s, b, t, h, V);
                double *ot = out + at(s, b, t, h, V);
                for (int i = 0; i < K; i++) {
                    const double alpha = exp(gt[i]);
                    for (int j = 0; j < V; j++)
                        S[rc(i, V, j)] = alpha * S[rc(i, V, j)] + kt[i] * vt[j];
                }
                for (int j = 0; j < V; j++) {
                    double acc = 0.0;
                    for (int i = 0; i < K; i++)
                        acc += qt[i] * S[rc(i, V, j)];
                    ot[j] = scale * acc;
                }
            }
            if (state_out)
                memcpy(state_out + st, S, sizeof(double) * (size_t)K * (size_t)V);
        }
    free(S);
    return LAT_OK;
}

lat_status ref_gla_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                            double *out, double *state_out)
{
    const int K = s->K, V = s->V, T = s->T;
    const double *q = in[0], *k = in[1], *v = in[2], *g = in[3];
    const double scale = 1.0 / sqrt((double)K);
    double *G = malloc(sizeof(double) * (size_t)T * (size_t)K);
    if (!G)
        return LAT_ENOMEM;
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            const size_t st = ((size_t)b * (size_t)s->H + (size_t)h) * (size_t)K * (size_t)V;
            const double *S0 = state_in ? state_in + st : NULL;
            /* global inclusive cumsum of the log-gates */
            for (int t = 0; t < T; t++)
                for (int i = 0; i < K; i++)
                    G[rc(t, K, i)] = g[at(s, b, t, h, K) + (size_t)i] +
                                           (t > 0 ? G[rc(t - 1, K, i)] : 0.0);
            for (int t = 0; t < T; t++) {
                const double *qt = q + at(s, b, t, h, K), *Gt = G + rc(t, K, 0);
                double *ot = out + at(s, b, t, h, V);
                for (int j = 0; j < V; j++)
                    ot[j] = 0.0;
                for (int u = 0; u <= t; u++) { /* explicit causal mask: u ≤ t */
                    const double *ku = k + at(s, b, u, h, K), *Gu = G + rc(u, K, 0);
                    const double *vu = v + at(s, b, u, h, V);
                    double a = 0.0;
                    for (int i = 0; i < K; i++)
                        a += qt[i] * ku[i] * exp(Gt[i] - Gu[i]);
                    for (int j = 0; j < V; j++)
                        ot[j] += a * vu[j];
                }
                if (S0)
                    for (int i = 0; i < K; i++) {
                        const double w = qt[i] * exp(Gt[i]);
                        for (int j = 0; j < V; j++)
                            ot[j] += w * S0[rc(i, V, j)];
                    }
                for (int j = 0; j < V; j++)
                    ot[j] *= scale;
            }
            if (state_out) {
                const double *GT = G + rc(T - 1, K, 0);
                for (int i = 0; i < K; i++)
                    for (int j = 0; j < V; j++) {
                        double acc = S0 ? exp(GT[i]) * S0[rc(i, V, j)] : 0.0;
                        for (int u = 0; u < T; u++)
                            acc += k[at(s, b, u, h, K) + (size_t)i] * exp(GT[i] - G[rc(u, K, i)]) *
                                   v[at(s, b, u, h, V) + (size_t)j];
                        state_out[st + rc(i, V, j)] = acc;
                    }
            }
        }
    free(G);
    return LAT_OK;
}
