/* mq_gla_core.h — the shared causal "gated linear attention" sequence op of
 * the trainable linear-attention mixers (linear_attn, performer, based,
 * retnet, gla, hgrn2, rwkv6, mamba2), fp64, with its hand-written backward
 * (backpropagation through time with state checkpoints; for none / constant /
 * scalar decays also the exact quadratic masked form, see mq_gla_train_*).
 *
 * One head, key dim K, value dim V, key-major state S ∈ R^{K×V} (+ z ∈ R^K):
 *
 *   standard    S_t = Diag(a_t) S_{t−1} + k_t v̂_tᵀ,   r_t = S_tᵀ q_t
 *   bonus       r_t = S_{t−1}ᵀ q_t + (q_t·(u ⊙ k_t)) v_t,  then the same update
 *               (RWKV-6 wkv: read-out of the previous state, current token
 *               through the bonus u only, decay after the read-out)
 *   output      o_t = r_t                                   (norm = 0)
 *               o_t = r_t / d_t,  d_t = z_tᵀq_t + eps,  d_t += 2δ if |d_t| ≤ δ
 *                                                           (norm = 1: z_t = Diag(a_t) z_{t−1} + k_t,
 *               i.e. the extra column of v̂ = [v | 1])
 *
 * Decay a_t = e^{la}, la ≤ 0 given in log space: per key (la [L][K], stride
 * lda), scalar per token (la [L], stride lda), one constant (log_a) or none.
 * The δ rule is the Performer's (google: R += 2δ when |R| ≤ δ); it is
 * piecewise constant, so its derivative is 1 almost everywhere.
 *
 * Backward: states S_{t−1} are recomputed chunk by chunk (every `chunk`
 * tokens, default 16) from checkpoints saved by the forward, then walked in
 * reverse; per token one fused pass over the state rows gives dq, dk, dv,
 * d(log a) (and du), with G = ∂loss/∂S carried backwards. Everything is in
 * caller memory: no malloc, thread-safe. */
#ifndef MQ_GLA_CORE_H
#define MQ_GLA_CORE_H
#include <stddef.h>

enum { MQ_GLA_NONE = 0, MQ_GLA_CONST = 1, MQ_GLA_SCALAR = 2, MQ_GLA_KEY = 3 };

typedef struct mq_gla_spec {
    int K, V;       /* key and value dims of the head */
    int decay;      /* MQ_GLA_NONE / CONST / SCALAR / KEY */
    double log_a;   /* MQ_GLA_CONST: the constant log-decay */
    int bonus;      /* 1: RWKV-6 read-out (needs u; not with norm) */
    int norm;       /* 1: normalized output (extra state column) */
    double eps;     /* added to the normalizer (norm) */
    double delta;   /* δ rule threshold (norm; 0 = off) */
    int chunk;      /* checkpoint interval; ≤ 0 → 16 */
    int form;       /* training form (mq_gla_train_*): 0 cheaper one, 1 recurrence,
                       2 quadratic (when the decay allows it) */
} mq_gla_spec;

/* Per-head operands, row strides in doubles. la: [L][K] (KEY) or [L] (SCALAR,
 * element t at la[t*lda]); ignored otherwise. u [K] only with bonus. */
typedef struct mq_gla_io {
    const double *q, *k, *v, *la, *u;
    int ldq, ldk, ldv, lda;
    double *o;      /* [L][V] output, stride ldo */
    int ldo;
    double *den;    /* [L] saved normalizers (norm; forward writes, backward reads) */
    double *a;      /* NULL, or [L][K] (KEY) / [L] (SCALAR, stride 1) decays e^{la}: the
                       forward writes them, the backward reads them instead of
                       re-exponentiating */
    int a_given;    /* 1: io->a holds the decays on input (the caller computed them
                       more cheaply than e^{la}); la is then not read at all */
    int ld_a;       /* row stride of io->a (KEY); 0 = K */
} mq_gla_io;

