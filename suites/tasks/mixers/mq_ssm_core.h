/* mq_ssm_core.h — helpers shared by the delta-rule, SSM and xLSTM task mixers
 * (deltanet, gated_deltanet, mamba, s4d, mlstm; suites/tasks/mq.h):
 *
 *   - fp64 elementwise math written so that gcc vectorizes loops calling it
 *     (the build has no -ffast-math, so libm's exp/log1p stay scalar calls):
 *     mq_exp (rel err ≤ 4.3e-16; 0 below −708, +inf above 709.78), sigmoid,
 *     silu and its derivative, softplus with PyTorch's threshold 20 (as
 *     impls/mamba.c) and log1p on (0, 1] — all to within a few ulp of libm;
 *   - whole-array versions of them;
 *   - the causal depthwise conv1d of Mamba (PyTorch Conv1d semantics, tap
 *     W−1 multiplies the current token, zero left padding) and its backward;
 *   - per-head RMSNorm / LayerNorm (weight only, no bias) fwd/bwd — fla's
 *     o_norm of DeltaNet / Gated DeltaNet and xLSTM's MultiHeadLayerNorm.
 * Nothing here allocates or keeps state; all functions are thread-safe.
 */
#ifndef MQ_SSM_CORE_H
#define MQ_SSM_CORE_H
#include <math.h>
#include <stdint.h>
#include <string.h>

/* `#pragma omp simd` marks the loops gcc must vectorize (FP reductions need
 * it without -ffast-math); clang cannot vectorize some of them (and none in
 * sanitizer builds) and would warn about each — the result is the same
 * arithmetic, only slower, so that warning is silenced in the files that
 * include this header. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

/* Gap (doubles) left after every buffer carved out of a cache: buffers whose
 * sizes are multiples of 4 KiB would otherwise share their address bits
 * [11:0] and stall the elementwise loops that read one and write another
 * (4K aliasing of loads and stores). 40 doubles = 320 bytes. */
#define MQ_CARVE_PAD 40

/* exp(x) by the reduction x = n·ln2 + r, |r| ≤ ln2/2 (two FMAs), the degree-13
 * Taylor polynomial by Estrin's scheme (truncation < 5e-18) and 2^n built in
 * the exponent bits: max relative error 4.3e-16 against libm over
 * [−745, 709]. x < −708 gives 0 (instead of ≤ 3e-308), x ∈ (709, 709.78]
 * gives e^709 (no caller gets near). Branch-free, so loops over it vectorize
 * (AVX-512: 8 lanes). */
static inline double mq_exp(double x)
{
    const double shift = 0x1.8p52;
    double xc = x < -708.0 ? -708.0 : x;
    xc = xc > 709.0 ? 709.0 : xc;
    double t = fma(xc, 0x1.71547652b82fep0, shift);   /* round(x·log2 e) + shift */
    double n = t - shift;
    double r = fma(-n, 0x1.62e42fefa39efp-1, xc);     /* ln 2 (hi) */
    r = fma(-n, 0x1.abc9e3b39803fp-56, r);            /* ln 2 (lo) */
    /* Σ_{k≤13} r^k/k! by Estrin's scheme (depth 5 instead of 13) */
    const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    const double p01 = 1.0 + r, p23 = fma(r, 1.0 / 6, 0.5), p45 = fma(r, 1.0 / 120, 1.0 / 24);
    const double p67 = fma(r, 1.0 / 5040, 1.0 / 720), p89 = fma(r, 1.0 / 362880, 1.0 / 40320);
    const double pab = fma(r, 1.0 / 39916800, 1.0 / 3628800);
    const double pcd = fma(r, 1.0 / 6227020800.0, 1.0 / 479001600);
    const double q0 = fma(p23, r2, p01), q1 = fma(p67, r2, p45), q2 = fma(pab, r2, p89);
    const double s0 = fma(q1, r4, q0), s1 = fma(pcd, r4, q2);
    const double p = fma(s1, r8, s0);
    int64_t tb;
    memcpy(&tb, &t, 8);
    int64_t sh;
    memcpy(&sh, &shift, 8);
    int64_t e = ((tb - sh) + 1023) << 52;
    double s;
    memcpy(&s, &e, 8);
    double y = p * s;
    y = x < -708.0 ? 0.0 : y;
    y = x > 709.78 ? INFINITY : y;
    return y;
}

