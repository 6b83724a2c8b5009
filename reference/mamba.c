/* mamba.c — fp64 references for the Mamba-1 selective scan S6 (Gu & Dao 2023;
 * spec/recurrent.md §5).
 *
 * Kernel-level inputs (all [B][T][…] tensors time-major; Dm = H·V channels,
 * N = n_state, G = groups, channel d reads group d / (Dm/G)):
 *   in[0] u        [B][T][Dm]     scan input (the conv output)
 *   in[1] dt       [B][T][Dm]     δ_raw
 *   in[2] dt_bias  [Dm]           δ = softplus(δ_raw + δ_bias)   (threshold 20)
 *   in[3] A_log    [Dm][N]        A = −exp(A_log)
 *   in[4] Bm       [B][T][G][N]
 *   in[5] Cm       [B][T][G][N]
 *   in[6] Dskip    [Dm]
 *   in[7] z        [B][T][Dm]
 * Output y [B][T][Dm]; state h [B][Dm][N] (mamba/ggml layout).
 *
 *   ref_mamba           the literal recurrence (§5.3), B̄ = δ·B (Euler, as
 *                       selective_scan_ref, the CUDA kernel and ggml):
 *                         h_t[d,n] = exp(δ_t[d] A[d,n]) h_{t−1}[d,n] + δ_t[d] B_t[n] u_t[d]
 *                         y_t[d]   = (Σ_n C_t[n] h_t[d,n] + D[d] u_t[d]) · silu(z_t[d])
 *   ref_mamba_parallel  the per-channel GLA mapping of §5.6 written as its
 *                       quadratic form (q = C, k = B, v = δu, g = δA):
 *                         y_t[d] = Σ_{s≤t} Σ_n C_t[n] B_s[n] e^{G_t[d,n] − G_s[d,n]} δ_s u_s
 *                                  + Σ_n C_t[n] e^{G_t[d,n]} h0[d,n]   (then D skip, gate)
 *                       with the global fp64 cumsum G_t = Σ_{r≤t} δ_r A (only
 *                       differences G_t − G_s ≤ 0 are exponentiated).
 * state_in NULL → zeros. OpenMP over independent (b, d) channels only.
 */
#include <stdlib.h>
#include <string.h>

#include "reference.h"

typedef struct {
    int B, T, Dm, N, G, per_g;
} mshape;

static mshape mamba_shape(const lat_shape *s)
{
    mshape m;
    m.B = s->B;
    m.T = s->T;
    m.Dm = s->H * s->V;
    m.N = s->n_state;
    m.G = s->groups > 0 ? s->groups : 1;
    m.per_g = m.Dm / m.G;
    return m;
}

static double silu(double x) { return x * ref_sigmoid(x); }

lat_status ref_mamba(const lat_shape *s, const double *const *in, const double *state_in,
                     double *out, double *state_out)
{
    const mshape m = mamba_shape(s);
    const double *u = in[0], *dt = in[1], *dtb = in[2], *Alog = in[3], *Bm = in[4], *Cm = in[5];
    const double *Dsk = in[6], *z = in[7];
    const int N = m.N;
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 4)
    for (long bd = 0; bd < (long)m.B * m.Dm; bd++) {
        const int b = (int)(bd / m.Dm), d = (int)(bd % m.Dm), g = d / m.per_g;
        double *h = malloc(sizeof(double) * (size_t)N * 2);
        if (!h) {
#pragma omp atomic write
            bad = 1;
            continue;
        }
        double *A = h + N;
        for (int n = 0; n < N; n++) {
            A[n] = -exp(Alog[(size_t)d * N + n]);
            h[n] = state_in ? state_in[((size_t)b * m.Dm + d) * N + n] : 0.0;
        }
        for (int t = 0; t < m.T; t++) {
            const size_t ic = ((size_t)b * m.T + t) * m.Dm + d;
            const size_t ig = (((size_t)b * m.T + t) * m.G + g) * (size_t)N;
            const double delta = ref_softplus(dt[ic] + dtb[d]);
            double y = 0.0;
            for (int n = 0; n < N; n++) {
                h[n] = exp(delta * A[n]) * h[n] + delta * Bm[ig + n] * u[ic];
                y += Cm[ig + n] * h[n];
            }
            out[ic] = (y + Dsk[d] * u[ic]) * silu(z[ic]);
        }
        if (state_out)
            memcpy(state_out + ((size_t)b * m.Dm + d) * N, h, sizeof(double) * (size_t)N);
        free(h);
    }
    return bad ? LAT_ENOMEM : LAT_OK;
}

