/* s4d.c — S4D, the diagonal LTI state-space layer (Gu, Gupta, Goel, Ré,
 * "On the Parameterization and Initialization of Diagonal State Space
 * Models", NeurIPS 2022, arXiv 2206.11893; S4: Gu, Goel, Ré, ICLR 2022),
 * the SSM kernel with its D skip, fp32. Spec: spec/recurrent.md §8.
 *
 * Per channel d (Dm = H·V channels) with M = N/2 complex modes (N = n_state
 * real states as conjugate pairs, hence 2 Re):
 *     x_t = Ā ⊙ x_{t−1} + B̄ u_t,   y_t = 2 Re Σ_n C_n x_t,n + D u_t
 *     Ā = exp(dt A), B̄ = (exp(dt A) − 1)/A · B, B = 1   (ZOH, §8.3)
 *     dt = exp(log_dt), A = −exp(log_A_real) + i·A_imag  (s4d.py's parameters)
 * Equivalently y = K ∗ u + D u with K_l = 2 Re Σ_n C_n B̄_n Ā_n^l (§8.4).
 * Inputs: u [B][T][Dm]; log_dt [Dm]; log_A_real, A_imag, C_re, C_im [Dm][M];
 *   D [Dm] (parameters, passed whole). Output y [B][T][Dm].
 * State x [B][Dm][2][M]: per channel the real parts of the M modes, then the
 *   imaginary parts (s4 keeps a complex [B, H, N/2]); x0 = 0 when absent.
 *
 * Discretization (both forms, once per call and channel, in fp64, then
 *   rounded to fp32): exp(dtA) − 1 = expm1(a)·cos b − 2 sin²(b/2) + i·e^a sin b
 *   (a + ib = dt·A), free of the cancellation that costs 1e-4 relative in
 *   fp32 when |dt·A| ~ 5e-4.
 *
 * Forms
 *   recurrent  the complex diagonal recurrence, vectorized over 16 channels
 *              (lanes); a thread walks token blocks of 64 over its 16-channel
 *              blocks (Ā, B̄, C as [6][M][16] floats and the state [2][M][16]
 *              of each block in L2, a token's u and y rows read and written
 *              as the thread's contiguous channel range), each block two
 *              modes at a time (their parameters and states in named AVX-512
 *              registers, pair_scan16; a portable loop otherwise), 8 FMAs per
 *              mode and step. Bound: 16 FMAs for 26 counted FLOPs per mode
 *              pair and step (≤ 81 % of peak); the pair loop alone runs at
 *              ≈ 18 cycles against 16 (72 %), the rest is the per-block
 *              epilogue and the strided u/y rows. The decay
 *              is applied as x + (Ā − 1)·x inside an FMA with Re Ā − 1 formed
 *              without cancellation, so Re Ā is never rounded (see
 *              block_scan). ≈ 13 FLOPs per mode and step = 6.5·N per channel
 *              and token (§8.5). Also the decode step (T = 1, state in place),
 *              ≈ 0.6 ms at H·D = 512 — the Dm·M fp64 discretizations (≈ 30 ns
 *              each: sincos, expm1), not the 26K-FLOP step.
 *   conv       y = K ∗ u + D u by FFT (§8.4) with zero padding to Mf = 2^⌈log2
 *              2T⌉ ≥ 2T (no wrap-around). The Vandermonde kernel comes from
 *              GEMMs: with R = min(64, T) and l = jR + r, K_l = 2 Re Σ_n
 *              (C_n B̄_n Ā_n^{jR}) (Ā_n^r), a (T/R × N)·(N × R) product of fp64-
 *              made factors (Ā^r and Ā^{jR} by fp64 running products from a
 *              directly exponentiated base: relative error ≤ T/R · 1e-16, far
 *              below fp32, as the spec's log-Vandermonde asks). FFTs: 32
 *              channels per transform — 16 lanes (impls/common/lat_fft.c)
 *              × two real signals packed as re + i·im — so 1.5 complex
 *              transforms of size Mf per channel. An initial state adds 2 Re
 *              Σ_n C_n Ā_n^{t+1} x0_n (same GEMM scheme); the final state is
 *              Ā^T x0 + B̄ Σ_s Ā^{T−1−s} u_s (same scheme, transposed).
 *              Per channel 2NT (kernel) + 7.5·Mf·log2 Mf (FFTs) + 8·Mf
 *              (spectra) FLOPs; +2NT each for an initial / requested final
 *              state. A blocked direct convolution costs T² per channel
 *              (67 MFLOP at T = 8192 against ≈ 2.8 for this form), so it only
 *              wins for T ≲ 64, where both are microseconds. Bound: the FFT
 *              passes stream 16-lane buffers of Mf·128 bytes (2 MiB at
 *              T = 8192) through L2/L3; at N = 64 the conv form is ≈ 1.5×
 *              slower than the recurrence on this CPU and its advantage is
 *              accuracy (fp64-made powers: 2e-7 at T = 65536 harsh).
 * Memory: state N floats per channel. Workspace: recurrent 6·M·16 + 2·M·16
 *   floats per 16-channel block (parameters, state) and M mode records per
 *   thread; conv 6·Mf·16 floats (three
 *   complex 16-lane buffers) + small GEMM panels per thread, twiddles 2·Mf.
 * Parallel axis: recurrent (b, 16-channel block) items, a contiguous range
 *   per thread; conv (b, 32-channel
 *   group) FFT batches, dynamically scheduled.
 * Defaults: N = 64 (32 complex modes, s4d.py), S4D-Lin init A_n = −1/2 + iπn,
 *   dt log-uniform in [1e-3, 1e-1], C complex normal (var 1 in total), D
 *   N(0,1) (s4d.py). Harsh: log_dt ~ U(ln 1e-4, 0), log_A_real ~ U(ln 0.01,
 *   ln 100) and the S4D-Inv imaginary parts (up to N²/π): |Ā| from e^{−100}
 *   to 1 − 1e-6, phases up to 1300 rad per step.
 * Decisions: the sweep's D maps to channels Dm = H·D (V = D, K unused);
 *   B = 1 (absorbed in C, as s4d.py); the kernel takes the continuous
 *   parameters (as s4d.py's forward), so every call pays Dm·M complex
 *   discretizations — a decode step (T = 1) costs that setup, not the
 *   6.5·N FLOPs of the step (S4's step mode caches Ā, B̄, C instead); the
 *   conv form handles initial and final states exactly (no recurrence), so
 *   the split-sequence test holds for both forms; a `causal` knob fixed to
 *   1 is declared because the harness runs its decode check only when
 *   shape.causal is set.
 * Run: build/latbench run --method s4d --form conv --B 1 --T 4096 --H 8 --D 64 --threads 2
 *      build/latbench check --methods s4d
 */