/* log1p(e) for e ∈ [0, 1]: 2·atanh(s), s = e/(2 + e) ∈ [0, 1/3], odd series
 * to s^29 (truncation < 3e-17 relative). Branch-free. */
static inline double mq_log1p01(double e)
{
    double s = e / (2.0 + e), s2 = s * s;
    double p = 1.0 / 29;
    p = fma(p, s2, 1.0 / 27);
    p = fma(p, s2, 1.0 / 25);
    p = fma(p, s2, 1.0 / 23);
    p = fma(p, s2, 1.0 / 21);
    p = fma(p, s2, 1.0 / 19);
    p = fma(p, s2, 1.0 / 17);
    p = fma(p, s2, 1.0 / 15);
    p = fma(p, s2, 1.0 / 13);
    p = fma(p, s2, 1.0 / 11);
    p = fma(p, s2, 1.0 / 9);
    p = fma(p, s2, 1.0 / 7);
    p = fma(p, s2, 1.0 / 5);
    p = fma(p, s2, 1.0 / 3);
    p = fma(p, s2, 1.0);
    return 2.0 * s * p;
}

static inline double mq_vsigmoid(double x) { return 1.0 / (1.0 + mq_exp(-x)); }
static inline double mq_vsilu(double x) { return x / (1.0 + mq_exp(-x)); }
/* d silu / dx = σ(x)(1 + x(1 − σ(x))) */
static inline double mq_vdsilu(double x)
{
    double s = mq_vsigmoid(x);
    return s * (1.0 + x * (1.0 - s));
}
/* softplus with PyTorch's threshold 20 (F.softplus, impls/mamba.c):
 * x > 20 ? x : log(1 + e^x) = max(x, 0) + log1p(e^{−|x|}). */
static inline double mq_vsoftplus20(double x)
{
    double sp = (x > 0 ? x : 0.0) + mq_log1p01(mq_exp(-fabs(x)));
    return x > 20.0 ? x : sp;
}
/* its derivative: σ(x), exactly 1 above the threshold */
static inline double mq_vdsoftplus20(double x) { return x > 20.0 ? 1.0 : mq_vsigmoid(x); }

/* Array forms (y may alias x). */
void mq_arr_silu(size_t n, const double *x, double *y);

/* Causal depthwise conv1d over C channels, kernel W, x and y [L][C] with row
 * strides ldx, ldy; taps tap-major wT [W][C] (the transpose of PyTorch's
 * weight [C][1][W], so that the channel loops are contiguous), b [C] or NULL:
 *   y[t][c] = b[c] + Σ_{j<W} wT[j][c] · x[t − (W−1) + j][c]   (x = 0 before t = 0)
 * Backward: dx [L][C] (+=, stride lddx), dwT [W][C] (+=), db (+=, NULL if no bias). */
void mq_dconv_fwd(int L, int C, int W, const double *x, int ldx, const double *wT,
                  const double *b, double *y, int ldy);
void mq_dconv_bwd(int L, int C, int W, const double *x, int ldx, const double *wT,
                  const double *dy, int lddy, double *dx, int lddx, double *dwT, double *db);

/* Per-head norm over groups of G = D/H consecutive features of each row of
 * x [L][D] with a weight w [G] shared by the heads (fla RMSNorm(head_v_dim))
 * or w [D] (xLSTM MultiHeadLayerNorm, weight per feature): wstride = 0 for the
 * shared [G] weight, 1 for a per-feature [D] weight. No bias.
 *   rms:  y = x / sqrt(mean(x²) + eps) · w
 *   ln:   y = (x − mean) / sqrt(var + eps) · w
 * Forward saves xhat [L][D] (normalized, before w) and rstd [L][H].
 * Backward overwrites dx [L][D], accumulates dw. */
void mq_headnorm_fwd(int L, int D, int H, int layernorm, double eps, const double *x,
                     const double *w, int w_per_feature, double *y, double *xhat, double *rstd);
void mq_headnorm_bwd(int L, int D, int H, int layernorm, const double *xhat, const double *rstd,
                     const double *w, int w_per_feature, const double *dy, double *dx, double *dw);

#endif