lat_status ref_mamba_parallel(const lat_shape *s, const double *const *in, const double *state_in,
                              double *out, double *state_out)
{
    const mshape m = mamba_shape(s);
    const double *u = in[0], *dt = in[1], *dtb = in[2], *Alog = in[3], *Bm = in[4], *Cm = in[5];
    const double *Dsk = in[6], *z = in[7];
    const int N = m.N, T = m.T;
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (long bd = 0; bd < (long)m.B * m.Dm; bd++) {
        const int b = (int)(bd / m.Dm), d = (int)(bd % m.Dm), g = d / m.per_g;
        /* G [T][N] global cumsum of δA, delta [T] */
        double *Gc = malloc(sizeof(double) * ((size_t)T * N + T));
        if (!Gc) {
#pragma omp atomic write
            bad = 1;
            continue;
        }
        double *delta = Gc + (size_t)T * N;
        for (int t = 0; t < T; t++) {
            const size_t ic = ((size_t)b * T + t) * m.Dm + d;
            delta[t] = ref_softplus(dt[ic] + dtb[d]);
            for (int n = 0; n < N; n++)
                Gc[(size_t)t * N + n] = delta[t] * -exp(Alog[(size_t)d * N + n]) +
                                        (t > 0 ? Gc[(size_t)(t - 1) * N + n] : 0.0);
        }
        const double *h0 = state_in ? state_in + ((size_t)b * m.Dm + d) * N : NULL;
        for (int t = 0; t < T; t++) {
            const size_t ic = ((size_t)b * T + t) * m.Dm + d;
            const double *Ct = Cm + (((size_t)b * T + t) * m.G + g) * (size_t)N;
            double y = 0.0;
            for (int j = 0; j <= t; j++) { /* causal mask: j ≤ t */
                const size_t jc = ((size_t)b * T + j) * m.Dm + d;
                const double *Bj = Bm + (((size_t)b * T + j) * m.G + g) * (size_t)N;
                double a = 0.0;
                for (int n = 0; n < N; n++)
                    a += Ct[n] * Bj[n] * exp(Gc[(size_t)t * N + n] - Gc[(size_t)j * N + n]);
                y += a * delta[j] * u[jc];
            }
            if (h0)
                for (int n = 0; n < N; n++)
                    y += Ct[n] * exp(Gc[(size_t)t * N + n]) * h0[n];
            out[ic] = (y + Dsk[d] * u[ic]) * silu(z[ic]);
        }
        if (state_out) {
            double *hT = state_out + ((size_t)b * m.Dm + d) * N;
            for (int n = 0; n < N; n++) {
                const double GT = Gc[(size_t)(T - 1) * N + n];
                double acc = h0 ? exp(GT) * h0[n] : 0.0;
                for (int j = 0; j < T; j++) {
                    const size_t jc = ((size_t)b * T + j) * m.Dm + d;
                    const double *Bj = Bm + (((size_t)b * T + j) * m.G + g) * (size_t)N;
                    acc += exp(GT - Gc[(size_t)j * N + n]) * Bj[n] * delta[j] * u[jc];
                }
                hT[n] = acc;
            }
        }
        free(Gc);
    }
    return bad ? LAT_ENOMEM : LAT_OK;
}