typedef struct mq_gla_grad {
    const double *dout; int lddo;          /* ∂loss/∂o [L][V] */
    double *dq, *dk, *dv, *dla;            /* OVERWRITTEN ([L][K], [L][K], [L][V], la's shape) */
    int lddq, lddk, lddv, ldda;
    double *du;                            /* [K], ACCUMULATED (bonus) */
} mq_gla_grad;

static inline int mq_gla_chunk(const mq_gla_spec *s) { return s->chunk > 0 ? s->chunk : 16; }
/* doubles of the decay cache io->a for L tokens */
static inline size_t mq_gla_a_len(const mq_gla_spec *s, int L)
{
    return s->decay == MQ_GLA_KEY ? (size_t)L * (size_t)s->K : s->decay == MQ_GLA_SCALAR ? (size_t)L : 0;
}
/* doubles of one state (S [K][V rounded up to a multiple of 8], then z [K]
 * when norm), of the checkpoints for L tokens, of forward and backward scratch */
size_t mq_gla_state_len(const mq_gla_spec *s);
size_t mq_gla_ckpt_len(const mq_gla_spec *s, int L);
size_t mq_gla_fwd_scratch(const mq_gla_spec *s);
size_t mq_gla_bwd_scratch(const mq_gla_spec *s);

/* Forward over L tokens from the state S (in/out, mq_gla_state_len doubles;
 * zero it for a fresh sequence). ckpt (NULL = none) receives S before every chunk-th token, i.e.
 * mq_gla_ckpt_len doubles; io->den may be NULL when no backward follows. A
 * sequence may be run in consecutive calls that carry S (inference), but the
 * backward needs the whole sequence from one call with ckpt. */
void mq_gla_fwd(const mq_gla_spec *s, int L, const mq_gla_io *io, double *S, double *ckpt,
                double *scratch);

/* Backward of that call: io as in the forward (o and den read), ckpt from it. */
void mq_gla_bwd(const mq_gla_spec *s, int L, const mq_gla_io *io, const double *ckpt,
                const mq_gla_grad *g, double *scratch);

/* ---- training entry points: the recurrence or the quadratic form ----------------
 *
 * For decays NONE / CONST / SCALAR without bonus the op is also masked linear
 * attention, o = (A V̂) (/ den), A_ts = [s ≤ t] (q_t·k_s) e^{g_t − g_s}, g the
 * inclusive cumulative log-decay (a global fp64 cumsum; every exponent ≤ 0),
 * computed with GEMMs in O(L²(K+V)) — cheaper than the recurrence's
 * O(L·K·V) passes at short L (measured crossover L·(K+V) ≈ 5·K·V on Zen4,
 * e.g. L ≈ 128 for K = V = 64).
 * These wrappers choose the form per (spec, L); the whole sequence must come
 * in one call from a zero state. `tb` is the per-head training buffer (state
 * and checkpoints, or A, e^{g_t−g_s} and g), `scratch` is shared by heads.
 * io->a is only used by the recurrence (the quadratic form reads la, so a
 * SCALAR caller must fill la even when it passes a_given). */
int mq_gla_use_quad(const mq_gla_spec *s, int L);
size_t mq_gla_train_len(const mq_gla_spec *s, int L);
size_t mq_gla_train_scratch(const mq_gla_spec *s, int L);
void mq_gla_train_fwd(const mq_gla_spec *s, int L, const mq_gla_io *io, double *tb, double *scratch);
void mq_gla_train_bwd(const mq_gla_spec *s, int L, const mq_gla_io *io, double *tb,
                      const mq_gla_grad *g, double *scratch);

/* ---- small helpers shared by the mixers built on the core ------------------ */

/* Bump allocator over a mixer's cache: with p == NULL it only counts, so one
 * layout function gives both cache_doubles and the pointers. */
