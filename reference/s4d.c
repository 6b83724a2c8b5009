/* s4d.c — fp64 references for S4D (Gu, Gupta, Goel, Ré 2022; spec/recurrent.md
 * §8): a diagonal LTI SSM per channel with N/2 complex modes, ZOH.
 *
 * Inputs (Dm = H·V channels, M = N/2 modes, N = n_state):
 *   in[0] u           [B][T][Dm]
 *   in[1] log_dt      [Dm]        dt = exp(log_dt)              (s4d.py)
 *   in[2] log_A_real  [Dm][M]     A = −exp(log_A_real) + i·A_imag
 *   in[3] A_imag      [Dm][M]
 *   in[4] C_re        [Dm][M]     C (B = 1 is absorbed)
 *   in[5] C_im        [Dm][M]
 *   in[6] Dskip       [Dm]
 * Output y [B][T][Dm]; state x [B][Dm][2][M] (real parts of the M modes, then
 * their imaginary parts).
 *
 * ZOH (§8.3): Ā = exp(dt·A), B̄ = (exp(dt·A) − 1)/A, with exp(dt·A) − 1 formed
 * without cancellation as expm1(a)·cos b − 2 sin²(b/2) + i·e^a sin b
 * (a + ib = dt·A).
 *
 *   ref_s4d       the literal recurrence (§8.5):
 *                   x_t = Ā ⊙ x_{t−1} + B̄ u_t,   y_t = 2 Re Σ_n C_n x_t,n + D u_t
 *   ref_s4d_conv  the convolution (§8.4), direct (no FFT) with the Vandermonde
 *                 kernel from direct powers Ā^l = exp(l·dt·A):
 *                   K_l = 2 Re Σ_n C_n B̄_n Ā_n^l,  y_t = Σ_{l≤t} K_l u_{t−l} + D u_t
 *                         + 2 Re Σ_n C_n Ā_n^{t+1} x0_n
 *                   x_T = Ā^T x0 + B̄ Σ_s Ā^{T−1−s} u_s
 * state_in NULL → zeros. OpenMP over independent (b, d) channels only.
 */
#include <complex.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"

typedef struct {
    double complex dtA, Ab, Bb, C;
} mode;

/* Discretize mode n of channel d. */
static mode discretize(const double *const *in, int M, int d, int n)
{
    const size_t i = (size_t)d * M + n;
    const double dt = exp(in[1][d]);
    const double complex A = -exp(in[2][i]) + I * in[3][i];
    const double a = dt * creal(A), bb = dt * cimag(A), sh = sin(0.5 * bb);
    mode m;
    m.dtA = a + I * bb;
    m.Ab = exp(a) * (cos(bb) + I * sin(bb));
    m.Bb = (expm1(a) * cos(bb) - 2.0 * sh * sh + I * exp(a) * sin(bb)) / A;
    m.C = in[4][i] + I * in[5][i];
    return m;
}

lat_status ref_s4d(const lat_shape *s, const double *const *in, const double *state_in,
                   double *out, double *state_out)
{
    const int Dm = s->H * s->V, M = s->n_state / 2, T = s->T;
    const double *u = in[0], *Dsk = in[6];
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 4)
    for (long bd = 0; bd < (long)s->B * Dm; bd++) {
        const int b = (int)(bd / Dm), d = (int)(bd % Dm);
        mode *md = malloc(sizeof(mode) * (size_t)M);
        double complex *x = malloc(sizeof(double complex) * (size_t)M);
        if (!md || !x) {
            free(md);
            free(x);
#pragma omp atomic write
            bad = 1;
            continue;
        }
        const size_t st = (size_t)bd * 2 * M;
        for (int n = 0; n < M; n++) {
            md[n] = discretize(in, M, d, n);
            x[n] = state_in ? state_in[st + n] + I * state_in[st + M + n] : 0.0;
        }
        for (int t = 0; t < T; t++) {
            const size_t ic = ((size_t)b * T + t) * Dm + d;
            double y = 0.0;
            for (int n = 0; n < M; n++) {
                x[n] = md[n].Ab * x[n] + md[n].Bb * u[ic];
                y += 2.0 * creal(md[n].C * x[n]);
            }
            out[ic] = y + Dsk[d] * u[ic];
        }
        if (state_out)
            for (int n = 0; n < M; n++) {
                state_out[st + n] = creal(x[n]);
                state_out[st + M + n] = cimag(x[n]);
            }
        free(md);
        free(x);
    }
    return bad ? LAT_ENOMEM : LAT_OK;
}

lat_status ref_s4d_conv(const lat_shape *s, const double *const *in, const double *state_in,
                        double *out, double *state_out)
{
    const int Dm = s->H * s->V, M = s->n_state / 2, T = s->T;
    const double *u = in[0], *Dsk = in[6];
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (long bd = 0; bd < (long)s->B * Dm; bd++) {
        const int b = (int)(bd / Dm), d = (int)(bd % Dm);
        mode *md = malloc(sizeof(mode) * (size_t)M);
        double *Kl = malloc(sizeof(double) * (size_t)T);
        if (!md || !Kl) {
            free(md);
            free(Kl);
#pragma omp atomic write
            bad = 1;
            continue;
        }
        const size_t st = (size_t)bd * 2 * M;
        const double *x0 = state_in ? state_in + st : NULL;
        for (int n = 0; n < M; n++)
            md[n] = discretize(in, M, d, n);
        for (int l = 0; l < T; l++) { /* Vandermonde kernel, direct powers */
            double k = 0.0;
            for (int n = 0; n < M; n++)
                k += 2.0 * creal(md[n].C * md[n].Bb * cexp((double)l * md[n].dtA));
            Kl[l] = k;
        }
        for (int t = 0; t < T; t++) {
            double y = Dsk[d] * u[((size_t)b * T + t) * Dm + d];
            for (int l = 0; l <= t; l++)
                y += Kl[l] * u[((size_t)b * T + (t - l)) * Dm + d];
            if (x0)
                for (int n = 0; n < M; n++)
                    y += 2.0 * creal(md[n].C * cexp((double)(t + 1) * md[n].dtA) * (x0[n] + I * x0[M + n]));
            out[((size_t)b * T + t) * Dm + d] = y;
        }
        if (state_out)
            for (int n = 0; n < M; n++) {
                double complex xs = x0 ? cexp((double)T * md[n].dtA) * (x0[n] + I * x0[M + n]) : 0.0;
                double complex acc = 0.0;
                for (int j = 0; j < T; j++)
                    acc += cexp((double)(T - 1 - j) * md[n].dtA) * u[((size_t)b * T + j) * Dm + d];
                xs += md[n].Bb * acc;
                state_out[st + n] = creal(xs);
                state_out[st + M + n] = cimag(xs);
            }
        free(md);
        free(Kl);
    }
    return bad ? LAT_ENOMEM : LAT_OK;
}
