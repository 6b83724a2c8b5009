/* rfa.c — fp64 references for RFA and Gated RFA (Peng et al., ICLR 2021;
 * spec/attention.md §4.2, Errata 4, recurrent.md §10).
 *
 * Inputs q, k [B][T][H][K], v [B][T][H][V], W [H][Dr][K] (per-head random
 * rows, Dr = features), lg [B][T][H] = log g (gated only; variant 1).
 *   x̂ = x/(‖x‖ + 1e-3),  φ(x) = Dr^{-1/2}[sin(W_h x̂); cos(W_h x̂)]   (blocks, Errata 4)
 *   RFA   : S_t = S_{t−1} + φ(k_t)[v_t|1]ᵀ
 *   gated : S_t = g_t S_{t−1} + (1 − g_t) φ(k_t)[v_t|1]ᵀ
 *   o_t = (S_tᵀφ(q_t))[0..V) / max((S_tᵀφ(q_t))[V], ε_R),  ε_R = 10/Dr (code's EPS = 0.1
 *   with 0.1-scaled features, converted to the Dr^{-1/2} scaling; spec §4.2).
 * State [B][H][2Dr][V+1].
 *   ref_rfa           literal recurrence;
 *   ref_rfa_parallel  quadratic: w_tj = ⟨φ(q_t),φ(k_j)⟩(1−g_j)Π_{s=j+1}^{t} g_s (log space).
 *   ref_rfa_softmax   exact target: weights exp(⟨q̂_t,k̂_j⟩) [·(1−g_j)Π g_s when gated].
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

static size_t at(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h) * (size_t)D;
}
static size_t ath(const lat_shape *s, int b, int t, int h)
{
    return ((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h;
}

static void unit(const lat_shape *s, const double *x, double *y)
{
    double n = 0;
    for (int c = 0; c < s->K; c++)
        n += x[c] * x[c];
    n = 1.0 / (sqrt(n) + 1e-3);
    for (int c = 0; c < s->K; c++)
        y[c] = x[c] * n;
}

static void phi(const lat_shape *s, const double *W, int h, const double *x, double *f)
{
    const int Dr = s->features, K = s->K;
    double xh[512];
    unit(s, x, xh);
    const double sc = 1.0 / sqrt((double)Dr);
    for (int r = 0; r < Dr; r++) {
        const double *w = W + ((size_t)h * Dr + r) * (size_t)K;
        double a = 0;
        for (int c = 0; c < K; c++)
            a += w[c] * xh[c];
        f[r] = sc * sin(a);
        f[Dr + r] = sc * cos(a);
    }
}

static double clampden(const lat_shape *s, double d)
{
    const double e = 10.0 / (double)s->features;
    return d > e ? d : e;
}

lat_status ref_rfa(const lat_shape *s, const double *const *in, const double *state_in, double *out,
                   double *state_out)
{
    const int F = 2 * s->features, V = s->V, V1 = V + 1, K = s->K;
    const size_t n = (size_t)F * V1;
    const int gated = s->variant == 1;
    double *S = malloc(sizeof(double) * n), *f = malloc(sizeof(double) * F);
    if (!S || !f || K > 512) {
        free(S), free(f);
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            const size_t so = ((size_t)b * s->H + h) * n;
            for (size_t e = 0; e < n; e++)
                S[e] = state_in ? state_in[so + e] : 0.0;
            for (int t = 0; t < s->T; t++) {
                const double g = gated ? exp(in[4][ath(s, b, t, h)]) : 1.0;
                const double bet = gated ? -expm1(in[4][ath(s, b, t, h)]) : 1.0;
                phi(s, in[3], h, in[1] + at(s, b, t, h, K), f);
                const double *vt = in[2] + at(s, b, t, h, V);
                for (int r = 0; r < F; r++) {
                    for (int x = 0; x < V; x++)
                        S[(size_t)r * V1 + x] = g * S[(size_t)r * V1 + x] + bet * f[r] * vt[x];
                    S[(size_t)r * V1 + V] = g * S[(size_t)r * V1 + V] + bet * f[r];
                }
                phi(s, in[3], h, in[0] + at(s, b, t, h, K), f);
                double den = 0;
                for (int r = 0; r < F; r++)
                    den += f[r] * S[(size_t)r * V1 + V];
                den = clampden(s, den);
                for (int x = 0; x < V; x++) {
                    double acc = 0;
                    for (int r = 0; r < F; r++)
                        acc += f[r] * S[(size_t)r * V1 + x];
                    out[at(s, b, t, h, V) + x] = acc / den;
                }
            }
            if (state_out)
                memcpy(state_out + so, S, sizeof(double) * n);
        }
    free(S), free(f);
    return LAT_OK;
}

/* shared quadratic core: kern(t, j) supplies the kernel value */
static lat_status quad(const lat_shape *s, const double *const *in, const double *state_in, double *out,
                       double *state_out, int softmax)
{
    const int F = 2 * s->features, V = s->V, V1 = V + 1, K = s->K, T = s->T;
    const int gated = s->variant == 1;
    const size_t n = (size_t)F * V1;
    double *fk = malloc(sizeof(double) * (size_t)T * F), *fq = malloc(sizeof(double) * F);
    double *cum = malloc(sizeof(double) * ((size_t)T + 1)), *num = malloc(sizeof(double) * V1);
    double *qh = malloc(sizeof(double) * K), *kh = malloc(sizeof(double) * (size_t)T * K);
    if (!fk || !fq || !cum || !num || !qh || !kh || K > 512) {
        free(fk), free(fq), free(cum), free(num), free(qh), free(kh);
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            const size_t so = ((size_t)b * s->H + h) * n;
            cum[0] = 0; /* cum[t+1] = Σ_{s≤t} ln g_s */
            for (int t = 0; t < T; t++) {
                cum[t + 1] = cum[t] + (gated ? in[4][ath(s, b, t, h)] : 0.0);
                phi(s, in[3], h, in[1] + at(s, b, t, h, K), fk + (size_t)t * F);
                unit(s, in[1] + at(s, b, t, h, K), kh + (size_t)t * K);
            }
            for (int t = 0; t < T; t++) {
                phi(s, in[3], h, in[0] + at(s, b, t, h, K), fq);
                unit(s, in[0] + at(s, b, t, h, K), qh);
                for (int x = 0; x < V1; x++)
                    num[x] = 0;
                for (int j = 0; j <= t; j++) {
                    double w = 0;
                    if (softmax) {
                        for (int c = 0; c < K; c++)
                            w += qh[c] * kh[(size_t)j * K + c];
                        w = exp(w - 1.0); /* e^{-1} cancels (|w| ≤ 1) */
                    } else {
                        for (int r = 0; r < F; r++)
                            w += fq[r] * fk[(size_t)j * F + r];
                    }
                    if (gated) /* (1 − g_j) Π_{s=j+1}^{t} g_s */
                        w *= -expm1(in[4][ath(s, b, j, h)]) * exp(cum[t + 1] - cum[j + 1]);
                    const double *vj = in[2] + at(s, b, j, h, V);
                    for (int x = 0; x < V; x++)
                        num[x] += w * vj[x];
                    num[V] += w;
                }
                if (state_in && !softmax) {
                    const double dec = exp(cum[t + 1]);
                    for (int x = 0; x < V1; x++) {
                        double acc = 0;
                        for (int r = 0; r < F; r++)
                            acc += fq[r] * state_in[so + (size_t)r * V1 + x];
                        num[x] += dec * acc;
                    }
                }
                const double den = softmax ? num[V] : clampden(s, num[V]);
                for (int x = 0; x < V; x++)
                    out[at(s, b, t, h, V) + x] = num[x] / den;
            }
            if (state_out && !softmax)
                for (int r = 0; r < F; r++)
                    for (int x = 0; x < V1; x++) {
                        double acc = state_in ? state_in[so + (size_t)r * V1 + x] * exp(cum[T]) : 0.0;
                        for (int j = 0; j < T; j++) {
                            double w = fk[(size_t)j * F + r];
                            if (gated)
                                w *= -expm1(in[4][ath(s, b, j, h)]) * exp(cum[T] - cum[j + 1]);
                            acc += w * (x < V ? in[2][at(s, b, j, h, V) + x] : 1.0);
                        }
                        state_out[so + (size_t)r * V1 + x] = acc;
                    }
        }
    free(fk), free(fq), free(cum), free(num), free(qh), free(kh);
    return LAT_OK;
}

lat_status ref_rfa_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                            double *out, double *state_out)
{
    return quad(s, in, state_in, out, state_out, 0);
}

lat_status ref_rfa_softmax(const lat_shape *s, const double *const *in, const double *state_in,
                           double *out, double *state_out)
{
    return quad(s, in, NULL, out, NULL, 1);
}
