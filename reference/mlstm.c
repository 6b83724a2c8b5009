/* mlstm.c — fp64 references for the mLSTM cell of xLSTM (Beck et al. 2024,
 * arXiv 2405.04517), spec/recurrent.md §9.
 *
 *   ref_mlstm           the stabilized recurrence, literally (§9.4):
 *                         log f_t = logsigmoid(f̃_t)
 *                         m_t  = max(log f_t + m_{t−1}, ĩ_t)
 *                         f'_t = e^{log f_t + m_{t−1} − m_t},  i'_t = e^{ĩ_t − m_t}
 *                         C_t  = f'_t C_{t−1} + i'_t k̂_t v_tᵀ
 *                         n_t  = f'_t n_{t−1} + i'_t k̂_t
 *                         h_t  = C_tᵀ q_t / (max(|n_tᵀ q_t|, e^{−m_t}) + ε)
 *   ref_mlstm_parallel  the stabilized parallel form (§9.5) with the global
 *                       cumsum F_t = Σ_{u≤t} log f_u, the initial state
 *                       entering as one more "token" of log-weight m0 + F_t:
 *                         log D_ts = F_t − F_s + ĩ_s            (s ≤ t)
 *                         m_t  = max(m0 + F_t, max_{s≤t} log D_ts)
 *                         num_t = Σ_s (q_t·k̂_s) e^{log D_ts − m_t} v_s
 *                                 + e^{m0 + F_t − m_t} C0ᵀ q_t
 *                         den_t = Σ_s (q_t·k̂_s) e^{log D_ts − m_t}
 *                                 + e^{m0 + F_t − m_t} n0·q_t
 *                         h_t  = num_t / (max(|den_t|, e^{−m_t}) + ε)
 *                       and the final state from the same weights at t = T.
 *                       O(T²) — the harness runs it for T ≤ 512 only.
 * k̂ = k / √K, ε = 1e-6. Both forms compute the same m_t (the recurrence
 * unrolled), so ε acts identically and they agree to rounding.
 *
 * State per (b, h), [B][H][K·V + K + 1] (lat_dims of impls/mlstm.c):
 *   C [K][V] (key-major, stabilized: true C times e^{−m}), then n [K]
 *   (stabilized the same way), then m. state_in NULL → the empty state
 *   C = 0, n = 0, m = 0 (the xlstm step code starts from m0 = 0; an all-zero
 *   buffer is the empty state).
 * Inputs: q, k [B][T][H][K], v [B][T][H][V], ĩ (input-gate pre-activation)
 * and f̃ (forget-gate pre-activation) [B][T][H]. No BLAS; OpenMP over
 * independent (b, h) slices only.
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

#define MLSTM_EPS 1e-6

static size_t at(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h) * (size_t)D;
}

static size_t slice_floats(const lat_shape *s)
{
    return (size_t)s->K * (size_t)s->V + (size_t)s->K + 1;
}

lat_status ref_mlstm(const lat_shape *s, const double *const *in, const double *state_in,
                     double *out, double *state_out)
{
    const int K = s->K, V = s->V, T = s->T, BH = s->B * s->H;
    const double *q = in[0], *k = in[1], *v = in[2], *ig = in[3], *fg = in[4];
    const double scale = 1.0 / sqrt((double)K);
    const size_t SL = slice_floats(s);
    int fail = 0;

#pragma omp parallel for schedule(dynamic, 1) reduction(| : fail)
    for (int bh = 0; bh < BH; bh++) {
        const int b = bh / s->H, h = bh % s->H;
        double *C = malloc(sizeof(double) * SL);
        double *num = malloc(sizeof(double) * (size_t)V);
        if (!C || !num) {
            free(C);
            free(num);
            fail = 1;
            continue;
        }
        double *n = C + (size_t)K * (size_t)V;
        if (state_in)
            memcpy(C, state_in + (size_t)bh * SL, sizeof(double) * SL);
        else
            memset(C, 0, sizeof(double) * SL);
        double m = C[SL - 1];
        for (int t = 0; t < T; t++) {
            const double *qt = q + at(s, b, t, h, K), *kt = k + at(s, b, t, h, K), *vt = v + at(s, b, t, h, V);
            const size_t x = at(s, b, t, h, 1);
            const double logf = ref_logsigmoid(fg[x]), it = ig[x];
            const double mt = fmax(logf + m, it);
            const double fp = exp(logf + m - mt), ip = exp(it - mt);
            for (int j = 0; j < V; j++)
                num[j] = 0.0;
            double den = 0.0;
            for (int i = 0; i < K; i++) {
                const double kh = scale * kt[i];
                double *Ci = C + (size_t)i * (size_t)V;
                for (int j = 0; j < V; j++) {
                    Ci[j] = fp * Ci[j] + ip * kh * vt[j];
                    num[j] += qt[i] * Ci[j];
                }
                n[i] = fp * n[i] + ip * kh;
                den += qt[i] * n[i];
            }
            const double d = fmax(fabs(den), exp(-mt)) + MLSTM_EPS;
            double *ot = out + at(s, b, t, h, V);
            for (int j = 0; j < V; j++)
                ot[j] = num[j] / d;
            m = mt;
        }
        C[SL - 1] = m;
        if (state_out)
            memcpy(state_out + (size_t)bh * SL, C, sizeof(double) * SL);
        free(C);
        free(num);
    }
    return fail ? LAT_ENOMEM : LAT_OK;
}

lat_status ref_mlstm_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out)
{
    const int K = s->K, V = s->V, T = s->T, BH = s->B * s->H;
    const double *q = in[0], *k = in[1], *v = in[2], *ig = in[3], *fg = in[4];
    const double scale = 1.0 / sqrt((double)K);
    const size_t SL = slice_floats(s), KV = (size_t)K * (size_t)V;
    int fail = 0;

#pragma omp parallel for schedule(dynamic, 1) reduction(| : fail)
    for (int bh = 0; bh < BH; bh++) {
        const int b = bh / s->H, h = bh % s->H;
        double *F = malloc(sizeof(double) * (size_t)(T + 1));
        double *num = malloc(sizeof(double) * (size_t)V);
        if (!F || !num) {
            free(F);
            free(num);
            fail = 1;
            continue;
        }
        const double *S0 = state_in ? state_in + (size_t)bh * SL : NULL;
        const double m0 = S0 ? S0[SL - 1] : 0.0;
        /* F[t + 1] = Σ_{u ≤ t} log f_u (0-based tokens), F[0] = 0 */
        F[0] = 0.0;
        for (int t = 0; t < T; t++)
            F[t + 1] = F[t] + ref_logsigmoid(fg[at(s, b, t, h, 1)]);
        for (int t = 0; t < T; t++) {
            const double *qt = q + at(s, b, t, h, K);
            const double Ft = F[t + 1];
            double mt = m0 + Ft;
            for (int u = 0; u <= t; u++)
                mt = fmax(mt, Ft - F[u + 1] + ig[at(s, b, u, h, 1)]);
            for (int j = 0; j < V; j++)
                num[j] = 0.0;
            double den = 0.0;
            if (S0) { /* the initial state: weight e^{m0 + F_t − m_t} */
                const double w0 = exp(m0 + Ft - mt);
                for (int i = 0; i < K; i++) {
                    const double qi = w0 * qt[i];
                    const double *C0i = S0 + (size_t)i * (size_t)V;
                    for (int j = 0; j < V; j++)
                        num[j] += qi * C0i[j];
                    den += qi * S0[KV + (size_t)i];
                }
            }
            for (int u = 0; u <= t; u++) {
                const double *ku = k + at(s, b, u, h, K), *vu = v + at(s, b, u, h, V);
                const double logD = Ft - F[u + 1] + ig[at(s, b, u, h, 1)];
                double qk = 0.0;
                for (int i = 0; i < K; i++)
                    qk += qt[i] * scale * ku[i];
                const double c = qk * exp(logD - mt);
                for (int j = 0; j < V; j++)
                    num[j] += c * vu[j];
                den += c;
            }
            const double d = fmax(fabs(den), exp(-mt)) + MLSTM_EPS;
            double *ot = out + at(s, b, t, h, V);
            for (int j = 0; j < V; j++)
                ot[j] = num[j] / d;
        }
        if (state_out) {
            const double FT = F[T];
            double mT = m0 + FT;
            for (int u = 0; u < T; u++)
                mT = fmax(mT, FT - F[u + 1] + ig[at(s, b, u, h, 1)]);
            double *SO = state_out + (size_t)bh * SL;
            const double w0 = exp(m0 + FT - mT);
            for (size_t e = 0; e < SL - 1; e++)
                SO[e] = S0 ? w0 * S0[e] : 0.0;
            for (int u = 0; u < T; u++) {
                const double *ku = k + at(s, b, u, h, K), *vu = v + at(s, b, u, h, V);
                const double w = exp(FT - F[u + 1] + ig[at(s, b, u, h, 1)] - mT);
                for (int i = 0; i < K; i++) {
                    const double kh = w * scale * ku[i];
                    double *Ci = SO + (size_t)i * (size_t)V;
                    for (int j = 0; j < V; j++)
                        Ci[j] += kh * vu[j];
                    SO[KV + (size_t)i] += kh;
                }
            }
            SO[SL - 1] = mT;
        }
        free(F);
        free(num);
    }
    return fail ? LAT_ENOMEM : LAT_OK;
}
