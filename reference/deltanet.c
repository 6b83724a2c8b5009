/* deltanet.c — fp64 references for DeltaNet, the delta rule with L2-normalized
 * queries and keys (Schlag et al. 2021; Yang et al. 2024, arXiv 2406.06484).
 * Spec: spec/recurrent.md §3.
 *
 * Inputs q, k [B][T][H][K] are raw; both forms normalize them first, as fla's
 * l2norm: x̂ = x / sqrt(Σ x² + 1e-6). β [B][T][H] ∈ (0, 1], s = K^{−1/2}.
 * Key-major state S [B][H][K][V]; state_in NULL → zeros.
 *
 *   ref_deltanet        the literal recurrence (§3.3), per token:
 *                         u_t = β_t (v_t − S_{t−1}ᵀ k̂_t)
 *                         S_t = S_{t−1} + k̂_t u_tᵀ
 *                         o_t = s · S_tᵀ q̂_t                (after the update)
 *   ref_deltanet_chunk  the WY / UT-transform chunk form (§3.4), straight from
 *                       the paper: per chunk of C rows (C = the chunk knob,
 *                       64 when unset; a short last chunk as is)
 *                         L = tril(Diag(β) K Kᵀ, −1)
 *                         Y = (I + L)⁻¹          (forward substitution)
 *                         W = Y Diag(β) K,  U = Y Diag(β) V
 *                         Δ = U − W S
 *                         O = s Q S + (s Q Kᵀ ⊙ tril(1)) Δ
 *                         S ← S + Kᵀ Δ
 * Independent (b, h) slices run in parallel (OpenMP); nothing else is shared.
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

#define DN_L2_EPS 1e-6

static size_t at(const lat_shape *s, int b, int t, int h, int D)
{
    return (((size_t)b * s->T + t) * s->H + h) * (size_t)D;
}

static size_t at_bth(const lat_shape *s, int b, int t, int h)
{
    return ((size_t)b * s->T + t) * s->H + h;
}

/* y = x / sqrt(Σ x² + eps) (fla l2norm: eps inside the square root) */
static void l2norm(double *y, const double *x, int n)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    const double inv = 1.0 / sqrt(ss + DN_L2_EPS);
    for (int i = 0; i < n; i++)
        y[i] = x[i] * inv;
}

lat_status ref_deltanet(const lat_shape *s, const double *const *in, const double *state_in,
                        double *out, double *state_out)
{
    const int K = s->K, V = s->V, BH = s->B * s->H;
    const double *q = in[0], *k = in[1], *v = in[2], *beta = in[3];
    const double scale = 1.0 / sqrt((double)K);
    int failed = 0;

#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < BH; bh++) {
        const int b = bh / s->H, h = bh % s->H;
        double *S = malloc(sizeof(double) * ((size_t)K * V + 2 * (size_t)K + V));
        if (!S) {
#pragma omp atomic write
            failed = 1;
            continue;
        }
        double *qn = S + (size_t)K * V, *kn = qn + K, *u = kn + K;
        const size_t st = (size_t)bh * K * V;
        for (size_t e = 0; e < (size_t)K * V; e++)
            S[e] = state_in ? state_in[st + e] : 0.0;
        for (int t = 0; t < s->T; t++) {
            l2norm(qn, q + at(s, b, t, h, K), K);
            l2norm(kn, k + at(s, b, t, h, K), K);
            const double *vt = v + at(s, b, t, h, V);
            const double bt = beta[at_bth(s, b, t, h)];
            /* u = β (v − Sᵀ k̂) */
            for (int j = 0; j < V; j++) {
                double pred = 0.0;
                for (int i = 0; i < K; i++)
                    pred += S[(size_t)i * V + j] * kn[i];
                u[j] = bt * (vt[j] - pred);
            }
            /* S += k̂ uᵀ */
            for (int i = 0; i < K; i++)
                for (int j = 0; j < V; j++)
                    S[(size_t)i * V + j] += kn[i] * u[j];
            /* o = s Sᵀ q̂ */
            double *ot = out + at(s, b, t, h, V);
            for (int j = 0; j < V; j++) {
                double acc = 0.0;
                for (int i = 0; i < K; i++)
                    acc += qn[i] * S[(size_t)i * V + j];
                ot[j] = scale * acc;
            }
        }
        if (state_out)
            memcpy(state_out + st, S, sizeof(double) * (size_t)K * V);
        free(S);
    }
    return failed ? LAT_ENOMEM : LAT_OK;
}

