/* based.c — fp64 references for Based's Taylor linear attention (Arora et al.,
 * ICML 2024; spec/attention.md §9, Errata 2, Appendix B).
 *
 * q, k [B][T][H][K] with K = d′ (16), v [B][T][H][V]. s = ⟨q,k⟩/√d′,
 * kernel 1 + s + s²/2. Feature map (variant bit 0: 0 compressed, 1 full):
 *   compressed φ(x) = [1, x/d′^{1/4}, x_c²/(√2√d′) (c), x_a x_b/√d′ (a<b)]   F = 1 + d′ + d′(d′+1)/2
 *   full       φ(x) = [1, x/d′^{1/4}, x_a x_b/(√2√d′) (all a,b, row-major)]  F = 1 + d′ + d′²
 * Causal: S_t = S_{t−1} + φ(k_t)[v_t | 1]ᵀ, o_t = S_tᵀφ(q_t)[0..V) / (S_tᵀφ(q_t)[V] + ε),
 * ε = 1e-12 (Based repo; variant bit 1: 1e-6, FLA). State [B][H][F][V+1].
 *   ref_based           literal recurrence on the features;
 *   ref_based_parallel  quadratic: the kernel 1 + s + s²/2 directly (checks the
 *                       feature algebra), plus φ(q)ᵀS0 for the initial state.
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

static size_t at(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h) * (size_t)D;
}

int ref_based_nfeat(const lat_shape *s)
{
    const int d = s->K;
    return (s->variant & 1) ? 1 + d + d * d : 1 + d + d * (d + 1) / 2;
}
static double eps(const lat_shape *s) { return (s->variant & 2) ? 1e-6 : 1e-12; }

void ref_based_phi(const lat_shape *s, const double *x, double *f)
{
    const int d = s->K;
    const double r4 = pow((double)d, -0.25), r2 = 1.0 / sqrt((double)d), h = 1.0 / sqrt(2.0);
    int n = 0;
    f[n++] = 1.0;
    for (int a = 0; a < d; a++)
        f[n++] = x[a] * r4;
    if (s->variant & 1) {
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++)
                f[n++] = x[a] * x[b] * r2 * h;
    } else {
        for (int a = 0; a < d; a++)
            f[n++] = x[a] * x[a] * r2 * h;
        for (int a = 0; a < d; a++)
            for (int b = a + 1; b < d; b++)
                f[n++] = x[a] * x[b] * r2;
    }
}

lat_status ref_based(const lat_shape *s, const double *const *in, const double *state_in, double *out,
                     double *state_out)
{
    const int F = ref_based_nfeat(s), V = s->V, V1 = V + 1, K = s->K;
    const size_t n = (size_t)F * V1;
    double *S = malloc(sizeof(double) * n), *f = malloc(sizeof(double) * F);
    if (!S || !f) {
        free(S), free(f);
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            const size_t so = ((size_t)b * s->H + h) * n;
            for (size_t e = 0; e < n; e++)
                S[e] = state_in ? state_in[so + e] : 0.0;
            for (int t = 0; t < s->T; t++) {
                ref_based_phi(s, in[1] + at(s, b, t, h, K), f);
                const double *vt = in[2] + at(s, b, t, h, V);
                for (int r = 0; r < F; r++) {
                    for (int x = 0; x < V; x++)
                        S[(size_t)r * V1 + x] += f[r] * vt[x];
                    S[(size_t)r * V1 + V] += f[r];
                }
                ref_based_phi(s, in[0] + at(s, b, t, h, K), f);
                double den = 0;
                for (int r = 0; r < F; r++)
                    den += f[r] * S[(size_t)r * V1 + V];
                for (int x = 0; x < V; x++) {
                    double acc = 0;
                    for (int r = 0; r < F; r++)
                        acc += f[r] * S[(size_t)r * V1 + x];
                    out[at(s, b, t, h, V) + x] = acc / (den + eps(s));
                }
            }
            if (state_out)
                memcpy(state_out + so, S, sizeof(double) * n);
        }
    free(S), free(f);
    return LAT_OK;
}

lat_status ref_based_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out)
{
    const int F = ref_based_nfeat(s), V = s->V, V1 = V + 1, K = s->K, T = s->T;
    const size_t n = (size_t)F * V1;
    double *f = malloc(sizeof(double) * F), *num = malloc(sizeof(double) * V1);
    if (!f || !num) {
        free(f), free(num);
        return LAT_ENOMEM;
    }
    const double sc = 1.0 / sqrt((double)K);
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            const size_t so = ((size_t)b * s->H + h) * n;
            for (int t = 0; t < T; t++) {
                const double *qt = in[0] + at(s, b, t, h, K);
                for (int x = 0; x < V1; x++)
                    num[x] = 0;
                for (int j = 0; j <= t; j++) {
                    const double *kj = in[1] + at(s, b, j, h, K);
                    double d = 0;
                    for (int c = 0; c < K; c++)
                        d += qt[c] * kj[c];
                    d *= sc;
                    const double w = 1.0 + d + 0.5 * d * d;
                    const double *vj = in[2] + at(s, b, j, h, V);
                    for (int x = 0; x < V; x++)
                        num[x] += w * vj[x];
                    num[V] += w;
                }
                if (state_in) {
                    ref_based_phi(s, qt, f);
                    for (int x = 0; x < V1; x++)
                        for (int r = 0; r < F; r++)
                            num[x] += f[r] * state_in[so + (size_t)r * V1 + x];
                }
                for (int x = 0; x < V; x++)
                    out[at(s, b, t, h, V) + x] = num[x] / (num[V] + eps(s));
            }
            if (state_out) {
                for (size_t e = 0; e < n; e++)
                    state_out[so + e] = state_in ? state_in[so + e] : 0.0;
                for (int j = 0; j < T; j++) {
                    ref_based_phi(s, in[1] + at(s, b, j, h, K), f);
                    const double *vj = in[2] + at(s, b, j, h, V);
                    for (int r = 0; r < F; r++) {
                        for (int x = 0; x < V; x++)
                            state_out[so + (size_t)r * V1 + x] += f[r] * vj[x];
                        state_out[so + (size_t)r * V1 + V] += f[r];
                    }
                }
            }
        }
    free(f), free(num);
    return LAT_OK;
}

/* exact softmax target: causal softmax(q·k/√d′) v */
lat_status ref_based_softmax(const lat_shape *s, const double *const *in, const double *state_in,
                             double *out, double *state_out)
{
    const int V = s->V, K = s->K, T = s->T;
    double *w = malloc(sizeof(double) * (size_t)T);
    if (!w)
        return LAT_ENOMEM;
    (void)state_in, (void)state_out;
    const double sc = 1.0 / sqrt((double)K);
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++)
            for (int t = 0; t < T; t++) {
                const double *qt = in[0] + at(s, b, t, h, K);
                double mx = -1e300, den = 0;
                for (int j = 0; j <= t; j++) {
                    const double *kj = in[1] + at(s, b, j, h, K);
                    double d = 0;
                    for (int c = 0; c < K; c++)
                        d += qt[c] * kj[c];
                    w[j] = d * sc;
                    mx = w[j] > mx ? w[j] : mx;
                }
                for (int j = 0; j <= t; j++)
                    den += (w[j] = exp(w[j] - mx));
                double *o = out + at(s, b, t, h, V);
                for (int x = 0; x < V; x++)
                    o[x] = 0;
                for (int j = 0; j <= t; j++) {
                    const double *vj = in[2] + at(s, b, j, h, V);
                    for (int x = 0; x < V; x++)
                        o[x] += w[j] / den * vj[x];
                }
            }
    free(w);
    return LAT_OK;
}
