/* mq_ops.h — small fp64 building blocks shared by the task models and mixers:
 * a seeded RNG, linear layers (single-threaded OpenBLAS dgemm) with their
 * backward passes, and scalar activations with derivatives. */
#ifndef MQ_OPS_H
#define MQ_OPS_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* splitmix64: deterministic, seedable, cheap. */
uint64_t mq_rng_next(uint64_t *s);
double   mq_rng_uniform(uint64_t *s);               /* [0, 1) */
double   mq_rng_normal(uint64_t *s);                /* N(0, 1) */
void     mq_fill_normal(double *p, size_t n, double std, uint64_t *s);
void     mq_fill_uniform(double *p, size_t n, double lo, double hi, uint64_t *s);
void     mq_fill_const(double *p, size_t n, double v);

/* Linear layer, PyTorch layout: W is [out][in], b is [out] (NULL = no bias).
 *   forward:  y[L][out]  = x[L][in] · Wᵀ + b           (overwrites y)
 *   backward: dx[L][in] += dy · W   (dx NULL = not wanted)
 *             dW        += dyᵀ · x,  db += Σ_rows dy   (db NULL when b is NULL)
 * Row strides (ldx, ldy) allow reading/writing column blocks of wider arrays. */
void mq_linear_fwd(int L, int in, int out, const double *x, int ldx,
                   const double *W, const double *b, double *y, int ldy);
void mq_linear_bwd(int L, int in, int out, const double *x, int ldx,
                   const double *W, const double *dy, int ldy,
                   double *dx, int lddx, double *dW, double *db);

/* C[M][N] (+)= A[M][K] · B[K][N] with optional transposes (row-major dgemm,
 * single-threaded BLAS). beta = 0 overwrites C. */
void mq_gemm(int transA, int transB, int M, int N, int K, double alpha,
             const double *A, int lda, const double *B, int ldb, double beta,
             double *C, int ldc);

/* LayerNorm over the last dim D (eps 1e-5), learned gain g and bias b.
 * Saves mean-free normalized rows xhat [L][D] and 1/σ [L] for backward. */
void mq_layernorm_fwd(int L, int D, const double *x, const double *g, const double *b,
                      double *y, double *xhat, double *rstd);
void mq_layernorm_bwd(int L, int D, const double *xhat, const double *rstd, const double *g,
                      const double *dy, double *dx, double *dg, double *db);

static inline double mq_sigmoid(double x)
{ return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }
static inline double mq_softplus(double x)      /* log(1 + e^x), overflow-safe */
{ return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static inline double mq_logsigmoid(double x)    /* log σ(x) = −softplus(−x) */
{ return -mq_softplus(-x); }
static inline double mq_silu(double x) { return x * mq_sigmoid(x); }
static inline double mq_dsilu(double x)
{ double s = mq_sigmoid(x); return s * (1.0 + x * (1.0 - s)); }
static inline double mq_elu1(double x) { return x > 0 ? x + 1.0 : exp(x); }   /* elu + 1 */
static inline double mq_delu1(double x) { return x > 0 ? 1.0 : exp(x); }

#endif