lat_status ref_deltanet_chunk(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out)
{
    const int K = s->K, V = s->V, T = s->T, BH = s->B * s->H;
    const int C = s->chunk > 0 ? s->chunk : 64;
    const double *q = in[0], *k = in[1], *v = in[2], *beta = in[3];
    const double scale = 1.0 / sqrt((double)K);
    int failed = 0;

#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < BH; bh++) {
        const int b = bh / s->H, h = bh % s->H;
        const size_t CK = (size_t)C * K, CV = (size_t)C * V, CC = (size_t)C * C;
        double *S = malloc(sizeof(double) * ((size_t)K * V + 3 * CK + 3 * CV + 3 * CC + C));
        if (!S) {
#pragma omp atomic write
            failed = 1;
            continue;
        }
        double *Qc = S + (size_t)K * V, *Kc = Qc + CK, *Wm = Kc + CK;
        double *Vc = Wm + CK, *Um = Vc + CV, *Dm = Um + CV;
        double *L = Dm + CV, *Y = L + CC, *A = Y + CC, *bc = A + CC;
        const size_t st = (size_t)bh * K * V;
        for (size_t e = 0; e < (size_t)K * V; e++)
            S[e] = state_in ? state_in[st + e] : 0.0;
        for (int t0 = 0; t0 < T; t0 += C) {
            const int n = T - t0 < C ? T - t0 : C;
            for (int r = 0; r < n; r++) {
                l2norm(Qc + (size_t)r * K, q + at(s, b, t0 + r, h, K), K);
                l2norm(Kc + (size_t)r * K, k + at(s, b, t0 + r, h, K), K);
                memcpy(Vc + (size_t)r * V, v + at(s, b, t0 + r, h, V), sizeof(double) * (size_t)V);
                bc[r] = beta[at_bth(s, b, t0 + r, h)];
            }
            /* L = tril(Diag(β) K Kᵀ, −1) */
            for (int r = 0; r < n; r++)
                for (int c = 0; c < n; c++) {
                    double acc = 0.0;
                    if (c < r)
                        for (int i = 0; i < K; i++)
                            acc += Kc[(size_t)r * K + i] * Kc[(size_t)c * K + i];
                    L[(size_t)r * C + c] = bc[r] * acc;
                }
            /* Y = (I + L)⁻¹: Y_rr = 1, Y_rc = −Σ_{m=c..r−1} L_rm Y_mc (c < r) */
            for (int r = 0; r < n; r++)
                for (int c = 0; c < n; c++) {
                    double y = c == r ? 1.0 : 0.0;
                    if (c < r)
                        for (int m = c; m < r; m++)
                            y -= L[(size_t)r * C + m] * Y[(size_t)m * C + c];
                    Y[(size_t)r * C + c] = y;
                }
            /* W = Y Diag(β) K,  U = Y Diag(β) V */
            for (int r = 0; r < n; r++) {
                for (int i = 0; i < K; i++) {
                    double acc = 0.0;
                    for (int c = 0; c <= r; c++)
                        acc += Y[(size_t)r * C + c] * bc[c] * Kc[(size_t)c * K + i];
                    Wm[(size_t)r * K + i] = acc;
                }
                for (int j = 0; j < V; j++) {
                    double acc = 0.0;
                    for (int c = 0; c <= r; c++)
                        acc += Y[(size_t)r * C + c] * bc[c] * Vc[(size_t)c * V + j];
                    Um[(size_t)r * V + j] = acc;
                }
            }
            /* Δ = U − W S */
            for (int r = 0; r < n; r++)
                for (int j = 0; j < V; j++) {
                    double acc = 0.0;
                    for (int i = 0; i < K; i++)
                        acc += Wm[(size_t)r * K + i] * S[(size_t)i * V + j];
                    Dm[(size_t)r * V + j] = Um[(size_t)r * V + j] - acc;
                }
            /* A = s Q Kᵀ ⊙ tril(1) (diagonal included) */
            for (int r = 0; r < n; r++)
                for (int c = 0; c < n; c++) {
                    double acc = 0.0;
                    if (c <= r)
                        for (int i = 0; i < K; i++)
                            acc += Qc[(size_t)r * K + i] * Kc[(size_t)c * K + i];
                    A[(size_t)r * C + c] = scale * acc;
                }
            /* O = s Q S + A Δ */
            for (int r = 0; r < n; r++) {
                double *ot = out + at(s, b, t0 + r, h, V);
                for (int j = 0; j < V; j++) {
                    double acc = 0.0;
                    for (int i = 0; i < K; i++)
                        acc += Qc[(size_t)r * K + i] * S[(size_t)i * V + j];
                    acc *= scale;
                    for (int c = 0; c <= r; c++)
                        acc += A[(size_t)r * C + c] * Dm[(size_t)c * V + j];
                    ot[j] = acc;
                }
            }
            /* S ← S + Kᵀ Δ */
            for (int i = 0; i < K; i++)
                for (int j = 0; j < V; j++) {
                    double acc = 0.0;
                    for (int r = 0; r < n; r++)
                        acc += Kc[(size_t)r * K + i] * Dm[(size_t)r * V + j];
                    S[(size_t)i * V + j] += acc;
                }
        }
        if (state_out)
            memcpy(state_out + st, S, sizeof(double) * (size_t)K * V);
        free(S);
    }
    return failed ? LAT_ENOMEM : LAT_OK;
}
