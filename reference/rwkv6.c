/* rwkv6.c — fp64 references for the RWKV-6 "Finch" wkv (Peng et al. 2024,
 * arXiv 2404.05892; spec/recurrent.md §7).
 *
 * Inputs r, k [B][T][H][K], v [B][T][H][V], w_raw [B][T][H][K], u [H][K].
 * Decay w = exp(−exp(w_raw)) ∈ [0, 1), log w = −exp(w_raw). No score scale.
 * State [B][H][K][V] (key-major, ggml's layout; the wkv6 CUDA kernel keeps the
 * transpose), S0 = 0 when absent.
 *
 *   ref_rwkv6           the literal recurrence (§7.3, wkv6 CUDA / ggml):
 *                         o_t = r_tᵀ (S_(t−1) + Diag(u) k_t v_tᵀ)
 *                         S_t = Diag(w_t) S_(t−1) + k_t v_tᵀ
 *   ref_rwkv6_parallel  the parallel form (§7.4) with the global inclusive
 *                       cumsum G of log w (fp64, reference only; G_(−1) = 0):
 *                         o_t = Σ_(j<t) (Σ_i r_ti k_ji e^(G_(t−1),i − G_ji)) v_j
 *                               + (r_t·(u ⊙ k_t)) v_t + Σ_i r_ti e^(G_(t−1),i) S0[i][:]
 *                         S_T = Diag(e^(G_(T−1))) S0 + Σ_j (k_j ⊙ e^(G_(T−1) − G_j)) v_jᵀ
 * Every exponent is ≤ 0. No BLAS; slices in parallel with OpenMP.
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

static size_t at(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * s->T + t) * s->H + h) * (size_t)D;
}

lat_status ref_rwkv6(const lat_shape *s, const double *const *in, const double *state_in,
                     double *out, double *state_out)
{
    const int K = s->K, V = s->V, BH = s->B * s->H;
    const double *r = in[0], *k = in[1], *v = in[2], *wr = in[3], *u = in[4];
    int fail = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : fail)
    for (int bh = 0; bh < BH; bh++) {
        const int b = bh / s->H, h = bh % s->H;
        const size_t st = (size_t)bh * K * V;
        const double *uh = u + (size_t)h * K;
        double *S = malloc(sizeof(double) * (size_t)K * V);
        if (!S) {
            fail = 1;
            continue;
        }
        for (size_t e = 0; e < (size_t)K * V; e++)
            S[e] = state_in ? state_in[st + e] : 0.0;
        for (int t = 0; t < s->T; t++) {
            const double *rt = r + at(s, b, t, h, K), *kt = k + at(s, b, t, h, K);
            const double *wt = wr + at(s, b, t, h, K), *vt = v + at(s, b, t, h, V);
            double *ot = out + at(s, b, t, h, V);
            /* read-out first: previous state plus the bonus of the current token */
            for (int j = 0; j < V; j++) {
                double acc = 0.0;
                for (int i = 0; i < K; i++)
                    acc += rt[i] * (S[(size_t)i * V + j] + uh[i] * kt[i] * vt[j]);
                ot[j] = acc;
            }
            /* then the decay and the new token */
            for (int i = 0; i < K; i++) {
                const double w = exp(-exp(wt[i]));
                for (int j = 0; j < V; j++)
                    S[(size_t)i * V + j] = w * S[(size_t)i * V + j] + kt[i] * vt[j];
            }
        }
        if (state_out)
            memcpy(state_out + st, S, sizeof(double) * (size_t)K * V);
        free(S);
    }
    return fail ? LAT_ENOMEM : LAT_OK;
}

lat_status ref_rwkv6_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out)
{
    const int K = s->K, V = s->V, T = s->T, BH = s->B * s->H;
    const double *r = in[0], *k = in[1], *v = in[2], *wr = in[3], *u = in[4];
    int fail = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : fail)
    for (int bh = 0; bh < BH; bh++) {
        const int b = bh / s->H, h = bh % s->H;
        const size_t st = (size_t)bh * K * V;
        const double *S0 = state_in ? state_in + st : NULL;
        const double *uh = u + (size_t)h * K;
        /* G[t+1] = inclusive cumsum of log w up to token t; G[0] = 0 */
        double *G = malloc(sizeof(double) * (size_t)(T + 1) * K);
        if (!G) {
            fail = 1;
            continue;
        }
        for (int i = 0; i < K; i++)
            G[i] = 0.0;
        for (int t = 0; t < T; t++)
            for (int i = 0; i < K; i++)
                G[(size_t)(t + 1) * K + i] = G[(size_t)t * K + i] - exp(wr[at(s, b, t, h, K) + i]);
        for (int t = 0; t < T; t++) {
            const double *rt = r + at(s, b, t, h, K), *kt = k + at(s, b, t, h, K);
            const double *Gex = G + (size_t)t * K; /* G_(t−1): exclusive */
            const double *vt = v + at(s, b, t, h, V);
            double *ot = out + at(s, b, t, h, V);
            double bonus = 0.0;
            for (int i = 0; i < K; i++)
                bonus += rt[i] * uh[i] * kt[i];
            for (int j = 0; j < V; j++)
                ot[j] = bonus * vt[j];
            for (int jt = 0; jt < t; jt++) { /* strictly earlier tokens */
                const double *kj = k + at(s, b, jt, h, K), *Gj = G + (size_t)(jt + 1) * K;
                const double *vj = v + at(s, b, jt, h, V);
                double a = 0.0;
                for (int i = 0; i < K; i++)
                    a += rt[i] * kj[i] * exp(Gex[i] - Gj[i]);
                for (int j = 0; j < V; j++)
                    ot[j] += a * vj[j];
            }
            if (S0)
                for (int i = 0; i < K; i++) {
                    const double wgt = rt[i] * exp(Gex[i]);
                    for (int j = 0; j < V; j++)
                        ot[j] += wgt * S0[(size_t)i * V + j];
                }
        }
        if (state_out) {
            const double *GT = G + (size_t)T * K;
            for (int i = 0; i < K; i++)
                for (int j = 0; j < V; j++) {
                    double acc = S0 ? exp(GT[i]) * S0[(size_t)i * V + j] : 0.0;
                    for (int jt = 0; jt < T; jt++)
                        acc += k[at(s, b, jt, h, K) + i] * exp(GT[i] - G[(size_t)(jt + 1) * K + i]) *
                               v[at(s, b, jt, h, V) + j];
                    state_out[st + (size_t)i * V + j] = acc;
                }
        }
        free(G);
    }
    return fail ? LAT_ENOMEM : LAT_OK;
}