#include <complex.h>

#include "common/lat_chunk.h"
#include "common/lat_fft.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* ---- shapes and models --------------------------------------------------- */

static int s4_channels(const lat_shape *s) { return s->H * s->V; }

static int s4_dims_btd(const lat_shape *s, size_t d[8]) /* u, y */
{
    d[0] = (size_t)s->B, d[1] = (size_t)s->T, d[2] = (size_t)s4_channels(s);
    return 3;
}

static int s4_dims_d(const lat_shape *s, size_t d[8]) /* log_dt, D */
{
    d[0] = (size_t)s4_channels(s);
    return 1;
}

static int s4_dims_dm(const lat_shape *s, size_t d[8]) /* A, C parts [Dm][M] */
{
    d[0] = (size_t)s4_channels(s), d[1] = (size_t)(s->n_state / 2);
    return 2;
}

static int s4_dims_state(const lat_shape *s, size_t d[8]) /* [B][Dm][2][M] */
{
    d[0] = (size_t)s->B, d[1] = (size_t)s4_channels(s), d[2] = 2, d[3] = (size_t)(s->n_state / 2);
    return 4;
}

static double flops_recurrent(const lat_shape *s)
{
    return (double)s->B * s->T * s4_channels(s) * 6.5 * s->n_state;
}

static int fft_size(int T)
{
    int n = 2;
    while (n < 2 * T)
        n *= 2;
    return n;
}

static double flops_conv(const lat_shape *s)
{
    const double Mf = fft_size(s->T);
    return (double)s->B * s4_channels(s) *
           (2.0 * s->n_state * s->T + 7.5 * Mf * log2(Mf) + 8.0 * Mf);
}

static double state_bytes(const lat_shape *s) { return 4.0 * s->B * s4_channels(s) * (double)s->n_state; }

/* u read, y written, state read and written (parameters are O(Dm·N)). */
static double bytes(const lat_shape *s)
{
    return 4.0 * 2.0 * s->B * (double)s->T * s4_channels(s) + 2.0 * state_bytes(s) +
           4.0 * s4_channels(s) * (2.0 * s->n_state + 2.0);
}

static lat_status s4_validate(const lat_shape *s, char *why, size_t len)
{
    if (s->n_state < 2 || s->n_state % 2)
        return lat_unsupported(why, len, "n_state=%d must be even (N/2 complex modes)", s->n_state);
    return LAT_OK;
}

/* ---- discretization (fp64) ------------------------------------------------- */

typedef struct s4_mode {
    double complex dtA, Ab, Bb, C;
    double am1; /* Re Ā − 1, without cancellation */
} s4_mode;

static void discretize(const lat_args *a, int d, s4_mode *md)
{
    const int M = a->shape->n_state / 2;
    const double dt = exp((double)a->in[1][d]);
    for (int n = 0; n < M; n++) {
        const size_t i = (size_t)d * M + n;
        const double complex A = -exp((double)a->in[2][i]) + I * (double)a->in[3][i];
        const double ar = dt * creal(A), ai = dt * cimag(A);
        double sh, ch; /* sin, cos of b/2: sin b = 2 sh ch, cos b = 1 − 2 sh² */
        sincos(0.5 * ai, &sh, &ch);
        const double em = expm1(ar), ea = 1.0 + em, c = 1.0 - 2.0 * sh * sh, sn = 2.0 * sh * ch;
        md[n].dtA = ar + I * ai;
        md[n].Ab = ea * c + I * ea * sn;
        md[n].am1 = em * c - 2.0 * sh * sh;
        const double inv = 1.0 / (creal(A) * creal(A) + cimag(A) * cimag(A)); /* B̄ = (Ā − 1)·conj(A)/|A|² */
        md[n].Bb = ((md[n].am1 + I * ea * sn) * conj(A)) * inv;
        md[n].C = (double)a->in[4][i] + I * (double)a->in[5][i];
    }
}

#define PREFETCH_AHEAD 16

/* ---- recurrent form ------------------------------------------------------ */

#define LN 16 /* channel lanes */

typedef struct rec_plan {
    int nt, nblk, items;
    size_t blk_floats, st_floats, thr_floats; /* params [6][M][16]; item state [2][M][16]; md */
} rec_plan;

static rec_plan plan_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p;
    const int Dm = s4_channels(s), M = s->n_state / 2;
    /* work: the steps plus the Dm·M fp64 discretizations (≈ 40 steps each) */
    p.nt = lat_useful_threads((double)s->B * Dm * s->n_state * s->T + 40.0 * Dm * M, nthreads);
    p.nblk = (Dm + LN - 1) / LN;
    p.items = s->B * p.nblk;
    p.blk_floats = lat_align64(sizeof(float) * 6 * (size_t)M * LN) / sizeof(float);
    p.st_floats = lat_align64(sizeof(float) * 2 * (size_t)M * LN) / sizeof(float);
    p.thr_floats = lat_align64(sizeof(s4_mode) * (size_t)M) / sizeof(float);
    return p;
}

