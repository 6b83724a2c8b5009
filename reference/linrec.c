/* linrec.c — fp64 references for LinRec's elu-norm linear attention (Liu et
 * al., SIGIR 2023; spec/attention.md §10.3, Appendix B, Appendix C.10).
 *
 * Features: q̂ = elu(q)/max(‖elu(q)‖, 1e-8), k̂ likewise (elu, not elu+1: values
 * in (−1, ∞); each token normalized over its K features). No row normalizer;
 * scale 1/√K. The 1e-8 guard is the causal adaptation's (warprec); the
 * original layer has none and returns NaN for an all-zero row — both agree
 * everywhere else, so the guard is used in both modes (decision, see
 * impls/linrec.c).
 * Causal (the prefix-sum adaptation): S_t = S_{t−1} + k̂_t v_tᵀ,
 *   o_t = S_tᵀ q̂_t / √K.  Non-causal (the original): O = Q̂ (S0 + K̂ᵀV) / √K.
 * State [B][H][K][V].
 *
 *   ref_linrec           the literal recurrence (O(T));
 *   ref_linrec_parallel  quadratic: explicit weights ⟨q̂_i, k̂_j⟩/√K, masked
 *                        j ≤ i when causal, plus q̂_iᵀS0/√K.
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

#define LINREC_GUARD 1e-8

static size_t at(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h) * (size_t)D;
}

static size_t rc(int r, int ld, int c) { return (size_t)r * (size_t)ld + (size_t)c; }

/* f = elu(x) / max(‖elu(x)‖, 1e-8) */
static void feat(const double *x, double *f, int K)
{
    double nn = 0.0;
    for (int i = 0; i < K; i++) {
        f[i] = x[i] > 0.0 ? x[i] : expm1(x[i]);
        nn += f[i] * f[i];
    }
    double nrm = sqrt(nn);
    nrm = nrm > LINREC_GUARD ? nrm : LINREC_GUARD;
    for (int i = 0; i < K; i++)
        f[i] /= nrm;
}

static void rank1(double *S, const double *fk, const double *vt, int K, int V)
{
    for (int c = 0; c < K; c++)
        for (int x = 0; x < V; x++)
            S[rc(c, V, x)] += fk[c] * vt[x];
}

static void readout(const double *S, const double *fq, double *ot, int K, int V)
{
    const double scale = 1.0 / sqrt((double)K);
    for (int x = 0; x < V; x++) {
        double acc = 0.0;
        for (int c = 0; c < K; c++)
            acc += fq[c] * S[rc(c, V, x)];
        ot[x] = acc * scale;
    }
}

lat_status ref_linrec(const lat_shape *s, const double *const *in, const double *state_in,
                      double *out, double *state_out)
{
    const int K = s->K, V = s->V, T = s->T;
    const double *q = in[0], *k = in[1], *v = in[2];
    const size_t n = (size_t)K * (size_t)V;
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
                    feat(k + at(s, b, t, h, K), f, K);
                    rank1(S, f, v + at(s, b, t, h, V), K, V);
                    feat(q + at(s, b, t, h, K), f, K);
                    readout(S, f, out + at(s, b, t, h, V), K, V);
                }
            } else {
                for (int t = 0; t < T; t++) {
                    feat(k + at(s, b, t, h, K), f, K);
                    rank1(S, f, v + at(s, b, t, h, V), K, V);
                }
                for (int t = 0; t < T; t++) {
                    feat(q + at(s, b, t, h, K), f, K);
                    readout(S, f, out + at(s, b, t, h, V), K, V);
                }
            }
            if (state_out)
                memcpy(state_out + st, S, sizeof(double) * n);
        }
    free(S), free(f);
    return LAT_OK;
}

lat_status ref_linrec_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                               double *out, double *state_out)
{
    const int K = s->K, V = s->V, T = s->T;
    const double *q = in[0], *k = in[1], *v = in[2];
    const double scale = 1.0 / sqrt((double)K);
    const size_t n = (size_t)K * (size_t)V;
    double *fk = malloc(sizeof(double) * (size_t)T * (size_t)K);
    double *fq = malloc(sizeof(double) * (size_t)K);
    double *num = malloc(sizeof(double) * (size_t)V);
    if (!fk || !fq || !num) {
        free(fk), free(fq), free(num);
        return LAT_ENOMEM;
    }
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            const size_t st = ((size_t)b * (size_t)s->H + (size_t)h) * n;
            const double *S0 = state_in ? state_in + st : NULL;
            for (int j = 0; j < T; j++)
                feat(k + at(s, b, j, h, K), fk + rc(j, K, 0), K);
            for (int i = 0; i < T; i++) {
                feat(q + at(s, b, i, h, K), fq, K);
                for (int x = 0; x < V; x++)
                    num[x] = 0.0;
                const int jmax = s->causal ? i : T - 1;
                for (int j = 0; j <= jmax; j++) {
                    double a = 0.0;
                    for (int c = 0; c < K; c++)
                        a += fq[c] * fk[rc(j, K, c)];
                    const double *vj = v + at(s, b, j, h, V);
                    for (int x = 0; x < V; x++)
                        num[x] += a * vj[x];
                }
                if (S0)
                    for (int c = 0; c < K; c++)
                        for (int x = 0; x < V; x++)
                            num[x] += fq[c] * S0[rc(c, V, x)];
                double *oi = out + at(s, b, i, h, V);
                for (int x = 0; x < V; x++)
                    oi[x] = num[x] * scale;
            }
            if (state_out)
                for (int c = 0; c < K; c++)
                    for (int x = 0; x < V; x++) {
                        double acc = S0 ? S0[rc(c, V, x)] : 0.0;
                        for (int j = 0; j < T; j++)
                            acc += fk[rc(j, K, c)] * v[at(s, b, j, h, V) + (size_t)x];
                        state_out[st + rc(c, V, x)] = acc;
                    }
        }
    free(fk), free(fq), free(num);
    return LAT_OK;
}