typedef struct mq_arena { double *p; size_t n; } mq_arena;
static inline double *mq_take(mq_arena *a, size_t n)
{
    double *r = a->p ? a->p + a->n : NULL;
    a->n += n;
    return r;
}
static inline size_t mq_max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* e^x for arrays, vectorizable (GCC/Clang `omp simd`, AVX-512 with -march=native):
 * Cody–Waite reduction by ln 2 and a degree-13 Taylor polynomial on
 * |r| ≤ ln2/2 (relative error ≈ 2 ulp); e^x = 0 for x < −708 (no subnormals),
 * +inf above 709.78. Used for the elementwise gates instead of libm's scalar exp. */
static inline double mq_exp_kernel(double x)
{
    const double xc = x < -708.0 ? -708.0 : x > 709.7 ? 709.7 : x;
    const double k = __builtin_rint(xc * 1.4426950408889634);
    double r = __builtin_fma(-k, 6.93147180369123816490e-01, xc);
    r = __builtin_fma(-k, 1.90821492927058770002e-10, r);
    double p = 1.0 / 6227020800.0;
    p = __builtin_fma(p, r, 1.0 / 479001600.0);
    p = __builtin_fma(p, r, 1.0 / 39916800.0);
    p = __builtin_fma(p, r, 1.0 / 3628800.0);
    p = __builtin_fma(p, r, 1.0 / 362880.0);
    p = __builtin_fma(p, r, 1.0 / 40320.0);
    p = __builtin_fma(p, r, 1.0 / 5040.0);
    p = __builtin_fma(p, r, 1.0 / 720.0);
    p = __builtin_fma(p, r, 1.0 / 120.0);
    p = __builtin_fma(p, r, 1.0 / 24.0);
    p = __builtin_fma(p, r, 1.0 / 6.0);
    p = __builtin_fma(p, r, 0.5);
    p = __builtin_fma(p, r, 1.0);
    p = __builtin_fma(p, r, 1.0);
    const long long e = (long long)k + 1023;
    union { long long i; double d; } u = { .i = e << 52 };
    double y = p * u.d;
    if (x < -708.0) y = 0.0;
    if (x > 709.7) y = __builtin_inf();
    return y;
}
static inline void mq_vexp(int n, const double *x, double *y)
{
#pragma omp simd
    for (int i = 0; i < n; i++) y[i] = mq_exp_kernel(x[i]);
}
/* σ(x) and σ(−x) = 1 − σ(x) without cancellation (either may be NULL... not both) */
static inline void mq_vsigmoid2(int n, const double *x, double *sp, double *sn)
{
#pragma omp simd
    for (int i = 0; i < n; i++) {
        const double e = mq_exp_kernel(-__builtin_fabs(x[i])), inv = 1.0 / (1.0 + e);
        const double big = inv, small = e * inv; /* σ(|x|), σ(−|x|) */
        if (sp) sp[i] = x[i] >= 0 ? big : small;
        if (sn) sn[i] = x[i] >= 0 ? small : big;
    }
}

/* dot product with two 8-wide accumulators (a plain reduction loop stays
 * scalar without -ffast-math) */
static inline double mq_vdot(int n, const double *a, const double *b)
{
    typedef double mq_v8 __attribute__((vector_size(64)));
    mq_v8 s0 = { 0 }, s1 = { 0 }, x, y;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __builtin_memcpy(&x, a + i, sizeof x);
        __builtin_memcpy(&y, b + i, sizeof y);
        s0 += x * y;
        __builtin_memcpy(&x, a + i + 8, sizeof x);
        __builtin_memcpy(&y, b + i + 8, sizeof y);
        s1 += x * y;
    }
    s0 += s1;
    double r = ((s0[0] + s0[4]) + (s0[1] + s0[5])) + ((s0[2] + s0[6]) + (s0[3] + s0[7]));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

/* Token block of the cache-less (inference) forward: intermediates of TB rows
 * live on the stack, the state is carried between blocks. */
#define MQ_GLA_TB 32

#endif