/* Layout (floats): [params per block][state per item][modes per thread]. */
static size_t ws_recurrent(const lat_shape *s, int nthreads)
{
    rec_plan p = plan_recurrent(s, nthreads);
    return sizeof(float) * (p.blk_floats * (size_t)p.nblk + p.st_floats * (size_t)p.items +
                            p.thr_floats * (size_t)p.nt);
}

/* Ā, B̄, C of the 16 channels of block k, as [6][M][16] (pads zero). */
static void block_params(const lat_args *a, int k, float *restrict P, s4_mode *md)
{
    const int M = a->shape->n_state / 2, Dm = s4_channels(a->shape);
    const size_t ML = (size_t)M * LN;
    memset(P, 0, sizeof(float) * 6 * ML);
    for (int l = 0; l < LN && k * LN + l < Dm; l++) {
        discretize(a, k * LN + l, md);
        for (int n = 0; n < M; n++) {
            const size_t o = (size_t)n * LN + l;
            P[o] = (float)md[n].am1; /* Re Ā − 1 (see block_scan) */
            P[ML + o] = (float)cimag(md[n].Ab);
            P[2 * ML + o] = (float)creal(md[n].Bb);
            P[3 * ML + o] = (float)cimag(md[n].Bb);
            P[4 * ML + o] = (float)creal(md[n].C);
            P[5 * ML + o] = (float)cimag(md[n].C);
        }
    }
}

#define TB 64 /* tokens per register-blocked pass */

/* One step of one mode on 16 lanes: x ← Ā x + B̄ u, y += C·x (real part).
 * The decay is applied as x + (Ā − 1)·x inside one FMA, so Re Ā itself is
 * never rounded to fp32: rounding Ā = 1 − 1e-6 (dt·Re A = −1e-6) to fp32
 * changes the mode's decay rate by up to 3% and, LTI decays being the same
 * every step, that error adds up coherently (2.4e-5 rel_rmse at T = 65536
 * with harsh parameters when Ā is rounded, 1.2e-5 this way). */
#define S4_STEP(xr_, xi_, p_, u_, y_)                                                                 \
    do {                                                                                            \
        const float pr_ = xr_, pi_ = xi_;                                                           \
        xr_ = fmaf(p_[0][l], pr_, fmaf(-p_[1][l], pi_, fmaf(p_[2][l], u_, pr_)));                   \
        xi_ = fmaf(p_[0][l], pi_, fmaf(p_[1][l], pr_, fmaf(p_[3][l], u_, pi_)));                    \
        y_ = fmaf(p_[4][l], xr_, fmaf(-p_[5][l], xi_, y_));                                         \
    } while (0)

/* Modes n, n + 1 over nt ≤ TB tokens: S4_STEP on 16 lanes, written with
 * named vector registers. The generic loop below keeps its arrays (the two
 * modes' states) on the stack — gcc 12 spills them, putting a store-forward
 * on the recurrence chain of every step (measured: 33 cycles per mode pair
 * and step against 17 here). Same operations in the same order as S4_STEP
 * (fmaf(−p, x, c) = fnmadd(p, x, c) exactly), so the results are bitwise
 * those of the generic loop. */
#if defined(__AVX512F__)
static void pair_scan16(int nt, const float *restrict P, size_t ML, int n, float *restrict xr,
                        float *restrict xi, const float (*restrict ub)[LN], float (*restrict yb)[LN])
{
    const float *p0 = P + (size_t)n * LN, *p1 = p0 + LN;
    const __m512 a0 = _mm512_loadu_ps(p0), b0 = _mm512_loadu_ps(p0 + ML);
    const __m512 br0 = _mm512_loadu_ps(p0 + 2 * ML), bi0 = _mm512_loadu_ps(p0 + 3 * ML);
    const __m512 cr0 = _mm512_loadu_ps(p0 + 4 * ML), ci0 = _mm512_loadu_ps(p0 + 5 * ML);
    const __m512 a1 = _mm512_loadu_ps(p1), b1 = _mm512_loadu_ps(p1 + ML);
    const __m512 br1 = _mm512_loadu_ps(p1 + 2 * ML), bi1 = _mm512_loadu_ps(p1 + 3 * ML);
    const __m512 cr1 = _mm512_loadu_ps(p1 + 4 * ML), ci1 = _mm512_loadu_ps(p1 + 5 * ML);
    __m512 x0r = _mm512_loadu_ps(xr + (size_t)n * LN), x0i = _mm512_loadu_ps(xi + (size_t)n * LN);
    __m512 x1r = _mm512_loadu_ps(xr + (size_t)(n + 1) * LN), x1i = _mm512_loadu_ps(xi + (size_t)(n + 1) * LN);
    for (int t = 0; t < nt; t++) {
        const __m512 u = _mm512_loadu_ps(ub[t]);
        __m512 y = _mm512_loadu_ps(yb[t]);
        __m512 pr = x0r, pi = x0i;
        x0r = _mm512_fmadd_ps(a0, pr, _mm512_fnmadd_ps(b0, pi, _mm512_fmadd_ps(br0, u, pr)));
        x0i = _mm512_fmadd_ps(a0, pi, _mm512_fmadd_ps(b0, pr, _mm512_fmadd_ps(bi0, u, pi)));
        y = _mm512_fmadd_ps(cr0, x0r, _mm512_fnmadd_ps(ci0, x0i, y));
        pr = x1r, pi = x1i;
        x1r = _mm512_fmadd_ps(a1, pr, _mm512_fnmadd_ps(b1, pi, _mm512_fmadd_ps(br1, u, pr)));
        x1i = _mm512_fmadd_ps(a1, pi, _mm512_fmadd_ps(b1, pr, _mm512_fmadd_ps(bi1, u, pi)));
        y = _mm512_fmadd_ps(cr1, x1r, _mm512_fnmadd_ps(ci1, x1i, y));
        _mm512_storeu_ps(yb[t], y);
    }
    _mm512_storeu_ps(xr + (size_t)n * LN, x0r), _mm512_storeu_ps(xi + (size_t)n * LN, x0i);
    _mm512_storeu_ps(xr + (size_t)(n + 1) * LN, x1r), _mm512_storeu_ps(xi + (size_t)(n + 1) * LN, x1i);
}
#endif

