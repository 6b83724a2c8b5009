/* retnet.c — fp64 references for RetNet retention (Sun et al. 2023,
 * arXiv 2307.08621; spec/recurrent.md §1).
 *
 * Per (b, h) slice, decay γ_h = 1 − 2^(−5−h) (log γ_h = log1p(−2^(−5−h)),
 * §1.2), score scale s = K^(−1/2), state [B][H][K][V], S0 = 0 when absent:
 *
 *   ref_retnet           the literal recurrence (§1.4):
 *                          S_n = γ S_(n−1) + k_n v_nᵀ,   o_n = s S_nᵀ q_n
 *   ref_retnet_parallel  the parallel form (§1.5) with the explicit decay mask:
 *                          o_n = s Σ_(m≤n) γ^(n−m) (q_n·k_m) v_m + s γ^(n+1) S0ᵀ q_n
 *                          S_T = γ^T S0 + Σ_m γ^(T−1−m) k_m v_mᵀ
 *                        (γ^d = e^(d log γ), d ≥ 0: nothing above 1 is formed)
 *
 * Knob variant = 1: q and k are first rotated by the torchscale xPos rotation
 * (§1.3, interleaved pairs) at their absolute position n = pos + t:
 *   θ_j = 10000^(−j/(K/2−1)), j = 0..K/2−1 (θ_0 = 1 when K/2 = 1),
 *   x'_2j = x_2j cos nθ_j − x_2j+1 sin nθ_j,  x'_2j+1 = x_2j+1 cos nθ_j + x_2j sin nθ_j.
 * Score normalizations of torchscale (§1.7 (ii), (iii)) are omitted, as the
 * spec says. No BLAS; slices in parallel with OpenMP (independent).
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

static size_t at(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * s->T + t) * s->H + h) * (size_t)D;
}

double ref_retnet_log_gamma(int h) { return log1p(-ldexp(1.0, -5 - h)); }

/* torchscale rotation of one K-vector at absolute position n (variant 1). */
void ref_retnet_rotate(double *y, const double *x, int K, long n)
{
    const int half = K / 2;
    for (int j = 0; j < half; j++) {
        const double theta = half > 1 ? pow(10000.0, -(double)j / (double)(half - 1)) : 1.0;
        const double c = cos((double)n * theta), sn = sin((double)n * theta);
        const double x0 = x[2 * j], x1 = x[2 * j + 1];
        y[2 * j] = x0 * c - x1 * sn;
        y[2 * j + 1] = x1 * c + x0 * sn;
    }
    if (K % 2)
        y[K - 1] = x[K - 1];
}

/* q_t or k_t of slice (b, h), rotated when the variant asks for it. */
static void load_qk(const lat_shape *s, const double *x, int b, int t, int h, double *y)
{
    const double *src = x + at(s, b, t, h, s->K);
    if (s->variant == 1)
        ref_retnet_rotate(y, src, s->K, (long)s->pos + t);
    else
        memcpy(y, src, sizeof(double) * (size_t)s->K);
}

lat_status ref_retnet(const lat_shape *s, const double *const *in, const double *state_in,
                      double *out, double *state_out)
{
    const int K = s->K, V = s->V, BH = s->B * s->H;
    const double *q = in[0], *k = in[1], *v = in[2];
    const double scale = 1.0 / sqrt((double)K);
    int fail = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : fail)
    for (int bh = 0; bh < BH; bh++) {
        const int b = bh / s->H, h = bh % s->H;
        const double gamma = exp(ref_retnet_log_gamma(h));
        const size_t st = (size_t)bh * K * V;
        double *S = malloc(sizeof(double) * ((size_t)K * V + 2 * (size_t)K));
        if (!S) {
            fail = 1;
            continue;
        }
        double *qt = S + (size_t)K * V, *kt = qt + K;
        for (size_t e = 0; e < (size_t)K * V; e++)
            S[e] = state_in ? state_in[st + e] : 0.0;
        for (int t = 0; t < s->T; t++) {
            load_qk(s, q, b, t, h, qt);
            load_qk(s, k, b, t, h, kt);
            const double *vt = v + at(s, b, t, h, V);
            double *ot = out + at(s, b, t, h, V);
            for (int i = 0; i < K; i++)
                for (int j = 0; j < V; j++)
                    S[(size_t)i * V + j] = gamma * S[(size_t)i * V + j] + kt[i] * vt[j];
            for (int j = 0; j < V; j++) {
                double acc = 0.0;
                for (int i = 0; i < K; i++)
                    acc += qt[i] * S[(size_t)i * V + j];
                ot[j] = scale * acc;
            }
        }
        if (state_out)
            memcpy(state_out + st, S, sizeof(double) * (size_t)K * V);
        free(S);
    }
    return fail ? LAT_ENOMEM : LAT_OK;
}

lat_status ref_retnet_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                               double *out, double *state_out)
{
    const int K = s->K, V = s->V, T = s->T, BH = s->B * s->H;
    const double *q = in[0], *k = in[1], *v = in[2];
    const double scale = 1.0 / sqrt((double)K);
    int fail = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : fail)
    for (int bh = 0; bh < BH; bh++) {
        const int b = bh / s->H, h = bh % s->H;
        const double lg = ref_retnet_log_gamma(h);
        const size_t st = (size_t)bh * K * V;
        const double *S0 = state_in ? state_in + st : NULL;
        double *Q = malloc(sizeof(double) * ((size_t)T * K * 2 + (size_t)T));
        if (!Q) {
            fail = 1;
            continue;
        }
        double *Kr = Q + (size_t)T * K, *zeta = Kr + (size_t)T * K;
        for (int t = 0; t < T; t++) {
            load_qk(s, q, b, t, h, Q + (size_t)t * K);
            load_qk(s, k, b, t, h, Kr + (size_t)t * K);
        }
        for (int n = 0; n < T; n++) {
            const double *qn = Q + (size_t)n * K;
            double *on = out + at(s, b, n, h, V);
            for (int j = 0; j < V; j++)
                on[j] = 0.0;
            for (int m = 0; m <= n; m++) { /* decay mask D_nm = γ^(n−m), m ≤ n */
                double a = 0.0;
                for (int i = 0; i < K; i++)
                    a += qn[i] * Kr[(size_t)m * K + i];
                a *= exp((double)(n - m) * lg);
                const double *vm = v + at(s, b, m, h, V);
                for (int j = 0; j < V; j++)
                    on[j] += a * vm[j];
            }
            if (S0) {
                const double xi = exp((double)(n + 1) * lg);
                for (int i = 0; i < K; i++)
                    for (int j = 0; j < V; j++)
                        on[j] += xi * qn[i] * S0[(size_t)i * V + j];
            }
            for (int j = 0; j < V; j++)
                on[j] *= scale;
        }
        if (state_out) {
            const double gT = exp((double)T * lg);
            for (int m = 0; m < T; m++)
                zeta[m] = exp((double)(T - 1 - m) * lg);
            for (int i = 0; i < K; i++)
                for (int j = 0; j < V; j++) {
                    double acc = S0 ? gT * S0[(size_t)i * V + j] : 0.0;
                    for (int m = 0; m < T; m++)
                        acc += zeta[m] * Kr[(size_t)m * K + i] * v[at(s, b, m, h, V) + j];
                    state_out[st + (size_t)i * V + j] = acc;
                }
        }
        free(Q);
    }
    return fail ? LAT_ENOMEM : LAT_OK;
}
