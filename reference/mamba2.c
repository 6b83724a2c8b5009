/* mamba2.c — fp64 references for Mamba-2 / SSD (Dao & Gu 2024;
 * spec/recurrent.md §6).
 *
 * Inputs (time-major; P = V head dim, N = n_state, G = groups, head h reads
 * group h / (H/G)):
 *   in[0] x        [B][T][H][P]
 *   in[1] dt       [B][T][H]      dt_raw; dt = softplus(dt_raw + dt_bias)
 *   in[2] dt_bias  [H]
 *   in[3] A_log    [H]            A = −exp(A_log) < 0, one scalar per head
 *   in[4] Bm       [B][T][G][N]
 *   in[5] Cm       [B][T][G][N]
 *   in[6] Dskip    [H]
 * Output y [B][T][H][P]; state [B][H][N][P] — the key-major S = hᵀ of the
 * GLA family (spec §0.2: mamba's ssm_state is h [B][H][P][N]; the same
 * numbers, transposed).
 *
 *   ref_mamba2           the literal recurrence (§6.3):
 *                          h_t = exp(dt_t A) h_{t−1} + (dt_t x_t) B_tᵀ   (P×N)
 *                          y_t = h_t C_t + D x_t
 *   ref_mamba2_parallel  the quadratic "attention" form (§6.4):
 *                          Y = (L ∘ (C Bᵀ)) (X ⊙ dt) + D X + e^{cum_t} h0 C_t
 *                          L_ts = exp(cum_t − cum_s), t ≥ s (masked, never
 *                          exponentiated above the diagonal),
 *                        cum = global fp64 cumsum of dt·A; the final state
 *                          h_T = e^{cum_T} h0 + Σ_s e^{cum_T − cum_s} dt_s x_s B_sᵀ.
 * state_in NULL → zeros. OpenMP over independent (b, h) slices only.
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

static size_t xat(const lat_shape *s, int b, int t, int h) /* x, y rows */
{
    return (((size_t)b * s->T + t) * s->H + h) * (size_t)s->V;
}

static size_t gat(const lat_shape *s, int b, int t, int g) /* B, C rows */
{
    return (((size_t)b * s->T + t) * (size_t)s->groups + g) * (size_t)s->n_state;
}

static int group_of(const lat_shape *s, int h) { return h / (s->H / s->groups); }

lat_status ref_mamba2(const lat_shape *s, const double *const *in, const double *state_in,
                      double *out, double *state_out)
{
    const int P = s->V, N = s->n_state, H = s->H;
    const double *x = in[0], *dt = in[1], *dtb = in[2], *Alog = in[3], *Bm = in[4], *Cm = in[5];
    const double *Dsk = in[6];
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (long bh = 0; bh < (long)s->B * H; bh++) {
        const int b = (int)(bh / H), h = (int)(bh % H), g = group_of(s, h);
        const double A = -exp(Alog[h]);
        double *hs = malloc(sizeof(double) * (size_t)P * N); /* h [P][N] */
        if (!hs) {
#pragma omp atomic write
            bad = 1;
            continue;
        }
        const size_t st = (size_t)bh * N * P;
        for (int p = 0; p < P; p++)
            for (int n = 0; n < N; n++)
                hs[(size_t)p * N + n] = state_in ? state_in[st + (size_t)n * P + p] : 0.0;
        for (int t = 0; t < s->T; t++) {
            const double d = ref_softplus(dt[((size_t)b * s->T + t) * H + h] + dtb[h]);
            const double dA = exp(d * A);
            const double *xt = x + xat(s, b, t, h), *Bt = Bm + gat(s, b, t, g), *Ct = Cm + gat(s, b, t, g);
            double *yt = out + xat(s, b, t, h);
            for (int p = 0; p < P; p++) {
                double y = 0.0;
                for (int n = 0; n < N; n++) {
                    double *hp = hs + (size_t)p * N + n;
                    *hp = dA * *hp + d * xt[p] * Bt[n];
                    y += *hp * Ct[n];
                }
                yt[p] = y + Dsk[h] * xt[p];
            }
        }
        if (state_out)
            for (int p = 0; p < P; p++)
                for (int n = 0; n < N; n++)
                    state_out[st + (size_t)n * P + p] = hs[(size_t)p * N + n];
        free(hs);
    }
    return bad ? LAT_ENOMEM : LAT_OK;
}

lat_status ref_mamba2_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                               double *out, double *state_out)
{
    const int P = s->V, N = s->n_state, H = s->H, T = s->T;
    const double *x = in[0], *dt = in[1], *dtb = in[2], *Alog = in[3], *Bm = in[4], *Cm = in[5];
    const double *Dsk = in[6];
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (long bh = 0; bh < (long)s->B * H; bh++) {
        const int b = (int)(bh / H), h = (int)(bh % H), g = group_of(s, h);
        const double A = -exp(Alog[h]);
        double *cum = malloc(sizeof(double) * 2 * (size_t)T);
        if (!cum) {
#pragma omp atomic write
            bad = 1;
            continue;
        }
        double *d = cum + T;
        for (int t = 0; t < T; t++) {
            d[t] = ref_softplus(dt[((size_t)b * T + t) * H + h] + dtb[h]);
            cum[t] = d[t] * A + (t > 0 ? cum[t - 1] : 0.0);
        }
        const size_t st = (size_t)bh * N * P;
        const double *S0 = state_in ? state_in + st : NULL; /* [N][P] */
        for (int t = 0; t < T; t++) {
            const double *Ct = Cm + gat(s, b, t, g), *xt = x + xat(s, b, t, h);
            double *yt = out + xat(s, b, t, h);
            for (int p = 0; p < P; p++)
                yt[p] = Dsk[h] * xt[p];
            for (int j = 0; j <= t; j++) { /* causal mask: j ≤ t */
                const double *Bj = Bm + gat(s, b, j, g), *xj = x + xat(s, b, j, h);
                double cb = 0.0;
                for (int n = 0; n < N; n++)
                    cb += Ct[n] * Bj[n];
                const double w = cb * exp(cum[t] - cum[j]) * d[j];
                for (int p = 0; p < P; p++)
                    yt[p] += w * xj[p];
            }
            if (S0)
                for (int n = 0; n < N; n++) {
                    const double w = exp(cum[t]) * Ct[n];
                    for (int p = 0; p < P; p++)
                        yt[p] += w * S0[(size_t)n * P + p];
                }
        }
        if (state_out)
            for (int n = 0; n < N; n++)
                for (int p = 0; p < P; p++) {
                    double acc = S0 ? exp(cum[T - 1]) * S0[(size_t)n * P + p] : 0.0;
                    for (int j = 0; j < T; j++)
                        acc += exp(cum[T - 1] - cum[j]) * d[j] * x[xat(s, b, j, h) + p] *
                               Bm[gat(s, b, j, g) + n];
                    state_out[st + (size_t)n * P + p] = acc;
                }
        free(cum);
    }
    return bad ? LAT_ENOMEM : LAT_OK;
}