/* Part pi of np of the input and output lines (one of each per token) of
 * the token block the thread runs next: spread over the mode passes of the
 * current one. */
static inline void prefetch_part(const lat_args *a, int b, int d0, int t0, int pi, int np)
{
    const int T = a->shape->T, Dm = s4_channels(a->shape);
    const int lo = t0 + pi * TB / np, hi = t0 + (pi + 1) * TB / np;
    for (int t = lo; t < hi && t < T; t++) {
        const size_t ic = ((size_t)b * T + t) * Dm + d0;
        __builtin_prefetch(a->in[0] + ic);
        __builtin_prefetch(a->out + ic, 1);
    }
}

/* Tokens [t0, t0 + nt) (nt ≤ TB) of 16 channels [d0, d0 + w) of batch b,
 * state in xr/xi ([M][16] each); (nb, nd0, nt0) is the block the thread
 * runs next (prefetched). Register blocking: two modes at a time (their 12
 * parameter vectors stay in registers, their 4 state vectors in registers or
 * L1) run over the TB tokens, accumulating into the block's outputs in L1:
 * 8 FMAs per mode and step against ≈ 3 vector loads/stores per mode pair and
 * step (10 per mode without the blocking). */
static void block_scan(const lat_args *a, int b, int d0, int w, const float *restrict P,
                       float *restrict xr, float *restrict xi, int t0, int nt, int nb, int nd0, int nt0)
{
    const lat_shape *s = a->shape;
    const int M = s->n_state / 2, Dm = s4_channels(s), T = s->T, np = (M + 1) / 2;
    const size_t ML = (size_t)M * LN;
    const float *Dsk = a->in[6] + d0;
    float ub[TB][LN] __attribute__((aligned(64))), yb[TB][LN] __attribute__((aligned(64)));
    {
        for (int t = 0; t < nt; t++) {
            const size_t ic = ((size_t)b * T + t0 + t) * Dm + d0;
            if (w == LN)
                memcpy(ub[t], a->in[0] + ic, sizeof(float) * LN);
            else
                for (int l = 0; l < LN; l++)
                    ub[t][l] = l < w ? a->in[0][ic + l] : 0.0f;
            memset(yb[t], 0, sizeof(float) * LN);
        }
        int n = 0;
#if defined(__AVX512F__)
        for (; n + 1 < M; n += 2) {
            prefetch_part(a, nb, nd0, nt0, n / 2, np);
            pair_scan16(nt, P, ML, n, xr, xi, (const float (*)[LN])ub, yb);
        }
#endif
        for (; n + 1 < M; n += 2) {
            prefetch_part(a, nb, nd0, nt0, n / 2, np);
            float p0[6][LN], p1[6][LN], x0r[LN], x0i[LN], x1r[LN], x1i[LN];
            for (int k = 0; k < 6; k++)
                for (int l = 0; l < LN; l++) {
                    p0[k][l] = P[k * ML + (size_t)n * LN + l];
                    p1[k][l] = P[k * ML + (size_t)(n + 1) * LN + l];
                }
            for (int l = 0; l < LN; l++) {
                x0r[l] = xr[(size_t)n * LN + l], x0i[l] = xi[(size_t)n * LN + l];
                x1r[l] = xr[(size_t)(n + 1) * LN + l], x1i[l] = xi[(size_t)(n + 1) * LN + l];
            }
            for (int t = 0; t < nt; t++) {
#pragma omp simd
                for (int l = 0; l < LN; l++) {
                    float y = yb[t][l];
                    S4_STEP(x0r[l], x0i[l], p0, ub[t][l], y);
                    S4_STEP(x1r[l], x1i[l], p1, ub[t][l], y);
                    yb[t][l] = y;
                }
            }
            for (int l = 0; l < LN; l++) {
                xr[(size_t)n * LN + l] = x0r[l], xi[(size_t)n * LN + l] = x0i[l];
                xr[(size_t)(n + 1) * LN + l] = x1r[l], xi[(size_t)(n + 1) * LN + l] = x1i[l];
            }
        }
        for (; n < M; n++) { /* odd M: the last mode alone */
            prefetch_part(a, nb, nd0, nt0, n / 2, np);
            float p0[6][LN], x0r[LN], x0i[LN];
            for (int k = 0; k < 6; k++)
                for (int l = 0; l < LN; l++)
                    p0[k][l] = P[k * ML + (size_t)n * LN + l];
            for (int l = 0; l < LN; l++)
                x0r[l] = xr[(size_t)n * LN + l], x0i[l] = xi[(size_t)n * LN + l];
            for (int t = 0; t < nt; t++) {
#pragma omp simd
                for (int l = 0; l < LN; l++) {
                    float y = yb[t][l];
                    S4_STEP(x0r[l], x0i[l], p0, ub[t][l], y);
                    yb[t][l] = y;
                }
            }
            for (int l = 0; l < LN; l++)
                xr[(size_t)n * LN + l] = x0r[l], xi[(size_t)n * LN + l] = x0i[l];
        }
        for (int t = 0; t < nt; t++) {
            float *o = a->out + ((size_t)b * T + t0 + t) * Dm + d0;
            for (int l = 0; l < w; l++)
                o[l] = 2.0f * yb[t][l] + Dsk[l] * ub[t][l];
        }
    }
}

