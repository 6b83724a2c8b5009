/* hgrn2.c — fp64 references for HGRN2 (Qin et al. 2024, arXiv 2404.07904;
 * spec/recurrent.md §4): a gated linear RNN whose state is expanded by an
 * outer product, the key being tied to the forget gate.
 *
 * Inputs q [B][T][H][K] (output gate), g = log f [B][T][H][K] (forget gate in
 * log space, f = λ + (1 − λ)σ(z)), i [B][T][H][V] (input, the value), K = V.
 * Expand ratio n (knob `expand`, n | K): the K channels of a head form K/n
 * groups of n channels, each an HGRN2 head with an n×n state (n = K is one
 * group; n = 1 is HGRN1's element-wise recurrence). Per group, with k = 1 − f:
 *
 *   ref_hgrn2           the literal recurrence (§4.3):
 *                         S_t = Diag(f_t) S_(t−1) + (1 − f_t) i_tᵀ,   o_t = s S_tᵀ q_t
 *                       with 1 − f = −expm1(log f) (R6) and s = 1 (original
 *                       HGRN2 code; errata 5 — fla's layer uses n^(−1/2));
 *   ref_hgrn2_parallel  the GLA quadratic form with k = 1 − f (§4.3 → §2.4),
 *                       global cumsum G of log f in fp64:
 *                         o_t = s Σ_(j≤t) (Σ_a q_ta k_ja e^(G_ta − G_ja)) i_j
 *                               + s Σ_a q_ta e^(G_ta) S0[a][:]
 *                         S_T = Diag(e^(G_T)) S0 + Σ_j (k_j ⊙ e^(G_T − G_j)) i_jᵀ
 * State [B][H][K/n][n][n] (group-major, key rows, value columns). No BLAS;
 * (b, h, group) slices in parallel with OpenMP.
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

static size_t at(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * s->T + t) * s->H + h) * (size_t)D;
}

lat_status ref_hgrn2(const lat_shape *s, const double *const *in, const double *state_in,
                     double *out, double *state_out)
{
    const int K = s->K, n = s->expand, ng = s->K / s->expand;
    const int items = s->B * s->H * ng;
    const double *q = in[0], *g = in[1], *x = in[2];
    const double scale = 1.0;
    if (n < 1 || K % n || s->V != K)
        return LAT_EINVAL;
    int fail = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : fail)
    for (int it = 0; it < items; it++) {
        const int b = it / (s->H * ng), h = (it / ng) % s->H, c = it % ng;
        const size_t st = (size_t)it * n * n;
        double *S = malloc(sizeof(double) * (size_t)n * n);
        if (!S) {
            fail = 1;
            continue;
        }
        for (size_t e = 0; e < (size_t)n * n; e++)
            S[e] = state_in ? state_in[st + e] : 0.0;
        for (int t = 0; t < s->T; t++) {
            const size_t o0 = at(s, b, t, h, K) + (size_t)c * n;
            const double *qt = q + o0, *gt = g + o0, *xt = x + o0;
            double *ot = out + o0;
            for (int a = 0; a < n; a++) {
                const double f = exp(gt[a]), key = -expm1(gt[a]);
                for (int j = 0; j < n; j++)
                    S[(size_t)a * n + j] = f * S[(size_t)a * n + j] + key * xt[j];
            }
            for (int j = 0; j < n; j++) {
                double acc = 0.0;
                for (int a = 0; a < n; a++)
                    acc += qt[a] * S[(size_t)a * n + j];
                ot[j] = scale * acc;
            }
        }
        if (state_out)
            memcpy(state_out + st, S, sizeof(double) * (size_t)n * n);
        free(S);
    }
    return fail ? LAT_ENOMEM : LAT_OK;
}

lat_status ref_hgrn2_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out)
{
    const int K = s->K, T = s->T, n = s->expand, ng = s->K / s->expand;
    const int items = s->B * s->H * ng;
    const double *q = in[0], *g = in[1], *x = in[2];
    const double scale = 1.0;
    if (n < 1 || K % n || s->V != K)
        return LAT_EINVAL;
    int fail = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : fail)
    for (int it = 0; it < items; it++) {
        const int b = it / (s->H * ng), h = (it / ng) % s->H, c = it % ng;
        const size_t st = (size_t)it * n * n;
        const double *S0 = state_in ? state_in + st : NULL;
        double *G = malloc(sizeof(double) * (size_t)T * n);
        if (!G) {
            fail = 1;
            continue;
        }
        for (int t = 0; t < T; t++)
            for (int a = 0; a < n; a++)
                G[(size_t)t * n + a] = g[at(s, b, t, h, K) + (size_t)c * n + a] + (t > 0 ? G[(size_t)(t - 1) * n + a] : 0.0);
        for (int t = 0; t < T; t++) {
            const size_t o0 = at(s, b, t, h, K) + (size_t)c * n;
            const double *qt = q + o0, *Gt = G + (size_t)t * n;
            double *ot = out + o0;
            for (int j = 0; j < n; j++)
                ot[j] = 0.0;
            for (int u = 0; u <= t; u++) { /* causal mask: u ≤ t */
                const size_t u0 = at(s, b, u, h, K) + (size_t)c * n;
                const double *Gu = G + (size_t)u * n;
                double a = 0.0;
                for (int e = 0; e < n; e++)
                    a += qt[e] * -expm1(g[u0 + e]) * exp(Gt[e] - Gu[e]);
                for (int j = 0; j < n; j++)
                    ot[j] += a * x[u0 + j];
            }
            if (S0)
                for (int e = 0; e < n; e++) {
                    const double w = qt[e] * exp(Gt[e]);
                    for (int j = 0; j < n; j++)
                        ot[j] += w * S0[(size_t)e * n + j];
                }
            for (int j = 0; j < n; j++)
                ot[j] *= scale;
        }
        if (state_out) {
            const double *GT = G + (size_t)(T - 1) * n;
            for (int e = 0; e < n; e++)
                for (int j = 0; j < n; j++) {
                    double acc = S0 ? exp(GT[e]) * S0[(size_t)e * n + j] : 0.0;
                    for (int u = 0; u < T; u++) {
                        const size_t u0 = at(s, b, u, h, K) + (size_t)c * n;
                        acc += -expm1(g[u0 + e]) * exp(GT[e] - G[(size_t)u * n + e]) * x[u0 + j];
                    }
                    state_out[st + (size_t)e * n + j] = acc;
                }
        }
        free(G);
    }
    return fail ? LAT_ENOMEM : LAT_OK;
}