static lat_status s4_recurrent(const lat_args *a)
{
    const lat_shape *s = a->shape;
    const rec_plan p = plan_recurrent(s, a->nthreads);
    if (a->work_bytes < ws_recurrent(s, a->nthreads))
        return LAT_ENOMEM;
    const int M = s->n_state / 2, Dm = s4_channels(s);
    const size_t ML = (size_t)M * LN;
    float *params = (float *)a->work, *tbase = params + p.blk_floats * (size_t)p.nblk;

    float *states = tbase, *mbase = states + p.st_floats * (size_t)p.items;

    /* Token-block-major over the thread's items (channel blocks): a token's
     * u and y rows are read and written as the thread's contiguous channel
     * range (hardware prefetchers follow), instead of one 64-byte line per
     * 2 KiB row per item over all T tokens (TLB and miss-bound: measured
     * 25 % of the form). Parameters and states of the items stay in L2. */
#pragma omp parallel num_threads(p.nt) if (p.nt > 1)
    {
        const int tid = lat_thread_id(), T = s->T;
        s4_mode *md = (s4_mode *)(mbase + p.thr_floats * (size_t)tid);
#pragma omp for schedule(static)
        for (int k = 0; k < p.nblk; k++)
            block_params(a, k, params + p.blk_floats * (size_t)k, md);
        long lo, hi;
        lat_split(p.items, tid, p.nt, &lo, &hi);
        for (long it = lo; it < hi; it++) { /* state → [2][M][16] lanes (pads zero) */
            const int b = (int)it / p.nblk, d0 = ((int)it % p.nblk) * LN, w = Dm - d0 < LN ? Dm - d0 : LN;
            float *xr = states + p.st_floats * (size_t)it, *xi = xr + ML;
            for (int l = 0; l < LN; l++)
                for (int n = 0; n < M; n++) {
                    const float *x0 = a->state_in ? a->state_in + ((size_t)b * Dm + d0 + l) * 2 * M : NULL;
                    xr[(size_t)n * LN + l] = l < w && x0 ? x0[n] : 0.0f;
                    xi[(size_t)n * LN + l] = l < w && x0 ? x0[M + n] : 0.0f;
                }
        }
        for (int t0 = 0; t0 < T; t0 += TB) {
            const int nt = T - t0 < TB ? T - t0 : TB;
            for (long it = lo; it < hi; it++) {
                const int b = (int)it / p.nblk, k = (int)it % p.nblk, d0 = k * LN;
                const int w = Dm - d0 < LN ? Dm - d0 : LN;
                const long nx = it + 1 < hi ? it + 1 : lo; /* the block run next */
                const int nt0 = it + 1 < hi ? t0 : t0 + TB;
                float *xr = states + p.st_floats * (size_t)it;
                block_scan(a, b, d0, w, params + p.blk_floats * (size_t)k, xr, xr + ML, t0, nt,
                           (int)nx / p.nblk, ((int)nx % p.nblk) * LN, nt0);
            }
        }
        if (a->state_out)
            for (long it = lo; it < hi; it++) {
                const int b = (int)it / p.nblk, d0 = ((int)it % p.nblk) * LN, w = Dm - d0 < LN ? Dm - d0 : LN;
                const float *xr = states + p.st_floats * (size_t)it, *xi = xr + ML;
                for (int l = 0; l < w; l++)
                    for (int n = 0; n < M; n++) {
                        float *x = a->state_out + ((size_t)b * Dm + d0 + l) * 2 * M;
                        x[n] = xr[(size_t)n * LN + l];
                        x[M + n] = xi[(size_t)n * LN + l];
                    }
            }
    }
    return LAT_OK;
}

/* ---- conv form ----------------------------------------------------------- */

#define GL (2 * LAT_FFT_LANES) /* channels per FFT batch: 16 lanes × re/im */

typedef struct conv_plan {
    int nt, R, nb, Mf, ngrp, items;
    size_t fft_floats;   /* one real array [Mf][16]                       */
    size_t thr_bytes;    /* per thread                                    */
    size_t off_tw, total;
} conv_plan;

static conv_plan plan_conv(const lat_shape *s, int nthreads)
{
    conv_plan p;
    const int Dm = s4_channels(s), M = s->n_state / 2, T = s->T;
    p.R = T < 64 ? T : 64;
    p.nb = (T + p.R - 1) / p.R;
    p.Mf = fft_size(T);
    p.ngrp = (Dm + GL - 1) / GL;
    p.items = s->B * p.ngrp;
    const double work = (double)s->B * Dm * (2.0 * s->n_state * T + 7.5 * p.Mf * log2((double)p.Mf)) / 2.0;
    p.nt = lat_useful_threads(work, nthreads);
    if (p.nt > p.items)
        p.nt = p.items;
    p.fft_floats = lat_align64(sizeof(float) * (size_t)p.Mf * LAT_FFT_LANES) / sizeof(float);
    const size_t M2 = 2 * (size_t)M, R = (size_t)p.R, nb = (size_t)p.nb;
    p.thr_bytes = sizeof(float) * 6 * p.fft_floats +
                  lat_align64(sizeof(float) * M2 * R) +            /* E  [2M][R]  */
                  lat_align64(sizeof(float) * nb * M2) +           /* Wm [nb][2M] */
                  lat_align64(sizeof(float) * nb * R) +            /* Kb [nb·R]   */
                  lat_align64(sizeof(float) * R * nb) +            /* Ur [R][nb]  */
                  lat_align64(sizeof(float) * M2 * nb) +           /* Pm [2M][nb] */
                  lat_align64(sizeof(float) * (size_t)T * GL) +    /* K0 [T][32]  */
                  lat_align64(sizeof(s4_mode) * (size_t)M) +        /* modes       */
                  lat_align64(sizeof(double complex) * 2 * (size_t)M); /* x0, Ā^R  */
    p.off_tw = p.thr_bytes * (size_t)(p.nt > 0 ? p.nt : 1);
    p.total = p.off_tw + 2 * lat_align64(sizeof(float) * (size_t)p.Mf);
    return p;
}

static size_t ws_conv(const lat_shape *s, int nthreads) { return plan_conv(s, nthreads).total; }

typedef struct conv_bufs {
    float *f[6];                /* three complex [Mf][16] buffers (re, im) */
    float *E, *Wm, *Kb, *Ur, *Pm, *K0;
    s4_mode *md;
    double complex *x0, *AR;
} conv_bufs;

static conv_bufs conv_carve(const lat_args *a, const conv_plan *p, int tid)
{
    const int M = a->shape->n_state / 2, T = a->shape->T;
    const size_t M2 = 2 * (size_t)M, R = (size_t)p->R, nb = (size_t)p->nb;
    char *w = (char *)a->work + p->thr_bytes * (size_t)tid;
    conv_bufs c;
    for (int i = 0; i < 6; i++) {
        c.f[i] = (float *)w;
        w += sizeof(float) * p->fft_floats;
    }
    c.E = (float *)w;  w += lat_align64(sizeof(float) * M2 * R);
    c.Wm = (float *)w; w += lat_align64(sizeof(float) * nb * M2);
    c.Kb = (float *)w; w += lat_align64(sizeof(float) * nb * R);
    c.Ur = (float *)w; w += lat_align64(sizeof(float) * R * nb);
    c.Pm = (float *)w; w += lat_align64(sizeof(float) * M2 * nb);
    c.K0 = (float *)w; w += lat_align64(sizeof(float) * (size_t)T * GL);
    c.md = (s4_mode *)w; w += lat_align64(sizeof(s4_mode) * (size_t)M);
    c.x0 = (double complex *)w;
    c.AR = c.x0 + M;
    return c;
}

/* Kb[l] = 2 Re Σ_n w_n Ā_n^l for l < nb·R, with w_n given: Wm rows are w_n Ā_n^{jR}
 * by fp64 running products (Ā^R exponentiated directly), times E = [Re Ā^r; Im Ā^r]. */
static void vandermonde(const conv_plan *p, int M, const double complex *wn, conv_bufs *c)
{
    const int M2 = 2 * M, nb = p->nb, R = p->R;
    for (int n = 0; n < M; n++) {
        double complex q = wn[n];
        for (int j = 0; j < nb; j++) {
            c->Wm[(size_t)j * M2 + n] = (float)creal(q);
            c->Wm[(size_t)j * M2 + M + n] = (float)-cimag(q);
            q *= c->AR[n];
        }
    }
    lat_sgemm('N', 'N', nb, R, M2, 2.0f, c->Wm, M2, c->E, R, 0.0f, c->Kb, R);
}

/* One channel (lane of the batch): its kernel into the FFT lanes, the
 * initial-state term into K0, the final state. */
static void conv_channel(const lat_args *a, const conv_plan *p, conv_bufs *c, int b, int ch, int lane)
{
    const lat_shape *s = a->shape;
    const int M = s->n_state / 2, T = s->T, Dm = s4_channels(s), R = p->R, nb = p->nb;
    const int part = lane / LAT_FFT_LANES, l = lane % LAT_FFT_LANES;
    float *ZK = c->f[part]; /* pair 0 = (f0, f1) */
    s4_mode *md = c->md;
    discretize(a, ch, md);
    const float *x0f = a->state_in ? a->state_in + ((size_t)b * Dm + ch) * 2 * M : NULL;
    for (int n = 0; n < M; n++) {
        c->x0[n] = x0f ? (double)x0f[n] + I * (double)x0f[M + n] : 0.0;
        c->AR[n] = cexp((double)R * md[n].dtA);
        double complex q = 1.0; /* E = [Re Ā^r; Im Ā^r], r < R */
        for (int r = 0; r < R; r++) {
            c->E[(size_t)n * R + r] = (float)creal(q);
            c->E[(size_t)(M + n) * R + r] = (float)cimag(q);
            q *= md[n].Ab;
        }
    }
    double complex wn[M];
    for (int n = 0; n < M; n++)
        wn[n] = md[n].C * md[n].Bb;
    vandermonde(p, M, wn, c);
    for (int t = 0; t < T; t++)
        ZK[(size_t)t * LAT_FFT_LANES + l] = c->Kb[t];
    if (x0f) { /* y_t += 2 Re Σ_n C_n Ā_n^{t+1} x0_n */
        for (int n = 0; n < M; n++)
            wn[n] = md[n].C * md[n].Ab * c->x0[n];
        vandermonde(p, M, wn, c);
        for (int t = 0; t < T; t++)
            c->K0[(size_t)t * GL + lane] = c->Kb[t];
    }
    if (a->state_out) { /* x_T = Ā^T x0 + B̄ Σ_j Ā^j u_{T−1−j},  j = iR + r */
        for (int r = 0; r < R; r++)
            for (int i = 0; i < nb; i++) {
                const int tt = T - 1 - i * R - r;
                c->Ur[(size_t)r * nb + i] = tt >= 0 ? a->in[0][((size_t)b * T + tt) * Dm + ch] : 0.0f;
            }
        lat_sgemm('N', 'N', 2 * M, nb, R, 1.0f, c->E, R, c->Ur, nb, 0.0f, c->Pm, nb);
        float *xT = a->state_out + ((size_t)b * Dm + ch) * 2 * M;
        for (int n = 0; n < M; n++) {
            double complex acc = 0.0, q = 1.0;
            for (int i = 0; i < nb; i++) {
                acc += q * ((double)c->Pm[(size_t)n * nb + i] + I * (double)c->Pm[(size_t)(M + n) * nb + i]);
                q *= c->AR[n];
            }
            const double complex x = cexp((double)T * md[n].dtA) * c->x0[n] + md[n].Bb * acc;
            xT[n] = (float)creal(x);
            xT[M + n] = (float)cimag(x);
        }
    }
}

/* Spectra: Z = FFT(a + i·b) of two real signals per lane; A_k = (Z_k +
 * conj Z_−k)/2, B_k = (Z_k − conj Z_−k)/(2i). W = Ka·Ua + i·Kb·Ub is the
 * spectrum of ya + i·yb; conj(W) is stored in U (in place) so that a forward
 * transform gives Mf·conj(ya + i·yb). */
static void spectra(int Mf, const float *restrict Kr, const float *restrict Ki, float *restrict Ur,
                    float *restrict Ui)
{
    for (int k = 0; k <= Mf / 2; k++) {
        const int kk = (Mf - k) & (Mf - 1);
        const size_t o = (size_t)k * LAT_FFT_LANES, oo = (size_t)kk * LAT_FFT_LANES;
        for (int l = 0; l < LAT_FFT_LANES; l++) {
            const float k1r = Kr[o + l], k1i = Ki[o + l], k2r = Kr[oo + l], k2i = Ki[oo + l];
            const float u1r = Ur[o + l], u1i = Ui[o + l], u2r = Ur[oo + l], u2i = Ui[oo + l];
            const float kar = 0.5f * (k1r + k2r), kai = 0.5f * (k1i - k2i);
            const float kbr = 0.5f * (k1i + k2i), kbi = -0.5f * (k1r - k2r);
            const float uar = 0.5f * (u1r + u2r), uai = 0.5f * (u1i - u2i);
            const float ubr = 0.5f * (u1i + u2i), ubi = -0.5f * (u1r - u2r);
            const float Pr = kar * uar - kai * uai, Pi = kar * uai + kai * uar;
            const float Qr = kbr * ubr - kbi * ubi, Qi = kbr * ubi + kbi * ubr;
            Ur[oo + l] = Pr + Qi; /* conj W_−k = P − iQ */
            Ui[oo + l] = Pi - Qr;
            Ur[o + l] = Pr - Qi; /* conj W_k = conj P − i conj Q */
            Ui[o + l] = -(Pi + Qr);
        }
    }
}

static void conv_group(const lat_args *a, const conv_plan *p, conv_bufs *c, int b, int c0,
                       const float *twr, const float *twi)
{
    const lat_shape *s = a->shape;
    const int T = s->T, Dm = s4_channels(s), Mf = p->Mf, nl = Dm - c0 < GL ? Dm - c0 : GL;
    for (int i = 0; i < 6; i++) /* K and U zero-padded; (f2, f3) is scratch */
        if (i != 2 && i != 3)
            memset(c->f[i], 0, sizeof(float) * (size_t)Mf * LAT_FFT_LANES);
    for (int lane = 0; lane < nl; lane++)
        conv_channel(a, p, c, b, c0 + lane, lane);
    for (int t = 0; t < T; t++) { /* u rows: lanes 0..15 real, 16..31 imaginary */
        const float *ut = a->in[0] + ((size_t)b * T + t) * Dm + c0;
        if (t + PREFETCH_AHEAD < T) /* rows are Dm floats apart */
            for (int lane = 0; lane < nl; lane += 16)
                __builtin_prefetch(ut + (size_t)PREFETCH_AHEAD * Dm + lane);
        for (int lane = 0; lane < nl; lane++)
            c->f[4 + lane / LAT_FFT_LANES][(size_t)t * LAT_FFT_LANES + lane % LAT_FFT_LANES] = ut[lane];
    }
    /* pairs: K = (f0, f1), scratch (f2, f3), U = (f4, f5) */
    float *Kp[2], *fr[2], *Up[2];
    if (lat_fft_forward(Mf, c->f[0], c->f[1], c->f[2], c->f[3], twr, twi)) {
        Kp[0] = c->f[2], Kp[1] = c->f[3], fr[0] = c->f[0], fr[1] = c->f[1];
    } else {
        Kp[0] = c->f[0], Kp[1] = c->f[1], fr[0] = c->f[2], fr[1] = c->f[3];
    }
    if (lat_fft_forward(Mf, c->f[4], c->f[5], fr[0], fr[1], twr, twi)) {
        Up[0] = fr[0], Up[1] = fr[1];
    } else {
        Up[0] = c->f[4], Up[1] = c->f[5];
    }
    spectra(Mf, Kp[0], Kp[1], Up[0], Up[1]);
    float *Vr = Up[0], *Vi = Up[1];
    if (lat_fft_forward(Mf, Up[0], Up[1], Kp[0], Kp[1], twr, twi))
        Vr = Kp[0], Vi = Kp[1];
    const float inv = 1.0f / (float)Mf;
    for (int t = 0; t < T; t++) {
        const size_t ic = ((size_t)b * T + t) * Dm + c0, o = (size_t)t * LAT_FFT_LANES;
        if (t + PREFETCH_AHEAD < T)
            for (int lane = 0; lane < nl; lane += 16) {
                __builtin_prefetch(a->in[0] + ic + (size_t)PREFETCH_AHEAD * Dm + lane);
                __builtin_prefetch(a->out + ic + (size_t)PREFETCH_AHEAD * Dm + lane, 1);
            }
        for (int lane = 0; lane < nl; lane++) {
            const float conv = lane < LAT_FFT_LANES ? Vr[o + lane] : -Vi[o + lane - LAT_FFT_LANES];
            float y = conv * inv + a->in[6][c0 + lane] * a->in[0][ic + lane];
            if (a->state_in)
                y += c->K0[(size_t)t * GL + lane];
            a->out[ic + lane] = y;
        }
    }
}

static lat_status s4_conv(const lat_args *a)
{
    const lat_shape *s = a->shape;
    const conv_plan p = plan_conv(s, a->nthreads);
    if (a->work_bytes < p.total)
        return LAT_ENOMEM;
    float *twr = (float *)((char *)a->work + p.off_tw);
    float *twi = twr + lat_align64(sizeof(float) * (size_t)p.Mf) / sizeof(float);

#pragma omp parallel num_threads(p.nt) if (p.nt > 1)
    {
#pragma omp for schedule(static)
        for (int k0 = 0; k0 < p.Mf; k0 += 4096)
            lat_fft_twiddles(p.Mf, k0, k0 + 4096 < p.Mf ? k0 + 4096 : p.Mf, twr, twi);
        conv_bufs c = conv_carve(a, &p, lat_thread_id());
#pragma omp for schedule(dynamic, 1)
        for (int it = 0; it < p.items; it++)
            conv_group(a, &p, &c, it / p.ngrp, (it % p.ngrp) * GL, twr, twi);
    }
    return LAT_OK;
}

/* ---- descriptor ---------------------------------------------------------- */

/* The harness's RNG (suites/harness/rng.c), for the custom generators. */

/* A_imag [Dm][M]: S4D-Lin πn (typical); harsh S4D-Inv (N/π)(N/(2n+1) − 1). */
static void gen_a_imag(double *x, size_t count, const lat_shape *s, struct lat_rng *rng, int harsh)
{
    const size_t M = (size_t)(s->n_state / 2);
    const double N = s->n_state, pi = 3.14159265358979323846;
    for (size_t i = 0; i < count; i++) {
        const double n = (double)(i % M);
        x[i] = harsh ? (N / pi) * (N / (2.0 * n + 1.0) - 1.0) : pi * n;
    }
}

static const lat_input s4_inputs[] = {
    {.name = "u", .dims = s4_dims_btd, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0,
     .doc = "input u [B][T][Dm], N(0,1)"},
    {.name = "log_dt", .dims = s4_dims_d, .dist = LAT_DIST_UNIFORM, .a = -6.907755278982137, .b = -2.302585092994046,
     .harsh_dist = LAT_DIST_UNIFORM, .ha = -9.210340371976184, .hb = 0.0, .whole = 1,
     .doc = "log_dt [Dm], U(ln 1e-3, ln 1e-1) (s4d.py); harsh U(ln 1e-4, 0)"},
    {.name = "log_A_real", .dims = s4_dims_dm, .dist = LAT_DIST_CONST, .a = -0.6931471805599453,
     .harsh_dist = LAT_DIST_UNIFORM, .ha = -4.605170185988091, .hb = 4.605170185988092, .whole = 1,
     .doc = "log(-Re A) [Dm][N/2]: ln 0.5 (S4D-Lin); harsh U(ln 0.01, ln 100)"},
    {.name = "A_imag", .dims = s4_dims_dm, .dist = LAT_DIST_CUSTOM, .custom = gen_a_imag, .whole = 1,
     .doc = "Im A [Dm][N/2]: pi*n (S4D-Lin); harsh S4D-Inv (N/pi)(N/(2n+1) - 1)"},
    {.name = "C_re", .dims = s4_dims_dm, .dist = LAT_DIST_NORMAL, .a = 0.7071067811865476, .b = 0.0, .whole = 1,
     .doc = "Re C [Dm][N/2], N(0, 1/2) (complex normal, s4d.py)"},
    {.name = "C_im", .dims = s4_dims_dm, .dist = LAT_DIST_NORMAL, .a = 0.7071067811865476, .b = 0.0, .whole = 1,
     .doc = "Im C [Dm][N/2], N(0, 1/2)"},
    {.name = "D", .dims = s4_dims_d, .dist = LAT_DIST_NORMAL, .a = 1.0, .b = 0.0, .whole = 1,
     .doc = "D skip [Dm], N(0,1) (s4d.py)"},
};

static const lat_knob s4_knobs[] = {
    LAT_KNOB(causal, 1, 1, 1, "causal only (declared so that the harness treats the method as causal)"),
    LAT_KNOB(n_state, 64, 2, 1024, "SSM state size N (even: N/2 complex modes; s4d.py 64)"),
};

static const lat_form s4_forms[] = {
    {"recurrent", s4_recurrent, ws_recurrent, flops_recurrent,
     "complex diagonal recurrence, 16 channels per vector, parameters and state in L1"},
    {"conv", s4_conv, ws_conv, flops_conv,
     "causal convolution with the Vandermonde kernel (GEMMs) by FFT, zero-padded to >= 2T"},
};

const lat_method lat_method_s4d = {
    .name = "s4d",
    .family = "ssm",
    .paper = "Gu, Gupta, Goel, Re, On the Parameterization and Initialization of Diagonal State Space "
             "Models, NeurIPS 2022 (arXiv 2206.11893)",
    .summary = "diagonal LTI SSM (S4D-Lin, ZOH), recurrent or FFT convolution (N = 64)",
    .dim_map = "channels Dm = H*D (V = D per head), N = n_state (64, N/2 complex modes); K is not used",
    .inputs = s4_inputs,
    .n_inputs = (int)(sizeof s4_inputs / sizeof s4_inputs[0]),
    .knobs = s4_knobs,
    .n_knobs = (int)(sizeof s4_knobs / sizeof s4_knobs[0]),
    .forms = s4_forms,
    .n_forms = (int)(sizeof s4_forms / sizeof s4_forms[0]),
    .out_dims = s4_dims_btd,
    .state_dims = s4_dims_state,
    .decode_form = "recurrent",
    .map_dim = NULL,
    .validate = s4_validate,
    .bytes = bytes,
    .state_bytes = state_bytes,
    .reference = ref_s4d,
    .reference_alt = ref_s4d_conv,
    /* Measured rel_rmse vs fp64 (seed 42): conv ≤ 2.1e-7 everywhere (T up to
     * 65536, harsh); recurrent ≤ 1.1e-6 (typical) and 2.5e-6 (harsh) at
     * T ≤ 1000, but 1.24e-5 (output) and 1.9e-5 (state) at T = 65536 with
     * the harsh parameters — see tol_note. */
    .tol_out = 5e-5,
    .tol_state = 5e-5,
    .approximates_softmax = 0,
    .tol_note = "recurrent form at T = 65536 with harsh parameters (|A_bar| up to 1 - 1e-6, memory "
                "longer than T): the fp32 state's per-step rounding random-walks over all T steps of "
                "an LTI recurrence (1.2e-5 out, 1.9e-5 state measured; compensating the rounding of "
                "Im A_bar as well only reached 1.0e-5); 1e-5 holds for T <= 1000 and for the conv form",
};
